//! Voice activity on real speech: a phrase spoken by espeak-ng (Debian; the project's
//! test command installs it), silence, the phrase again. The VAD must report speech
//! starting and ending around each phrase and nothing in the silence.
#![allow(clippy::unwrap_used, missing_docs)]

use media_engine::vad::{Vad, VadConfig, VadEvent};

mod common;

const RATE: u64 = 16_000;

fn speech() -> Vec<i16> {
    common::espeak(
        "Hello, thank you for calling. How can I help you today?",
        16_000,
    )
}

fn events(audio: &[i16]) -> Vec<VadEvent> {
    let mut vad = Vad::new(VadConfig::default());
    let mut out = Vec::new();
    for frame in audio.chunks(320) {
        vad.feed(frame, |e| out.push(e));
    }
    out
}

fn ms(samples: u64) -> i64 {
    (samples * 1000 / RATE) as i64
}

#[test]
fn speech_starts_and_ends_around_each_phrase() {
    let phrase = speech();
    let gap = vec![0i16; 2 * RATE as usize];
    let audio: Vec<i16> = [&phrase[..], &gap, &phrase, &gap].concat();
    let got = events(&audio);
    let starts: Vec<i64> = got
        .iter()
        .filter_map(|e| {
            if let VadEvent::SpeechStarted { at_sample } = e {
                Some(ms(*at_sample))
            } else {
                None
            }
        })
        .collect();
    let ends: Vec<i64> = got
        .iter()
        .filter_map(|e| {
            if let VadEvent::SpeechEnded { at_sample } = e {
                Some(ms(*at_sample))
            } else {
                None
            }
        })
        .collect();
    let phrase_ms = ms(phrase.len() as u64);
    let second = phrase_ms + 2000;
    assert!(
        matches!(got.first(), Some(VadEvent::SpeechStarted { .. })),
        "{got:?}"
    );
    assert!(
        matches!(got.last(), Some(VadEvent::SpeechEnded { .. })),
        "{got:?}"
    );
    assert!(
        starts[0] < 400,
        "speech heard from {} ms: {got:?}",
        starts[0]
    );
    // No speech inside either gap (after the phrase's own trailing silence).
    assert!(
        starts
            .iter()
            .all(|&s| s < phrase_ms || (s >= second - 100 && s < second + phrase_ms)),
        "starts {starts:?}, phrase {phrase_ms} ms"
    );
    assert!(
        ends.iter().any(|&e| e > phrase_ms - 800 && e <= phrase_ms),
        "an end near {phrase_ms} ms: {ends:?}"
    );
    assert!(
        starts
            .iter()
            .any(|&s| (second - 100..second + 400).contains(&s)),
        "a start near {second} ms: {starts:?}"
    );
}

#[test]
fn silence_is_not_speech() {
    assert!(events(&vec![0i16; 5 * RATE as usize]).is_empty());
}
