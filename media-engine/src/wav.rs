//! WAV files: prompts read into 16-bit mono at their own rate (PCM 8/16/24/32-bit,
//! float, mu-law and A-law, mono or stereo), shared across calls through a cache, and
//! recordings written as they go (stereo: the caller left, the other party right; or
//! mixed mono). Reading is our own RIFF parser because `hound` has no G.711 formats
//! (WAVE_FORMAT_ALAW 6, WAVE_FORMAT_MULAW 7), which carriers' prompt libraries use;
//! writing is `hound`, whose `flush` rewrites the header so a recording cut short by a
//! crash still plays up to its last second.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::codec::G711;

/// What is wrong with a WAV file.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    /// It could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// It is not a WAV file we can play.
    #[error("not a playable WAV file: {0}")]
    Format(String),
    /// The recording could not be written.
    #[error("writing the recording: {0}")]
    Write(#[from] hound::Error),
}

/// A decoded prompt: mono 16-bit samples at `rate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// Samples per second.
    pub rate: u32,
    /// The audio.
    pub samples: Arc<[i16]>,
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Decodes a WAV file's bytes.
pub fn decode(bytes: &[u8]) -> Result<Prompt, WavError> {
    let bad = |what: &str| WavError::Format(what.to_owned());
    if bytes.get(0..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WAVE") {
        return Err(bad("no RIFF/WAVE header"));
    }
    let mut at = 12;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    let mut data: Option<&[u8]> = None;
    while let (Some(id), Some(len)) = (bytes.get(at..at + 4), le32(bytes, at + 4)) {
        let body_start = at + 8;
        // A data chunk whose size was never filled in (a writer that crashed) runs to the end.
        let body_end = body_start.saturating_add(len as usize).min(bytes.len());
        let body = &bytes[body_start.min(bytes.len())..body_end];
        match id {
            b"fmt " => {
                let tag = le16(body, 0).ok_or_else(|| bad("short fmt chunk"))?;
                let channels = le16(body, 2).ok_or_else(|| bad("short fmt chunk"))?;
                let rate = le32(body, 4).ok_or_else(|| bad("short fmt chunk"))?;
                let bits = le16(body, 14).ok_or_else(|| bad("short fmt chunk"))?;
                // WAVE_FORMAT_EXTENSIBLE: the real tag opens the sub-format GUID.
                let tag = if tag == 0xfffe {
                    le16(body, 24).ok_or_else(|| bad("short extensible fmt chunk"))?
                } else {
                    tag
                };
                fmt = Some((tag, channels, rate, bits));
            }
            b"data" => data = Some(body),
            _ => {}
        }
        // Chunks are padded to an even length.
        at = body_start
            .saturating_add(len as usize)
            .saturating_add(len as usize & 1);
    }
    let (tag, channels, rate, bits) = fmt.ok_or_else(|| bad("no fmt chunk"))?;
    let data = data.ok_or_else(|| bad("no data chunk"))?;
    if channels == 0 || channels > 8 || !(1000..=384_000).contains(&rate) {
        return Err(WavError::Format(format!(
            "{channels} channels at {rate} Hz"
        )));
    }
    let width = match (tag, bits) {
        (1, 8 | 16 | 24 | 32) | (3, 32) => usize::from(bits / 8),
        (6 | 7, 8) => 1,
        _ => {
            return Err(WavError::Format(format!(
                "format tag {tag} with {bits} bits (PCM 8/16/24/32, float 32, A-law and mu-law are playable)"
            )));
        }
    };
    let sample = |s: &[u8]| -> i16 {
        match (tag, width) {
            (1, 1) => (i16::from(s[0]) - 128) << 8,
            (1, 2) => i16::from_le_bytes([s[0], s[1]]),
            (1, 3) => i16::from_le_bytes([s[1], s[2]]),
            (1, _) => i16::from_le_bytes([s[2], s[3]]),
            (3, _) => {
                (f32::from_le_bytes([s[0], s[1], s[2], s[3]]).clamp(-1.0, 1.0) * 32767.0) as i16
            }
            (6, _) => G711::Alaw.decode_sample(s[0]),
            _ => G711::Ulaw.decode_sample(s[0]),
        }
    };
    let frame = width * usize::from(channels);
    let samples: Arc<[i16]> = data
        .chunks_exact(frame)
        .map(|f| {
            let sum: i32 = f.chunks_exact(width).map(|s| i32::from(sample(s))).sum();
            (sum / i32::from(channels)) as i16
        })
        .collect();
    Ok(Prompt { rate, samples })
}

/// Decoded prompts shared across calls, by path: a prompt is read once however many
/// calls play it. The lock is taken when a playback starts, not per frame.
#[derive(Debug, Default)]
pub struct PromptCache {
    prompts: Mutex<HashMap<PathBuf, Arc<Prompt>>>,
}

impl PromptCache {
    /// The prompt at `path`, read and decoded the first time.
    pub fn get(&self, path: &Path) -> Result<Arc<Prompt>, WavError> {
        if let Some(p) = self.prompts.lock().ok().and_then(|m| m.get(path).cloned()) {
            return Ok(p);
        }
        let bytes = std::fs::read(path).map_err(|source| WavError::Io {
            path: path.to_owned(),
            source,
        })?;
        let prompt = Arc::new(
            decode(&bytes).map_err(|e| WavError::Format(format!("{}: {e}", path.display())))?,
        );
        if let Ok(mut m) = self.prompts.lock() {
            m.insert(path.to_owned(), prompt.clone());
        }
        Ok(prompt)
    }

    /// The prompt at `path` converted to `rate` Hz (a leg's rate), converted once and
    /// kept for every later call.
    pub fn get_at(&self, path: &Path, rate: u32) -> Result<Arc<Prompt>, WavError> {
        let key = path.with_extension(format!("{rate}hz"));
        if let Some(p) = self.prompts.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(p);
        }
        let original = self.get(path)?;
        let converted = if original.rate == rate {
            original
        } else {
            let samples = crate::resample::resample_all(&original.samples, original.rate, rate)
                .map_err(|e| WavError::Format(format!("{}: {e}", path.display())))?;
            Arc::new(Prompt {
                rate,
                samples: samples.into(),
            })
        };
        if let Ok(mut m) = self.prompts.lock() {
            m.insert(key, converted.clone());
        }
        Ok(converted)
    }
}

/// How a recording lays out the two directions of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordLayout {
    /// The caller left, the other party right.
    Stereo,
    /// Both mixed into one channel.
    Mono,
}

/// A recording being written.
pub struct Recorder {
    writer: hound::WavWriter<BufWriter<File>>,
    layout: RecordLayout,
    frames_since_flush: u32,
    flush_every: u32,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("layout", &self.layout)
            .finish()
    }
}

impl Recorder {
    /// Creates the file; 16-bit PCM at `rate`. The header is rewritten every second of
    /// audio (50 frames of 20 ms).
    pub fn create(path: &Path, layout: RecordLayout, rate: u32) -> Result<Self, WavError> {
        let spec = hound::WavSpec {
            channels: if layout == RecordLayout::Stereo { 2 } else { 1 },
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::create(path, spec).map_err(|e| match e {
            hound::Error::IoError(source) => WavError::Io {
                path: path.to_owned(),
                source,
            },
            other => WavError::Write(other),
        })?;
        Ok(Self {
            writer,
            layout,
            frames_since_flush: 0,
            flush_every: 50,
        })
    }

    /// Adds one frame of each direction (equal lengths; a missing direction is silence).
    pub fn write_frame(&mut self, caller: &[i16], other: &[i16]) -> Result<(), WavError> {
        let n = caller.len().max(other.len());
        for i in 0..n {
            let (a, b) = (
                caller.get(i).copied().unwrap_or(0),
                other.get(i).copied().unwrap_or(0),
            );
            match self.layout {
                RecordLayout::Stereo => {
                    self.writer.write_sample(a)?;
                    self.writer.write_sample(b)?;
                }
                RecordLayout::Mono => self.writer.write_sample(a.saturating_add(b))?,
            }
        }
        self.frames_since_flush += 1;
        if self.frames_since_flush >= self.flush_every {
            self.writer.flush()?;
            self.frames_since_flush = 0;
        }
        Ok(())
    }

    /// Writes the final header and closes the file.
    pub fn finish(self) -> Result<(), WavError> {
        Ok(self.writer.finalize()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::frequency;
    use crate::tone::{Tone, ToneGenerator};

    fn tone_frames(freq_tone: Tone, rate: u32, frames: usize) -> Vec<Vec<i16>> {
        let mut g = ToneGenerator::new(freq_tone, rate);
        (0..frames)
            .map(|_| {
                let mut f = vec![0i16; rate as usize / 50];
                g.fill(&mut f);
                f
            })
            .collect()
    }

    #[test]
    fn a_stereo_recording_of_known_tones_decodes_to_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("call.wav");
        let mut rec = Recorder::create(&path, RecordLayout::Stereo, 8000).expect("creates");
        let left = tone_frames(Tone::ringback_eu(), 8000, 50);
        let right = tone_frames(Tone::beep(), 8000, 50);
        for (l, r) in left.iter().zip(&right) {
            rec.write_frame(l, r).expect("writes");
        }
        rec.finish().expect("finishes");
        let mut reader = hound::WavReader::open(&path).expect("hound reads it");
        assert_eq!(reader.spec().channels, 2);
        let all: Vec<i16> = reader
            .samples::<i16>()
            .map(|s| s.expect("sample"))
            .collect();
        let l: Vec<i16> = all.iter().step_by(2).copied().collect();
        let r: Vec<i16> = all.iter().skip(1).step_by(2).copied().take(1800).collect();
        assert!(
            (frequency(&l, 8000) - 425.0).abs() < 5.0,
            "left {}",
            frequency(&l, 8000)
        );
        assert!(
            (frequency(&r, 8000) - 1000.0).abs() < 10.0,
            "right {}",
            frequency(&r, 8000)
        );
    }

    #[test]
    fn a_recording_cut_short_still_plays_to_its_last_second() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("crash.wav");
        let mut rec = Recorder::create(&path, RecordLayout::Mono, 8000).expect("creates");
        for f in tone_frames(Tone::beep(), 8000, 60) {
            rec.write_frame(&f, &[]).expect("writes");
        }
        // The process dies here: no finish, no drop.
        std::mem::forget(rec);
        let reader = hound::WavReader::open(&path).expect("a valid header after the flush");
        assert!(reader.len() >= 8000, "{} samples readable", reader.len());
    }

    #[test]
    fn g711_and_8_bit_and_stereo_prompts_decode_to_mono_16_bit() {
        fn wav(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
            let mut v = Vec::new();
            v.extend_from_slice(b"RIFF");
            v.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
            v.extend_from_slice(b"WAVEfmt ");
            v.extend_from_slice(&16u32.to_le_bytes());
            v.extend_from_slice(&tag.to_le_bytes());
            v.extend_from_slice(&channels.to_le_bytes());
            v.extend_from_slice(&rate.to_le_bytes());
            let align = channels * bits / 8;
            v.extend_from_slice(&(rate * u32::from(align)).to_le_bytes());
            v.extend_from_slice(&align.to_le_bytes());
            v.extend_from_slice(&bits.to_le_bytes());
            v.extend_from_slice(b"data");
            v.extend_from_slice(&(data.len() as u32).to_le_bytes());
            v.extend_from_slice(data);
            v
        }
        let ulaw =
            decode(&wav(7, 1, 8000, 8, &[G711::Ulaw.encode_sample(1000), 0xff])).expect("mu-law");
        assert_eq!(ulaw.rate, 8000);
        assert_eq!(
            ulaw.samples[0],
            G711::Ulaw.decode_sample(G711::Ulaw.encode_sample(1000))
        );
        assert_eq!(ulaw.samples[1], 0);
        let alaw = decode(&wav(6, 1, 8000, 8, &[G711::Alaw.encode_sample(-500)])).expect("A-law");
        assert!((i32::from(alaw.samples[0]) + 500).abs() < 40);
        let pcm8 = decode(&wav(1, 1, 11_025, 8, &[128, 255, 0])).expect("8-bit");
        assert_eq!(&pcm8.samples[..], &[0, 127 << 8, -128 << 8]);
        let stereo: Vec<u8> = [1000i16, 3000, -2000, 0]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        let st = decode(&wav(1, 2, 44_100, 16, &stereo)).expect("stereo");
        assert_eq!(&st.samples[..], &[2000, -1000]);
        assert!(decode(b"RIFF....WAVE").is_err());
        let err = decode(&wav(85, 1, 8000, 0, &[])).expect_err("MP3 in WAV");
        assert!(err.to_string().contains("format tag 85"), "{err}");
    }

    #[test]
    fn the_cache_reads_a_prompt_once_and_names_a_missing_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("p.wav");
        let mut rec = Recorder::create(&path, RecordLayout::Mono, 16_000).expect("creates");
        rec.write_frame(&[5; 320], &[]).expect("writes");
        rec.finish().expect("finishes");
        let cache = PromptCache::default();
        let a = cache.get(&path).expect("reads");
        let b = cache.get(&path).expect("cached");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!((a.rate, a.samples.len()), (16_000, 320));
        let err = cache
            .get(&dir.path().join("missing.wav"))
            .expect_err("missing");
        assert!(err.to_string().contains("missing.wav"), "{err}");
    }
}
