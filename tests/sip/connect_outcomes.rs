//! `connect`'s outcomes between real peers (SIPp on both sides): early media heard
//! before the answer, busy relayed as 486, nobody answering relayed as 480, three
//! destinations of which the second answers, and a carrier asking for digest
//! credentials.

use super::connect::{free_port, hung_up_calls, sdp_port, sipp_uas, wait_sdp_port};
use super::*;

/// The test's customer: its number `+15551230042` runs a flow that connects to
/// `connect` (the action's options) and then hangs up. The `local` provider
/// (127.0.0.1, which admits A's calls) takes numbers out to `carrier_port`, with
/// `provider` fields besides.
async fn connect_flow(
    server: &Server,
    carrier_port: u16,
    provider: serde_json::Value,
    connect: serde_json::Value,
) -> common::Client {
    let mut update = json!({"port": carrier_port});
    if let (Some(u), Some(p)) = (update.as_object_mut(), provider.as_object()) {
        u.extend(p.clone());
    }
    local_carrier(server, update).await;
    let (bob, _) = customer_with_number(
        server,
        "bob",
        "+15551230042",
        json!({"name": "forward", "actions": [
            {"type": "connect", "option": connect},
            {"type": "hangup"}
        ]}),
    )
    .await;
    bob
}

/// The caller's (A) and the callee's (B) media sockets and SIPp message logs.
struct Sides {
    _dir: tempfile::TempDir,
    a_media: UdpSocket,
    b_media: UdpSocket,
    a_log: std::path::PathBuf,
    b_log: std::path::PathBuf,
}

impl Sides {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self {
            a_log: dir.path().join("a.log"),
            b_log: dir.path().join("b.log"),
            _dir: dir,
            a_media: media_socket(),
            b_media: media_socket(),
        }
    }
}

/// A's SIPp `scenario` calling +15551230042, its messages traced to `log`.
fn caller(
    server: &Server,
    scenario: &str,
    media: &UdpSocket,
    log: &std::path::Path,
) -> std::process::Child {
    sipp_scenario_with(
        server.sip,
        scenario,
        "+15551230042",
        media.local_addr().unwrap().port(),
        &["-trace_msg", "-message_file", log.to_str().unwrap()],
    )
}

/// B's SIPp `scenario` on `port`, media to `media`, talking `talk_ms`, traced to `log`.
fn callee(
    scenario: &str,
    port: u16,
    media: &UdpSocket,
    talk_ms: u32,
    log: &std::path::Path,
) -> std::process::Child {
    sipp_uas(
        scenario,
        port,
        &[
            "-set",
            "rtpport",
            &media.local_addr().unwrap().port().to_string(),
            "-d",
            &talk_ms.to_string(),
            "-trace_msg",
            "-message_file",
            log.to_str().unwrap(),
        ],
    )
}

/// Asserts a SIPp ended well, showing its messages when not.
fn assert_sipp(
    status: std::process::ExitStatus,
    who: &str,
    log: &std::path::Path,
    server: &Server,
) {
    assert!(
        status.success(),
        "{who}'s SIPp: {status}; its messages:\n{}\nthe server said:\n{}",
        std::fs::read_to_string(log).unwrap_or_default(),
        server.printed()
    );
}

fn trace(log: &std::path::Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callee_s_early_media_reaches_the_caller_before_the_answer() {
    let server = Server::start(Options::default());
    let b_port = free_port();
    let bob = connect_flow(
        &server,
        b_port,
        json!({}),
        json!({"destinations": [{"type": "tel", "target": "+15559990000"}], "early_media": true}),
    )
    .await;
    let s = Sides::new();
    let b = callee("uas_early_media.xml", b_port, &s.b_media, 1000, &s.b_log);
    let a = caller(&server, "uac_flow_call.xml", &s.a_media, &s.a_log);

    // A's 183 carries our SDP; B's early audio reaches A before B answers.
    let caller_leg = wait_sdp_port(&server, &s.a_log, "SIP/2.0 183");
    let callee_leg = wait_sdp_port(&server, &s.b_log, "INVITE sip:");
    for seq in 0..25u16 {
        s.b_media
            .send_to(
                &super::connect::rtp(seq, 0xB, 0, &[0x7F; 160]),
                ("127.0.0.1", callee_leg),
            )
            .unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let (early, _) = super::connect::count_rtp(&s.a_media, Duration::from_millis(400));
    assert!(
        !trace(&s.a_log).contains("SIP/2.0 200"),
        "the early audio was counted before the answer"
    );
    assert!(
        early >= 20,
        "B's early media reached A: {early} of 25 (A's leg at {caller_leg})"
    );
    assert_sipp(sipp_done(b).await, "B", &s.b_log, &server);
    assert_sipp(sipp_done(a).await, "A", &s.a_log, &server);
    assert_eq!(
        sdp_port(&s.a_log, "SIP/2.0 200"),
        Some(caller_leg),
        "the answer keeps the early media's address"
    );
    let calls = hung_up_calls(&bob, 2).await;
    assert!(calls.iter().all(|c| c["status"] == "hangup"), "{calls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_callee_gives_the_caller_486_with_relay_reason() {
    let server = Server::start(Options::default());
    let b_port = free_port();
    let bob = connect_flow(
        &server,
        b_port,
        json!({}),
        json!({"destinations": [{"type": "tel", "target": "+15559990000"}], "relay_reason": true}),
    )
    .await;
    let s = Sides::new();
    let b = callee("uas_busy.xml", b_port, &s.b_media, 0, &s.b_log);
    let a = caller(&server, "uac_flow_refused.xml", &s.a_media, &s.a_log);
    assert_sipp(sipp_done(b).await, "B", &s.b_log, &server);
    assert_sipp(sipp_done(a).await, "A", &s.a_log, &server);
    let a_saw = trace(&s.a_log);
    let ringing = a_saw.find("SIP/2.0 180").expect("A heard ringing first");
    let busy = a_saw.find("SIP/2.0 486").expect("A got the callee's 486");
    assert!(ringing < busy);
    assert!(
        a_saw[busy..].contains("Reason: SIP;cause=486"),
        "with a Reason header: {}",
        &a_saw[busy..]
    );
    let calls = hung_up_calls(&bob, 2).await;
    let incoming = calls.iter().find(|c| c["direction"] == "incoming").unwrap();
    let outgoing = calls.iter().find(|c| c["direction"] == "outgoing").unwrap();
    assert_eq!(incoming["hangup_reason"], "busy", "{incoming}");
    assert_eq!(outgoing["hangup_reason"], "busy", "{outgoing}");
    assert_eq!(outgoing["hangup_by"], "remote");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callee_that_never_answers_is_cancelled_at_the_ring_timeout() {
    let server = Server::start(Options::default());
    let b_port = free_port();
    let bob = connect_flow(
        &server,
        b_port,
        json!({}),
        json!({
            "destinations": [{"type": "tel", "target": "+15559990000"}],
            "relay_reason": true,
            "ring_timeout": 2000
        }),
    )
    .await;
    let s = Sides::new();
    let started = std::time::Instant::now();
    let b = callee("uas_no_answer.xml", b_port, &s.b_media, 0, &s.b_log);
    let a = caller(&server, "uac_flow_refused.xml", &s.a_media, &s.a_log);
    assert_sipp(sipp_done(b).await, "B (cancelled)", &s.b_log, &server);
    assert_sipp(sipp_done(a).await, "A", &s.a_log, &server);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(6),
        "cancelled at the 2 s ring timeout: {elapsed:?}"
    );
    assert!(trace(&s.a_log).contains("SIP/2.0 480"), "A got 480");
    let calls = hung_up_calls(&bob, 2).await;
    let outgoing = calls.iter().find(|c| c["direction"] == "outgoing").unwrap();
    assert_eq!(outgoing["hangup_reason"], "noanswer", "{outgoing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_three_destinations_the_second_answers_and_the_others_are_cancelled() {
    let server = Server::start(Options::default());
    let ports = [free_port(), free_port(), free_port()];
    let destinations: Vec<_> = ports
        .iter()
        .map(|p| json!({"type": "sip", "target": format!("sip:callee@127.0.0.1:{p}")}))
        .collect();
    let bob = connect_flow(
        &server,
        free_port(),
        json!({}),
        json!({
            "source": {"type": "tel", "target": "+15550001111"},
            "destinations": destinations
        }),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let media: Vec<UdpSocket> = (0..4).map(|_| media_socket()).collect();
    let logs: Vec<_> = (0..4)
        .map(|i| dir.path().join(format!("{i}.log")))
        .collect();
    let b1 = callee("uas_no_answer.xml", ports[0], &media[1], 0, &logs[1]);
    let b2 = callee(
        "uas_connect_callee.xml",
        ports[1],
        &media[2],
        1000,
        &logs[2],
    );
    let b3 = callee("uas_no_answer.xml", ports[2], &media[3], 0, &logs[3]);
    let a = caller(&server, "uac_flow_call.xml", &media[0], &logs[0]);
    assert_sipp(sipp_done(b2).await, "B2 (answers)", &logs[2], &server);
    assert_sipp(sipp_done(b1).await, "B1 (cancelled)", &logs[1], &server);
    assert_sipp(sipp_done(b3).await, "B3 (cancelled)", &logs[3], &server);
    assert_sipp(sipp_done(a).await, "A", &logs[0], &server);
    for log in [&logs[1], &logs[3]] {
        let cancel = trace(log);
        assert!(
            cancel.contains("Reason: SIP;cause=200"),
            "the others are told the call was completed elsewhere: {cancel}"
        );
    }
    let calls = hung_up_calls(&bob, 4).await;
    assert_eq!(calls.len(), 4, "{calls:?}");
    let answered: Vec<_> = calls
        .iter()
        .filter(|c| c["direction"] == "outgoing" && c["tm_progressing"].is_string())
        .collect();
    assert_eq!(answered.len(), 1, "{calls:?}");
    assert_eq!(
        answered[0]["destination"]["target"],
        format!("sip:callee@127.0.0.1:{}", ports[1])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carrier_asking_for_credentials_gets_them() {
    let server = Server::start(Options::default());
    let b_port = free_port();
    let bob = connect_flow(
        &server,
        b_port,
        json!({"auth_username": "trunk", "auth_password": "secret"}),
        json!({"destinations": [{"type": "tel", "target": "+15559990000"}]}),
    )
    .await;
    let s = Sides::new();
    let b = callee("uas_auth_challenge.xml", b_port, &s.b_media, 1000, &s.b_log);
    let a = caller(&server, "uac_flow_call.xml", &s.a_media, &s.a_log);
    assert_sipp(
        sipp_done(b).await,
        "B (checks the credentials)",
        &s.b_log,
        &server,
    );
    assert_sipp(sipp_done(a).await, "A", &s.a_log, &server);
    let b_saw = trace(&s.b_log);
    assert!(b_saw.contains("Authorization: Digest"), "{b_saw}");
    let calls = hung_up_calls(&bob, 2).await;
    let outgoing = calls.iter().find(|c| c["direction"] == "outgoing").unwrap();
    assert!(outgoing["tm_progressing"].is_string(), "{outgoing}");
}

/// dnsmasq serving a zone for a test, killed when dropped.
struct Dns(std::process::Child);

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts dnsmasq (Debian's dnsmasq-base) on loopback `port` with `records`
/// (dnsmasq options such as `--srv-host=...`) and nothing else.
fn dnsmasq(port: u16, records: &[String]) -> Dns {
    let program = ["/usr/sbin/dnsmasq", "dnsmasq"]
        .into_iter()
        .find(|p| !p.starts_with('/') || std::path::Path::new(p).exists())
        .unwrap_or("dnsmasq");
    let dns = Dns(std::process::Command::new(program)
        .args(["-d", "--no-resolv", "--no-hosts", "--bind-interfaces"])
        .args(["--listen-address=127.0.0.1", "--pid-file=", "--user=root"])
        .arg(format!("--port={port}"))
        .args(records)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("dnsmasq (Debian's dnsmasq-base; scripts/test installs it)"));
    // Ready once it answers a query.
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let query = b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04test\x00\x00\x01\x00\x01";
    for _ in 0..50 {
        probe.send_to(query, ("127.0.0.1", port)).unwrap();
        if probe.recv(&mut [0u8; 512]).is_ok() {
            return dns;
        }
    }
    panic!("dnsmasq did not answer on port {port}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carrier_named_by_srv_is_reached_past_its_dead_first_server() {
    // carrier.test's SRV records: a dead server first (priority 10), B second.
    let (dns_port, dead_port, b_port) = (free_port(), free_port(), free_port());
    let _dns = dnsmasq(
        dns_port,
        &[
            format!("--srv-host=_sip._udp.carrier.test,dead.carrier.test,{dead_port},10,50"),
            format!("--srv-host=_sip._udp.carrier.test,live.carrier.test,{b_port},20,50"),
            "--host-record=dead.carrier.test,127.0.0.1".into(),
            "--host-record=live.carrier.test,127.0.0.1".into(),
        ],
    );
    let server = Server::start(Options {
        args: [
            Options::default().args,
            vec!["--dns-server".into(), format!("127.0.0.1:{dns_port}")],
        ]
        .concat(),
        ..Options::default()
    });
    let bob = connect_flow(
        &server,
        0,
        json!({"hostname": "carrier.test", "port": 0, "transport": "udp"}),
        json!({
            "source": {"type": "tel", "target": "+15550001111"},
            "destinations": [{"type": "tel", "target": "+15559990000"}]
        }),
    )
    .await;
    let s = Sides::new();
    let started = std::time::Instant::now();
    let b = callee("uas_connect_callee.xml", b_port, &s.b_media, 1000, &s.b_log);
    let a = caller(&server, "uac_flow_call.xml", &s.a_media, &s.a_log);
    assert_sipp(
        sipp_done(b).await,
        "B (the second SRV target)",
        &s.b_log,
        &server,
    );
    let reached_b = started.elapsed();
    assert_sipp(sipp_done(a).await, "A", &s.a_log, &server);
    assert!(
        reached_b < Duration::from_secs(15),
        "the dead server was given up well before timer B: {reached_b:?}"
    );
    let b_saw = trace(&s.b_log);
    assert!(
        b_saw.contains("INVITE sip:+15559990000@carrier.test"),
        "the Request-URI names the carrier as configured: {b_saw}"
    );
    let calls = hung_up_calls(&bob, 2).await;
    let outgoing = calls.iter().find(|c| c["direction"] == "outgoing").unwrap();
    assert!(outgoing["tm_progressing"].is_string(), "{outgoing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_are_probed_with_options_and_a_silent_one_is_unhealthy() {
    let server = Server::start(Options {
        args: [
            Options::default().args,
            vec!["--provider-ping-interval".into(), "1".into()],
        ]
        .concat(),
        ..Options::default()
    });
    let admin = server.admin();
    let (up_port, dead_port) = (free_port(), free_port());
    let local = local_carrier(&server, json!({"port": up_port})).await;
    let (status, dead) = admin
        .post(
            "/providers",
            json!({"name": "silent", "hostname": "127.0.0.1", "port": dead_port}),
        )
        .await;
    assert_eq!(status, 200, "{dead}");
    let dead_id = dead["id"].as_str().unwrap().to_owned();
    assert_eq!(dead["health_status"], "unknown");
    let carrier = sipp_uas("uas_options.xml", up_port, &["-m", "2"]);
    let mut seen = (serde_json::Value::Null, serde_json::Value::Null);
    for _ in 0..100 {
        let (_, up) = admin.get(&format!("/providers/{local}")).await;
        let (_, down) = admin.get(&format!("/providers/{dead_id}")).await;
        seen = (up, down);
        if seen.0["health_status"] == "healthy" && seen.1["health_status"] == "unhealthy" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(seen.0["health_status"], "healthy", "{}", seen.0);
    assert!(seen.0["health_checked_at"].is_string(), "{}", seen.0);
    assert_eq!(seen.1["health_status"], "unhealthy", "{}", seen.1);
    assert!(
        seen.1["health_checked_at"].is_null(),
        "never answered: {}",
        seen.1
    );
    let status = sipp_done(carrier).await;
    assert!(
        status.success(),
        "the carrier answered two probes: {status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_s_hold_and_resume_are_passed_on_to_the_callee() {
    let server = Server::start(Options::default());
    let b_port = free_port();
    let bob = connect_flow(
        &server,
        b_port,
        json!({}),
        json!({"destinations": [{"type": "tel", "target": "+15559990000"}]}),
    )
    .await;
    let s = Sides::new();
    let b = callee("uas_hold_relayed.xml", b_port, &s.b_media, 0, &s.b_log);
    // A holds right after the answer, resumes, then hangs up (sip-stack's scenario).
    let a = std::process::Command::new("sipp")
        .arg(server.sip.to_string())
        .arg("-sf")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/sipp-scenarios/uac_reinvite_hold.xml"
        ))
        .args([
            "-s",
            "+15551230042",
            "-i",
            "127.0.0.1",
            "-p",
            "0",
            "-m",
            "1",
        ])
        .args(["-nostdin", "-timeout", "40s", "-trace_msg", "-message_file"])
        .arg(&s.a_log)
        .current_dir(std::env::temp_dir())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("sipp");
    assert_sipp(
        sipp_done(a).await,
        "A (holds, resumes, hangs up)",
        &s.a_log,
        &server,
    );
    assert_sipp(
        sipp_done(b).await,
        "B (offered sendonly, then sendrecv)",
        &s.b_log,
        &server,
    );
    let calls = hung_up_calls(&bob, 2).await;
    assert!(calls.iter().all(|c| c["status"] == "hangup"), "{calls:?}");
}
