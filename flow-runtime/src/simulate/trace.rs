//! A simulation's trace and its two renderings: a timeline for people, and JSON
//! lines for programs (`--json`).

use serde_json::{Value, json};

use crate::interpreter::{Command, EndReason};

/// One line of a simulation's trace.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// An action started.
    Action {
        /// Virtual time, ms.
        t_ms: u64,
        /// Its id.
        action_id: String,
        /// Its type.
        action_type: &'static str,
        /// Its stack.
        stack_id: String,
    },
    /// A command for the call.
    Command {
        /// Virtual time, ms.
        t_ms: u64,
        /// The command.
        command: Command,
    },
    /// A variable changed.
    Variable {
        /// Virtual time, ms.
        t_ms: u64,
        /// Its key.
        key: String,
        /// Its value.
        value: String,
    },
    /// Something from the script (a key, a hangup, ...).
    Input {
        /// Virtual time, ms.
        t_ms: u64,
        /// What.
        what: String,
        /// Its value.
        value: String,
    },
    /// An action was skipped.
    Skipped {
        /// Virtual time, ms.
        t_ms: u64,
        /// Its id.
        action_id: String,
        /// Why.
        reason: String,
    },
    /// A swallowed error.
    Warning {
        /// Virtual time, ms.
        t_ms: u64,
        /// What.
        message: String,
    },
    /// A remark of the simulator.
    Note {
        /// Virtual time, ms.
        t_ms: u64,
        /// What.
        message: String,
    },
    /// An activeflow ended (there may be a chained one after it).
    FlowEnded {
        /// Virtual time, ms.
        t_ms: u64,
        /// Why.
        reason: EndReason,
    },
    /// The chained flow starts.
    Chain {
        /// Virtual time, ms.
        t_ms: u64,
        /// Its id.
        flow_id: String,
    },
    /// The simulation ended: always the last entry.
    End {
        /// Virtual time, ms.
        t_ms: u64,
        /// Why the last activeflow ended.
        reason: EndReason,
        /// Actions executed in all.
        executed: u64,
    },
}

fn detail(reason: &EndReason) -> Option<&str> {
    match reason {
        EndReason::Limit(d) | EndReason::Error(d) => Some(d),
        _ => None,
    }
}

impl Entry {
    /// The entry as one JSON object. Only action lines carry `action_id`.
    pub fn to_json(&self) -> Value {
        match self {
            Entry::Action {
                t_ms,
                action_id,
                action_type,
                ..
            } => {
                json!({"t_ms": t_ms, "action_id": action_id, "type": action_type})
            }
            Entry::Command { t_ms, command } => {
                let mut v = serde_json::to_value(command).unwrap_or(Value::Null);
                if let Value::Object(map) = &mut v {
                    map.shift_insert(0, "t_ms".into(), json!(t_ms));
                }
                v
            }
            Entry::Variable { t_ms, key, value } => {
                json!({"t_ms": t_ms, "variable": key, "value": value})
            }
            Entry::Input { t_ms, what, value } => {
                json!({"t_ms": t_ms, "input": what, "value": value})
            }
            Entry::Skipped {
                t_ms,
                action_id,
                reason,
            } => json!({"t_ms": t_ms, "skipped": action_id, "reason": reason}),
            Entry::Warning { t_ms, message } => json!({"t_ms": t_ms, "warning": message}),
            Entry::Note { t_ms, message } => json!({"t_ms": t_ms, "note": message}),
            Entry::FlowEnded { t_ms, reason } => {
                let mut v = json!({"t_ms": t_ms, "flow_ended": reason.name()});
                if let Some(d) = detail(reason) {
                    v["detail"] = json!(d);
                }
                v
            }
            Entry::Chain { t_ms, flow_id } => json!({"t_ms": t_ms, "chain": flow_id}),
            Entry::End {
                t_ms,
                reason,
                executed,
            } => {
                let mut v = json!({"t_ms": t_ms, "end": reason.name(), "executed": executed});
                if let Some(d) = detail(reason) {
                    v["detail"] = json!(d);
                }
                v
            }
        }
    }

    fn t_ms(&self) -> u64 {
        match self {
            Entry::Action { t_ms, .. }
            | Entry::Command { t_ms, .. }
            | Entry::Variable { t_ms, .. }
            | Entry::Input { t_ms, .. }
            | Entry::Skipped { t_ms, .. }
            | Entry::Warning { t_ms, .. }
            | Entry::Note { t_ms, .. }
            | Entry::FlowEnded { t_ms, .. }
            | Entry::Chain { t_ms, .. }
            | Entry::End { t_ms, .. } => *t_ms,
        }
    }
}

/// A UUID shortened to its first 8 characters; other ids as they are.
fn short(id: &str) -> &str {
    if id.len() == 36 && id.as_bytes().get(8) == Some(&b'-') {
        &id[..8]
    } else {
        id
    }
}

fn quoted(text: &str) -> String {
    const MAX: usize = 60;
    let flat = text.replace('\n', " ");
    if flat.chars().count() > MAX {
        format!("\"{}…\"", flat.chars().take(MAX).collect::<String>())
    } else {
        format!("\"{flat}\"")
    }
}

fn seconds(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// What a command does, in words.
pub fn describe(command: &Command) -> String {
    match command {
        Command::Answer => "answer the call".into(),
        Command::Talk {
            text,
            language,
            gender,
            wait,
            ..
        } => {
            let mut how: Vec<&str> = [language.as_str(), gender.as_str()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect();
            if !wait {
                how.push("without waiting");
            }
            let how = if how.is_empty() {
                String::new()
            } else {
                format!(" ({})", how.join(", "))
            };
            format!("say {}{how}", quoted(text))
        }
        Command::Play { urls } => format!("play {}", urls.join(", ")),
        Command::Beep => "beep".into(),
        Command::StopMedia => "stop the media".into(),
        Command::DigitsReceive {
            duration_ms,
            length,
            terminators,
        } => {
            let mut parts = Vec::new();
            if *length > 0 {
                parts.push(format!(
                    "{length} key{}",
                    if *length == 1 { "" } else { "s" }
                ));
            }
            if !terminators.is_empty() {
                parts.push(format!("ends with {terminators}"));
            }
            if *duration_ms > 0 {
                parts.push(format!("up to {}", seconds(*duration_ms)));
            }
            format!("collect keys: {}", parts.join(", "))
        }
        Command::DigitsSend { digits, .. } => format!("send keys {digits}"),
        Command::Sleep { duration_ms } => format!("wait {}", seconds(*duration_ms)),
        Command::Echo { duration_ms, .. } => {
            format!("echo the caller for {}", seconds(*duration_ms))
        }
        Command::RecordingStart { format, .. } => format!("start recording ({format})"),
        Command::RecordingStop => "stop recording".into(),
        Command::RecordVoice { variable_name, .. } => {
            format!("record the caller into ${{{variable_name}}}")
        }
        Command::MohStart { music_class } => format!("music on hold ({music_class})"),
        Command::Mute => "mute".into(),
        Command::Hangup {
            reason,
            reference_id,
        } if reason.is_empty() => format!("hang up like call {reference_id}"),
        Command::Hangup { reason, .. } => format!("hang up ({reason})"),
        Command::Amd {
            timeout_ms, wait, ..
        } => {
            format!(
                "detect an answering machine ({}{})",
                seconds(*timeout_ms),
                if *wait { "" } else { ", in the background" }
            )
        }
        Command::Connect { destinations, .. } => {
            format!(
                "connect to {}",
                destinations
                    .iter()
                    .map(|d| d.target.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        Command::Call { destinations, .. } => {
            format!(
                "call {}",
                destinations
                    .iter()
                    .map(|d| d.target.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        Command::Join {
            service, target_id, ..
        } => format!("join {service} {target_id}"),
        Command::Start { service, .. } => format!("start {service}"),
        Command::StopService { service } => format!("stop {service}"),
        Command::Http(req) => format!(
            "{} {} ({}{})",
            req.method,
            req.url,
            req.purpose,
            if req.wait { ", waits" } else { "" }
        ),
        Command::Send { channel, .. } => format!("send {channel}"),
        Command::LoadFlow { flow_id } => format!("load flow {flow_id}"),
    }
}

/// The trace as a timeline for people.
pub fn render_text(trace: &[Entry]) -> String {
    let mut out = String::new();
    let mut last_time = None;
    for entry in trace {
        let t = entry.t_ms();
        let stamp = if last_time == Some(t) {
            " ".repeat(8)
        } else {
            format!("{:>7.3}s", t as f64 / 1000.0)
        };
        last_time = Some(t);
        let line = match entry {
            Entry::Action {
                action_id,
                action_type,
                ..
            } => format!("{stamp}  ▶ {action_type:<20} {}", short(action_id)),
            Entry::Command { command, .. } => format!("{stamp}      ↳ {}", describe(command)),
            Entry::Variable { key, value, .. } => {
                format!("{stamp}      ${{{key}}} = {}", quoted(value))
            }
            Entry::Input { what, value, .. } => {
                let said = match what.as_str() {
                    "key" => format!("caller pressed {value}"),
                    "hangup" => "caller hung up".to_owned(),
                    "variables" => format!("variables given: {value}"),
                    "execute" => "resumed (execute)".to_owned(),
                    "stop" => "stopped from outside".to_owned(),
                    "amd" => format!("answering machine detection says: {value}"),
                    "connect" => format!("the connected party: {value}"),
                    "call_status" => format!("call status: {value}"),
                    other => format!("{other}: {value}"),
                };
                format!("{stamp}  ● {said}")
            }
            Entry::Skipped {
                action_id, reason, ..
            } => format!("{stamp}      ⤼ skipped {}: {reason}", short(action_id)),
            Entry::Warning { message, .. } => format!("{stamp}      ⚠ {message}"),
            Entry::Note { message, .. } => format!("{stamp}      · {message}"),
            Entry::FlowEnded { reason, .. } => match detail(reason) {
                Some(d) => format!("{stamp}  ■ activeflow ended: {} ({d})", reason.name()),
                None => format!("{stamp}  ■ activeflow ended: {}", reason.name()),
            },
            Entry::Chain { flow_id, .. } => format!("{stamp}  ↪ next flow {flow_id}"),
            Entry::End {
                reason, executed, ..
            } => {
                let plural = if *executed == 1 { "" } else { "s" };
                format!(
                    "{stamp}  ■ end: {} after {executed} action{plural}",
                    reason.name()
                )
            }
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The trace as JSON lines; the last is `{"t_ms","end","executed"}`.
pub fn render_json(trace: &[Entry]) -> String {
    let mut out = String::new();
    for entry in trace {
        out.push_str(&entry.to_json().to_string());
        out.push('\n');
    }
    out
}
