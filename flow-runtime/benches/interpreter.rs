//! Interpreter speed (issue: flow-runtime).
//! - A 20-action control-only flow (goto, branch, condition_variable, variable_set)
//!   looping: goal at least 1,000,000 actions per second on one core.
//! - Parse plus validate a 50-action flow: goal under 50 us.
//!
//! `cargo bench -p flow-runtime --bench interpreter`
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use flow_runtime::interpreter::{
    Activeflow, MAX_STEPS_PER_PASS, ReferenceType, Settings, Variables,
};
use flow_runtime::{parse_actions, parse_flow};
use serde_json::{Value, json};

/// 20 control actions in a loop that a goto keeps going until the step limit.
fn control_flow() -> Value {
    let mut actions =
        vec![json!({"id": "top", "type": "variable_set", "option": {"key": "n", "value": "1"}})];
    for i in 0..4 {
        actions.push(
            json!({"type": "variable_set", "option": {"key": format!("k{i}"), "value": "v"}}),
        );
        actions.push(json!({"type": "condition_variable", "option": {"condition": "==", "variable": "${n}", "value_type": "string", "value_string": "1", "false_target_id": "top"}}));
        actions.push(
            json!({"type": "branch", "option": {"variable": "n", "target_ids": {"9": "top"}}}),
        );
        actions.push(json!({"type": "empty"}));
    }
    actions.push(json!({"type": "condition_variable", "option": {"condition": ">=", "variable": "5", "value_type": "number", "value_number": 3, "false_target_id": "top"}}));
    actions.push(json!({"type": "variable_set", "option": {"key": "n", "value": "1"}}));
    actions.push(json!({"type": "goto", "option": {"target_id": "top", "loop_count": 1000000}}));
    assert_eq!(actions.len(), 20);
    Value::Array(actions)
}

fn fifty_actions() -> Value {
    let mut actions = vec![json!({"type": "answer"})];
    for i in 0..12 {
        actions.push(json!({"id": format!("menu{i}"), "type": "talk", "option": {"text": "Press a key, ${name}.", "language": "en-US"}}));
        actions.push(json!({"type": "digits_receive", "option": {"duration": 5000, "length": 1}}));
        actions.push(json!({"type": "branch", "option": {"target_ids": {"1": format!("menu{}", (i + 1) % 12)}, "default_target_id": "end"}}));
        actions.push(json!({"type": "webhook_send", "option": {"uri": "https://example.com/hook", "data": "{\"d\":\"${voipbin.call.digits}\"}"}}));
    }
    actions.push(json!({"id": "end", "type": "hangup"}));
    assert_eq!(actions.len(), 50);
    Value::Array(actions)
}

fn bench(c: &mut Criterion) {
    let settings = Settings {
        id: "af".into(),
        reference_type: Some(ReferenceType::Call),
        ..Default::default()
    };
    let ready = Activeflow::new(
        settings,
        parse_actions(&control_flow()).unwrap(),
        Variables::default(),
    );
    let mut group = c.benchmark_group("interpreter");
    group.throughput(Throughput::Elements(u64::from(MAX_STEPS_PER_PASS)));
    group.bench_function("control_actions", |b| {
        b.iter_batched(
            || ready.clone(),
            |mut flow| {
                flow.start(1_000_000);
                while let Some(out) = flow.poll() {
                    black_box(out);
                }
                assert_eq!(flow.executed_count(), u64::from(MAX_STEPS_PER_PASS));
                flow
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();

    let fifty = fifty_actions();
    c.bench_function("parse_and_validate_50_actions", |b| {
        b.iter(|| parse_flow(black_box(&fifty)).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
