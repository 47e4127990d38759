//! The SIP front of the real `voipbin` binary: OPTIONS pings get 200; an INVITE is
//! routed by provider (the source address) and number: 403 for a source no provider
//! admits, 404 for a number that is not ours, and for one of ours a reasoned 480
//! until flows run calls. Providers are managed over the API by the admin.
#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::{Options, Server};
use serde_json::json;

/// Sends an INVITE for `number` from `from_ip` and returns the final response.
fn call(server: SocketAddr, from_ip: &str, number: &str) -> String {
    let sock = UdpSocket::bind((from_ip, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = sock.local_addr().unwrap().port();
    let branch = format!("z9hG4bK{port}{}", number.len());
    let invite = format!(
        "INVITE sip:{number}@{server} SIP/2.0\r\nVia: SIP/2.0/UDP {from_ip}:{port};branch={branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:+15557654321@{from_ip}>;tag=a1\r\nTo: <sip:{number}@{server}>\r\nCall-ID: {branch}@{from_ip}\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@{from_ip}:{port}>\r\nContent-Length: 0\r\n\r\n"
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

    // The number is ours: found (with visual separators removed), and refused with a
    // reason until flows run calls.
    let ours = call(server.sip, "127.0.0.1", "1-555-123-0000");
    assert!(ours.starts_with("SIP/2.0 480 "), "{ours}");
    assert!(
        ours.contains("Reason: SIP;cause=480;text=\"+15551230000: calls are not routed"),
        "{ours}"
    );

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
    assert!(admitted.starts_with("SIP/2.0 480 "), "{admitted}");

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
