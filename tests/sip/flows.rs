//! Flows carried out in a call: the full menu call, prompts over HTTP, chaining, TTS
//! providers, a failing action, Postgres.

use super::*;

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

    let media = media_socket();
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
            press(&media, platform.unwrap(), '1');
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
    let (fay, _) = customer_with_number(
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
    let (status, pcm) = hear_call(&server, "+15551230004");
    assert!(status.success(), "{}", server.printed());
    assert!(pcm.len() >= 8000, "{} samples of the prompt", pcm.len());
    let f = media_engine::analysis::frequency(&pcm[1600..pcm.len() - 1600], 8000);
    assert!((f - 500.0).abs() < 15.0, "the prompt's 500 Hz tone: {f} Hz");
    // The call's actor is gone once the call is: /metrics counts no live call.
    call_with_status(&fay, "hangup").await;
    let metrics = server.metrics().await;
    assert!(
        metrics.lines().any(|l| l == "voipbin_calls_live 0"),
        "{metrics}"
    );
    // And it is counted, by how it ended.
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("voipbin_calls_total{")
                && l.contains("hangup_reason=\"normal\"")
                && l.contains("answered=\"true\"")
                && l.ends_with(" 1")),
        "{metrics}"
    );
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
    let sipp = sipp_call(
        server.sip,
        "+15551230006",
        media.local_addr().unwrap().port(),
    );
    let status = sipp_done(sipp).await;
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
    let (status, pcm) = hear_call(&server, "+15551230007");
    assert!(status.success(), "{}", server.printed());
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 1, "one request, then the cache");
    assert_eq!(requests[0]["input"], "Hello from the cloud.");
    assert_eq!(requests[0]["voice"], "nova");
    assert_eq!(requests[0]["response_format"], "wav");
    assert!(pcm.len() >= 8000, "{} samples", pcm.len());
    let f = media_engine::analysis::frequency(&pcm[1600..pcm.len() - 1600], 8000);
    assert!((f - 700.0).abs() < 15.0, "the API's audio: {f} Hz");
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
    let sipp = sipp_call(
        server.sip,
        "+15551230012",
        media.local_addr().unwrap().port(),
    );
    let status = sipp_done(sipp).await;
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
    let sipp = sipp_call(
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
    let status = sipp_done(sipp).await;
    assert!(status.success(), "the call ended with its flow: {status}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "not the 30 s sleep"
    );
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
    let sipp = sipp_call(
        server.sip,
        "+15551230019",
        media.local_addr().unwrap().port(),
    );
    let status = sipp_done(sipp).await;
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
