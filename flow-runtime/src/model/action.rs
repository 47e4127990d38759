//! Actions: the lenient raw form, the typed [`ActionKind`], and parsing between them.
//!
//! Parsing runs in two phases (STYLE.md, "Actions as an exhaustive enum"): every action
//! is first read leniently as `{"id","next_id","type","option"}`, then its `type` picks
//! an option struct that reads `option` field by field. Every problem is collected as
//! a [`Finding`] naming the action's index, id and field.

use serde_json::{Map, Value};

use super::action_id::{ActionId, NIL};
use super::finding::{Finding, Severity};
use super::option_value::OptionValue;
use super::options::ActionOption;
use super::options::{NoOption, ai::*, control::*, integration::*, media::*, routing::*};

/// Defines [`ActionKind`] with one variant per action type, its canonical type names
/// and the aliases accepted on input.
macro_rules! action_kinds {
    ( $( $(#[$doc:meta])* $variant:ident ( $opt:ty ) = $name:literal $( | $alias:literal )* ; )* ) => {
        /// What an action does, with its typed option.
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum ActionKind {
            $( $(#[$doc])* $variant($opt), )*
        }

        impl ActionKind {
            /// Every canonical action type name.
            pub const TYPE_NAMES: &'static [&'static str] = &[ $( $name ),* ];

            /// The canonical type name, as written back.
            pub fn type_name(&self) -> &'static str {
                match self { $( Self::$variant(_) => $name, )* }
            }

            /// Reads an action of type `type_name` (or an alias of one). `None` when the
            /// type is unknown; otherwise the kind with the option's problems.
            pub fn read(
                type_name: &str,
                option: &Map<String, Value>,
            ) -> Option<(Self, Vec<(String, String)>)> {
                match type_name {
                    $( $name $( | $alias )* => {
                        let (opt, errors) = <$opt as ActionOption>::read(option);
                        Some((Self::$variant(opt), errors))
                    } )*
                    _ => None,
                }
            }

            /// The option written back canonically.
            pub fn write_option(&self) -> Map<String, Value> {
                match self { $( Self::$variant(o) => o.write(), )* }
            }

            /// Substitutes placeholders in every string of the option.
            pub fn substitute(&mut self, sub: &dyn Fn(&str) -> Option<String>) {
                match self { $( Self::$variant(o) => o.substitute(sub), )* }
            }

            /// Whether the option holds a placeholder to substitute.
            pub fn has_placeholder(&self) -> bool {
                match self { $( Self::$variant(o) => o.has_placeholder(), )* }
            }
        }
    };
}

action_kinds! {
    /// Deprecated: ring an agent (use connect).
    AgentCall(AgentCallOption) = "agent_call";
    /// Summarise a call, recording or transcript with AI.
    AiSummary(AiSummaryOption) = "ai_summary";
    /// A voice conversation with an AI agent.
    AiTalk(AiTalkOption) = "ai_talk";
    /// An AI task without media.
    AiTask(AiTaskOption) = "ai_task";
    /// Answering machine detection.
    Amd(AmdOption) = "amd";
    /// Answer the call.
    Answer(NoOption) = "answer";
    /// Play a beep.
    Beep(NoOption) = "beep";
    /// Halt until resumed through the API.
    Block(NoOption) = "block";
    /// Jump by a variable's value.
    Branch(BranchOption) = "branch";
    /// Start independent outgoing calls.
    Call(CallOption) = "call";
    /// Open a CRM case.
    CaseCreate(CaseCreateOption) = "case_create";
    /// The older AI conversation.
    ChatbotTalk(ChatbotTalkOption) = "chatbot_talk";
    /// Deprecated: test the received digits.
    ConditionCallDigits(ConditionCallDigitsOption) = "condition_call_digits";
    /// Deprecated: test the call's status.
    ConditionCallStatus(ConditionCallStatusOption) = "condition_call_status";
    /// Test the UTC date and time.
    ConditionDatetime(ConditionDatetimeOption) = "condition_datetime";
    /// Test a variable.
    ConditionVariable(ConditionVariableOption) = "condition_variable";
    /// Join an internal bridge.
    ConfbridgeJoin(ConfbridgeJoinOption) = "confbridge_join";
    /// Join a conference.
    ConferenceJoin(ConferenceJoinOption) = "conference_join";
    /// Dial and bridge.
    Connect(ConnectOption) = "connect";
    /// Send into a conversation.
    ConversationSend(ConversationSendOption) = "conversation_send";
    /// Collect DTMF keys.
    DigitsReceive(DigitsReceiveOption) = "digits_receive";
    /// Send DTMF keys.
    DigitsSend(DigitsSendOption) = "digits_send";
    /// Echo the caller's audio.
    Echo(EchoOption) = "echo";
    /// Send an email.
    EmailSend(EmailSendOption) = "email_send";
    /// Do nothing.
    Empty(NoOption) = "empty";
    /// Fork media to an outside host.
    ExternalMediaStart(ExternalMediaStartOption) = "external_media_start";
    /// Stop the media fork.
    ExternalMediaStop(NoOption) = "external_media_stop";
    /// Load actions over HTTP.
    Fetch(FetchOption) = "fetch";
    /// Run a stored flow's actions.
    FetchFlow(FetchFlowOption) = "fetch_flow";
    /// Jump, a bounded number of times.
    Goto(GotoOption) = "goto";
    /// Hang up.
    Hangup(HangupOption) = "hangup";
    /// Hang up with another call's reason.
    HangupRelay(HangupRelayOption) = "hangup_relay";
    /// Send an SMS.
    MessageSend(MessageSendOption) = "message_send";
    /// Start music on hold.
    MohStart(MohStartOption) = "moh_start";
    /// Mute the call.
    Mute(NoOption) = "mute";
    /// Play media files.
    Play(PlayOption) = "play";
    /// Wait in a queue.
    QueueJoin(QueueJoinOption) = "queue_join";
    /// Record the caller into a variable.
    RecordVoice(RecordVoiceOption) = "record_voice";
    /// Start recording the call.
    RecordingStart(RecordingStartOption) = "recording_start" | "record_start";
    /// Stop recording the call.
    RecordingStop(NoOption) = "recording_stop" | "record_stop";
    /// Wait.
    Sleep(SleepOption) = "sleep";
    /// End the flow.
    Stop(NoOption) = "stop";
    /// Echo the RTP stream, digits included.
    StreamEcho(EchoOption) = "stream_echo";
    /// Speak text.
    Talk(TalkOption) = "talk";
    /// Transcribe the call's recordings.
    TranscribeRecording(TranscribeOption) = "transcribe_recording";
    /// Start live transcription.
    TranscribeStart(TranscribeOption) = "transcribe_start";
    /// Stop live transcription.
    TranscribeStop(NoOption) = "transcribe_stop";
    /// Set a variable.
    VariableSet(VariableSetOption) = "variable_set";
    /// Send an HTTP request.
    WebhookSend(WebhookSendOption) = "webhook_send";
}

/// One action of a flow.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    /// Its id (assigned when missing).
    pub id: ActionId,
    /// The action to run after this one, overriding the order of the list.
    pub next_id: Option<ActionId>,
    /// What it does.
    pub kind: ActionKind,
}

impl Action {
    /// Writes the action in canonical form:
    /// `{"id", "next_id" (when set), "type", "option" (when not empty)}`.
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("id".into(), Value::String(self.id.as_str().to_owned()));
        if let Some(next) = &self.next_id {
            obj.insert("next_id".into(), Value::String(next.as_str().to_owned()));
        }
        obj.insert(
            "type".into(),
            Value::String(self.kind.type_name().to_owned()),
        );
        let option = self.kind.write_option();
        if !option.is_empty() {
            obj.insert("option".into(), Value::Object(option));
        }
        Value::Object(obj)
    }
}

impl serde::Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Action {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Action::from_json(&value).map_err(|findings| {
            serde::de::Error::custom(
                findings
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })
    }
}

impl Action {
    /// Reads one action (both parsing phases); missing ids get a fresh UUID.
    pub fn from_json(value: &Value) -> Result<Self, Vec<Finding>> {
        parse_one(0, value)
    }
}

/// Writes a list of actions in canonical form.
pub fn actions_to_json(actions: &[Action]) -> Value {
    Value::Array(actions.iter().map(Action::to_json).collect())
}

/// Actions nested inside an option (the `call` action's inline flow).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NestedActions(pub Vec<Action>);

impl OptionValue for NestedActions {
    fn from_json(value: &Value) -> Result<Self, String> {
        match parse_actions(value) {
            Ok(actions) => Ok(Self(actions)),
            Err(findings) => Err(findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
                .map(|f| format!("[{}].{}: {}", f.index, f.field, f.message))
                .collect::<Vec<_>>()
                .join("; ")),
        }
    }
    fn to_json(&self) -> Value {
        actions_to_json(&self.0)
    }
}

/// Reads one id-like field of the raw action.
fn raw_id(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(_) => Err("expected a string".to_owned()),
    }
}

/// Parses a JSON array of actions. Missing ids get a fresh UUID.
///
/// Returns the actions, or every error found (with the action's index, id and field).
/// Duplicate ids are errors. Jump targets are checked later, by
/// [`crate::validate`], as warnings.
pub fn parse_actions(value: &Value) -> Result<Vec<Action>, Vec<Finding>> {
    let Some(items) = value.as_array() else {
        return Err(vec![Finding::error(
            0,
            None,
            "actions",
            "expected an array of actions",
        )]);
    };
    let mut errors = Vec::new();
    let mut actions = Vec::with_capacity(items.len());
    let mut seen = rustc_hash::FxHashSet::default();
    for (index, item) in items.iter().enumerate() {
        match parse_one(index, item) {
            Ok(action) => {
                if !seen.insert(action.id.as_str().to_owned()) {
                    errors.push(Finding::error(
                        index,
                        Some(action.id.as_str()),
                        "id",
                        "duplicate action id",
                    ));
                }
                actions.push(action);
            }
            Err(mut found) => errors.append(&mut found),
        }
    }
    if errors.is_empty() {
        Ok(actions)
    } else {
        Err(errors)
    }
}

/// Phase one (lenient raw form) and phase two (typed option) for one action.
fn parse_one(index: usize, item: &Value) -> Result<Action, Vec<Finding>> {
    let Some(obj) = item.as_object() else {
        return Err(vec![Finding::error(
            index,
            None,
            "",
            "expected an action object",
        )]);
    };
    let mut errors = Vec::new();
    let id = match raw_id(obj, "id") {
        Ok(Some(id)) if id != NIL => ActionId::new(id),
        Ok(_) => ActionId::random(),
        Err(e) => {
            errors.push(Finding::error(index, None, "id", &e));
            ActionId::random()
        }
    };
    let shown_id = Some(id.as_str());
    let next_id = match raw_id(obj, "next_id") {
        Ok(next) => next.and_then(|n| ActionId::target(&n)),
        Err(e) => {
            errors.push(Finding::error(index, shown_id, "next_id", &e));
            None
        }
    };
    let empty = Map::new();
    let option = match obj.get("option") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(map)) => map,
        Some(_) => {
            errors.push(Finding::error(
                index,
                shown_id,
                "option",
                "expected an object",
            ));
            &empty
        }
    };
    let kind = match obj.get("type") {
        Some(Value::String(t)) => match ActionKind::read(t.trim(), option) {
            Some((kind, problems)) => {
                for (field, message) in problems {
                    errors.push(Finding::error(
                        index,
                        shown_id,
                        &format!("option.{field}"),
                        &message,
                    ));
                }
                Some(kind)
            }
            None => {
                errors.push(Finding::error(
                    index,
                    shown_id,
                    "type",
                    &format!("unknown action type {t:?}"),
                ));
                None
            }
        },
        Some(_) => {
            errors.push(Finding::error(index, shown_id, "type", "expected a string"));
            None
        }
        None => {
            errors.push(Finding::error(
                index,
                shown_id,
                "type",
                "missing action type",
            ));
            None
        }
    };
    match kind {
        Some(kind) if errors.is_empty() => Ok(Action { id, next_id, kind }),
        _ => Err(errors),
    }
}
