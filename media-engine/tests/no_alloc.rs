//! The per-packet path allocates nothing (issue: media-engine, Design): the real
//! worker loop on real sockets, 50 bridged calls relaying 50 packets/s each way and 10
//! legs playing a looping prompt while decoding, detecting in-band DTMF and (one)
//! recording (with VAD and a fork), and an Opus leg bridged to a PCMU leg (both
//! directions transcoded), under a counting allocator for the whole process
//! (`stats_alloc`). The window is measured
//! in steady state, after the legs were opened and their first RTCP reports went out
//! (the next ones come at least 2.5 s later: RFC 3550 section 6.3.1 spreads the 5 s
//! interval over [0.5, 1.5]), so only receiving, latching, statistics, relaying and
//! polling, and the 20 ms tick's decode, detection, playback, encoding and
//! recording run in it. The peers send and receive with buffers made beforehand, so they
//! allocate nothing either; this file holds one test so nothing else runs meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::System;
use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

mod bridged;

use media_engine::engine::{Engine, EngineConfig, LegParams, Source};
use media_engine::fork::ForkDirections;
use media_engine::wav::{Prompt, RecordLayout};
use rtp_types::RtpPacketBuilder;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const CALLS: usize = 50;
/// Legs that play a prompt, decode, detect and (one of them) record.
const PLAYING: usize = 10;

#[test]
fn relaying_allocates_nothing_per_packet() {
    let base = 40_000 + (std::process::id() % 90) as u16 * 260;
    let (engine, _events) = Engine::start(EngineConfig {
        ip: Ipv4Addr::LOCALHOST.into(),
        rtp_ports: base..=base + 259,
        workers: 2,
        event_queue: 1024,
    })
    .expect("engine starts");
    let mut peers = Vec::new();
    for _ in 0..CALLS {
        let pa = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let pb = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        pa.set_nonblocking(true).unwrap();
        pb.set_nonblocking(true).unwrap();
        let (a, b) = bridged::bridged_call(&engine, &pa, &pb);
        peers.push((pa, a.local_rtp));
        peers.push((pb, b.local_rtp));
    }
    // Legs that play (a looping prompt), decode and detect in-band DTMF, and record,
    // each fed by its own peer like the bridged ones.
    let prompt = std::sync::Arc::new(Prompt {
        rate: 8000,
        samples: vec![1000i16; 8000].into(),
    });
    let dir = tempfile::tempdir().unwrap();
    let mut forks = Vec::new();
    for i in 0..PLAYING {
        let peer = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        peer.set_nonblocking(true).unwrap();
        let leg = engine
            .open(LegParams {
                remote: Some(peer.local_addr().unwrap()),
                inband_dtmf: true,
                ..LegParams::default()
            })
            .unwrap();
        engine
            .play(
                leg.id,
                Source::Prompt {
                    prompt: prompt.clone(),
                    times: 0,
                },
            )
            .unwrap();
        if i == 0 {
            engine
                .record_start(leg.id, &dir.path().join("r.wav"), RecordLayout::Stereo)
                .unwrap();
            engine.vad(leg.id, true).unwrap();
            forks.push(engine.fork(leg.id, ForkDirections::Both, 64).unwrap());
        }
        peers.push((peer, leg.local_rtp));
    }
    // An Opus leg bridged to a PCMU leg: each direction decoded and re-encoded on
    // the tick (libopus codes in place; nothing of ours allocates).
    let opus_peer = peers.len();
    let po = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let pu = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    po.set_nonblocking(true).unwrap();
    pu.set_nonblocking(true).unwrap();
    let o = engine
        .open(LegParams {
            remote: Some(po.local_addr().unwrap()),
            audio_pt: 111,
            opus: true,
            ..LegParams::default()
        })
        .unwrap();
    let u = engine
        .open(LegParams {
            remote: Some(pu.local_addr().unwrap()),
            place_with: Some(o.id),
            ..LegParams::default()
        })
        .unwrap();
    engine.bridge(o.id, u.id).unwrap();
    peers.push((po, o.local_rtp));
    peers.push((pu, u.local_rtp));
    let mut encoder =
        opus::Encoder::new(8000, opus::Channels::Mono, opus::Application::Voip).unwrap();
    let mut opus_frame = [0u8; 400];
    let n = encoder.encode(&[500i16; 160], &mut opus_frame).unwrap();
    let mut packets: Vec<Vec<u8>> = (0..peers.len())
        .map(|i| {
            let (pt, payload) = if i == opus_peer {
                (111, &opus_frame[..n])
            } else {
                (0, &[0xffu8; 160][..])
            };
            RtpPacketBuilder::<&[u8], &[u8]>::new()
                .payload_type(pt)
                .ssrc(i as u32)
                .payload(payload)
                .write_vec()
                .unwrap()
        })
        .collect();
    let mut buf = [0u8; 1500];
    let mut relayed = 0u64;
    let mut tick = |seq: u16, relayed: &mut u64| {
        for ((socket, to), packet) in peers.iter().zip(packets.iter_mut()) {
            packet[2..4].copy_from_slice(&seq.to_be_bytes());
            packet[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
            let _ = socket.send_to(packet, *to);
        }
        std::thread::sleep(Duration::from_millis(20));
        for (socket, _) in &peers {
            while let Ok((n, _)) = socket.recv_from(&mut buf) {
                if n == 172 {
                    *relayed += 1;
                }
            }
        }
    };
    // Warm up: latching, the first RTCP reports, the kernel's socket buffers.
    let start = Instant::now();
    let mut seq = 0u16;
    while start.elapsed() < Duration::from_millis(500) {
        tick(seq, &mut relayed);
        seq += 1;
    }
    let warm = relayed;
    let region = Region::new(GLOBAL);
    let window = Instant::now();
    while window.elapsed() < Duration::from_millis(1200) {
        tick(seq, &mut relayed);
        seq += 1;
    }
    let change = region.change();
    let in_window = relayed - warm;
    assert!(
        in_window > 50 * CALLS as u64,
        "only {in_window} packets relayed in the window"
    );
    assert_eq!(
        change.allocations + change.reallocations,
        0,
        "{} packets relayed, {change:?}",
        in_window
    );
}
