//! A call while it lasts: the API's hangup and interrupts, CANCEL, stop and crash,
//! mute, hold and music on hold, the carrier's own hold (a=inactive too), the RTP timeout,
//! an expired session timer.

use super::*;

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
    let sipp = sipp_call(
        server.sip,
        "+15551230002",
        media.local_addr().unwrap().port(),
    );
    let heard = Heard::start(media);
    let answered = call_with_status(&carol, "progressing").await;
    let id = answered["id"].as_str().unwrap().to_owned();
    // Interrupts while the flow sleeps: record, speak, stop recording.
    let (status, err) = carol
        .post(&format!("/calls/{id}/talk"), json!({"text": " "}))
        .await;
    assert_eq!(status, 400, "{err}");
    assert!(err.to_string().contains("text"), "{err}");
    let (status, err) = carol
        .post(
            &format!("/calls/{id}/recording_start"),
            json!({"end_of_key": "5"}),
        )
        .await;
    assert_eq!(status, 400, "end_of_key is none, any, * or #: {err}");
    let (status, err) = carol
        .post(
            &format!("/calls/{id}/recording_start"),
            json!({"durration": 5}),
        )
        .await;
    assert_eq!(status, 400, "an unknown field is named: {err}");
    assert!(err.to_string().contains("durration"), "{err}");
    let (status, body) = carol
        .post(
            &format!("/calls/{id}/recording_start"),
            json!({"end_of_key": "#", "duration": 60}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = carol
        .post(
            &format!("/calls/{id}/talk"),
            json!({"text": "This call is being recorded.", "language": "en-US"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let frames = heard.after(3000, 3000).await;
    assert!(
        frames.len() > 50 && level(&frames) > 1e5,
        "the interrupt spoke: {} frames",
        frames.len()
    );
    let (status, body) = carol
        .post(&format!("/calls/{id}/recording_stop"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = carol.post(&format!("/calls/{id}/hangup"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let status = sipp_done(sipp).await;
    assert!(status.success(), "SIPp got the BYE: {status}");
    let row = call_with_status(&carol, "hangup").await;
    assert_eq!(row["id"], id.as_str(), "{row}");
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
    let sipp = sipp;
    let status = sipp_done(sipp).await;
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
async fn mute_hold_and_music_on_hold_change_what_the_caller_hears() {
    let server = Server::start(Options::default());
    let (gil, flow) = customer_with_number(
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
    // A customer's own media lives in media/<customer id>/ of the data dir.
    let prompts = server
        .data_dir
        .path()
        .join("media")
        .join(flow["customer_id"].as_str().unwrap())
        .join("prompts");
    std::fs::create_dir_all(&prompts).unwrap();
    std::fs::write(prompts.join("tone.wav"), tone_wav(700.0, 4000)).unwrap();
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = media.local_addr().unwrap().port();
    let heard = Heard::start(media);
    let sipp = sipp_scenario(server.sip, "uac_flow_held.xml", "+15551230010", port);
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
    let status = sipp_done(sipp).await;
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
    let (hal, _) = customer_with_number(&server, "hal", "+15551230011", wait_flow(30000)).await;
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
async fn a_caller_holding_with_inactive_gets_no_media_and_no_rtp_timeout() {
    let server = server_with_rtp_timeout(2);
    let (ray, _) = customer_with_number(
        &server,
        "ray",
        "+15551230024",
        json!({"name": "wait", "actions": [
            {"type": "answer"},
            {"type": "talk", "option": {"text": "You are on hold. Please wait for the next agent.", "language": "en-US"}},
            {"type": "sleep", "option": {"duration": 5000}}, {"type": "hangup"}
        ]}),
    )
    .await;
    // SIPp sends no RTP at all: it holds with a=inactive at once, then waits for the
    // flow's BYE, 5 s in, well past the 2 s timeout.
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = media.local_addr().unwrap().port();
    let heard = Heard::start(media);
    let started = std::time::Instant::now();
    let sipp = sipp_scenario(
        server.sip,
        "uac_reinvite_inactive.xml",
        "+15551230024",
        port,
    );
    let status = sipp_done(sipp).await;
    assert!(
        status.success(),
        "SIPp: a=inactive answered, then the BYE: {status}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    // The talk ran while the caller took no media: nothing (but perhaps a packet or
    // two before the re-INVITE) was sent to it.
    let packets = heard.after(0, 60_000).await.len();
    assert!(packets < 5, "{packets} packets sent to an inactive caller");
    let call = call_with_status(&ray, "hangup").await;
    assert_eq!(call["hangup_reason"], "normal", "the flow's hangup: {call}");
    assert_eq!(call["hangup_by"], "local", "{call}");
}

/// RFC 4028 end to end: the carrier asks for a 90 s session with itself refreshing,
/// then never refreshes; we end the session with a BYE 60 s in (90 - min(32, 90/3),
/// section 10) and the call as failed. The shortest interval RFC 4028 allows makes
/// this the suite's longest test (a minute, run beside the others).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_timer_that_expires_ends_the_call_as_failed() {
    let server = server_with_rtp_timeout(300);
    let (sam, _) = customer_with_number(&server, "sam", "+15551230025", wait_flow(120000)).await;
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let started = std::time::Instant::now();
    let sipp = sipp_scenario_with(
        server.sip,
        "uac_session_timer.xml",
        "+15551230025",
        media.local_addr().unwrap().port(),
        &["-timeout", "100s"],
    );
    let status = sipp_done(sipp).await;
    let took = started.elapsed();
    assert!(
        status.success(),
        "SIPp: the timer granted, then our BYE: {status}"
    );
    assert!(
        (Duration::from_secs(55)..Duration::from_secs(70)).contains(&took),
        "the BYE came {took:?} in, not at 60 s"
    );
    let call = call_with_status(&sam, "hangup").await;
    assert_eq!(call["hangup_reason"], "failed", "{call}");
    assert_eq!(call["hangup_by"], "local", "{call}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_with_no_rtp_ends_as_failed_after_the_rtp_timeout() {
    let server = server_with_rtp_timeout(2);
    let (lee, _) = customer_with_number(&server, "lee", "+15551230015", wait_flow(30000)).await;
    // The caller's media socket never sends.
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let started = std::time::Instant::now();
    let sipp = sipp_call(
        server.sip,
        "+15551230015",
        media.local_addr().unwrap().port(),
    );
    let status = sipp_done(sipp).await;
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

/// DELETE on a call, its activeflow and its recording: another customer's is 404;
/// the owner's is gone from the API at once, and the recording's file from disk; a
/// live call deleted is hung up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_activeflows_and_recordings_are_deleted_and_a_live_call_hung_up() {
    let server = Server::start(Options::default());
    let (una, _) = customer_with_number(
        &server,
        "una",
        "+15551230026",
        json!({"name": "record", "actions": [
            {"type": "answer"},
            {"type": "recording_start"},
            {"type": "talk", "option": {"text": "These words are recorded.", "language": "en-US"}},
            {"type": "recording_stop"},
            {"type": "hangup"}
        ]}),
    )
    .await;
    let (_, eve) = server.admin().new_customer("eve").await;
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sipp = sipp_call(
        server.sip,
        "+15551230026",
        media.local_addr().unwrap().port(),
    );
    let status = sipp_done(sipp).await;
    assert!(status.success());
    let call = call_with_status(&una, "hangup").await;
    let call_id = call["id"].as_str().unwrap().to_owned();
    let flow_id = call["activeflow_id"].as_str().unwrap().to_owned();
    let rec_id = call["recording_ids"][0].as_str().unwrap().to_owned();
    // The recording is finished once its row says so.
    let mut rec = serde_json::Value::Null;
    for _ in 0..50 {
        rec = una.get(&format!("/recordings/{rec_id}")).await.1;
        if rec["status"] == "ended" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rec["status"], "ended", "{rec}");
    let file = std::fs::read_dir(server.data_dir.path().join("recordings"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains(&rec_id))
        .expect("the recording's file");

    for path in [
        format!("/calls/{call_id}"),
        format!("/activeflows/{flow_id}"),
        format!("/recordings/{rec_id}"),
    ] {
        let (status, body) = eve.delete(&path).await;
        assert_eq!(status, 404, "another customer's {path}: {body}");
        let (status, body) = una.delete(&path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(body["tm_delete"].is_string(), "{path}: {body}");
        let (status, _) = una.get(&path).await;
        assert_eq!(status, 404, "{path} is gone");
        let (status, _) = una.delete(&path).await;
        assert_eq!(status, 404, "{path} deleted twice");
    }
    assert!(!file.exists(), "the file is gone: {file:?}");
    let (status, _) = una.get(&format!("/recordingfiles/{rec_id}")).await;
    assert_eq!(status, 404);
    let (_, calls) = una.get("/calls").await;
    assert_eq!(calls["result"].as_array().map(Vec::len), Some(0), "{calls}");

    // A live call deleted is hung up: SIPp gets its BYE long before the flow's end.
    let (vic, _) = customer_with_number(&server, "vic", "+15551230027", wait_flow(60000)).await;
    let started = std::time::Instant::now();
    let sipp = sipp_call(
        server.sip,
        "+15551230027",
        media.local_addr().unwrap().port(),
    );
    let live = call_with_status(&vic, "progressing").await;
    let path = format!("/calls/{}", live["id"].as_str().unwrap());
    let (status, body) = vic.delete(&path).await;
    assert_eq!(status, 200, "{body}");
    let status = sipp_done(sipp).await;
    assert!(status.success(), "SIPp got the BYE: {status}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let (status, _) = vic.get(&path).await;
    assert_eq!(status, 404);
}

/// `POST /calls/{id}/silence`: while the flow plays nothing, the caller is sent
/// silent audio (50 packets a second of PCMU 0xff); `DELETE` stops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_keeps_audio_flowing_while_the_flow_plays_nothing() {
    let server = Server::start(Options::default());
    let (wes, _) = customer_with_number(&server, "wes", "+15551230028", wait_flow(4000)).await;
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = media.local_addr().unwrap().port();
    let heard = Heard::start(media);
    let sipp = sipp_call(server.sip, "+15551230028", port);
    let call = call_with_status(&wes, "progressing").await;
    let path = format!("/calls/{}/silence", call["id"].as_str().unwrap());
    assert!(
        heard.after(500, 400).await.is_empty(),
        "a sleeping flow sends nothing"
    );
    let (status, body) = wes.post(&path, json!({})).await;
    assert_eq!(status, 200, "{body}");
    let silent = heard.after(600, 400).await;
    assert!(silent.len() >= 15, "{} packets in 400 ms", silent.len());
    assert!(
        silent.iter().all(|p| p.iter().all(|&b| b == 0xff)),
        "PCMU silence"
    );
    let (status, body) = wes.delete(&path).await;
    assert_eq!(status, 200, "{body}");
    assert!(heard.after(600, 400).await.is_empty(), "silence off");
    let status = sipp_done(sipp).await;
    assert!(status.success());
}

/// A flow that answers, waits `ms` and hangs up.
fn wait_flow(ms: u64) -> serde_json::Value {
    json!({"name": "wait", "actions": [
        {"type": "answer"}, {"type": "sleep", "option": {"duration": ms}}, {"type": "hangup"}
    ]})
}

/// A server whose calls end after `seconds` without RTP.
fn server_with_rtp_timeout(seconds: u32) -> Server {
    Server::start(Options {
        args: vec!["--rtp-timeout".into(), seconds.to_string()],
        ..Options::default()
    })
}
