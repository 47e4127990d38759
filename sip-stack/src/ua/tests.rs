//! RFC 3665's basic call flows, scripted between two user agents on a fake clock:
//! Alice's and Bob's datagrams are handed across in memory, so every message and
//! timer is checked without a socket or a sleep. Each test names the RFC section it
//! follows; the proxies of those flows are left out (these are the end points'
//! halves of them).
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::auth::Challenger;
use crate::msg::parse_datagram;

const OFFER: &str = "v=0\r\no=alice 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
const ANSWER: &str = "v=0\r\no=bob 2 1 IN IP4 192.0.2.2\r\ns=-\r\nc=IN IP4 192.0.2.2\r\nt=0 0\r\nm=audio 3456 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

fn alice_addr() -> SocketAddr {
    "192.0.2.1:5060".parse().unwrap()
}
fn bob_addr() -> SocketAddr {
    "192.0.2.2:5060".parse().unwrap()
}

/// Two user agents wired back to back, a clock, and the trace of what crossed.
struct Pair {
    alice: UserAgent,
    bob: UserAgent,
    now: Instant,
    trace: Vec<String>,
    /// Drop the next N datagrams from Alice (to script loss).
    drop_from_alice: usize,
    /// Drop the next N datagrams from Bob.
    drop_from_bob: usize,
    /// Keep Bob deaf: nothing reaches him.
    bob_unreachable: bool,
    alice_events: Vec<UaEvent>,
    bob_events: Vec<UaEvent>,
}

/// A call from Alice to Bob with `sdp` and extra `headers`, straight to Bob.
fn to_bob(sdp: Option<String>, headers: Vec<(String, String)>) -> OutgoingCall {
    OutgoingCall {
        target: "sip:bob@192.0.2.2".into(),
        from: "<sip:alice@192.0.2.1>".into(),
        to: None,
        next_hop: bob_addr(),
        via_proxy: false,
        transport: Transport::Udp,
        credentials: None,
        sdp,
        headers,
    }
}

/// A short line for a message: `INVITE`, `180`, `ACK`...
fn line(msg: &Message) -> String {
    match msg.status() {
        Some(s) => format!(
            "{s} ({})",
            msg.cseq().map(|c| c.method.to_owned()).unwrap_or_default()
        ),
        None => msg
            .method()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default(),
    }
}

impl Pair {
    fn new() -> Self {
        Self {
            alice: UserAgent::new(UaConfig::new(alice_addr())),
            bob: UserAgent::new(UaConfig::new(bob_addr())),
            now: Instant::now(),
            trace: Vec::new(),
            drop_from_alice: 0,
            drop_from_bob: 0,
            bob_unreachable: false,
            alice_events: Vec::new(),
            bob_events: Vec::new(),
        }
    }

    /// Moves datagrams both ways until nothing is left in flight.
    fn settle(&mut self) {
        for _ in 0..100 {
            let mut moved = false;
            while let Some(t) = self.alice.poll_transmit() {
                moved = true;
                let msg = parse_datagram(t.bytes).unwrap();
                if self.drop_from_alice > 0 {
                    self.drop_from_alice -= 1;
                    self.trace.push(format!("A->B {} (lost)", line(&msg)));
                    continue;
                }
                if self.bob_unreachable {
                    self.trace.push(format!("A->B {} (unanswered)", line(&msg)));
                    continue;
                }
                self.trace.push(format!("A->B {}", line(&msg)));
                assert_eq!(t.to, bob_addr());
                self.bob.receive(self.now, msg, alice_addr(), t.transport);
            }
            while let Some(t) = self.bob.poll_transmit() {
                moved = true;
                let msg = parse_datagram(t.bytes).unwrap();
                if self.drop_from_bob > 0 {
                    self.drop_from_bob -= 1;
                    self.trace.push(format!("B->A {} (lost)", line(&msg)));
                    continue;
                }
                self.trace.push(format!("B->A {}", line(&msg)));
                assert_eq!(t.to, alice_addr());
                self.alice.receive(self.now, msg, bob_addr(), t.transport);
            }
            self.alice_events
                .extend(std::iter::from_fn(|| self.alice.poll_event()));
            self.bob_events
                .extend(std::iter::from_fn(|| self.bob.poll_event()));
            if !moved {
                return;
            }
        }
        panic!("the two user agents never settled: {:?}", self.trace);
    }

    /// Moves the clock on by `ms`, running every timer on the way (100 ms steps).
    fn advance(&mut self, ms: u64) {
        let end = self.now + Duration::from_millis(ms);
        while self.now < end {
            self.now = (self.now + Duration::from_millis(100)).min(end);
            self.alice.handle_timeout(self.now);
            self.bob.handle_timeout(self.now);
            self.settle();
        }
    }

    fn place(&mut self, sdp: Option<&str>) -> CallRef {
        let call = self
            .alice
            .call(
                self.now,
                OutgoingCall {
                    target: "sip:bob@192.0.2.2".into(),
                    from: "Alice <sip:alice@192.0.2.1>".into(),
                    to: Some("Bob <sip:bob@192.0.2.2>".into()),
                    next_hop: bob_addr(),
                    via_proxy: false,
                    transport: Transport::Udp,
                    credentials: Some(Credentials {
                        username: "alice".into(),
                        password: "secret".into(),
                    }),
                    sdp: sdp.map(str::to_owned),
                    headers: vec![(
                        "P-Asserted-Identity".into(),
                        "<sip:+15551230000@192.0.2.1>".into(),
                    )],
                },
            )
            .unwrap();
        self.settle();
        call
    }

    /// Bob's latest incoming call.
    fn bob_incoming(&self) -> (CallRef, Message, Option<String>) {
        self.bob_events
            .iter()
            .rev()
            .find_map(|e| match e {
                UaEvent::Incoming {
                    call,
                    invite,
                    offer,
                    ..
                } => Some((*call, invite.clone(), offer.clone())),
                _ => None,
            })
            .expect("Bob got no INVITE")
    }

    fn take_trace(&mut self) -> Vec<String> {
        std::mem::take(&mut self.trace)
    }
}

fn ended(events: &[UaEvent]) -> Vec<(Side, EndCause)> {
    events
        .iter()
        .filter_map(|e| match e {
            UaEvent::Ended { by, cause, .. } => Some((*by, cause.clone())),
            _ => None,
        })
        .collect()
}

/// Section 3.1, Successful Session Establishment: INVITE, 180, 200, ACK, then BYE
/// and 200. The offer and answer reach the engines, the routing header reaches Bob.
#[test]
fn rfc3665_3_1_successful_session() {
    let mut p = Pair::new();
    let a_call = p.place(Some(OFFER));
    let (b_call, invite, offer) = p.bob_incoming();
    assert_eq!(offer.as_deref(), Some(OFFER));
    assert_eq!(
        invite.header_named("P-Asserted-Identity"),
        Some("<sip:+15551230000@192.0.2.1>")
    );
    p.bob.ring(p.now, b_call, 180, None).unwrap();
    p.settle();
    p.advance(1000);
    p.bob.answer(p.now, b_call, Some(ANSWER)).unwrap();
    p.settle();
    assert!(
        p.alice_events
            .iter()
            .any(|e| matches!(e, UaEvent::Progress { status: 180, .. }))
    );
    assert!(p.alice_events.iter().any(
        |e| matches!(e, UaEvent::Answered { call, sdp: Some(s), .. } if *call == a_call && s == ANSWER)
    ));
    assert!(
        p.bob_events
            .iter()
            .any(|e| matches!(e, UaEvent::Acked { call, .. } if *call == b_call))
    );
    p.advance(5000);
    p.bob.hangup(p.now, b_call, None).unwrap();
    p.settle();
    assert_eq!(
        p.take_trace(),
        [
            "A->B INVITE",
            "B->A 100 (INVITE)",
            "B->A 180 (INVITE)",
            "B->A 200 (INVITE)",
            "A->B ACK",
            "B->A BYE",
            "A->B 200 (BYE)"
        ]
    );
    assert_eq!(ended(&p.alice_events), [(Side::Remote, EndCause::Bye)]);
    assert_eq!(ended(&p.bob_events), [(Side::Local, EndCause::Bye)]);
    assert_eq!((p.alice.calls(), p.bob.calls()), (0, 0));
    // Every transaction is forgotten once its absorb window passes.
    p.advance(40_000);
    assert_eq!((p.alice.transactions(), p.bob.transactions()), (0, 0));
}

/// Section 3.3 (the end points' part): a 407 challenge answered with credentials
/// on a new INVITE with the next CSeq, which Bob's engine verifies.
#[test]
fn rfc3665_3_3_digest_challenge_answered() {
    let mut p = Pair::new();
    let challenger = Challenger::new("biloxi.example.com", 300);
    let a_call = p.place(Some(OFFER));
    let (first, _, _) = p.bob_incoming();
    let challenges = challenger.challenges(1000, false);
    let headers: Vec<(&str, &str)> = challenges
        .iter()
        .map(|c| ("Proxy-Authenticate", c.as_str()))
        .collect();
    p.bob.reject(p.now, first, 407, None, &headers).unwrap();
    p.settle();
    let (second, invite, _) = p.bob_incoming();
    assert_ne!(first, second);
    assert_eq!(invite.cseq().unwrap().seq, 2);
    let user = challenger
        .verify(
            1000,
            "INVITE",
            invite.header(crate::msg::HeaderName::ProxyAuthorization),
            |u| (u == "alice").then(|| "secret".to_owned()),
        )
        .unwrap();
    assert_eq!(user, "alice");
    p.bob.answer(p.now, second, Some(ANSWER)).unwrap();
    p.settle();
    assert!(
        p.alice_events
            .iter()
            .any(|e| matches!(e, UaEvent::Answered { call, .. } if *call == a_call))
    );
    assert_eq!(
        p.take_trace(),
        [
            "A->B INVITE",
            "B->A 100 (INVITE)",
            "B->A 407 (INVITE)",
            "A->B ACK",
            "A->B INVITE",
            "B->A 100 (INVITE)",
            "B->A 200 (INVITE)",
            "A->B ACK"
        ]
    );
    assert!(
        ended(&p.alice_events).is_empty(),
        "the challenge did not end Alice's call"
    );
}

/// Section 3.6's end points: a late offer. The INVITE has no SDP, Bob offers in his
/// 200 and Alice answers in the ACK.
#[test]
fn rfc3665_3_6_offer_in_200_answer_in_ack() {
    let mut p = Pair::new();
    let a_call = p.place(None);
    let (b_call, _, offer) = p.bob_incoming();
    assert_eq!(offer, None);
    p.bob.answer(p.now, b_call, Some(ANSWER)).unwrap();
    p.settle();
    assert!(
        p.alice_events
            .iter()
            .any(|e| matches!(e, UaEvent::Answered { sdp: Some(s), .. } if s == ANSWER))
    );
    assert!(
        !p.trace.iter().any(|l| l == "A->B ACK"),
        "the ACK waits for the engine's answer"
    );
    p.alice.ack(p.now, a_call, Some(OFFER)).unwrap();
    p.settle();
    assert!(p.bob_events.iter().any(
        |e| matches!(e, UaEvent::Acked { call, sdp: Some(s) } if *call == b_call && s == OFFER)
    ));
}

/// Section 3.7: a re-INVITE with a new address in the call, answered by the engine,
/// ACKed by the user agent.
#[test]
fn rfc3665_3_7_reinvite() {
    let mut p = Pair::new();
    let a_call = p.place(Some(OFFER));
    let (b_call, _, _) = p.bob_incoming();
    p.bob.answer(p.now, b_call, Some(ANSWER)).unwrap();
    p.settle();
    p.take_trace();
    let moved = OFFER.replace("192.0.2.1", "192.0.2.201");
    let tx = p
        .alice
        .request(
            p.now,
            a_call,
            "INVITE",
            &[],
            Some(("application/sdp", moved.as_bytes())),
        )
        .unwrap();
    p.settle();
    let (server_tx, reinvite) = p
        .bob_events
        .iter()
        .find_map(|e| match e {
            UaEvent::Request {
                call: Some(c),
                tx,
                msg,
                ..
            } if *c == b_call => Some((*tx, msg.clone())),
            _ => None,
        })
        .expect("Bob's engine sees the re-INVITE");
    assert_eq!(std::str::from_utf8(reinvite.body()).unwrap(), moved);
    p.bob
        .respond(
            p.now,
            server_tx,
            200,
            &[],
            Some(("application/sdp", ANSWER.as_bytes())),
        )
        .unwrap();
    p.settle();
    assert!(
        p.alice_events
            .iter()
            .any(|e| matches!(e, UaEvent::Response { tx: t, status: 200, .. } if *t == tx))
    );
    assert_eq!(
        p.take_trace(),
        [
            "A->B INVITE",
            "B->A 100 (INVITE)",
            "B->A 200 (INVITE)",
            "A->B ACK"
        ]
    );
}

/// Section 3.8, Unsuccessful No Answer: Alice gives up while it rings; CANCEL gets
/// 200 and the INVITE 487, which Alice ACKs.
#[test]
fn rfc3665_3_8_no_answer_cancel() {
    let mut p = Pair::new();
    let a_call = p.place(Some(OFFER));
    let (b_call, _, _) = p.bob_incoming();
    p.bob.ring(p.now, b_call, 180, None).unwrap();
    p.settle();
    p.advance(2000);
    p.alice.hangup(p.now, a_call, None).unwrap();
    p.settle();
    assert_eq!(
        p.take_trace(),
        [
            "A->B INVITE",
            "B->A 100 (INVITE)",
            "B->A 180 (INVITE)",
            "A->B CANCEL",
            "B->A 200 (CANCEL)",
            "B->A 487 (INVITE)",
            "A->B ACK"
        ]
    );
    assert_eq!(ended(&p.alice_events), [(Side::Local, EndCause::Cancelled)]);
    assert_eq!(ended(&p.bob_events), [(Side::Remote, EndCause::Cancelled)]);
    assert_eq!((p.alice.calls(), p.bob.calls()), (0, 0));
}

/// Section 3.9, Unsuccessful Busy: 486, ACKed.
#[test]
fn rfc3665_3_9_busy() {
    let mut p = Pair::new();
    p.place(Some(OFFER));
    let (b_call, _, _) = p.bob_incoming();
    p.bob.reject(p.now, b_call, 486, None, &[]).unwrap();
    p.settle();
    assert_eq!(
        p.take_trace(),
        [
            "A->B INVITE",
            "B->A 100 (INVITE)",
            "B->A 486 (INVITE)",
            "A->B ACK"
        ]
    );
    assert_eq!(
        ended(&p.alice_events),
        [(Side::Remote, EndCause::Rejected(486))]
    );
}

/// Section 3.10, Unsuccessful No Response from User Agent: the INVITE is sent
/// 7 times (timer A doubling from T1) and the call ends at timer B, 64*T1.
#[test]
fn rfc3665_3_10_no_response() {
    let mut p = Pair::new();
    p.bob_unreachable = true;
    p.place(Some(OFFER));
    p.advance(31_000);
    assert!(ended(&p.alice_events).is_empty());
    p.advance(1_100);
    assert_eq!(p.trace.len(), 7, "{:?}", p.trace);
    assert_eq!(ended(&p.alice_events), [(Side::Local, EndCause::Timeout)]);
}

/// Section 3.11, Unsuccessful Temporarily Unavailable: 180, then 480 with a
/// Reason header, ACKed.
#[test]
fn rfc3665_3_11_temporarily_unavailable() {
    let mut p = Pair::new();
    p.place(Some(OFFER));
    let (b_call, _, _) = p.bob_incoming();
    p.bob.ring(p.now, b_call, 180, None).unwrap();
    p.settle();
    let reason = Reason::q850(18, "No user responding");
    p.bob
        .reject(p.now, b_call, 480, Some(&reason), &[])
        .unwrap();
    p.settle();
    assert_eq!(
        p.take_trace(),
        [
            "A->B INVITE",
            "B->A 100 (INVITE)",
            "B->A 180 (INVITE)",
            "B->A 480 (INVITE)",
            "A->B ACK"
        ]
    );
}

use crate::dialog::reason::Reason;

/// A lost INVITE is retransmitted and the call still completes.
#[test]
fn a_lost_invite_is_retransmitted() {
    let mut p = Pair::new();
    p.drop_from_alice = 1;
    p.place(Some(OFFER));
    assert!(p.bob_events.is_empty());
    p.advance(600);
    let (b_call, _, _) = p.bob_incoming();
    p.bob.answer(p.now, b_call, Some(ANSWER)).unwrap();
    p.settle();
    assert!(
        p.bob_events
            .iter()
            .any(|e| matches!(e, UaEvent::Acked { .. }))
    );
}

/// The BYE's Reason header (RFC 3326) reaches the other engine.
#[test]
fn reason_header_travels_with_the_bye() {
    let mut p = Pair::new();
    let a_call = p.place(Some(OFFER));
    let (b_call, _, _) = p.bob_incoming();
    p.bob.answer(p.now, b_call, Some(ANSWER)).unwrap();
    p.settle();
    p.alice
        .hangup(
            p.now,
            a_call,
            Some(&Reason::q850(16, "Normal call clearing")),
        )
        .unwrap();
    p.settle();
    let reason = p.bob_events.iter().find_map(|e| match e {
        UaEvent::Ended { reason, .. } => reason.clone(),
        _ => None,
    });
    assert_eq!(reason, Some(Reason::q850(16, "Normal call clearing")));
}

/// Glare (RFC 3261 section 14.2): a re-INVITE arriving while ours is pending gets
/// 491, and ours still completes.
#[test]
fn reinvite_glare_gets_491() {
    let mut p = Pair::new();
    let a_call = p.place(Some(OFFER));
    let (b_call, _, _) = p.bob_incoming();
    p.bob.answer(p.now, b_call, Some(ANSWER)).unwrap();
    p.settle();
    p.take_trace();
    // Both send a re-INVITE before either arrives.
    let a_tx = p
        .alice
        .request(
            p.now,
            a_call,
            "INVITE",
            &[],
            Some(("application/sdp", OFFER.as_bytes())),
        )
        .unwrap();
    let b_tx = p
        .bob
        .request(
            p.now,
            b_call,
            "INVITE",
            &[],
            Some(("application/sdp", ANSWER.as_bytes())),
        )
        .unwrap();
    p.settle();
    assert!(
        p.alice_events
            .iter()
            .any(|e| matches!(e, UaEvent::Response { tx, status: 491, .. } if *tx == a_tx))
    );
    assert!(
        p.bob_events
            .iter()
            .any(|e| matches!(e, UaEvent::Response { tx, status: 491, .. } if *tx == b_tx))
    );
}

/// RFC 3262: when the INVITE requires 100rel, the 180 is reliable, Alice PRACKs it,
/// and it is not retransmitted after that.
#[test]
fn reliable_provisional_is_pracked() {
    let mut p = Pair::new();
    let call = p
        .alice
        .call(
            p.now,
            to_bob(
                Some(OFFER.into()),
                vec![("Require".into(), "100rel".into())],
            ),
        )
        .unwrap();
    p.settle();
    let (b_call, _, _) = p.bob_incoming();
    p.bob.ring(p.now, b_call, 183, Some(ANSWER)).unwrap();
    p.settle();
    p.advance(5000);
    let trace = p.take_trace();
    assert_eq!(
        trace,
        [
            "A->B INVITE",
            "B->A 100 (INVITE)",
            "B->A 183 (INVITE)",
            "A->B PRACK",
            "B->A 200 (PRACK)"
        ]
    );
    assert!(p.alice_events.iter().any(
        |e| matches!(e, UaEvent::Progress { call: c, status: 183, sdp: Some(_), .. } if *c == call)
    ));
}

/// RFC 3262 section 3: no PRACK within 64*T1 rejects the INVITE with a 5xx.
#[test]
fn reliable_provisional_without_prack_gives_up() {
    let mut p = Pair::new();
    p.alice
        .call(
            p.now,
            to_bob(
                Some(OFFER.into()),
                vec![("Require".into(), "100rel".into())],
            ),
        )
        .unwrap();
    p.settle();
    let (b_call, _, _) = p.bob_incoming();
    p.bob.ring(p.now, b_call, 180, None).unwrap();
    // Every PRACK is lost.
    p.drop_from_alice = usize::MAX;
    p.settle();
    p.advance(33_000);
    let retransmitted = p.trace.iter().filter(|l| *l == "B->A 180 (INVITE)").count();
    assert!(retransmitted >= 6, "{:?}", p.trace);
    assert_eq!(
        ended(&p.bob_events),
        [(Side::Local, EndCause::Rejected(504))]
    );
}

/// SIP INFO DTMF (application/dtmf-relay) becomes a Dtmf event and gets 200.
#[test]
fn info_dtmf_becomes_an_event() {
    let mut p = Pair::new();
    let a_call = p.place(Some(OFFER));
    let (b_call, _, _) = p.bob_incoming();
    p.bob.answer(p.now, b_call, Some(ANSWER)).unwrap();
    p.settle();
    p.alice
        .request(
            p.now,
            a_call,
            "INFO",
            &[],
            Some(("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n")),
        )
        .unwrap();
    p.settle();
    assert!(p.bob_events.iter().any(|e| matches!(e, UaEvent::Dtmf { digit, .. } if digit.digit == '5' && digit.duration_ms == Some(160))));
    assert!(
        p.alice_events
            .iter()
            .any(|e| matches!(e, UaEvent::Response { status: 200, .. }))
    );
}

/// Session timers (RFC 4028): Alice asks for 120 s and supports timers, so she
/// refreshes (an UPDATE every 60 s, answered by Bob's user agent alone). Bob's timer
/// would end the call at 88 s without them; when Alice goes silent, it does.
#[test]
fn session_timer_refreshes_and_expires() {
    let mut p = Pair::new();
    p.alice.config.session_expires = Some(120);
    p.place(Some(OFFER));
    let (b_call, _, _) = p.bob_incoming();
    p.bob.answer(p.now, b_call, Some(ANSWER)).unwrap();
    p.settle();
    p.take_trace();
    p.advance(61_000);
    assert_eq!(p.take_trace(), ["A->B UPDATE", "B->A 200 (UPDATE)"]);
    // The next refresh is at 120 s, past the 88 s Bob would have waited for the first.
    p.advance(100_000);
    assert_eq!(p.take_trace(), ["A->B UPDATE", "B->A 200 (UPDATE)"]);
    assert!(ended(&p.bob_events).is_empty());
    // Alice goes silent; Bob's timer ends the session.
    p.drop_from_alice = usize::MAX;
    p.advance(120_000);
    assert_eq!(
        ended(&p.bob_events),
        [(Side::Local, EndCause::SessionExpired)]
    );
}

/// An INVITE whose session interval is under Min-SE gets 422 (RFC 4028 section 8.1).
#[test]
fn short_session_interval_gets_422() {
    let mut p = Pair::new();
    p.alice.config.session_expires = Some(30);
    p.place(Some(OFFER));
    assert!(p.bob_events.is_empty());
    assert!(
        p.trace.contains(&"B->A 422 (INVITE)".to_owned()),
        "{:?}",
        p.trace
    );
    assert_eq!(
        ended(&p.alice_events),
        [(Side::Remote, EndCause::Rejected(422))]
    );
}

/// An INVITE requiring an extension we lack gets 420 with Unsupported.
#[test]
fn unknown_required_extension_gets_420() {
    let mut p = Pair::new();
    let spec_headers = vec![("Require".to_owned(), "foo".to_owned())];
    let call = p
        .alice
        .call(p.now, to_bob(Some(OFFER.into()), spec_headers));
    assert!(call.is_ok());
    p.settle();
    assert!(
        p.trace.contains(&"B->A 420 (INVITE)".to_owned()),
        "{:?}",
        p.trace
    );
}

/// Our 2xx never ACKed: the call ends with a BYE after 64*T1 (section 13.3.1.4).
#[test]
fn missing_ack_ends_the_call_with_bye() {
    let mut p = Pair::new();
    p.place(Some(OFFER));
    let (b_call, _, _) = p.bob_incoming();
    p.drop_from_alice = usize::MAX;
    p.bob.answer(p.now, b_call, Some(ANSWER)).unwrap();
    p.settle();
    p.advance(33_000);
    assert!(p.trace.contains(&"B->A BYE".to_owned()), "{:?}", p.trace);
    assert_eq!(ended(&p.bob_events), [(Side::Local, EndCause::Timeout)]);
}

/// Bob answers and hangs up at once, and his 200 is lost: the BYE waits for the ACK
/// (section 15), so Alice never gets a BYE for a call she has not seen answered.
#[test]
fn a_hangup_before_the_ack_sends_its_bye_after_the_ack() {
    let mut p = Pair::new();
    p.place(Some(OFFER));
    let (b_call, _, _) = p.bob_incoming();
    p.take_trace();
    p.drop_from_bob = 1;
    p.bob.answer(p.now, b_call, Some(ANSWER)).unwrap();
    let reason = Reason::q850(16, "Normal call clearing");
    p.bob.hangup(p.now, b_call, Some(&reason)).unwrap();
    p.settle();
    assert_eq!(p.take_trace(), ["B->A 200 (INVITE) (lost)"]);
    assert!(ended(&p.bob_events).is_empty(), "not over before the BYE");
    // Timer G sends the 200 again; Alice ACKs; only then the BYE.
    p.advance(600);
    assert_eq!(
        p.take_trace(),
        [
            "B->A 200 (INVITE)",
            "A->B ACK",
            "B->A BYE",
            "A->B 200 (BYE)"
        ]
    );
    assert_eq!(ended(&p.bob_events), [(Side::Local, EndCause::Bye)]);
    assert_eq!(ended(&p.alice_events), [(Side::Remote, EndCause::Bye)]);
}

/// Bob hangs up right after answering and the ACK never comes: the BYE still goes,
/// when the ACK is given up on (64*T1), and the call ends by his hangup.
#[test]
fn a_hangup_whose_ack_never_comes_sends_its_bye_at_64_t1() {
    let mut p = Pair::new();
    p.place(Some(OFFER));
    let (b_call, _, _) = p.bob_incoming();
    p.drop_from_alice = usize::MAX;
    p.bob.answer(p.now, b_call, Some(ANSWER)).unwrap();
    p.bob.hangup(p.now, b_call, None).unwrap();
    p.settle();
    p.advance(31_000);
    assert!(!p.trace.contains(&"B->A BYE".to_owned()), "{:?}", p.trace);
    p.advance(2_000);
    assert!(p.trace.contains(&"B->A BYE".to_owned()), "{:?}", p.trace);
    assert_eq!(ended(&p.bob_events), [(Side::Local, EndCause::Bye)]);
    assert_eq!(p.bob.calls(), 0);
}

/// Requests in a dialog we do not know get 481; an engine header with a line
/// break is refused before anything is sent.
#[test]
fn unknown_dialog_and_header_injection_are_refused() {
    let mut p = Pair::new();
    let a_call = p.place(Some(OFFER));
    let (b_call, _, _) = p.bob_incoming();
    p.bob.answer(p.now, b_call, Some(ANSWER)).unwrap();
    p.settle();
    let err = p
        .alice
        .request(p.now, a_call, "INFO", &[("X-Evil", "a\r\nVia: x")], None)
        .unwrap_err();
    assert!(matches!(err, UaError::Build(_)), "{err}");
    p.bob.hangup(p.now, b_call, None).unwrap();
    p.settle();
    // Alice's call is gone; a request in it is refused by name.
    assert_eq!(
        p.alice.request(p.now, a_call, "INFO", &[], None),
        Err(UaError::NoCall(a_call))
    );
}

/// A request over 1300 bytes leaves UDP for TCP (RFC 3261 section 18.1.1).
#[test]
fn large_invite_goes_over_tcp() {
    let mut ua = UserAgent::new(UaConfig::new(alice_addr()));
    let big = format!("{OFFER}{}", "a=x-filler:0123456789abcdef\r\n".repeat(60));
    ua.call(
        Instant::now(),
        OutgoingCall {
            via_proxy: true,
            ..to_bob(Some(big), vec![])
        },
    )
    .unwrap();
    let t = ua.poll_transmit().unwrap();
    assert_eq!(t.transport, Transport::Tcp);
    let msg = parse_datagram(t.bytes).unwrap();
    assert_eq!(msg.via().unwrap().transport, "TCP");
    assert_eq!(
        msg.header(crate::msg::HeaderName::Route),
        Some("<sip:192.0.2.2:5060;lr>")
    );
}

/// The server stamps received and rport into the Via it returns (RFC 3581).
#[test]
fn responses_carry_received_and_rport() {
    let mut ua = UserAgent::new(UaConfig::new(bob_addr()));
    let text = "OPTIONS sip:bob@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKnat;rport\r\nMax-Forwards: 70\r\nFrom: <sip:a@10.0.0.5>;tag=1\r\nTo: <sip:bob@192.0.2.2>\r\nCall-ID: nat@10.0.0.5\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    let nat: SocketAddr = "203.0.113.7:61000".parse().unwrap();
    ua.receive(
        Instant::now(),
        parse_datagram(bytes::Bytes::from(text)).unwrap(),
        nat,
        Transport::Udp,
    );
    let t = ua.poll_transmit().unwrap();
    assert_eq!(t.to, nat);
    let reply = parse_datagram(t.bytes).unwrap();
    assert_eq!(reply.status(), Some(200));
    let via = reply.via().unwrap();
    assert_eq!(via.rport(), Some(Some(61000)));
    assert_eq!(via.received(), Some("203.0.113.7"));
    assert!(
        reply
            .header(crate::msg::HeaderName::Allow)
            .is_some_and(|a| a.contains("INVITE"))
    );
}
