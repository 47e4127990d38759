//! `connect`: destinations rung at once, the first answer bridged to the caller,
//! the others cancelled; early media, relayed failures, the ring timeout, and
//! either side's hangup.

use std::time::Duration;

use api::call_store::Row;
use serde_json::json;
use sip_stack::msg::Message;
use sip_stack::ua::{EndCause, Side, UaEvent};

use super::super::{CalleeCommand, DialError, LegId, MediaCommand, SipCommand};
use super::{Harness, SESSION, callee_dialog, callee_session};

const CALLEE_SDP: &str = "v=0\r\no=- 2 2 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

fn response(status: u16) -> Message {
    let text = format!(
        "SIP/2.0 {status} X\r\nVia: SIP/2.0/UDP 192.0.2.20;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    );
    sip_stack::msg::parse_datagram(bytes::Bytes::from(text)).expect("a response")
}

fn progress(leg: u32, status: u16, sdp: Option<&str>) -> UaEvent {
    UaEvent::Progress {
        call: callee_dialog(LegId(leg)),
        status,
        sdp: sdp.map(str::to_owned),
        msg: response(status),
    }
}

fn answered(leg: u32) -> UaEvent {
    UaEvent::Answered {
        call: callee_dialog(LegId(leg)),
        sdp: Some(CALLEE_SDP.into()),
        msg: response(200),
    }
}

fn ended(leg: u32, by: Side, cause: EndCause) -> UaEvent {
    UaEvent::Ended {
        call: callee_dialog(LegId(leg)),
        by,
        cause,
        reason: None,
    }
}

fn connect(destinations: &[&str], extra: serde_json::Value) -> serde_json::Value {
    let mut option = json!({
        "destinations": destinations
            .iter()
            .map(|d| json!({"type": "tel", "target": d}))
            .collect::<Vec<_>>(),
    });
    if let (Some(o), Some(e)) = (option.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    json!({"type": "connect", "option": option})
}

/// The rows written for dialled calls (direction outgoing), by call id, as last
/// written, with the verbs announced for each.
fn callee_rows(h: &Harness) -> Vec<(api::store::calls::Call, Vec<&'static str>)> {
    let mut rows: Vec<(api::store::calls::Call, Vec<&'static str>)> = Vec::new();
    for w in &h.writes {
        if let Row::Call { call, .. } = &w.row
            && call.direction == "outgoing"
        {
            let verbs = w.verbs.iter().map(|v| v.as_str());
            match rows.iter_mut().find(|(c, _)| c.id == call.id) {
                Some((c, v)) => {
                    *c = call.as_ref().clone();
                    v.extend(verbs);
                }
                None => rows.push((call.as_ref().clone(), verbs.collect())),
            }
        }
    }
    rows
}

/// Dialled leg `leg`'s session reports its close.
fn callee_closes(h: &mut Harness, leg: u32) {
    h.media_event(media_engine::engine::MediaEvent::Closed {
        session: callee_session(LegId(leg)),
        stats: Default::default(),
    });
}

fn bridged(h: &Harness, leg: u32) -> bool {
    h.media_did(|c| {
        matches!(c, MediaCommand::Bridge { a, b } if *a == SESSION && *b == callee_session(LegId(leg)))
    })
}

#[test]
fn the_callee_answers_and_the_caller_is_answered_on_the_bridge() {
    let mut h = Harness::new(json!([
        connect(&["+15557770000"], json!({})),
        {"type": "talk", "option": {"text": "after"}},
    ]));
    // The caller's session opens (for the answer to come), the callee is dialled
    // with the caller's number and one hop less.
    assert_eq!(h.dials.len(), 1);
    let (leg, dial) = &h.dials[0];
    assert_eq!(*leg, LegId(1));
    assert_eq!(dial.destination.target, "+15557770000");
    assert_eq!(dial.caller_id, "+15551230000");
    assert_eq!(dial.max_forwards, 69);
    assert!(
        dial.sdp.contains("m=audio 20102 RTP/AVP 0 101"),
        "{}",
        dial.sdp
    );
    assert!(!h.sip.iter().any(|c| matches!(c, SipCommand::Answer { .. })));

    h.callee_event(1, progress(1, 180, None));
    h.callee_event(1, answered(1));
    assert!(h.sip.iter().any(|c| matches!(c, SipCommand::Answer { .. })));
    assert!(bridged(&h, 1));
    assert!(
        h.media_did(|c| matches!(c, MediaCommand::SetRemote { session, remote }
        if *session == callee_session(LegId(1)) && remote.port() == 30000))
    );
    let master = h.last_call_row().clone();
    let rows = callee_rows(&h);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0.master_call_id, h.core.call_id());
    assert_eq!(rows[0].1, ["created", "dialing", "ringing", "progressing"]);
    assert_eq!(master.status, "progressing");
    assert!(
        h.writes
            .iter()
            .any(|w| matches!(&w.row, Row::Call { call, .. }
        if call.id == h.core.call_id() && call.chained_call_ids == vec![rows[0].0.id.clone()]))
    );

    // The callee hangs up: the bridge ends, its session closes, its row hangs up
    // with its statistics, and the caller's flow goes on.
    h.callee_event(1, ended(1, Side::Remote, EndCause::Bye));
    // Closing the callee's leg is what ends the bridge (the worker unbridges a leg
    // it closes).
    assert!(h.media_did(|c| matches!(c, MediaCommand::Close(s) if *s == callee_session(LegId(1)))));
    assert!(!h.media_did(|c| matches!(c, MediaCommand::Unbridge(_))));
    h.media_event(media_engine::engine::MediaEvent::Closed {
        session: callee_session(LegId(1)),
        stats: media_engine::engine::SessionStats {
            packets_received: 10,
            ..Default::default()
        },
    });
    let rows = callee_rows(&h);
    assert_eq!(rows[0].0.status, "hangup");
    assert_eq!(rows[0].0.hangup_reason, "normal");
    assert_eq!(rows[0].0.hangup_by, "remote");
    assert_eq!(
        rows[0].0.rtp_stats.as_ref().map(|s| s.packets_received),
        Some(10)
    );
    assert!(
        h.jobs
            .iter()
            .any(|j| matches!(j, super::super::Job::Speak { .. }))
    );
    assert!(h.hung_up().is_none());
}

#[test]
fn the_first_of_three_to_answer_wins_and_the_others_are_cancelled() {
    let mut h = Harness::new(json!([connect(&["+1", "+2", "+3"], json!({}))]));
    assert_eq!(h.dials.len(), 3);
    h.callee_event(1, progress(1, 180, None));
    h.callee_event(2, progress(2, 180, None));
    h.callee_event(2, answered(2));
    assert!(bridged(&h, 2));
    let cancelled: Vec<LegId> = h
        .callee
        .iter()
        .filter_map(|(leg, c)| {
            matches!(c, CalleeCommand::Sip(SipCommand::Hangup { .. })).then_some(*leg)
        })
        .collect();
    assert_eq!(cancelled, [LegId(1), LegId(3)]);
    let CalleeCommand::Sip(SipCommand::Hangup { reason }) = &h.callee[0].1 else {
        unreachable!("filtered above")
    };
    assert_eq!(reason.text.as_deref(), Some("Call completed elsewhere"));
}

#[test]
fn busy_with_relay_reason_gives_the_caller_486() {
    let mut h = Harness::new(json!([
        connect(&["+15557770000"], json!({"relay_reason": true})),
        {"type": "talk", "option": {"text": "never"}},
    ]));
    h.callee_event(1, progress(1, 180, None));
    h.callee_event(1, ended(1, Side::Remote, EndCause::Rejected(486)));
    assert_eq!(h.rejected().map(|(s, _)| s), Some(486));
    callee_closes(&mut h, 1);
    let rows = callee_rows(&h);
    assert_eq!(rows[0].0.hangup_reason, "busy");
    assert!(
        !h.jobs
            .iter()
            .any(|j| matches!(j, super::super::Job::Speak { .. }))
    );
}

#[test]
fn declined_without_relay_reason_goes_on_with_the_flow() {
    let mut h = Harness::new(json!([
        connect(&["+15557770000"], json!({})),
        {"type": "answer"},
    ]));
    h.callee_event(1, ended(1, Side::Remote, EndCause::Rejected(603)));
    assert!(h.rejected().is_none());
    assert!(h.sip.iter().any(|c| matches!(c, SipCommand::Answer { .. })));
}

#[test]
fn nobody_answering_in_the_ring_timeout_is_cancelled_and_relayed_as_no_answer() {
    let mut h = Harness::new(json!([connect(
        &["+1", "+2"],
        json!({"relay_reason": true, "ring_timeout": 5000})
    )]));
    h.callee_event(1, progress(1, 180, None));
    h.advance(Duration::from_secs(4));
    assert!(h.callee.is_empty());
    h.advance(Duration::from_secs(2));
    assert_eq!(h.callee.len(), 2, "both legs are cancelled");
    h.callee_event(1, ended(1, Side::Local, EndCause::Cancelled));
    h.callee_event(2, ended(2, Side::Local, EndCause::Cancelled));
    assert_eq!(h.rejected().map(|(s, _)| s), Some(480));
    callee_closes(&mut h, 1);
    callee_closes(&mut h, 2);
    assert!(
        callee_rows(&h)
            .iter()
            .all(|(c, _)| c.hangup_reason == "noanswer")
    );
}

#[test]
fn early_media_reaches_the_caller_before_the_answer() {
    let mut h = Harness::new(json!([connect(&["+1"], json!({"early_media": true}))]));
    h.callee_event(1, progress(1, 183, Some(CALLEE_SDP)));
    assert!(
        h.sip
            .iter()
            .any(|c| matches!(c, SipCommand::EarlyMedia { .. }))
    );
    assert!(bridged(&h, 1));
    assert!(!h.sip.iter().any(|c| matches!(c, SipCommand::Answer { .. })));
    h.callee_event(1, answered(1));
    assert!(h.sip.iter().any(|c| matches!(c, SipCommand::Answer { .. })));
    let bridges = h
        .media
        .iter()
        .filter(|c| matches!(c, MediaCommand::Bridge { .. }))
        .count();
    assert_eq!(bridges, 1, "the early bridge carries on");
}

#[test]
fn an_answered_caller_hears_ringback_and_its_hangup_ends_the_callee() {
    let mut h = Harness::new(json!([{"type": "answer"}, connect(&["+1"], json!({}))]));
    h.callee_event(1, progress(1, 180, None));
    assert!(
        h.media_did(|c| matches!(c, MediaCommand::Play { session, .. } if *session == SESSION))
    );
    h.callee_event(1, answered(1));
    assert!(h.media_did(|c| matches!(c, MediaCommand::Stop(s) if *s == SESSION)));
    h.caller_ends(EndCause::Bye);
    assert!(
        h.callee.iter().any(|(leg, c)| *leg == LegId(1)
            && matches!(c, CalleeCommand::Sip(SipCommand::Hangup { .. })))
    );
    // The call ends once both sessions and the callee's row are done.
    h.callee_event(1, ended(1, Side::Local, EndCause::Bye));
    h.leg_closes();
    assert!(!h.core.is_finished());
    h.media_event(media_engine::engine::MediaEvent::Closed {
        session: callee_session(LegId(1)),
        stats: Default::default(),
    });
    assert!(h.core.is_finished());
    let rows = callee_rows(&h);
    assert_eq!(rows[0].0.hangup_by, "local");
}

#[test]
fn a_destination_without_a_route_fails_its_leg_and_the_flow_goes_on() {
    let mut h = Harness::dial_fails(
        json!([connect(&["+1"], json!({})), {"type": "answer"}]),
        DialError::NoRoute("+1 (no provider has a hostname)".into()),
    );
    assert!(
        h.failures().iter().any(|f| f.contains("no route to +1")),
        "{:?}",
        h.failures()
    );
    h.media_event(media_engine::engine::MediaEvent::Closed {
        session: callee_session(LegId(1)),
        stats: Default::default(),
    });
    let rows = callee_rows(&h);
    assert_eq!(rows[0].0.hangup_reason, "failed");
    assert_eq!(rows[0].0.status, "hangup");
    assert!(h.media_did(|c| matches!(c, MediaCommand::Close(s) if *s == callee_session(LegId(1)))));
    // The connect failed: the flow's next action answers.
    assert!(h.sip.iter().any(|c| matches!(c, SipCommand::Answer { .. })));
}

#[test]
fn a_carrier_failing_with_503_hands_the_leg_to_the_next_one() {
    let mut h = Harness::new(json!([connect(&["+1"], json!({"relay_reason": true}))]));
    assert_eq!(h.dials.len(), 1);
    assert_eq!(h.dials[0].1.attempt, 0);
    h.callee_event(1, ended(1, Side::Remote, EndCause::Rejected(503)));
    // Same leg, same offer, the next carrier; nothing closed, nothing relayed.
    assert_eq!(h.dials.len(), 2);
    assert_eq!(h.dials[1].0, LegId(1));
    assert_eq!(h.dials[1].1.attempt, 1);
    assert_eq!(h.dials[1].1.sdp, h.dials[0].1.sdp);
    assert!(!h.media_did(|c| matches!(c, MediaCommand::Close(_))));
    assert!(h.rejected().is_none());
    h.callee_event(1, answered(1));
    assert!(bridged(&h, 1));
    assert!(h.sip.iter().any(|c| matches!(c, SipCommand::Answer { .. })));
}

#[test]
fn a_decline_is_the_callee_s_answer_and_is_not_failed_over() {
    let mut h = Harness::new(json!([connect(&["+1"], json!({"relay_reason": true}))]));
    h.callee_event(1, ended(1, Side::Remote, EndCause::Rejected(603)));
    assert_eq!(h.dials.len(), 1);
    assert_eq!(h.rejected().map(|(s, _)| s), Some(603));
}

#[test]
fn when_every_carrier_failed_the_caller_gets_the_last_one_s_status() {
    let mut h = Harness::new(json!([connect(&["+1"], json!({"relay_reason": true}))]));
    h.dial_error = Some(DialError::Exhausted("+1".into()));
    h.callee_event(1, ended(1, Side::Remote, EndCause::Rejected(502)));
    assert_eq!(h.dials.len(), 2, "the second attempt was asked for");
    assert_eq!(h.rejected().map(|(s, _)| s), Some(502));
    assert!(
        h.failures()
            .iter()
            .any(|f| f.contains("every carrier for +1 was tried"))
    );
}

#[test]
fn a_hangup_after_a_failed_connect_refuses_the_unanswered_caller_with_its_status() {
    // The caller's session is open (for the connect) but never answered: the
    // flow's busy hangup is a 486, not a BYE.
    let mut h = Harness::new(json!([
        connect(&["+1"], json!({})),
        {"type": "hangup", "option": {"reason": "busy"}},
    ]));
    h.callee_event(1, ended(1, Side::Remote, EndCause::Rejected(482)));
    assert_eq!(h.rejected().map(|(s, _)| s), Some(486));
    assert!(h.hung_up().is_none());
}

#[test]
fn a_callee_s_reinvite_moving_its_media_is_answered_with_sdp_and_followed() {
    let mut h = Harness::new(json!([connect(&["+1"], json!({}))]));
    h.callee_event(1, answered(1));
    let moved = CALLEE_SDP.replace("m=audio 30000", "m=audio 31000");
    h.callee_event(
        1,
        UaEvent::Request {
            call: Some(callee_dialog(LegId(1))),
            tx: sip_stack::transaction::TxId(5),
            msg: super::in_call::reinvite(&moved),
            source: "192.0.2.20:5060".parse().expect("as written"),
        },
    );
    let Some((
        _,
        CalleeCommand::Sip(SipCommand::Respond {
            status: 200,
            sdp: Some(sdp),
            ..
        }),
    )) = h.callee.last()
    else {
        panic!(
            "the re-INVITE is answered with our SDP: {:?}",
            h.callee.last()
        );
    };
    assert!(sdp.contains("m=audio 20102 RTP/AVP 0"), "{sdp}");
    assert!(
        h.media_did(|c| matches!(c, MediaCommand::SetRemote { session, remote }
        if *session == callee_session(LegId(1)) && remote.port() == 31000))
    );
}

#[test]
fn a_hold_on_either_side_is_relayed_to_the_other_and_so_is_the_resume() {
    let mut h = Harness::new(json!([connect(&["+1"], json!({}))]));
    h.callee_event(1, answered(1));
    // The caller holds: the callee is offered sendonly.
    let held = super::OFFER.replace("a=ptime:20", "a=ptime:20\r\na=sendonly");
    h.sip_event(UaEvent::Request {
        call: Some(sip_stack::ua::CallRef(1)),
        tx: sip_stack::transaction::TxId(7),
        msg: super::in_call::reinvite(&held),
        source: "192.0.2.10:5060".parse().expect("as written"),
    });
    let relayed = |h: &Harness| -> Vec<String> {
        h.callee
            .iter()
            .filter_map(|(_, c)| match c {
                CalleeCommand::Sip(SipCommand::Reinvite { sdp }) => Some(sdp.clone()),
                _ => None,
            })
            .collect()
    };
    let offers = relayed(&h);
    assert_eq!(offers.len(), 1, "{:?} {:?}", h.callee, h.sip);
    assert!(offers[0].contains("a=sendonly"), "{}", offers[0]);
    // Holding again changes nothing; resuming is relayed.
    h.sip_event(UaEvent::Request {
        call: Some(sip_stack::ua::CallRef(1)),
        tx: sip_stack::transaction::TxId(8),
        msg: super::in_call::reinvite(&held),
        source: "192.0.2.10:5060".parse().expect("as written"),
    });
    assert_eq!(relayed(&h).len(), 1);
    h.sip_event(UaEvent::Request {
        call: Some(sip_stack::ua::CallRef(1)),
        tx: sip_stack::transaction::TxId(9),
        msg: super::in_call::reinvite(super::OFFER),
        source: "192.0.2.10:5060".parse().expect("as written"),
    });
    let offers = relayed(&h);
    assert_eq!(offers.len(), 2);
    assert!(offers[1].contains("a=sendrecv"), "{}", offers[1]);

    // The callee holds (inactive): the caller is offered sendonly.
    let inactive = format!("{CALLEE_SDP}a=inactive\r\n");
    h.callee_event(
        1,
        UaEvent::Request {
            call: Some(callee_dialog(LegId(1))),
            tx: sip_stack::transaction::TxId(10),
            msg: super::in_call::reinvite(&inactive),
            source: "192.0.2.20:5060".parse().expect("as written"),
        },
    );
    let Some(SipCommand::Reinvite { sdp }) = h.sip.last() else {
        panic!("the caller is told: {:?}", h.sip);
    };
    assert!(sdp.contains("a=sendonly"), "{sdp}");
}
