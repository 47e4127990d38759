//! The event script of a simulation: one JSON object per line (JSONL).
//!
//! | line | meaning |
//! |---|---|
//! | `{"at_ms":1200,"digits":"1#"}` | keys pressed |
//! | `{"at_ms":30000,"hangup":true}` | the caller hangs up |
//! | `{"at_ms":0,"variables":{"k":"v"}}` | variables set by a caller |
//! | `{"at_ms":500,"execute":true}` | resume a `block` |
//! | `{"at_ms":600,"stop":true}` | stop from outside |
//! | `{"at_ms":3000,"amd":"machine"}` | the AMD verdict: human, machine, notsure |
//! | `{"at_ms":9000,"connect":"answered"}` | a connect's outcome: answered, busy, noanswer, failed |
//! | `{"at_ms":0,"call_status":"progressing"}` | the call's status |
//! | `{"http":{"url":"https://...","status":200,"body":...}}` | the canned answer for a URL |
//! | `{"flows":{"<flow id>":{...}}}` | flows that fetch_flow and on_complete_flow_id can load |
//!
//! `at_ms` is virtual time since the call started (default 0).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::interpreter::{AmdVerdict, ConnectOutcome};

/// Something that happens at a moment of a simulation.
#[derive(Debug, Clone, PartialEq)]
pub enum Happening {
    /// Keys pressed, in order.
    Digits(String),
    /// The caller hangs up.
    Hangup,
    /// Variables given by a caller.
    Variables(Vec<(String, String)>),
    /// Resume a block.
    Execute,
    /// Stop from outside.
    Stop,
    /// The AMD verdict.
    Amd(AmdVerdict),
    /// A connect's outcome.
    Connect(ConnectOutcome),
    /// The call's status.
    CallStatus(crate::CallStatus),
}

/// A canned HTTP answer.
#[derive(Debug, Clone, PartialEq)]
pub struct CannedResponse {
    /// The status.
    pub status: u16,
    /// The body: a JSON string is sent as its text, anything else as JSON.
    pub body: String,
}

/// A parsed script.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Script {
    /// Timed happenings, in time order (ties keep the file's order).
    pub timeline: Vec<(u64, Happening)>,
    /// Canned answers by URL.
    pub http: BTreeMap<String, CannedResponse>,
    /// Flows by id.
    pub flows: BTreeMap<String, Value>,
}

fn enum_value<T: serde::de::DeserializeOwned>(
    v: &Value,
    what: &str,
    allowed: &str,
) -> Result<T, String> {
    serde_json::from_value(v.clone())
        .map_err(|_| format!("{what} must be one of {allowed}, not {v}"))
}

impl Script {
    /// Parses JSONL; an error names the line.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut script = Self::default();
        for (n, line) in text.lines().enumerate() {
            let line_no = n + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with("//") {
                continue;
            }
            script
                .add_line(line)
                .map_err(|e| format!("line {line_no}: {e}"))?;
        }
        script.timeline.sort_by_key(|(at, _)| *at);
        Ok(script)
    }

    fn add_line(&mut self, line: &str) -> Result<(), String> {
        let value: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
        let obj = value.as_object().ok_or("expected a JSON object")?;
        let at = match obj.get("at_ms") {
            None => 0,
            Some(v) => v
                .as_u64()
                .ok_or("at_ms must be a whole number of milliseconds")?,
        };
        let mut known = 0;
        for (key, v) in obj {
            let happening = match key.as_str() {
                "at_ms" => continue,
                "digits" => {
                    Happening::Digits(v.as_str().ok_or("digits must be a string")?.to_owned())
                }
                "hangup" if v == &Value::Bool(true) => Happening::Hangup,
                "execute" if v == &Value::Bool(true) => Happening::Execute,
                "stop" if v == &Value::Bool(true) => Happening::Stop,
                "hangup" | "execute" | "stop" => return Err(format!("{key} must be true")),
                "amd" => Happening::Amd(enum_value(v, "amd", "human, machine, notsure")?),
                "connect" => Happening::Connect(enum_value(
                    v,
                    "connect",
                    "answered, busy, noanswer, failed",
                )?),
                "call_status" => Happening::CallStatus(enum_value(
                    v,
                    "call_status",
                    "dialing, ringing, progressing, terminating, canceling, hangup",
                )?),
                "variables" => {
                    let vars = v.as_object().ok_or("variables must be an object")?;
                    Happening::Variables(
                        vars.iter()
                            .map(|(k, v)| {
                                (
                                    k.clone(),
                                    v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                                )
                            })
                            .collect(),
                    )
                }
                "http" => {
                    let url = v
                        .get("url")
                        .and_then(Value::as_str)
                        .ok_or("http needs a \"url\"")?;
                    let status = v
                        .get("status")
                        .map_or(Some(200), Value::as_u64)
                        .ok_or("http status must be a number")?;
                    let body = match v.get("body") {
                        None => String::new(),
                        Some(Value::String(s)) => s.clone(),
                        Some(other) => other.to_string(),
                    };
                    let status =
                        u16::try_from(status).map_err(|_| "http status must be below 65536")?;
                    self.http
                        .insert(url.to_owned(), CannedResponse { status, body });
                    known += 1;
                    continue;
                }
                "flows" => {
                    let flows = v
                        .as_object()
                        .ok_or("flows must be an object of id -> flow")?;
                    self.flows
                        .extend(flows.iter().map(|(k, v)| (k.clone(), v.clone())));
                    known += 1;
                    continue;
                }
                other => return Err(format!("unknown key {other:?}")),
            };
            self.timeline.push((at, happening));
            known += 1;
        }
        if known == 0 {
            return Err("nothing happens on this line".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_and_sorts_by_time() {
        let s = Script::parse(
            r#"{"at_ms":1200,"digits":"1#"}
               {"at_ms":0,"variables":{"k":"v","n":5}}
               {"http":{"url":"https://x","status":200,"body":[{"type":"answer"}]}}
               {"flows":{"f1":{"actions":[]}}}
               {"at_ms":3000,"amd":"machine"}
               {"at_ms":9000,"connect":"busy"}
               {"at_ms":500,"execute":true}
               {"at_ms":30000,"hangup":true}"#,
        )
        .expect("valid");
        let times: Vec<u64> = s.timeline.iter().map(|(t, _)| *t).collect();
        assert_eq!(times, [0, 500, 1200, 3000, 9000, 30000]);
        assert_eq!(
            s.timeline[0].1,
            Happening::Variables(vec![("k".into(), "v".into()), ("n".into(), "5".into())])
        );
        assert_eq!(s.http["https://x"].body, r#"[{"type":"answer"}]"#);
        assert!(s.flows.contains_key("f1"));
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            Script::parse("{\"at_ms\":1}\n{\"amd\":\"robot\"}")
                .err()
                .unwrap_or_default(),
            "line 1: nothing happens on this line"
        );
        let e = Script::parse("{\"digits\":\"1\"}\n{\"amd\":\"robot\"}")
            .err()
            .unwrap_or_default();
        assert!(e.starts_with("line 2: amd must be one of"), "{e}");
    }
}
