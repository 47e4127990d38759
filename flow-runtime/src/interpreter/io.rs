//! What goes into an activeflow ([`Event`]) and what comes out ([`Command`],
//! [`FlowEvent`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{Action, ActionId, Address};

/// Milliseconds since the Unix epoch (UTC). The host passes the time in; the
/// interpreter never reads a clock.
pub type Millis = u64;

/// What a reference of an activeflow is; it decides which actions apply
/// (reference section 2.2, "Required media").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReferenceType {
    /// A call: media actions run.
    Call,
    /// A received message.
    Message,
    /// Started through the API.
    Api,
    /// An outbound campaign.
    Campaign,
    /// A conversation (chat channels).
    Conversation,
}

impl ReferenceType {
    /// Whether this reference has media (a call).
    pub fn has_media(self) -> bool {
        self == Self::Call
    }

    /// The name used in variables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Call => "call",
            Self::Message => "message",
            Self::Api => "api",
            Self::Campaign => "campaign",
            Self::Conversation => "conversation",
        }
    }
}

/// An HTTP request the host makes for the flow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpRequest {
    /// Which action asked: `webhook_send` or `fetch`.
    pub purpose: &'static str,
    /// The URL.
    pub url: String,
    /// The method.
    pub method: String,
    /// The content type of `body`.
    pub content_type: String,
    /// The body.
    pub body: String,
    /// Whether the flow waits for the answer (an [`Event::HttpResponse`]).
    pub wait: bool,
}

/// A command for the host (the call engine, or the simulator). Each comes with the id
/// of the action that issued it; the host answers waiting commands with
/// [`Event::Completed`] naming that action.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "command", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Command {
    /// Answer the call (200 OK). Waits.
    Answer,
    /// Speak text. Waits unless `wait` is false.
    Talk {
        /// Plain text or SSML.
        text: String,
        /// BCP 47.
        language: String,
        /// male, female, neutral or "".
        gender: String,
        /// The TTS provider, "" for the default.
        provider: String,
        /// The provider's voice.
        voice_id: String,
        /// Whether the flow waits for the end.
        wait: bool,
    },
    /// Play files in order. Waits.
    Play {
        /// URLs or data-dir paths.
        urls: Vec<String>,
    },
    /// A beep. Waits.
    Beep,
    /// Stop whatever media the call is playing (a key press skipped a prompt, an
    /// interrupt arrived).
    StopMedia,
    /// The flow now collects keys into `voipbin.call.digits`; the interpreter times
    /// it and ends it. Informational for the host.
    DigitsReceive {
        /// Timeout in ms (0 for none).
        duration_ms: u64,
        /// Keys wanted (0 for any number).
        length: u32,
        /// Terminator keys.
        terminators: String,
    },
    /// Send DTMF. Waits.
    DigitsSend {
        /// The keys.
        digits: String,
        /// Tone length per key, ms.
        duration_ms: u64,
        /// Gap between keys, ms.
        interval_ms: u64,
    },
    /// Wait; the interpreter times it. Informational for the host.
    Sleep {
        /// Milliseconds.
        duration_ms: u64,
    },
    /// Echo the caller's audio back until told to stop (the interpreter times it).
    Echo {
        /// Milliseconds.
        duration_ms: u64,
        /// true for stream_echo (digits echoed too).
        stream: bool,
    },
    /// Start recording the call. Does not wait.
    RecordingStart {
        /// wav, mp3 or ogg.
        format: String,
        /// Stop after this much silence, s (0 for never).
        end_of_silence_s: u64,
        /// none, any, * or #.
        end_of_key: String,
        /// Maximum length, s (0 for none).
        duration_s: u64,
        /// Beep first.
        beep_start: bool,
        /// A flow to run when it ends.
        on_end_flow_id: String,
    },
    /// Stop recording. Does not wait.
    RecordingStop,
    /// Record the caller into a variable. Waits.
    RecordVoice {
        /// Maximum length, ms.
        duration_ms: u64,
        /// End after this much silence, ms.
        silence_timeout_ms: u64,
        /// The variable that gets the recording's id.
        variable_name: String,
    },
    /// Music on hold. Does not wait.
    MohStart {
        /// The music class.
        music_class: String,
    },
    /// Mute the call. Does not wait.
    Mute,
    /// Hang up; the activeflow ends.
    Hangup {
        /// normal, busy, ...
        reason: String,
        /// Hang up with this call's reason instead.
        reference_id: String,
    },
    /// Answering machine detection. Waits unless asynchronous.
    Amd {
        /// Listening time before a verdict, ms.
        timeout_ms: u64,
        /// Whether the flow waits for the verdict.
        wait: bool,
        /// What a machine gets (seed 003): `hangup`, `delay` (the flow waits on
        /// past the verdict for the greeting's beep), `continue` (or empty).
        machine_handle: String,
    },
    /// Dial and bridge. Waits for [`Event::Completed`] with a connect outcome.
    Connect {
        /// The caller id.
        source: Option<Address>,
        /// Who to ring.
        destinations: Vec<Address>,
        /// Pass early media.
        early_media: bool,
        /// Relay the hangup reason.
        relay_reason: bool,
        /// "", yes, no, auto.
        anonymous: String,
        /// Ring time, ms (0 for the default).
        ring_timeout_ms: u64,
        /// The whisper options, as given.
        whisper: Value,
    },
    /// Start independent outgoing calls. Does not wait.
    Call {
        /// The caller id.
        source: Option<Address>,
        /// Who to call.
        destinations: Vec<Address>,
        /// Their flow.
        flow_id: String,
        /// Or their inline actions.
        actions: Vec<Value>,
        /// Hang them up with this call.
        chained: bool,
        /// Run the flow while ringing.
        early_execution: bool,
        /// "", yes, no, auto.
        anonymous: String,
    },
    /// Join a service that holds the call until it ends: `queue`, `conference`,
    /// `confbridge`, `agent`, `ai`. Waits.
    Join {
        /// Which service.
        service: &'static str,
        /// The queue, conference, bridge, agent or AI id.
        target_id: String,
        /// Further options, as given.
        options: Value,
    },
    /// Start a service that runs beside the flow: `transcribe`, `external_media`,
    /// `transcribe_recording`, `ai_summary`. Does not wait, but for
    /// `external_media`, which is done once its peer is connected.
    Start {
        /// Which service.
        service: &'static str,
        /// Its options, as given.
        options: Value,
    },
    /// Stop a service that runs beside the flow: `transcribe`, `external_media`.
    StopService {
        /// Which service.
        service: &'static str,
    },
    /// An HTTP request (webhook_send, fetch).
    Http(HttpRequest),
    /// Send an SMS, email or conversation message, or open a case. Does not wait.
    Send {
        /// `message`, `email`, `conversation`, `case`.
        channel: &'static str,
        /// The action's option, substituted.
        options: Value,
    },
    /// Look up a stored flow for `fetch_flow`; answer with [`Event::FlowLoaded`].
    LoadFlow {
        /// The flow.
        flow_id: String,
    },
}

/// How a waiting command ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It finished.
    Done,
    /// It failed; the flow goes on.
    Failed(String),
    /// An AMD verdict.
    Amd(AmdVerdict),
    /// How a connect or call ended.
    Connect(ConnectOutcome),
}

/// An answering machine detection verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AmdVerdict {
    /// A person answered.
    Human,
    /// A machine answered.
    Machine,
    /// No verdict.
    Notsure,
}

/// How a dialled leg ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectOutcome {
    /// Answered (and, for connect, bridged until one side left).
    Answered,
    /// Busy.
    Busy,
    /// Not answered in time.
    Noanswer,
    /// Failed.
    Failed,
}

/// What happens to an activeflow from outside.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The command of action `action_id` ended. Stale ids are ignored.
    Completed {
        /// The action that issued the command.
        action_id: ActionId,
        /// How it ended.
        outcome: Outcome,
    },
    /// A key was pressed (RFC 4733, SIP INFO or in-band).
    DigitReceived(char),
    /// The call's status changed (sets `voipbin.call.status`).
    CallStatusChanged(crate::CallStatus),
    /// The call hung up; the activeflow ends (and chains).
    Hangup,
    /// The answer to an [`HttpRequest`] of action `action_id`; `status` 0 for a
    /// transport failure.
    HttpResponse {
        /// The action that asked.
        action_id: ActionId,
        /// The HTTP status, 0 when the request failed.
        status: u16,
        /// The body.
        body: String,
    },
    /// The answer to [`Command::LoadFlow`]: the flow's actions, or why not.
    FlowLoaded {
        /// The action that asked.
        action_id: ActionId,
        /// The flow's actions as JSON, or an error.
        actions: Result<Value, String>,
    },
    /// Variables set by the host (the engine may set `voipbin.*`).
    Variables(Vec<(String, String)>),
    /// Variables set by a caller (API, script): `voipbin.*` keys are refused.
    ExternalVariables(Vec<(String, String)>),
    /// Resume a `block` (`POST /activeflows/{id}/execute`).
    Execute,
    /// Stop from outside (`POST /activeflows/{id}/stop`).
    Stop,
    /// Insert actions now: the current action is abandoned, the actions run, then the
    /// flow goes on after the abandoned action (interrupt actions, seed 002).
    Interrupt(Vec<Action>),
    /// Jump to an action now (`forward_action_id`).
    Forward(ActionId),
}

/// Why an activeflow ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", content = "detail", rename_all = "snake_case")]
pub enum EndReason {
    /// It ran off the end of its actions.
    Finished,
    /// The call hung up, or a hangup action ran.
    Hangup,
    /// A stop action, or a stop from outside.
    Stop,
    /// A safety limit (steps per pass, passes per activeflow).
    Limit(String),
    /// A fatal error (an unknown jump target, a failed fetch, ...).
    Error(String),
}

impl EndReason {
    /// The short name: finished, hangup, stop, limit or error.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Finished => "finished",
            Self::Hangup => "hangup",
            Self::Stop => "stop",
            Self::Limit(_) => "limit",
            Self::Error(_) => "error",
        }
    }

    /// Whether `on_complete_flow_id` runs after this end (not after a failure,
    /// seed 002 "Behavior on termination").
    pub fn chains(&self) -> bool {
        matches!(self, Self::Finished | Self::Hangup | Self::Stop)
    }
}

/// What an activeflow reports besides commands.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FlowEvent {
    /// An action became current.
    ActionStarted {
        /// Its id.
        action_id: ActionId,
        /// Its type.
        action_type: &'static str,
        /// The stack it runs in.
        stack_id: std::sync::Arc<str>,
    },
    /// A variable changed.
    VariableSet {
        /// The key.
        key: String,
        /// The new value.
        value: String,
    },
    /// An action was skipped.
    Skipped {
        /// Its id.
        action_id: ActionId,
        /// Why.
        reason: String,
    },
    /// Something went wrong but the flow goes on (a swallowed error).
    Warning {
        /// What.
        message: String,
    },
    /// The activeflow ended.
    Ended {
        /// Why.
        reason: EndReason,
    },
    /// The host should start `flow_id` as a new activeflow with these variables
    /// (`on_complete_flow_id`).
    ChainRequested {
        /// The next flow.
        flow_id: String,
        /// Its `voipbin.activeflow.complete_count`.
        complete_count: u32,
    },
}

/// One output of [`crate::interpreter::Activeflow::poll`].
// Outputs are drained right after they are made, so their size costs little; boxing
// the command would cost an allocation for every one.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Output {
    /// A command for the host.
    Command {
        /// The action that issued it.
        action_id: ActionId,
        /// What to do.
        #[serde(flatten)]
        command: Command,
    },
    /// Something that happened.
    Event(FlowEvent),
}
