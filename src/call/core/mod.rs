//! The call core: one call's logic, sans-IO, in the shape of sip-stack's transaction
//! layer. [`CallCore::handle`] takes what happened at `now`, [`CallCore::handle_timeout`]
//! takes the time when [`CallCore::poll_timeout`] said so, and
//! [`CallCore::poll_output`] gives what to do, in order, until it gives `None`.
//! The tokio shell ([`super::shell`]) does the IO; the tests here run calls on a
//! fake clock with no sockets.
//!
//! # Phases
//! `Loading` (the number's flow is being read) -> `Running` (the activeflow runs,
//! its commands become SIP and media commands) -> `Chaining` (a flow ended and its
//! `on_complete_flow_id` is being read; back to `Running`) -> `Closing` (the call
//! is hung up and the leg closed; waiting up to 2 s for the leg's last statistics)
//! -> `Finished` (the last row is out).
//!
//! # Time
//! One clock: the `now` passed in. The flow interpreter counts wall-clock
//! milliseconds; the core maps them onto `now` from the moment it was made.

mod amd;
mod call_action;
mod commands;
mod connect;
mod end;
mod external_media;
mod flow_text;
pub mod io;
mod media;
mod outgoing;
mod recording;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flow_runtime::interpreter::{
    Activeflow, Event, FlowEvent, Outcome, Output as FlowOutput, ReferenceType, Settings,
};
use flow_runtime::{ActionId, CallStatus};
use sip_stack::ua::{CallRef, UaEvent};

use api::call_store::{Verb, Write};
use api::clock::Stamps;
use api::store::activeflows::Activeflow as ActiveflowRow;
use api::store::calls::{Address, Call};
use api::store::json::JsonText;

use super::reason::{HangupBy, HangupReason};
use super::registry::Control;
pub use io::{
    AmdReport, CalleeCommand, Dial, DialError, ExternalMediaCommand, ExternalMediaOptions,
    ExternalMediaStatus, FlowPurpose, Incoming, Input, Job, JobResult, LegId, LoadedFlow,
    MediaCommand, Outgoing, Output, PlayId, RoomId, SipCommand,
};
use media::Leg;
use recording::Recording;

/// What every call core is set up with.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// The address put in our SDP.
    pub media_ip: IpAddr,
    /// No RTP for this long ends the call.
    pub rtp_timeout: Duration,
    /// The data dir: recordings go to its `recordings/`, and messages leave its
    /// path out.
    pub data_dir: PathBuf,
}

/// Where the call is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A call we place: its leg is being dialled (its flow waits for the answer,
    /// unless it runs early).
    Dialing,
    /// The number's flow is being read.
    Loading,
    /// The activeflow runs.
    Running,
    /// A chained flow is being read.
    Chaining,
    /// Hung up; waiting for the leg's last statistics until the deadline.
    Closing(Instant),
    /// The last row is out.
    Finished,
}

/// What the caller's media session is being opened for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answering {
    /// The flow's `answer`: the 200 goes out once it is open.
    Action(ActionId),
    /// A `connect` with the caller unanswered: the 200 waits for the callee's
    /// (answer on bridge), a 183 may carry early media before it.
    Connect,
    /// A call we place: the session carries our offer, the INVITE follows.
    Dial,
}

/// The wall clock the flow interpreter counts in, mapped onto the core's `now`.
#[derive(Debug, Clone, Copy)]
struct FlowClock {
    at: Instant,
    wall_ms: u64,
}

impl FlowClock {
    fn ms(&self, now: Instant) -> u64 {
        self.wall_ms + now.saturating_duration_since(self.at).as_millis() as u64
    }

    fn instant(&self, ms: u64) -> Instant {
        self.at + Duration::from_millis(ms.saturating_sub(self.wall_ms))
    }
}

/// One call: its leg, its activeflow and its rows.
pub struct CallCore {
    config: CoreConfig,
    stamps: Arc<Stamps>,
    clock: FlowClock,
    now: Instant,
    phase: Phase,
    incoming: Incoming,
    /// The call's one leg (a dialog and its media session).
    leg: Leg,
    flow: Option<Activeflow>,
    /// Waiting plays, by number, and the action each completes.
    pending: HashMap<PlayId, ActionId>,
    next_play: u64,
    /// The digits_send action waiting for its keys to have gone out.
    sending_digits: Option<ActionId>,
    /// What waits for the caller's leg to open.
    answering: Option<Answering>,
    /// The caller's SDP answer, made when its session opened for a `connect` and
    /// sent in the 183 (early media) or the 200 (when the callee answers).
    early_sdp: Option<String>,
    /// The `connect` in progress and its dialled legs.
    connect: Option<connect::Connect>,
    /// The last dialled leg's number.
    next_leg: u32,
    /// A call we place: its dialling, until answered.
    outgoing: Option<outgoing::Outbound>,
    /// Calls a `call` action placed with `chained`: hung up when this one ends.
    chained: Vec<String>,
    /// The caller's media session has reported its close.
    caller_closed: bool,
    /// The external media running or connecting, and the action each completes
    /// once connected.
    external_media: HashMap<String, Option<ActionId>>,
    /// The answering machine detection running, if any.
    amd: Option<amd::AmdRun>,
    /// The `fetch_flow` or `hangup_relay` waiting for a job, if any.
    recording: Option<Recording>,
    status: CallStatus,
    /// The call is still up on the SIP side.
    up: bool,
    row: Call,
    flow_row: ActiveflowRow,
    /// The flow's actions as `flow_row` shows them, written out once each.
    flow_text: flow_text::FlowText,
    /// RTP packets from strangers the leg dropped.
    packets_refused: u64,
    outputs: VecDeque<Output>,
}

impl CallCore {
    /// A new call, at `now`, whose wall clock reads `wall_ms`: asks for the number's
    /// flow first.
    pub fn new(
        config: CoreConfig,
        stamps: Arc<Stamps>,
        incoming: Incoming,
        now: Instant,
        wall_ms: u64,
    ) -> Self {
        let call_id = uuid::Uuid::now_v7().to_string();
        let activeflow_id = uuid::Uuid::now_v7().to_string();
        let row = Call {
            id: call_id.clone(),
            customer_id: incoming.customer_id.clone(),
            flow_id: incoming.flow_id.clone(),
            activeflow_id: activeflow_id.clone(),
            kind: "flow".into(),
            source: Address {
                kind: "tel".into(),
                target: incoming.source.clone(),
                target_name: String::new(),
            },
            destination: Address {
                kind: "tel".into(),
                target: incoming.destination.clone(),
                target_name: String::new(),
            },
            status: CallStatus::Ringing.as_str().into(),
            direction: "incoming".into(),
            metadata: serde_json::Value::Object(Default::default()),
            ..Call::default()
        };
        let flow_row = ActiveflowRow {
            id: activeflow_id,
            customer_id: incoming.customer_id.clone(),
            flow_id: incoming.flow_id.clone(),
            status: "running".into(),
            reference_type: "call".into(),
            reference_id: call_id,
            reference_activeflow_id: String::new(),
            on_complete_flow_id: String::new(),
            webhook_uri: String::new(),
            webhook_method: String::new(),
            current_action: JsonText::empty_object(),
            forward_action_id: String::new(),
            executed_actions: JsonText::empty_array(),
            tm_create: String::new(),
            tm_update: None,
            tm_delete: None,
        };
        let mut core = Self {
            leg: Leg::new(Some(incoming.call), incoming.peer, incoming.offer.clone()),
            config,
            stamps,
            clock: FlowClock { at: now, wall_ms },
            now,
            phase: Phase::Loading,
            incoming,
            flow: None,
            pending: HashMap::new(),
            next_play: 1,
            sending_digits: None,
            answering: None,
            early_sdp: None,
            connect: None,
            next_leg: 0,
            outgoing: None,
            chained: Vec::new(),
            caller_closed: false,
            external_media: HashMap::new(),
            amd: None,
            recording: None,
            status: CallStatus::Ringing,
            up: true,
            row,
            flow_row,
            flow_text: Default::default(),
            packets_refused: 0,
            outputs: VecDeque::new(),
        };
        core.outputs.push_back(Output::Job(Job::LoadFlow {
            flow_id: core.incoming.flow_id.clone(),
            purpose: FlowPurpose::First,
        }));
        core
    }

    /// The call's id (the call row's).
    pub fn call_id(&self) -> &str {
        &self.row.id
    }

    /// The running activeflow's id.
    pub fn activeflow_id(&self) -> &str {
        &self.flow_row.id
    }

    /// The user agent's handle of the call's dialog (a call we place has none
    /// until its INVITE is out).
    pub fn dialog(&self) -> Option<CallRef> {
        self.leg.call
    }

    /// The caller's media session, once it has one (for a media stream).
    pub fn media_session(&self) -> Option<media_engine::engine::SessionId> {
        self.leg.media.as_ref().map(|m| m.id)
    }

    /// Whether the call is still up on the SIP side (false from our BYE, or the
    /// caller's, on: it can no longer be held, muted or played to).
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// The call's row as it stands.
    pub fn row(&self) -> &Call {
        &self.row
    }

    /// Whether the call is over: nothing more comes out after the outputs queued.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    /// Takes what happened at `now`.
    pub fn handle(&mut self, now: Instant, input: Input) {
        self.now = now;
        match input {
            Input::Sip(event) => self.on_sip(event),
            Input::AnswerFailed(why) => {
                tracing::warn!(%why, "the answer was not sent: the call is gone");
                self.end(HangupReason::Failed, HangupBy::Local);
                self.up = false;
                self.flow_event(Event::Hangup);
            }
            Input::SipGone => self.on_hangup(),
            Input::RecordingFailed(why) => self.recording_failed(&why),
            Input::Media(event) => self.on_media(event),
            Input::LegOpened(result) => self.on_leg_opened(result),
            Input::JobDone(result) => self.on_job(result),
            Input::Control(control) => self.on_control(control),
            Input::CalleeOpened { leg, result } => self.callee_opened(leg, result),
            Input::Dialed { leg, result } => self.dialed(leg, result),
            Input::CalleeSip { leg, event } => self.on_callee_sip(leg, event),
            Input::LegDialed(result) => self.leg_dialed(result),
            Input::ExternalMedia { id, status } => self.external_media_status(id, status),
            Input::Amd(report) => self.amd_report(report),
        }
        self.drive();
    }

    /// Takes the time when [`CallCore::poll_timeout`]'s moment has come.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if let Phase::Closing(deadline) = self.phase
            && now >= deadline
        {
            tracing::debug!("the leg's statistics did not come in time");
            self.finished();
            return;
        }
        if let Some(flow) = self.flow.as_mut() {
            flow.handle_timeout(self.clock.ms(now));
        }
        self.recording_timeout(now);
        self.connect_timeout(now);
        self.outgoing_timeout(now);
        self.drive();
    }

    /// When to call [`CallCore::handle_timeout`] next, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if let Phase::Closing(deadline) = self.phase {
            return Some(deadline);
        }
        if self.phase == Phase::Finished {
            return None;
        }
        let flow = self
            .flow
            .as_ref()
            .and_then(|f| f.poll_timeout())
            .map(|ms| self.clock.instant(ms));
        let recording = self.recording.as_ref().and_then(|r| r.deadline());
        let ring = self.connect.as_ref().and_then(|c| c.deadline());
        let dialing = self.outgoing_deadline();
        [flow, recording, ring, dialing].into_iter().flatten().min()
    }

    /// What to do next; call until `None` after every `handle`.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Runs the activeflow's outputs until it waits, chaining or closing the call
    /// when it ends.
    fn drive(&mut self) {
        while self.phase == Phase::Running {
            let Some(output) = self.flow.as_mut().and_then(|f| f.poll()) else {
                return;
            };
            match output {
                FlowOutput::Command { action_id, command } => self.execute(action_id, command),
                FlowOutput::Event(FlowEvent::Ended { reason }) => {
                    tracing::info!(reason = reason.name(), "activeflow ended");
                    self.flow_row.status = "ended".into();
                    self.write_flow(&[Verb::Updated, Verb::Deleted]);
                    self.chain();
                }
                FlowOutput::Event(FlowEvent::ActionStarted { .. }) => {
                    self.write_flow(&[Verb::Updated])
                }
                FlowOutput::Event(FlowEvent::Warning { message }) => self.action_failed(&message),
                FlowOutput::Event(_) => {}
            }
        }
    }

    /// Tells the running activeflow something at the core's `now`.
    fn flow_event(&mut self, event: Event) {
        let ms = self.clock.ms(self.now);
        if let Some(flow) = self.flow.as_mut() {
            flow.handle(event, ms);
        }
    }

    /// An action is done (or failed, with a message free of the data dir's path).
    fn complete(&mut self, action_id: ActionId, outcome: Outcome) {
        let outcome = match outcome {
            Outcome::Failed(why) => Outcome::Failed(without_data_dir(&why, &self.config.data_dir)),
            other => other,
        };
        self.flow_event(Event::Completed { action_id, outcome });
    }

    /// Announces `activeflow_action_failed` with the message saying which and why.
    fn action_failed(&mut self, message: &str) {
        tracing::warn!(%message, "action failed");
        let data = serde_json::json!({
            "activeflow_id": self.flow_row.id,
            "reference_type": "call",
            "reference_id": self.row.id,
            "message": message,
        });
        self.outputs.push_back(Output::Write(Write::notice(
            &self.row.customer_id,
            "activeflow",
            &self.flow_row.id,
            Verb::ActionFailed,
            data,
        )));
    }

    /// Moves the call to `status` now and announces `call_<verb>`; `stamp` sets the
    /// status's own time column (`tm_progressing`) to the same moment.
    fn set_status(&mut self, status: CallStatus, verb: Verb, stamp: fn(&mut Call, &str)) {
        let now = self.stamps.now();
        self.status = status;
        self.row.status = status.as_str().into();
        stamp(&mut self.row, &now);
        self.row.tm_update = Some(now);
        self.outputs
            .push_back(Output::Write(Write::call(&self.row, false, &[verb])));
    }

    /// Writes the activeflow's row with its current and executed actions.
    fn write_flow(&mut self, verbs: &[Verb]) {
        if let Some(flow) = self.flow.as_ref() {
            self.flow_text.update(flow, &mut self.flow_row);
        }
        self.flow_row.tm_update = Some(self.stamps.now());
        self.outputs.push_back(Output::Write(Write::activeflow(
            &self.flow_row,
            false,
            verbs,
        )));
    }

    fn on_sip(&mut self, event: UaEvent) {
        if self.dialing_out() {
            return self.outgoing_sip(event);
        }
        match event {
            UaEvent::Dtmf { digit, .. } => self.key_pressed(digit.digit),
            UaEvent::Ended { by, cause, .. } => {
                let reason = match cause {
                    sip_stack::ua::EndCause::Bye => HangupReason::Normal,
                    sip_stack::ua::EndCause::Cancelled => HangupReason::Cancel,
                    sip_stack::ua::EndCause::Timeout => HangupReason::Timeout,
                    _ => HangupReason::Failed,
                };
                let side = match by {
                    sip_stack::ua::Side::Remote => HangupBy::Remote,
                    sip_stack::ua::Side::Local => HangupBy::Local,
                };
                if reason == HangupReason::Cancel && self.status == CallStatus::Ringing {
                    // CANCEL before the answer: canceling, then hangup (cancel).
                    self.set_status(CallStatus::Canceling, Verb::Canceling, |_, _| {});
                }
                self.end(reason, side);
                self.on_hangup();
            }
            UaEvent::Acked {
                sdp: Some(answer), ..
            } => self.late_answer(&answer),
            UaEvent::Request { tx, msg, .. } => self.on_request(tx, &msg),
            _ => {}
        }
    }

    /// A key the caller pressed (RFC 4733, SIP INFO or in-band): the flow hears it,
    /// and a recording set to end on it ends.
    fn key_pressed(&mut self, key: char) {
        self.recording_heard_key(key);
        self.flow_event(Event::DigitReceived(key));
    }

    /// The call is gone on the SIP side: the running flow hears it once (a chained
    /// flow runs on).
    fn on_hangup(&mut self) {
        if !self.up {
            return;
        }
        self.up = false;
        self.connect_caller_gone();
        self.flow_event(Event::Hangup);
        self.gone_before_flow();
    }

    /// The call is gone before its flow runs: an incoming call has no row yet
    /// (nothing ran); one we placed closes with its row.
    fn gone_before_flow(&mut self) {
        match self.phase {
            Phase::Loading | Phase::Dialing if self.outgoing.is_some() => self.close(),
            Phase::Loading => self.phase = Phase::Finished,
            _ => {}
        }
    }

    fn on_media(&mut self, event: media_engine::engine::MediaEvent) {
        use media_engine::engine::MediaEvent;
        let session = event.session();
        if self
            .connect
            .as_ref()
            .is_some_and(|c| c.owns_session(session))
        {
            return self.on_callee_media(event);
        }
        match event {
            MediaEvent::PlayFinished { play, .. } => {
                if self.music_ended(play) {
                    return;
                }
                if let Some(action_id) = self.pending.remove(&play) {
                    self.complete(action_id, Outcome::Done);
                    self.start_music_if_idle();
                }
            }
            MediaEvent::DtmfReceived { key, .. } => self.key_pressed(key),
            MediaEvent::SpeechStarted { .. } => self.recording_heard_speech(true),
            MediaEvent::SpeechEnded { .. } => self.recording_heard_speech(false),
            MediaEvent::RecordingFinished { .. } => self.recording_ended(),
            MediaEvent::DigitsSent { error, .. } => {
                if let Some(action_id) = self.sending_digits.take() {
                    self.complete(action_id, error.map_or(Outcome::Done, Outcome::Failed));
                }
            }
            MediaEvent::RtpTimeout { .. } => {
                tracing::info!("no RTP: ending the call");
                self.end(HangupReason::Failed, HangupBy::Local);
                self.hangup(HangupReason::Failed);
                self.flow_event(Event::Hangup);
            }
            MediaEvent::Closed { stats, .. } => self.leg_closed(stats),
            _ => {}
        }
    }

    fn on_control(&mut self, control: Control) {
        match control {
            // The shell answers these with the session (`media_session`).
            Control::MediaStream(_) => {}
            Control::Hangup => {
                self.end(HangupReason::Normal, HangupBy::Local);
                if self.dialing_out() {
                    // CANCEL: the call is over when its INVITE's answer comes.
                    self.hangup(HangupReason::Normal);
                    return self.outgoing_hangup();
                }
                self.hangup(HangupReason::Normal);
                self.flow_event(Event::Hangup);
                self.gone_before_flow();
            }
            Control::Flow(api::FlowControl::Stop) => self.flow_event(Event::Stop),
            Control::Flow(api::FlowControl::Execute) => self.flow_event(Event::Execute),
            Control::Interrupt(json) => match flow_runtime::parse_flow(&json) {
                Ok(parsed) => self.flow_event(Event::Interrupt(parsed.actions)),
                Err(_) => tracing::warn!("an interrupt that does not parse"),
            },
            Control::Media(what) => self.on_media_control(what),
        }
    }

    fn on_job(&mut self, result: JobResult) {
        match result {
            JobResult::FlowLoaded { purpose, flow } => match purpose {
                FlowPurpose::First if self.outgoing.is_some() => self.outgoing_flow(flow),
                FlowPurpose::First => self.first_flow(flow),
                FlowPurpose::Chain(settings) => self.chained_flow(*settings, flow),
                FlowPurpose::Action(action_id) => {
                    let actions = match flow {
                        Ok(Some(f)) => Ok(f.actions),
                        Ok(None) => Err("the flow was not found".to_owned()),
                        Err(e) => Err(e),
                    };
                    self.flow_event(Event::FlowLoaded { action_id, actions });
                }
            },
            JobResult::SourceReady {
                action,
                source,
                wait,
            } => self.play(action, source, wait),
            JobResult::HttpDone {
                action,
                status,
                body,
            } => self.flow_event(Event::HttpResponse {
                action_id: action,
                status,
                body,
            }),
            JobResult::Originated { chained, result } => self.originated(chained, result),
            JobResult::RelayReason(reason) => {
                self.hang_up_for(HangupReason::from_flow(&reason));
            }
        }
    }

    /// The number's flow is read: the call rings and its flow starts, or it is
    /// refused (404 gone, 503 unreadable, 500 does not load, 488 no common codec).
    fn first_flow(&mut self, flow: Result<Option<LoadedFlow>, String>) {
        if self.phase != Phase::Loading || !self.up {
            return;
        }
        let flow = match flow {
            Ok(Some(f)) => f,
            Ok(None) => return self.refuse_setup(404, "the number's flow is gone".into()),
            Err(e) => return self.refuse_setup(503, e),
        };
        let actions = match flow_runtime::parse_flow(&flow.actions) {
            Ok(parsed) => parsed.actions,
            Err(findings) => {
                let first = findings
                    .first()
                    .map(|f| f.message.clone())
                    .unwrap_or_default();
                return self.refuse_setup(500, format!("the flow does not load: {first}"));
            }
        };
        // An offer we could never answer (RFC 3264 section 6: no common codec, or
        // no usable audio stream) gets 488 at once rather than after the actions.
        if let Err(why) = self.leg.negotiate(self.config.media_ip) {
            return self.refuse_setup(488, why);
        }
        self.outputs.push_back(Output::Sip(SipCommand::Ring(180)));
        self.row.tm_ringing = Some(self.stamps.now());
        self.row.tm_create = self.stamps.unique();
        self.outputs.push_back(Output::Write(Write::call(
            &self.row,
            true,
            &[Verb::Created, Verb::Ringing],
        )));
        let variables = vec![
            (
                "voipbin.call.source.target".into(),
                self.incoming.source.clone(),
            ),
            (
                "voipbin.call.destination.target".into(),
                self.incoming.destination.clone(),
            ),
        ];
        self.start_flow(&flow, actions, variables);
    }

    /// The call's first activeflow starts: its row is written, `variables` are
    /// set, and it runs.
    fn start_flow(
        &mut self,
        flow: &LoadedFlow,
        actions: Vec<flow_runtime::model::action::Action>,
        variables: Vec<(String, String)>,
    ) {
        let settings = Settings {
            id: self.flow_row.id.clone(),
            flow_id: flow.id.clone(),
            reference_type: Some(ReferenceType::Call),
            reference_id: self.row.id.clone(),
            reference_activeflow_id: String::new(),
            on_complete_flow_id: flow.on_complete_flow_id.clone(),
            complete_count: 0,
        };
        self.flow_row.on_complete_flow_id = flow.on_complete_flow_id.clone().unwrap_or_default();
        self.flow_row.tm_create = self.stamps.unique();
        self.outputs.push_back(Output::Write(Write::activeflow(
            &self.flow_row,
            true,
            &[Verb::Created],
        )));
        let mut activeflow = Activeflow::new(settings, actions, Default::default());
        let ms = self.clock.ms(self.now);
        activeflow.handle(Event::Variables(variables), ms);
        activeflow.handle(Event::CallStatusChanged(self.status), ms);
        activeflow.start(ms);
        self.flow = Some(activeflow);
        self.flow_text.reset();
        self.phase = Phase::Running;
    }

    /// Refuses the call before it has a flow: no rows, the INVITE gets `status`.
    fn refuse_setup(&mut self, status: u16, why: String) {
        tracing::info!(status, %why, "call refused");
        self.refuse(status, &why, &[]);
        self.phase = Phase::Finished;
    }

    /// Asks for the flow the ended one chains to, or closes the call.
    fn chain(&mut self) {
        let next_id = uuid::Uuid::now_v7().to_string();
        let Some(settings) = self.flow.as_ref().and_then(|f| f.chain_settings(next_id)) else {
            return self.close();
        };
        self.phase = Phase::Chaining;
        self.outputs.push_back(Output::Job(Job::LoadFlow {
            flow_id: settings.flow_id.clone(),
            purpose: FlowPurpose::Chain(Box::new(settings)),
        }));
    }

    /// The chained flow is read: it runs for the same call, with the variables.
    fn chained_flow(&mut self, settings: Settings, flow: Result<Option<LoadedFlow>, String>) {
        let actions = match flow.map(|f| f.map(|f| flow_runtime::parse_flow(&f.actions))) {
            Ok(Some(Ok(parsed))) => parsed.actions,
            other => {
                tracing::warn!(flow = %settings.flow_id, ok = other.is_ok(), "the chained flow does not load");
                return self.close();
            }
        };
        let variables = self
            .flow
            .as_ref()
            .map(|f| f.variables().clone())
            .unwrap_or_default();
        self.outputs.push_back(Output::Renamed {
            from: self.flow_row.id.clone(),
            to: settings.id.clone(),
        });
        self.flow_row = ActiveflowRow {
            id: settings.id.clone(),
            flow_id: settings.flow_id.clone(),
            status: "running".into(),
            reference_activeflow_id: settings.reference_activeflow_id.clone(),
            on_complete_flow_id: String::new(),
            current_action: JsonText::empty_object(),
            executed_actions: JsonText::empty_array(),
            tm_create: self.stamps.unique(),
            tm_update: None,
            ..self.flow_row.clone()
        };
        self.outputs.push_back(Output::Write(Write::activeflow(
            &self.flow_row,
            true,
            &[Verb::Created],
        )));
        let ms = self.clock.ms(self.now);
        let mut flow = Activeflow::new(settings, actions, variables);
        if !self.up {
            flow.handle(Event::CallStatusChanged(CallStatus::Hangup), ms);
        }
        flow.start(ms);
        self.flow = Some(flow);
        self.flow_text.reset();
        self.phase = Phase::Running;
    }
}

/// `why` with the data dir's path cut out (`media/...`, not `/srv/voipbin/media/...`).
/// The server canonicalizes the data dir once at start, so every path made from it
/// is spelled the same way.
pub(crate) fn without_data_dir(why: &str, data_dir: &std::path::Path) -> String {
    let dir = data_dir.to_string_lossy();
    let dir = dir.trim_end_matches('/');
    if dir.is_empty() {
        return why.to_owned();
    }
    why.replace(&format!("{dir}/"), "")
        .replace(dir, "<data dir>")
}
