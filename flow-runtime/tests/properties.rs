//! Property: for any generated flow and any event script, the interpreter never
//! panics, stays within its limits, and ends once the caller hangs up.
#![allow(clippy::unwrap_used, missing_docs)]

use flow_runtime::interpreter::{
    Activeflow, AmdVerdict, ConnectOutcome, Event, MAX_PASSES, MAX_STEPS_PER_PASS, Outcome,
    ReferenceType, Settings, Status, Variables,
};
use flow_runtime::model::{ActionId, parse_actions};
use proptest::prelude::*;
use serde_json::{Value, json};

const IDS: [&str; 6] = ["a0", "a1", "a2", "a3", "a4", "missing"];

fn target() -> impl Strategy<Value = String> {
    prop::sample::select(IDS.to_vec()).prop_map(str::to_owned)
}

fn action() -> impl Strategy<Value = Value> {
    let kind = prop::sample::select(vec![
        "answer",
        "talk",
        "digits_receive",
        "branch",
        "goto",
        "condition_variable",
        "variable_set",
        "sleep",
        "hangup",
        "stop",
        "fetch",
        "fetch_flow",
        "block",
        "empty",
        "webhook_send",
        "amd",
        "connect",
        "play",
        "beep",
        "echo",
        "queue_join",
        "recording_start",
    ]);
    (kind, target(), target(), 0i64..5, 0i64..4000, prop::option::of(target()), any::<bool>()).prop_map(
        |(kind, t1, t2, n, ms, next, flag)| {
            let option = match kind {
                "talk" => json!({"text": "hi ${x}", "digits_handle": if flag { "next" } else { "" }, "async": !flag}),
                "digits_receive" => json!({"duration": ms, "length": n, "key": if flag { "#" } else { "" }}),
                "branch" => json!({"target_ids": {"1": t1}, "default_target_id": if flag { t2 } else { String::new() }}),
                "goto" => json!({"target_id": t1, "loop_count": n}),
                "condition_variable" => json!({"condition": "==", "variable": "${x}", "value_type": "string", "value_string": "1", "false_target_id": t1}),
                "variable_set" => json!({"key": "x", "value": "${voipbin.call.digits}"}),
                "sleep" | "echo" => json!({"duration": ms}),
                "fetch" => json!({"event_url": "https://x/a"}),
                "fetch_flow" => json!({"flow_id": "f"}),
                "webhook_send" => json!({"uri": "https://x/w", "sync": flag}),
                "amd" => json!({"machine_action": t1, "human_action": "continue", "async": !flag}),
                "connect" => json!({"destinations": [{"type": "tel", "target": "+1"}]}),
                "play" => json!({"stream_urls": ["a.wav"]}),
                "queue_join" => json!({"queue_id": "q"}),
                _ => json!({}),
            };
            let mut a = json!({"type": kind, "option": option});
            if let Some(n) = next.filter(|_| !flag) {
                a["next_id"] = json!(n);
            }
            a
        },
    )
}

fn flow() -> impl Strategy<Value = Vec<Value>> {
    prop::collection::vec(action(), 0..6).prop_map(|mut actions| {
        for (i, a) in actions.iter_mut().enumerate() {
            a["id"] = json!(format!("a{i}"));
        }
        actions
    })
}

#[derive(Debug, Clone)]
enum Step {
    CompleteCurrent(u8),
    Key(char),
    Time(u64),
    Execute,
    Http(u16, bool),
    FlowLoaded(bool),
    Forward(String),
    Interrupt,
    Stop,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u8..6).prop_map(Step::CompleteCurrent),
        prop::sample::select(vec!['1', '2', '#']).prop_map(Step::Key),
        (0u64..10_000).prop_map(Step::Time),
        Just(Step::Execute),
        (prop::sample::select(vec![0u16, 200, 500]), any::<bool>())
            .prop_map(|(s, b)| Step::Http(s, b)),
        any::<bool>().prop_map(Step::FlowLoaded),
        target().prop_map(Step::Forward),
        Just(Step::Interrupt),
        Just(Step::Stop),
    ]
}

fn drain(f: &mut Activeflow) {
    while f.poll().is_some() {}
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_flow_ends_within_its_limits(actions in flow(), steps in prop::collection::vec(step(), 0..40), api in any::<bool>()) {
        let reference = if api { ReferenceType::Api } else { ReferenceType::Call };
        let settings = Settings { id: "af".into(), reference_type: Some(reference), on_complete_flow_id: Some("n".into()), ..Default::default() };
        let mut f = Activeflow::new(settings, parse_actions(&Value::Array(actions)).unwrap(), Variables::default());
        let mut now = 1_000_000u64;
        f.start(now);
        drain(&mut f);
        for s in steps {
            let current = f.current_action().map(|a| a.id.clone()).unwrap_or_else(|| ActionId::new("none"));
            let event = match s {
                Step::CompleteCurrent(k) => Event::Completed { action_id: current, outcome: match k {
                    0 => Outcome::Done,
                    1 => Outcome::Failed("x".into()),
                    2 => Outcome::Amd(AmdVerdict::Machine),
                    3 => Outcome::Amd(AmdVerdict::Human),
                    4 => Outcome::Connect(ConnectOutcome::Busy),
                    _ => Outcome::Amd(AmdVerdict::Notsure),
                }},
                Step::Key(c) => Event::DigitReceived(c),
                Step::Time(ms) => {
                    now += ms;
                    f.handle_timeout(now);
                    drain(&mut f);
                    continue;
                }
                Step::Execute => Event::Execute,
                Step::Http(status, actions) => Event::HttpResponse {
                    action_id: current,
                    status,
                    body: if actions { r#"[{"id":"r","type":"goto","option":{"target_id":"a0","loop_count":3}}]"#.into() } else { "not json".into() },
                },
                Step::FlowLoaded(ok) => Event::FlowLoaded {
                    action_id: current,
                    actions: if ok { Ok(json!([{"type": "talk", "option": {"text": "x"}}])) } else { Err("no".into()) },
                },
                Step::Forward(t) => Event::Forward(ActionId::new(t)),
                Step::Interrupt => Event::Interrupt(parse_actions(&json!([{"type": "beep"}])).unwrap()),
                Step::Stop => Event::Stop,
            };
            f.handle(event, now);
            drain(&mut f);
            prop_assert!(f.executed_count() <= u64::from(MAX_STEPS_PER_PASS) * u64::from(MAX_PASSES));
        }
        f.handle(Event::Hangup, now);
        drain(&mut f);
        let ended = matches!(f.status(), Status::Ended { .. });
        prop_assert!(ended, "still {:?} after the hangup", f.status());
        // Persisting and restoring never loses the state.
        let restored: Activeflow = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
        prop_assert_eq!(restored, f);
    }
}
