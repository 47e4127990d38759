//! Tone generation: a beep, ringback (US and EU), DTMF. A tone is a cadence of up to
//! four segments, each one or two frequencies for a time, repeated or played once. The
//! generator keeps its phase across frames, so frames join without clicks, and fills
//! caller-owned frames without allocating.

use std::f32::consts::TAU;

use crate::dtmf::goertzel::key_frequencies;

/// One part of a cadence: up to two frequencies (0 = none, silence if both are 0)
/// for `ms` milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    /// The frequencies in Hz; 0 for none.
    pub freqs: [f32; 2],
    /// How long, in ms.
    pub ms: u32,
}

impl Segment {
    const fn tone(f1: f32, f2: f32, ms: u32) -> Self {
        Self {
            freqs: [f1, f2],
            ms,
        }
    }
    const fn silence(ms: u32) -> Self {
        Self {
            freqs: [0.0, 0.0],
            ms,
        }
    }
}

/// A tone: its cadence and whether it repeats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tone {
    segments: [Segment; 4],
    len: usize,
    repeat: bool,
    /// Peak amplitude of each frequency, of full scale.
    level: f32,
}

impl Tone {
    fn new(parts: &[Segment], repeat: bool, level: f32) -> Self {
        let mut segments = [Segment::silence(0); 4];
        let len = parts.len().min(4);
        segments[..len].copy_from_slice(&parts[..len]);
        Self {
            segments,
            len,
            repeat,
            level,
        }
    }

    /// The recording beep: 1 kHz for 250 ms, once.
    pub fn beep() -> Self {
        Self::new(&[Segment::tone(1000.0, 0.0, 250)], false, 0.3)
    }

    /// US ringback (ANSI T1.401): 440 + 480 Hz, 2 s on, 4 s off.
    pub fn ringback_us() -> Self {
        Self::new(
            &[Segment::tone(440.0, 480.0, 2000), Segment::silence(4000)],
            true,
            0.15,
        )
    }

    /// European ringback (ETSI TR 101 041, CEPT): 425 Hz, 1 s on, 4 s off.
    pub fn ringback_eu() -> Self {
        Self::new(
            &[Segment::tone(425.0, 0.0, 1000), Segment::silence(4000)],
            true,
            0.2,
        )
    }

    /// A DTMF key held for `ms` (ITU-T Q.24 wants at least 40 ms), then `gap_ms` of
    /// silence; `None` for a character that is not a key.
    pub fn dtmf(key: char, ms: u32, gap_ms: u32) -> Option<Self> {
        let (row, col) = key_frequencies(key)?;
        Some(Self::new(
            &[Segment::tone(row, col, ms), Segment::silence(gap_ms)],
            false,
            0.2,
        ))
    }

    /// A tone of up to four segments, repeated or once, each frequency at a fifth of
    /// full scale.
    pub fn custom(parts: &[Segment], repeat: bool) -> Self {
        Self::new(parts, repeat, 0.2)
    }

    /// Its total length in ms, once through.
    pub fn cycle_ms(&self) -> u32 {
        self.segments[..self.len].iter().map(|s| s.ms).sum()
    }
}

/// Plays a [`Tone`] into frames at a sample rate.
#[derive(Debug, Clone)]
pub struct ToneGenerator {
    tone: Tone,
    rate: f32,
    segment: usize,
    /// Samples left in the current segment.
    left: u64,
    phase: [f32; 2],
    done: bool,
}

impl ToneGenerator {
    /// Starts `tone` at `sample_rate`.
    pub fn new(tone: Tone, sample_rate: u32) -> Self {
        let rate = sample_rate.max(1) as f32;
        let left = samples(tone.segments[0].ms, rate);
        Self {
            tone,
            rate,
            segment: 0,
            left,
            phase: [0.0; 2],
            done: tone.len == 0,
        }
    }

    /// Whether a tone that does not repeat has ended.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Fills `frame`; past the end of a tone that does not repeat, silence. Returns
    /// whether any of the frame was tone.
    pub fn fill(&mut self, frame: &mut [i16]) -> bool {
        let mut any = false;
        for out in frame.iter_mut() {
            while !self.done && self.left == 0 {
                self.next_segment();
            }
            if self.done {
                *out = 0;
                continue;
            }
            let seg = self.tone.segments[self.segment];
            let mut v = 0.0;
            for (f, phase) in seg.freqs.iter().zip(self.phase.iter_mut()) {
                if *f > 0.0 {
                    v += phase.sin() * self.tone.level;
                    *phase = (*phase + TAU * f / self.rate) % TAU;
                    any = true;
                }
            }
            *out = (v * f32::from(i16::MAX)) as i16;
            self.left -= 1;
        }
        any
    }

    fn next_segment(&mut self) {
        self.segment += 1;
        if self.segment >= self.tone.len {
            if !self.tone.repeat || self.tone.cycle_ms() == 0 {
                self.done = true;
                return;
            }
            self.segment = 0;
        }
        self.left = samples(self.tone.segments[self.segment].ms, self.rate);
    }
}

fn samples(ms: u32, rate: f32) -> u64 {
    (u64::from(ms) * rate as u64) / 1000
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtmf::goertzel::InbandDetector;

    fn render(tone: Tone, rate: u32, ms: u32) -> Vec<i16> {
        let mut g = ToneGenerator::new(tone, rate);
        let frame = rate as usize / 50;
        let mut out = vec![0i16; frame * (ms as usize / 20)];
        for chunk in out.chunks_mut(frame) {
            g.fill(chunk);
        }
        out
    }

    /// Power at `f` relative to the signal's total (a single-bin DFT).
    fn share_at(x: &[i16], f: f32, rate: f32) -> f32 {
        let (mut re, mut im) = (0.0f64, 0.0f64);
        for (n, &s) in x.iter().enumerate() {
            let w = f64::from(TAU * f * n as f32 / rate);
            re += f64::from(s) * w.cos();
            im += f64::from(s) * w.sin();
        }
        let total: f64 = x.iter().map(|&s| f64::from(s).powi(2)).sum();
        ((re * re + im * im) * 2.0 / x.len() as f64 / total.max(1.0)) as f32
    }

    #[test]
    fn generated_dtmf_is_heard_by_the_detector() {
        for key in ['1', '5', '9', '0', '*', '#', 'A', 'D'] {
            let audio = render(Tone::dtmf(key, 100, 100).expect("a key"), 8000, 200);
            let mut heard = Vec::new();
            let mut d = InbandDetector::new();
            d.feed(&audio, |digit| heard.push(digit.key));
            d.finish(|digit| heard.push(digit.key));
            assert_eq!(heard, [key]);
        }
        assert!(Tone::dtmf('x', 100, 0).is_none());
    }

    #[test]
    fn us_ringback_is_440_and_480_for_two_seconds_in_six() {
        let audio = render(Tone::ringback_us(), 8000, 6000);
        let on = audio.iter().filter(|s| **s != 0).count();
        assert!((on as i64 - 16_000).abs() < 100, "{on} samples of tone");
        let burst = &audio[..16_000];
        let both = share_at(burst, 440.0, 8000.0) + share_at(burst, 480.0, 8000.0);
        assert!(both > 0.95, "440 + 480 Hz hold {both} of the power");
    }

    #[test]
    fn eu_ringback_and_the_beep_have_their_frequencies_at_any_rate() {
        let eu = render(Tone::ringback_eu(), 16_000, 1000);
        assert!(share_at(&eu, 425.0, 16_000.0) > 0.95);
        let beep = render(Tone::beep(), 48_000, 300);
        assert!(share_at(&beep[..12_000], 1000.0, 48_000.0) > 0.95);
        assert!(
            beep[12_000..].iter().all(|s| *s == 0),
            "250 ms, then silence"
        );
    }

    #[test]
    fn frames_join_without_a_jump() {
        let audio = render(Tone::beep(), 8000, 200);
        let max_step = audio
            .windows(2)
            .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
            .max()
            .unwrap_or(0);
        // A 1 kHz sine at 0.3 of full scale moves at most 2*pi*1000/8000*0.3*32767 per sample.
        assert!(max_step <= 7800, "step {max_step}");
    }
}
