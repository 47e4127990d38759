//! Answering machine detection, sans-IO: 20 ms frames of what the called party
//! says (8 kHz) in, a verdict and a beep out. It times speech the way classic AMD
//! does (Asterisk's app_amd and the carriers' dialers before it): a person answers
//! with a short word or two ("hello?") and waits; a machine either keeps silent
//! first or talks on in one long greeting. So:
//!
//! - silence before any speech longer than `initial_silence_ms`: machine;
//! - speech summing to `greeting_ms` (pauses not counted): machine;
//! - more than `maximum_words` words: machine;
//! - one word longer than `maximum_word_length_ms`: machine;
//! - silence of `after_greeting_silence_ms` after a short greeting: human;
//! - no verdict within `total_analysis_ms`: notsure.
//!
//! A word is a voiced run of at least `min_word_length_ms`; a run ends after
//! `between_words_silence_ms` of silence. A frame is voiced when its mean absolute
//! level is above the silence threshold and well above the line's noise floor
//! (tracked, so a noisy line does not read as talk). The beep is found by
//! [`beep::BeepDetector`], which listens on after the verdict, so a voicemail drop
//! can start when the greeting has really ended.

pub mod beep;

pub use beep::{Beep, BeepDetector};

/// Samples in a frame: 20 ms at 8 kHz.
pub const FRAME: usize = 160;
/// A frame's length in ms.
const FRAME_MS: u32 = 20;

/// The thresholds, in ms unless said otherwise. The defaults are Asterisk's
/// `amd.conf` defaults, but for three words (Asterisk says two, which splits
/// "hello, hello?" the wrong way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmdConfig {
    /// Silence before any speech that means a machine.
    pub initial_silence_ms: u32,
    /// Speech (summed) that makes a greeting a machine's.
    pub greeting_ms: u32,
    /// Silence after a short greeting that means a person waiting.
    pub after_greeting_silence_ms: u32,
    /// Listening time before notsure.
    pub total_analysis_ms: u32,
    /// The shortest voiced run that counts as a word.
    pub min_word_length_ms: u32,
    /// Silence that ends a word.
    pub between_words_silence_ms: u32,
    /// More words than this make a machine.
    pub maximum_words: u32,
    /// A word this long makes a machine.
    pub maximum_word_length_ms: u32,
    /// Mean absolute sample value under which a frame is silent.
    pub silence_threshold: u16,
}

impl Default for AmdConfig {
    fn default() -> Self {
        Self {
            initial_silence_ms: 2500,
            greeting_ms: 1500,
            after_greeting_silence_ms: 800,
            total_analysis_ms: 5000,
            min_word_length_ms: 100,
            between_words_silence_ms: 50,
            maximum_words: 3,
            maximum_word_length_ms: 5000,
            silence_threshold: 256,
        }
    }
}

/// Who answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A person.
    Human,
    /// An answering machine or voicemail.
    Machine,
    /// Could not tell in the time given.
    NotSure,
}

impl Verdict {
    /// The name flows and events use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Human => "human",
            Self::Machine => "machine",
            Self::NotSure => "notsure",
        }
    }
}

/// Why the verdict is what it is (Asterisk's AMDCAUSE, in words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Silence before any speech.
    InitialSilence,
    /// A greeting too long for a person.
    LongGreeting,
    /// Too many words.
    MaxWords,
    /// One very long word.
    MaxWordLength,
    /// A short greeting, then silence: a person waiting for an answer.
    AfterGreetingSilence,
    /// No verdict in the listening time.
    TooLong,
}

impl Cause {
    /// The name variables and events use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InitialSilence => "initial_silence",
            Self::LongGreeting => "long_greeting",
            Self::MaxWords => "max_words",
            Self::MaxWordLength => "max_word_length",
            Self::AfterGreetingSilence => "after_greeting_silence",
            Self::TooLong => "too_long",
        }
    }
}

/// A verdict and when it was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detection {
    /// Who answered.
    pub verdict: Verdict,
    /// Why.
    pub cause: Cause,
    /// Audio heard when it was reached, ms.
    pub at_ms: u32,
}

/// The detector of one call.
#[derive(Debug, Clone)]
pub struct AmdDetector {
    config: AmdConfig,
    elapsed_ms: u32,
    /// The current voiced run.
    voiced_ms: u32,
    /// The current silent run.
    silent_ms: u32,
    /// Whether the current voiced run already counts as a word.
    in_word: bool,
    words: u32,
    /// Speech summed since the first word.
    greeting_ms: u32,
    /// The line's noise floor (mean absolute level), tracked.
    floor: f32,
    detection: Option<Detection>,
}

impl AmdDetector {
    /// A detector with these thresholds.
    pub fn new(config: AmdConfig) -> Self {
        Self {
            config,
            elapsed_ms: 0,
            voiced_ms: 0,
            silent_ms: 0,
            in_word: false,
            words: 0,
            greeting_ms: 0,
            floor: f32::from(config.silence_threshold) / 4.0,
            detection: None,
        }
    }

    /// The verdict, once reached.
    pub fn detection(&self) -> Option<Detection> {
        self.detection
    }

    /// Feeds one 20 ms frame ([`FRAME`] samples at 8 kHz); returns the verdict the
    /// frame that reaches it.
    pub fn feed(&mut self, frame: &[i16]) -> Option<Detection> {
        if self.detection.is_some() {
            return None;
        }
        self.elapsed_ms += FRAME_MS;
        let level = mean_abs(frame);
        let voiced = self.voiced(level);
        let c = self.config;
        let found = if voiced {
            self.silent_ms = 0;
            self.voiced_ms += FRAME_MS;
            if self.words > 0 {
                self.greeting_ms += FRAME_MS;
            }
            if !self.in_word && self.voiced_ms >= c.min_word_length_ms {
                self.in_word = true;
                if self.words == 0 {
                    self.greeting_ms = self.voiced_ms;
                }
                self.words += 1;
            }
            if self.words > c.maximum_words {
                Some((Verdict::Machine, Cause::MaxWords))
            } else if self.greeting_ms >= c.greeting_ms {
                Some((Verdict::Machine, Cause::LongGreeting))
            } else if self.voiced_ms >= c.maximum_word_length_ms {
                Some((Verdict::Machine, Cause::MaxWordLength))
            } else {
                None
            }
        } else {
            self.silent_ms += FRAME_MS;
            if self.silent_ms >= c.between_words_silence_ms {
                self.voiced_ms = 0;
                self.in_word = false;
            }
            if self.words == 0 && self.silent_ms >= c.initial_silence_ms {
                Some((Verdict::Machine, Cause::InitialSilence))
            } else if self.words > 0 && self.silent_ms >= c.after_greeting_silence_ms {
                Some((Verdict::Human, Cause::AfterGreetingSilence))
            } else {
                None
            }
        };
        let found = found.or_else(|| {
            (self.elapsed_ms >= c.total_analysis_ms).then_some((Verdict::NotSure, Cause::TooLong))
        });
        self.detection = found.map(|(verdict, cause)| Detection {
            verdict,
            cause,
            at_ms: self.elapsed_ms,
        });
        self.detection
    }

    /// Whether a frame at `level` is speech: above the threshold and three times
    /// the noise floor. The floor follows quiet frames down at once and up slowly
    /// (2% a frame), so speech does not lift it but steady noise does.
    fn voiced(&mut self, level: f32) -> bool {
        if level < self.floor {
            self.floor = level.max(1.0);
        } else {
            self.floor = (self.floor * 1.02).min(level);
        }
        level > f32::from(self.config.silence_threshold) && level > 3.0 * self.floor
    }
}

/// The mean absolute sample value.
pub fn mean_abs(frame: &[i16]) -> f32 {
    let sum: u64 = frame.iter().map(|s| u64::from(s.unsigned_abs())).sum();
    sum as f32 / frame.len().max(1) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ms` of noise-like "speech" (a buzz rich in harmonics) at `amp`.
    fn talk(ms: u32, amp: f32) -> Vec<i16> {
        (0..ms * 8)
            .map(|i| {
                let t = i as f32 / 8000.0;
                let buzz: f32 = (1..8)
                    .map(|h| (std::f32::consts::TAU * 140.0 * h as f32 * t).sin() / h as f32)
                    .sum();
                (amp * buzz * 0.5) as i16
            })
            .collect()
    }

    fn quiet(ms: u32) -> Vec<i16> {
        vec![0; (ms * 8) as usize]
    }

    fn run(audio: &[i16]) -> Option<Detection> {
        let mut d = AmdDetector::new(AmdConfig::default());
        audio
            .chunks_exact(FRAME)
            .find_map(|f| d.feed(f))
            .or(d.detection())
    }

    #[test]
    fn a_short_hello_then_silence_is_a_person() {
        let audio = [quiet(400), talk(440, 6000.0), quiet(2000)].concat();
        let d = run(&audio).expect("a verdict");
        assert_eq!(
            (d.verdict, d.cause),
            (Verdict::Human, Cause::AfterGreetingSilence)
        );
        assert_eq!(d.at_ms, 400 + 440 + 800);
    }

    #[test]
    fn a_long_greeting_is_a_machine_and_so_is_silence() {
        let audio = [quiet(300), talk(3000, 6000.0)].concat();
        let d = run(&audio).expect("a verdict");
        assert_eq!(
            (d.verdict, d.cause),
            (Verdict::Machine, Cause::LongGreeting)
        );
        assert_eq!(d.at_ms, 300 + 1500);
        let d = run(&quiet(4000)).expect("a verdict");
        assert_eq!(
            (d.verdict, d.cause),
            (Verdict::Machine, Cause::InitialSilence)
        );
    }

    #[test]
    fn many_short_words_are_a_machine_and_no_verdict_in_time_is_notsure() {
        let word = [talk(200, 6000.0), quiet(200)].concat();
        let d = run(&word.repeat(6)).expect("a verdict");
        assert_eq!((d.verdict, d.cause), (Verdict::Machine, Cause::MaxWords));
        // Words and pauses that never settle: 3 words, each pause under 800 ms,
        // then blips too short to be words.
        let blips = [talk(60, 6000.0), quiet(700)].concat();
        let audio = [word.repeat(3), blips.repeat(8)].concat();
        let d = run(&audio).expect("a verdict");
        assert_eq!((d.verdict, d.cause), (Verdict::NotSure, Cause::TooLong));
    }

    #[test]
    fn steady_line_noise_is_not_speech() {
        // White-ish noise at a level above the fixed threshold, then a hello.
        let mut x: u32 = 1;
        let mut noise = |n: usize| -> Vec<i16> {
            (0..n)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    ((x >> 16) as i16 as i32 * 900 / 32768) as i16
                })
                .collect()
        };
        let lead = noise(8 * 600);
        let hello: Vec<i16> = talk(450, 8000.0)
            .iter()
            .zip(noise(8 * 450))
            .map(|(a, b)| a.saturating_add(b))
            .collect();
        let tail = noise(8 * 2000);
        let d = run(&[lead, hello, tail].concat()).expect("a verdict");
        assert_eq!(d.verdict, Verdict::Human, "{d:?}");
    }
}
