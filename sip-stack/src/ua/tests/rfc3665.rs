//! RFC 3665's basic call flows, end point by end point, between two user agents on a
//! fake clock.

use super::*;

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
            crate::msg::Method::Invite,
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

/// A next hop that says nothing at all is given up at `no_reply_timeout`, well
/// before timer B: the INVITE stops and the call ends with a timeout, so a B2BUA
/// tries its next route.
#[test]
fn a_silent_next_hop_is_given_up_at_the_no_reply_timeout() {
    let mut p = Pair::new();
    p.bob_unreachable = true;
    let spec = OutgoingCall {
        no_reply_timeout: Some(std::time::Duration::from_secs(2)),
        ..to_bob(Some(OFFER.into()), vec![])
    };
    p.alice.call(p.now, spec).unwrap();
    p.settle();
    p.advance(1_900);
    assert!(ended(&p.alice_events).is_empty());
    p.advance(200);
    assert_eq!(ended(&p.alice_events), [(Side::Local, EndCause::Timeout)]);
    let sent = p.trace.len();
    assert_eq!(sent, 3, "INVITE at 0, 0.5 and 1.5 s: {:?}", p.trace);
    p.advance(10_000);
    assert_eq!(p.trace.len(), sent, "no INVITE after it was given up");
    assert_eq!(p.alice.calls(), 0);
}

/// A 100 Trying shows the next hop is alive: the no-reply timeout no longer
/// applies, and the callee may ring as long as it likes.
#[test]
fn a_trying_next_hop_is_not_given_up_at_the_no_reply_timeout() {
    let mut p = Pair::new();
    let spec = OutgoingCall {
        no_reply_timeout: Some(std::time::Duration::from_secs(2)),
        ..to_bob(Some(OFFER.into()), vec![])
    };
    p.alice.call(p.now, spec).unwrap();
    p.settle();
    p.bob_incoming();
    p.advance(5_000);
    assert!(ended(&p.alice_events).is_empty(), "{:?}", p.alice_events);
}

/// A probe (OPTIONS outside a call) reports the final status it got, or none
/// once timer F gives up on a silent peer.
#[test]
fn a_probe_reports_its_answer_or_its_silence() {
    let mut p = Pair::new();
    let tx = p
        .alice
        .probe(p.now, "sip:bob@192.0.2.2", bob_addr(), Transport::Udp)
        .unwrap();
    p.settle();
    let answered: Vec<_> = p
        .alice_events
        .iter()
        .filter_map(|e| match e {
            UaEvent::Probed { tx: t, status } if *t == tx => Some(*status),
            _ => None,
        })
        .collect();
    assert_eq!(answered.len(), 1, "{:?} {:?}", p.alice_events, p.trace);
    assert!(answered[0].is_some());

    let mut p = Pair::new();
    p.bob_unreachable = true;
    let tx = p
        .alice
        .probe(p.now, "sip:bob@192.0.2.2", bob_addr(), Transport::Udp)
        .unwrap();
    p.settle();
    p.advance(33_000);
    assert!(
        p.alice
            .poll_event()
            .into_iter()
            .chain(p.alice_events.iter().cloned())
            .any(|e| matches!(e, UaEvent::Probed { tx: t, status: None } if t == tx)),
        "{:?}",
        p.alice_events
    );
}
