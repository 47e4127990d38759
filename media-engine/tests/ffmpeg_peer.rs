//! RTP with an outside peer that needs no SIP: Debian's ffmpeg (see
//! ../shared/TESTING.md). ffmpeg sends a WAV into a leg that records it, and the
//! recording must match the source (normalised correlation above 0.9 once aligned);
//! ffmpeg receives what a leg plays, and the decoded audio must have the tone's pitch.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::net::{Ipv4Addr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use media_engine::analysis::frequency;
use media_engine::engine::{Engine, EngineConfig, LegParams, MediaEvent, Source};
use media_engine::tone::{Segment, Tone};
use media_engine::wav::RecordLayout;

/// One ffmpeg test at a time: each paces real-time audio through ffmpeg and an
/// engine worker, and two at once on a 2-core machine share its two cores.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn engine() -> (Engine, std::sync::mpsc::Receiver<MediaEvent>) {
    let base = 44_000 + (std::process::id() % 100) as u16 * 20;
    Engine::start(EngineConfig {
        ip: Ipv4Addr::LOCALHOST.into(),
        rtp_ports: base..=base + 19,
        workers: 1,
        event_queue: 256,
    })
    .expect("engine starts")
}

fn ffmpeg() -> Command {
    let mut c = Command::new("ffmpeg");
    c.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"]);
    c
}

/// The best normalised correlation of `b` against `a` over the lags in `lags`.
fn best_correlation(a: &[i16], b: &[i16], lags: std::ops::Range<usize>) -> (f64, usize) {
    let n = a.len().min(8000 * 2);
    let energy = |x: &[i16]| x.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>();
    let ea = energy(&a[..n]);
    lags.filter(|lag| lag + n <= b.len())
        .map(|lag| {
            let w = &b[lag..lag + n];
            let dot: f64 = a[..n]
                .iter()
                .zip(w)
                .map(|(x, y)| f64::from(*x) * f64::from(*y))
                .sum();
            (dot / (ea * energy(w)).sqrt().max(1.0), lag)
        })
        .fold((0.0, 0), |best, c| if c.0 > best.0 { c } else { best })
}

#[test]
fn a_wav_sent_by_ffmpeg_is_recorded_faithfully() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source.wav");
    // Two seconds of a sweep, 300 Hz to 3 kHz: no two moments alike, so only the
    // right alignment correlates.
    let status = Command::new("sox")
        .args(["-n", "-r", "8000", "-c", "1", "-b", "16"])
        .arg(&source)
        .args(["synth", "2", "sine", "300-3000", "vol", "0.5"])
        .status()
        .expect("sox (scripts/test installs it)");
    assert!(status.success());
    let reference = common::sox_raw(source.to_str().unwrap(), 8000, &[]);

    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (engine, events) = engine();
    let leg = engine.open(LegParams::default()).unwrap();
    let recording = dir.path().join("recording.wav");
    engine
        .record_start(leg.id, &recording, RecordLayout::Stereo)
        .unwrap();
    let status = ffmpeg()
        .arg("-i")
        .arg(&source)
        // 20 ms packets, paced as a phone sends them (`-re` would pace the WAV
        // demuxer's 256 ms blocks: bursts no jitter buffer should have to hide).
        .args([
            "-af",
            "asetnsamples=n=160,arealtime",
            "-ar",
            "8000",
            "-ac",
            "1",
        ])
        .args(["-acodec", "pcm_mulaw", "-f", "rtp"])
        .arg(format!("rtp://127.0.0.1:{}", leg.local_rtp.port()))
        .stdout(Stdio::null())
        .status()
        .expect("ffmpeg (scripts/test installs it)");
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(200));
    engine.record_stop(leg.id).unwrap();
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        match events.recv_timeout(Duration::from_millis(100)) {
            Ok(MediaEvent::RecordingFinished { error, .. }) => {
                assert_eq!(error, None);
                break;
            }
            _ if Instant::now() > end => panic!("no RecordingFinished"),
            _ => {}
        }
    }
    let mut reader = hound::WavReader::open(&recording).unwrap();
    let left: Vec<i16> = reader
        .samples::<i16>()
        .map(Result::unwrap)
        .step_by(2)
        .collect();
    assert!(
        left.len() >= reference.len(),
        "{} recorded of {}",
        left.len(),
        reference.len()
    );
    // The sweep starts when ffmpeg does, which on a busy machine (the test suite just
    // built) can be well over a second after the recording: search around the first
    // loud sample rather than from the recording's start.
    let onset = left.iter().position(|s| s.abs() > 2000).unwrap_or(0);
    let (corr, lag) = best_correlation(&reference, &left, onset.saturating_sub(800)..onset + 800);
    println!("correlation {corr:.4} at lag {lag}");
    assert!(corr > 0.9, "correlation {corr:.3} at lag {lag}");
}

#[test]
fn ffmpeg_hears_the_tone_a_leg_plays() {
    let dir = tempfile::tempdir().unwrap();
    // An even port with the one above free, for ffmpeg's RTP and RTCP.
    let port = (20_000u16..30_000)
        .step_by(2)
        .map(|p| p + (std::process::id() % 2000) as u16 * 2)
        .find(|p| {
            UdpSocket::bind((Ipv4Addr::LOCALHOST, *p)).is_ok()
                && UdpSocket::bind((Ipv4Addr::LOCALHOST, *p + 1)).is_ok()
        })
        .unwrap();
    let sdp = dir.path().join("in.sdp");
    std::fs::write(
        &sdp,
        format!(
            "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=leg\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        ),
    )
    .unwrap();
    let raw = dir.path().join("heard.raw");
    let mut child = ffmpeg()
        .args(["-protocol_whitelist", "file,udp,rtp", "-i"])
        .arg(&sdp)
        .args(["-t", "1", "-ar", "8000", "-ac", "1", "-f", "s16le"])
        .arg(&raw)
        .stdout(Stdio::null())
        .spawn()
        .expect("ffmpeg (scripts/test installs it)");
    std::thread::sleep(Duration::from_millis(500));
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (engine, _events) = engine();
    let leg = engine
        .open(LegParams {
            remote: Some(format!("127.0.0.1:{port}").parse().unwrap()),
            ..LegParams::default()
        })
        .unwrap();
    let tone = Tone::custom(
        &[Segment {
            freqs: [1200.0, 0.0],
            // Long enough for an ffmpeg that is slow to start on a busy machine.
            ms: 15_000,
        }],
        false,
    );
    engine.play(leg.id, Source::Tone(tone)).unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("ffmpeg never finished: it heard nothing");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    let bytes = std::fs::read(&raw).unwrap();
    let pcm: Vec<i16> = bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    assert!(pcm.len() >= 7000, "{} samples", pcm.len());
    let f = frequency(&pcm[800..], 8000);
    assert!((f - 1200.0).abs() < 20.0, "{f} Hz");
}
