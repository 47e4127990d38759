//! `amd`: the verdict as the action's outcome and the flow's variables, a machine
//! hung up with reason `amd`, `delay` holding a machine's verdict until the beep,
//! and `async` hanging up a machine by itself.

use media_engine::amd::{Beep, Cause, Detection, Verdict};
use serde_json::json;

use super::super::{AmdReport, Input, Job};
use super::Harness;

fn flow(option: serde_json::Value) -> Harness {
    Harness::new(json!([
        {"type": "answer"},
        {"type": "amd", "option": option},
        {"type": "talk", "option": {"text": "after", "language": "en-US"}},
        {"type": "sleep", "option": {"duration": 600000}}
    ]))
}

fn verdict(h: &mut Harness, verdict: Verdict, cause: Cause) {
    h.input(Input::Amd(AmdReport::Verdict(Detection {
        verdict,
        cause,
        at_ms: 1800,
    })));
}

fn speaks(h: &Harness) -> bool {
    h.jobs.iter().any(|j| matches!(j, Job::Speak { .. }))
}

/// The event types of the notices written.
fn notices(h: &Harness) -> Vec<String> {
    h.writes
        .iter()
        .filter_map(|w| match &w.row {
            api::call_store::Row::Notice { kind, .. } => Some(format!(
                "{kind}_{}",
                w.verbs.first().map(|v| v.as_str()).unwrap_or("")
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn a_human_lets_the_flow_go_on_and_the_verdict_is_announced() {
    let mut h = flow(json!({"machine_handle": "hangup", "timeout": 4000}));
    assert_eq!(h.amd, vec![4000], "listening as long as the action says");
    assert!(!speaks(&h), "the flow waits for the verdict");
    verdict(&mut h, Verdict::Human, Cause::AfterGreetingSilence);
    assert!(speaks(&h), "a human: the flow goes on");
    assert!(h.hung_up().is_none());
    assert!(
        notices(&h).contains(&"call_amd_detected".to_owned()),
        "{:?}",
        notices(&h)
    );
}

#[test]
fn a_machine_with_hangup_ends_the_call_with_reason_amd() {
    let mut h = flow(json!({"machine_handle": "hangup"}));
    verdict(&mut h, Verdict::Machine, Cause::LongGreeting);
    assert!(h.hung_up().is_some(), "a BYE went out");
    assert!(!speaks(&h));
    h.leg_closes();
    assert_eq!(h.last_call_row().hangup_reason, "amd");
}

#[test]
fn delay_holds_a_machines_verdict_until_the_beep() {
    let mut h = flow(json!({"machine_handle": "delay"}));
    verdict(&mut h, Verdict::Machine, Cause::LongGreeting);
    assert!(
        !speaks(&h),
        "the greeting goes on: the flow waits for the beep"
    );
    h.input(Input::Amd(AmdReport::Beep(Beep {
        at_ms: 5200,
        detected_ms: 5280,
        freq_hz: 1000,
    })));
    assert!(speaks(&h), "the message is dropped after the beep");
    assert!(notices(&h).contains(&"call_amd_beep".to_owned()));
    // No beep at all: the flow goes on when detection gives up.
    let mut h = flow(json!({"machine_handle": "delay"}));
    verdict(&mut h, Verdict::Machine, Cause::LongGreeting);
    h.input(Input::Amd(AmdReport::NoBeep));
    assert!(speaks(&h));
}

#[test]
fn async_goes_on_at_once_and_hangs_up_a_machine_later() {
    let mut h = flow(json!({"machine_handle": "hangup", "async": true}));
    assert!(speaks(&h), "the flow does not wait");
    verdict(&mut h, Verdict::Machine, Cause::InitialSilence);
    assert!(h.hung_up().is_some(), "the machine is hung up");
}
