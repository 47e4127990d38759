//! `voipbin flow validate`.

use std::process::Command;

fn validate(json: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flow.json");
    std::fs::write(&file, json).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_voipbin"))
        .args(["flow", "validate"])
        .arg(&file)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn validate_prints_one_line_per_finding() {
    let (code, out) =
        validate(r#"{"actions": [{"type": "answer"}, {"id": "x", "type": "dance"}]}"#);
    assert_eq!(code, 1);
    assert_eq!(out.trim(), "error 1 x type: unknown action type \"dance\"");

    let (code, out) = validate(r#"[{"id": "a", "type": "hangup"}, {"id": "b", "type": "answer"}]"#);
    assert_eq!(code, 0, "warnings only");
    assert_eq!(
        out.trim(),
        "warning 1 b id: unreachable: no action leads here"
    );
}

fn simulate(flow: &str, events: &str, extra: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flow.json");
    let script = dir.path().join("events.jsonl");
    std::fs::write(&file, flow).unwrap();
    std::fs::write(&script, events).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_voipbin"))
        .args(["flow", "simulate"])
        .arg(&file)
        .arg("--events")
        .arg(&script)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

const MENU: &str = r#"{"actions": [
    {"id": "ans", "type": "answer"},
    {"id": "menu", "type": "talk", "option": {"text": "Press 1 for sales"}},
    {"id": "keys", "type": "digits_receive", "option": {"duration": 5000, "length": 1}},
    {"id": "br", "type": "branch", "option": {"target_ids": {"1": "sales"}, "default_target_id": "bye"}},
    {"id": "sales", "type": "talk", "option": {"text": "Sales"}},
    {"id": "bye", "type": "hangup"}
]}"#;

#[test]
fn simulate_prints_json_lines_ending_with_the_reason() {
    let (code, out) = simulate(
        MENU,
        "{\"at_ms\":1500,\"digits\":\"1\"}\n",
        &["--json", "--media-ms", "500"],
    );
    assert_eq!(code, 0);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<(u64, &str)> = lines
        .iter()
        .filter(|l| l.get("action_id").is_some())
        .map(|l| {
            (
                l["t_ms"].as_u64().unwrap(),
                l["action_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            (0, "ans"),
            (0, "menu"),
            (500, "keys"),
            (1500, "br"),
            (1500, "sales"),
            (2000, "bye")
        ]
    );
    assert_eq!(
        lines.last().unwrap(),
        &serde_json::json!({"t_ms": 2000, "end": "hangup", "executed": 6})
    );
}

#[test]
fn simulate_prints_a_readable_timeline() {
    let (code, out) = simulate(MENU, "{\"at_ms\":1200,\"digits\":\"1\"}\n", &[]);
    assert_eq!(code, 0);
    assert!(out.contains("▶ digits_receive"), "{out}");
    assert!(out.contains("caller pressed 1"), "{out}");
    assert!(out.contains("↳ say \"Sales\""), "{out}");
    assert!(
        out.trim_end().ends_with("■ end: hangup after 6 actions"),
        "{out}"
    );
}

#[test]
fn simulate_refuses_a_bad_script_naming_the_line() {
    let (code, _) = simulate(
        MENU,
        "{\"at_ms\":0,\"digits\":\"1\"}\n{\"amd\":\"robot\"}\n",
        &[],
    );
    assert_eq!(code, 2);
}
