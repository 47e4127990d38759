//! SIP over TLS to a carrier (RFC 3261 section 26.2.1, RFC 5922): a provider with
//! `transport: tls` is reached over TLS, its certificate checked against the CA we
//! were given. The carrier here is baresip listening on TLS with a certificate
//! made by openssl; it answers, hears the flow, and hangs up through our own TLS
//! listener. A carrier whose certificate we do not trust gets no call, at once.

use super::connect::hung_up_calls;
use super::peers::{assert_speech_in, baresip_heard, free_udp_port};
use super::*;

/// Runs openssl with `args`.
fn openssl(args: &[&str]) {
    let status = std::process::Command::new("openssl")
        .args(args)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl (scripts/test installs it)");
    assert!(status.success(), "openssl {args:?} failed");
}

/// A carrier's private CA and a certificate it signed for `127.0.0.1` (an IP
/// SAN) and `carrier.test`: (the CA's cert.pem, the carrier's cert and key in one
/// file for baresip, the carrier's cert.pem, its key.pem).
pub(super) fn certificates(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let p = |name: &str| dir.join(name).display().to_string();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=Test Carrier CA",
        "-keyout",
        &p("ca.key"),
        "-out",
        &p("ca.pem"),
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=carrier.test",
        "-keyout",
        &p("key.pem"),
        "-out",
        &p("leaf.csr"),
    ]);
    std::fs::write(
        dir.join("leaf.ext"),
        "basicConstraints=CA:FALSE\nsubjectAltName=DNS:carrier.test,IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p("leaf.csr"),
        "-CA",
        &p("ca.pem"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &p("leaf.ext"),
        "-out",
        &p("cert.pem"),
    ]);
    let both = dir.join("both.pem");
    let text = std::fs::read_to_string(dir.join("cert.pem")).unwrap()
        + &std::fs::read_to_string(dir.join("key.pem")).unwrap();
    std::fs::write(&both, text).unwrap();
    (
        dir.join("ca.pem"),
        both,
        dir.join("cert.pem"),
        dir.join("key.pem"),
    )
}

/// baresip answering by itself, on TLS at `sip_port + 1` with `both` as its
/// certificate; returns its config dir, its process and its console port.
fn baresip_on_tls(both: &std::path::Path) -> (tempfile::TempDir, std::process::Child, u16, u16) {
    let (sip_port, cons_port) = (free_udp_port(), free_udp_port());
    let dir = baresip_dir(sip_port, cons_port, false, true);
    let config = dir.path().join("config");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!("sip_certificate {}\n", both.display()));
    std::fs::write(&config, text).unwrap();
    // The carrier's subscriber is the number dialled.
    std::fs::write(
        dir.path().join("accounts"),
        "<sip:+15559990000@127.0.0.1>;regint=0;answermode=auto\n",
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("out.log")).unwrap();
    let child = std::process::Command::new("baresip")
        .arg("-f")
        .arg(dir.path())
        .args(["-t", "40"])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("baresip (Debian's baresip-core; scripts/test installs it)");
    (dir, child, sip_port + 1, cons_port)
}

/// A customer with the number `+15550001111`, whose calls go out through the
/// carrier at 127.0.0.1:`tls_port` over TLS.
async fn customer_behind_tls_carrier(server: &Server, tls_port: u16) -> common::Client {
    local_carrier(
        server,
        json!({"hostname": "127.0.0.1", "port": tls_port, "transport": "tls"}),
    )
    .await;
    let (_, client) = server.admin().new_customer("tia").await;
    let (status, body) = client
        .post("/numbers", json!({"number": "+15550001111"}))
        .await;
    assert_eq!(status, 200, "{body}");
    client
}

/// Places a call to `+15559990000` that talks, then waits.
async fn place(client: &common::Client) -> String {
    let (status, placed) = client
        .post(
            "/calls",
            json!({
                "source": {"type": "tel", "target": "+15550001111"},
                "destinations": [{"type": "tel", "target": "+15559990000"}],
                "actions": [
                    {"type": "talk", "option": {"text": "Hello, this call reached you over TLS. Goodbye.", "language": "en-US"}},
                    {"type": "sleep", "option": {"duration": 20000}}
                ]
            }),
        )
        .await;
    assert_eq!(status, 200, "{placed}");
    placed["calls"][0]["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carrier_reached_over_tls_answers_hears_the_flow_and_hangs_up_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, both, cert, key) = certificates(dir.path());
    let server = Server::start(Options {
        args: [
            Options::default().args,
            vec![
                "--sip-tls-ca".into(),
                ca.display().to_string(),
                "--sip-tls".into(),
                "127.0.0.1:0".into(),
                "--sip-tls-cert".into(),
                cert.display().to_string(),
                "--sip-tls-key".into(),
                key.display().to_string(),
            ],
        ]
        .concat(),
        ..Options::default()
    });
    let (bare, mut baresip, tls_port, cons_port) = baresip_on_tls(&both);
    // baresip listens once it has read its config.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let tia = customer_behind_tls_carrier(&server, tls_port).await;
    let id = place(&tia).await;
    // The speech takes about 3 s; then baresip hangs up: its BYE comes to our
    // Contact, our TLS listener.
    tokio::time::sleep(Duration::from_millis(6000)).await;
    let hangup = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    hangup
        .send_to(b"/hangup\n", ("127.0.0.1", cons_port))
        .unwrap();
    let calls = hung_up_calls(&tia, 1).await;
    let mut row = calls[0].clone();
    for _ in 0..50 {
        if row["status"] == "hangup" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        row = tia.get(&format!("/calls/{id}")).await.1;
    }
    baresip.kill().ok();
    baresip.wait().ok();
    let said = || {
        format!(
            "baresip said:\n{}\nthe server said:\n{}",
            std::fs::read_to_string(bare.path().join("out.log")).unwrap_or_default(),
            server.printed()
        )
    };
    assert_eq!(row["status"], "hangup", "{row}\n{}", said());
    assert!(
        row["tm_progressing"].is_string(),
        "baresip answered: {row}\n{}",
        said()
    );
    assert_eq!(
        row["hangup_by"],
        "remote",
        "baresip hung up: {row}\n{}",
        said()
    );
    assert_speech_in(&baresip_heard(bare.path()), "baresip over TLS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carrier_whose_certificate_we_do_not_trust_gets_no_call_and_the_call_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (_, both, _, _) = certificates(dir.path());
    // No --sip-tls-ca: the carrier's private CA is trusted by nobody here.
    let server = Server::start(Options::default());
    let (bare, mut baresip, tls_port, _) = baresip_on_tls(&both);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let tia = customer_behind_tls_carrier(&server, tls_port).await;
    let started = std::time::Instant::now();
    let id = place(&tia).await;
    let mut row = serde_json::Value::Null;
    for _ in 0..100 {
        row = tia.get(&format!("/calls/{id}")).await.1;
        if row["status"] == "hangup" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed();
    baresip.kill().ok();
    baresip.wait().ok();
    let log = std::fs::read_to_string(bare.path().join("out.log")).unwrap_or_default();
    assert_eq!(row["status"], "hangup", "{row}\n{}", server.printed());
    assert!(row["tm_progressing"].is_null(), "never answered: {row}");
    assert!(
        !log.contains("Incoming call"),
        "baresip got no INVITE:\n{log}"
    );
    // The failed handshake fails the INVITE at once (RFC 3261 section 17.1.4),
    // well before the 4 s a silent carrier is given.
    assert!(
        took < Duration::from_secs(3),
        "failed after {took:?}: {row}"
    );
    assert!(
        server.printed().contains("TLS connection failed"),
        "the log names the cause:\n{}",
        server.printed()
    );
}
