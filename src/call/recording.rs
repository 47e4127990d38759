//! `recording_start` with its options (VoIPBIN's, after Asterisk's record): a beep
//! first, and a recording that stops by itself after `duration` seconds, after
//! `end_of_silence` seconds without speech (the engine's VAD), or on a key
//! (`end_of_key`: any, * or #). And the one way a recording stops.

use std::time::Duration;

use media_engine::engine::Source;
use media_engine::tone::Tone;
use media_engine::wav::RecordLayout;
use tokio::time::Instant;

use api::store::recordings::Recording;

use super::{Actor, Write};

/// What `recording_start` asked for.
#[derive(Debug, Clone, Default)]
pub(super) struct RecordingOptions {
    /// The longest the recording may run, s (0: no limit).
    pub duration_s: u64,
    /// Stop after this much silence, s (0: never).
    pub end_of_silence_s: u64,
    /// none, any, * or #.
    pub end_of_key: String,
    /// Beep before recording.
    pub beep_start: bool,
}

/// When the running recording stops by itself.
#[derive(Debug, Default)]
pub(super) struct RecordingLimits {
    /// Its end at the latest.
    until: Option<Instant>,
    /// How much silence ends it, and since when it has been silent (`None` while
    /// the caller speaks).
    silence: Option<(Duration, Option<Instant>)>,
    /// The keys that end it.
    keys: String,
}

impl RecordingLimits {
    fn new(options: &RecordingOptions, now: Instant) -> Self {
        Self {
            until: (options.duration_s > 0).then(|| now + Duration::from_secs(options.duration_s)),
            silence: (options.end_of_silence_s > 0)
                .then(|| (Duration::from_secs(options.end_of_silence_s), Some(now))),
            keys: options.end_of_key.clone(),
        }
    }

    /// The moment it must stop, if any.
    pub fn deadline(&self) -> Option<Instant> {
        let silent = self
            .silence
            .and_then(|(allowed, since)| since.map(|t| t + allowed));
        match (self.until, silent) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether `key` ends it.
    fn ends_on(&self, key: char) -> bool {
        match self.keys.as_str() {
            "any" => true,
            "*" | "#" => self.keys.starts_with(key),
            _ => false,
        }
    }
}

impl Actor {
    /// Starts recording the call (stereo: the caller left, what it hears right).
    pub(super) async fn start_recording(&mut self, options: RecordingOptions) {
        let Some(leg) = self.leg.filter(|_| !self.recording) else {
            return;
        };
        if options.beep_start
            && let Err(e) = self.services.media.play(leg.id, Source::Tone(Tone::beep()))
        {
            tracing::warn!(error = %e, "the recording's beep did not play");
        }
        let dir = self.services.data_dir.join("recordings");
        let id = uuid::Uuid::now_v7().to_string();
        let path = dir.join(format!("{id}.wav"));
        let started = std::fs::create_dir_all(&dir).and_then(|()| {
            self.services
                .media
                .record_start(leg.id, &path, RecordLayout::Stereo)
        });
        if let Err(e) = started {
            // The flow goes on without a recording, and says why.
            self.action_failed(&format!("recording_start failed: {e}"))
                .await;
            return;
        }
        self.recording = true;
        let limits = RecordingLimits::new(&options, Instant::now());
        if limits.silence.is_some() {
            super::media_done("vad", self.services.media.vad(leg.id, true));
        }
        self.recording_limits = limits;
        self.row.recording_ids.push(id.clone());
        let stamps = &self.services.stamps;
        let rec = Recording {
            id,
            customer_id: self.row.customer_id.clone(),
            owner_type: String::new(),
            owner_id: String::new(),
            reference_type: "call".into(),
            reference_id: self.row.id.clone(),
            status: "recording".into(),
            format: "wav".into(),
            activeflow_id: self.row.activeflow_id.clone(),
            on_end_flow_id: String::new(),
            tm_start: Some(stamps.now()),
            tm_end: None,
            tm_create: stamps.unique(),
            tm_update: None,
            tm_delete: None,
            filepath: path.to_string_lossy().into_owned(),
        };
        self.store(Write::recording(&rec, "started")).await;
        self.recording_row = Some(rec);
    }

    /// Stops the running recording (RecordingFinished follows with the file done).
    pub(super) fn stop_recording(&mut self) {
        let Some(leg) = self.leg.filter(|_| self.recording) else {
            return;
        };
        super::media_done("record_stop", self.services.media.record_stop(leg.id));
        if self.recording_limits.silence.is_some() {
            super::media_done("vad", self.services.media.vad(leg.id, false));
        }
        self.recording_limits = RecordingLimits::default();
        self.recording = false;
    }

    /// The recording's time is up (its duration, or the silence allowed).
    pub(super) fn recording_limit_reached(&mut self) {
        if self
            .recording_limits
            .deadline()
            .is_some_and(|at| at <= Instant::now())
        {
            self.stop_recording();
        }
    }

    /// A key the caller pressed: the end of the recording, if it says so.
    pub(super) fn recording_heard_key(&mut self, key: char) {
        if self.recording && self.recording_limits.ends_on(key) {
            self.stop_recording();
        }
    }

    /// The caller started or stopped speaking: the silence that ends a recording
    /// counts from the end of the last speech.
    pub(super) fn recording_heard_speech(&mut self, speaking: bool) {
        if let Some((_, since)) = self.recording_limits.silence.as_mut() {
            *since = (!speaking).then(Instant::now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_end_at_the_first_of_duration_and_silence_and_on_their_keys() {
        let now = Instant::now();
        let options = |duration_s, end_of_silence_s, keys: &str| RecordingOptions {
            duration_s,
            end_of_silence_s,
            end_of_key: keys.into(),
            beep_start: false,
        };
        assert_eq!(
            RecordingLimits::new(&options(0, 0, ""), now).deadline(),
            None
        );
        let both = RecordingLimits::new(&options(30, 5, "#"), now);
        assert_eq!(both.deadline(), Some(now + Duration::from_secs(5)));
        assert!(both.ends_on('#') && !both.ends_on('1'));
        let any = RecordingLimits::new(&options(30, 0, "any"), now);
        assert_eq!(any.deadline(), Some(now + Duration::from_secs(30)));
        let mut speaking = RecordingLimits::new(&options(0, 5, ""), now);
        speaking.silence = speaking.silence.map(|(d, _)| (d, None));
        assert_eq!(speaking.deadline(), None, "no end while the caller speaks");
        assert!(any.ends_on('7'));
        assert!(!RecordingLimits::new(&options(0, 0, "none"), now).ends_on('#'));
    }
}
