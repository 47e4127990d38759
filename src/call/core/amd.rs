//! `amd` in the core (seed 003): detection started on the caller's session, its
//! verdict set in the flow's variables (`voipbin.amd.result`, `.cause`,
//! `.time_ms`) and announced (`call_amd_detected`), the beep likewise
//! (`voipbin.amd.beep_ms`, `call_amd_beep`). A waiting flow gets the verdict as
//! the action's outcome (its `machine_handle` or `machine_action` decides what
//! follows; `hangup` ends the call with reason `amd`); with `delay` a machine's
//! verdict is held until the beep (or until no beep came), so the next action,
//! a voicemail drop, starts after the greeting. With `async` the flow has gone
//! on; a machine with `machine_handle: hangup` is hung up here.

use flow_runtime::ActionId;
use flow_runtime::interpreter::{AmdVerdict, Event, Outcome};
use media_engine::amd::{AmdConfig, Verdict};

use api::call_store::{Verb, Write};

use super::{AmdReport, CallCore, HangupReason, Output};

/// What a machine gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MachineHandle {
    /// The call ends with reason `amd`.
    Hangup,
    /// The flow waits on for the beep.
    Delay,
    /// The flow goes on.
    Continue,
}

/// The detection running on the call.
#[derive(Debug)]
pub(super) struct AmdRun {
    /// The action waiting for the outcome (none when asynchronous, or told).
    waiting: Option<ActionId>,
    handle: MachineHandle,
    /// The verdict, once heard.
    verdict: Option<AmdVerdict>,
}

impl CallCore {
    /// `amd`: starts detection listening `timeout_ms` at most.
    pub(super) fn start_amd(
        &mut self,
        action: ActionId,
        timeout_ms: u64,
        wait: bool,
        machine_handle: &str,
    ) {
        let Some(leg) = self.leg.media else {
            return self.complete(
                action,
                Outcome::Failed("amd: the call has no media yet: answer it first".into()),
            );
        };
        let handle = match machine_handle {
            "hangup" => MachineHandle::Hangup,
            "delay" => MachineHandle::Delay,
            _ => MachineHandle::Continue,
        };
        let config = AmdConfig {
            total_analysis_ms: u32::try_from(timeout_ms).unwrap_or(u32::MAX),
            ..AmdConfig::default()
        };
        self.amd = Some(AmdRun {
            waiting: wait.then_some(action),
            handle,
            verdict: None,
        });
        self.outputs.push_back(Output::Amd {
            session: leg.id,
            config,
        });
    }

    /// What the detection heard.
    pub(super) fn amd_report(&mut self, report: AmdReport) {
        let Some(run) = self.amd.as_mut() else {
            return;
        };
        match report {
            AmdReport::Verdict(d) => {
                let verdict = match d.verdict {
                    Verdict::Human => AmdVerdict::Human,
                    Verdict::Machine => AmdVerdict::Machine,
                    Verdict::NotSure => AmdVerdict::Notsure,
                };
                let handle = run.handle;
                run.verdict = Some(verdict);
                let hold = handle == MachineHandle::Delay && verdict == AmdVerdict::Machine;
                let told = if hold { None } else { run.waiting.take() };
                let asynchronous_hangup = told.is_none()
                    && !hold
                    && handle == MachineHandle::Hangup
                    && verdict == AmdVerdict::Machine;
                self.flow_event(Event::Variables(vec![
                    ("voipbin.amd.result".into(), d.verdict.as_str().into()),
                    ("voipbin.amd.cause".into(), d.cause.as_str().into()),
                    ("voipbin.amd.time_ms".into(), d.at_ms.to_string()),
                ]));
                self.amd_notice(
                    Verb::AmdDetected,
                    serde_json::json!({
                        "result": d.verdict.as_str(),
                        "cause": d.cause.as_str(),
                        "time_ms": d.at_ms,
                    }),
                );
                if let Some(action) = told {
                    self.complete(action, Outcome::Amd(verdict));
                } else if asynchronous_hangup {
                    self.hang_up_for(HangupReason::Amd);
                }
            }
            AmdReport::Beep(beep) => {
                // A beep before the verdict leaves the action to the verdict.
                let told = if run.verdict.is_some() {
                    run.waiting.take()
                } else {
                    None
                };
                self.flow_event(Event::Variables(vec![(
                    "voipbin.amd.beep_ms".into(),
                    beep.at_ms.to_string(),
                )]));
                self.amd_notice(
                    Verb::AmdBeep,
                    serde_json::json!({"time_ms": beep.at_ms, "frequency": beep.freq_hz}),
                );
                if let Some(action) = told {
                    self.complete(action, Outcome::Amd(AmdVerdict::Machine));
                }
            }
            AmdReport::NoBeep => {
                let verdict = run.verdict.unwrap_or(AmdVerdict::Notsure);
                if let Some(action) = run.waiting.take() {
                    self.complete(action, Outcome::Amd(verdict));
                }
            }
            AmdReport::Failed(why) => {
                if let Some(action) = run.waiting.take() {
                    self.complete(action, Outcome::Failed(format!("amd: {why}")));
                } else {
                    self.action_failed(&format!("amd: {why}"));
                }
            }
        }
    }

    /// Announces `call_<verb>` with the call's ids and `data`.
    fn amd_notice(&mut self, verb: Verb, mut data: serde_json::Value) {
        data["call_id"] = self.row.id.clone().into();
        data["activeflow_id"] = self.flow_row.id.clone().into();
        self.outputs.push_back(Output::Write(Write::notice(
            &self.row.customer_id,
            "call",
            &self.row.id,
            verb,
            data,
        )));
    }
}
