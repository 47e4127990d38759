//! Beyond the basic flows: loss, Reason, glare, PRACK (RFC 3262), INFO DTMF, session
//! timers (RFC 4028), 420 and 422, the ACK and the BYE (section 15), 481, header
//! injection, TCP for large requests, received and rport (RFC 3581).

use super::*;

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
            crate::msg::Method::Invite,
            &[],
            Some(("application/sdp", OFFER.as_bytes())),
        )
        .unwrap();
    let b_tx = p
        .bob
        .request(
            p.now,
            b_call,
            crate::msg::Method::Invite,
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
            crate::msg::Method::Info,
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
        .request(
            p.now,
            a_call,
            crate::msg::Method::Info,
            &[("X-Evil", "a\r\nVia: x")],
            None,
        )
        .unwrap_err();
    assert!(matches!(err, UaError::Build(_)), "{err}");
    p.bob.hangup(p.now, b_call, None).unwrap();
    p.settle();
    // Alice's call is gone; a request in it is refused by name.
    assert_eq!(
        p.alice
            .request(p.now, a_call, crate::msg::Method::Info, &[], None),
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
