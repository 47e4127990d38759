//! The interpreter: one [`Activeflow`] runs one flow for one reference (a call, a
//! message, an API request, a campaign), sans-IO.
//!
//! # Run loop
//! The host creates an activeflow, calls [`Activeflow::start`], then drains
//! [`Activeflow::poll`] for [`Output`]s: commands to carry out (answer, talk, play,
//! HTTP requests, ...) and events (an action started, a variable changed, the flow
//! ended). It feeds back what happens with [`Activeflow::handle`] (a command
//! completed, a key was pressed, the call hung up, ...), and calls
//! [`Activeflow::handle_timeout`] when [`Activeflow::poll_timeout`] is due. Every
//! call takes the current time in Unix milliseconds; the interpreter never reads a
//! clock, spawns, sleeps or touches IO.
//!
//! # Semantics
//! The original's (reference section 2), with the seeds winning where they differ:
//! - the cursor follows `next_id`, else the list order; nested stacks return to the
//!   action after the one that pushed them;
//! - control actions (goto, branch, conditions, variable_set, ...) run inside one
//!   pass; the first action that must wait (answer, talk, digits_receive, ...)
//!   ends the pass until its completion is handled;
//! - limits (seed 002 "Safety Limits"): at most [`MAX_STEPS_PER_PASS`] actions in one
//!   pass and at most [`MAX_PASSES`] passes in an activeflow's life. The seed calls
//!   a pass an "execution cycle"; the original counts every action against 100
//!   instead, which would make the 1000-step limit unreachable, so we follow the
//!   seed;
//! - `on_complete_flow_id` chains after a finish, a stop or a hangup, never after a
//!   failure or a limit, at most [`MAX_CHAIN`] flows in a row;
//! - media actions on a reference without media (message, API, campaign) are
//!   skipped with a [`FlowEvent::Skipped`]. `block` waits for
//!   `POST /activeflows/{id}/execute` (or a stop, or a hangup) on every reference,
//!   a call included: seed 002 does not limit it to flows without a call (the
//!   original skips it on a call; the seed wins).
//!
//! # State
//! An [`Activeflow`] is plain data (serde), so the host can persist it between
//! events and resume it after a restart.

use std::collections::VecDeque;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::{Action, ActionId};

mod control;
pub mod datetime;
mod execute;
pub mod io;
pub mod stack;
pub mod variables;

pub use control::{CALL_STATUS, DIGITS};
pub use io::{
    AmdVerdict, Command, ConnectOutcome, EndReason, Event, FlowEvent, HttpRequest, Millis, Outcome,
    Output, ReferenceType,
};
use stack::Stacks;
pub use variables::Variables;

/// At most this many actions run in one pass.
pub const MAX_STEPS_PER_PASS: u32 = 1000;
/// At most this many passes in an activeflow's life.
pub const MAX_PASSES: u32 = 100;
/// At most this many flows in an `on_complete_flow_id` chain.
pub const MAX_CHAIN: u32 = 5;
/// How many executed actions are kept for `executed_actions` (the latest ones).
pub const MAX_EXECUTED_KEPT: usize = 1000;

/// What an activeflow is and what it refers to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// The activeflow's id.
    pub id: String,
    /// The flow it runs.
    pub flow_id: String,
    /// What it runs for.
    pub reference_type: Option<ReferenceType>,
    /// The call, message, ... id.
    pub reference_id: String,
    /// The activeflow this one was chained from.
    pub reference_activeflow_id: String,
    /// The flow to chain to when this one ends.
    pub on_complete_flow_id: Option<String>,
    /// How many flows came before this one in its chain.
    pub complete_count: u32,
}

/// Whether an activeflow runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// Created, not started.
    Created,
    /// Running (possibly waiting for an event).
    Running,
    /// Ended.
    Ended {
        /// Why.
        reason: EndReason,
    },
}

/// What the current action waits for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "wait", rename_all = "snake_case")]
pub enum Wait {
    /// Nothing.
    Idle,
    /// The completion of a command.
    Command {
        /// The action.
        action_id: ActionId,
        /// A key press ends it early (talk with `digits_handle: next`).
        skip_on_digit: bool,
    },
    /// Keys for `digits_receive`.
    Digits {
        /// The action.
        action_id: ActionId,
        /// Keys wanted (0: any number).
        length: u32,
        /// Keys that end the collection.
        terminators: String,
        /// When it times out.
        deadline: Option<Millis>,
    },
    /// Time passing (sleep, echo).
    Timer {
        /// The action.
        action_id: ActionId,
        /// When it ends.
        deadline: Millis,
        /// Stop the media when it ends (echo).
        stop_media: bool,
    },
    /// An HTTP response (fetch, synchronous webhook_send).
    Http {
        /// The action.
        action_id: ActionId,
        /// fetch: the body holds actions to push.
        fetch: bool,
    },
    /// A stored flow for fetch_flow.
    Flow {
        /// The action.
        action_id: ActionId,
    },
    /// `POST /activeflows/{id}/execute`.
    Block {
        /// The action.
        action_id: ActionId,
    },
    /// An AMD verdict.
    Amd {
        /// The action.
        action_id: ActionId,
        /// When to give up waiting (as "notsure").
        deadline: Option<Millis>,
        /// hangup or continue on a machine (seed 003).
        machine_handle: String,
        /// Where to jump on a machine (seed 001).
        machine_action: String,
        /// Where to jump on a human (seed 001).
        human_action: String,
    },
}

impl Wait {
    fn action_id(&self) -> Option<&ActionId> {
        match self {
            Self::Idle => None,
            Self::Command { action_id, .. }
            | Self::Digits { action_id, .. }
            | Self::Timer { action_id, .. }
            | Self::Http { action_id, .. }
            | Self::Flow { action_id }
            | Self::Block { action_id }
            | Self::Amd { action_id, .. } => Some(action_id),
        }
    }
}

/// What to do after an action.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// Go on to the next action.
    Next,
    /// Jump to an action.
    Jump(ActionId),
    /// Stop the pass and wait.
    Wait(Wait),
    /// End the activeflow.
    End(EndReason),
}

/// One running flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activeflow {
    settings: Settings,
    status: Status,
    stacks: Stacks,
    cursor: Option<usize>,
    wait: Wait,
    variables: Variables,
    passes: u32,
    executed_count: u64,
    executed: VecDeque<Arc<Action>>,
    #[serde(skip)]
    outputs: VecDeque<Output>,
}

impl Activeflow {
    /// A new activeflow running `actions`, with `variables` (inherited and given by
    /// the caller) and the built-in `voipbin.activeflow.*` set last.
    pub fn new(settings: Settings, actions: Vec<Action>, variables: Variables) -> Self {
        let mut flow = Self {
            status: Status::Created,
            stacks: Stacks::new(actions),
            cursor: None,
            wait: Wait::Idle,
            variables,
            passes: 0,
            executed_count: 0,
            executed: VecDeque::new(),
            outputs: VecDeque::new(),
            settings,
        };
        let s = &flow.settings;
        let builtins = [
            ("voipbin.activeflow.id", s.id.clone()),
            ("voipbin.activeflow.flow_id", s.flow_id.clone()),
            (
                "voipbin.activeflow.reference_type",
                s.reference_type
                    .map_or("", ReferenceType::as_str)
                    .to_owned(),
            ),
            ("voipbin.activeflow.reference_id", s.reference_id.clone()),
            (
                "voipbin.activeflow.reference_activeflow_id",
                s.reference_activeflow_id.clone(),
            ),
            (
                "voipbin.activeflow.complete_count",
                s.complete_count.to_string(),
            ),
        ];
        for (key, value) in builtins {
            // Set quietly: these are the activeflow's identity, not a change. Short
            // ids cannot exceed the caps; a host that passed 100 variables loses
            // nothing it gave, only the built-in that did not fit.
            flow.variables.set(key, &value).ok();
        }
        flow
    }

    /// The settings of the activeflow that `on_complete_flow_id` starts after this
    /// one: same reference, this one as its reference activeflow, the count plus one.
    /// `None` when this one has not ended in a way that chains, or the chain is full.
    pub fn chain_settings(&self, next_id: String) -> Option<Settings> {
        let Status::Ended { reason } = &self.status else {
            return None;
        };
        let flow_id = self.settings.on_complete_flow_id.clone()?;
        (reason.chains() && self.settings.complete_count + 1 < MAX_CHAIN).then(|| Settings {
            id: next_id,
            flow_id,
            reference_type: self.settings.reference_type,
            reference_id: self.settings.reference_id.clone(),
            reference_activeflow_id: self.settings.id.clone(),
            on_complete_flow_id: None,
            complete_count: self.settings.complete_count + 1,
        })
    }

    /// Starts running: the first pass.
    pub fn start(&mut self, now: Millis) {
        if self.status != Status::Created {
            return;
        }
        self.status = Status::Running;
        let first = self.stacks.first();
        self.run_pass(first, now);
    }

    /// The activeflow's settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Running or ended.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// The variables.
    pub fn variables(&self) -> &Variables {
        &self.variables
    }

    /// The current action, as loaded.
    pub fn current_action(&self) -> Option<&Action> {
        self.cursor
            .and_then(|i| self.stacks.action(i))
            .map(|(a, _)| a.as_ref())
    }

    /// The id of the current stack.
    pub fn current_stack_id(&self) -> &str {
        &self.stacks.top().id
    }

    /// The latest executed actions (at most [`MAX_EXECUTED_KEPT`]), substituted.
    pub fn executed_actions(&self) -> impl ExactSizeIterator<Item = &Action> {
        self.executed.iter().map(Arc::as_ref)
    }

    /// How many actions ran in all.
    pub fn executed_count(&self) -> u64 {
        self.executed_count
    }

    /// What the current action waits for.
    pub fn wait(&self) -> &Wait {
        &self.wait
    }

    /// The next output, if any. Call until `None` after every `start`, `handle` and
    /// `handle_timeout`.
    pub fn poll(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`Activeflow::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Millis> {
        match &self.wait {
            Wait::Digits { deadline, .. } | Wait::Amd { deadline, .. } => *deadline,
            Wait::Timer { deadline, .. } => Some(*deadline),
            _ => None,
        }
    }

    /// Fires the current wait's timer when it is due at `now`.
    pub fn handle_timeout(&mut self, now: Millis) {
        if !matches!(self.status, Status::Running) || self.poll_timeout().is_none_or(|d| d > now) {
            return;
        }
        match std::mem::replace(&mut self.wait, Wait::Idle) {
            Wait::Timer {
                action_id,
                stop_media,
                ..
            } => {
                if stop_media {
                    self.emit(&action_id, Command::StopMedia);
                }
                self.advance(Step::Next, now);
            }
            Wait::Digits { .. } => self.advance(Step::Next, now),
            Wait::Amd { .. } => self.advance(Step::Next, now),
            other => self.wait = other,
        }
    }

    /// Handles one event at `now`.
    pub fn handle(&mut self, event: Event, now: Millis) {
        if let Status::Ended { .. } = self.status {
            return;
        }
        match event {
            Event::Variables(pairs) => {
                for (k, v) in pairs {
                    self.set_variable(&k, &v);
                }
            }
            Event::ExternalVariables(pairs) => {
                for (k, v) in pairs {
                    match self.variables.set_external(&k, &v) {
                        Ok(()) => self.report(FlowEvent::VariableSet { key: k, value: v }),
                        Err(e) => self.report(FlowEvent::Warning {
                            message: e.to_string(),
                        }),
                    }
                }
            }
            Event::CallStatusChanged(status) => {
                self.set_variable(control::CALL_STATUS, status.as_str())
            }
            Event::Hangup => self.end(EndReason::Hangup),
            Event::Stop => self.end(EndReason::Stop),
            _ if self.status == Status::Created => {}
            Event::Completed { action_id, outcome } => self.on_completed(&action_id, outcome, now),
            Event::DigitReceived(digit) => self.on_digit(digit, now),
            Event::HttpResponse {
                action_id,
                status,
                body,
            } => self.on_http(&action_id, status, &body, now),
            Event::FlowLoaded { action_id, actions } => {
                self.on_flow_loaded(&action_id, actions, now)
            }
            Event::Execute => {
                if let Wait::Block { .. } = self.wait {
                    self.wait = Wait::Idle;
                    self.advance(Step::Next, now);
                }
            }
            Event::Interrupt(actions) => self.on_interrupt(actions, now),
            Event::Forward(target) => match self.stacks.find(&target) {
                Ok(pos) => {
                    self.abandon_wait();
                    self.run_pass(pos, now);
                }
                Err(e) => self.report(FlowEvent::Warning {
                    message: format!("forward: {e}"),
                }),
            },
        }
    }

    fn on_completed(&mut self, action_id: &ActionId, outcome: Outcome, now: Millis) {
        if self.wait.action_id() != Some(action_id) {
            return; // stale: the flow has moved on
        }
        match std::mem::replace(&mut self.wait, Wait::Idle) {
            Wait::Amd {
                machine_handle,
                machine_action,
                human_action,
                ..
            } => {
                let step =
                    execute::amd_step(&outcome, &machine_handle, &machine_action, &human_action);
                if let Step::End(EndReason::Hangup) = step {
                    self.emit(
                        action_id,
                        Command::Hangup {
                            reason: "amd".into(),
                            reference_id: String::new(),
                        },
                    );
                }
                self.advance(step, now);
            }
            Wait::Command { .. } => {
                if let Outcome::Failed(why) = &outcome {
                    self.report(FlowEvent::Warning {
                        message: format!("action {action_id} failed: {why}"),
                    });
                }
                self.advance(Step::Next, now);
            }
            other => self.wait = other,
        }
    }

    fn on_digit(&mut self, digit: char, now: Millis) {
        let mut key = [0u8; 4];
        let key: &str = digit.encode_utf8(&mut key);
        match &self.wait {
            Wait::Digits {
                length,
                terminators,
                ..
            } => {
                let digits = format!("{}{key}", self.variables.get(control::DIGITS));
                let done = (*length > 0 && digits.len() >= *length as usize)
                    || terminators.contains(digit);
                self.set_variable(control::DIGITS, &digits);
                if done {
                    self.wait = Wait::Idle;
                    self.advance(Step::Next, now);
                }
            }
            wait => {
                // Type-ahead outside digits_receive keeps only the last key, as the
                // original does.
                let skip = matches!(
                    wait,
                    Wait::Command {
                        skip_on_digit: true,
                        ..
                    }
                );
                let action_id = wait.action_id().cloned();
                self.set_variable(control::DIGITS, key);
                if let (true, Some(id)) = (skip, action_id) {
                    self.emit(&id, Command::StopMedia);
                    self.wait = Wait::Idle;
                    self.advance(Step::Next, now);
                }
            }
        }
    }

    fn on_http(&mut self, action_id: &ActionId, status: u16, body: &str, now: Millis) {
        let Wait::Http {
            action_id: waiting,
            fetch,
        } = &self.wait
        else {
            return;
        };
        if waiting != action_id {
            return;
        }
        let fetch = *fetch;
        self.wait = Wait::Idle;
        if !fetch {
            if status == 0 || status >= 400 {
                self.report(FlowEvent::Warning {
                    message: format!("webhook_send got {status}"),
                });
            }
            return self.advance(Step::Next, now);
        }
        if status != 200 {
            return self.end(EndReason::Error(format!(
                "fetch answered {status}, not 200"
            )));
        }
        match serde_json::from_str::<serde_json::Value>(body) {
            Ok(value) => self.push_actions(action_id, Ok(value), now),
            Err(e) => self.end(EndReason::Error(format!(
                "fetch: the body is not JSON: {e}"
            ))),
        }
    }

    fn on_flow_loaded(
        &mut self,
        action_id: &ActionId,
        actions: Result<serde_json::Value, String>,
        now: Millis,
    ) {
        match &self.wait {
            Wait::Flow { action_id: waiting } if waiting == action_id => {
                self.wait = Wait::Idle;
                self.push_actions(action_id, actions, now);
            }
            _ => {}
        }
    }

    /// Pushes fetched or loaded actions as a new stack and runs them.
    fn push_actions(
        &mut self,
        action_id: &ActionId,
        actions: Result<serde_json::Value, String>,
        now: Millis,
    ) {
        let parsed = actions.and_then(|v| {
            crate::model::parse_actions(&v).map_err(|findings| {
                findings
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        });
        match (parsed, self.cursor) {
            (Ok(list), Some(from)) => {
                let stack_id = uuid::Uuid::new_v4().to_string();
                match self.stacks.push(stack_id, list, from) {
                    Some(first) => self.run_pass(Some(first), now),
                    None => self.advance(Step::Next, now),
                }
            }
            (Ok(_), None) => self.advance(Step::Next, now),
            (Err(e), _) => self.end(EndReason::Error(format!("action {action_id}: {e}"))),
        }
    }

    fn on_interrupt(&mut self, actions: Vec<Action>, now: Millis) {
        let Some(from) = self.cursor else { return };
        self.abandon_wait();
        match self
            .stacks
            .push(uuid::Uuid::new_v4().to_string(), actions, from)
        {
            Some(first) => self.run_pass(Some(first), now),
            None => self.advance(Step::Next, now),
        }
    }

    /// Leaves the current wait, stopping its media when it has some.
    fn abandon_wait(&mut self) {
        if let Wait::Command { action_id, .. }
        | Wait::Timer {
            action_id,
            stop_media: true,
            ..
        } = std::mem::replace(&mut self.wait, Wait::Idle)
        {
            self.emit(&action_id, Command::StopMedia);
        }
    }

    /// Moves the cursor by `step` from the current action, then runs a pass.
    fn advance(&mut self, step: Step, now: Millis) {
        let from = self.cursor.unwrap_or(0);
        let next = match step {
            Step::Next => self.stacks.next_after(from),
            Step::Jump(target) => self.stacks.find(&target),
            Step::Wait(wait) => {
                self.wait = wait;
                return;
            }
            Step::End(reason) => return self.end(reason),
        };
        match next {
            Ok(pos) => self.run_pass(pos, now),
            Err(e) => self.end(EndReason::Error(e.to_string())),
        }
    }

    /// One pass: runs actions from `next` until one waits, the flow ends, or the step
    /// limit is reached.
    fn run_pass(&mut self, mut next: Option<usize>, now: Millis) {
        if !matches!(self.status, Status::Running) {
            return;
        }
        self.passes += 1;
        if self.passes > MAX_PASSES {
            return self.end(EndReason::Limit(format!(
                "more than {MAX_PASSES} executions"
            )));
        }
        for _ in 0..MAX_STEPS_PER_PASS {
            let Some(index) = next else {
                return self.end(EndReason::Finished);
            };
            let Some((raw, needs_substitution)) = self.stacks.action(index) else {
                return self.end(EndReason::Error(format!("no action at position {index}")));
            };
            let action = if needs_substitution {
                Arc::new(self.substituted(raw))
            } else {
                Arc::clone(raw)
            };
            self.cursor = Some(index);
            self.executed_count += 1;
            self.report(FlowEvent::ActionStarted {
                action_id: action.id.clone(),
                action_type: action.kind.type_name(),
                stack_id: self.stacks.top().id.clone(),
            });
            let step = self.execute(&action, index, now);
            if self.executed.len() == MAX_EXECUTED_KEPT {
                self.executed.pop_front();
            }
            self.executed.push_back(action);
            let moved = match step {
                Step::Next => self.stacks.next_after(index),
                Step::Jump(target) => self.stacks.find(&target),
                Step::Wait(wait) => {
                    self.wait = wait;
                    return;
                }
                Step::End(reason) => return self.end(reason),
            };
            match moved {
                Ok(pos) => next = pos,
                Err(e) => return self.end(EndReason::Error(e.to_string())),
            }
        }
        self.end(EndReason::Limit(format!(
            "more than {MAX_STEPS_PER_PASS} actions in one execution"
        )));
    }

    /// A copy of `raw` with `${...}` substituted in its option.
    fn substituted(&self, raw: &Action) -> Action {
        let mut action = raw.clone();
        let vars = &self.variables;
        action
            .kind
            .substitute(&|text| variables::has_placeholder(text).then(|| vars.substitute(text)));
        action
    }

    /// Ends the activeflow and reports why (and the chain, when it chains).
    fn end(&mut self, reason: EndReason) {
        if let Status::Ended { .. } = self.status {
            return;
        }
        self.wait = Wait::Idle;
        self.status = Status::Ended {
            reason: reason.clone(),
        };
        self.report(FlowEvent::Ended { reason });
        if let Some(next) = self.chain_settings(String::new()) {
            self.report(FlowEvent::ChainRequested {
                flow_id: next.flow_id,
                complete_count: next.complete_count,
            });
        }
    }

    fn set_variable(&mut self, key: &str, value: &str) {
        match self.variables.set(key, value) {
            Ok(()) => self.report(FlowEvent::VariableSet {
                key: key.to_owned(),
                value: value.to_owned(),
            }),
            Err(e) => self.report(FlowEvent::Warning {
                message: e.to_string(),
            }),
        }
    }

    fn emit(&mut self, action_id: &ActionId, command: Command) {
        self.outputs.push_back(Output::Command {
            action_id: action_id.clone(),
            command,
        });
    }

    fn report(&mut self, event: FlowEvent) {
        self.outputs.push_back(Output::Event(event));
    }
}

#[cfg(test)]
mod tests;
