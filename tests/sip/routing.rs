//! An INVITE's way in: provider and number routing (403, 404), OPTIONS (and 405 for
//! methods we do not take), 100rel, a flow that refuses the call (486), an offer that
//! cannot be answered (488), no media port left (503), a carrier on TCP.

use super::*;

#[tokio::test]
async fn invites_are_routed_by_provider_and_number() {
    let server = Server::start(Options::default());
    let admin = server.admin();

    // The local provider exists from the first start and admits 127.0.0.1 only.
    let (status, list) = admin.get("/providers").await;
    assert_eq!(status, 200, "{list}");
    let providers = list["result"].as_array().unwrap();
    assert_eq!(providers.len(), 1);
    assert_eq!(providers[0]["name"], "local");
    assert_eq!(providers[0]["allowed_sources"], json!(["127.0.0.1/32"]));
    assert!(providers[0].get("auth_password").is_none(), "write-only");

    let (_, alice) = admin.new_customer("alice").await;
    let (status, flow) = alice
        .post(
            "/flows",
            json!({"name": "ivr", "actions": [{"type": "answer"}, {"type": "hangup"}]}),
        )
        .await;
    assert_eq!(status, 200, "{flow}");
    let (status, number) = alice
        .post(
            "/numbers",
            json!({"number": "+15551230000", "call_flow_id": flow["id"]}),
        )
        .await;
    assert_eq!(status, 200, "{number}");

    let unknown = call(server.sip, "127.0.0.1", "+15559999999");
    assert!(unknown.starts_with("SIP/2.0 404 "), "{unknown}");
    assert!(
        unknown.contains("not a number of this platform"),
        "{unknown}"
    );

    // The number is ours (found with visual separators removed): its flow answers
    // (and hangs up at once; this socket does not ACK, so the user agent ends it).
    let ours = call(server.sip, "127.0.0.1", "1-555-123-0000");
    assert!(ours.starts_with("SIP/2.0 200 "), "{ours}");

    // 127.0.0.2 reaches loopback too, but no provider admits it.
    let stranger = call(server.sip, "127.0.0.2", "+15551230000");
    assert!(stranger.starts_with("SIP/2.0 403 "), "{stranger}");
    assert!(
        stranger.contains("127.0.0.2 is not a provider's address"),
        "{stranger}"
    );

    // Only the admin manages providers; a bad CIDR is refused by name.
    let (status, _) = alice.get("/providers").await;
    assert_eq!(status, 403);
    let (status, err) = admin
        .post(
            "/providers",
            json!({"name": "carrier", "allowed_sources": ["127.0.0.2/33"]}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(err.to_string().contains("allowed_sources"), "{err}");
    let (status, carrier) = admin
        .post(
            "/providers",
            json!({"name": "carrier", "allowed_sources": ["127.0.0.2"], "hostname": "127.0.0.2",
                   "auth_username": "u", "auth_password": "p"}),
        )
        .await;
    assert_eq!(status, 200, "{carrier}");
    assert_eq!(carrier["allowed_sources"], json!(["127.0.0.2/32"]));
    let admitted = call(server.sip, "127.0.0.2", "+15551230000");
    assert!(admitted.starts_with("SIP/2.0 200 "), "{admitted}");

    // Deleting the provider refuses its calls again.
    let (status, _) = admin
        .delete(&format!("/providers/{}", carrier["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200);
    let refused = call(server.sip, "127.0.0.2", "+15551230000");
    assert!(refused.starts_with("SIP/2.0 403 "), "{refused}");
    // Operators see the refusals by status on /metrics.
    let metrics = server.metrics().await;
    for status in ["403", "404"] {
        assert!(
            metrics.lines().any(|l| l.starts_with(&format!(
                "voipbin_invites_refused_total{{status=\"{status}\"}}"
            ))),
            "{metrics}"
        );
    }
}

/// Sends a bodiless `method` request outside any call; the response's text.
fn request(server: SocketAddr, method: &str) -> String {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = sock.local_addr().unwrap().port();
    let text = format!(
        "{method} sip:{server} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{method}1\r\nMax-Forwards: 70\r\nFrom: <sip:monitor@127.0.0.1>;tag=o1\r\nTo: <sip:{server}>\r\nCall-ID: {method}1@127.0.0.1\r\nCSeq: 1 {method}\r\nContact: <sip:monitor@127.0.0.1:{port}>\r\nContent-Length: 0\r\n\r\n"
    );
    sock.send_to(text.as_bytes(), server).unwrap();
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn options_pings_get_200_and_methods_we_do_not_take_get_405() {
    let server = Server::start(Options::default());
    let text = request(server.sip, "OPTIONS");
    assert!(text.starts_with("SIP/2.0 200 OK"), "{text}");
    assert!(text.contains("Allow: INVITE"), "{text}");
    assert!(!text.contains("REFER"), "only what is carried out: {text}");
    // Registrations and messages come with later issues: 405 and what we do take.
    for method in ["REGISTER", "MESSAGE", "SUBSCRIBE"] {
        let text = request(server.sip, method);
        assert!(text.starts_with("SIP/2.0 405 "), "{method}: {text}");
        assert!(text.contains("Allow: INVITE"), "{method}: {text}");
    }
    let text = request(server.sip, "FROB");
    assert!(
        text.starts_with("SIP/2.0 501 "),
        "an unknown method: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_that_hangs_up_busy_before_the_answer_rejects_with_486() {
    let server = Server::start(Options::default());
    let (jo, _) = customer_with_number(
        &server,
        "jo",
        "+15551230013",
        json!({"name": "busy", "actions": [{"type": "hangup", "option": {"reason": "busy"}}]}),
    )
    .await;
    let sip = server.sip;
    let response = tokio::task::spawn_blocking(move || call(sip, "127.0.0.1", "+15551230013"))
        .await
        .unwrap();
    assert!(response.starts_with("SIP/2.0 486"), "{response}");
    assert!(response.contains("Reason: SIP;cause=486"), "{response}");
    let row = call_with_status(&jo, "hangup").await;
    assert_eq!(row["hangup_reason"], "busy", "{row}");
    assert_eq!(row["hangup_by"], "local", "{row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_that_cannot_be_answered_gets_488_before_the_flow_runs() {
    let server = Server::start(Options::default());
    let (oz, _) = customer_with_number(
        &server,
        "oz",
        "+15551230018",
        json!({"name": "hello", "actions": [{"type": "answer"}, {"type": "hangup"}]}),
    )
    .await;
    let g729 = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
    let sip = server.sip;
    let response = tokio::task::spawn_blocking(move || {
        call_with_offer(sip, "127.0.0.1", "+15551230018", g729)
    })
    .await
    .unwrap();
    assert!(response.starts_with("SIP/2.0 488"), "{response}");
    assert!(response.contains("Reason: SIP;cause=488"), "{response}");
    assert!(
        response.contains("no common codec"),
        "the reason says why: {response}"
    );
    let broken = "v=0\r\nthis is not SDP\r\n";
    let response = tokio::task::spawn_blocking(move || {
        call_with_offer(sip, "127.0.0.1", "+15551230018", broken)
    })
    .await
    .unwrap();
    assert!(
        response.starts_with("SIP/2.0 488") || response.starts_with("SIP/2.0 400"),
        "{response}"
    );
    let (_, calls) = oz.get("/calls").await;
    assert_eq!(calls["result"].as_array().map(Vec::len), Some(0), "{calls}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_free_media_port_gets_503_with_retry_after_and_ends_the_flow() {
    // The server's whole RTP range is one pair, held here, so no leg can open.
    let (port, _held) = loop {
        let rtp = UdpSocket::bind(("0.0.0.0", 0)).unwrap();
        let port = rtp.local_addr().unwrap().port();
        if port.is_multiple_of(2)
            && port < u16::MAX
            && let Ok(rtcp) = UdpSocket::bind(("0.0.0.0", port + 1))
        {
            break (port, (rtp, rtcp));
        }
    };
    let server = Server::start(Options {
        args: vec!["--rtp-ports".into(), format!("{port}-{}", port + 1)],
        ..Options::default()
    });
    let (uma, _) = customer_with_number(
        &server,
        "uma",
        "+15551230021",
        json!({"name": "hello", "actions": [
            {"type": "answer"},
            {"type": "sleep", "option": {"duration": 3000}},
            {"type": "hangup"}
        ]}),
    )
    .await;
    let offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    let sip = server.sip;
    let started = std::time::Instant::now();
    let response = tokio::task::spawn_blocking(move || {
        call_with_offer(sip, "127.0.0.1", "+15551230021", offer)
    })
    .await
    .unwrap();
    // Refused at once (not after the flow's sleep), so a carrier tries its next route.
    assert!(response.starts_with("SIP/2.0 503"), "{response}");
    assert!(started.elapsed() < Duration::from_secs(2), "{response}");
    assert!(response.contains("Retry-After: 5"), "{response}");
    assert!(
        response.contains("Reason: SIP;cause=503") && response.contains("--rtp-ports"),
        "the reason names the problem: {response}"
    );
    let row = call_with_status(&uma, "hangup").await;
    assert_eq!(row["hangup_reason"], "failed", "{row}");
    assert_eq!(row["hangup_by"], "local", "{row}");
    assert!(row["tm_progressing"].is_null(), "never answered: {row}");
    // The flow ended at the answer; it did not run on without media.
    let (_, flows) = uma.get("/activeflows").await;
    let flow = &flows["result"][0];
    assert_eq!(flow["status"], "ended", "{flow}");
    let executed: Vec<&str> = flow["executed_actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["type"].as_str())
        .collect();
    assert_eq!(executed, ["answer"], "{flow}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carrier_on_tcp_gets_the_whole_call_over_its_connection() {
    let server = Server::start(Options::default());
    let (tess, _) = customer_with_number(
        &server,
        "tess",
        "+15551230022",
        json!({"name": "hello", "actions": [
            {"type": "answer"},
            {"type": "beep"},
            {"type": "hangup"}
        ]}),
    )
    .await;
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    // SIPp on TCP only (`-t t1`): our 100, 200 and BYE must come back over its
    // connection, or SIPp times out and fails.
    let sipp = sipp_scenario_with(
        server.sip,
        "uac_flow_call.xml",
        "+15551230022",
        media.local_addr().unwrap().port(),
        &["-t", "t1"],
    );
    let status = sipp_done(sipp).await;
    assert!(status.success(), "SIPp over TCP: {status}");
    let row = call_with_status(&tess, "hangup").await;
    assert_eq!(row["hangup_reason"], "normal", "{row}");
    assert_eq!(row["hangup_by"], "local", "{row}");
    assert!(
        row["rtp_stats"]["packets_sent"].as_u64() > Some(0),
        "the beep went to the SDP's media address: {row}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carrier_requiring_100rel_gets_a_reliable_180_and_its_call() {
    let server = Server::start(Options::default());
    let (abe, _) = customer_with_number(
        &server,
        "abe",
        "+15551230033",
        json!({"name": "ring first", "actions": [
            {"type": "sleep", "option": {"duration": 500}},
            {"type": "answer"},
            {"type": "beep"},
            {"type": "hangup"}
        ]}),
    )
    .await;
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    // SIPp fails unless the 180 says Require: 100rel with an RSeq and its PRACK
    // gets 200 (RFC 3262 sections 3 and 4), before the 200 and our BYE.
    let sipp = sipp_scenario(
        server.sip,
        "uac_flow_prack.xml",
        "+15551230033",
        media.local_addr().unwrap().port(),
    );
    assert!(sipp_done(sipp).await.success());
    let call = call_with_status(&abe, "hangup").await;
    assert_eq!(call["hangup_reason"], "normal", "{call}");
    assert!(call["tm_progressing"].is_string(), "answered: {call}");
}

/// Twenty calls from a carrier losing 10% of its SIP messages (SIPp `-lost 10`) all
/// complete: retransmissions are absorbed and answered again, and a flow that hangs
/// up at once waits for the ACK before its BYE (RFC 3261 section 15), so a lost 200
/// never meets a BYE for a call the carrier has not seen answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_from_a_carrier_losing_a_tenth_of_its_messages_all_complete() {
    let server = Server::start(Options::default());
    let (bea, _) = customer_with_number(
        &server,
        "bea",
        "+15551230034",
        json!({"name": "quick", "actions": [{"type": "answer"}, {"type": "hangup"}]}),
    )
    .await;
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sipp = sipp_scenario_with(
        server.sip,
        "uac_flow_call.xml",
        "+15551230034",
        media.local_addr().unwrap().port(),
        &["-m", "20", "-l", "5", "-r", "5", "-lost", "10"],
    );
    assert!(sipp_done(sipp).await.success(), "all 20 calls complete");
    let mut calls = serde_json::Value::Null;
    for _ in 0..100 {
        calls = bea.get("/calls?page_size=50").await.1;
        let rows = calls["result"].as_array().unwrap();
        if rows.len() == 20 && rows.iter().all(|c| c["status"] == "hangup") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("20 hung-up call rows expected: {calls}");
}
