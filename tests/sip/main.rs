//! The SIP front of the real `voipbin` binary: OPTIONS pings get 200; an INVITE is
//! routed by provider (the source address) and number: 403 for a source no provider
//! admits, 404 for a number that is not ours, and one of ours runs its flow. SIPp
//! plays the carrier; the test's own socket is the media end (the SDP points there),
//! hears the flow's speech, and presses a key with RFC 4733.
#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::{Options, Receiver, Server};
use serde_json::json;

/// Sends an INVITE for `number` from `from_ip` and returns the final response.
fn call(server: SocketAddr, from_ip: &str, number: &str) -> String {
    call_with_offer(server, from_ip, number, "")
}

/// Sends an INVITE for `number` from `from_ip` with `sdp` as its body (none when
/// empty) and returns the final response.
fn call_with_offer(server: SocketAddr, from_ip: &str, number: &str, sdp: &str) -> String {
    let sock = UdpSocket::bind((from_ip, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = sock.local_addr().unwrap().port();
    let branch = format!("z9hG4bK{port}{}", number.len());
    let content_type = if sdp.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\r\n".to_owned()
    };
    let invite = format!(
        "INVITE sip:{number}@{server} SIP/2.0\r\nVia: SIP/2.0/UDP {from_ip}:{port};branch={branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:+15557654321@{from_ip}>;tag=a1\r\nTo: <sip:{number}@{server}>\r\nCall-ID: {branch}@{from_ip}\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@{from_ip}:{port}>\r\n{content_type}Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    sock.send_to(invite.as_bytes(), server).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        let n = sock.recv(&mut buf).expect("a response");
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if !text.starts_with("SIP/2.0 1") {
            assert!(
                text.contains(&format!("rport={port}")),
                "rport filled in: {text}"
            );
            return text;
        }
    }
}

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
}

#[test]
fn options_pings_get_200() {
    let server = Server::start(Options::default());
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = sock.local_addr().unwrap().port();
    let ping = format!(
        "OPTIONS sip:{0} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKopt1\r\nMax-Forwards: 70\r\nFrom: <sip:monitor@127.0.0.1>;tag=o1\r\nTo: <sip:{0}>\r\nCall-ID: opt1@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        server.sip
    );
    sock.send_to(ping.as_bytes(), server.sip).unwrap();
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("SIP/2.0 200 OK"), "{text}");
    assert!(text.contains("Allow: INVITE"), "{text}");
}

/// Runs the SIPp carrier scenario against `server` for `number`, its media pointed at
/// `rtp_port`; returns SIPp's exit status and output.
fn sipp_call(server: SocketAddr, number: &str, rtp_port: u16) -> std::process::Child {
    sipp_scenario(server, "uac_flow_call.xml", number, rtp_port)
}

/// Runs SIPp's `scenario` (in sipp-scenarios/) as the carrier calling `number`,
/// with its media port at `rtp_port`.
fn sipp_scenario(
    server: SocketAddr,
    scenario: &str,
    number: &str,
    rtp_port: u16,
) -> std::process::Child {
    let dir = std::env::temp_dir();
    std::process::Command::new("sipp")
        .arg(server.to_string())
        .arg("-sf")
        .arg(format!(
            "{}/sipp-scenarios/{scenario}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .args([
            "-s",
            number,
            "-i",
            "127.0.0.1",
            "-p",
            "0",
            "-m",
            "1",
            "-nostdin",
        ])
        .args(["-set", "rtpport", &rtp_port.to_string(), "-timeout", "40s"])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("sipp (Debian's sip-tester; scripts/test installs it)")
}

/// A customer `name` whose number `number` runs the flow `flow` (a POST /flows
/// body); returns the customer's client and the flow.
async fn customer_with_number(
    server: &Server,
    name: &str,
    number: &str,
    flow: serde_json::Value,
) -> (common::Client, serde_json::Value) {
    let (_, client) = server.admin().new_customer(name).await;
    let (status, flow) = client.post("/flows", flow).await;
    assert_eq!(status, 200, "{flow}");
    let (status, body) = client
        .post(
            "/numbers",
            json!({"number": number, "call_flow_id": flow["id"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    (client, flow)
}

/// The mean square of PCMU frames decoded (speech is loud; silence is near 0).
fn level(frames: &[Vec<u8>]) -> f64 {
    let mut pcm = [0i16; 160];
    let mut sum = 0.0;
    let mut n: f64 = 0.0;
    for f in frames {
        media_engine::codec::G711::Ulaw
            .decode(&f[..160.min(f.len())], &mut pcm[..160.min(f.len())]);
        for s in &pcm[..160.min(f.len())] {
            sum += f64::from(*s) * f64::from(*s);
            n += 1.0;
        }
    }
    sum / n.max(1.0)
}

// Several threads: the test blocks on its media socket while its web servers
// (webhook receiver, prompt server) must answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carrier_call_hears_the_flow_and_its_key_press_picks_the_branch() {
    let receiver = Receiver::start().await;
    let server = Server::start(Options::default());
    let (_, bob) = server.admin().new_customer("bob").await;
    let secret = "call-secret";
    let (status, _) = bob
        .put(
            "/customer",
            json!({"webhook_uri": receiver.url(), "webhook_method": "POST", "webhook_secret": secret}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, flow) = bob
        .post(
            "/flows",
            json!({"name": "menu", "actions": [
                {"type": "answer"},
                {"type": "recording_start", "option": {"format": "wav"}},
                {"type": "talk", "option": {"text": "Welcome. Press one for sales.", "language": "en-US"}},
                {"type": "digits_receive", "option": {"duration": 8000, "length": 1}},
                {"type": "branch", "option": {"target_ids": {"1": "sales"}, "default_target_id": "bye"}},
                {"id": "sales", "type": "talk", "option": {"text": "You pressed one. Thank you for calling sales. Goodbye.", "language": "en-US"}},
                {"type": "webhook_send", "option": {"sync": true, "uri": receiver.url(), "data": "{\"type\":\"flow_report\",\"called\":\"${voipbin.call.destination.target}\"}"}},
                {"id": "bye", "type": "hangup"}
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{flow}");
    let (status, _) = bob
        .post(
            "/numbers",
            json!({"number": "+15551230001", "call_flow_id": flow["id"]}),
        )
        .await;
    assert_eq!(status, 200);

    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    media
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let rtp_port = media.local_addr().unwrap().port();
    let mut sipp = sipp_call(server.sip, "+15551230001", rtp_port);

    // The welcome prompt: learn where the platform sends from, then press 1 after a
    // second of it.
    let mut buf = [0u8; 1500];
    let mut before = Vec::new();
    let mut after = Vec::new();
    let mut platform = None;
    let mut pressed = false;
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if let Ok((n, from)) = media.recv_from(&mut buf) {
            platform.get_or_insert(from);
            if let Ok(p) = rtp_types::RtpPacket::parse(&buf[..n])
                && p.payload_type() == 0
            {
                let frames = if pressed { &mut after } else { &mut before };
                frames.push(p.payload().to_vec());
                // The caller talks back: a 440 Hz tone, a frame per frame heard.
                let k = (before.len() + after.len()) as u32;
                let pcm: Vec<i16> = (0..160)
                    .map(|i| {
                        ((f64::from(k * 160 + i) * 440.0 * std::f64::consts::TAU / 8000.0).sin()
                            * 8000.0) as i16
                    })
                    .collect();
                let mut payload = [0u8; 160];
                media_engine::codec::G711::Ulaw.encode(&pcm, &mut payload);
                let raw = rtp_types::RtpPacketBuilder::<&[u8], &[u8]>::new()
                    .payload_type(0)
                    .ssrc(0x5151)
                    .sequence_number(1000 + k as u16)
                    .timestamp(k * 160)
                    .payload(&payload[..])
                    .write_vec()
                    .unwrap();
                let _ = media.send_to(&raw, from);
            }
        }
        if !pressed && before.len() >= 50 {
            let to = platform.unwrap();
            for (i, pkt) in media_engine::dtmf::rfc4733::send_packets('1', 160, 20, 8000)
                .iter()
                .enumerate()
            {
                let raw = rtp_types::RtpPacketBuilder::<&[u8], &[u8]>::new()
                    .payload_type(101)
                    .marker_bit(pkt.marker)
                    .ssrc(0x5151)
                    .sequence_number(i as u16)
                    .timestamp(48_000)
                    .payload(&pkt.payload[..])
                    .write_vec()
                    .unwrap();
                media.send_to(&raw, to).unwrap();
            }
            pressed = true;
        }
        if let Ok(Some(_)) = sipp.try_wait() {
            break;
        }
    }
    let status = sipp.wait().unwrap();
    assert!(status.success(), "SIPp saw the call fail: {status}");
    assert!(
        before.len() >= 50,
        "the welcome prompt arrived: {} packets",
        before.len()
    );
    assert!(
        level(&before) > 1e5,
        "the prompt is speech, not silence: {}",
        level(&before)
    );
    // The branch for "1" speaks for seconds; the default would hang up at once.
    assert!(
        after.len() >= 100,
        "the sales branch was taken: {} packets after the key",
        after.len()
    );
    assert!(level(&after) > 1e5, "{}", level(&after));

    // The call's row: hung up by us after the flow's hangup, with the leg's statistics.
    let (status, calls) = bob.get("/calls").await;
    assert_eq!(status, 200, "{calls}");
    let calls = calls["result"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let call = &calls[0];
    assert_eq!(call["status"], "hangup");
    assert_eq!(call["hangup_reason"], "normal");
    assert_eq!(call["hangup_by"], "local");
    assert_eq!(call["direction"], "incoming");
    assert_eq!(call["destination"]["target"], "+15551230001");
    assert_eq!(call["flow_id"], flow["id"]);
    assert!(
        call["tm_progressing"].is_string() && call["tm_hangup"].is_string(),
        "{call}"
    );
    let sent = call["rtp_stats"]["packets_sent"].as_u64().unwrap();
    assert!(sent + 5 >= (before.len() + after.len()) as u64, "{call}");
    assert!(
        call["rtp_stats"]["packets_received"].as_u64().unwrap() >= 3,
        "our key press: {call}"
    );

    // Webhooks for each step, signed with the customer's secret, the hangup last.
    let got = receiver
        .wait_for(Duration::from_secs(10), |g| {
            !Receiver::of_type(g, "call_hungup").is_empty()
        })
        .await;
    for kind in [
        "call_created",
        "call_ringing",
        "call_progressing",
        "call_terminating",
        "call_hungup",
    ] {
        let deliveries = Receiver::of_type(&got, kind);
        assert_eq!(deliveries.len(), 1, "{kind}");
        let d = &deliveries[0];
        assert_eq!(d.json()["data"]["id"], call["id"], "{kind}");
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(&d.body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(d.header("x-voipbin-signature"), expected, "{kind}");
    }
    let hungup = &Receiver::of_type(&got, "call_hungup")[0].json()["data"];
    assert_eq!(hungup["status"], "hangup");
    let terminating = &Receiver::of_type(&got, "call_terminating")[0].json()["data"];
    assert_eq!(
        terminating["status"], "terminating",
        "the flow hung up: ours"
    );

    // The recording: ended, downloadable as stereo WAV with the caller (our tone) on
    // the left and what the caller heard (the prompts) on the right.
    let (status, recs) = bob.get("/recordings").await;
    assert_eq!(status, 200, "{recs}");
    let recs = recs["result"].as_array().unwrap();
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["status"], "ended");
    assert_eq!(recs[0]["reference_id"], call["id"]);
    assert_eq!(call["recording_ids"], json!([recs[0]["id"]]));
    let url = format!(
        "{}/recordingfiles/{}",
        bob.base,
        recs[0]["id"].as_str().unwrap()
    );
    let resp = bob
        .http
        .get(&url)
        .bearer_auth(&bob.key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "audio/wav");
    let wav = resp.bytes().await.unwrap();
    assert_eq!(&wav[..4], b"RIFF");
    assert_eq!(u16::from_le_bytes([wav[22], wav[23]]), 2, "stereo");
    let data = wav.windows(4).position(|w| w == b"data").unwrap() + 8;
    let samples: Vec<i16> = wav[data..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let power = |ch: usize| {
        let x: Vec<f64> = samples
            .iter()
            .skip(ch)
            .step_by(2)
            .map(|s| f64::from(*s))
            .collect();
        x.iter().map(|v| v * v).sum::<f64>() / x.len().max(1) as f64
    };
    assert!(samples.len() > 8000 * 2 * 3, "{} samples", samples.len());
    assert!(
        power(0) > 1e5,
        "the caller's side is not silent: {}",
        power(0)
    );
    assert!(
        power(1) > 1e5,
        "the prompts' side is not silent: {}",
        power(1)
    );
    for kind in ["recording_started", "recording_finished"] {
        assert_eq!(Receiver::of_type(&got, kind).len(), 1, "{kind}");
    }

    // The activeflow: ended, and its executed actions show the branch to "sales".
    let (status, af) = bob
        .get(&format!(
            "/activeflows/{}",
            call["activeflow_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 200, "{af}");
    assert_eq!(af["status"], "ended");
    assert_eq!(af["reference_id"], call["id"]);
    let executed: Vec<&str> = af["executed_actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["type"].as_str().unwrap())
        .collect();
    assert!(executed.contains(&"branch"), "{executed:?}");
    assert!(
        af["executed_actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == "sales"),
        "the sales branch ran: {af}"
    );
    for kind in [
        "activeflow_created",
        "activeflow_updated",
        "activeflow_deleted",
    ] {
        assert!(!Receiver::of_type(&got, kind).is_empty(), "{kind}");
    }
    // The flow's own webhook_send, with the call's variables substituted.
    let report = Receiver::of_type(&got, "flow_report");
    assert_eq!(report.len(), 1);
    assert_eq!(report[0].json()["called"], "+15551230001");
    // Another customer cannot download it.
    let (_, eve) = server.admin().new_customer("eve").await;
    let resp = eve
        .http
        .get(&url)
        .bearer_auth(&eve.key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn the_api_hangs_up_a_live_call() {
    let server = Server::start(Options::default());
    let (_, carol) = server.admin().new_customer("carol").await;
    let (_, flow) = carol
        .post(
            "/flows",
            // Each interrupt abandons the action it interrupts (a sleep here) and the flow
            // goes on after it: one sleep per interrupt, and one to hang up in.
            json!({"name": "hold", "actions": [{"type": "answer"},
                {"type": "sleep", "option": {"duration": 60000}}, {"type": "sleep", "option": {"duration": 60000}},
                {"type": "sleep", "option": {"duration": 60000}}, {"type": "sleep", "option": {"duration": 60000}}]}),
        )
        .await;
    assert!(flow["id"].is_string(), "{flow}");
    let (status, _) = carol
        .post(
            "/numbers",
            json!({"number": "+15551230002", "call_flow_id": flow["id"]}),
        )
        .await;
    assert_eq!(status, 200);
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut sipp = sipp_call(
        server.sip,
        "+15551230002",
        media.local_addr().unwrap().port(),
    );
    // Wait for the call to be answered.
    let mut id = None;
    for _ in 0..100 {
        let (_, calls) = carol.get("/calls").await;
        if let Some(c) = calls["result"].as_array().and_then(|a| a.first())
            && c["status"] == "progressing"
        {
            id = c["id"].as_str().map(str::to_owned);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, calls) = carol.get("/calls").await;
    let id = id.unwrap_or_else(|| panic!("the call was never answered: {calls}"));
    // Interrupts while the flow sleeps: record, speak, stop recording.
    let (status, err) = carol
        .post(&format!("/calls/{id}/talk"), json!({"text": " "}))
        .await;
    assert_eq!(status, 400, "{err}");
    assert!(err.to_string().contains("text"), "{err}");
    let (status, body) = carol
        .post(&format!("/calls/{id}/recording_start"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = carol
        .post(
            &format!("/calls/{id}/talk"),
            json!({"text": "This call is being recorded.", "language": "en-US"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    media
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut energy = 0.0f64;
    let mut frames = 0;
    let mut buf = [0u8; 1500];
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        if let Ok(n) = media.recv(&mut buf)
            && let Ok(p) = rtp_types::RtpPacket::parse(&buf[..n])
            && p.payload_type() == 0
        {
            let mut pcm = [0i16; 160];
            media_engine::codec::G711::Ulaw.decode(p.payload(), &mut pcm);
            energy += pcm.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / 160.0;
            frames += 1;
        }
    }
    assert!(
        frames > 50 && energy / f64::from(frames) > 1e5,
        "the interrupt spoke: {frames} frames"
    );
    let (status, body) = carol
        .post(&format!("/calls/{id}/recording_stop"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = carol.post(&format!("/calls/{id}/hangup"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let status = tokio::task::spawn_blocking(move || sipp.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "SIPp got the BYE: {status}");
    let mut row = serde_json::Value::Null;
    for _ in 0..50 {
        let (_, got) = carol.get(&format!("/calls/{id}")).await;
        if got["status"] == "hangup" {
            row = got;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(row["hangup_reason"], "normal", "{row}");
    assert_eq!(row["hangup_by"], "local", "{row}");
    let (status, _) = carol.post(&format!("/calls/{id}/hangup"), json!({})).await;
    assert_eq!(status, 400, "already hung up");
    let (_, recs) = carol.get("/recordings").await;
    assert_eq!(recs["result"].as_array().map(Vec::len), Some(1), "{recs}");
    assert_eq!(recs["result"][0]["status"], "ended", "{recs}");
    // Another customer's call is a 404.
    let (_, dave) = server.admin().new_customer("dave").await;
    let (status, _) = dave.get(&format!("/calls/{id}")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_call_cancelled_before_the_answer_ends_as_cancel() {
    let server = Server::start(Options::default());
    let (erin, _) = customer_with_number(
        &server,
        "erin",
        "+15551230003",
        json!({"name": "slow", "actions": [
            {"type": "sleep", "option": {"duration": 5000}},
            {"type": "answer"},
            {"type": "hangup"}
        ]}),
    )
    .await;
    let status = std::process::Command::new("sipp")
        .arg(server.sip.to_string())
        .arg("-sf")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/sipp-scenarios/uac_cancel.xml"
        ))
        .args([
            "-s",
            "+15551230003",
            "-i",
            "127.0.0.1",
            "-p",
            "0",
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            "20s",
        ])
        .current_dir(std::env::temp_dir())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("sipp");
    assert!(
        status.success(),
        "SIPp: CANCEL got 200 and the INVITE 487: {status}"
    );
    let mut row = serde_json::Value::Null;
    for _ in 0..50 {
        let (_, calls) = erin.get("/calls").await;
        if let Some(c) = calls["result"].as_array().and_then(|a| a.first())
            && c["status"] == "hangup"
        {
            row = c.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(row["hangup_reason"], "cancel", "{row}");
    assert_eq!(row["hangup_by"], "remote", "{row}");
    assert!(row["tm_progressing"].is_null(), "never answered: {row}");
}

/// A WAV file of `ms` of a `freq` Hz tone at 16 kHz (another rate than the call's).
fn tone_wav(freq: f64, ms: u32) -> Vec<u8> {
    let rate = 16_000u32;
    let n = rate * ms / 1000;
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + n * 2).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(n * 2).to_le_bytes());
    for i in 0..n {
        let s = ((f64::from(i) * freq * std::f64::consts::TAU / f64::from(rate)).sin() * 10_000.0)
            as i16;
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

// Several threads: the test blocks on its media socket while its web servers
// (webhook receiver, prompt server) must answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn play_fetches_a_wav_over_http() {
    // A web server with the prompt.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let web = listener.local_addr().unwrap();
    let wav = tone_wav(500.0, 1500);
    let app = axum::Router::new().route(
        "/prompt.wav",
        axum::routing::get(move || {
            let wav = wav.clone();
            async move { ([("content-type", "audio/wav")], wav) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let server = Server::start(Options::default());
    let (_, _) = customer_with_number(
        &server,
        "fay",
        "+15551230004",
        json!({"name": "prompt", "actions": [
            {"type": "answer"},
            {"type": "play", "option": {"stream_urls": [format!("http://{web}/prompt.wav")]}},
            {"type": "hangup"}
        ]}),
    )
    .await;
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    media
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut sipp = sipp_call(
        server.sip,
        "+15551230004",
        media.local_addr().unwrap().port(),
    );
    let mut pcm = Vec::new();
    let mut buf = [0u8; 1500];
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        if let Ok(n) = media.recv(&mut buf)
            && let Ok(p) = rtp_types::RtpPacket::parse(&buf[..n])
            && p.payload_type() == 0
        {
            let mut frame = [0i16; 160];
            media_engine::codec::G711::Ulaw.decode(p.payload(), &mut frame);
            pcm.extend_from_slice(&frame);
        }
        if let Ok(Some(_)) = sipp.try_wait() {
            break;
        }
    }
    assert!(sipp.wait().unwrap().success(), "{}", server.printed());
    assert!(pcm.len() >= 8000, "{} samples of the prompt", pcm.len());
    let f = media_engine::analysis::frequency(&pcm[1600..pcm.len() - 1600], 8000);
    assert!((f - 500.0).abs() < 15.0, "the prompt's 500 Hz tone: {f} Hz");
}

/// Waits until `who`'s newest call has `status`; returns it.
async fn call_with_status(who: &common::Client, status: &str) -> serde_json::Value {
    for _ in 0..100 {
        let (_, calls) = who.get("/calls").await;
        if let Some(c) = calls["result"].as_array().and_then(|a| a.first())
            && c["status"] == status
        {
            return c.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no call reached {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_hangs_live_calls_up_and_a_crash_leaves_no_call_live() {
    let server = Server::start(Options::default());
    let (gus, _) = customer_with_number(&server, "gus", "+15551230005", json!({"name": "hold", "actions": [{"type": "answer"}, {"type": "sleep", "option": {"duration": 60000}}]})).await;
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = media.local_addr().unwrap().port();

    // A clean stop: the call gets its BYE (SIPp succeeds) and its final row.
    let sipp = sipp_call(server.sip, "+15551230005", port);
    let live = call_with_status(&gus, "progressing").await;
    let server = tokio::task::spawn_blocking(move || server.restart())
        .await
        .unwrap();
    let mut sipp = sipp;
    let status = tokio::task::spawn_blocking(move || sipp.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "SIPp got the BYE of the stop: {status}");
    let gus = common::Client {
        base: format!("http://{}/v1.0", server.http),
        ..gus
    };
    let (_, row) = gus
        .get(&format!("/calls/{}", live["id"].as_str().unwrap()))
        .await;
    assert_eq!(row["status"], "hangup", "{row}");
    assert_eq!(row["hangup_reason"], "normal", "{row}");

    // A crash: nothing hangs the call up; the next start closes its row as failed.
    let mut sipp = sipp_call(server.sip, "+15551230005", port);
    let live = call_with_status(&gus, "progressing").await;
    let server = tokio::task::spawn_blocking(move || server.crash_and_restart())
        .await
        .unwrap();
    let _ = sipp.kill();
    let _ = sipp.wait();
    let gus = common::Client {
        base: format!("http://{}/v1.0", server.http),
        ..gus
    };
    let (_, row) = gus
        .get(&format!("/calls/{}", live["id"].as_str().unwrap()))
        .await;
    assert_eq!(row["status"], "hangup", "{row}");
    assert_eq!(row["hangup_reason"], "failed", "{row}");
    let (_, af) = gus
        .get(&format!(
            "/activeflows/{}",
            live["activeflow_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(af["status"], "ended", "{af}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_complete_flow_id_runs_after_the_caller_hangs_up() {
    let receiver = Receiver::start().await;
    let server = Server::start(Options::default());
    let (_, hal) = server.admin().new_customer("hal").await;
    let (_, after) = hal
        .post(
            "/flows",
            json!({"name": "after", "actions": [
                {"type": "webhook_send", "option": {"sync": true, "uri": receiver.url(),
                 "data": "{\"type\":\"after_call\",\"from\":\"${voipbin.call.source.target}\"}"}}
            ]}),
        )
        .await;
    assert!(after["id"].is_string(), "{after}");
    let (_, flow) = hal
        .post(
            "/flows",
            json!({"name": "main", "on_complete_flow_id": after["id"], "actions": [
                {"type": "answer"},
                {"type": "hangup"}
            ]}),
        )
        .await;
    assert_eq!(flow["on_complete_flow_id"], after["id"], "{flow}");
    let (status, _) = hal
        .post(
            "/numbers",
            json!({"number": "+15551230006", "call_flow_id": flow["id"]}),
        )
        .await;
    assert_eq!(status, 200);
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut sipp = sipp_call(
        server.sip,
        "+15551230006",
        media.local_addr().unwrap().port(),
    );
    let status = tokio::task::spawn_blocking(move || sipp.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let got = receiver
        .wait_for(Duration::from_secs(10), |g| {
            !Receiver::of_type(g, "after_call").is_empty()
        })
        .await;
    let after_call = Receiver::of_type(&got, "after_call");
    assert_eq!(after_call.len(), 1);
    assert_eq!(
        after_call[0].json()["from"],
        "+15557654321",
        "variables carry over"
    );
    let (_, flows) = hal.get("/activeflows").await;
    let flows = flows["result"].as_array().unwrap();
    assert_eq!(flows.len(), 2, "{flows:?}");
    assert_eq!(flows[0]["flow_id"], after["id"]);
    assert_eq!(flows[0]["reference_activeflow_id"], flows[1]["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talk_uses_an_openai_compatible_speech_api_when_asked() {
    // A stub of the speech API: checks the key, records the request, answers a WAV.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<serde_json::Value>::new()));
    let seen_in = seen.clone();
    let app = axum::Router::new().route(
        "/v1/audio/speech",
        axum::routing::post(
            move |headers: axum::http::HeaderMap,
                  axum::Json(body): axum::Json<serde_json::Value>| {
                let seen = seen_in.clone();
                async move {
                    if headers.get("authorization").and_then(|v| v.to_str().ok())
                        != Some("Bearer sk-test")
                    {
                        return (axum::http::StatusCode::UNAUTHORIZED, Vec::new());
                    }
                    seen.lock().unwrap().push(body);
                    (axum::http::StatusCode::OK, tone_wav(700.0, 1200))
                }
            },
        ),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut options = Options::default();
    options.args.extend([
        "--tts-openai-url".to_owned(),
        format!("http://{api}"),
        "--tts-openai-key".to_owned(),
        "sk-test".to_owned(),
    ]);
    let server = Server::start(options);
    let (_, _) = customer_with_number(&server, "ida", "+15551230007", json!({"name": "cloud", "actions": [
                {"type": "answer"},
                {"type": "talk", "option": {"text": "Hello from the cloud.", "provider": "openai", "voice_id": "nova"}},
                {"type": "hangup"}
            ]})).await;
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    media
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut sipp = sipp_call(
        server.sip,
        "+15551230007",
        media.local_addr().unwrap().port(),
    );
    let mut pcm = Vec::new();
    let mut buf = [0u8; 1500];
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        if let Ok(n) = media.recv(&mut buf)
            && let Ok(p) = rtp_types::RtpPacket::parse(&buf[..n])
            && p.payload_type() == 0
        {
            let mut frame = [0i16; 160];
            media_engine::codec::G711::Ulaw.decode(p.payload(), &mut frame);
            pcm.extend_from_slice(&frame);
        }
        if let Ok(Some(_)) = sipp.try_wait() {
            break;
        }
    }
    assert!(sipp.wait().unwrap().success());
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 1, "one request, then the cache");
    assert_eq!(requests[0]["input"], "Hello from the cloud.");
    assert_eq!(requests[0]["voice"], "nova");
    assert_eq!(requests[0]["response_format"], "wav");
    assert!(pcm.len() >= 8000, "{} samples", pcm.len());
    let f = media_engine::analysis::frequency(&pcm[1600..pcm.len() - 1600], 8000);
    assert!((f - 700.0).abs() < 15.0, "the API's audio: {f} Hz");
}

/// PCMU payloads and when they arrived.
type Timed = Vec<(std::time::Instant, Vec<u8>)>;

/// The RTP a test's media socket receives, timestamped, gathered by a thread.
struct Heard {
    packets: std::sync::Arc<std::sync::Mutex<Timed>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Heard {
    fn start(socket: UdpSocket) -> Self {
        let packets = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (p, s) = (packets.clone(), stop.clone());
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(n) = socket.recv(&mut buf)
                    && let Ok(r) = rtp_types::RtpPacket::parse(&buf[..n])
                    && r.payload_type() == 0
                {
                    p.lock()
                        .unwrap()
                        .push((std::time::Instant::now(), r.payload().to_vec()));
                }
            }
        });
        Heard { packets, stop }
    }

    /// Waits `ms`, then returns the PCMU payloads of the last `window` ms.
    async fn after(&self, ms: u64, window: u64) -> Vec<Vec<u8>> {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        let since = std::time::Instant::now() - Duration::from_millis(window);
        self.packets
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, _)| *at >= since)
            .map(|(_, p)| p.clone())
            .collect()
    }
}

impl Drop for Heard {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mute_hold_and_music_on_hold_change_what_the_caller_hears() {
    let server = Server::start(Options::default());
    let prompts = server.data_dir.path().join("prompts");
    std::fs::create_dir_all(&prompts).unwrap();
    std::fs::write(prompts.join("tone.wav"), tone_wav(700.0, 4000)).unwrap();
    let (gil, _) = customer_with_number(
        &server,
        "gil",
        "+15551230010",
        json!({"name": "hold", "actions": [
            {"type": "answer"},
            {"type": "play", "option": {"stream_urls": ["prompts/tone.wav"]}},
            {"type": "sleep", "option": {"duration": 30000}},
            {"type": "hangup"}
        ]}),
    )
    .await;
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = media.local_addr().unwrap().port();
    let heard = Heard::start(media);
    let mut sipp = sipp_scenario(server.sip, "uac_flow_held.xml", "+15551230010", port);
    let call = call_with_status(&gil, "progressing").await;
    let id = call["id"].as_str().unwrap().to_owned();
    let loud = 1e5;
    assert!(level(&heard.after(600, 300).await) > loud, "the tone plays");

    // Muted out: packets keep coming, silent; unmuted: the tone again.
    let (status, body) = gil
        .post(&format!("/calls/{id}/mute"), json!({"direction": "out"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["mute_direction"], "out", "{body}");
    let muted = heard.after(400, 300).await;
    assert!(muted.len() >= 10, "{} packets while muted", muted.len());
    assert!(
        level(&muted) < 100.0,
        "silence while muted: {}",
        level(&muted)
    );
    let (_, row) = gil.get(&format!("/calls/{id}")).await;
    assert_eq!(row["mute_direction"], "out", "{row}");
    let (status, body) = gil
        .post(
            &format!("/calls/{id}/mute"),
            json!({"direction": "sideways"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("direction"), "{body}");
    let (status, body) = gil
        .call("DELETE", &format!("/calls/{id}/mute"), Some(json!({})))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["mute_direction"], "", "{body}");
    assert!(level(&heard.after(400, 300).await) > loud, "unmuted");

    // Hold and unhold: SIPp checks each re-INVITE's direction.
    let (status, body) = gil.post(&format!("/calls/{id}/hold"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = gil.delete(&format!("/calls/{id}/hold")).await;
    assert_eq!(status, 200, "{body}");

    // The tone ends (4 s) and the flow sleeps in silence; music on hold fills it.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(level(&heard.after(0, 300).await) < 100.0, "nothing plays");
    let (status, body) = gil.post(&format!("/calls/{id}/moh"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let music = heard.after(600, 400).await;
    assert!(
        music.len() >= 15 && level(&music) > loud,
        "music on hold: {} packets at {}",
        music.len(),
        level(&music)
    );
    let (status, body) = gil.delete(&format!("/calls/{id}/moh")).await;
    assert_eq!(status, 200, "{body}");
    assert!(heard.after(400, 200).await.is_empty(), "the music stopped");

    let (status, body) = gil.post(&format!("/calls/{id}/hangup"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let status = tokio::task::spawn_blocking(move || sipp.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        status.success(),
        "SIPp saw a sendonly then a sendrecv re-INVITE, then the BYE: {status}; {}",
        server.printed()
    );
    let (status, _) = gil.post(&format!("/calls/{id}/hold"), json!({})).await;
    assert_eq!(status, 400, "a call that hung up cannot be held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_carriers_own_hold_and_unhold_are_answered() {
    let server = Server::start(Options::default());
    let (hal, _) = customer_with_number(
        &server,
        "hal",
        "+15551230011",
        json!({"name": "wait", "actions": [
            {"type": "answer"}, {"type": "sleep", "option": {"duration": 30000}}, {"type": "hangup"}
        ]}),
    )
    .await;
    let media_port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sip = server.sip.to_string();
    // SIPp sends a=sendonly then a=sendrecv re-INVITEs and fails unless the answers
    // say recvonly, then sendrecv (RFC 3264 section 8.4); then it hangs up.
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sipp")
            .arg(sip)
            .arg("-sf")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/sipp-scenarios/uac_reinvite_hold.xml"
            ))
            .args([
                "-s",
                "+15551230011",
                "-i",
                "127.0.0.1",
                "-p",
                "0",
                "-m",
                "1",
            ])
            .args([
                "-mp",
                &media_port.to_string(),
                "-nostdin",
                "-timeout",
                "30s",
            ])
            .current_dir(std::env::temp_dir())
            .stdout(std::process::Stdio::null())
            .status()
    })
    .await
    .unwrap()
    .expect("sipp runs");
    assert!(status.success(), "{status}; {}", server.printed());
    let call = call_with_status(&hal, "hangup").await;
    assert_eq!(call["hangup_by"], "remote", "{call}");
    assert_eq!(call["hangup_reason"], "normal", "{call}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talk_without_espeak_fails_with_an_event_and_the_flow_goes_on() {
    let receiver = Receiver::start().await;
    // A PATH where espeak-ng is not.
    let empty = tempfile::tempdir().unwrap();
    let server = Server::start(Options {
        env: vec![("PATH".into(), empty.path().display().to_string())],
        ..Options::default()
    });
    let (_, ivy) = server.admin().new_customer("ivy").await;
    let (status, _) = ivy
        .put(
            "/customer",
            json!({"webhook_uri": receiver.url(), "webhook_method": "POST"}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, flow) = ivy
        .post(
            "/flows",
            json!({"name": "speak", "actions": [
                {"type": "answer"},
                {"type": "talk", "option": {"text": "Hello.", "language": "en-US"}},
                {"type": "webhook_send", "option": {"sync": true, "uri": receiver.url(), "data": "{\"type\":\"went_on\"}"}},
                {"type": "hangup"}
            ]}),
        )
        .await;
    let (status, _) = ivy
        .post(
            "/numbers",
            json!({"number": "+15551230012", "call_flow_id": flow["id"]}),
        )
        .await;
    assert_eq!(status, 200);
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut sipp = sipp_call(
        server.sip,
        "+15551230012",
        media.local_addr().unwrap().port(),
    );
    let status = tokio::task::spawn_blocking(move || sipp.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "the flow hung up: {status}");
    let got = receiver
        .wait_for(Duration::from_secs(10), |g| {
            !Receiver::of_type(g, "activeflow_action_failed").is_empty()
                && !Receiver::of_type(g, "went_on").is_empty()
        })
        .await;
    let failed = Receiver::of_type(&got, "activeflow_action_failed");
    let message = failed[0].json()["data"]["message"].to_string();
    assert!(message.contains("espeak-ng"), "{message}");
    let call = call_with_status(&ivy, "hangup").await;
    assert_eq!(call["hangup_reason"], "normal", "{call}");
    let (status, _) = ivy.get("/calls").await;
    assert_eq!(status, 200, "the server is still up");
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

/// The RTP payloads of PCMU packets in a pcap file written by tcpdump on `lo`.
fn pcap_pcmu(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let Some(link) = bytes.get(20..24) else {
        return out;
    };
    // LINKTYPE_EN10MB (lo as Ethernet), LINUX_SLL, LINUX_SLL2.
    let link_len = match u32::from_le_bytes(link.try_into().unwrap()) {
        1 => 14,
        113 => 16,
        276 => 20,
        other => panic!("link type {other}"),
    };
    let mut at = 24;
    while let Some(header) = bytes.get(at..at + 16) {
        let len = u32::from_le_bytes(header[8..12].try_into().unwrap()) as usize;
        let Some(frame) = bytes.get(at + 16..at + 16 + len) else {
            break;
        };
        at += 16 + len;
        let Some(ip) = frame.get(link_len..) else {
            continue;
        };
        let ihl = usize::from(ip.first().map_or(0, |b| b & 0x0f)) * 4;
        if let Some(udp) = ip.get(ihl..)
            && let Some(rtp) = udp.get(8..)
            && let Ok(p) = rtp_types::RtpPacket::parse(rtp)
            && p.payload_type() == 0
        {
            out.push(p.payload().to_vec());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_presses_one_from_a_pcap_while_talking_and_hears_the_prompt() {
    // Our RTP ports, so tcpdump captures what we send to SIPp.
    let base = 42_000 + (std::process::id() % 100) as u16 * 100;
    let ports = format!("{base}-{}", base + 99);
    let server = Server::start(Options {
        args: vec!["--rtp-ports".into(), ports.clone()],
        ..Options::default()
    });
    let (kim, _) = customer_with_number(&server, "kim", "+15551230014", json!({"name": "menu", "actions": [
                {"type": "answer"},
                {"type": "talk", "option": {"text": "Welcome to the test line. Press one for sales.", "language": "en-US"}},
                {"type": "digits_receive", "option": {"duration": 10000, "length": 1}},
                {"type": "branch", "option": {"target_ids": {"1": "sales"}, "default_target_id": "bye"}},
                {"id": "sales", "type": "talk", "option": {"text": "Sales.", "language": "en-US"}},
                {"id": "bye", "type": "hangup"}
            ]})).await;

    let dir = tempfile::tempdir().unwrap();
    let caller: Vec<u8> = (0..8000 * 3)
        .map(|i| {
            let s = (f64::from(i) * 440.0 * std::f64::consts::TAU / 8000.0).sin() * 6000.0;
            media_engine::codec::G711::Ulaw.encode_sample(s as i16)
        })
        .collect();
    std::fs::write(dir.path().join("caller.ul"), caller).unwrap();
    let capture = dir.path().join("heard.pcap");
    let mut tcpdump = std::process::Command::new("tcpdump")
        .args(["-i", "lo", "-U", "-n", "-w"])
        .arg(&capture)
        .args(["udp and src portrange", &ports])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tcpdump (scripts/test installs it)");
    let mut err = std::io::BufReader::new(tcpdump.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut err, &mut line).unwrap();
    assert!(line.contains("listening"), "tcpdump: {line}");

    let (sip, cwd) = (server.sip.to_string(), dir.path().to_owned());
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sipp")
            .arg(sip)
            .arg("-sf")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/sipp-scenarios/uac_flow_dtmf.xml"
            ))
            .args(["-s", "+15551230014", "-i", "127.0.0.1", "-mi", "127.0.0.1"])
            .args(["-p", "0", "-m", "1", "-nostdin", "-timeout", "40s"])
            .current_dir(cwd)
            .stdout(std::process::Stdio::null())
            .status()
    })
    .await
    .unwrap()
    .expect("sipp runs");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = tcpdump.kill();
    let _ = tcpdump.wait();
    assert!(
        status.success(),
        "SIPp got the BYE: {status}; {}",
        server.printed()
    );

    let call = call_with_status(&kim, "hangup").await;
    assert_eq!(call["hangup_reason"], "normal", "{call}");
    assert_eq!(call["hangup_by"], "local", "{call}");
    let received = call["rtp_stats"]["packets_received"].as_u64().unwrap_or(0);
    assert!(received > 100, "SIPp's audio arrived: {call}");
    let (_, flows) = kim.get("/activeflows").await;
    let executed = &flows["result"][0]["executed_actions"];
    assert!(
        executed
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["id"] == "sales")),
        "the 1 took the sales branch: {executed}"
    );
    let heard = pcap_pcmu(&std::fs::read(&capture).unwrap());
    assert!(heard.len() > 100, "{} packets captured", heard.len());
    assert!(
        level(&heard) > 1e5,
        "speech reached SIPp: {}",
        level(&heard)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_with_no_rtp_ends_as_failed_after_the_rtp_timeout() {
    let server = Server::start(Options {
        args: vec!["--rtp-timeout".into(), "2".into()],
        ..Options::default()
    });
    let (lee, _) = customer_with_number(
        &server,
        "lee",
        "+15551230015",
        json!({"name": "wait", "actions": [
            {"type": "answer"}, {"type": "sleep", "option": {"duration": 30000}}, {"type": "hangup"}
        ]}),
    )
    .await;
    // The caller's media socket never sends.
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let started = std::time::Instant::now();
    let mut sipp = sipp_call(
        server.sip,
        "+15551230015",
        media.local_addr().unwrap().port(),
    );
    let status = tokio::task::spawn_blocking(move || sipp.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "SIPp got a BYE: {status}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "ended by the 2 s timeout, not the 30 s sleep: {:?}",
        started.elapsed()
    );
    let call = call_with_status(&lee, "hangup").await;
    assert_eq!(call["hangup_reason"], "failed", "{call}");
    assert_eq!(call["hangup_by"], "local", "{call}");
    let (_, flows) = lee.get("/activeflows").await;
    assert_eq!(flows["result"][0]["status"], "ended", "no orphan: {flows}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chained_flow_can_be_stopped_through_its_own_activeflow() {
    let server = Server::start(Options::default());
    let (_, max) = server.admin().new_customer("max").await;
    let (_, next) = max
        .post(
            "/flows",
            json!({"name": "next", "actions": [{"type": "sleep", "option": {"duration": 30000}}]}),
        )
        .await;
    let (_, flow) = max
        .post(
            "/flows",
            json!({"name": "first", "on_complete_flow_id": next["id"], "actions": [{"type": "answer"}]}),
        )
        .await;
    let (status, _) = max
        .post(
            "/numbers",
            json!({"number": "+15551230016", "call_flow_id": flow["id"]}),
        )
        .await;
    assert_eq!(status, 200);
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut sipp = sipp_call(
        server.sip,
        "+15551230016",
        media.local_addr().unwrap().port(),
    );
    // The chained activeflow, running.
    let mut chained = None;
    for _ in 0..100 {
        let (_, flows) = max.get("/activeflows").await;
        if let Some(f) = flows["result"].as_array().and_then(|a| {
            a.iter()
                .find(|f| f["flow_id"] == next["id"] && f["status"] == "running")
        }) {
            chained = f["id"].as_str().map(str::to_owned);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let chained = chained.expect("the chained flow runs");
    let started = std::time::Instant::now();
    let (status, body) = max
        .post(&format!("/activeflows/{chained}/stop"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let status = tokio::task::spawn_blocking(move || sipp.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "the call ended with its flow: {status}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "not the 30 s sleep"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_softphone_offering_opus_hears_the_flow_in_opus() {
    let server = Server::start(Options::default());
    let (ned, _) = customer_with_number(&server, "ned", "+15551230017", json!({"name": "hello", "actions": [
                {"type": "answer"},
                {"type": "talk", "option": {"text": "Hello from the platform, in Opus.", "language": "en-US"}},
                {"type": "hangup"}
            ]})).await;
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    media
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let port = media.local_addr().unwrap().port();
    let mut sipp = sipp_scenario(server.sip, "uac_flow_opus.xml", "+15551230017", port);
    let mut decoder = media_engine::codec::opus::OpusCodec::new(48_000, 0).unwrap();
    let (mut opus, mut other, mut sum, mut n) = (0, 0, 0.0f64, 0.0f64);
    let mut frame = [0i16; 960];
    let mut buf = [0u8; 1500];
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if let Ok(len) = media.recv(&mut buf)
            && let Ok(p) = rtp_types::RtpPacket::parse(&buf[..len])
        {
            if p.payload_type() != 111 {
                other += 1;
                continue;
            }
            opus += 1;
            let got = decoder.decode(p.payload(), &mut frame).unwrap();
            for s in &frame[..got] {
                sum += f64::from(*s).powi(2);
                n += 1.0;
            }
        }
        if let Ok(Some(_)) = sipp.try_wait() {
            break;
        }
    }
    assert!(sipp.wait().unwrap().success(), "{}", server.printed());
    assert_eq!(other, 0, "every packet is Opus");
    assert!(opus > 50, "{opus} Opus packets");
    assert!(sum / n.max(1.0) > 1e5, "speech, not silence: {}", sum / n);
    let call = call_with_status(&ned, "hangup").await;
    assert_eq!(call["hangup_reason"], "normal", "{call}");
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
async fn a_call_on_postgres_leaves_its_rows_there() {
    let Some(database) = common::fresh_database().await else {
        return;
    };
    let server = Server::start(Options {
        database: Some(database),
        ..Options::default()
    });
    let (pat, _) = customer_with_number(
        &server,
        "pat",
        "+15551230019",
        json!({"name": "beep", "actions": [{"type": "answer"}, {"type": "beep"}, {"type": "hangup"}]}),
    )
    .await;
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut sipp = sipp_call(
        server.sip,
        "+15551230019",
        media.local_addr().unwrap().port(),
    );
    let status = tokio::task::spawn_blocking(move || sipp.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{}", server.printed());
    let call = call_with_status(&pat, "hangup").await;
    assert_eq!(call["hangup_reason"], "normal", "{call}");
    assert!(
        call["rtp_stats"]["packets_sent"].as_u64().unwrap_or(0) > 0,
        "{call}"
    );
    let (_, flows) = pat.get("/activeflows").await;
    assert_eq!(flows["result"][0]["status"], "ended", "{flows}");
}

/// A baresip 1.0 config dir (TESTING.md's recipe): G.711 (Opus first with `opus`),
/// a WAV source, received audio dumped under `rec/`, commands on a UDP console.
fn baresip_dir(sip_port: u16, cons_port: u16, opus: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    // aufile wants the codec's own rate and channels (baresip's Opus is stereo).
    let (rate, channels) = if opus { ("48000", "2") } else { ("8000", "1") };
    let status = std::process::Command::new("sox")
        .args(["-n", "-r", rate, "-c", channels, "-b", "16"])
        .arg(path.join("src.wav"))
        .args(["synth", "40", "sine", "300", "vol", "0.1"])
        .status()
        .expect("sox");
    assert!(status.success());
    std::fs::create_dir_all(path.join("rec")).unwrap();
    let config = format!(
        "module_path /usr/lib/baresip/modules\npoll_method epoll\nsip_listen 127.0.0.1:{sip_port}\nnet_interface 127.0.0.1\n\
         audio_player alsa,null\naudio_alert alsa,null\naudio_source aufile,{src}\n\
         {opus}module g711.so\nmodule aufile.so\nmodule sndfile.so\nmodule alsa.so\nmodule cons.so\n\
         module_tmp account.so\nmodule_app menu.so\ncons_listen 127.0.0.1:{cons_port}\n\
         snd_path {rec}\n",
        src = path.join("src.wav").display(),
        rec = path.join("rec").display(),
        opus = if opus { "module opus.so\n" } else { "" },
    );
    std::fs::write(path.join("config"), config).unwrap();
    std::fs::write(path.join("accounts"), "<sip:alice@127.0.0.1>;regint=0\n").unwrap();
    std::fs::write(path.join("contacts"), "").unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_calls_in_hears_the_menu_and_presses_one() {
    let out = baresip_menu_call(false).await;
    assert!(out.contains("PCMU"), "G.711 was used: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_offering_opus_is_answered_in_opus() {
    let out = baresip_menu_call(true).await;
    assert!(out.contains("opus"), "Opus was used: {out}");
}

/// baresip calls a menu, presses 1 a second into the welcome, and must hear speech
/// and take the sales branch; returns what baresip printed about its audio codecs.
async fn baresip_menu_call(opus: bool) -> String {
    let server = Server::start(Options::default());
    let (quinn, _) = customer_with_number(
        &server,
        "quinn",
        "+15551230020",
        json!({"name": "menu", "actions": [
            {"type": "answer"},
            {"type": "talk", "option": {"text": "Welcome. Press one for sales.", "language": "en-US"}},
            {"type": "digits_receive", "option": {"duration": 10000, "length": 1}},
            {"type": "branch", "option": {"target_ids": {"1": "sales"}, "default_target_id": "bye"}},
            {"id": "sales", "type": "talk", "option": {"text": "Thank you for calling sales.", "language": "en-US"}},
            {"id": "bye", "type": "hangup"}
        ]}),
    )
    .await;
    let free = || {
        UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (sip_port, cons_port) = (free(), free());
    let dir = baresip_dir(sip_port, cons_port, opus);
    let log = std::fs::File::create(dir.path().join("out.log")).unwrap();
    let mut baresip = std::process::Command::new("baresip")
        .arg("-f")
        .arg(dir.path())
        .args(["-e", &format!("/dial sip:+15551230020@{}", server.sip)])
        .args(["-t", "40"])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("baresip (Debian's baresip-core; scripts/test installs it)");
    let call = call_with_status(&quinn, "progressing").await;
    // A second into the welcome, press 1 on baresip's console (\x04 lets the key go).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let console = UdpSocket::bind("127.0.0.1:0").unwrap();
    console.send_to(b"1\x04", ("127.0.0.1", cons_port)).unwrap();
    let ended = call_with_status(&quinn, "hangup").await;
    let _ = baresip.kill();
    let _ = baresip.wait();
    assert_eq!(ended["hangup_by"], "local", "the flow hung up: {ended}");
    let (_, flow) = quinn
        .get(&format!(
            "/activeflows/{}",
            call["activeflow_id"].as_str().unwrap()
        ))
        .await;
    assert!(
        flow["executed_actions"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["id"] == "sales")),
        "baresip's 1 took the sales branch: {flow}"
    );
    // What baresip heard: the dump of the decoded audio holds speech.
    let dump = std::fs::read_dir(dir.path().join("rec"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .expect("baresip dumped what it heard");
    let bytes = std::fs::read(&dump).unwrap();
    let pcm: Vec<i16> = bytes[44.min(bytes.len())..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    assert!(pcm.len() > 8000, "{} samples heard", pcm.len());
    let level = pcm.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / pcm.len() as f64;
    assert!(level > 1e5, "speech reached baresip: {level}");
    std::fs::read_to_string(dir.path().join("out.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("audio") || l.contains("codec"))
        .collect::<Vec<_>>()
        .join("\n")
}
