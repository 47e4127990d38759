//! Good and bad flow files: the good ones load and round-trip canonically, the bad
//! ones fail with the expected first error.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::PathBuf;

use flow_runtime::{Severity, actions_to_json, parse_flow};
use serde_json::Value;

fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name)
}

fn json_files(name: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir(name))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn actions_of(path: &PathBuf) -> Value {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v.get("actions").cloned().unwrap_or(v)
}

#[test]
fn bad_flows_fail_with_the_expected_first_error() {
    let files = json_files("bad");
    assert!(files.len() >= 10);
    for path in files {
        let expected = std::fs::read_to_string(path.with_extension("expected")).unwrap();
        let findings = parse_flow(&actions_of(&path))
            .err()
            .unwrap_or_else(|| panic!("{} loaded", path.display()));
        let first = findings
            .iter()
            .find(|f| f.severity == Severity::Error)
            .unwrap();
        assert_eq!(first.to_string(), expected.trim(), "{}", path.display());
    }
}

#[test]
fn good_flows_and_seed_flows_load_and_round_trip_canonically() {
    let mut files = json_files("good");
    for scenario in std::fs::read_dir(dir("scenarios")).unwrap() {
        let path = scenario.unwrap().path().join("flow.json");
        if path.exists() {
            files.push(path);
        }
    }
    assert!(files.len() >= 10);
    for path in files {
        let parsed =
            parse_flow(&actions_of(&path)).unwrap_or_else(|f| panic!("{}: {f:?}", path.display()));
        let once = actions_to_json(&parsed.actions);
        let twice = actions_to_json(&parse_flow(&once).unwrap().actions);
        assert_eq!(
            once,
            twice,
            "{}: the canonical form is not stable",
            path.display()
        );
    }
}

#[test]
fn unknown_option_keys_and_aliases_survive() {
    let parsed = parse_flow(&actions_of(
        &dir("good").join("aliases_and_unknown_keys.json"),
    ))
    .unwrap();
    let out = actions_to_json(&parsed.actions);
    assert_eq!(out[0]["type"], "recording_start");
    assert_eq!(out[0]["option"]["direction"], "both");
    assert_eq!(
        out[1]["option"]["stream_urls"][0],
        "https://example.com/a.wav"
    );
    assert_eq!(out[2]["option"]["custom_key"]["kept"], true);
    assert_eq!(out[3]["type"], "recording_stop");
}
