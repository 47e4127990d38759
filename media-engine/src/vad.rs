//! Voice activity per leg, with speech-start and speech-end events: the base for AMD
//! and barge-in. Scores come from `earshot` (a small neural VAD in pure Rust, about
//! 10 us per 16 ms frame here) on 16 kHz audio, so 8 kHz legs are resampled first.
//! Raw scores flicker, so the events use hysteresis: speech starts after three frames
//! in a row above [`VadConfig::start_threshold`] (48 ms) and ends after
//! [`VadConfig::hangover_ms`] below [`VadConfig::end_threshold`]. Times are in samples
//! at 16 kHz from the start of the stream.

use earshot::Detector;

/// earshot's frame: 256 samples at 16 kHz (16 ms).
const FRAME: usize = 256;

/// The VAD's thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadConfig {
    /// A score above this counts as voice.
    pub start_threshold: f32,
    /// A score below this counts as silence.
    pub end_threshold: f32,
    /// Frames above the start threshold before speech starts.
    pub start_frames: u32,
    /// Silence before speech ends, in ms.
    pub hangover_ms: u32,
}

impl Default for VadConfig {
    fn default() -> Self {
        Self {
            start_threshold: 0.5,
            end_threshold: 0.35,
            start_frames: 3,
            hangover_ms: 400,
        }
    }
}

/// A change in voice activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadEvent {
    /// Speech began at this sample (16 kHz, from the stream's start).
    SpeechStarted {
        /// Where the first voiced frame began.
        at_sample: u64,
    },
    /// Speech ended at this sample.
    SpeechEnded {
        /// Where the last voiced frame ended.
        at_sample: u64,
    },
}

/// Voice activity detection for one stream of 16 kHz audio.
pub struct Vad {
    detector: Box<Detector>,
    config: VadConfig,
    pending: [i16; FRAME],
    filled: usize,
    /// Samples fed before `pending`.
    position: u64,
    voiced_run: u32,
    silent_run: u32,
    speaking: bool,
    last_voiced_end: u64,
}

impl std::fmt::Debug for Vad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vad")
            .field("speaking", &self.speaking)
            .field("position", &self.position)
            .finish()
    }
}

impl Vad {
    /// A detector with these thresholds.
    pub fn new(config: VadConfig) -> Self {
        Self {
            detector: Detector::default_boxed(),
            config,
            pending: [0; FRAME],
            filled: 0,
            position: 0,
            voiced_run: 0,
            silent_run: 0,
            speaking: false,
            last_voiced_end: 0,
        }
    }

    /// Whether speech is going on.
    pub fn is_speaking(&self) -> bool {
        self.speaking
    }

    /// Feeds 16 kHz samples (any length; 20 ms frames are 320); calls `on_event` for
    /// each change.
    pub fn feed(&mut self, samples: &[i16], mut on_event: impl FnMut(VadEvent)) {
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (FRAME - self.filled).min(rest.len());
            self.pending[self.filled..self.filled + take].copy_from_slice(&rest[..take]);
            self.filled += take;
            rest = &rest[take..];
            if self.filled == FRAME {
                let score = self.detector.predict_i16(&self.pending);
                self.filled = 0;
                let start = self.position;
                self.position += FRAME as u64;
                self.judge(score, start, &mut on_event);
            }
        }
    }

    fn judge(&mut self, score: f32, frame_start: u64, on_event: &mut impl FnMut(VadEvent)) {
        let hangover_frames = (self.config.hangover_ms * 16).div_ceil(FRAME as u32);
        if score > self.config.start_threshold {
            self.voiced_run += 1;
            self.silent_run = 0;
            self.last_voiced_end = frame_start + FRAME as u64;
            if !self.speaking && self.voiced_run >= self.config.start_frames {
                self.speaking = true;
                let first = frame_start
                    .saturating_sub(u64::from(self.config.start_frames - 1) * FRAME as u64);
                on_event(VadEvent::SpeechStarted { at_sample: first });
            }
        } else {
            if score < self.config.end_threshold {
                self.silent_run += 1;
            }
            self.voiced_run = 0;
            if self.speaking && self.silent_run >= hangover_frames {
                self.speaking = false;
                on_event(VadEvent::SpeechEnded {
                    at_sample: self.last_voiced_end,
                });
            }
        }
    }
}
