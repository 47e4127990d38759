//! The engine on real sockets: two legs bridged, each with a peer on loopback. Each
//! peer's packets must come out of the other leg intact, on the leg's own SSRC with
//! consecutive sequence numbers; a stranger's packets must not; a quiet leg raises
//! RtpTimeout; closing reports the statistics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, UdpSocket};
use std::ops::RangeInclusive;
use std::sync::mpsc::Receiver;
use std::time::Duration;

mod bridged;

use media_engine::engine::{Engine, EngineConfig, LegParams, MediaEvent, OpenedLeg, SessionId};
use rtp_types::{RtpPacket, RtpPacketBuilder};

fn engine() -> (Engine, Receiver<MediaEvent>) {
    // A private slice of the port range per test binary run keeps parallel tests apart.
    let base = 30_000 + (std::process::id() % 500) as u16 * 40;
    engine_on(base..=base + 39, 2, 64)
}

/// An engine on loopback with `workers` workers, the RTP ports `rtp_ports` and room
/// for `event_queue` events.
fn engine_on(
    rtp_ports: RangeInclusive<u16>,
    workers: usize,
    event_queue: usize,
) -> (Engine, Receiver<MediaEvent>) {
    Engine::start(EngineConfig {
        ip: Ipv4Addr::LOCALHOST.into(),
        rtp_ports,
        workers,
        event_queue,
    })
    .expect("engine starts")
}

fn peer() -> UdpSocket {
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("peer binds");
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    s
}

fn packet(ssrc: u32, seq: u16, fill: u8) -> Vec<u8> {
    RtpPacketBuilder::<&[u8], &[u8]>::new()
        .payload_type(0)
        .ssrc(ssrc)
        .sequence_number(seq)
        .timestamp(u32::from(seq) * 160)
        .payload(&[fill; 160][..])
        .write_vec()
        .expect("builds")
}

#[test]
fn a_bridge_relays_both_ways_on_each_legs_own_stream() {
    let (engine, events) = engine();
    let (pa, pb) = (peer(), peer());
    let (a, b) = bridged::bridged_call(&engine, &pa, &pb);
    assert_eq!(a.local_rtp.port() % 2, 0, "RTP on an even port");
    std::thread::sleep(Duration::from_millis(50));

    let mut buf = [0u8; 1500];
    let mut seen = Vec::new();
    for i in 0..50u16 {
        pa.send_to(&packet(0x1111, 1000 + i, i as u8), a.local_rtp)
            .unwrap();
        let (n, from) = pb.recv_from(&mut buf).expect("relayed to B's peer");
        assert_eq!(
            from, b.local_rtp,
            "sent from leg B's own port (symmetric RTP)"
        );
        let p = RtpPacket::parse(&buf[..n]).unwrap();
        assert_eq!(p.payload(), &[i as u8; 160][..]);
        seen.push((p.ssrc(), p.sequence_number(), p.timestamp()));
    }
    let ssrc = seen[0].0;
    assert_ne!(ssrc, 0x1111, "the leg's own SSRC");
    for w in seen.windows(2) {
        assert_eq!(w[1].0, ssrc);
        assert_eq!(w[1].1, w[0].1.wrapping_add(1));
        assert_eq!(w[1].2, w[0].2.wrapping_add(160));
    }
    // The other way.
    pb.send_to(&packet(0x2222, 7, 0xab), b.local_rtp).unwrap();
    let (n, _) = pa.recv_from(&mut buf).expect("relayed to A's peer");
    assert_eq!(RtpPacket::parse(&buf[..n]).unwrap().payload()[0], 0xab);

    // A stranger's packet to A is not relayed.
    let stranger = peer();
    stranger
        .send_to(&packet(0x6666, 1, 0x66), a.local_rtp)
        .unwrap();
    pa.send_to(&packet(0x1111, 1050, 0x77), a.local_rtp)
        .unwrap();
    let (n, _) = pb.recv_from(&mut buf).unwrap();
    assert_eq!(
        RtpPacket::parse(&buf[..n]).unwrap().payload()[0],
        0x77,
        "the stranger's packet was dropped"
    );
    // Not RTP at all.
    pa.send_to(b"hello", a.local_rtp).unwrap();

    let stats = engine.stats(a.id).unwrap().expect("open");
    assert_eq!(
        stats.packets_received, 51,
        "50, then the one after the stranger's"
    );
    assert_eq!(stats.lost, 0);
    engine.close(a.id).unwrap();
    let closed = events.recv_timeout(Duration::from_secs(2)).unwrap();
    match closed {
        MediaEvent::Closed { session, stats } => {
            assert_eq!(session, a.id);
            assert_eq!(stats.packets_dropped, 2, "the stranger's and the garbage");
        }
        other => panic!("expected Closed, got {other:?}"),
    }
}

/// Sends one packet from each peer and checks it comes out at the other.
fn relays_both_ways(pa: &UdpSocket, pb: &UdpSocket, a: &OpenedLeg, b: &OpenedLeg, fill: u8) {
    let mut buf = [0u8; 1500];
    pa.send_to(&packet(0x1111, 1, fill), a.local_rtp).unwrap();
    let (n, _) = pb.recv_from(&mut buf).expect("relayed to B's peer");
    assert_eq!(RtpPacket::parse(&buf[..n]).unwrap().payload()[0], fill);
    pb.send_to(&packet(0x2222, 1, !fill), b.local_rtp).unwrap();
    let (n, _) = pa.recv_from(&mut buf).expect("relayed to A's peer");
    assert_eq!(RtpPacket::parse(&buf[..n]).unwrap().payload()[0], !fill);
}

/// Waits for the Closed event of each of `ids`.
fn closed(events: &Receiver<MediaEvent>, mut ids: Vec<SessionId>) {
    while !ids.is_empty() {
        match events
            .recv_timeout(Duration::from_secs(3))
            .expect("an event")
        {
            MediaEvent::Closed { session, .. } => ids.retain(|id| *id != session),
            other => panic!("expected Closed, got {other:?}"),
        }
    }
}

#[test]
fn legs_on_parked_sockets_relay_on_their_own_worker_and_on_another() {
    // Two pairs of ports and two workers: every leg after the first call's takes a
    // parked pair (not yet rested, as no port is free).
    // Above Linux's ephemeral ports (32768-60999), so no client socket holds one.
    let base = 61_000 + (std::process::id() % 500) as u16 * 8;
    let (engine, events) = engine_on(base..=base + 3, 2, 64);
    let (pa, pb) = (peer(), peer());
    let (a, b) = bridged::bridged_call(&engine, &pa, &pb);
    relays_both_ways(&pa, &pb, &a, &b, 1);
    let first = a.id;
    // A leg id's low byte is its worker's number; this one names the other worker.
    let other = SessionId(first.worker() as u64 ^ 1);
    engine.close(a.id).unwrap();
    engine.close(b.id).unwrap();
    closed(&events, vec![a.id, b.id]);
    // Round 2 on the worker that parked both pairs (it re-points them in its poll),
    // round 3 on the other one (they are closed and bound again), round 4 there
    // again (re-pointed by that worker).
    for (round, worker) in [(2u8, first), (3, other), (4, other)] {
        let (a, b) = bridged::bridged_call_on(&engine, Some(worker), &pa, &pb);
        assert_eq!(a.id.worker(), worker.worker(), "on the worker asked for");
        let mut ports = [a.local_rtp.port(), b.local_rtp.port()];
        ports.sort_unstable();
        assert_eq!(ports, [base, base + 2], "the same two pairs again");
        relays_both_ways(&pa, &pb, &a, &b, round);
        engine.close(a.id).unwrap();
        engine.close(b.id).unwrap();
        closed(&events, vec![a.id, b.id]);
    }
}

/// A leg whose peer never sends, with a 300 ms RTP timeout.
fn quiet_leg(engine: &Engine) -> media_engine::engine::OpenedLeg {
    engine
        .open(LegParams {
            rtp_timeout: Duration::from_millis(300),
            ..LegParams::default()
        })
        .unwrap()
}

#[test]
fn a_quiet_leg_raises_rtp_timeout_once() {
    let (engine, events) = engine();
    let leg = quiet_leg(&engine);
    let event = events
        .recv_timeout(Duration::from_secs(3))
        .expect("an event");
    assert_eq!(event, MediaEvent::RtpTimeout { session: leg.id });
    assert!(
        events.recv_timeout(Duration::from_millis(600)).is_err(),
        "only once"
    );
}

#[test]
fn a_leg_opened_with_its_own_target_reports_there_and_not_on_the_shared_stream() {
    let (engine, shared) = engine();
    let (tx, own) = std::sync::mpsc::channel();
    let leg = engine
        .open_to(
            LegParams {
                rtp_timeout: Duration::from_millis(300),
                ..LegParams::default()
            },
            Box::new(move |event| tx.send(event).expect("the test still listens")),
        )
        .unwrap();
    let other = quiet_leg(&engine);
    let timeout = own.recv_timeout(Duration::from_secs(3)).expect("an event");
    assert_eq!(timeout, MediaEvent::RtpTimeout { session: leg.id });
    engine.close(leg.id).unwrap();
    match own.recv_timeout(Duration::from_secs(3)).expect("its close") {
        MediaEvent::Closed { session, .. } => assert_eq!(session, leg.id),
        other => panic!("expected Closed, got {other:?}"),
    }
    // The target is dropped with the leg: the sender it held is gone.
    assert!(matches!(
        own.recv_timeout(Duration::from_secs(1)),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
    ));
    // The leg opened without a target still reports on the shared stream, and only
    // it does.
    let event = shared
        .recv_timeout(Duration::from_secs(3))
        .expect("an event");
    assert_eq!(event, MediaEvent::RtpTimeout { session: other.id });
    assert!(shared.recv_timeout(Duration::from_millis(400)).is_err());
}

#[test]
fn a_held_leg_waits_and_its_timeout_restarts_when_rtp_is_expected_again() {
    let (engine, events) = engine();
    let leg = quiet_leg(&engine);
    // The peer holds with a=inactive: it sends nothing, and that is fine.
    engine.expect_rtp(leg.id, false).unwrap();
    assert!(
        events.recv_timeout(Duration::from_millis(1200)).is_err(),
        "no timeout while held"
    );
    // Off hold: the 300 ms start again from now.
    let resumed = std::time::Instant::now();
    engine.expect_rtp(leg.id, true).unwrap();
    let event = events
        .recv_timeout(Duration::from_secs(3))
        .expect("an event");
    assert_eq!(event, MediaEvent::RtpTimeout { session: leg.id });
    assert!(resumed.elapsed() >= Duration::from_millis(300));
}

#[test]
fn bridging_legs_on_different_workers_says_what_to_do() {
    let (engine, _events) = engine();
    let a = engine.open(LegParams::default()).unwrap();
    let b = engine.open(LegParams::default()).unwrap();
    let err = engine
        .bridge(a.id, b.id)
        .expect_err("two workers, round robin");
    assert!(err.to_string().contains("place_with"), "{err}");
}

/// Calls (a first leg, then a second placed with it) spread over every worker: the
/// second legs do not count in the round robin (they once put every call on one).
#[test]
fn calls_spread_over_the_workers() {
    let (engine, _events) = engine();
    let mut per_worker = [0usize; 2];
    for _ in 0..4 {
        let a = engine.open(LegParams::default()).unwrap();
        let b = engine
            .open(LegParams {
                place_with: Some(a.id),
                ..LegParams::default()
            })
            .unwrap();
        assert_eq!(a.id.worker(), b.id.worker());
        per_worker[a.id.worker()] += 1;
    }
    assert_eq!(per_worker, [2, 2]);
}

#[test]
fn events_a_slow_reader_cannot_take_yet_wait_in_the_worker_and_are_not_lost() {
    let base = 20_000 + (std::process::id() % 500) as u16 * 20;
    let (engine, events) = engine_on(base..=base + 9, 1, 1);
    let quiet = LegParams {
        rtp_timeout: Duration::from_millis(100),
        ..LegParams::default()
    };
    engine.open(quiet.clone()).unwrap();
    engine.open(quiet).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while engine.events_deferred() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(engine.events_deferred(), 1, "two timeouts, room for one");
    // Both arrive: the second once the first was read (a later tick hands it on).
    for n in 0..2 {
        assert!(
            matches!(
                events.recv_timeout(Duration::from_secs(2)),
                Ok(MediaEvent::RtpTimeout { .. })
            ),
            "timeout event {n} arrives"
        );
    }
}

/// A PCMU leg bridged to a PCMA leg whose SDP numbered telephone-event 96: audio is
/// converted sample by sample and payload types renumbered on the way.
#[test]
fn a_bridge_between_different_formats_converts_them() {
    use media_engine::codec::G711;
    let (engine, _events) = engine();
    let (pa, pb) = (peer(), peer());
    let a = engine
        .open(LegParams {
            remote: Some(pa.local_addr().unwrap()),
            ..LegParams::default()
        })
        .unwrap();
    let b = engine
        .open(LegParams {
            remote: Some(pb.local_addr().unwrap()),
            place_with: Some(a.id),
            audio_pt: 8,
            event_pt: Some(96),
            ..LegParams::default()
        })
        .unwrap();
    engine.bridge(a.id, b.id).unwrap();
    // A 1 kHz tone, 8 samples a period: mu-law from A's peer.
    let pcm: Vec<i16> = (0..160)
        .map(|i| ((i as f64 * std::f64::consts::PI / 4.0).sin() * 8000.0) as i16)
        .collect();
    let mut ulaw = [0u8; 160];
    G711::Ulaw.encode(&pcm, &mut ulaw);
    let audio = RtpPacketBuilder::<&[u8], &[u8]>::new()
        .payload_type(0)
        .ssrc(1)
        .sequence_number(1)
        .payload(&ulaw[..])
        .write_vec()
        .unwrap();
    let event = RtpPacketBuilder::<&[u8], &[u8]>::new()
        .payload_type(101)
        .ssrc(1)
        .sequence_number(2)
        .payload(&[5u8, 0x8a, 0x03, 0x20][..])
        .write_vec()
        .unwrap();
    pa.send_to(&audio, a.local_rtp).unwrap();
    pa.send_to(&event, a.local_rtp).unwrap();
    let mut buf = [0u8; 1500];
    let n = pb.recv(&mut buf).unwrap();
    let got = RtpPacket::parse(&buf[..n]).unwrap();
    assert_eq!(got.payload_type(), 8, "A-law on B's side");
    let mut decoded = [0i16; 160];
    G711::Alaw.decode(got.payload(), &mut decoded);
    for (x, y) in pcm.iter().zip(decoded.iter()) {
        assert!((i32::from(*x) - i32::from(*y)).abs() < 400, "{x} vs {y}");
    }
    let n = pb.recv(&mut buf).unwrap();
    let got = RtpPacket::parse(&buf[..n]).unwrap();
    assert_eq!(
        (got.payload_type(), got.payload()),
        (96, &[5u8, 0x8a, 0x03, 0x20][..])
    );
}

#[test]
fn rtcp_rides_the_rtp_port_with_rtcp_mux() {
    let (engine, _events) = engine();
    let p = peer();
    let leg = engine
        .open(LegParams {
            remote: Some(p.local_addr().unwrap()),
            rtcp_mux: true,
            ..LegParams::default()
        })
        .unwrap();
    engine
        .play(
            leg.id,
            media_engine::engine::Source::Tone(media_engine::tone::Tone::beep()),
        )
        .unwrap();
    for seq in 0..5 {
        p.send_to(&packet(0x5151, seq, 0xff), leg.local_rtp)
            .unwrap();
    }
    // RFC 5761: our sender report comes to the peer's RTP port, told apart from RTP
    // by its packet type (200).
    let mut buf = [0u8; 1500];
    let start = std::time::Instant::now();
    let report = loop {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no RTCP on the RTP port"
        );
        let Ok(n) = p.recv(&mut buf) else { continue };
        if n >= 28 && buf[1] == 200 {
            break buf[..n].to_vec();
        }
    };
    // The peer's receiver report on the same port: 25% of the leg's packets lost, the
    // sender report echoed (LSR, no delay), so the leg can work out the round trip.
    let mut rr = vec![0x81, 201, 0, 7];
    rr.extend_from_slice(&0x5151u32.to_be_bytes());
    rr.extend_from_slice(&report[4..8]);
    rr.extend_from_slice(&[64, 0, 0, 0]);
    rr.extend_from_slice(&[0, 0, 0, 10]);
    rr.extend_from_slice(&[0, 0, 0, 0]);
    rr.extend_from_slice(&report[10..14]);
    rr.extend_from_slice(&[0, 0, 0, 0]);
    p.send_to(&rr, leg.local_rtp).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let stats = engine.stats(leg.id).unwrap().unwrap();
    assert_eq!(stats.remote_fraction_lost, 64, "{stats:?}");
    assert!(stats.rtt_ms.is_some_and(|r| r < 1000.0), "{stats:?}");
    assert_eq!(
        stats.packets_received, 5,
        "the report is not counted as RTP"
    );
}
