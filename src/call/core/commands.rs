//! The activeflow's commands, each turned into SIP and media commands or jobs. A
//! command a later issue brings ends with `activeflow_action_failed` saying it is
//! not available in this version, and the flow goes on.

use flow_runtime::ActionId;
use flow_runtime::interpreter::{Command, Outcome};
use media_engine::engine::Source;
use media_engine::tone::Tone;

use super::super::reason::HangupReason;
use super::super::tts::Speech;
use super::recording::RecordingOptions;
use super::{CallCore, FlowPurpose, Job, MediaCommand, Output};

impl CallCore {
    /// Carries out one command of the activeflow.
    pub(super) fn execute(&mut self, action_id: ActionId, command: Command) {
        tracing::debug!(action = %action_id, ?command, "command");
        let leg = self.leg.media.map(|l| l.id);
        match command {
            Command::Answer => self.answer(action_id),
            Command::Talk {
                text,
                language,
                gender,
                provider,
                voice_id,
                wait,
            } => self.outputs.push_back(Output::Job(Job::Speak {
                action: action_id,
                provider,
                speech: Speech {
                    text,
                    language,
                    gender,
                    voice_id,
                },
                wait,
            })),
            Command::Play { urls } => match urls.into_iter().next() {
                Some(url) => self.outputs.push_back(Output::Job(Job::Prompt {
                    action: action_id,
                    url,
                })),
                None => self.complete(action_id, Outcome::Failed("no url to play".into())),
            },
            Command::Beep => self.play(action_id, Ok(Source::Tone(Tone::beep())), true),
            Command::Echo { .. } => self.play(action_id, Ok(Source::Echo), false),
            Command::StopMedia => {
                if let Some(l) = leg {
                    self.outputs.push_back(Output::Media(MediaCommand::Stop(l)));
                }
            }
            Command::DigitsSend {
                digits,
                duration_ms,
                interval_ms,
            } => {
                // Done when the engine says the last key has gone (DigitsSent), so a
                // hangup right after does not cut the keys off.
                match leg {
                    Some(session) => {
                        self.outputs
                            .push_back(Output::Media(MediaCommand::SendDigits {
                                session,
                                digits,
                                duration_ms: u32::try_from(duration_ms).unwrap_or(u32::MAX),
                                interval_ms: u32::try_from(interval_ms).unwrap_or(u32::MAX),
                            }));
                        self.sending_digits = Some(action_id);
                    }
                    None => self.complete(
                        action_id,
                        Outcome::Failed("the call is not answered".to_owned()),
                    ),
                }
            }
            Command::RecordingStart {
                end_of_silence_s,
                end_of_key,
                duration_s,
                beep_start,
                ..
            } => self.start_recording(RecordingOptions {
                duration_s,
                end_of_silence_s,
                end_of_key,
                beep_start,
            }),
            Command::RecordingStop => self.stop_recording(),
            Command::Hangup {
                reason,
                reference_id,
            } => {
                // hangup_relay: the reason another call of the customer's ended with.
                if reason.is_empty() && !reference_id.is_empty() {
                    self.outputs.push_back(Output::Job(Job::RelayReason {
                        call_id: reference_id,
                    }));
                } else {
                    self.hang_up_for(HangupReason::from_flow(&reason));
                }
            }
            // The answer comes back only when the action waits for it
            // (`request.wait`); otherwise the flow goes on at once.
            Command::Http(request) => self.outputs.push_back(Output::Job(Job::Http {
                action: action_id,
                request,
            })),
            Command::LoadFlow { flow_id } => self.outputs.push_back(Output::Job(Job::LoadFlow {
                flow_id,
                purpose: FlowPurpose::Action(action_id),
            })),
            Command::MohStart { .. } => self.music_on(),
            Command::Connect {
                source,
                destinations,
                early_media,
                relay_reason,
                anonymous,
                ring_timeout_ms,
                ..
            } => self.connect(
                action_id,
                super::connect::ConnectRequest {
                    source,
                    destinations,
                    early_media,
                    relay_reason,
                    anonymous,
                    ring_timeout_ms,
                },
            ),
            Command::Call {
                source,
                destinations,
                flow_id,
                actions,
                chained,
                early_execution,
                anonymous,
            } => self.place_calls(
                super::call_action::CallRequest {
                    source,
                    destinations,
                    flow_id,
                    actions,
                    early_execution,
                    anonymous,
                },
                chained,
            ),
            Command::Start {
                service: "external_media",
                options,
            } => self.start_external_media(action_id, &options),
            Command::StopService {
                service: "external_media",
            } => self.stop_external_media(),
            Command::Amd {
                timeout_ms,
                wait,
                machine_handle,
            } => self.start_amd(action_id, timeout_ms, wait, &machine_handle),
            Command::DigitsReceive { .. } | Command::Sleep { .. } => {}
            other => {
                let name = serde_json::to_value(&other)
                    .ok()
                    .and_then(|v| v.get("command").and_then(|c| c.as_str()).map(str::to_owned))
                    .unwrap_or_else(|| "this action".into());
                self.complete(
                    action_id,
                    Outcome::Failed(format!("{name} is not available in this version")),
                );
            }
        }
    }
}
