//! `flow simulate`: a dry run of a flow against a scripted call on a virtual clock.
//!
//! The simulated call plays the host's part: it answers at once, takes `media_ms`
//! (default 1 s) for each talk and play, 250 ms for a beep, sends keys at their
//! length, answers HTTP requests from the script's canned responses, loads flows from
//! the script, and holds the call in a joined service (queue, conference, AI) for
//! `media_ms`. It keeps `voipbin.call.status`: `ringing` at the start, `progressing`
//! once answered or once a connected party answers. `record_voice` stores a
//! recording id (`simulated-recording-N`) in its variable. AMD verdicts and connect
//! outcomes come from the script. When nothing
//! more can happen, the caller hangs up (or, without a call, the flow is stopped), so
//! every simulation ends.
//!
//! At one instant, the simulated call's completions come first, then the flow's
//! timer, then the script's events, each in the order they were made.

use std::collections::VecDeque;

use serde_json::Value;

use crate::CallStatus;
use crate::interpreter::{
    Activeflow, AmdVerdict, Command, ConnectOutcome, EndReason, Event, FlowEvent, Millis, Outcome,
    Output, ReferenceType, Settings, Status, Variables, Wait,
};
use crate::model::{ActionId, parse_actions};

pub mod script;
pub mod trace;

pub use script::{Happening, Script};
pub use trace::{Entry, render_json, render_text};

/// 2026-01-05T09:00:00Z, a Monday morning: the wall clock at the call's start
/// unless given (it matters to `condition_datetime`).
pub const DEFAULT_START: Millis = 1_767_603_600_000;
/// A simulation stops after this much virtual time.
pub const MAX_VIRTUAL_MS: u64 = 24 * 3600 * 1000;

/// How to simulate.
#[derive(Debug, Clone)]
pub struct Options {
    /// Virtual length of each talk and play.
    pub media_ms: u64,
    /// What the flow runs for.
    pub reference_type: ReferenceType,
    /// The wall clock at time 0.
    pub start: Millis,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            media_ms: 1000,
            reference_type: ReferenceType::Call,
            start: DEFAULT_START,
        }
    }
}

/// Splits a flow file's JSON into (flow id, on_complete_flow_id, actions): a flow
/// object with `actions`, or a bare array of actions.
fn flow_parts(flow: &Value) -> Result<(String, Option<String>, Value), String> {
    match flow {
        Value::Array(_) => Ok(("simulated-flow".to_owned(), None, flow.clone())),
        Value::Object(obj) => {
            let actions = obj
                .get("actions")
                .cloned()
                .ok_or("a flow object needs an \"actions\" array")?;
            let id = obj
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("simulated-flow")
                .to_owned();
            let next = obj
                .get("on_complete_flow_id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty() && *s != crate::model::action_id::NIL)
                .map(str::to_owned);
            Ok((id, next, actions))
        }
        _ => Err("expected a flow object or an array of actions".to_owned()),
    }
}

/// The simulated host: the call, the script, the clock.
struct Sim<'a> {
    script: &'a Script,
    opts: &'a Options,
    now: u64,
    trace: Vec<Entry>,
    host: Vec<(u64, u64, Event)>,
    seq: u64,
    amd: VecDeque<AmdVerdict>,
    connect: VecDeque<ConnectOutcome>,
    awaiting_connect: Option<ActionId>,
    executed: u64,
    next_script: usize,
    recordings: u32,
}

/// Runs `flow` against `script`; the trace, or why the flow cannot run.
pub fn run(flow: &Value, script: &Script, opts: &Options) -> Result<Vec<Entry>, String> {
    let (flow_id, on_complete, actions) = flow_parts(flow)?;
    let actions = parse_actions(&actions).map_err(|f| {
        f.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    let settings = Settings {
        id: "activeflow-1".to_owned(),
        flow_id,
        reference_type: Some(opts.reference_type),
        reference_id: format!("simulated-{}", opts.reference_type.as_str()),
        on_complete_flow_id: on_complete,
        ..Settings::default()
    };
    let mut sim = Sim {
        script,
        opts,
        now: 0,
        trace: Vec::new(),
        host: Vec::new(),
        seq: 0,
        amd: VecDeque::new(),
        connect: VecDeque::new(),
        awaiting_connect: None,
        executed: 0,
        next_script: 0,
        recordings: 0,
    };
    let mut flow = Activeflow::new(settings, actions, Variables::default());
    if opts.reference_type.has_media() {
        flow.handle(Event::CallStatusChanged(CallStatus::Ringing), opts.start);
        sim.drain(&mut flow);
    }
    // Variables and the call status given at 0 are there before the first action.
    while let Some((0, h @ (Happening::Variables(_) | Happening::CallStatus(_)))) =
        script.timeline.get(sim.next_script)
    {
        sim.next_script += 1;
        sim.apply(&mut flow, h.clone());
    }
    flow.start(opts.start);
    sim.drain(&mut flow);
    let mut chained = 1u32;
    for _ in 0..1_000_000 {
        if let Status::Ended { reason } = flow.status().clone() {
            match sim.chain(&flow, &mut chained) {
                Some(next) => {
                    flow = next;
                    flow.start(opts.start + sim.now);
                    sim.drain(&mut flow);
                    continue;
                }
                None => {
                    sim.executed += flow.executed_count();
                    sim.trace.push(Entry::End {
                        t_ms: sim.now,
                        reason,
                        executed: sim.executed,
                    });
                    return Ok(sim.trace);
                }
            }
        }
        sim.deliver_verdicts(&mut flow);
        if !matches!(flow.status(), Status::Running) {
            continue;
        }
        let Some(at) = sim.next_instant(&flow) else {
            let (note, event) = if opts.reference_type.has_media() {
                (
                    "nothing more can happen: the caller hangs up",
                    Event::Hangup,
                )
            } else {
                ("nothing more can happen: the flow is stopped", Event::Stop)
            };
            sim.trace.push(Entry::Note {
                t_ms: sim.now,
                message: note.to_owned(),
            });
            flow.handle(event, opts.start + sim.now);
            sim.drain(&mut flow);
            continue;
        };
        if at > MAX_VIRTUAL_MS {
            sim.trace.push(Entry::Note {
                t_ms: sim.now,
                message: "24 h of virtual time passed: stopping".into(),
            });
            flow.handle(Event::Stop, opts.start + sim.now);
            sim.drain(&mut flow);
            continue;
        }
        sim.now = at;
        sim.step(&mut flow);
    }
    Err("the simulation did not settle".to_owned())
}

impl Sim<'_> {
    /// The earliest moment something happens: a host completion, the flow's timer or
    /// a script event.
    fn next_instant(&self, flow: &Activeflow) -> Option<u64> {
        let host = self.host.iter().map(|(t, _, _)| *t).min();
        let timer = flow
            .poll_timeout()
            .map(|abs| abs.saturating_sub(self.opts.start).max(self.now));
        let script = self
            .script
            .timeline
            .get(self.next_script)
            .map(|(t, _)| (*t).max(self.now));
        [host, timer, script].into_iter().flatten().min()
    }

    /// Everything due at `self.now`, in order.
    fn step(&mut self, flow: &mut Activeflow) {
        let abs = self.opts.start + self.now;
        let mut due: Vec<(u64, Event)> = Vec::new();
        self.host.retain(|(t, seq, e)| {
            if *t <= self.now {
                due.push((*seq, e.clone()));
                false
            } else {
                true
            }
        });
        due.sort_by_key(|(seq, _)| *seq);
        for (_, event) in due {
            flow.handle(event, abs);
            self.drain(flow);
        }
        flow.handle_timeout(abs);
        self.drain(flow);
        while let Some((t, h)) = self.script.timeline.get(self.next_script) {
            if *t > self.now {
                break;
            }
            self.next_script += 1;
            self.apply(flow, h.clone());
        }
    }

    /// Applies one script happening.
    fn apply(&mut self, flow: &mut Activeflow, happening: Happening) {
        let abs = self.opts.start + self.now;
        let now = self.now;
        let input = move |what: &str, value: String| Entry::Input {
            t_ms: now,
            what: what.to_owned(),
            value,
        };
        match happening {
            Happening::Digits(keys) => {
                for key in keys.chars() {
                    self.trace.push(input("key", key.to_string()));
                    flow.handle(Event::DigitReceived(key), abs);
                    self.drain(flow);
                }
            }
            Happening::Hangup => {
                self.trace.push(input("hangup", "caller".into()));
                flow.handle(Event::Hangup, abs);
            }
            Happening::Variables(vars) => {
                self.trace.push(input(
                    "variables",
                    vars.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                ));
                flow.handle(Event::ExternalVariables(vars), abs);
            }
            Happening::Execute => {
                self.trace.push(input("execute", String::new()));
                flow.handle(Event::Execute, abs);
            }
            Happening::Stop => {
                self.trace.push(input("stop", String::new()));
                flow.handle(Event::Stop, abs);
            }
            Happening::Amd(v) => {
                self.trace
                    .push(input("amd", format!("{v:?}").to_lowercase()));
                self.amd.push_back(v);
            }
            Happening::Connect(o) => {
                self.trace
                    .push(input("connect", format!("{o:?}").to_lowercase()));
                self.connect.push_back(o);
            }
            Happening::CallStatus(s) => {
                self.trace.push(input("call_status", s.to_string()));
                flow.handle(Event::CallStatusChanged(s), abs);
            }
        }
        self.drain(flow);
    }

    /// Hands scripted verdicts to an AMD or connect that waits for one.
    fn deliver_verdicts(&mut self, flow: &mut Activeflow) {
        let abs = self.opts.start + self.now;
        if let Wait::Amd { action_id, .. } = flow.wait().clone()
            && let Some(v) = self.amd.pop_front()
        {
            flow.handle(
                Event::Completed {
                    action_id,
                    outcome: Outcome::Amd(v),
                },
                abs,
            );
            self.drain(flow);
        }
        if let Some(id) = self.awaiting_connect.clone()
            && let Some(o) = self.connect.pop_front()
        {
            self.awaiting_connect = None;
            if o == ConnectOutcome::Answered
                && flow.variables().get(crate::interpreter::CALL_STATUS) != "progressing"
            {
                flow.handle(Event::CallStatusChanged(CallStatus::Progressing), abs);
            }
            flow.handle(
                Event::Completed {
                    action_id: id,
                    outcome: Outcome::Connect(o),
                },
                abs,
            );
            self.drain(flow);
        }
    }

    /// Starts the chained activeflow when the script has its flow.
    fn chain(&mut self, flow: &Activeflow, chained: &mut u32) -> Option<Activeflow> {
        *chained += 1;
        let settings = flow.chain_settings(format!("activeflow-{chained}"))?;
        let Some(next) = self.script.flows.get(&settings.flow_id) else {
            self.trace.push(Entry::Note {
                t_ms: self.now,
                message: format!(
                    "on_complete_flow_id {} is not in the script's flows: no chain",
                    settings.flow_id
                ),
            });
            return None;
        };
        let (_, on_complete, actions) = match flow_parts(next) {
            Ok(parts) => parts,
            Err(e) => {
                self.trace.push(Entry::Note {
                    t_ms: self.now,
                    message: format!("flow {}: {e}", settings.flow_id),
                });
                return None;
            }
        };
        let actions = match parse_actions(&actions) {
            Ok(a) => a,
            Err(f) => {
                let why = f
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                self.trace.push(Entry::Note {
                    t_ms: self.now,
                    message: format!("flow {}: {why}", settings.flow_id),
                });
                return None;
            }
        };
        self.executed += flow.executed_count();
        self.trace.push(Entry::Chain {
            t_ms: self.now,
            flow_id: settings.flow_id.clone(),
        });
        // The next flow inherits every variable; its own built-ins are set anew.
        Some(Activeflow::new(
            Settings {
                on_complete_flow_id: on_complete,
                ..settings
            },
            actions,
            flow.variables().clone(),
        ))
    }

    /// Records the flow's outputs and plays the host's part for each command.
    fn drain(&mut self, flow: &mut Activeflow) {
        while let Some(output) = flow.poll() {
            match output {
                Output::Command { action_id, command } => {
                    self.host_part(&action_id, &command);
                    self.trace.push(Entry::Command {
                        t_ms: self.now,
                        command,
                    });
                }
                Output::Event(event) => self.trace.push(Entry::from_event(self.now, event)),
            }
        }
    }

    fn complete_after(&mut self, ms: u64, event: Event) {
        self.seq += 1;
        self.host.push((self.now + ms, self.seq, event));
    }

    fn done_after(&mut self, id: &ActionId, ms: u64) {
        self.complete_after(
            ms,
            Event::Completed {
                action_id: id.clone(),
                outcome: Outcome::Done,
            },
        );
    }

    fn host_part(&mut self, id: &ActionId, command: &Command) {
        let media = self.opts.media_ms;
        match command {
            Command::Answer => {
                self.complete_after(0, Event::CallStatusChanged(CallStatus::Progressing));
                self.done_after(id, 0);
            }
            Command::Talk { wait: true, .. } | Command::Play { .. } => self.done_after(id, media),
            Command::Beep => self.done_after(id, 250),
            Command::DigitsSend {
                digits,
                duration_ms,
                interval_ms,
            } => {
                let n = u64::try_from(digits.chars().count()).unwrap_or(0);
                self.done_after(id, n * (duration_ms + interval_ms));
            }
            Command::RecordVoice {
                duration_ms,
                variable_name,
                ..
            } => {
                let ms = if *duration_ms > 0 {
                    *duration_ms
                } else {
                    media
                };
                self.recordings += 1;
                if !variable_name.is_empty() {
                    let recording = format!("simulated-recording-{}", self.recordings);
                    self.complete_after(
                        ms,
                        Event::Variables(vec![(variable_name.clone(), recording)]),
                    );
                }
                self.done_after(id, ms);
            }
            Command::Join { service, .. } => {
                self.trace.push(Entry::Note {
                    t_ms: self.now,
                    message: format!("the simulated {service} holds the call for {media} ms"),
                });
                self.done_after(id, media);
            }
            Command::Connect { .. } => self.awaiting_connect = Some(id.clone()),
            Command::Start {
                service: "external_media",
                ..
            } => self.done_after(id, 0),
            Command::Http(req) if req.wait => {
                let (status, body) = match self.script.http.get(&req.url) {
                    Some(canned) => (canned.status, canned.body.clone()),
                    None => {
                        self.trace.push(Entry::Note {
                            t_ms: self.now,
                            message: format!("no canned answer for {}: the request fails", req.url),
                        });
                        (0, String::new())
                    }
                };
                self.complete_after(
                    0,
                    Event::HttpResponse {
                        action_id: id.clone(),
                        status,
                        body,
                    },
                );
            }
            Command::LoadFlow { flow_id } => {
                let actions = match self.script.flows.get(flow_id) {
                    Some(f) => flow_parts(f).map(|(_, _, actions)| actions),
                    None => Err(format!("flow {flow_id} is not in the script's flows")),
                };
                self.complete_after(
                    0,
                    Event::FlowLoaded {
                        action_id: id.clone(),
                        actions,
                    },
                );
            }
            _ => {}
        }
    }
}

/// The reason name of the last entry (for tests and the CLI's exit status).
pub fn end_reason(trace: &[Entry]) -> Option<&EndReason> {
    match trace.last() {
        Some(Entry::End { reason, .. }) => Some(reason),
        _ => None,
    }
}

impl Entry {
    fn from_event(t_ms: u64, event: FlowEvent) -> Self {
        match event {
            FlowEvent::ActionStarted {
                action_id,
                action_type,
                stack_id,
            } => Entry::Action {
                t_ms,
                action_id: action_id.to_string(),
                action_type,
                stack_id: stack_id.to_string(),
            },
            FlowEvent::VariableSet { key, value } => Entry::Variable { t_ms, key, value },
            FlowEvent::Skipped { action_id, reason } => Entry::Skipped {
                t_ms,
                action_id: action_id.to_string(),
                reason,
            },
            FlowEvent::Warning { message } => Entry::Warning { t_ms, message },
            FlowEvent::Ended { reason } => Entry::FlowEnded { t_ms, reason },
            FlowEvent::ChainRequested {
                flow_id,
                complete_count,
            } => Entry::Note {
                t_ms,
                message: format!(
                    "on_complete_flow_id: chain to {flow_id} (chain position {complete_count})"
                ),
            },
        }
    }
}
