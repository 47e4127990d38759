//! The seed scenarios, simulated against traces written by hand from the seeds'
//! text (see `vectors/scenarios/README.md`).
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};

use flow_runtime::interpreter::ReferenceType;
use flow_runtime::simulate::{Entry, Options, Script, run};

/// One comparable line of a trace.
#[derive(Debug, Clone, PartialEq)]
enum Line {
    Action {
        t: u64,
        kind: String,
        id: Option<String>,
    },
    Command {
        t: u64,
        name: String,
    },
    Var {
        t: u64,
        key: String,
        value: String,
    },
    End {
        t: u64,
        reason: String,
        executed: u64,
    },
}

struct Expected {
    reference_type: ReferenceType,
    lines: Vec<Line>,
}

fn parse_expected(text: &str) -> Expected {
    let mut reference_type = ReferenceType::Call;
    let mut lines = Vec::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let t = || words[1].parse::<u64>().unwrap();
        match words[0] {
            "option" => {
                assert_eq!(words[1], "reference_type", "{line}");
                reference_type = serde_json::from_value(serde_json::json!(words[2])).unwrap();
            }
            "action" => lines.push(Line::Action {
                t: t(),
                kind: words[2].into(),
                id: words.get(3).map(|s| (*s).into()),
            }),
            "command" => lines.push(Line::Command {
                t: t(),
                name: words[2].into(),
            }),
            "var" => lines.push(Line::Var {
                t: t(),
                key: words[2].into(),
                value: words[3..].join(" "),
            }),
            "end" => lines.push(Line::End {
                t: t(),
                reason: words[2].into(),
                executed: words[3].parse().unwrap(),
            }),
            other => panic!("unknown expected line kind {other:?}: {line}"),
        }
    }
    Expected {
        reference_type,
        lines,
    }
}

/// The actual trace, reduced to what the expected file speaks of.
fn actual_lines(trace: &[Entry], expected: &[Line]) -> Vec<Line> {
    let want_commands = expected.iter().any(|l| matches!(l, Line::Command { .. }));
    let var_keys: Vec<&String> = expected
        .iter()
        .filter_map(|l| {
            if let Line::Var { key, .. } = l {
                Some(key)
            } else {
                None
            }
        })
        .collect();
    let mut out = Vec::new();
    for entry in trace {
        let json = entry.to_json();
        match entry {
            Entry::Action {
                t_ms,
                action_id,
                action_type,
                ..
            } => out.push(Line::Action {
                t: *t_ms,
                kind: (*action_type).into(),
                id: Some(action_id.clone()),
            }),
            Entry::Command { t_ms, .. } if want_commands => out.push(Line::Command {
                t: *t_ms,
                name: json["command"].as_str().unwrap().into(),
            }),
            Entry::Variable { t_ms, key, value } if var_keys.contains(&key) => {
                out.push(Line::Var {
                    t: *t_ms,
                    key: key.clone(),
                    value: value.clone(),
                })
            }
            Entry::End {
                t_ms,
                reason,
                executed,
            } => out.push(Line::End {
                t: *t_ms,
                reason: reason.name().into(),
                executed: *executed,
            }),
            _ => {}
        }
    }
    out
}

/// Expected action lines without an id match any id.
fn matches(expected: &Line, actual: &Line) -> bool {
    match (expected, actual) {
        (
            Line::Action { t, kind, id: None },
            Line::Action {
                t: t2, kind: k2, ..
            },
        ) => t == t2 && kind == k2,
        _ => expected == actual,
    }
}

fn run_case(dir: &Path, case: &str) {
    let flow: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("flow.json")).unwrap()).unwrap();
    let script =
        Script::parse(&std::fs::read_to_string(dir.join(format!("{case}.events.jsonl"))).unwrap())
            .unwrap();
    let expected =
        parse_expected(&std::fs::read_to_string(dir.join(format!("{case}.expected"))).unwrap());
    let options = Options {
        reference_type: expected.reference_type,
        ..Options::default()
    };
    let trace = run(&flow, &script, &options).unwrap();
    let actual = actual_lines(&trace, &expected.lines);
    let same = actual.len() == expected.lines.len()
        && expected
            .lines
            .iter()
            .zip(&actual)
            .all(|(e, a)| matches(e, a));
    assert!(
        same,
        "{}/{case}: the trace differs\nexpected:\n{:#?}\nactual:\n{:#?}\nfull trace:\n{}",
        dir.display(),
        expected.lines,
        actual,
        flow_runtime::simulate::render_text(&trace)
    );
}

fn scenario_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/scenarios")
        .join(name)
}

/// Runs every case of one scenario; returns how many ran.
fn run_scenario(name: &str) -> usize {
    let dir = scenario_dir(name);
    let mut cases: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".expected")
                .map(str::to_owned)
        })
        .collect();
    cases.sort();
    for case in &cases {
        run_case(&dir, case);
    }
    cases.len()
}

#[test]
fn voicemail() {
    assert_eq!(run_scenario("voicemail"), 2);
}

#[test]
fn simple_branch_with_goto_loop_count_2() {
    assert_eq!(run_scenario("simple_branch"), 3);
}

#[test]
fn message_send() {
    assert_eq!(run_scenario("message_send"), 1);
}

#[test]
fn campaign_with_amd() {
    assert_eq!(run_scenario("campaign_amd"), 5);
}

#[test]
fn call_screening() {
    assert_eq!(run_scenario("call_screening"), 2);
}
