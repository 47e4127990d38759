//! Attacks on the SIP and RTP side, each shown failing: a stranger spraying the RTP
//! port range during a live call (it must neither hear the call nor press its
//! keys), INVITEs from an address no provider admits (one 403 each at most, no 100,
//! no retransmission), and a flood from an admitted address (held to its rate, and
//! to its provider's call limit).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::*;

/// RTP ports for one test: a small range, so the attacker can spray all of it.
fn rtp_range(offset: u16) -> (u16, u16) {
    let base = 46_000 + offset + (std::process::id() % 50) as u16 * 40;
    (base, base + 19)
}

/// A stranger on 127.0.0.2 sending bursts of audio and RFC 4733 "9" (six packets in
/// a row of one SSRC, more than any re-latch needs) to every port of `ports` until
/// `stop`; counts what reaches it.
fn spray(ports: (u16, u16), stop: Arc<AtomicBool>, heard: Arc<AtomicU64>) {
    let sock = UdpSocket::bind("127.0.0.2:0").expect("127.0.0.2 is loopback on Linux");
    sock.set_nonblocking(true).unwrap();
    let audio = |seq: u16| {
        rtp_types::RtpPacketBuilder::<&[u8], &[u8]>::new()
            .payload_type(0)
            .ssrc(0xbad0_0bad)
            .sequence_number(seq)
            .timestamp(u32::from(seq) * 160)
            .payload(&[0x55u8; 160][..])
            .write_vec()
            .unwrap()
    };
    let nine: Vec<Vec<u8>> = media_engine::dtmf::rfc4733::send_packets('9', 160, 20, 8000)
        .iter()
        .enumerate()
        .map(|(i, pkt)| {
            rtp_types::RtpPacketBuilder::<&[u8], &[u8]>::new()
                .payload_type(101)
                .marker_bit(pkt.marker)
                .ssrc(0xbad0_0bad)
                .sequence_number(30_000 + i as u16)
                .timestamp(90_000)
                .payload(&pkt.payload[..])
                .write_vec()
                .unwrap()
        })
        .collect();
    let mut seq = 0u16;
    let mut buf = [0u8; 1500];
    while !stop.load(Ordering::Relaxed) {
        for port in (ports.0..=ports.1).step_by(2) {
            let to = SocketAddr::from(([127, 0, 0, 1], port));
            for _ in 0..6 {
                seq = seq.wrapping_add(1);
                let _ = sock.send_to(&audio(seq), to);
            }
            for pkt in &nine {
                let _ = sock.send_to(pkt, to);
            }
            // RTCP too.
            let _ = sock.send_to(
                &[0x80, 200, 0, 6, 0xba, 0xd0, 0x0b, 0xad],
                (to.ip(), port + 1),
            );
        }
        while let Ok((_, _)) = sock.recv_from(&mut buf) {
            heard.fetch_add(1, Ordering::Relaxed);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    while let Ok((_, _)) = sock.recv_from(&mut buf) {
        heard.fetch_add(1, Ordering::Relaxed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_spraying_the_rtp_ports_neither_hears_the_call_nor_presses_its_keys() {
    let ports = rtp_range(0);
    let server = Server::start(Options {
        args: vec!["--rtp-ports".into(), format!("{}-{}", ports.0, ports.1)],
        ..Options::default()
    });
    let (ann, _) = customer_with_number(
        &server,
        "ann",
        "+15551230040",
        json!({"name": "menu", "actions": [
            {"type": "answer"},
            {"type": "talk", "option": {"text": "Welcome. Press one.", "language": "en-US"}},
            {"type": "digits_receive", "option": {"duration": 8000, "length": 1}},
            {"type": "branch", "option": {"target_ids": {"1": "legit", "9": "attacker"}, "default_target_id": "none"}},
            {"id": "legit", "type": "talk", "option": {"text": "One.", "language": "en-US"}, "next_id": "bye"},
            {"id": "attacker", "type": "talk", "option": {"text": "Nine.", "language": "en-US"}, "next_id": "bye"},
            {"id": "none", "type": "talk", "option": {"text": "Nothing.", "language": "en-US"}},
            {"id": "bye", "type": "hangup"}
        ]}),
    )
    .await;

    // The stranger starts before the call does, so its packets are there first.
    let stop = Arc::new(AtomicBool::new(false));
    let stolen = Arc::new(AtomicU64::new(0));
    let attacker = {
        let (stop, stolen) = (stop.clone(), stolen.clone());
        std::thread::spawn(move || spray(ports, stop, stolen))
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The caller's SDP names one port; behind its "NAT" it sends from another, as
    // a real NAT'd phone does: the platform must follow it there (same host).
    let sdp_side = media_socket();
    let nat_side = media_socket();
    let sipp = sipp_call(
        server.sip,
        "+15551230040",
        sdp_side.local_addr().unwrap().port(),
    );
    let platform = first_sender(&sdp_side);
    let mut to_nat_side = 0;
    let started = std::time::Instant::now();
    let mut buf = [0u8; 1500];
    let mut k: u16 = 0;
    while started.elapsed() < Duration::from_secs(6) {
        let raw = rtp_types::RtpPacketBuilder::<&[u8], &[u8]>::new()
            .payload_type(0)
            .ssrc(0x600d)
            .sequence_number(k)
            .timestamp(u32::from(k) * 160)
            .payload(&[0xffu8; 160][..])
            .write_vec()
            .unwrap();
        nat_side.send_to(&raw, platform).unwrap();
        k += 1;
        if k == 100 {
            press(&nat_side, platform, '1');
        }
        if nat_side.recv_from(&mut buf).is_ok() {
            to_nat_side += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = sipp_done(sipp).await;
    stop.store(true, Ordering::Relaxed);
    attacker.join().unwrap();
    assert!(status.success(), "SIPp: {status:?}\n{}", server.printed());

    assert_eq!(
        stolen.load(Ordering::Relaxed),
        0,
        "packets of the call reached the stranger"
    );
    assert!(
        to_nat_side > 50,
        "the platform follows the caller's own port ({to_nat_side} packets)"
    );
    let ran = executed_ids(&ann).await;
    assert!(ran.contains(&"legit".to_owned()), "{ran:?}");
    assert!(!ran.contains(&"attacker".to_owned()), "{ran:?}");
    let metrics = server.metrics().await;
    let refused: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("voipbin_rtp_packets_refused_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(refused > 100, "refused packets are counted: {refused}");
}

/// Sends `n` INVITEs (each its own call) for `number` from `from_ip`, then listens
/// for `listen`; every response by Call-ID.
fn invites(
    server: SocketAddr,
    from_ip: &str,
    number: &str,
    n: usize,
    listen: Duration,
) -> HashMap<String, Vec<String>> {
    let sock = UdpSocket::bind((from_ip, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let port = sock.local_addr().unwrap().port();
    for i in 0..n {
        let invite = format!(
            "INVITE sip:{number}@{server} SIP/2.0\r\nVia: SIP/2.0/UDP {from_ip}:{port};branch=z9hG4bKflood{port}x{i};rport\r\nMax-Forwards: 70\r\nFrom: <sip:+15557654321@{from_ip}>;tag=f{i}\r\nTo: <sip:{number}@{server}>\r\nCall-ID: flood{port}x{i}@{from_ip}\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@{from_ip}:{port}>\r\nContent-Length: 0\r\n\r\n"
        );
        sock.send_to(invite.as_bytes(), server).unwrap();
    }
    let mut got: HashMap<String, Vec<String>> = HashMap::new();
    let until = std::time::Instant::now() + listen;
    let mut buf = [0u8; 4096];
    while std::time::Instant::now() < until {
        if let Ok(n) = sock.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let call_id = text
                .lines()
                .find_map(|l| l.strip_prefix("Call-ID: "))
                .unwrap_or_default()
                .to_owned();
            let status = text.lines().next().unwrap_or_default().to_owned();
            got.entry(call_id).or_default().push(status);
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_gets_at_most_one_stateless_403_per_invite_and_soon_nothing() {
    let server = Server::start(Options::default());
    // 127.0.0.3 is no provider's address (the local provider admits 127.0.0.1).
    let got = invites(
        server.sip,
        "127.0.0.3",
        "+15551230041",
        50,
        Duration::from_secs(3),
    );
    let all: Vec<&String> = got.values().flatten().collect();
    assert!(
        all.iter().all(|s| s.starts_with("SIP/2.0 403")),
        "only 403s, no 100 Trying: {all:?}"
    );
    assert!(
        got.values().all(|v| v.len() == 1),
        "no retransmission: {got:?}"
    );
    assert!(
        (1..=4).contains(&all.len()),
        "a few 403s, then nothing: {} responses to 50 INVITEs",
        all.len()
    );
    // Not one log line per INVITE.
    let lines = server
        .printed()
        .lines()
        .filter(|l| l.contains("INVITE refused"))
        .count();
    assert!(lines <= 1, "{lines} log lines for one source");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admitted_source_is_held_to_its_invite_rate_and_its_call_limit() {
    let server = Server::start(Options {
        args: [
            Options::default().args,
            vec!["--invite-rate".into(), "5".into()],
        ]
        .concat(),
        ..Options::default()
    });
    let (_, _) = customer_with_number(
        &server,
        "bea",
        "+15551230042",
        json!({"name": "wait", "actions": [{"type": "sleep", "option": {"duration": 20000}}]}),
    )
    .await;
    // A burst of twice the rate is admitted (100 Trying); the rest get 503 with no
    // 100 before it.
    let got = invites(
        server.sip,
        "127.0.0.1",
        "+15551230042",
        30,
        Duration::from_secs(1),
    );
    let admitted = got
        .values()
        .filter(|v| v.iter().any(|s| s.starts_with("SIP/2.0 100")))
        .count();
    let refused = got
        .values()
        .filter(|v| v.len() == 1 && v[0].starts_with("SIP/2.0 503"))
        .count();
    assert_eq!((admitted, refused), (10, 20), "{got:?}");

    // The local provider limited to 2 calls up at once: a third is refused.
    let admin = server.admin();
    let (_, providers) = admin.get("/providers").await;
    let local = providers["result"][0]["id"].as_str().unwrap().to_owned();
    let (status, body) = admin
        .put(
            &format!("/providers/{local}"),
            json!({"max_concurrent_calls": 12}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["max_concurrent_calls"], 12);
    tokio::time::sleep(Duration::from_secs(2)).await; // the rate refills
    let got = invites(
        server.sip,
        "127.0.0.1",
        "+15551230042",
        4,
        Duration::from_secs(1),
    );
    let with = |code: &str| {
        got.values()
            .filter(|v| v.iter().any(|s| s.starts_with(code)))
            .count()
    };
    assert_eq!(
        (with("SIP/2.0 180"), with("SIP/2.0 503")),
        (2, 2),
        "10 calls up, 2 more allowed: {got:?}\n{}",
        server.printed()
    );
    // At the limit, the next INVITE is refused before a transaction: one 503 alone.
    let got = invites(
        server.sip,
        "127.0.0.1",
        "+15551230042",
        1,
        Duration::from_secs(1),
    );
    let only: Vec<&Vec<String>> = got.values().collect();
    assert_eq!(only.len(), 1, "{got:?}");
    assert_eq!(only[0].len(), 1, "{got:?}");
    assert!(only[0][0].starts_with("SIP/2.0 503"), "{got:?}");
}
