//! `recording_start` with its options (VoIPBIN's, after Asterisk's record): a beep
//! first, and a recording that stops by itself after `duration` seconds, after
//! `end_of_silence` seconds without speech (the engine's VAD), or on a key
//! (`end_of_key`: any, * or #). And the one way a recording stops.

use std::time::{Duration, Instant};

use media_engine::engine::Source;
use media_engine::tone::Tone;

use api::call_store::{Verb, Write};
use api::store::recordings::Recording as RecordingRow;

use super::{CallCore, MediaCommand, Output, without_data_dir};

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

/// The running recording: its row and when it stops by itself.
#[derive(Debug)]
pub(super) struct Recording {
    row: RecordingRow,
    /// Its end at the latest.
    until: Option<Instant>,
    /// How much silence ends it, and since when it has been silent (`None` while
    /// the caller speaks).
    silence: Option<(Duration, Option<Instant>)>,
    /// The keys that end it.
    keys: String,
    /// It was asked to stop; its row ends when the file is done.
    stopping: bool,
}

impl Recording {
    /// The moment it must stop, if any.
    pub fn deadline(&self) -> Option<Instant> {
        if self.stopping {
            return None;
        }
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

impl CallCore {
    /// Starts recording the call (stereo: the caller left, what it hears right).
    pub(super) fn start_recording(&mut self, options: RecordingOptions) {
        let Some(leg) = self.leg.media.filter(|_| self.recording.is_none()) else {
            return;
        };
        if options.beep_start {
            let play = self.next_play_id();
            self.outputs.push_back(Output::Media(MediaCommand::Play {
                session: leg.id,
                play,
                source: Source::Tone(Tone::beep()),
            }));
        }
        let id = uuid::Uuid::now_v7().to_string();
        let path = self
            .config
            .data_dir
            .join("recordings")
            .join(format!("{id}.wav"));
        self.outputs
            .push_back(Output::Media(MediaCommand::RecordStart {
                session: leg.id,
                path: path.clone(),
            }));
        let now = self.now;
        let silence = (options.end_of_silence_s > 0)
            .then(|| (Duration::from_secs(options.end_of_silence_s), Some(now)));
        if silence.is_some() {
            self.outputs.push_back(Output::Media(MediaCommand::Vad {
                session: leg.id,
                on: true,
            }));
        }
        self.row.recording_ids.push(id.clone());
        let row = RecordingRow {
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
            tm_start: Some(self.stamps.now()),
            tm_end: None,
            tm_create: self.stamps.unique(),
            tm_update: None,
            tm_delete: None,
            filepath: path.to_string_lossy().into_owned(),
        };
        self.outputs
            .push_back(Output::Write(Write::recording(&row, Verb::Started)));
        self.recording = Some(Recording {
            row,
            until: (options.duration_s > 0).then(|| now + Duration::from_secs(options.duration_s)),
            silence,
            keys: options.end_of_key,
            stopping: false,
        });
    }

    /// Stops the running recording (RecordingFinished follows with the file done).
    pub(super) fn stop_recording(&mut self) {
        let Some(leg) = self.leg.media else { return };
        let Some(rec) = self.recording.as_mut().filter(|r| !r.stopping) else {
            return;
        };
        rec.stopping = true;
        let vad = rec.silence.is_some();
        self.outputs
            .push_back(Output::Media(MediaCommand::RecordStop(leg.id)));
        if vad {
            self.outputs.push_back(Output::Media(MediaCommand::Vad {
                session: leg.id,
                on: false,
            }));
        }
    }

    /// The recording engine could not start it: the flow goes on without it.
    pub(super) fn recording_failed(&mut self, why: &str) {
        let why = without_data_dir(why, &self.config.data_dir);
        self.action_failed(&format!("recording_start failed: {why}"));
        self.recording_ended();
    }

    /// The recording's time is up (its duration, or the silence allowed).
    pub(super) fn recording_timeout(&mut self, now: Instant) {
        if self
            .recording
            .as_ref()
            .and_then(Recording::deadline)
            .is_some_and(|at| at <= now)
        {
            self.stop_recording();
        }
    }

    /// A key the caller pressed: the end of the recording, if it says so.
    pub(super) fn recording_heard_key(&mut self, key: char) {
        if self.recording.as_ref().is_some_and(|r| r.ends_on(key)) {
            self.stop_recording();
        }
    }

    /// The caller started or stopped speaking: the silence that ends a recording
    /// counts from the end of the last speech.
    pub(super) fn recording_heard_speech(&mut self, speaking: bool) {
        let now = self.now;
        if let Some((_, since)) = self.recording.as_mut().and_then(|r| r.silence.as_mut()) {
            *since = (!speaking).then_some(now);
        }
    }

    /// A recording's file is complete: its row says so.
    pub(super) fn recording_ended(&mut self) {
        if let Some(mut rec) = self.recording.take() {
            rec.row.status = "ended".into();
            rec.row.tm_end = Some(self.stamps.now());
            self.outputs
                .push_back(Output::Write(Write::recording(&rec.row, Verb::Finished)));
        }
    }
}
