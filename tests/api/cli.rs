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
