//! `connect` between two real SIP peers: SIPp plays the carrier on both sides. A
//! calls a number whose flow connects to B through a provider pointing at B's
//! address; the test's own sockets are both ends' media.

use super::*;

/// The port in the first `m=audio` line of the message in `log` (SIPp's
/// `-trace_msg` file) that contains `marker`.
pub(crate) fn sdp_port(log: &std::path::Path, marker: &str) -> Option<u16> {
    let text = std::fs::read_to_string(log).ok()?;
    let at = text.find(marker)?;
    let rest = &text[at..];
    let line = rest
        .lines()
        .find(|l| l.trim_start().starts_with("m=audio "))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Waits up to 15 s for [`sdp_port`]; the server's log says why when it fails.
pub(crate) fn wait_sdp_port(server: &Server, log: &std::path::Path, marker: &str) -> u16 {
    for _ in 0..150 {
        if let Some(port) = sdp_port(log, marker) {
            return port;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "no SDP after {marker:?} in {}; the server said:\n{}",
        log.display(),
        server.printed()
    );
}

/// The customer's calls once `n` of them are hung up (or what there is after 5 s).
pub(crate) async fn hung_up_calls(customer: &common::Client, n: usize) -> Vec<serde_json::Value> {
    let mut calls = Vec::new();
    for _ in 0..50 {
        let (_, list) = customer.get("/calls").await;
        calls = list["result"].as_array().cloned().unwrap_or_default();
        if calls.len() == n && calls.iter().all(|c| c["status"] == "hangup") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    calls
}

/// A µ-law RTP packet (`payload_type` 0) or a telephone-event (101) from `ssrc`.
pub(crate) fn rtp(seq: u16, ssrc: u32, payload_type: u8, payload: &[u8]) -> Vec<u8> {
    rtp_types::RtpPacketBuilder::<&[u8], &[u8]>::new()
        .payload_type(payload_type)
        .ssrc(ssrc)
        .sequence_number(seq)
        .timestamp(u32::from(seq) * 160)
        .payload(payload)
        .write_vec()
        .unwrap()
}

/// Counts the packets `sock` receives in `within`, by payload type (0 and 101).
pub(crate) fn count_rtp(sock: &UdpSocket, within: Duration) -> (usize, usize) {
    let mut buf = [0u8; 1500];
    let (mut audio, mut events) = (0, 0);
    let start = std::time::Instant::now();
    while start.elapsed() < within {
        if let Ok(n) = sock.recv(&mut buf)
            && let Ok(p) = rtp_types::RtpPacket::parse(&buf[..n])
        {
            match p.payload_type() {
                0 => audio += 1,
                101 => events += 1,
                _ => {}
            }
        }
    }
    (audio, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carrier_call_is_connected_to_a_callee_behind_a_provider() {
    let server = Server::start(Options::default());
    let admin = server.admin();
    let dir = tempfile::tempdir().unwrap();

    // B: SIPp as the callee's carrier, on a port of its own.
    let b_sip = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b_port = b_sip.local_addr().unwrap().port();
    drop(b_sip);
    let b_media = media_socket();
    // The first start's `local` provider (127.0.0.1) is the carrier both ways:
    // calls come from it, and calls to numbers go to it, at B's port.
    local_carrier(&server, json!({"port": b_port})).await;

    let (_, bob) = admin.new_customer("bob").await;
    let (status, flow) = bob
        .post(
            "/flows",
            json!({"name": "forward", "actions": [
                {"type": "connect", "option": {
                    "source": {"type": "tel", "target": "+15550001111"},
                    "destinations": [{"type": "tel", "target": "+15559990000"}]
                }},
                {"type": "hangup"}
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{flow}");
    let (status, _) = bob
        .post(
            "/numbers",
            json!({"number": "+15551230042", "call_flow_id": flow["id"]}),
        )
        .await;
    assert_eq!(status, 200);

    let b_log = dir.path().join("b.log");
    let b_rtp = b_media.local_addr().unwrap().port().to_string();
    let b_log_path = b_log.to_str().unwrap().to_owned();
    let callee = sipp_uas(
        "uas_connect_callee.xml",
        b_port,
        &[
            "-set",
            "rtpport",
            &b_rtp,
            "-d",
            "3000",
            "-trace_msg",
            "-message_file",
            &b_log_path,
        ],
    );

    // A: the caller's carrier.
    let a_media = media_socket();
    let a_log = dir.path().join("a.log");
    let caller = sipp_scenario_with(
        server.sip,
        "uac_flow_call.xml",
        "+15551230042",
        a_media.local_addr().unwrap().port(),
        &["-trace_msg", "-message_file", a_log.to_str().unwrap()],
    );

    // Where the platform takes each side's media: the SDP of B's INVITE and of
    // A's 200.
    let callee_leg = wait_sdp_port(&server, &b_log, "INVITE sip:");
    let caller_leg = wait_sdp_port(&server, &a_log, "SIP/2.0 200");
    let to_caller_leg = SocketAddr::from(([127, 0, 0, 1], caller_leg));
    let to_callee_leg = SocketAddr::from(([127, 0, 0, 1], callee_leg));

    // Each side talks 50 packets; A presses a key (RFC 4733, three events).
    for seq in 0..50u16 {
        a_media
            .send_to(&rtp(seq, 0xA, 0, &[0xFF; 160]), to_caller_leg)
            .unwrap();
        b_media
            .send_to(&rtp(seq, 0xB, 0, &[0x7F; 160]), to_callee_leg)
            .unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    for seq in 50..53u16 {
        a_media
            .send_to(&rtp(seq, 0xA, 101, &[5, 0x8A, 0, 160]), to_caller_leg)
            .unwrap();
    }
    let (at_b, keys_at_b) = count_rtp(&b_media, Duration::from_millis(800));
    let (at_a, _) = count_rtp(&a_media, Duration::from_millis(200));
    assert!(
        at_b >= 45,
        "A's audio reached B: {at_b} of 50 (B's audio at A: {at_a}); the server said:\n{}",
        server.printed()
    );
    assert!(keys_at_b >= 1, "A's key reached B as RFC 4733");
    assert!(at_a >= 45, "B's audio reached A: {at_a} of 50");

    // B hangs up after 3 s; the flow's next action hangs A up.
    let b_status = sipp_done(callee).await;
    assert!(
        b_status.success(),
        "B's SIPp: {b_status}; its messages:\n{}",
        std::fs::read_to_string(&b_log).unwrap_or_default()
    );
    let a_status = sipp_done(caller).await;
    assert!(a_status.success(), "A's SIPp: {a_status}");

    // Both rows, linked, with their statistics.
    let calls = hung_up_calls(&bob, 2).await;
    assert_eq!(calls.len(), 2, "{calls:?}");
    let incoming = calls.iter().find(|c| c["direction"] == "incoming").unwrap();
    let outgoing = calls.iter().find(|c| c["direction"] == "outgoing").unwrap();
    assert_eq!(outgoing["master_call_id"], incoming["id"]);
    assert_eq!(incoming["chained_call_ids"], json!([outgoing["id"]]));
    assert_eq!(outgoing["destination"]["target"], "+15559990000");
    assert_eq!(outgoing["source"]["target"], "+15550001111");
    assert_eq!(outgoing["hangup_by"], "remote");
    assert!(outgoing["tm_progressing"].is_string());
    for call in [incoming, outgoing] {
        assert_eq!(call["status"], "hangup", "{call}");
        let received = call["rtp_stats"]["packets_received"].as_u64().unwrap_or(0);
        assert!(
            received >= 45,
            "{}: {received} packets in",
            call["direction"]
        );
    }
}

/// Starts SIPp's `scenario` (in sipp-scenarios/) as a carrier's UAS on `port`, for
/// one call; more arguments in `extra`.
pub(crate) fn sipp_uas(scenario: &str, port: u16, extra: &[&str]) -> std::process::Child {
    std::process::Command::new("sipp")
        .arg("-sf")
        .arg(format!(
            "{}/sipp-scenarios/{scenario}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-m",
            "1",
            "-nostdin",
        ])
        .args(["-timeout", "40s"])
        .args(extra)
        .current_dir(std::env::temp_dir())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("sipp (Debian's sip-tester; scripts/test installs it)")
}

/// A free UDP port on loopback (for a SIPp UAS to take).
pub(crate) fn free_port() -> u16 {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carrier_answering_503_hands_the_call_to_the_next_carrier() {
    let server = Server::start(Options::default());
    let admin = server.admin();
    // Two carriers: `local` (the oldest) is B, which takes the call; `carrier-x`
    // answers 503. The customer's routes put carrier-x first, so the call fails
    // over from it to B (oldest first, B would have been tried alone).
    let (failing_port, b_port) = (free_port(), free_port());
    let local = local_carrier(&server, json!({"port": b_port})).await;
    let (status, failing_carrier) = admin
        .post(
            "/providers",
            json!({"name": "carrier-x", "hostname": "127.0.0.1", "port": failing_port}),
        )
        .await;
    assert_eq!(status, 200, "{failing_carrier}");
    let (customer_id, bob) = admin.new_customer("carol").await;
    for (provider, priority) in [(failing_carrier["id"].clone(), 1), (json!(local), 2)] {
        let (status, route) = admin
            .post(
                "/routes",
                json!({"customer_id": customer_id, "provider_id": provider, "priority": priority, "target": "1"}),
            )
            .await;
        assert_eq!(status, 200, "{route}");
    }

    let (_, flow) = bob
        .post(
            "/flows",
            json!({"name": "forward", "actions": [
                {"type": "connect", "option": {
                    "source": {"type": "tel", "target": "+15550001111"},
                    "destinations": [{"type": "tel", "target": "+15559990000"}],
                    "relay_reason": true
                }}
            ]}),
        )
        .await;
    let (status, _) = bob
        .post(
            "/numbers",
            json!({"number": "+15551230043", "call_flow_id": flow["id"]}),
        )
        .await;
    assert_eq!(status, 200);

    let failing = sipp_uas("uas_carrier_503.xml", failing_port, &[]);
    let b_media = media_socket();
    let b_rtp = b_media.local_addr().unwrap().port().to_string();
    let callee = sipp_uas(
        "uas_connect_callee.xml",
        b_port,
        &["-set", "rtpport", &b_rtp, "-d", "1000"],
    );
    let a_media = media_socket();
    let caller = sipp_call(
        server.sip,
        "+15551230043",
        a_media.local_addr().unwrap().port(),
    );

    let failing_status = sipp_done(failing).await;
    assert!(
        failing_status.success(),
        "the 503 carrier's SIPp: {failing_status}"
    );
    let b_status = sipp_done(callee).await;
    assert!(
        b_status.success(),
        "B's SIPp: {b_status}; the server said:\n{}",
        server.printed()
    );
    let a_status = sipp_done(caller).await;
    assert!(a_status.success(), "A's SIPp: {a_status}");

    let calls = hung_up_calls(&bob, 2).await;
    let outgoing = calls
        .iter()
        .find(|c| c["direction"] == "outgoing")
        .cloned()
        .unwrap_or_default();
    // One leg, carried by the second carrier, answered, ended by B.
    assert_eq!(outgoing["hangup_by"], "remote", "{outgoing}");
    assert_eq!(outgoing["hangup_reason"], "normal", "{outgoing}");
    assert!(outgoing["tm_progressing"].is_string(), "{outgoing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_that_routes_back_to_ourselves_is_refused_not_looped() {
    let server = Server::start(Options::default());
    let admin = server.admin();
    // The only carrier is this server itself.
    let (_, list) = admin.get("/providers").await;
    let local = list["result"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = admin
        .put(
            &format!("/providers/{local}"),
            json!({"port": server.sip.port()}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, bob) = admin.new_customer("bob").await;
    let (_, flow) = bob
        .post(
            "/flows",
            json!({"name": "loop", "actions": [
                {"type": "connect", "option": {
                    "destinations": [{"type": "tel", "target": "+15551230044"}]
                }},
                {"type": "hangup", "option": {"reason": "busy"}}
            ]}),
        )
        .await;
    let (status, _) = bob
        .post(
            "/numbers",
            json!({"number": "+15551230044", "call_flow_id": flow["id"]}),
        )
        .await;
    assert_eq!(status, 200);

    // The dialled leg comes back to us and gets 482; the connect fails and the
    // flow goes on to its busy hangup.
    let sip = server.sip;
    let answer = tokio::task::spawn_blocking(move || call(sip, "127.0.0.1", "+15551230044"))
        .await
        .unwrap();
    assert!(answer.starts_with("SIP/2.0 486"), "{answer}");
    let calls = hung_up_calls(&bob, 2).await;
    assert_eq!(
        calls.len(),
        2,
        "one call in, one leg out, no second call in: {calls:?}"
    );
    let outgoing = calls.iter().find(|c| c["direction"] == "outgoing").unwrap();
    assert_eq!(outgoing["hangup_reason"], "failed");
}
