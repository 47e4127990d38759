//! SIPp, a real SIP peer (Debian's sip-tester), against the example UAS built on the
//! stack: `sipp-scenarios/*.xml`. Each test asserts SIPp's exit status (0 only when
//! every call succeeded) and its successful and failed call counters.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::net::{SocketAddr, UdpSocket};

use common::{assert_all_succeeded, sipp, uas};

#[test]
fn basic_call() {
    let uas = uas(&[]);
    assert_all_succeeded("uac_basic.xml", uas.addr, 20, &[]);
}

#[test]
fn basic_call_with_ringing() {
    let uas = uas(&["--ring-ms", "200"]);
    assert_all_succeeded("uac_basic.xml", uas.addr, 10, &[]);
}

#[test]
fn cancel_before_answer() {
    let uas = uas(&["--ring-ms", "2000"]);
    assert_all_succeeded("uac_cancel.xml", uas.addr, 10, &[]);
}

#[test]
fn reinvite_hold_and_unhold() {
    let uas = uas(&[]);
    assert_all_succeeded("uac_reinvite_hold.xml", uas.addr, 10, &[]);
}

#[test]
fn options_ping() {
    let uas = uas(&[]);
    assert_all_succeeded("uac_options.xml", uas.addr, 10, &[]);
}

#[test]
fn calls_complete_with_ten_percent_message_loss() {
    let uas = uas(&[]);
    // SIPp drops 10% of what it receives; retransmissions on both sides recover.
    let (status, counters) = sipp("uac_basic.xml", uas.addr, 30, &["-lost", "10"]);
    assert_eq!(
        counters.get("SuccessfulCall(C)").map(String::as_str),
        Some("30"),
        "{counters:?}"
    );
    assert_eq!(status, 0, "{counters:?}");
    let retransmissions: u64 = counters
        .get("Retransmissions(C)")
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    assert!(
        retransmissions > 0,
        "with 10% loss some messages must have been retransmitted: {counters:?}"
    );
}

#[test]
fn call_challenged_with_digest_auth() {
    let uas = uas(&["--auth", "alice:secret"]);
    // SIPp answers the 401 with MD5 and qop=auth (-au/-ap); the UAS verifies it.
    assert_all_succeeded(
        "uac_auth.xml",
        uas.addr,
        10,
        &["-au", "alice", "-ap", "secret"],
    );
}

#[test]
fn basic_call_over_tcp() {
    let uas = uas(&[]);
    // One TCP connection for every call (-t t1): framing by Content-Length.
    assert_all_succeeded("uac_basic.xml", uas.addr, 20, &["-t", "t1"]);
}

#[test]
fn many_tcp_connections() {
    let uas = uas(&[]);
    // A TCP connection per call (-t tn).
    assert_all_succeeded(
        "uac_basic.xml",
        uas.addr,
        20,
        &["-t", "tn", "-max_socket", "1000"],
    );
}

/// An OPTIONS over UDP from a fresh socket; the status of the answer.
fn options_status(target: SocketAddr) -> Option<u16> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    let me = sock.local_addr().unwrap();
    let req = format!(
        "OPTIONS sip:uas@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{}\r\nMax-Forwards: 70\r\n\
From: <sip:t@{me}>;tag=1\r\nTo: <sip:uas@{target}>\r\nCall-ID: probe-{}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        me.port(),
        me.port()
    );
    sock.send_to(req.as_bytes(), target).unwrap();
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).ok()?;
    std::str::from_utf8(&buf[..n])
        .ok()?
        .split(' ')
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn hostile_input_is_dropped_and_the_socket_keeps_serving() {
    use std::io::{Read, Write};
    let uas = uas(&[]);
    // UDP: garbage, a NUL byte, a truncated message, an oversized datagram.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for junk in [
        &b"\x00\x01garbage"[..],
        b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP",
        &vec![b'A'; 65_000][..],
    ] {
        sock.send_to(junk, uas.addr).unwrap();
    }
    assert_eq!(
        options_status(uas.addr),
        Some(200),
        "still answering after junk datagrams"
    );
    // TCP: a stream that never frames a message is closed once it passes 64 KiB.
    let mut tcp = std::net::TcpStream::connect(uas.addr).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let _ = tcp.write_all(&vec![b'x'; 70_000]);
    let mut buf = [0u8; 16];
    assert!(
        matches!(tcp.read(&mut buf), Ok(0) | Err(_)),
        "the connection was closed"
    );
    assert_eq!(
        options_status(uas.addr),
        Some(200),
        "still answering others"
    );
    // A malformed request with a usable Via gets a 400 that names the problem.
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    let me = probe.local_addr().unwrap();
    let bad = format!(
        "INVITE sip:uas@x SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKbad\r\nMax-Forwards: 70\r\n\
From: <sip:t@x>;tag=1\r\nTo: <sip:uas@x>\r\nCall-ID: bad-1\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    probe.send_to(bad.as_bytes(), uas.addr).unwrap();
    let mut buf = [0u8; 2048];
    let n = probe.recv(&mut buf).unwrap();
    let reply = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(
        reply.starts_with("SIP/2.0 400 Bad Request (CSeq method BYE does not match"),
        "{reply}"
    );
}

#[test]
fn reliable_provisional_with_prack() {
    let uas = uas(&["--100rel"]);
    // The scenario checks the 180's Require: 100rel and echoes its RSeq in the RAck.
    assert_all_succeeded("uac_prack.xml", uas.addr, 10, &[]);
}
