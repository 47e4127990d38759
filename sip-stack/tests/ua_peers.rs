//! The engine-facing user agent ([`sip_stack::ua`]) on real sockets against real
//! peers: SIPp calls in and the engine loop rings, answers and sees the BYE; the
//! user agent calls out to SIPp's own UAS and to the example UAS that challenges.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use sip_stack::sdp::{self, LocalMedia, SessionDescription};
use sip_stack::transaction::Transport;
use sip_stack::ua::driver::{self, UaHandle};
use sip_stack::ua::{Credentials, EndCause, OutgoingCall, Side, UaConfig, UaEvent, UserAgent};
use tokio::sync::{mpsc, watch};

const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 41000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

/// The user agent on a loopback socket: on the test's runtime, or (`on_thread`) on
/// a thread of its own as `voipbin serve` runs it.
async fn start(
    on_thread: bool,
) -> (
    UaHandle,
    mpsc::UnboundedReceiver<UaEvent>,
    SocketAddr,
    watch::Sender<bool>,
) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let (stop_tx, stop_rx) = watch::channel(false);
    let ua = UserAgent::new(UaConfig::new(addr));
    let (handle, events, _task) = if on_thread {
        let on =
            driver::spawn_on_thread(sip_stack::driver::Sockets::udp(socket), ua, stop_rx).unwrap();
        (on.handle, on.events, on.task)
    } else {
        driver::spawn(sip_stack::driver::Sockets::udp(socket), ua, stop_rx)
    };
    (handle, events, addr, stop_tx)
}

fn local_media(addr: SocketAddr) -> LocalMedia {
    LocalMedia {
        addr: addr.ip(),
        port: 42_000,
        codecs: vec![sdp::PCMU, sdp::PCMA, sdp::TELEPHONE_EVENT],
        ptime: 20,
        session_id: 7,
        session_version: 1,
    }
}

/// SIPp places 20 calls; the engine loop rings and answers each with an SDP answer
/// to its offer, and sees each end with the caller's BYE. The user agent runs on its
/// own thread, as the server runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_calls_in_and_the_engine_answers() {
    let (handle, mut events, addr, _stop) = start(true).await;
    let engine = tokio::spawn(async move {
        let mut ended_by_bye = 0;
        while let Some(event) = events.recv().await {
            match event {
                UaEvent::Incoming {
                    call,
                    offer,
                    source,
                    ..
                } => {
                    assert_eq!(source.ip(), addr.ip());
                    let offer = SessionDescription::parse(&offer.unwrap()).unwrap();
                    let (answer, _) = sdp::answer(&offer, &local_media(addr)).unwrap();
                    let answer = answer.to_string();
                    handle
                        .with(move |ua, now| {
                            ua.ring(now, call, 180, None)?;
                            ua.answer(now, call, Some(&answer))
                        })
                        .await
                        .unwrap()
                        .unwrap();
                }
                UaEvent::Ended {
                    by: Side::Remote,
                    cause: EndCause::Bye,
                    ..
                } => {
                    ended_by_bye += 1;
                    if ended_by_bye == 20 {
                        return ended_by_bye;
                    }
                }
                _ => {}
            }
        }
        ended_by_bye
    });
    let (status, counters) =
        tokio::task::spawn_blocking(move || common::sipp("uac_basic.xml", addr, 20, &[]))
            .await
            .unwrap();
    assert_eq!(status, 0, "{counters:?}");
    assert_eq!(
        counters.get("SuccessfulCall(C)").map(String::as_str),
        Some("20")
    );
    let ended = tokio::time::timeout(Duration::from_secs(10), engine)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended, 20);
}

fn outgoing(target: SocketAddr, credentials: Option<Credentials>) -> OutgoingCall {
    OutgoingCall {
        target: format!("sip:service@{target}"),
        from: "<sip:+15551230000@127.0.0.1>".into(),
        to: None,
        next_hop: target,
        via_proxy: false,
        transport: Transport::Udp,
        credentials,
        sdp: Some(OFFER.into()),
        headers: vec![("X-Test".into(), "outgoing".into())],
        max_forwards: 70,
        no_reply_timeout: None,
    }
}

/// Places one call and waits for its answer; hangs up and waits for the end.
async fn call_answer_hangup(target: SocketAddr, credentials: Option<Credentials>) {
    let (handle, mut events, _addr, _stop) = start(false).await;
    let spec = outgoing(target, credentials);
    let call = handle
        .with(move |ua, now| ua.call(now, spec))
        .await
        .unwrap()
        .unwrap();
    let answered = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(event) = events.recv().await {
            match event {
                UaEvent::Answered { call: c, sdp, .. } if c == call => return sdp,
                UaEvent::Ended { cause, .. } => {
                    panic!("the call ended before the answer: {cause:?}")
                }
                _ => {}
            }
        }
        None
    })
    .await
    .unwrap();
    assert!(answered.is_some_and(|s| s.contains("m=audio")));
    handle
        .with(move |ua, now| ua.hangup(now, call, None))
        .await
        .unwrap()
        .unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(event) = events.recv().await {
            if let UaEvent::Ended {
                call: c, by, cause, ..
            } = event
                && c == call
            {
                return (by, cause);
            }
        }
        panic!("no end event");
    })
    .await
    .unwrap();
    assert_eq!(ended, (Side::Local, EndCause::Bye));
}

/// The user agent calls SIPp's built-in UAS, which exits 0 only when the call went
/// through INVITE, 180, 200, ACK, BYE, 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_out_to_sipp_uas() {
    let port = common::free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut sipp = Command::new("sipp")
        .args([
            "-sn",
            "uas",
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-m",
            "1",
        ])
        .args(["-nostdin", "-timeout", "20s"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .spawn()
        .expect("sipp (Debian's sip-tester; scripts/test installs it)");
    // No wait for SIPp to start: an INVITE it misses is retransmitted (timer A).
    let target: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    call_answer_hangup(target, None).await;
    let status = tokio::task::spawn_blocking(move || sipp.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        status.success(),
        "SIPp's UAS reported a failed call: {status}"
    );
}

/// The example UAS challenges with 401 (MD5 and SHA-256); the user agent answers
/// with the credentials and the call goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_out_through_a_digest_challenge() {
    let uas = common::uas(&["--auth", "alice:secret"]);
    call_answer_hangup(
        uas.addr,
        Some(Credentials {
            username: "alice".into(),
            password: "secret".into(),
        }),
    )
    .await;
}
