//! Calls placed through `POST /v1.0/calls`: to a carrier's callee (SIPp) and to a
//! softphone (baresip, answering by itself), each hearing the call's flow; bad
//! bodies and the per-customer outbound limit.

use super::connect::{free_port, hung_up_calls, sipp_uas};
use super::peers::{assert_speech_in, baresip_heard, free_udp_port};
use super::*;

/// A customer with the number `+15550001111` (the caller ID its calls show).
async fn caller(server: &Server, name: &str) -> common::Client {
    let (_, client) = server.admin().new_customer(name).await;
    let (status, body) = client
        .post("/numbers", json!({"number": "+15550001111"}))
        .await;
    assert_eq!(status, 200, "{body}");
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_placed_through_the_api_reaches_the_callee_behind_the_carrier_and_runs_its_flow() {
    let server = Server::start(Options::default());
    let b_port = free_port();
    local_carrier(&server, json!({"port": b_port})).await;
    let ada = caller(&server, "ada").await;

    // B answers (checking the From carries +15550001111), listens 3 s, hangs up.
    let dir = tempfile::tempdir().unwrap();
    let b_media = media_socket();
    let b_log = dir.path().join("b.log");
    let b_rtp = b_media.local_addr().unwrap().port().to_string();
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
            b_log.to_str().unwrap(),
        ],
    );
    let heard = Heard::start(b_media);
    let (status, placed) = ada
        .post(
            "/calls",
            json!({
                "source": {"type": "tel", "target": "+15550001111"},
                "destinations": [{"type": "tel", "target": "+15559990000"}],
                "actions": [
                    {"type": "talk", "option": {"text": "Hello, this is a call from the platform. Goodbye for now.", "language": "en-US"}},
                    {"type": "sleep", "option": {"duration": 10000}}
                ],
                "variables": {"campaign": "winter"}
            }),
        )
        .await;
    assert_eq!(status, 200, "{placed}");
    assert_eq!(placed["groupcalls"], json!([]));
    let call = &placed["calls"][0];
    assert_eq!(call["direction"], "outgoing", "{placed}");
    assert_eq!(call["status"], "dialing");
    assert_eq!(call["destination"]["target"], "+15559990000");
    // The row is committed before the answer.
    let id = call["id"].as_str().unwrap();
    let (status, got) = ada.get(&format!("/calls/{id}")).await;
    assert_eq!(status, 200, "{got}");

    let speech = heard.after(2500, 2000).await;
    let b_status = sipp_done(callee).await;
    assert!(
        b_status.success(),
        "B's SIPp: {b_status}; its messages:\n{}\nthe server said:\n{}",
        std::fs::read_to_string(&b_log).unwrap_or_default(),
        server.printed()
    );
    assert!(speech.len() > 50, "{} packets reached B", speech.len());
    assert!(level(&speech) > 1e5, "B heard speech: {}", level(&speech));
    let calls = hung_up_calls(&ada, 1).await;
    let row = &calls[0];
    assert_eq!(row["id"], call["id"]);
    assert_eq!(row["status"], "hangup", "{row}");
    assert_eq!(row["hangup_by"], "remote", "B hung up: {row}");
    assert!(row["tm_ringing"].is_string() && row["tm_progressing"].is_string());
    let (_, flows) = ada.get("/activeflows").await;
    assert_eq!(flows["result"][0]["reference_id"], call["id"], "{flows}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_placed_to_baresip_is_answered_and_baresip_hears_the_flow() {
    let server = Server::start(Options::default());
    let bea = caller(&server, "bea").await;
    let (sip_port, cons_port) = (free_udp_port(), free_udp_port());
    let dir = baresip_dir(sip_port, cons_port, false, true);
    let log = std::fs::File::create(dir.path().join("out.log")).unwrap();
    let mut baresip = std::process::Command::new("baresip")
        .arg("-f")
        .arg(dir.path())
        .args(["-t", "40"])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("baresip (Debian's baresip-core; scripts/test installs it)");
    // baresip listens once it has read its config.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, placed) = bea
        .post(
            "/calls",
            json!({
                "source": {"type": "tel", "target": "+15550001111"},
                "destinations": [{"type": "sip", "target": format!("sip:alice@127.0.0.1:{sip_port}")}],
                "actions": [
                    {"type": "talk", "option": {"text": "Hello baresip, this call was placed through the API. Goodbye.", "language": "en-US"}},
                    {"type": "hangup"}
                ]
            }),
        )
        .await;
    assert_eq!(status, 200, "{placed}");
    let calls = hung_up_calls(&bea, 1).await;
    // The talk takes a few seconds: wait for it rather than for the first poll.
    let mut row = calls[0].clone();
    for _ in 0..150 {
        if row["status"] == "hangup" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (_, got) = bea
            .get(&format!(
                "/calls/{}",
                placed["calls"][0]["id"].as_str().unwrap()
            ))
            .await;
        row = got;
    }
    let _ = baresip.kill();
    let _ = baresip.wait();
    assert_eq!(
        row["status"],
        "hangup",
        "{row}\nbaresip said:\n{}\nthe server said:\n{}",
        std::fs::read_to_string(dir.path().join("out.log")).unwrap_or_default(),
        server.printed()
    );
    assert_eq!(row["hangup_by"], "local", "the flow hung up: {row}");
    assert!(row["tm_progressing"].is_string(), "baresip answered: {row}");
    assert_speech_in(&baresip_heard(dir.path()), "baresip");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_are_refused_naming_the_field_and_the_outbound_limit_gives_429() {
    let server = Server::start(Options {
        args: [
            Options::default().args,
            vec!["--max-outbound-calls".into(), "1".into()],
        ]
        .concat(),
        ..Options::default()
    });
    let cal = caller(&server, "cal").await;
    let (_, other) = server.admin().new_customer("dee").await;
    let (_, theirs) = other
        .post(
            "/flows",
            json!({"name": "x", "actions": [{"type": "hangup"}]}),
        )
        .await;
    let good = json!({
        "source": {"type": "tel", "target": "+15550001111"},
        "destinations": [{"type": "tel", "target": "+15559990000"}],
        "actions": [{"type": "hangup"}]
    });
    let with = |k: &str, v: serde_json::Value| {
        let mut body = good.clone();
        body[k] = v;
        body
    };
    for (body, field) in [
        (with("source", serde_json::Value::Null), "source"),
        (
            with("source", json!({"type": "tel", "target": "+15557770000"})),
            "source.target",
        ),
        (with("destinations", json!([])), "destinations"),
        (
            with("destinations", json!([{"type": "tel", "target": "12"}])),
            "destinations[0].target",
        ),
        (
            with("destinations", json!([{"type": "fax", "target": "x"}])),
            "destinations[0].type",
        ),
        (with("anonymous", json!("maybe")), "anonymous"),
        (with("flow_id", theirs["id"].clone()), "flow_id"),
        (with("actions", json!([{"type": "nonsense"}])), "actions"),
    ] {
        let (status, err) = cal.post("/calls", body.clone()).await;
        assert_eq!(status, 400, "{body} -> {err}");
        let message = err["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{field}: {message}");
    }
    let (_, calls) = cal.get("/calls").await;
    assert_eq!(calls["result"], json!([]), "no call was placed");

    let two = with(
        "destinations",
        json!([{"type": "tel", "target": "+15559990000"}, {"type": "tel", "target": "+15559990001"}]),
    );
    let (status, err) = cal.post("/calls", two).await;
    assert_eq!(status, 429, "{err}");
    let message = err["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("limit of 1 concurrent outbound calls"),
        "{message}"
    );
}

/// Waits up to 15 s for the groupcall `id` to reach `status`; returns it.
async fn groupcall_with_status(who: &common::Client, id: &str, status: &str) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    for _ in 0..150 {
        let (_, got) = who.get(&format!("/groupcalls/{id}")).await;
        if got["status"] == status {
            return got;
        }
        last = got;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the groupcall did not reach {status}: {last}");
}

/// A SIPp callee on `port` running `scenario`, its media to a socket of its own,
/// talking `talk_ms` once it answers.
fn sip_callee(scenario: &str, port: u16, talk_ms: u32) -> (std::process::Child, UdpSocket) {
    let media = media_socket();
    let rtp = media.local_addr().unwrap().port().to_string();
    let child = sipp_uas(
        scenario,
        port,
        &["-set", "rtpport", &rtp, "-d", &talk_ms.to_string()],
    );
    (child, media)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ring_all_groupcall_connects_the_first_to_answer_and_cancels_the_others() {
    let server = Server::start(Options::default());
    let gil = caller(&server, "gil").await;
    let ports = [free_port(), free_port(), free_port()];
    let (b1, _m1) = sip_callee("uas_no_answer.xml", ports[0], 0);
    let (b2, _m2) = sip_callee("uas_connect_callee.xml", ports[1], 1000);
    let (b3, _m3) = sip_callee("uas_no_answer.xml", ports[2], 0);
    let (status, group) = gil
        .post(
            "/groupcalls",
            json!({
                "source": {"type": "tel", "target": "+15550001111"},
                "destinations": ports
                    .iter()
                    .map(|p| json!({"type": "sip", "target": format!("sip:callee@127.0.0.1:{p}")}))
                    .collect::<Vec<_>>(),
                "actions": [{"type": "sleep", "option": {"duration": 10000}}],
                "ring_method": "ring_all"
            }),
        )
        .await;
    assert_eq!(status, 200, "{group}");
    assert_eq!(group["status"], "progressing");
    assert_eq!(group["ring_method"], "ring_all");
    assert_eq!(group["answer_method"], "hangup_others");
    assert_eq!(
        group["call_ids"].as_array().map(Vec::len),
        Some(3),
        "{group}"
    );
    let id = group["id"].as_str().unwrap();
    for (who, sipp) in [("B2 (answers)", b2), ("B1", b1), ("B3", b3)] {
        let status = sipp_done(sipp).await;
        assert!(status.success(), "{who}: {status}; {}", server.printed());
    }
    let ended = groupcall_with_status(&gil, id, "hangup").await;
    let answered = ended["answer_call_id"].as_str().unwrap();
    let (_, call) = gil.get(&format!("/calls/{answered}")).await;
    assert_eq!(
        call["destination"]["target"],
        format!("sip:callee@127.0.0.1:{}", ports[1]),
        "{call}"
    );
    assert_eq!(call["groupcall_id"], id);
    assert_eq!(ended["call_count"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linear_groupcall_rings_the_next_destination_after_a_busy_one() {
    let server = Server::start(Options::default());
    let hal = caller(&server, "hal").await;
    let ports = [free_port(), free_port()];
    let (b1, _m1) = sip_callee("uas_busy.xml", ports[0], 0);
    let (b2, _m2) = sip_callee("uas_connect_callee.xml", ports[1], 1000);
    let (status, group) = hal
        .post(
            "/groupcalls",
            json!({
                "source": {"type": "tel", "target": "+15550001111"},
                "destinations": ports
                    .iter()
                    .map(|p| json!({"type": "sip", "target": format!("sip:callee@127.0.0.1:{p}")}))
                    .collect::<Vec<_>>(),
                "actions": [{"type": "sleep", "option": {"duration": 10000}}],
                "ring_method": "linear"
            }),
        )
        .await;
    assert_eq!(status, 200, "{group}");
    assert_eq!(
        group["call_ids"].as_array().map(Vec::len),
        Some(1),
        "one at a time: {group}"
    );
    let id = group["id"].as_str().unwrap();
    for (who, sipp) in [("B1 (busy)", b1), ("B2 (answers)", b2)] {
        let status = sipp_done(sipp).await;
        assert!(status.success(), "{who}: {status}; {}", server.printed());
    }
    let ended = groupcall_with_status(&hal, id, "hangup").await;
    assert_eq!(
        ended["call_ids"].as_array().map(Vec::len),
        Some(2),
        "{ended}"
    );
    assert_eq!(ended["dial_index"], 1);
    assert_eq!(ended["answer_call_id"], ended["call_ids"][1]);
    let (status, _) = hal.delete(&format!("/groupcalls/{id}")).await;
    assert_eq!(status, 200);
    let (status, _) = hal.get(&format!("/groupcalls/{id}")).await;
    assert_eq!(status, 404, "deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_s_call_action_places_a_call_linked_to_its_own() {
    let server = Server::start(Options::default());
    let b_port = free_port();
    local_carrier(&server, json!({"port": b_port})).await;
    // A's call answers, places a call to B (which hears a talk), and waits.
    let (ivy, _) = customer_with_number(
        &server,
        "ivy",
        "+15551230050",
        json!({"name": "call out", "actions": [
            {"type": "answer"},
            {"type": "call", "option": {
                "source": {"type": "tel", "target": "+15550001111"},
                "destinations": [{"type": "tel", "target": "+15559990000"}],
                "actions": [{"type": "talk", "option": {"text": "You have a visitor."}},
                            {"type": "sleep", "option": {"duration": 5000}}]
            }},
            {"type": "sleep", "option": {"duration": 3000}},
            {"type": "hangup"}
        ]}),
    )
    .await;
    let (b, _b_media) = sip_callee("uas_connect_callee.xml", b_port, 1000);
    let a_media = media_socket();
    let a = sipp_scenario(
        server.sip,
        "uac_flow_call.xml",
        "+15551230050",
        a_media.local_addr().unwrap().port(),
    );
    let status = sipp_done(b).await;
    assert!(
        status.success(),
        "B got the placed call: {status}; {}",
        server.printed()
    );
    let status = sipp_done(a).await;
    assert!(status.success(), "A: {status}");
    let calls = hung_up_calls(&ivy, 2).await;
    let master = calls.iter().find(|c| c["direction"] == "incoming").unwrap();
    let placed = calls.iter().find(|c| c["direction"] == "outgoing").unwrap();
    assert_eq!(placed["master_call_id"], master["id"], "{placed}");
    assert_eq!(master["chained_call_ids"], json!([placed["id"]]));
    assert!(placed["tm_progressing"].is_string(), "B answered: {placed}");
    assert_eq!(placed["hangup_by"], "remote", "B hung up: {placed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_call_hides_the_caller_id_and_asserts_it_to_the_carrier() {
    let server = Server::start(Options::default());
    let b_port = free_port();
    local_carrier(&server, json!({"port": b_port})).await;
    let joy = caller(&server, "joy").await;
    // B fails its scenario unless the From is anonymous, the identity is in
    // P-Asserted-Identity and the INVITE says Privacy: id (RFC 3325).
    let (b, _b_media) = sip_callee("uas_anonymous_caller.xml", b_port, 500);
    let (status, placed) = joy
        .post(
            "/calls",
            json!({
                "source": {"type": "tel", "target": "+15550001111"},
                "destinations": [{"type": "tel", "target": "+15559990000"}],
                "anonymous": "yes",
                "actions": [{"type": "sleep", "option": {"duration": 5000}}]
            }),
        )
        .await;
    assert_eq!(status, 200, "{placed}");
    let status = sipp_done(b).await;
    assert!(
        status.success(),
        "B saw a hidden caller ID: {status}; {}",
        server.printed()
    );
    let calls = hung_up_calls(&joy, 1).await;
    assert!(calls[0]["tm_progressing"].is_string(), "{:?}", calls);
}
