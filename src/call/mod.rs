//! The call actor: one task per call owns its SIP dialog (through the user agent), its
//! media leg and its activeflow, and carries out the interpreter's commands
//! (ARCHITECTURE.md, "A call's path").
//!
//! Here: the actor's state and its event loop (SIP, media, the API, timers), the
//! activeflow's chaining and rows. Beside it: `commands` (each interpreter command:
//! answer, talk, play, record, digits, HTTP, flows), `in_call` (mute, hold, music on
//! hold, the caller's re-INVITEs), `hangup` (how a call ends and its last writes),
//! `registry` (live calls for the API), `writer` (group-committed rows and events),
//! `tts` (espeak-ng, OpenAI-compatible speech), `media_events` (the engine's events
//! by leg). A command a later issue brings ends with `activeflow_action_failed`
//! saying it is not available in this version, and the flow goes on.

mod commands;
mod hangup;
mod in_call;
pub mod media_events;
mod prompts;
pub mod reason;
mod recording;
mod registry;
pub mod tts;
pub mod writer;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flow_runtime::interpreter::{
    Activeflow, Event, FlowEvent, Outcome, Output, ReferenceType, Settings,
};
use flow_runtime::{ActionId, CallStatus};
use media_engine::engine::{Engine, MediaEvent, OpenedLeg, Source};
use media_engine::wav::PromptCache;
use sip_stack::dialog::reason::Reason;
use sip_stack::msg::Message;
use sip_stack::sdp::{self, SessionDescription};
use sip_stack::ua::driver::UaHandle;
use sip_stack::ua::{CallRef, UaEvent};
use tokio::sync::mpsc;

use api::store::activeflows::Activeflow as ActiveflowRow;
use api::store::calls::{Address, Call};
use api::store::recordings::Recording;

use api::call_store::Write;
use media_events::MediaEvents;
use reason::{HangupBy, HangupReason};
use registry::Control;
pub use registry::Registry;

/// What every call actor shares.
pub struct Services {
    /// The SIP user agent.
    pub ua: UaHandle,
    /// The media engine.
    pub media: Arc<Engine>,
    /// Its events, by leg.
    pub media_events: MediaEvents,
    /// The storage port: flows, rows and their events.
    pub store: Arc<dyn api::call_store::CallStore>,
    /// Timestamps for rows.
    pub stamps: Arc<api::clock::Stamps>,
    /// Live calls, for `POST /calls/{id}/hangup`.
    pub registry: Registry,
    /// Recordings and the TTS cache live here.
    pub data_dir: PathBuf,
    /// Decoded prompts, shared across calls.
    pub prompts: PromptCache,
    /// The address put in our SDP.
    pub media_ip: IpAddr,
    /// No RTP for this long ends the call.
    pub rtp_timeout: Duration,
    /// The TTS providers for `talk` (espeak-ng, and what is configured).
    pub tts: Arc<tts::Providers>,
    /// Commits the calls' rows and events in batches.
    pub writer: writer::Writer,
    /// Outbound HTTP (fetch, webhook_send, play URLs, TTS), refusing inside addresses.
    pub outbound: api::outbound::Outbound,
}

/// A call routed to a flow.
pub struct Incoming {
    /// The user agent's handle of the call.
    pub call: CallRef,
    /// The INVITE.
    pub invite: Message,
    /// Where it came from: the only host besides the SDP's whose media is taken.
    pub source: std::net::SocketAddr,
    /// Its SDP offer.
    pub offer: Option<String>,
    /// The owner of the number.
    pub customer_id: String,
    /// The flow to run.
    pub flow_id: String,
}

/// Queues `f` for the user agent without waiting for it; a failure (the call is
/// gone on the SIP side, say a CANCEL crossed our answer) is logged in the call's
/// span with `what` was asked.
pub(crate) fn tell_ua<E: std::fmt::Display>(
    ua: &UaHandle,
    what: &'static str,
    f: impl FnOnce(&mut sip_stack::ua::UserAgent, std::time::Instant) -> Result<(), E> + Send + 'static,
) {
    let span = tracing::Span::current();
    let posted = ua.post(move |ua, now| {
        if let Err(e) = f(ua, now) {
            span.in_scope(|| tracing::debug!(%what, error = %e, "the SIP side did not take it"));
        }
    });
    if posted.is_err() {
        tracing::warn!(%what, "the SIP user agent has stopped");
    }
}

/// Logs a media command that failed: the leg is gone (its worker stopped, or the
/// engine is shutting down); the call notices its end by the leg's events.
pub(crate) fn media_done(what: &'static str, result: std::io::Result<()>) {
    if let Err(e) = result {
        tracing::warn!(%what, error = %e, "a media command failed");
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One call's actor state.
struct Actor {
    services: Arc<Services>,
    call: CallRef,
    /// Where the call's SIP comes from.
    peer: std::net::SocketAddr,
    offer: Option<String>,
    flow: Activeflow,
    leg: Option<OpenedLeg>,
    media_rx: Option<mpsc::UnboundedReceiver<MediaEvent>>,
    pending: HashMap<u64, ActionId>,
    /// The digits_send action waiting for its keys to have gone out.
    sending_digits: Option<ActionId>,
    /// Finished speech and prompts, ready to play for an action.
    ready: mpsc::UnboundedSender<(ActionId, Result<Source, String>, bool)>,
    ready_rx: mpsc::UnboundedReceiver<(ActionId, Result<Source, String>, bool)>,
    /// Answers from outside (HTTP responses, loaded flows) for the activeflow.
    replies: mpsc::UnboundedSender<Event>,
    replies_rx: mpsc::UnboundedReceiver<Event>,
    /// The call is still up on the SIP side.
    up: bool,
    recording: bool,
    /// Where the call is in its life (the row's `status`).
    status: CallStatus,
    /// The call's row, as last written.
    row: Call,
    /// Hangups asked for through the API.
    control: mpsc::UnboundedReceiver<Control>,
    /// The activeflow's row, as last written.
    flow_row: ActiveflowRow,
    /// The recording being made, if any.
    recording_row: Option<Recording>,
    /// When the running recording stops by itself.
    recording_limits: recording::RecordingLimits,
    /// Mute, hold and music on hold.
    media_state: in_call::MediaState,
}

/// Runs a call to its end. `events` carries the user agent's events for it.
pub async fn run(
    services: Arc<Services>,
    incoming: Incoming,
    events: mpsc::UnboundedReceiver<UaEvent>,
) {
    let mut events = Some(events);
    let call = incoming.call;
    let reject = |status: u16, text: String| {
        let ua = services.ua.clone();
        async move {
            tracing::info!(status, %text, "call refused");
            let reason = Reason {
                protocol: "SIP".into(),
                cause: status,
                text: Some(text),
            };
            tell_ua(&ua, "reject", move |ua, now| {
                ua.reject(now, call, status, Some(&reason), &[])
            });
        }
    };
    let flow = match services
        .store
        .flow(&incoming.customer_id, &incoming.flow_id)
        .await
    {
        Ok(Some(f)) => f,
        Ok(None) => return reject(404, "the number's flow is gone".into()).await,
        Err(e) => return reject(503, e.to_string()).await,
    };
    let actions = match flow_runtime::parse_flow(&flow.actions) {
        Ok(parsed) => parsed.actions,
        Err(findings) => {
            let first = findings
                .first()
                .map(|f| f.message.clone())
                .unwrap_or_default();
            return reject(500, format!("the flow does not load: {first}")).await;
        }
    };
    // An offer we could never answer (RFC 3264 section 6: no common codec, or no
    // usable audio stream) gets 488 at once rather than after the flow's actions.
    if let Some(text) = &incoming.offer {
        let checked = SessionDescription::parse(text)
            .map_err(|e| format!("the SDP offer does not parse: {e}"))
            .and_then(|offer| {
                sdp::answer(&offer, &commands::our_media(services.media_ip, 0))
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            });
        if let Err(why) = checked {
            return reject(488, why).await;
        }
    }
    let settings = Settings {
        id: uuid::Uuid::now_v7().to_string(),
        flow_id: flow.id.clone(),
        reference_type: Some(ReferenceType::Call),
        reference_id: uuid::Uuid::now_v7().to_string(),
        reference_activeflow_id: String::new(),
        on_complete_flow_id: flow.on_complete_flow_id.clone(),
        complete_count: 0,
    };
    let span = tracing::Span::current();
    span.record("call_id", settings.reference_id.as_str());
    span.record("activeflow_id", settings.id.as_str());
    tell_ua(&services.ua, "180 Ringing", move |ua, now| {
        ua.ring(now, call, 180, None)
    });
    let party = |uri: Option<&str>| {
        uri.and_then(|u| sip_stack::msg::Uri::parse(u).ok()?.user.map(str::to_owned))
            .unwrap_or_default()
    };
    let source = party(incoming.invite.from().ok().map(|f| f.uri));
    let destination = party(incoming.invite.request_uri());
    let stamps = &services.stamps;
    let row = Call {
        id: settings.reference_id.clone(),
        customer_id: incoming.customer_id.clone(),
        flow_id: flow.id.clone(),
        activeflow_id: settings.id.clone(),
        kind: "flow".into(),
        master_call_id: String::new(),
        chained_call_ids: Vec::new(),
        recording_id: String::new(),
        recording_ids: Vec::new(),
        source: Address {
            kind: "tel".into(),
            target: source.clone(),
            target_name: String::new(),
        },
        destination: Address {
            kind: "tel".into(),
            target: destination.clone(),
            target_name: String::new(),
        },
        status: CallStatus::Ringing.as_str().into(),
        direction: "incoming".into(),
        mute_direction: String::new(),
        hangup_by: String::new(),
        hangup_reason: String::new(),
        rtp_stats: None,
        metadata: serde_json::Value::Object(Default::default()),
        tm_ringing: Some(stamps.now()),
        tm_progressing: None,
        tm_hangup: None,
        tm_create: stamps.unique(),
        tm_update: None,
        tm_delete: None,
    };
    let control = services.registry.add(&row.id, &settings.id);
    let flow_row = ActiveflowRow {
        id: settings.id.clone(),
        customer_id: incoming.customer_id.clone(),
        flow_id: flow.id.clone(),
        status: "running".into(),
        reference_type: "call".into(),
        reference_id: row.id.clone(),
        reference_activeflow_id: String::new(),
        on_complete_flow_id: flow.on_complete_flow_id.clone().unwrap_or_default(),
        webhook_uri: String::new(),
        webhook_method: String::new(),
        current_action: serde_json::Value::Object(Default::default()),
        forward_action_id: String::new(),
        executed_actions: serde_json::Value::Array(Vec::new()),
        tm_create: services.stamps.unique(),
        tm_update: None,
        tm_delete: None,
    };
    services.writer.submit(vec![
        Write::call(&row, true, &["created", "ringing"]),
        Write::activeflow(&flow_row, true, &["created"]),
    ]);
    let (ready, ready_rx) = mpsc::unbounded_channel();
    let (replies, replies_rx) = mpsc::unbounded_channel();
    let mut actor = Actor {
        services: services.clone(),
        call,
        peer: incoming.source,
        offer: incoming.offer,
        flow: Activeflow::new(settings, actions, Default::default()),
        leg: None,
        media_rx: None,
        pending: HashMap::new(),
        sending_digits: None,
        ready,
        ready_rx,
        replies,
        replies_rx,
        up: true,
        recording: false,
        status: CallStatus::Ringing,
        row,
        control,
        flow_row,
        recording_row: None,
        recording_limits: Default::default(),
        media_state: Default::default(),
    };
    actor.flow.handle(
        Event::Variables(vec![
            ("voipbin.call.source.target".into(), source),
            ("voipbin.call.destination.target".into(), destination),
        ]),
        now_ms(),
    );
    actor
        .flow
        .handle(Event::CallStatusChanged(CallStatus::Ringing), now_ms());
    actor.flow.start(now_ms());
    loop {
        if actor.drain().await {
            break;
        }
        let wake = actor.flow.poll_timeout();
        let sleep = async {
            match wake {
                Some(at) => {
                    tokio::time::sleep(Duration::from_millis(at.saturating_sub(now_ms()))).await
                }
                None => std::future::pending().await,
            }
        };
        let recording_deadline = actor.recording_limits.deadline();
        let recording_due = async {
            match recording_deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = recv_open(&mut events) => match event {
                Some(e) => actor.on_sip(e).await,
                None => actor.on_hangup(),
            },
            Some(event) = recv_media(&mut actor.media_rx) => actor.on_media(event).await,
            Some((action, source, wait)) = actor.ready_rx.recv() => actor.play(action, source, wait).await,
            Some(event) = actor.replies_rx.recv() => actor.flow.handle(event, now_ms()),
            Some(control) = actor.control.recv() => match control {
                Control::Hangup => {
                    actor.end(HangupReason::Normal, HangupBy::Local);
                    actor.hangup(HangupReason::Normal).await;
                    actor.flow.handle(Event::Hangup, now_ms());
                }
                Control::Flow(api::FlowControl::Stop) => actor.flow.handle(Event::Stop, now_ms()),
                Control::Flow(api::FlowControl::Execute) => actor.flow.handle(Event::Execute, now_ms()),
                Control::Interrupt(json) => match flow_runtime::parse_flow(&json) {
                    Ok(parsed) => actor.flow.handle(Event::Interrupt(parsed.actions), now_ms()),
                    Err(_) => tracing::warn!(call = ?actor.call, "an interrupt that does not parse"),
                },
                Control::Media(what) => actor.on_media_control(what).await,
            },
            () = sleep => actor.flow.handle_timeout(now_ms()),
            () = recording_due => actor.recording_limit_reached(),
        }
    }
    actor.finish().await;
}

/// The next SIP event; a closed channel ends the call once, then is not polled again.
async fn recv_open(events: &mut Option<mpsc::UnboundedReceiver<UaEvent>>) -> Option<UaEvent> {
    let Some(rx) = events.as_mut() else {
        return std::future::pending().await;
    };
    let event = rx.recv().await;
    if event.is_none() {
        *events = None;
    }
    event
}

async fn recv_media(rx: &mut Option<mpsc::UnboundedReceiver<MediaEvent>>) -> Option<MediaEvent> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl Actor {
    /// Carries out what the activeflow asked; true when it has ended.
    async fn drain(&mut self) -> bool {
        while let Some(output) = self.flow.poll() {
            match output {
                Output::Command { action_id, command } => self.execute(action_id, command).await,
                Output::Event(FlowEvent::Ended { reason }) => {
                    tracing::info!(call = ?self.call, reason = reason.name(), "activeflow ended");
                    self.flow_row.status = "ended".into();
                    self.write_flow(&["updated", "deleted"]).await;
                    // `on_complete_flow_id`: the next flow runs for the same call.
                    return !self.chain().await;
                }
                Output::Event(FlowEvent::ActionStarted { .. }) => {
                    self.write_flow(&["updated"]).await
                }
                Output::Event(FlowEvent::Warning { message }) => {
                    // An action failed and the flow goes on: say so, with why.
                    self.action_failed(&message).await
                }
                Output::Event(_) => {}
            }
        }
        false
    }

    /// Announces `activeflow_action_failed` with the message saying which and why.
    async fn action_failed(&mut self, message: &str) {
        tracing::warn!(call = ?self.call, %message, "action failed");
        let data = serde_json::json!({
            "activeflow_id": self.flow_row.id,
            "reference_type": "call",
            "reference_id": self.row.id,
            "message": message,
        });
        self.store(Write::notice(
            &self.row.customer_id,
            "activeflow",
            &self.flow_row.id,
            "action_failed",
            data,
        ))
        .await;
    }

    /// Starts the flow the ended one chains to, if any; true when one runs now.
    async fn chain(&mut self) -> bool {
        let next_id = uuid::Uuid::now_v7().to_string();
        let Some(settings) = self.flow.chain_settings(next_id) else {
            return false;
        };
        tracing::Span::current().record("activeflow_id", settings.id.as_str());
        let loaded = self
            .services
            .store
            .flow(&self.row.customer_id, &settings.flow_id)
            .await;
        let actions = match loaded.map(|f| f.map(|f| flow_runtime::parse_flow(&f.actions))) {
            Ok(Some(Ok(parsed))) => parsed.actions,
            other => {
                tracing::warn!(call = ?self.call, flow = %settings.flow_id, ok = other.is_ok(), "the chained flow does not load");
                return false;
            }
        };
        let variables = self.flow.variables().clone();
        self.services
            .registry
            .rename(&self.flow_row.id, &settings.id);
        self.flow_row = ActiveflowRow {
            id: settings.id.clone(),
            flow_id: settings.flow_id.clone(),
            status: "running".into(),
            reference_activeflow_id: settings.reference_activeflow_id.clone(),
            on_complete_flow_id: String::new(),
            current_action: serde_json::Value::Object(Default::default()),
            executed_actions: serde_json::Value::Array(Vec::new()),
            tm_create: self.services.stamps.unique(),
            tm_update: None,
            ..self.flow_row.clone()
        };
        self.store(Write::activeflow(&self.flow_row, true, &["created"]))
            .await;
        self.flow = Activeflow::new(settings, actions, variables);
        if !self.up {
            self.flow
                .handle(Event::CallStatusChanged(CallStatus::Hangup), now_ms());
        }
        self.flow.start(now_ms());
        true
    }

    async fn on_sip(&mut self, event: UaEvent) {
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
                if reason == HangupReason::Cancel {
                    // CANCEL before the answer: canceling, then hangup (cancel).
                    self.set_status(CallStatus::Canceling, "canceling", |_, _| {})
                        .await;
                }
                self.end(reason, side);
                self.on_hangup();
            }
            UaEvent::Acked {
                sdp: Some(answer), ..
            } => {
                // A late offer's answer: where to send media.
                if let (Some(leg), Ok(a)) = (self.leg, SessionDescription::parse(&answer))
                    && let Some(m) = a.media.first()
                    && let Some(ip) = a.media_addr(m)
                {
                    media_done(
                        "set_remote",
                        self.services
                            .media
                            .set_remote(leg.id, std::net::SocketAddr::new(ip, m.port)),
                    );
                }
            }
            UaEvent::Request { tx, msg, .. } => self.on_request(tx, msg).await,
            _ => {}
        }
    }

    /// A key the caller pressed (RFC 4733, SIP INFO or in-band): the flow hears it,
    /// and a recording set to end on it ends.
    fn key_pressed(&mut self, key: char) {
        self.recording_heard_key(key);
        self.flow.handle(Event::DigitReceived(key), now_ms());
    }

    /// The call is gone: the running flow hears it once (a chained flow runs on).
    fn on_hangup(&mut self) {
        if !self.up {
            return;
        }
        self.up = false;
        self.flow.handle(Event::Hangup, now_ms());
    }

    async fn on_media(&mut self, event: MediaEvent) {
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
            MediaEvent::RecordingFinished { .. } => self.recording_ended().await,
            MediaEvent::DigitsSent { error, .. } => {
                if let Some(action_id) = self.sending_digits.take() {
                    self.complete(action_id, error.map_or(Outcome::Done, Outcome::Failed));
                }
            }
            MediaEvent::RtpTimeout { .. } => {
                tracing::info!(call = ?self.call, "no RTP: ending the call");
                self.end(HangupReason::Failed, HangupBy::Local);
                self.hangup(HangupReason::Failed).await;
                self.flow.handle(Event::Hangup, now_ms());
            }
            _ => {}
        }
    }

    /// Queues one row and its events for the next commit (batched with other
    /// calls' writes); the call does not wait for it.
    async fn store(&self, write: Write) {
        self.services.writer.submit(vec![write]);
    }

    /// Moves the call to `status` now and announces `call_<verb>`; `stamp` sets the
    /// status's own time column (`tm_progressing`, `tm_hangup`) to the same moment.
    async fn set_status(
        &mut self,
        status: CallStatus,
        verb: &'static str,
        stamp: impl FnOnce(&mut Call, &str),
    ) {
        let now = self.services.stamps.now();
        self.status = status;
        self.row.status = status.as_str().into();
        stamp(&mut self.row, &now);
        self.row.tm_update = Some(now);
        self.store(Write::call(&self.row, false, &[verb])).await;
    }

    /// Writes the activeflow's row with its current and executed actions.
    async fn write_flow(&mut self, verbs: &[&'static str]) {
        self.flow_row.current_action = self
            .flow
            .current_action()
            .map_or(serde_json::Value::Object(Default::default()), |a| {
                a.to_json()
            });
        self.flow_row.executed_actions =
            serde_json::Value::Array(self.flow.executed_actions().map(|a| a.to_json()).collect());
        self.flow_row.tm_update = Some(self.services.stamps.now());
        self.store(Write::activeflow(&self.flow_row, false, verbs))
            .await;
    }

    /// A recording's file is complete: its row says so.
    async fn recording_ended(&mut self) {
        self.recording = false;
        if let Some(mut rec) = self.recording_row.take() {
            rec.status = "ended".into();
            rec.tm_end = Some(self.services.stamps.now());
            self.store(Write::recording(&rec, "finished")).await;
        }
    }
}
