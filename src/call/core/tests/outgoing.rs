//! Calls we place (`POST /calls`, `call`): dialled, then run their flow on the
//! answer; busy, failover, no answer, our hangup before the answer, no route; and
//! the `call` action placing calls that end with their master.

use std::time::Duration;

use api::originate::FlowSource;
use flow_runtime::CallStatus;
use serde_json::json;
use sip_stack::msg::Message;
use sip_stack::ua::{CallRef, EndCause, Side, UaEvent};

use super::super::{DialError, Input, Job, JobResult, LoadedFlow, MediaCommand, SipCommand};
use super::{Harness, SESSION};
use crate::call::registry::Control;

const ANSWER_SDP: &str = "v=0\r\no=- 2 2 IN IP4 192.0.2.30\r\ns=-\r\nc=IN IP4 192.0.2.30\r\nt=0 0\r\nm=audio 32000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

fn response(status: u16) -> Message {
    let text = format!(
        "SIP/2.0 {status} X\r\nVia: SIP/2.0/UDP 192.0.2.30;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    );
    sip_stack::msg::parse_datagram(bytes::Bytes::from(text)).expect("a response")
}

fn inline(actions: serde_json::Value) -> FlowSource {
    FlowSource::Inline {
        id: "flow-inline".into(),
        actions,
    }
}

fn talk_then_hangup() -> serde_json::Value {
    json!([
        {"type": "talk", "option": {"text": "hello ${campaign}"}},
        {"type": "hangup"}
    ])
}

fn rings(h: &mut Harness) {
    h.sip_event(UaEvent::Progress {
        call: CallRef(1),
        status: 180,
        sdp: None,
        msg: response(180),
    });
}

fn answers(h: &mut Harness) {
    h.sip_event(UaEvent::Answered {
        call: CallRef(1),
        sdp: Some(ANSWER_SDP.into()),
        msg: response(200),
    });
}

fn ends(h: &mut Harness, by: Side, cause: EndCause) {
    h.sip_event(UaEvent::Ended {
        call: CallRef(1),
        by,
        cause,
        reason: None,
    });
}

#[test]
fn a_placed_call_is_dialled_then_runs_its_flow_once_answered() {
    let mut h = Harness::placed(inline(talk_then_hangup()), "+15552223333", false, None);
    assert_eq!(h.call_verbs(), ["created", "dialing"]);
    let row = h.last_call_row();
    assert_eq!(
        (row.direction.as_str(), row.status.as_str()),
        ("outgoing", "dialing")
    );
    assert_eq!(row.id, "call-out");
    let dial = h.own_dials.first().expect("the INVITE went out");
    assert_eq!(dial.destination.target, "+15552223333");
    assert_eq!(dial.caller_id, "+15550001111");
    assert!(
        dial.sdp.contains("m=audio 20000 RTP/AVP 0 101"),
        "{}",
        dial.sdp
    );
    assert!(h.jobs.is_empty(), "the flow waits for the answer");

    rings(&mut h);
    assert_eq!(h.last_call_row().status, "ringing");
    assert!(h.last_call_row().tm_ringing.is_some());
    answers(&mut h);
    assert_eq!(h.last_call_row().status, "progressing");
    assert!(
        h.media_did(|c| matches!(c, MediaCommand::SetRemote { remote, .. }
        if remote.to_string() == "192.0.2.30:32000"))
    );
    let said = h.jobs.iter().find_map(|j| match j {
        Job::Speak { speech, .. } => Some(speech.text.clone()),
        _ => None,
    });
    assert_eq!(
        said.as_deref(),
        Some("hello summer"),
        "talk runs once answered, with the request's variables"
    );
    h.source_ready();
    h.play_finishes();
    assert!(h.hung_up().is_some(), "hangup: a BYE");
    ends(&mut h, Side::Local, EndCause::Bye);
    h.leg_closes();
    assert!(h.core.is_finished());
    let row = h.last_call_row();
    assert_eq!(row.status, "hangup");
    assert_eq!(row.hangup_reason, "normal");
    assert!(row.rtp_stats.is_some());
    assert_eq!(
        h.call_verbs(),
        [
            "created",
            "dialing",
            "ringing",
            "progressing",
            "terminating",
            "hungup"
        ]
    );
}

#[test]
fn a_stored_flow_is_read_only_once_answered() {
    let mut h = Harness::placed(
        FlowSource::Stored("flow-9".into()),
        "+15552223333",
        false,
        None,
    );
    assert!(h.jobs.is_empty());
    answers(&mut h);
    let Some(Job::LoadFlow { flow_id, purpose }) =
        h.take_job(|j| matches!(j, Job::LoadFlow { .. }))
    else {
        panic!("the flow is read on the answer");
    };
    assert_eq!(flow_id, "flow-9");
    h.input(Input::JobDone(JobResult::FlowLoaded {
        purpose,
        flow: Ok(Some(LoadedFlow {
            id: "flow-9".into(),
            actions: json!([{"type": "hangup"}]),
            on_complete_flow_id: None,
        })),
    }));
    assert!(h.hung_up().is_some());
}

#[test]
fn early_execution_runs_the_flow_while_it_rings() {
    let mut h = Harness::placed(inline(talk_then_hangup()), "+15552223333", true, None);
    assert!(
        h.take_job(|j| matches!(j, Job::Speak { .. })).is_some(),
        "the flow runs before the answer"
    );
}

#[test]
fn busy_ends_the_call_with_busy_and_no_failover() {
    let mut h = Harness::placed(inline(talk_then_hangup()), "+15552223333", false, None);
    rings(&mut h);
    ends(&mut h, Side::Remote, EndCause::Rejected(486));
    assert_eq!(
        h.own_dials.len(),
        1,
        "a callee's busy is not a carrier failing"
    );
    h.leg_closes();
    assert!(h.core.is_finished());
    let row = h.last_call_row();
    assert_eq!(
        (row.hangup_reason.as_str(), row.hangup_by.as_str()),
        ("busy", "remote")
    );
    assert!(h.jobs.is_empty(), "the flow never ran");
}

#[test]
fn a_carrier_503_hands_the_call_to_the_next_carrier_with_the_same_offer() {
    let mut h = Harness::placed(inline(talk_then_hangup()), "+15552223333", false, None);
    ends(&mut h, Side::Remote, EndCause::Rejected(503));
    assert_eq!(h.own_dials.len(), 2);
    assert_eq!(h.own_dials[1].attempt, 1);
    assert_eq!(h.own_dials[1].sdp, h.own_dials[0].sdp);
    answers(&mut h);
    assert_eq!(h.last_call_row().status, "progressing");
}

#[test]
fn every_carrier_failing_ends_the_call_with_the_last_status() {
    let mut h = Harness::placed(inline(talk_then_hangup()), "+15552223333", false, None);
    h.dial_error = None;
    ends(&mut h, Side::Remote, EndCause::Rejected(503));
    // The second attempt finds no carrier left.
    h.dial_error = Some(DialError::Exhausted("+15552223333".into()));
    ends(&mut h, Side::Remote, EndCause::Rejected(503));
    h.leg_closes();
    assert!(h.core.is_finished());
    assert_eq!(h.last_call_row().hangup_reason, "failed");
    assert!(
        h.failures()
            .iter()
            .any(|m| m.contains("every carrier for +15552223333 was tried")),
        "{:?}",
        h.failures()
    );
}

#[test]
fn no_answer_within_the_ring_timeout_cancels_it() {
    let mut h = Harness::placed(inline(talk_then_hangup()), "+15552223333", false, None);
    rings(&mut h);
    h.advance(Duration::from_secs(59));
    assert!(h.hung_up().is_none());
    h.advance(Duration::from_secs(2));
    assert!(h.hung_up().is_some(), "CANCEL at the ring timeout");
    ends(&mut h, Side::Local, EndCause::Cancelled);
    h.leg_closes();
    assert!(h.core.is_finished());
    let row = h.last_call_row();
    assert_eq!(
        (row.hangup_reason.as_str(), row.hangup_by.as_str()),
        ("noanswer", "local")
    );
}

#[test]
fn hung_up_through_the_api_before_the_answer_it_is_cancelled() {
    let mut h = Harness::placed(inline(talk_then_hangup()), "+15552223333", false, None);
    rings(&mut h);
    h.input(Input::Control(Control::Hangup));
    assert!(h.hung_up().is_some(), "CANCEL");
    assert!(!h.core.is_finished(), "the INVITE's answer is waited for");
    ends(&mut h, Side::Local, EndCause::Cancelled);
    h.leg_closes();
    assert!(h.core.is_finished());
    assert_eq!(h.last_call_row().hangup_reason, "normal");
}

#[test]
fn an_answer_that_crosses_our_cancel_is_hung_up() {
    let mut h = Harness::placed(inline(talk_then_hangup()), "+15552223333", false, None);
    h.input(Input::Control(Control::Hangup));
    answers(&mut h);
    let hangups = h
        .sip
        .iter()
        .filter(|c| matches!(c, SipCommand::Hangup { .. }))
        .count();
    assert_eq!(hangups, 2, "the CANCEL, then a BYE for the answer");
    assert!(h.jobs.is_empty(), "its flow does not run");
}

#[test]
fn a_destination_without_a_route_fails_with_the_reason() {
    let mut h = Harness::placed(
        inline(talk_then_hangup()),
        "+15552223333",
        false,
        Some(DialError::NoRoute(
            "+15552223333 (no route or carrier takes it)".into(),
        )),
    );
    h.leg_closes();
    assert!(h.core.is_finished());
    assert_eq!(h.last_call_row().hangup_reason, "failed");
    assert!(
        h.failures()
            .iter()
            .any(|m| m.contains("no route to +15552223333")),
        "{:?}",
        h.failures()
    );
    assert!(h.media_did(|c| matches!(c, MediaCommand::Close(s) if *s == SESSION)));
}

#[test]
fn the_call_action_places_calls_that_end_with_their_master_when_chained() {
    let mut h = Harness::new(json!([
        {"type": "answer"},
        {"type": "call", "option": {
            "destinations": [{"type": "tel", "target": "+15554445555"}],
            "actions": [{"type": "talk", "option": {"text": "hi"}}],
            "chained": true
        }},
        {"type": "sleep", "option": {"duration": 1000}}
    ]));
    let Some(Job::Originate { request, chained }) =
        h.take_job(|j| matches!(j, Job::Originate { .. }))
    else {
        panic!("call places calls through the originate job");
    };
    assert!(chained);
    assert_eq!(request.master_call_id, h.core.call_id());
    assert_eq!(
        request.source.target, "+15559870000",
        "the number called is the new calls' caller ID"
    );
    assert_eq!(request.destinations[0].target, "+15554445555");
    assert!(matches!(request.flow, FlowSource::Inline { .. }));
    h.input(Input::JobDone(JobResult::Originated {
        chained,
        result: Ok(vec!["placed-1".into()]),
    }));
    assert_eq!(h.last_call_row().chained_call_ids, ["placed-1"]);
    assert_eq!(h.core.status, CallStatus::Progressing);
    h.caller_ends(EndCause::Bye);
    assert_eq!(
        h.hung_up_calls,
        ["placed-1"],
        "chained: ended with the master"
    );
}
