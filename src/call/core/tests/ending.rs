//! How calls end: each hangup reason's SIP status (before the answer) and Q.850
//! cause (after it), CANCEL, the caller hanging up mid-action (and the chained
//! flow that still runs), the RTP timeout and the session timer.

use serde_json::json;
use sip_stack::ua::{CallRef, EndCause, Side, UaEvent};

use super::super::{FlowPurpose, Input, Job, JobResult, LoadedFlow, MediaCommand};
use super::{Harness, SESSION};

#[test]
fn each_reason_before_the_answer_gets_its_status_and_reason() {
    for (reason, status) in [
        ("busy", 486),
        ("noanswer", 480),
        ("timeout", 408),
        ("failed", 503),
        ("normal", 480),
        ("", 480),
    ] {
        let h = Harness::new(json!([{"type": "hangup", "option": {"reason": reason}}]));
        let (got, text) = h.rejected().expect("the INVITE is refused");
        assert_eq!(got, status, "{reason:?}");
        let expected = if reason.is_empty() { "normal" } else { reason };
        assert_eq!(text, expected, "the Reason names it");
        assert_eq!(h.last_call_row().hangup_reason, expected);
        assert!(h.core.is_finished(), "no leg: the call is over at once");
    }
}

#[test]
fn each_reason_after_the_answer_gets_its_q850_cause() {
    for (reason, cause) in [
        ("busy", 17),
        ("noanswer", 19),
        ("failed", 41),
        ("normal", 16),
    ] {
        let h = Harness::new(json!([
            {"type": "answer"},
            {"type": "hangup", "option": {"reason": reason}}
        ]));
        let bye = h.hung_up().expect("a BYE");
        assert_eq!(
            (bye.protocol.as_str(), bye.cause),
            ("Q.850", cause),
            "{reason}"
        );
        assert_eq!(
            h.call_verbs(),
            ["created", "ringing", "progressing", "terminating"]
        );
    }
}

#[test]
fn a_cancel_while_ringing_ends_as_cancel_by_the_caller() {
    let mut h =
        Harness::new(json!([{"type": "sleep", "option": {"duration": 10000}}, {"type": "answer"}]));
    h.caller_ends(EndCause::Cancelled);
    assert!(h.core.is_finished());
    assert_eq!(
        h.call_verbs(),
        ["created", "ringing", "canceling", "hungup"]
    );
    let row = h.last_call_row();
    assert_eq!(
        (row.hangup_reason.as_str(), row.hangup_by.as_str()),
        ("cancel", "remote")
    );
    assert!(
        h.sip
            .iter()
            .all(|c| !matches!(c, super::super::SipCommand::Answer { .. }))
    );
}

#[test]
fn the_caller_hanging_up_mid_talk_ends_the_flow_and_runs_the_chained_one() {
    let mut h = Harness::chained(
        json!([
            {"type": "answer"},
            {"type": "talk", "option": {"text": "A long message", "language": "en-US"}},
            {"type": "talk", "option": {"text": "Never heard", "language": "en-US"}}
        ]),
        Some(super::OFFER),
        Some("flow-after"),
    );
    h.source_ready();
    h.caller_ends(EndCause::Bye);
    let job = h
        .take_job(|j| {
            matches!(
                j,
                Job::LoadFlow {
                    purpose: FlowPurpose::Chain(_),
                    ..
                }
            )
        })
        .expect("the chained flow is read");
    let Job::LoadFlow { flow_id, purpose } = job else {
        unreachable!("matched above")
    };
    assert_eq!(flow_id, "flow-after");
    h.input(Input::JobDone(JobResult::FlowLoaded {
        purpose,
        flow: Ok(Some(LoadedFlow {
            id: "flow-after".into(),
            actions: json!([
                {"type": "webhook_send", "option": {"sync": false, "uri": "https://example.com/h", "data": "{}"}}
            ]),
            on_complete_flow_id: None,
        })),
    }));
    assert_eq!(h.renamed.len(), 1, "the API reaches the new activeflow");
    assert!(
        h.jobs.iter().any(|j| matches!(j, Job::Http { .. })),
        "the chained flow runs with the caller gone: {:?}",
        h.jobs
    );
    assert!(
        h.jobs.iter().all(|j| !matches!(j, Job::Speak { .. })),
        "the second talk never ran"
    );
    h.leg_closes();
    assert!(h.core.is_finished());
    let row = h.last_call_row();
    assert_eq!(
        (row.hangup_reason.as_str(), row.hangup_by.as_str()),
        ("normal", "remote")
    );
    assert!(h.hung_up().is_none(), "no BYE for a call the caller ended");
}

#[test]
fn no_rtp_ends_the_call_with_cause_41() {
    let mut h = Harness::new(
        json!([{"type": "answer"}, {"type": "sleep", "option": {"duration": 600000}}]),
    );
    h.media_event(media_engine::engine::MediaEvent::RtpTimeout { session: SESSION });
    let bye = h.hung_up().expect("a BYE");
    assert_eq!(bye.cause, 41);
    assert!(h.media_did(|c| matches!(c, MediaCommand::Close(SESSION))));
    h.leg_closes();
    assert_eq!(h.last_call_row().hangup_reason, "failed");
}

#[test]
fn an_expired_session_timer_ends_the_call_as_failed() {
    let mut h = Harness::new(
        json!([{"type": "answer"}, {"type": "sleep", "option": {"duration": 600000}}]),
    );
    h.sip_event(UaEvent::Ended {
        call: CallRef(1),
        by: Side::Local,
        cause: EndCause::SessionExpired,
        reason: None,
    });
    h.leg_closes();
    let row = h.last_call_row();
    assert_eq!(
        (row.hangup_reason.as_str(), row.hangup_by.as_str()),
        ("failed", "local")
    );
    assert!(h.hung_up().is_none(), "the user agent sent its BYE itself");
}

#[test]
fn a_leg_that_never_reports_its_end_closes_after_two_seconds() {
    let mut h = Harness::new(json!([{"type": "answer"}, {"type": "hangup"}]));
    assert!(!h.core.is_finished());
    h.advance(std::time::Duration::from_millis(1999));
    assert!(!h.core.is_finished());
    h.advance(std::time::Duration::from_millis(1));
    assert!(h.core.is_finished());
    assert_eq!(h.last_call_row().status, "hangup");
    assert!(h.last_call_row().rtp_stats.is_none());
}

#[test]
fn a_hangup_from_the_api_sends_a_bye() {
    let mut h = Harness::new(
        json!([{"type": "answer"}, {"type": "sleep", "option": {"duration": 600000}}]),
    );
    h.input(Input::Control(super::super::super::Control::Hangup));
    assert_eq!(h.hung_up().map(|r| r.cause), Some(16));
    h.leg_closes();
    assert_eq!(h.last_call_row().hangup_by, "local");
}
