//! Interpreter behaviour, one test per rule, on a virtual clock.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};

use super::*;
use crate::model::parse_actions;

const T0: Millis = 1_768_469_400_000; // 2026-01-15T09:30:00Z

/// An activeflow with a virtual clock and everything it output.
struct H {
    flow: Activeflow,
    now: Millis,
    out: Vec<Output>,
}

impl H {
    fn new(actions: Value, reference: ReferenceType) -> Self {
        let settings = Settings {
            id: "af-1".into(),
            flow_id: "flow-1".into(),
            reference_type: Some(reference),
            reference_id: "call-1".into(),
            on_complete_flow_id: Some("next-flow".into()),
            ..Default::default()
        };
        let flow = Activeflow::new(
            settings,
            parse_actions(&actions).unwrap(),
            Variables::default(),
        );
        Self {
            flow,
            now: T0,
            out: Vec::new(),
        }
    }

    fn call(actions: Value) -> Self {
        let mut h = Self::new(actions, ReferenceType::Call);
        h.flow.start(h.now);
        h.drain();
        h
    }

    fn drain(&mut self) {
        while let Some(o) = self.flow.poll() {
            self.out.push(o);
        }
    }

    fn handle(&mut self, e: Event) {
        self.flow.handle(e, self.now);
        self.drain();
    }

    /// Completes whatever the flow waits for (as the host would).
    fn complete(&mut self, outcome: Outcome) {
        let id = self.flow.current_action().unwrap().id.clone();
        self.handle(Event::Completed {
            action_id: id,
            outcome,
        });
    }

    fn keys(&mut self, keys: &str) {
        for k in keys.chars() {
            self.handle(Event::DigitReceived(k));
        }
    }

    fn at(&mut self, ms: u64) {
        self.now = T0 + ms;
        self.flow.handle_timeout(self.now);
        self.drain();
    }

    fn started(&self) -> Vec<String> {
        self.out
            .iter()
            .filter_map(|o| match o {
                Output::Event(FlowEvent::ActionStarted { action_id, .. }) => {
                    Some(action_id.to_string())
                }
                _ => None,
            })
            .collect()
    }

    fn commands(&self) -> Vec<Command> {
        self.out
            .iter()
            .filter_map(|o| match o {
                Output::Command { command, .. } => Some(command.clone()),
                _ => None,
            })
            .collect()
    }

    fn ended(&self) -> Option<&EndReason> {
        match self.flow.status() {
            Status::Ended { reason } => Some(reason),
            _ => None,
        }
    }

    fn var(&self, k: &str) -> &str {
        self.flow.variables().get(k)
    }
}

fn a(id: &str, kind: &str, option: Value) -> Value {
    json!({"id": id, "type": kind, "option": option})
}

#[test]
fn answer_waits_for_its_completion() {
    let mut h = H::call(json!([
        a("ans", "answer", json!({})),
        a("h", "hangup", json!({}))
    ]));
    assert_eq!(h.started(), ["ans"]);
    assert_eq!(h.commands(), [Command::Answer]);
    h.complete(Outcome::Done);
    assert_eq!(h.started(), ["ans", "h"]);
    assert_eq!(h.ended(), Some(&EndReason::Hangup));
}

#[test]
fn stale_completion_is_ignored() {
    let mut h = H::call(json!([
        a("x", "answer", json!({})),
        a("y", "beep", json!({}))
    ]));
    h.handle(Event::Completed {
        action_id: ActionId::new("y"),
        outcome: Outcome::Done,
    });
    assert_eq!(
        h.started(),
        ["x"],
        "a completion for another action does nothing"
    );
}

#[test]
fn talk_async_goes_on_at_once() {
    let h = H::call(json!([
        a("t", "talk", json!({"text": "hi", "async": true})),
        a("b", "beep", json!({}))
    ]));
    assert_eq!(h.started(), ["t", "b"]);
}

#[test]
fn talk_with_digits_handle_next_moves_on_at_a_key() {
    let mut h = H::call(json!([
        a(
            "t",
            "talk",
            json!({"text": "menu", "digits_handle": "next"})
        ),
        a("b", "beep", json!({}))
    ]));
    h.keys("5");
    assert_eq!(h.started(), ["t", "b"]);
    assert!(h.commands().contains(&Command::StopMedia));
    assert_eq!(h.var(DIGITS), "5");
}

#[test]
fn type_ahead_outside_digits_receive_keeps_the_last_key() {
    let mut h = H::call(json!([a("t", "talk", json!({"text": "menu"}))]));
    h.keys("12");
    assert_eq!(h.var(DIGITS), "2");
    assert_eq!(h.started(), ["t"], "a plain talk is not skipped");
}

#[test]
fn digits_receive_ends_at_length() {
    let mut h = H::call(json!([
        a(
            "d",
            "digits_receive",
            json!({"duration": 5000, "length": 3})
        ),
        a("b", "beep", json!({}))
    ]));
    h.keys("12");
    assert_eq!(h.started(), ["d"]);
    h.keys("3");
    assert_eq!(h.started(), ["d", "b"]);
    assert_eq!(h.var(DIGITS), "123");
}

#[test]
fn digits_receive_ends_at_a_terminator_which_is_kept() {
    let mut h = H::call(json!([
        a(
            "d",
            "digits_receive",
            json!({"duration": 5000, "key": "#*"})
        ),
        a("b", "beep", json!({}))
    ]));
    h.keys("42#");
    assert_eq!(h.started(), ["d", "b"]);
    assert_eq!(h.var(DIGITS), "42#");
}

#[test]
fn digits_receive_times_out() {
    let mut h = H::call(json!([
        a(
            "d",
            "digits_receive",
            json!({"duration": 3000, "length": 2})
        ),
        a("b", "beep", json!({}))
    ]));
    assert_eq!(h.flow.poll_timeout(), Some(T0 + 3000));
    h.at(2999);
    assert_eq!(h.started(), ["d"]);
    h.at(3000);
    assert_eq!(h.started(), ["d", "b"]);
}

#[test]
fn digits_receive_is_done_at_once_with_type_ahead() {
    let mut h = H::call(json!([
        a("t", "talk", json!({"text": "x"})),
        a(
            "d",
            "digits_receive",
            json!({"duration": 3000, "length": 1})
        ),
        a("b", "beep", json!({}))
    ]));
    h.keys("7");
    h.complete(Outcome::Done);
    assert_eq!(h.started(), ["t", "d", "b"]);
}

#[test]
fn branch_goes_to_the_matching_target_and_resets_the_variable() {
    let flow = json!([
        a(
            "d",
            "digits_receive",
            json!({"duration": 5000, "length": 1})
        ),
        a(
            "br",
            "branch",
            json!({"target_ids": {"1": "one", "2": "two"}, "default_target_id": "other"})
        ),
        a("one", "hangup", json!({})),
        a("two", "hangup", json!({})),
        a("other", "hangup", json!({})),
    ]);
    let mut h = H::call(flow.clone());
    h.keys("2");
    assert_eq!(h.started(), ["d", "br", "two"]);
    assert_eq!(h.var(DIGITS), "");
    let mut h = H::call(flow);
    h.keys("9");
    assert_eq!(h.started(), ["d", "br", "other"]);
}

#[test]
fn branch_without_match_or_default_goes_on() {
    let h = H::call(json!([
        a("br", "branch", json!({"target_ids": {"1": "x"}})),
        a("b", "beep", json!({})),
        a("x", "hangup", json!({}))
    ]));
    assert_eq!(h.started(), ["br", "b"]);
}

#[test]
fn goto_jumps_loop_count_times_then_falls_through() {
    let mut h = H::call(json!([
        a("t", "talk", json!({"text": "again"})),
        a("g", "goto", json!({"target_id": "t", "loop_count": 2})),
        a("h", "hangup", json!({})),
    ]));
    for _ in 0..3 {
        h.complete(Outcome::Done);
    }
    assert_eq!(h.started(), ["t", "g", "t", "g", "t", "g", "h"]);
}

#[test]
fn goto_without_loop_count_never_jumps() {
    let h = H::call(json!([
        a("g", "goto", json!({"target_id": "g2"})),
        a("g2", "hangup", json!({}))
    ]));
    assert_eq!(h.started(), ["g", "g2"]);
}

#[test]
fn unknown_target_ends_with_an_error() {
    let h = H::call(json!([a(
        "g",
        "goto",
        json!({"target_id": "nowhere", "loop_count": 1})
    )]));
    assert!(matches!(h.ended(), Some(EndReason::Error(e)) if e.contains("nowhere")));
    assert!(
        !h.out
            .iter()
            .any(|o| matches!(o, Output::Event(FlowEvent::ChainRequested { .. }))),
        "no chain after a failure"
    );
}

#[test]
fn condition_variable_jumps_to_its_false_target() {
    let flow = |v: &str| {
        json!([
            a("set", "variable_set", json!({"key": "tier", "value": v})),
            a(
                "c",
                "condition_variable",
                json!({"condition": "==", "variable": "${tier}", "value_type": "string", "value_string": "gold", "false_target_id": "std"})
            ),
            a("vip", "hangup", json!({})),
            a("std", "hangup", json!({})),
        ])
    };
    assert_eq!(H::call(flow("gold")).started(), ["set", "c", "vip"]);
    assert_eq!(H::call(flow("tin")).started(), ["set", "c", "std"]);
}

#[test]
fn variables_are_substituted_in_options() {
    let h = H::call(json!([
        a("s", "variable_set", json!({"key": "name", "value": "Ann"})),
        a(
            "t",
            "talk",
            json!({"text": "Hi ${name} and {{name}}, id ${voipbin.activeflow.id}${nothing}"})
        ),
    ]));
    let Command::Talk { text, .. } = &h.commands()[0] else {
        panic!("talk")
    };
    assert_eq!(text, "Hi Ann and Ann, id af-1");
    assert_eq!(
        h.flow.executed_actions().last().unwrap().to_json()["option"]["text"],
        json!(text)
    );
}

#[test]
fn stop_ends_and_chains() {
    let h = H::call(json!([
        a("s", "stop", json!({})),
        a("never", "beep", json!({}))
    ]));
    assert_eq!(h.ended(), Some(&EndReason::Stop));
    assert!(h.out.contains(&Output::Event(FlowEvent::ChainRequested {
        flow_id: "next-flow".into(),
        complete_count: 1
    })));
}

#[test]
fn running_off_the_end_finishes() {
    let h = H::call(json!([a(
        "v",
        "variable_set",
        json!({"key": "k", "value": "v"})
    )]));
    assert_eq!(h.ended(), Some(&EndReason::Finished));
}

#[test]
fn a_hangup_from_the_caller_ends_and_chains() {
    let mut h = H::call(json!([a("t", "talk", json!({"text": "long"}))]));
    h.handle(Event::Hangup);
    assert_eq!(h.ended(), Some(&EndReason::Hangup));
    let next = h.flow.chain_settings("af-2".into()).unwrap();
    assert_eq!(
        (next.complete_count, next.reference_activeflow_id.as_str()),
        (1, "af-1")
    );
}

#[test]
fn the_chain_stops_at_five_flows() {
    let settings = Settings {
        complete_count: 4,
        on_complete_flow_id: Some("x".into()),
        ..Default::default()
    };
    let mut f = Activeflow::new(
        settings,
        parse_actions(&json!([])).unwrap(),
        Variables::default(),
    );
    f.start(T0);
    assert_eq!(
        f.status(),
        &Status::Ended {
            reason: EndReason::Finished
        }
    );
    assert!(f.chain_settings("n".into()).is_none());
    assert_eq!(f.variables().get("voipbin.activeflow.complete_count"), "4");
}

#[test]
fn sleep_waits_its_duration() {
    let mut h = H::call(json!([
        a("s", "sleep", json!({"duration": 1500})),
        a("b", "beep", json!({}))
    ]));
    h.at(1499);
    assert_eq!(h.started(), ["s"]);
    h.at(1500);
    assert_eq!(h.started(), ["s", "b"]);
}

#[test]
fn echo_stops_its_media_when_its_time_is_up() {
    let mut h = H::call(json!([
        a("e", "echo", json!({"duration": 1000})),
        a("b", "beep", json!({}))
    ]));
    h.at(1000);
    assert_eq!(
        h.commands()[..2],
        [
            Command::Echo {
                duration_ms: 1000,
                stream: false
            },
            Command::StopMedia
        ]
    );
    assert_eq!(h.started(), ["e", "b"]);
}

#[test]
fn media_actions_are_skipped_without_a_call() {
    let mut h = H::new(
        json!([
            a("t", "talk", json!({"text": "x"})),
            a("v", "variable_set", json!({"key": "k", "value": "1"}))
        ]),
        ReferenceType::Api,
    );
    h.flow.start(T0);
    h.drain();
    assert_eq!(h.started(), ["t", "v"]);
    assert!(h.out.iter().any(|o| matches!(o, Output::Event(FlowEvent::Skipped { action_id, .. }) if action_id.as_str() == "t")));
    assert!(h.commands().is_empty());
}

#[test]
fn block_waits_for_execute_on_an_api_flow_and_on_a_call() {
    let flow = json!([
        a("bl", "block", json!({})),
        a("v", "variable_set", json!({"key": "k", "value": "1"}))
    ]);
    let mut h = H::new(flow.clone(), ReferenceType::Api);
    h.flow.start(T0);
    h.drain();
    assert_eq!(h.started(), ["bl"]);
    h.handle(Event::Execute);
    assert_eq!(h.started(), ["bl", "v"]);
    // Seed 002: a call's flow waits too, until execute (or a stop, or a hangup).
    let mut call = H::call(flow);
    assert_eq!(call.started(), ["bl"]);
    call.handle(Event::Execute);
    assert_eq!(call.started(), ["bl", "v"]);
}

#[test]
fn fetch_pushes_the_returned_actions_then_returns() {
    let mut h = H::call(json!([
        a("f", "fetch", json!({"event_url": "https://x/actions"})),
        a("after", "hangup", json!({}))
    ]));
    let Command::Http(req) = &h.commands()[0] else {
        panic!("http")
    };
    assert_eq!(
        (req.url.as_str(), req.method.as_str(), req.wait),
        ("https://x/actions", "POST", true)
    );
    assert_eq!(
        serde_json::from_str::<Value>(&req.body).unwrap(),
        json!({"activeflow_id": "af-1", "reference_id": "call-1"})
    );
    let body =
        json!([{"id": "r1", "type": "variable_set", "option": {"key": "fetched", "value": "yes"}}])
            .to_string();
    h.handle(Event::HttpResponse {
        action_id: ActionId::new("f"),
        status: 200,
        body,
    });
    assert_eq!(h.started(), ["f", "r1", "after"]);
    assert_eq!(h.var("fetched"), "yes");
}

#[test]
fn fetch_failure_ends_the_flow() {
    let mut h = H::call(json!([a("f", "fetch", json!({"event_url": "https://x"}))]));
    h.handle(Event::HttpResponse {
        action_id: ActionId::new("f"),
        status: 500,
        body: String::new(),
    });
    assert!(matches!(h.ended(), Some(EndReason::Error(_))));
}

#[test]
fn fetch_flow_runs_the_loaded_flow_then_returns() {
    let mut h = H::call(json!([
        a("ff", "fetch_flow", json!({"flow_id": "other"})),
        a("after", "hangup", json!({}))
    ]));
    assert_eq!(
        h.commands(),
        [Command::LoadFlow {
            flow_id: "other".into()
        }]
    );
    let actions = json!([{"id": "o1", "type": "goto", "option": {"target_id": "after", "loop_count": 1}}, {"id": "o2", "type": "beep"}]);
    h.handle(Event::FlowLoaded {
        action_id: ActionId::new("ff"),
        actions: Ok(actions),
    });
    assert_eq!(
        h.started(),
        ["ff", "o1", "after"],
        "a jump into the caller's actions releases the nested stack"
    );
    assert_eq!(h.flow.current_stack_id(), stack::MAIN_STACK);
}

#[test]
fn webhook_send_waits_only_when_sync() {
    let h = H::call(json!([
        a(
            "w",
            "webhook_send",
            json!({"uri": "https://x", "data": "{\"n\":\"${voipbin.call.digits}\"}"})
        ),
        a("b", "beep", json!({}))
    ]));
    assert_eq!(h.started(), ["w", "b"]);
    let mut h = H::call(json!([
        a(
            "w",
            "webhook_send",
            json!({"uri": "https://x", "sync": true})
        ),
        a("b", "beep", json!({}))
    ]));
    assert_eq!(h.started(), ["w"]);
    h.handle(Event::HttpResponse {
        action_id: ActionId::new("w"),
        status: 0,
        body: String::new(),
    });
    assert_eq!(
        h.started(),
        ["w", "b"],
        "a failed webhook does not stop the flow"
    );
}

#[test]
fn amd_machine_handle_hangup_hangs_up_with_reason_amd() {
    let mut h = H::call(json!([
        a("amd", "amd", json!({"machine_handle": "hangup"})),
        a("t", "talk", json!({"text": "hi"}))
    ]));
    h.complete(Outcome::Amd(AmdVerdict::Machine));
    assert_eq!(h.ended(), Some(&EndReason::Hangup));
    assert!(h.commands().contains(&Command::Hangup {
        reason: "amd".into(),
        reference_id: String::new()
    }));
}

#[test]
fn amd_actions_jump_by_verdict_and_time_out_as_notsure() {
    let flow = json!([
        a(
            "amd",
            "amd",
            json!({"machine_action": "vm", "human_action": "continue", "timeout": 3000})
        ),
        a("human", "hangup", json!({})),
        a("vm", "hangup", json!({})),
    ]);
    let mut h = H::call(flow.clone());
    h.complete(Outcome::Amd(AmdVerdict::Machine));
    assert_eq!(h.started(), ["amd", "vm"]);
    let mut h = H::call(flow.clone());
    h.complete(Outcome::Amd(AmdVerdict::Human));
    assert_eq!(h.started(), ["amd", "human"]);
    let mut h = H::call(flow);
    h.at(4000);
    assert_eq!(h.started(), ["amd", "human"], "no verdict: go on");
}

#[test]
fn connect_waits_for_its_outcome() {
    let mut h = H::call(json!([
        a(
            "c",
            "connect",
            json!({"destinations": [{"type": "tel", "target": "+1"}]})
        ),
        a("b", "beep", json!({}))
    ]));
    assert!(
        matches!(&h.commands()[0], Command::Connect { destinations, .. } if destinations[0].target == "+1")
    );
    h.complete(Outcome::Connect(ConnectOutcome::Busy));
    assert_eq!(h.started(), ["c", "b"]);
}

#[test]
fn an_interrupt_runs_its_actions_then_goes_on_after_the_interrupted_action() {
    let mut h = H::call(json!([
        a("t", "talk", json!({"text": "long"})),
        a("after", "hangup", json!({}))
    ]));
    let extra = parse_actions(&json!([{"id": "i1", "type": "talk", "option": {"text": "urgent"}}]))
        .unwrap();
    h.handle(Event::Interrupt(extra));
    assert_eq!(h.commands()[1], Command::StopMedia);
    h.complete(Outcome::Done);
    assert_eq!(h.started(), ["t", "i1", "after"]);
}

#[test]
fn forward_jumps_from_outside() {
    let mut h = H::call(json!([
        a("t", "talk", json!({"text": "x"})),
        a("b", "beep", json!({})),
        a("z", "hangup", json!({}))
    ]));
    h.handle(Event::Forward(ActionId::new("z")));
    assert_eq!(h.started(), ["t", "z"]);
}

#[test]
fn a_tight_loop_hits_the_step_limit() {
    let h = H::call(json!([
        a("v", "variable_set", json!({"key": "k", "value": "x"})),
        a("g", "goto", json!({"target_id": "v", "loop_count": 100000})),
    ]));
    assert!(matches!(h.ended(), Some(EndReason::Limit(_))));
    assert_eq!(h.flow.executed_count(), u64::from(MAX_STEPS_PER_PASS));
}

#[test]
fn a_long_conversation_hits_the_pass_limit() {
    let mut h = H::call(json!([
        a("t", "talk", json!({"text": "again"})),
        a("g", "goto", json!({"target_id": "t", "loop_count": 100000})),
    ]));
    for _ in 0..MAX_PASSES {
        h.complete(Outcome::Done);
    }
    assert!(
        matches!(h.ended(), Some(EndReason::Limit(_))),
        "{:?}",
        h.flow.status()
    );
}

#[test]
fn external_variables_cannot_touch_platform_ones() {
    let mut h = H::call(json!([a("t", "talk", json!({"text": "x"}))]));
    h.handle(Event::ExternalVariables(vec![
        ("voipbin.call.id".into(), "forged".into()),
        ("ok".into(), "1".into()),
    ]));
    assert_eq!(h.var("voipbin.call.id"), "");
    assert_eq!(h.var("ok"), "1");
}

#[test]
fn state_round_trips_through_serde_mid_flow() {
    let mut h = H::call(json!([
        a("t", "talk", json!({"text": "x"})),
        a("g", "goto", json!({"target_id": "t", "loop_count": 1})),
        a("h", "hangup", json!({})),
    ]));
    h.complete(Outcome::Done);
    let saved = serde_json::to_string(&h.flow).unwrap();
    let mut restored: Activeflow = serde_json::from_str(&saved).unwrap();
    assert_eq!(restored, h.flow);
    restored.handle(
        Event::Completed {
            action_id: ActionId::new("t"),
            outcome: Outcome::Done,
        },
        T0,
    );
    assert_eq!(
        restored.status(),
        &Status::Ended {
            reason: EndReason::Hangup
        },
        "the goto counter was saved too"
    );
}
