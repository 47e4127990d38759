//! Helpers the media tests share: an engine on a private slice of ports, a peer
//! socket, and audio made by Debian's sox and espeak-ng.
#![allow(dead_code)]

use std::net::{Ipv4Addr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use media_engine::engine::{Engine, EngineConfig, MediaEvent};

/// One worker on 40 ports from `base`, shifted per test process so parallel runs of
/// the test binaries keep apart.
pub fn engine(base: u16) -> (Engine, Receiver<MediaEvent>) {
    let base = base + (std::process::id() % 50) as u16 * 40;
    Engine::start(EngineConfig {
        ip: Ipv4Addr::LOCALHOST.into(),
        rtp_ports: base..=base + 39,
        workers: 1,
        event_queue: 1024,
    })
    .expect("engine starts")
}

/// A peer's socket on loopback that waits at most 100 ms for a packet.
pub fn peer() -> UdpSocket {
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("peer binds");
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    s
}

/// Receives RTP at `peer` for `ms`: (payload type, marker, timestamp, payload) of
/// each packet. RTCP meant for a neighbouring port's peer can land here (another
/// test's leg reports to its peer's port + 1): RFC 5761 tells it apart.
pub fn receive_rtp(peer: &UdpSocket, ms: u64) -> Vec<(u8, bool, u32, Vec<u8>)> {
    let end = Instant::now() + Duration::from_millis(ms);
    let mut out = Vec::new();
    let mut buf = [0u8; 1500];
    while Instant::now() < end {
        if let Ok(n) = peer.recv(&mut buf)
            && n >= 2
            && !(192..=223).contains(&buf[1])
            && let Ok(p) = rtp_types::RtpPacket::parse(&buf[..n])
        {
            out.push((
                p.payload_type(),
                p.marker_bit(),
                p.timestamp(),
                p.payload().to_vec(),
            ));
        }
    }
    out
}

/// Runs sox on `input` (a file, or `-n` with `effects` to synthesise) and returns raw
/// signed 16-bit mono samples at `rate`.
pub fn sox_raw(input: &str, rate: u32, effects: &[&str]) -> Vec<i16> {
    let out = Command::new("sox")
        .arg(input)
        .args([
            "-r",
            &rate.to_string(),
            "-c",
            "1",
            "-b",
            "16",
            "-e",
            "signed-integer",
            "-t",
            "raw",
            "-",
        ])
        .args(effects)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run sox ({e}): install Debian's sox (scripts/test does)")
        });
    assert!(
        out.status.success(),
        "sox {input} {effects:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Converts an audio file to raw samples at `rate`.
pub fn sox_to_raw(input: &Path, rate: u32) -> Vec<i16> {
    sox_raw(&input.to_string_lossy(), rate, &[])
}

/// `text` spoken by espeak-ng (US English, 150 words a minute) as raw samples at
/// `rate`.
pub fn espeak(text: &str, rate: u32) -> Vec<i16> {
    let out = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "150", "--stdout", text])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run espeak-ng ({e}): install Debian's espeak-ng (scripts/test does)")
        });
    assert!(out.status.success());
    let dir = tempfile::tempdir().expect("a temp dir");
    let wav = dir.path().join("phrase.wav");
    std::fs::write(&wav, &out.stdout).expect("written");
    sox_to_raw(&wav, rate)
}
