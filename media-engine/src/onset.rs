//! Speech onset on packet arrival, for barge-in: a bot must stop talking the
//! moment the caller does. The VAD ([`crate::vad`]) is the judge of speech, but it
//! hears the caller only after the jitter buffer (40 ms or more) and wants 48 ms of
//! voice before it says so: about 100 ms from the first syllable's packet. The
//! [`SpeechGate`] announces speech on the first packet whose level jumps well above
//! the line's noise floor, as it arrives, and then lets the VAD decide: if the VAD
//! agrees within [`CONFIRM_MS`] its own start is swallowed (one `speech_started`,
//! not two) and its end is passed on; if it does not, the start is taken back with
//! a speech end (a cough, a click, a door). Without G.711 packets to look at (an
//! Opus leg), the VAD's events pass through unchanged.
//!
//! Sans-IO: packets' samples, VAD events and ticks in, [`SpeechChange`]s out, at
//! times in ms on the caller's clock. It allocates nothing.

use crate::vad::VadEvent;

/// How long the VAD has to confirm an onset before it is taken back.
pub const CONFIRM_MS: u64 = 300;
/// Quiet after which a new onset can be announced.
const REARM_MS: u64 = 200;
/// The quietest onset, as a mean absolute sample value (about -40 dBFS).
const MIN_LEVEL: f32 = 400.0;
/// How far above the noise floor a packet must jump.
const OVER_FLOOR: f32 = 6.0;

/// Speech began or ended, as the gate tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeechChange {
    /// Speech began (at this ms).
    Started {
        /// When, on the caller's clock.
        at_ms: u64,
    },
    /// Speech ended, or an onset was taken back (at this ms).
    Ended {
        /// When, on the caller's clock.
        at_ms: u64,
    },
}

/// Where the gate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No speech.
    Quiet,
    /// Announced from a packet at this time; the VAD has not agreed yet.
    Announced(u64),
    /// The VAD agrees: speech until it says it ended.
    Speaking,
}

/// One leg's onset detector and the VAD's referee.
#[derive(Debug, Clone)]
pub struct SpeechGate {
    state: State,
    /// The line's noise floor (mean absolute level).
    floor: f32,
    /// The last loud packet, for re-arming.
    last_loud_ms: Option<u64>,
}

impl Default for SpeechGate {
    fn default() -> Self {
        Self::new()
    }
}

impl SpeechGate {
    /// A gate on a quiet line.
    pub fn new() -> Self {
        Self {
            state: State::Quiet,
            floor: MIN_LEVEL / OVER_FLOOR,
            last_loud_ms: None,
        }
    }

    /// A packet's audio (8 kHz samples) arrived at `now_ms`.
    pub fn on_packet(&mut self, samples: &[i16], now_ms: u64) -> Option<SpeechChange> {
        if samples.is_empty() {
            return None;
        }
        let sum: u64 = samples.iter().map(|s| u64::from(s.unsigned_abs())).sum();
        let level = sum as f32 / samples.len() as f32;
        let loud = level > MIN_LEVEL && level > OVER_FLOOR * self.floor;
        // The floor follows quiet packets down at once and anything louder up
        // slowly (5% a packet: a second to learn a steady hum).
        if level < self.floor {
            self.floor = level.max(1.0);
        } else {
            self.floor = (self.floor * 1.05).min(level);
        }
        if !loud {
            return None;
        }
        let rested = self
            .last_loud_ms
            .is_none_or(|t| now_ms.saturating_sub(t) >= REARM_MS);
        self.last_loud_ms = Some(now_ms);
        if self.state == State::Quiet && rested {
            self.state = State::Announced(now_ms);
            return Some(SpeechChange::Started { at_ms: now_ms });
        }
        None
    }

    /// The VAD changed its mind at `now_ms`.
    pub fn on_vad(&mut self, event: VadEvent, now_ms: u64) -> Option<SpeechChange> {
        match (event, self.state) {
            (VadEvent::SpeechStarted { .. }, State::Announced(_)) => {
                self.state = State::Speaking;
                None
            }
            (VadEvent::SpeechStarted { .. }, State::Quiet) => {
                self.state = State::Speaking;
                Some(SpeechChange::Started { at_ms: now_ms })
            }
            (VadEvent::SpeechEnded { .. }, State::Speaking) => {
                self.state = State::Quiet;
                Some(SpeechChange::Ended { at_ms: now_ms })
            }
            _ => None,
        }
    }

    /// The tick at `now_ms`: an onset the VAD did not confirm is taken back.
    pub fn on_tick(&mut self, now_ms: u64) -> Option<SpeechChange> {
        match self.state {
            State::Announced(at) if now_ms.saturating_sub(at) >= CONFIRM_MS => {
                self.state = State::Quiet;
                Some(SpeechChange::Ended { at_ms: now_ms })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loud() -> [i16; 160] {
        let mut f = [0i16; 160];
        for (i, s) in f.iter_mut().enumerate() {
            *s = if i % 8 < 4 { 5000 } else { -5000 };
        }
        f
    }

    const QUIET: [i16; 160] = [20; 160];

    #[test]
    fn the_first_loud_packet_is_announced_and_the_vad_confirms_it_once() {
        let mut g = SpeechGate::new();
        assert_eq!(g.on_packet(&QUIET, 0), None);
        assert_eq!(
            g.on_packet(&loud(), 20),
            Some(SpeechChange::Started { at_ms: 20 })
        );
        assert_eq!(g.on_packet(&loud(), 40), None, "announced once");
        let started = VadEvent::SpeechStarted { at_sample: 320 };
        assert_eq!(g.on_vad(started, 120), None, "the VAD's start is swallowed");
        assert_eq!(g.on_tick(1000), None, "confirmed: not taken back");
        let ended = VadEvent::SpeechEnded { at_sample: 16_000 };
        assert_eq!(
            g.on_vad(ended, 1400),
            Some(SpeechChange::Ended { at_ms: 1400 })
        );
    }

    #[test]
    fn an_onset_the_vad_does_not_confirm_is_taken_back() {
        let mut g = SpeechGate::new();
        assert!(g.on_packet(&loud(), 0).is_some());
        // A noise the VAD does not take for speech goes on.
        for t in 1..=15 {
            assert_eq!(g.on_packet(&loud(), t * 20), None);
        }
        assert_eq!(g.on_tick(200), None);
        assert_eq!(g.on_tick(300), Some(SpeechChange::Ended { at_ms: 300 }));
        assert_eq!(
            g.on_packet(&loud(), 320),
            None,
            "not re-armed while it goes on"
        );
        assert!(g.on_packet(&loud(), 600).is_some(), "re-armed after a rest");
    }

    #[test]
    fn steady_noise_raises_the_floor_and_the_vad_alone_still_works() {
        let mut g = SpeechGate::new();
        let hum = [700i16; 160];
        // The floor climbs to the hum; its first packets may read as an onset.
        for t in 0..200u64 {
            g.on_packet(&hum, t * 20);
            g.on_tick(t * 20);
        }
        assert_eq!(g.on_packet(&hum, 4000), None, "steady hum is no onset");
        let started = VadEvent::SpeechStarted { at_sample: 0 };
        assert_eq!(
            g.on_vad(started, 4100),
            Some(SpeechChange::Started { at_ms: 4100 })
        );
    }
}
