//! What goes into the call core and what comes out of it.
//!
//! Inputs are what happened: SIP events (the user agent's), media events (the
//! engine's), the answers of jobs the core asked for (a flow loaded, speech made,
//! an HTTP answer), and what the API asked. Outputs are what to do: SIP commands,
//! media commands, rows to write, jobs to run. Nothing here does IO.

use std::net::SocketAddr;
use std::path::PathBuf;

use api::call_store::Write;
use flow_runtime::ActionId;
use flow_runtime::interpreter::{HttpRequest, Settings};
use media_engine::engine::{LegParams, MediaEvent, OpenedLeg, SessionId, Source};
use sip_stack::dialog::reason::Reason;
use sip_stack::transaction::TxId;
use sip_stack::ua::{CallRef, UaEvent};

pub use super::super::amd::Report as AmdReport;
pub use super::super::external_media::ExternalMediaOptions;
pub use super::super::external_media::Status as ExternalMediaStatus;
use super::super::registry::Control;
use super::super::tts::Speech;

/// A play on a leg, numbered by the call core (unique within the call), so a
/// `PlayFinished` can be told from another.
pub use media_engine::engine::PlayId;

/// A leg the call dialled (`connect`), numbered by the call core from 1; the
/// caller's own leg is not numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId(pub u32);

impl std::fmt::Display for LegId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "leg {}", self.0)
    }
}

/// A conference room a leg may join (the conference issue fills it in).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoomId(pub String);

/// What happened to the call.
#[derive(Debug)]
pub enum Input {
    /// The user agent's event about this call's dialog.
    Sip(UaEvent),
    /// The user agent did not take our answer (the call is gone on the SIP side).
    AnswerFailed(String),
    /// The user agent stopped: the call is gone with it.
    SipGone,
    /// The engine could not start the recording.
    RecordingFailed(String),
    /// The media engine's event about this call's leg.
    Media(MediaEvent),
    /// The answer to [`MediaCommand::Open`]: the leg, or why there is none.
    LegOpened(Result<OpenedLeg, String>),
    /// A job the core asked for is done.
    JobDone(JobResult),
    /// The API asked something of the call.
    Control(Control),
    /// The answer to [`CalleeCommand::Open`]: the dialled leg's media session.
    CalleeOpened {
        /// The leg.
        leg: LegId,
        /// Its session, or why there is none.
        result: Result<OpenedLeg, String>,
    },
    /// The answer to [`CalleeCommand::Dial`]: the INVITE is on its way, or why not.
    Dialed {
        /// The leg.
        leg: LegId,
        /// The user agent's handle of its dialog, or why it was not sent.
        result: Result<CallRef, DialError>,
    },
    /// The answer to [`Output::Dial`]: the INVITE of the call's own leg (a call we
    /// place) is on its way, or why not.
    LegDialed(Result<CallRef, DialError>),
    /// What became of an external media the core started.
    ExternalMedia {
        /// Its id.
        id: String,
        /// Started, failed or ended.
        status: ExternalMediaStatus,
    },
    /// What the answering machine detection the core started heard.
    Amd(AmdReport),
    /// The user agent's event about a dialled leg.
    CalleeSip {
        /// The leg.
        leg: LegId,
        /// The event.
        event: UaEvent,
    },
}

/// Why a dialled leg could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialError {
    /// No route leads to the destination (no provider for a number, a SIP address
    /// that does not parse or resolve).
    #[error("no route to {0}")]
    NoRoute(String),
    /// The destination is an address we may not call (loopback, private, ours)
    /// unless `--allow-outbound-to` allows it.
    #[error("{0} is not an address calls may go to (see --allow-outbound-to)")]
    Refused(String),
    /// This kind of destination comes with a later version.
    #[error("destination type {0} is not available in this version")]
    Unsupported(String),
    /// Every carrier was tried (the leg's earlier attempts failed over).
    #[error("every carrier for {0} was tried")]
    Exhausted(String),
    /// The user agent refused the request.
    #[error("the INVITE could not be sent: {0}")]
    Sip(String),
    /// The customer has as many outbound calls up as it may.
    #[error("the customer's limit of {0} concurrent outbound calls is reached")]
    Limit(u32),
}

/// What the call core asks of the world.
#[derive(Debug)]
pub enum Output {
    /// A SIP command for the call's dialog.
    Sip(SipCommand),
    /// A media command for the call's leg. [`MediaCommand::Open`] must be answered
    /// with [`Input::LegOpened`] before the next output is polled.
    Media(MediaCommand),
    /// A row (and its events) to write; the call does not wait for it.
    Write(Write),
    /// Work that takes time (TTS, downloads, HTTP, loading flows); its answer comes
    /// back as [`Input::JobDone`].
    Job(Job),
    /// The call now runs activeflow `to` in place of `from` (a chained flow): the
    /// API must reach it under the new id.
    Renamed {
        /// The activeflow that ended.
        from: String,
        /// The one that runs now.
        to: String,
    },
    /// The call's last row: write it and wait for it, so every row of the call is in
    /// the database when the call is over.
    LastWrite(Write),
    /// Sends the INVITE of the call's own leg (a call we place); answered with
    /// [`Input::LegDialed`] before the next output is polled.
    Dial(Dial),
    /// Hangs up other calls (a `call` action's chained calls, when this one ends).
    HangupCalls(Vec<String>),
    /// Starts or stops external media (answered by [`Input::ExternalMedia`]).
    ExternalMedia(ExternalMediaCommand),
    /// Starts answering machine detection on the caller's session (answered by
    /// [`Input::Amd`]); a new one replaces one running.
    Amd {
        /// The caller's session.
        session: SessionId,
        /// The thresholds (the listening time from the action).
        config: media_engine::amd::AmdConfig,
    },
    /// A command for a leg the call dialled.
    Callee {
        /// The leg.
        leg: LegId,
        /// What to do.
        command: CalleeCommand,
    },
}

/// External media to start or stop.
#[derive(Debug)]
pub enum ExternalMediaCommand {
    /// Connects to the peer and streams the caller's session.
    Start {
        /// The external media's id.
        id: String,
        /// The caller's session.
        session: SessionId,
        /// The action's options, read.
        options: Box<ExternalMediaOptions>,
    },
    /// Stops these (the peer gets AudioSocket's hangup, or the RTP stops).
    Stop(Vec<String>),
}

/// What the core asks for a dialled leg.
#[derive(Debug)]
pub enum CalleeCommand {
    /// Opens its media session; answered with [`Input::CalleeOpened`] before the
    /// next output is polled.
    Open(LegParams),
    /// Sends the INVITE; answered with [`Input::Dialed`] before the next output is
    /// polled, so the leg's SIP events come after it.
    Dial(Dial),
    /// A SIP command for its dialog once it is dialled: `Hangup` (CANCEL before
    /// the answer, BYE after) or `Respond` (a request inside its dialog).
    Sip(SipCommand),
}

/// An INVITE to place for a dialled leg.
#[derive(Debug, Clone, PartialEq)]
pub struct Dial {
    /// The destination, as the flow gave it.
    pub destination: api::store::calls::Address,
    /// The caller ID (a number or a SIP user).
    pub caller_id: String,
    /// The caller's display name, if any.
    pub caller_name: String,
    /// Hide the caller ID (From anonymous, the identity in P-Asserted-Identity with
    /// `Privacy: id`, RFC 3325).
    pub anonymous: bool,
    /// Our SDP offer.
    pub sdp: String,
    /// The leg's call id (sent as `VB-CALL-ID`, as the original does).
    pub call_id: String,
    /// Max-Forwards for the INVITE: the caller's less one (RFC 3261 section 16.6).
    pub max_forwards: u32,
    /// Which carrier to try, from 0: the next after each failover.
    pub attempt: u32,
}

/// A SIP command for the call's dialog (the user agent's API, as data).
#[derive(Debug, Clone, PartialEq)]
pub enum SipCommand {
    /// A provisional response (`180`).
    Ring(u16),
    /// A `183 Session Progress` with our SDP: early media (RFC 3960).
    EarlyMedia {
        /// Our SDP answer.
        sdp: String,
    },
    /// The 200 to the INVITE with our SDP (an offer when the INVITE had none).
    Answer {
        /// Our SDP.
        sdp: String,
    },
    /// A final error response to the INVITE, once.
    Reject {
        /// The status.
        status: u16,
        /// Why (RFC 3326).
        reason: Reason,
        /// Extra headers (`Retry-After`).
        headers: &'static [(&'static str, &'static str)],
    },
    /// A BYE (after the answer) or what ends an unanswered call.
    Hangup {
        /// The Reason header.
        reason: Reason,
    },
    /// The answer to a request inside the call.
    Respond {
        /// Its server transaction.
        tx: TxId,
        /// The status.
        status: u16,
        /// An SDP body.
        sdp: Option<String>,
    },
    /// A re-INVITE with our SDP (hold, resume).
    Reinvite {
        /// Our offer.
        sdp: String,
    },
}

/// A media command for the call's leg (the engine's API, as data).
#[derive(Debug)]
pub enum MediaCommand {
    /// Opens the leg.
    Open(LegParams),
    /// Plays a source; `PlayFinished` names `play`.
    Play {
        /// The leg.
        session: SessionId,
        /// Its number.
        play: PlayId,
        /// What to play.
        source: Source,
    },
    /// Plays the music on hold (the shell finds it: the data dir's or a tune).
    PlayMusic {
        /// The leg.
        session: SessionId,
        /// Its number.
        play: PlayId,
    },
    /// Stops what plays.
    Stop(SessionId),
    /// Sends keys as RFC 4733 events.
    SendDigits {
        /// The leg.
        session: SessionId,
        /// The keys.
        digits: String,
        /// Each held this long.
        duration_ms: u32,
        /// With this gap.
        interval_ms: u32,
    },
    /// Starts recording both directions (stereo) to `path`.
    RecordStart {
        /// The leg.
        session: SessionId,
        /// The WAV file.
        path: PathBuf,
    },
    /// Stops the recording.
    RecordStop(SessionId),
    /// Turns voice activity detection on or off.
    Vad {
        /// The leg.
        session: SessionId,
        /// On or off.
        on: bool,
    },
    /// Where the peer's RTP goes.
    SetRemote {
        /// The leg.
        session: SessionId,
        /// The address.
        remote: SocketAddr,
    },
    /// Whether the peer should hear us.
    SendRtp {
        /// The leg.
        session: SessionId,
        /// Send or not.
        on: bool,
    },
    /// Whether RTP is expected (the RTP timeout waits while it is not).
    ExpectRtp {
        /// The leg.
        session: SessionId,
        /// Expected or not.
        on: bool,
    },
    /// Mutes what the caller says (`inbound`) or hears (`outbound`).
    Mute {
        /// The leg.
        session: SessionId,
        /// What the caller says is not heard.
        inbound: bool,
        /// The caller hears silence.
        outbound: bool,
    },
    /// Closes the leg; `Closed` with its statistics follows.
    Close(SessionId),
    /// Joins two sessions: each one's packets go out of the other.
    Bridge {
        /// One side.
        a: SessionId,
        /// The other.
        b: SessionId,
    },
    /// Ends a session's bridge.
    Unbridge(SessionId),
}

/// Work that takes time, run outside the core.
#[derive(Debug)]
pub enum Job {
    /// Loads a flow of the call's customer.
    LoadFlow {
        /// The flow.
        flow_id: String,
        /// What it is for.
        purpose: FlowPurpose,
    },
    /// Speech for `talk`, made (or found in the cache) and decoded.
    Speak {
        /// The action.
        action: ActionId,
        /// The TTS provider asked for (empty: the default).
        provider: String,
        /// What to say.
        speech: Speech,
        /// Whether the action waits for the end.
        wait: bool,
    },
    /// A prompt for `play`: a URL or a file of the customer's media, decoded.
    Prompt {
        /// The action.
        action: ActionId,
        /// What to play.
        url: String,
    },
    /// An HTTP request (`webhook_send`, `fetch`).
    Http {
        /// The action.
        action: ActionId,
        /// The request.
        request: HttpRequest,
    },
    /// The hangup reason of another call of the customer (`hangup_relay`).
    RelayReason {
        /// That call.
        call_id: String,
    },
    /// Places calls (a `call` action); answered with [`JobResult::Originated`].
    Originate {
        /// The calls.
        request: Box<api::originate::OriginateRequest>,
        /// They end with this call.
        chained: bool,
    },
}

/// Why a flow is loaded.
#[derive(Debug, Clone)]
pub enum FlowPurpose {
    /// The number's flow, for a new call.
    First,
    /// The flow the ended one chains to (`on_complete_flow_id`).
    Chain(Box<Settings>),
    /// A `fetch_flow` action's.
    Action(ActionId),
}

/// The answer to a [`Job`].
#[derive(Debug)]
pub enum JobResult {
    /// A flow: its actions and `on_complete_flow_id`, `None` when it is gone.
    FlowLoaded {
        /// What it was for.
        purpose: FlowPurpose,
        /// The flow, or why it could not be read.
        flow: Result<Option<LoadedFlow>, String>,
    },
    /// A source is ready to play for an action (or could not be made).
    SourceReady {
        /// The action.
        action: ActionId,
        /// The source.
        source: Result<Source, String>,
        /// Whether the action waits for its end.
        wait: bool,
    },
    /// An HTTP answer (status 0: no answer).
    HttpDone {
        /// The action.
        action: ActionId,
        /// The status.
        status: u16,
        /// The body.
        body: String,
    },
    /// Another call's hangup reason (empty when unknown).
    RelayReason(String),
    /// The calls a `call` action placed (their ids), or why none was.
    Originated {
        /// They end with this call.
        chained: bool,
        /// Their ids, or why none was placed.
        result: Result<Vec<String>, String>,
    },
}

/// A flow as the core needs it.
#[derive(Debug, Clone)]
pub struct LoadedFlow {
    /// Its id.
    pub id: String,
    /// Its actions, as stored.
    pub actions: serde_json::Value,
    /// The flow to run after it, if any.
    pub on_complete_flow_id: Option<String>,
}

/// A new call routed to a flow: what the core starts from.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The user agent's handle of the call.
    pub call: CallRef,
    /// The caller's number (the From's user part).
    pub source: String,
    /// The number called (the Request-URI's user part).
    pub destination: String,
    /// Where the call's SIP comes from: the only host besides the SDP's whose
    /// media is taken.
    pub peer: SocketAddr,
    /// The INVITE's SDP offer.
    pub offer: Option<String>,
    /// The owner of the number.
    pub customer_id: String,
    /// The number's flow.
    pub flow_id: String,
    /// The INVITE's Max-Forwards (70 when it had none).
    pub max_forwards: u32,
}

/// A call we place (`POST /calls`, a flow's `call`): what the core starts from.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The call's id, chosen by whoever placed it (it answers with the row).
    pub call_id: String,
    /// The customer.
    pub customer_id: String,
    /// The flow it runs.
    pub flow: api::originate::FlowSource,
    /// The caller ID.
    pub source: api::store::calls::Address,
    /// Who it calls.
    pub destination: api::store::calls::Address,
    /// Hide the caller ID (RFC 3325).
    pub anonymous: bool,
    /// Variables seeded into its flow.
    pub variables: Vec<(String, String)>,
    /// Run the flow while it rings, not once answered.
    pub early_execution: bool,
    /// The call that placed it (a `call` action), or empty.
    pub master_call_id: String,
    /// The groupcall it rings for, or empty.
    pub groupcall_id: String,
    /// How long it may ring before it is given up (no answer).
    pub ring_timeout: std::time::Duration,
}
