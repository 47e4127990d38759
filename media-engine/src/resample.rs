//! Sample-rate conversion between a leg's rate and another's (8, 16, 48 kHz), one
//! 20 ms frame at a time, with rubato's FFT resampler: fixed ratios, an anti-aliasing
//! filter (so 48 kHz to 8 kHz does not fold high frequencies down), and no allocation
//! per frame (its buffers and ours are made once).

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

/// What went wrong converting.
#[derive(Debug, thiserror::Error)]
pub enum ResampleError {
    /// The rates cannot be converted in 20 ms frames.
    #[error("cannot resample {from} Hz to {to} Hz in 20 ms frames: {reason}")]
    Setup {
        /// The input rate.
        from: u32,
        /// The output rate.
        to: u32,
        /// Why.
        reason: String,
    },
    /// A frame of the wrong length.
    #[error("a frame of {got} samples where {want} were expected")]
    FrameLength {
        /// Samples given.
        got: usize,
        /// Samples expected.
        want: usize,
    },
    /// The resampler failed.
    #[error("resampling failed: {0}")]
    Process(String),
}

/// Converts 20 ms frames from one rate to another.
pub struct FrameResampler {
    fft: Fft<f32>,
    input: Vec<f32>,
    output: Vec<f32>,
}

impl std::fmt::Debug for FrameResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameResampler")
            .field("in", &self.input.len())
            .field("out", &self.output.len())
            .finish()
    }
}

impl FrameResampler {
    /// A converter of 20 ms frames from `from` Hz to `to` Hz.
    pub fn new(from: u32, to: u32) -> Result<Self, ResampleError> {
        let setup = |reason: String| ResampleError::Setup { from, to, reason };
        if !from.is_multiple_of(50) || !to.is_multiple_of(50) || from == 0 || to == 0 {
            return Err(setup("rates must be whole samples per 20 ms".into()));
        }
        let (n_in, n_out) = (from as usize / 50, to as usize / 50);
        let fft = Fft::<f32>::new(from as usize, to as usize, n_in, 1, FixedSync::Both)
            .map_err(|e| setup(e.to_string()))?;
        Ok(Self {
            fft,
            input: vec![0.0; n_in],
            output: vec![0.0; n_out],
        })
    }

    /// Samples per input frame.
    pub fn input_len(&self) -> usize {
        self.input.len()
    }

    /// Samples per output frame.
    pub fn output_len(&self) -> usize {
        self.output.len()
    }

    /// Converts one frame (the output lags the input by the filter's delay).
    pub fn process(&mut self, input: &[i16], output: &mut [i16]) -> Result<(), ResampleError> {
        if input.len() != self.input.len() {
            return Err(ResampleError::FrameLength {
                got: input.len(),
                want: self.input.len(),
            });
        }
        if output.len() != self.output.len() {
            return Err(ResampleError::FrameLength {
                got: output.len(),
                want: self.output.len(),
            });
        }
        for (f, s) in self.input.iter_mut().zip(input) {
            *f = f32::from(*s) / 32768.0;
        }
        let (n_in, n_out) = (self.input.len(), self.output.len());
        let adapter_in = InterleavedSlice::new(&self.input[..], 1, n_in)
            .map_err(|e| ResampleError::Process(e.to_string()))?;
        let mut adapter_out = InterleavedSlice::new_mut(&mut self.output[..], 1, n_out)
            .map_err(|e| ResampleError::Process(e.to_string()))?;
        self.fft
            .process_into_buffer(&adapter_in, &mut adapter_out, None)
            .map_err(|e| ResampleError::Process(e.to_string()))?;
        for (s, f) in output.iter_mut().zip(&self.output) {
            *s = (f * 32768.0).clamp(-32768.0, 32767.0) as i16;
        }
        Ok(())
    }
}

/// Converts a whole prompt from `from` Hz to `to` Hz, for any pair of rates (22,050
/// and 44,100 Hz WAV files too): done once when a prompt is loaded for a leg, off the
/// media path.
pub fn resample_all(input: &[i16], from: u32, to: u32) -> Result<Vec<i16>, ResampleError> {
    let setup = |reason: String| ResampleError::Setup { from, to, reason };
    if from == 0 || to == 0 {
        return Err(setup("a rate of zero".into()));
    }
    if from == to || input.is_empty() {
        return Ok(input.to_vec());
    }
    let mut fft = Fft::<f32>::new(from as usize, to as usize, 1024, 1, FixedSync::Input)
        .map_err(|e| setup(e.to_string()))?;
    let samples: Vec<f32> = input.iter().map(|s| f32::from(*s) / 32768.0).collect();
    let needed = fft.process_all_needed_output_len(samples.len());
    let mut out = vec![0.0f32; needed];
    let adapter_in = InterleavedSlice::new(&samples[..], 1, samples.len())
        .map_err(|e| ResampleError::Process(e.to_string()))?;
    let mut adapter_out = InterleavedSlice::new_mut(&mut out[..], 1, needed)
        .map_err(|e| ResampleError::Process(e.to_string()))?;
    let (_, produced) = fft
        .process_all_into_buffer(&adapter_in, &mut adapter_out, samples.len(), None)
        .map_err(|e| ResampleError::Process(e.to_string()))?;
    Ok(out[..produced]
        .iter()
        .map(|f| (f * 32768.0).clamp(-32768.0, 32767.0) as i16)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{frequency, rms};
    use crate::tone::{Segment, Tone, ToneGenerator};

    fn run(from: u32, to: u32, tone: Tone, frames: usize) -> Vec<i16> {
        let mut r = FrameResampler::new(from, to).expect("supported");
        let mut g = ToneGenerator::new(tone, from);
        let mut inp = vec![0i16; r.input_len()];
        let mut out = vec![0i16; r.output_len()];
        let mut all = Vec::new();
        for _ in 0..frames {
            g.fill(&mut inp);
            r.process(&inp, &mut out).expect("converts");
            all.extend_from_slice(&out);
        }
        all
    }

    #[test]
    fn a_tone_keeps_its_pitch_and_level_up_and_down() {
        for (from, to) in [
            (8000, 16_000),
            (16_000, 8000),
            (8000, 48_000),
            (48_000, 16_000),
        ] {
            let out = run(from, to, Tone::beep(), 12);
            // Skip the filter's delay and the beep's end.
            let steady = &out[out.len() / 4..out.len() / 2];
            let f = frequency(steady, to);
            assert!((f - 1000.0).abs() < 15.0, "{from}->{to}: {f} Hz");
            let level = rms(steady) / (0.3 * 32767.0 / 2f64.sqrt());
            assert!((0.85..1.15).contains(&level), "{from}->{to}: level {level}");
        }
    }

    #[test]
    fn whole_prompts_convert_from_any_rate() {
        for from in [22_050, 44_100, 11_025, 16_000] {
            let mut g = ToneGenerator::new(Tone::beep(), from);
            let mut input = vec![0i16; from as usize / 5]; // 200 ms
            g.fill(&mut input);
            let out = resample_all(&input, from, 8000).expect("converts");
            assert!(
                (out.len() as i64 - 1600).abs() <= 2,
                "{from}: {} samples",
                out.len()
            );
            let f = frequency(&out[200..1400], 8000);
            assert!((f - 1000.0).abs() < 15.0, "{from}: {f} Hz");
        }
        assert!(resample_all(&[1, 2], 0, 8000).is_err());
    }

    #[test]
    fn downsampling_filters_what_the_lower_rate_cannot_carry() {
        // 6 kHz at 48 kHz would fold to 2 kHz at 8 kHz without the anti-aliasing filter.
        let high = Tone::custom(
            &[Segment {
                freqs: [6000.0, 0.0],
                ms: 60_000,
            }],
            true,
        );
        let out = run(48_000, 8000, high, 20);
        assert!(
            rms(&out[800..]) < 0.01 * 0.3 * 32767.0,
            "rms {}",
            rms(&out[800..])
        );
    }

    #[test]
    fn wrong_frames_and_rates_are_refused_by_name() {
        let mut r = FrameResampler::new(8000, 16_000).expect("supported");
        let err = r
            .process(&[0; 100], &mut [0; 320])
            .expect_err("short frame");
        assert!(err.to_string().contains("100 samples"), "{err}");
        assert!(FrameResampler::new(8001, 16_000).is_err());
    }
}
