//! Tests of parsing and validation.

use serde_json::{Value, json};

use super::*;

fn errors_of(v: Value) -> Vec<Finding> {
    parse_flow(&v).err().unwrap_or_default()
}

#[test]
fn missing_ids_are_assigned_and_kept_stable() {
    let parsed = parse_flow(&json!([{"type": "answer"}, {"id": "human_path", "type": "hangup"}]))
        .expect("valid flow");
    assert_eq!(parsed.actions.len(), 2);
    assert!(uuid::Uuid::parse_str(parsed.actions[0].id.as_str()).is_ok());
    assert_eq!(parsed.actions[1].id.as_str(), "human_path");
}

#[test]
fn canonical_form_is_stable_and_keeps_unknown_keys() {
    let input = json!([
        {"id": "a", "next_id": "00000000-0000-0000-0000-000000000000", "type": "talk",
         "option": {"text": "hi", "gender": "female", "language": "en-US"}},
        {"id": "b", "type": "play", "option": {"stream_url": ["http://x/y.wav"]}},
        {"id": "c", "type": "record_start", "option": {"format": "wav", "direction": "both"}},
        {"id": "d", "type": "goto", "option": {"target_id": "a", "loop_count": 2}},
        {"id": "e", "type": "call", "option": {"destinations": [{"type": "tel", "target": "+1"}],
         "actions": [{"type": "talk", "option": {"text": "x"}}]}}
    ]);
    let once = actions_to_json(&parse_flow(&input).expect("valid").actions);
    let twice = actions_to_json(&parse_flow(&once).expect("valid").actions);
    assert_eq!(once, twice);
    assert_eq!(once[0]["option"]["gender"], "female");
    assert!(once[0].get("next_id").is_none(), "nil next_id means none");
    assert_eq!(once[1]["option"]["stream_urls"], json!(["http://x/y.wav"]));
    assert_eq!(once[2]["type"], "recording_start");
    assert_eq!(once[2]["option"]["direction"], "both");
}

#[test]
fn unknown_type_names_index_id_and_field() {
    let errs = errors_of(json!([{"type": "answer"}, {"id": "x", "type": "dance"}]));
    assert_eq!(errs.len(), 1);
    assert_eq!(
        (
            errs[0].index,
            errs[0].action_id.as_deref(),
            errs[0].field.as_str()
        ),
        (1, Some("x"), "type")
    );
}

#[test]
fn missing_required_option_is_an_error() {
    let errs = errors_of(json!([{"id": "g", "type": "goto", "option": {"loop_count": 1}}]));
    assert_eq!(errs[0].field, "option.target_id");
    assert_eq!(errs[0].message, "missing required option");
}

#[test]
fn wrong_option_type_is_an_error() {
    let errs = errors_of(json!([{"type": "digits_receive", "option": {"length": "three"}}]));
    assert_eq!(errs[0].field, "option.length");
    assert_eq!(errs[0].message, "expected an integer");
}

#[test]
fn duplicate_ids_are_errors() {
    let errs = errors_of(json!([{"id": "a", "type": "answer"}, {"id": "a", "type": "hangup"}]));
    assert_eq!(errs[0].field, "id");
}

#[test]
fn bad_anonymous_value_is_an_error() {
    let errs = errors_of(json!([{"type": "connect", "option": {
        "destinations": [{"type": "tel", "target": "+1"}], "anonymous": "maybe"}}]));
    assert_eq!(errs[0].field, "option.anonymous");
}

#[test]
fn unknown_target_is_a_warning_not_an_error() {
    let parsed = parse_flow(&json!([
        {"id": "a", "type": "goto", "option": {"target_id": "elsewhere", "loop_count": 1}}
    ]))
    .expect("targets outside the flow are allowed");
    assert_eq!(parsed.warnings.len(), 1);
    assert_eq!(parsed.warnings[0].field, "option.target_id");
}

#[test]
fn unreachable_action_is_a_warning() {
    let parsed =
        parse_flow(&json!([{"type": "hangup"}, {"id": "z", "type": "answer"}])).expect("valid");
    assert_eq!(parsed.warnings.len(), 1);
    assert_eq!(parsed.warnings[0].action_id.as_deref(), Some("z"));
}

#[test]
fn endless_loop_is_a_warning() {
    let parsed = parse_flow(&json!([
        {"id": "a", "type": "talk", "option": {"text": "x"}, "next_id": "b"},
        {"id": "b", "type": "answer", "next_id": "a"}
    ]))
    .expect("valid");
    assert!(
        parsed
            .warnings
            .iter()
            .any(|w| w.message.starts_with("endless loop")),
        "{:?}",
        parsed.warnings
    );
}

#[test]
fn bounded_goto_loop_is_not_endless() {
    let parsed = parse_flow(&json!([
        {"id": "a", "type": "talk", "option": {"text": "x"}},
        {"id": "g", "type": "goto", "option": {"target_id": "a", "loop_count": 2}},
        {"type": "hangup"}
    ]))
    .expect("valid");
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
}

#[test]
fn finding_prints_as_validate_line() {
    let f = Finding::error(3, Some("abc"), "option.text", "missing required option");
    assert_eq!(
        f.to_string(),
        "error 3 abc option.text: missing required option"
    );
}
