//! The beep at the end of a machine's greeting: a steady tone somewhere between
//! 300 Hz and 2.5 kHz (voicemail systems use 400 Hz to 2 kHz, 1 kHz most of all)
//! held for at least 80 ms. Each 20 ms frame is measured with the Goertzel
//! algorithm at every 25 Hz of the band; a frame is tonal when one frequency
//! holds most of its energy (speech spreads its energy over many harmonics) and it
//! is loud enough. Four tonal frames within 50 Hz of each other are a beep, dated
//! from the first; one frame between them may miss (a packet lost or concealed
//! on the way).

use super::{FRAME, mean_abs};

/// The band searched, Hz.
const LOW_HZ: u32 = 300;
const HIGH_HZ: u32 = 2500;
const STEP_HZ: u32 = 25;
/// The share of a frame's energy one frequency must hold.
const CONCENTRATION: f32 = 0.75;
/// Tonal frames in a row that make a beep (80 ms).
const RUN: u32 = 4;
/// How far the tone may wander between frames, Hz.
const WANDER_HZ: u32 = 50;
/// The quietest beep, as a mean absolute sample value (about -40 dBFS).
const MIN_LEVEL: f32 = 200.0;

/// A beep found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Beep {
    /// Where it began, ms from the first frame fed.
    pub at_ms: u32,
    /// When it was recognised (the end of the frame that made it one), ms.
    pub detected_ms: u32,
    /// Its frequency, Hz (to 25 Hz).
    pub freq_hz: u32,
}

/// Finds the first beep in a stream of frames.
#[derive(Debug, Clone)]
pub struct BeepDetector {
    /// 2 cos(2 pi f / 8000) for each frequency searched.
    coefficients: Vec<(u32, f32)>,
    elapsed_ms: u32,
    run: u32,
    run_start_ms: u32,
    last_hz: u32,
    /// The current run already skipped a frame.
    missed: bool,
    found: Option<Beep>,
}

impl Default for BeepDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl BeepDetector {
    /// A detector over the whole band.
    pub fn new() -> Self {
        let coefficients = (LOW_HZ..=HIGH_HZ)
            .step_by(STEP_HZ as usize)
            .map(|f| {
                let w = std::f32::consts::TAU * f as f32 / 8000.0;
                (f, 2.0 * w.cos())
            })
            .collect();
        Self {
            coefficients,
            elapsed_ms: 0,
            run: 0,
            run_start_ms: 0,
            last_hz: 0,
            missed: false,
            found: None,
        }
    }

    /// The beep, once found.
    pub fn found(&self) -> Option<Beep> {
        self.found
    }

    /// Feeds one 20 ms frame ([`FRAME`] samples at 8 kHz); returns the beep on the
    /// frame that completes it.
    pub fn feed(&mut self, frame: &[i16]) -> Option<Beep> {
        let start = self.elapsed_ms;
        self.elapsed_ms += 20;
        if self.found.is_some() {
            return None;
        }
        match self.tone_of(frame) {
            Some(hz) if self.run > 0 && hz.abs_diff(self.last_hz) <= WANDER_HZ => {
                self.run += 1;
                self.last_hz = hz;
            }
            Some(hz) => {
                self.run = 1;
                self.run_start_ms = start;
                self.last_hz = hz;
            }
            // One frame lost or concealed on the way does not break a run; two do.
            None if self.run > 0 && !self.missed => self.missed = true,
            None => self.run = 0,
        }
        if self.run == 1 {
            self.missed = false;
        }
        if self.run >= RUN {
            self.found = Some(Beep {
                at_ms: self.run_start_ms,
                detected_ms: self.elapsed_ms,
                freq_hz: self.last_hz,
            });
            return self.found;
        }
        None
    }

    /// The frequency holding most of the frame's energy, if one does.
    fn tone_of(&self, frame: &[i16]) -> Option<u32> {
        if frame.len() != FRAME || mean_abs(frame) < MIN_LEVEL {
            return None;
        }
        let energy: f32 = frame.iter().map(|&s| f32::from(s) * f32::from(s)).sum();
        let mut best = (0, 0.0f32);
        for &(hz, coefficient) in &self.coefficients {
            let (mut s1, mut s2) = (0.0f32, 0.0f32);
            for &x in frame {
                let s0 = f32::from(x) + coefficient * s1 - s2;
                s2 = s1;
                s1 = s0;
            }
            let power = s1 * s1 + s2 * s2 - coefficient * s1 * s2;
            if power > best.1 {
                best = (hz, power);
            }
        }
        // A pure tone of N samples gives N/2 times its energy at its frequency.
        let share = best.1 * 2.0 / (FRAME as f32 * energy.max(1.0));
        (share >= CONCENTRATION).then_some(best.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f32, ms: u32, amp: f32) -> Vec<i16> {
        (0..ms * 8)
            .map(|i| (amp * (std::f32::consts::TAU * hz * i as f32 / 8000.0).sin()) as i16)
            .collect()
    }

    fn first_beep(audio: &[i16]) -> Option<Beep> {
        let mut d = BeepDetector::new();
        audio.chunks_exact(FRAME).find_map(|f| d.feed(f))
    }

    #[test]
    fn beeps_at_common_pitches_are_found_within_100_ms() {
        for hz in [440.0, 850.0, 1000.0, 1400.0, 2000.0] {
            let audio = [vec![0; 8 * 500], tone(hz, 300, 8000.0)].concat();
            let beep = first_beep(&audio).unwrap_or_else(|| panic!("a beep at {hz}"));
            assert_eq!(beep.at_ms, 500, "{hz}");
            assert!(beep.freq_hz.abs_diff(hz as u32) <= 25, "{hz}: {beep:?}");
        }
    }

    #[test]
    fn a_beep_with_a_lost_frame_is_still_found() {
        let lost = [
            vec![0; 8 * 200],
            tone(1000.0, 40, 8000.0),
            vec![0; 8 * 20],
            tone(1000.0, 200, 8000.0),
        ]
        .concat();
        let beep = first_beep(&lost).expect("a beep");
        assert_eq!(beep.at_ms, 200);
    }

    #[test]
    fn harmonic_speech_like_sound_and_short_tones_are_not_beeps() {
        let buzz: Vec<i16> = (0..8 * 1000)
            .map(|i| {
                let t = i as f32 / 8000.0;
                let s: f32 = (1..10)
                    .map(|h| (std::f32::consts::TAU * 130.0 * h as f32 * t).sin() / h as f32)
                    .sum();
                (4000.0 * s) as i16
            })
            .collect();
        assert_eq!(first_beep(&buzz), None);
        let blip = [tone(1000.0, 60, 8000.0), vec![0; 8 * 200]].concat();
        assert_eq!(first_beep(&blip.repeat(5)), None, "60 ms blips");
        let gapped = [tone(1000.0, 40, 8000.0), vec![0; 8 * 40]].concat();
        assert_eq!(
            first_beep(&gapped.repeat(5)),
            None,
            "two frames missing break a run"
        );
        assert_eq!(first_beep(&tone(1000.0, 300, 100.0)), None, "too quiet");
    }
}
