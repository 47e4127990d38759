//! The SIP front of the real `voipbin` binary: SIPp's OPTIONS ping gets 200, and an
//! INVITE gets a final answer that says why (480 with a Reason) instead of silence,
//! until calls are routed to flows.
#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::{Options, Server};

fn invite(to: std::net::SocketAddr, from_port: u16, branch: &str) -> String {
    format!(
        "INVITE sip:+15551230000@{to} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{from_port};branch=z9hG4bK{branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:+15557654321@127.0.0.1>;tag=a1\r\nTo: <sip:+15551230000@{to}>\r\nCall-ID: {branch}@127.0.0.1\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@127.0.0.1:{from_port}>\r\nContent-Length: 0\r\n\r\n"
    )
}

#[test]
fn options_get_200_and_invites_a_reasoned_480() {
    let server = Server::start(Options::default());
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = sock.local_addr().unwrap().port();
    sock.send_to(invite(server.sip, port, "inv1").as_bytes(), server.sip)
        .unwrap();
    let mut statuses = Vec::new();
    let mut buf = [0u8; 4096];
    while !statuses
        .iter()
        .any(|s: &String| !s.starts_with("SIP/2.0 1"))
    {
        let n = sock.recv(&mut buf).expect("a response");
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let status_line = text.lines().next().unwrap().to_owned();
        if !status_line.starts_with("SIP/2.0 1") {
            assert!(
                text.contains("Reason: SIP;cause=480;text=\"calls are not routed"),
                "{text}"
            );
            assert!(
                text.contains(&format!("rport={port}")),
                "rport filled in: {text}"
            );
        }
        statuses.push(status_line);
    }
    assert_eq!(
        statuses,
        ["SIP/2.0 100 Trying", "SIP/2.0 480 Temporarily Unavailable"]
    );

    let ping = format!(
        "OPTIONS sip:{0} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKopt1\r\nMax-Forwards: 70\r\nFrom: <sip:monitor@127.0.0.1>;tag=o1\r\nTo: <sip:{0}>\r\nCall-ID: opt1@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        server.sip
    );
    sock.send_to(ping.as_bytes(), server.sip).unwrap();
    let n = sock.recv(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("SIP/2.0 200 OK"), "{text}");
    assert!(text.contains("Allow: INVITE"), "{text}");
}
