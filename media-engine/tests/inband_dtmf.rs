//! In-band DTMF detection on real audio: tones made with sox (Debian's sox; the
//! project's test command installs it), with 5 dB twist and with noise at 10 dB SNR,
//! and a minute of speech from espeak-ng that must give no digit.
#![allow(clippy::unwrap_used, missing_docs)]

use std::process::Command;

use media_engine::dtmf::goertzel::InbandDetector;

mod common;

/// Runs sox with `args` writing raw 8 kHz signed 16-bit mono.
fn sox(args: &[&str]) -> Vec<i16> {
    common::sox_raw("-n", 8000, args)
}

const ROWS: [u32; 4] = [697, 770, 852, 941];
const COLS: [u32; 4] = [1209, 1336, 1477, 1633];
const KEYS: &str = "123A456B789C*0#D";

fn freqs(key: char) -> (u32, u32) {
    let i = KEYS.find(key).unwrap();
    (ROWS[i / 4], COLS[i % 4])
}

/// One key: the row tone at `row_gain`, the column tone at `col_gain` (sox `vol`), for
/// `ms`, then `gap_ms` of silence.
fn key_tone(key: char, row_gain: f32, col_gain: f32, ms: u32, gap_ms: u32) -> Vec<i16> {
    let (r, c) = freqs(key);
    let secs = format!("{:.3}", f64::from(ms) / 1000.0);
    let row = sox(&[
        "synth",
        &secs,
        "sine",
        &r.to_string(),
        "vol",
        &row_gain.to_string(),
    ]);
    let col = sox(&[
        "synth",
        &secs,
        "sine",
        &c.to_string(),
        "vol",
        &col_gain.to_string(),
    ]);
    let mut out: Vec<i16> = row
        .iter()
        .zip(&col)
        .map(|(a, b)| a.saturating_add(*b))
        .collect();
    out.extend(std::iter::repeat_n(0, (gap_ms * 8) as usize));
    out
}

fn detect(samples: &[i16]) -> String {
    let mut det = InbandDetector::new();
    let mut out = String::new();
    for frame in samples.chunks(160) {
        det.feed(frame, |d| out.push(d.key));
    }
    det.finish(|d| out.push(d.key));
    out
}

fn power(s: &[i16]) -> f64 {
    s.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>() / s.len().max(1) as f64
}

#[test]
fn every_key_from_sox() {
    let audio: Vec<i16> = KEYS
        .chars()
        .flat_map(|k| key_tone(k, 0.3, 0.3, 80, 60))
        .collect();
    assert_eq!(detect(&audio), KEYS);
}

#[test]
fn five_db_twist_either_way() {
    // 5 dB is an amplitude ratio of 0.562.
    let normal: Vec<i16> = "159#"
        .chars()
        .flat_map(|k| key_tone(k, 0.4, 0.4 * 0.562, 80, 60))
        .collect();
    assert_eq!(
        detect(&normal),
        "159#",
        "row tone 5 dB above the column tone"
    );
    let reverse: Vec<i16> = "260*"
        .chars()
        .flat_map(|k| key_tone(k, 0.4 * 0.562, 0.4, 80, 60))
        .collect();
    assert_eq!(
        detect(&reverse),
        "260*",
        "column tone 5 dB above the row tone"
    );
}

#[test]
fn noise_at_10_db_snr() {
    let tones: Vec<i16> = "3178"
        .chars()
        .flat_map(|k| key_tone(k, 0.25, 0.25, 100, 80))
        .collect();
    let noise = sox(&[
        "synth",
        &format!("{:.3}", tones.len() as f64 / 8000.0),
        "whitenoise",
        "vol",
        "0.2",
    ]);
    // Scale the noise so its power is a tenth of the tones' power while they sound.
    let sounding: Vec<i16> = tones.iter().copied().filter(|s| *s != 0).collect();
    let scale = (power(&sounding) / 10.0 / power(&noise)).sqrt();
    let mixed: Vec<i16> = tones
        .iter()
        .zip(noise.iter().chain(std::iter::repeat(&0)))
        .map(|(t, n)| (f64::from(*t) + f64::from(*n) * scale).clamp(-32768.0, 32767.0) as i16)
        .collect();
    let snr = 10.0 * (power(&sounding) / (power(&noise) * scale * scale)).log10();
    assert!((snr - 10.0).abs() < 0.1, "SNR {snr:.2} dB");
    assert_eq!(detect(&mixed), "3178");
}

#[test]
fn a_minute_of_speech_gives_no_digit() {
    let text = "Thank you for calling. Your call is important to us. Please listen carefully, as our menu \
options have changed. For account balances and recent payments, stay on the line. To speak with someone \
about a new order, please hold while we find the next available representative. Our offices are open from \
eight in the morning until six in the evening, Monday through Friday, and from nine until one on Saturdays. \
You can also visit our website to track a delivery, update your address, or download a copy of your last \
statement. If you are calling about a service outage in your area, we are aware of the problem and our \
engineers are working to restore service as quickly as possible. We apologise for the inconvenience.";
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("speech.wav");
    let mut speech = Vec::new();
    while speech.len() < 60 * 8000 {
        let status = Command::new("espeak-ng")
            .args(["-v", "en-us", "-s", "150", "-w"])
            .arg(&wav)
            .arg(text)
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run espeak-ng ({e}): install Debian's espeak-ng (scripts/test does)")
            });
        assert!(status.success());
        speech.extend(common::sox_to_raw(&wav, 8000));
    }
    assert!(speech.len() >= 60 * 8000, "at least a minute of speech");
    assert_eq!(detect(&speech), "", "no false digits in speech");
}
