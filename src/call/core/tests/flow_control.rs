//! What the API does to a call's flow: `block` holds the call until
//! `POST /activeflows/{id}/execute` (seed 002), a stop ends it, and a hangup ends a
//! blocked call as any other.

use serde_json::json;
use sip_stack::ua::EndCause;

use super::super::super::Control;
use super::super::{Input, Job};
use super::Harness;

fn blocked() -> Harness {
    Harness::new(json!([
        {"type": "answer"},
        {"type": "block"},
        {"type": "talk", "option": {"text": "Released.", "language": "en-US"}}
    ]))
}

#[test]
fn block_holds_the_call_until_execute() {
    let mut h = blocked();
    h.advance(std::time::Duration::from_secs(3600));
    assert!(
        h.jobs.is_empty(),
        "nothing runs while blocked: {:?}",
        h.jobs
    );
    assert!(h.hung_up().is_none(), "the call is held, not ended");
    h.input(Input::Control(Control::Flow(api::FlowControl::Execute)));
    assert!(matches!(&h.jobs[..], [Job::Speak { .. }]), "{:?}", h.jobs);
}

#[test]
fn a_stop_ends_a_blocked_call() {
    let mut h = blocked();
    h.input(Input::Control(Control::Flow(api::FlowControl::Stop)));
    assert!(h.hung_up().is_some(), "the flow is over: the call ends");
    assert!(h.jobs.is_empty());
}

#[test]
fn the_caller_hanging_up_ends_a_blocked_call() {
    let mut h = blocked();
    h.caller_ends(EndCause::Bye);
    h.leg_closes();
    assert!(h.core.is_finished());
    assert_eq!(h.last_call_row().hangup_by, "remote");
}

#[test]
fn the_activeflow_row_lists_each_executed_action_once_in_order() {
    let mut h = Harness::new(json!([
        {"type": "answer"},
        {"type": "variable_set", "option": {"key": "a", "value": "1"}},
        {"type": "variable_set", "option": {"key": "b", "value": "2"}},
        {"type": "block"},
        {"type": "variable_set", "option": {"key": "c", "value": "3"}},
        {"type": "hangup"}
    ]));
    h.input(Input::Control(Control::Flow(api::FlowControl::Execute)));
    h.leg_closes();
    let rows: Vec<Vec<String>> = h
        .writes
        .iter()
        .filter_map(|w| match &w.row {
            api::call_store::Row::Activeflow { flow, .. } => Some(
                serde_json::from_str::<serde_json::Value>(flow.executed_actions.as_str())
                    .expect("JSON")
                    .as_array()
                    .expect("a list")
                    .iter()
                    .map(|a| {
                        let key = a["option"]["key"].as_str().unwrap_or_default();
                        format!("{}{key}", a["type"].as_str().unwrap_or_default())
                    })
                    .collect(),
            ),
            _ => None,
        })
        .collect();
    let last = rows.last().expect("activeflow rows were written");
    assert_eq!(
        last,
        &[
            "answer",
            "variable_seta",
            "variable_setb",
            "block",
            "variable_setc",
            "hangup"
        ],
        "{rows:?}"
    );
    // Each write's list is the one before it and the actions run since.
    for pair in rows.windows(2) {
        assert!(pair[1].starts_with(&pair[0]), "{rows:?}");
    }
}
