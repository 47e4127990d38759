//! Running one action: the one `match` over every action type. Control actions
//! return where to go; the others emit a [`Command`] and either go on or wait.

use serde_json::{Value, json};

use super::control;
use super::io::{AmdVerdict, Command, EndReason, FlowEvent, HttpRequest, Millis, Outcome};
use super::{Activeflow, Step, Wait};
use crate::model::action::ActionKind as K;
use crate::model::{Action, ActionId};

/// Which references an action applies to (reference section 2.2, "Required media").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Media {
    /// Only a call.
    Call,
    /// Only a reference without media.
    NoCall,
    /// Any.
    Any,
}

fn media_of(kind: &K) -> Media {
    match kind {
        K::Amd(_)
        | K::Answer(_)
        | K::Beep(_)
        | K::AgentCall(_)
        | K::ConditionCallDigits(_)
        | K::ConditionCallStatus(_)
        | K::ConfbridgeJoin(_)
        | K::ConferenceJoin(_)
        | K::Connect(_)
        | K::DigitsReceive(_)
        | K::DigitsSend(_)
        | K::Echo(_)
        | K::ExternalMediaStart(_)
        | K::ExternalMediaStop(_)
        | K::Hangup(_)
        | K::HangupRelay(_)
        | K::MohStart(_)
        | K::Mute(_)
        | K::Play(_)
        | K::QueueJoin(_)
        | K::RecordVoice(_)
        | K::RecordingStart(_)
        | K::RecordingStop(_)
        | K::Sleep(_)
        | K::StreamEcho(_)
        | K::Talk(_)
        | K::TranscribeStart(_)
        | K::TranscribeStop(_) => Media::Call,
        K::AiSummary(_) | K::AiTask(_) => Media::NoCall,
        _ => Media::Any,
    }
}

/// Milliseconds from an option's integer; negatives are 0.
fn ms(value: Option<i64>) -> u64 {
    u64::try_from(value.unwrap_or(0)).unwrap_or(0)
}

fn text(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

/// The default AMD listening time when the flow gives none.
const AMD_DEFAULT_MS: u64 = 5000;
/// How long after the listening time the flow still waits for a late verdict.
const AMD_GRACE_MS: u64 = 1000;
/// How long `machine_handle: delay` waits for a machine's beep after the verdict
/// (a greeting's end; the host gives up on the beep before this).
const AMD_BEEP_WAIT_MS: u64 = 20_000;
/// The default echo length (the original's 180 s).
const ECHO_DEFAULT_MS: u64 = 180_000;

/// Where an AMD verdict leads: seed 001's `machine_action`/`human_action` (action
/// ids, or `continue`/`hangup`), else seed 003's `machine_handle`.
pub(super) fn amd_step(
    outcome: &Outcome,
    machine_handle: &str,
    machine_action: &str,
    human_action: &str,
) -> Step {
    let to = |target: &str| match target {
        "" | "continue" | "delay" => Step::Next,
        "hangup" => Step::End(EndReason::Hangup),
        id => ActionId::target(id).map_or(Step::Next, Step::Jump),
    };
    match outcome {
        Outcome::Amd(AmdVerdict::Machine) if !machine_action.is_empty() => to(machine_action),
        Outcome::Amd(AmdVerdict::Machine) => to(machine_handle),
        Outcome::Amd(AmdVerdict::Human) => to(human_action),
        _ => Step::Next,
    }
}

impl Activeflow {
    /// Runs `action` (already substituted), the one at `index` of the top stack.
    pub(super) fn execute(&mut self, action: &Action, index: usize, now: Millis) -> Step {
        let has_media = self.settings.reference_type.is_none_or(|r| r.has_media());
        let skip = match media_of(&action.kind) {
            Media::Call if !has_media => Some("needs a call; this activeflow has no media"),
            Media::NoCall if has_media => Some("does not run on a call"),
            _ => None,
        };
        if let Some(reason) = skip {
            self.report(FlowEvent::Skipped {
                action_id: action.id.clone(),
                reason: reason.to_owned(),
            });
            return Step::Next;
        }
        let id = &action.id;
        let wait_done = || {
            Step::Wait(Wait::Command {
                action_id: id.clone(),
                skip_on_digit: false,
            })
        };
        let options = || Value::Object(action.kind.write_option());
        match &action.kind {
            // Control: inside the interpreter.
            K::Goto(o) => match o.target_id.as_deref().and_then(ActionId::target) {
                Some(target) if self.stacks.take_loop(index) => Step::Jump(target),
                _ => Step::Next,
            },
            K::Branch(o) => {
                let (step, reset) = control::branch(o, &mut self.variables);
                if let Some(key) = reset {
                    self.report(FlowEvent::VariableSet {
                        key,
                        value: String::new(),
                    });
                }
                step
            }
            K::ConditionVariable(o) => control::condition_variable(o),
            K::ConditionDatetime(o) => control::condition_datetime(o, now),
            K::ConditionCallDigits(o) => control::condition_call_digits(o, &self.variables),
            K::ConditionCallStatus(o) => control::condition_call_status(
                o.status.as_deref(),
                &o.false_target_id,
                &self.variables,
            ),
            K::VariableSet(o) => {
                self.set_variable(
                    o.key.as_deref().unwrap_or(""),
                    o.value.as_deref().unwrap_or(""),
                );
                Step::Next
            }
            K::Stop(_) => Step::End(EndReason::Stop),
            K::Block(_) => Step::Wait(Wait::Block {
                action_id: id.clone(),
            }),
            K::Empty(_) => Step::Next,
            K::Fetch(o) => {
                let body = json!({
                    "activeflow_id": self.settings.id,
                    "reference_id": self.settings.reference_id,
                });
                self.emit(
                    id,
                    Command::Http(HttpRequest {
                        purpose: "fetch",
                        url: text(&o.event_url),
                        method: o
                            .event_method
                            .clone()
                            .filter(|m| !m.is_empty())
                            .unwrap_or_else(|| "POST".into()),
                        content_type: "application/json; charset=utf-8".into(),
                        body: body.to_string(),
                        wait: true,
                    }),
                );
                Step::Wait(Wait::Http {
                    action_id: id.clone(),
                    fetch: true,
                })
            }
            K::FetchFlow(o) => {
                self.emit(
                    id,
                    Command::LoadFlow {
                        flow_id: text(&o.flow_id),
                    },
                );
                Step::Wait(Wait::Flow {
                    action_id: id.clone(),
                })
            }

            // Media on the call.
            K::Answer(_) => {
                self.emit(id, Command::Answer);
                wait_done()
            }
            K::Talk(o) => {
                let wait = !o.asynchronous.unwrap_or(false);
                self.emit(
                    id,
                    Command::Talk {
                        text: text(&o.text),
                        language: text(&o.language),
                        gender: text(&o.gender),
                        provider: text(&o.provider),
                        voice_id: text(&o.voice_id),
                        wait,
                    },
                );
                if wait {
                    let skip_on_digit = o.digits_handle.as_deref() == Some("next");
                    Step::Wait(Wait::Command {
                        action_id: id.clone(),
                        skip_on_digit,
                    })
                } else {
                    Step::Next
                }
            }
            K::Play(o) => {
                self.emit(
                    id,
                    Command::Play {
                        urls: o.stream_urls.clone().unwrap_or_default(),
                    },
                );
                wait_done()
            }
            K::Beep(_) => {
                self.emit(id, Command::Beep);
                wait_done()
            }
            K::DigitsReceive(o) => {
                let length = u32::try_from(o.length.unwrap_or(0).max(0)).unwrap_or(u32::MAX);
                let terminators = text(&o.key);
                let digits = self.variables.get(control::DIGITS);
                let done = (length > 0 && digits.len() >= length as usize)
                    || (!terminators.is_empty() && digits.chars().any(|c| terminators.contains(c)));
                let duration = ms(o.duration);
                if done || (duration == 0 && length == 0 && terminators.is_empty()) {
                    return Step::Next;
                }
                self.emit(
                    id,
                    Command::DigitsReceive {
                        duration_ms: duration,
                        length,
                        terminators: terminators.clone(),
                    },
                );
                let deadline = (duration > 0).then(|| now + duration);
                Step::Wait(Wait::Digits {
                    action_id: id.clone(),
                    length,
                    terminators,
                    deadline,
                })
            }
            K::DigitsSend(o) => {
                self.emit(
                    id,
                    Command::DigitsSend {
                        digits: text(&o.digits),
                        duration_ms: o.duration.map_or(250, |d| ms(Some(d))),
                        interval_ms: o.interval.map_or(100, |d| ms(Some(d))),
                    },
                );
                wait_done()
            }
            K::Sleep(o) => {
                let duration = ms(o.duration);
                if duration == 0 {
                    return Step::Next;
                }
                self.emit(
                    id,
                    Command::Sleep {
                        duration_ms: duration,
                    },
                );
                Step::Wait(Wait::Timer {
                    action_id: id.clone(),
                    deadline: now + duration,
                    stop_media: false,
                })
            }
            K::Echo(o) | K::StreamEcho(o) => {
                let duration = match ms(o.duration) {
                    0 => ECHO_DEFAULT_MS,
                    d => d,
                };
                let stream = matches!(action.kind, K::StreamEcho(_));
                self.emit(
                    id,
                    Command::Echo {
                        duration_ms: duration,
                        stream,
                    },
                );
                Step::Wait(Wait::Timer {
                    action_id: id.clone(),
                    deadline: now + duration,
                    stop_media: true,
                })
            }
            K::RecordingStart(o) => {
                self.emit(
                    id,
                    Command::RecordingStart {
                        format: o.format.clone().unwrap_or_else(|| "wav".into()),
                        end_of_silence_s: ms(o.end_of_silence),
                        end_of_key: o.end_of_key.clone().unwrap_or_else(|| "none".into()),
                        duration_s: ms(o.duration),
                        beep_start: o.beep_start.unwrap_or(false),
                        on_end_flow_id: text(&o.on_end_flow_id),
                    },
                );
                Step::Next
            }
            K::RecordingStop(_) => {
                self.emit(id, Command::RecordingStop);
                Step::Next
            }
            K::RecordVoice(o) => {
                self.emit(
                    id,
                    Command::RecordVoice {
                        duration_ms: ms(o.duration),
                        silence_timeout_ms: ms(o.silence_timeout),
                        variable_name: text(&o.variable_name),
                    },
                );
                wait_done()
            }
            K::MohStart(o) => {
                self.emit(
                    id,
                    Command::MohStart {
                        music_class: o.music_class.clone().unwrap_or_else(|| "default".into()),
                    },
                );
                Step::Next
            }
            K::Mute(_) => {
                self.emit(id, Command::Mute);
                Step::Next
            }
            K::Hangup(o) => {
                self.emit(
                    id,
                    Command::Hangup {
                        reason: o
                            .reason
                            .clone()
                            .filter(|r| !r.is_empty())
                            .unwrap_or_else(|| "normal".into()),
                        reference_id: text(&o.reference_id),
                    },
                );
                Step::End(EndReason::Hangup)
            }
            K::HangupRelay(o) => {
                self.emit(
                    id,
                    Command::Hangup {
                        reason: String::new(),
                        reference_id: text(&o.reference_id),
                    },
                );
                Step::End(EndReason::Hangup)
            }
            K::Amd(o) => {
                let timeout = match ms(o.timeout) {
                    0 => AMD_DEFAULT_MS,
                    t => t,
                };
                let wait = !o.asynchronous.unwrap_or(false);
                let machine_handle = text(&o.machine_handle);
                // `delay` waits on for the beep after a machine's verdict.
                let beep_wait = if machine_handle == "delay" {
                    AMD_BEEP_WAIT_MS
                } else {
                    0
                };
                self.emit(
                    id,
                    Command::Amd {
                        timeout_ms: timeout,
                        wait,
                        machine_handle: machine_handle.clone(),
                    },
                );
                if !wait {
                    return Step::Next;
                }
                Step::Wait(Wait::Amd {
                    action_id: id.clone(),
                    deadline: Some(now + timeout + beep_wait + AMD_GRACE_MS),
                    machine_handle,
                    machine_action: text(&o.machine_action),
                    human_action: text(&o.human_action),
                })
            }
            // Waits until the peer is connected (or could not be), so the audio of
            // the actions after it reaches the peer, and a failure is the action's.
            K::ExternalMediaStart(_) => {
                self.emit(
                    id,
                    Command::Start {
                        service: "external_media",
                        options: options(),
                    },
                );
                wait_done()
            }
            K::ExternalMediaStop(_) => {
                self.emit(
                    id,
                    Command::StopService {
                        service: "external_media",
                    },
                );
                Step::Next
            }
            K::TranscribeStart(_) => {
                self.emit(
                    id,
                    Command::Start {
                        service: "transcribe",
                        options: options(),
                    },
                );
                Step::Next
            }
            K::TranscribeStop(_) => {
                self.emit(
                    id,
                    Command::StopService {
                        service: "transcribe",
                    },
                );
                Step::Next
            }
            K::TranscribeRecording(_) => {
                self.emit(
                    id,
                    Command::Start {
                        service: "transcribe_recording",
                        options: options(),
                    },
                );
                Step::Next
            }

            // Routing: other legs and services that hold the call.
            K::Connect(o) => {
                self.emit(
                    id,
                    Command::Connect {
                        source: o.source.clone(),
                        destinations: o.destinations.clone().unwrap_or_default(),
                        early_media: o.early_media.unwrap_or(false),
                        relay_reason: o.relay_reason.unwrap_or(false),
                        anonymous: text(&o.anonymous),
                        ring_timeout_ms: ms(o.ring_timeout),
                        whisper: o.whisper.clone().unwrap_or(Value::Null),
                    },
                );
                wait_done()
            }
            K::Call(o) => {
                self.emit(
                    id,
                    Command::Call {
                        source: o.source.clone(),
                        destinations: o.destinations.clone().unwrap_or_default(),
                        flow_id: text(&o.flow_id),
                        actions: o
                            .actions
                            .as_ref()
                            .map(|n| n.0.iter().map(Action::to_json).collect())
                            .unwrap_or_default(),
                        chained: o.chained.unwrap_or(false),
                        early_execution: o.early_execution.unwrap_or(false),
                        anonymous: text(&o.anonymous),
                    },
                );
                Step::Next
            }
            K::QueueJoin(o) => self.join(id, "queue", text(&o.queue_id), options()),
            K::ConferenceJoin(o) => self.join(id, "conference", text(&o.conference_id), options()),
            K::ConfbridgeJoin(o) => self.join(id, "confbridge", text(&o.confbridge_id), options()),
            K::AgentCall(o) => self.join(id, "agent", text(&o.agent_id), options()),

            // AI.
            K::AiTalk(o) => {
                let target = o
                    .assistance_id
                    .clone()
                    .filter(|a| !a.is_empty())
                    .or_else(|| o.ai_id.clone());
                self.join(id, "ai", target.unwrap_or_default(), options())
            }
            K::ChatbotTalk(o) => self.join(id, "ai", text(&o.chatbot_id), options()),
            K::AiTask(o) => {
                let target = o
                    .assistance_id
                    .clone()
                    .filter(|a| !a.is_empty())
                    .or_else(|| o.ai_id.clone());
                self.join(id, "ai_task", target.unwrap_or_default(), options())
            }
            K::AiSummary(_) => {
                self.emit(
                    id,
                    Command::Start {
                        service: "ai_summary",
                        options: options(),
                    },
                );
                Step::Next
            }

            // Integration: fire and forget, or wait for an HTTP answer.
            K::WebhookSend(o) => {
                let wait = o.sync.unwrap_or(false);
                self.emit(
                    id,
                    Command::Http(HttpRequest {
                        purpose: "webhook_send",
                        url: text(&o.uri),
                        method: o
                            .method
                            .clone()
                            .filter(|m| !m.is_empty())
                            .unwrap_or_else(|| "POST".into()),
                        content_type: o
                            .data_type
                            .clone()
                            .filter(|t| !t.is_empty())
                            .unwrap_or_else(|| "application/json".into()),
                        body: text(&o.data),
                        wait,
                    }),
                );
                if wait {
                    Step::Wait(Wait::Http {
                        action_id: id.clone(),
                        fetch: false,
                    })
                } else {
                    Step::Next
                }
            }
            K::MessageSend(_) => self.send(id, "message", options()),
            K::EmailSend(_) => self.send(id, "email", options()),
            K::ConversationSend(_) => self.send(id, "conversation", options()),
            K::CaseCreate(_) => self.send(id, "case", options()),
        }
    }

    fn join(
        &mut self,
        id: &ActionId,
        service: &'static str,
        target_id: String,
        options: Value,
    ) -> Step {
        self.emit(
            id,
            Command::Join {
                service,
                target_id,
                options,
            },
        );
        Step::Wait(Wait::Command {
            action_id: id.clone(),
            skip_on_digit: false,
        })
    }

    fn send(&mut self, id: &ActionId, channel: &'static str, options: Value) -> Step {
        self.emit(id, Command::Send { channel, options });
        Step::Next
    }
}
