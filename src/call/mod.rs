//! The call actor: one task per call owns its SIP dialog (through the user agent), its
//! media leg and its activeflow, and carries out the interpreter's commands
//! (ARCHITECTURE.md, "A call's path").
//!
//! Carried out today: answer (our SDP answer to the offer, or our offer when the
//! INVITE had none), talk (espeak-ng, cached), play (WAV files under the data dir),
//! beep, digits (RFC 4733, SIP INFO and in-band all become `DigitReceived`),
//! digits_send, echo, recording start and stop, hangup. Every other command ends
//! at once with a failure saying it is not available yet, and the flow goes on.

mod in_call;
pub mod media_events;
pub mod tts;
pub mod writer;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flow_runtime::ActionId;
use flow_runtime::interpreter::{
    Activeflow, Command, Event, FlowEvent, Outcome, Output, ReferenceType, Settings,
};
use media_engine::engine::{Engine, LegParams, MediaEvent, OpenedLeg, Source};
use media_engine::tone::Tone;
use media_engine::wav::{PromptCache, RecordLayout};
use sip_stack::dialog::reason::Reason;
use sip_stack::msg::Message;
use sip_stack::sdp::{self, Direction, LocalMedia, SessionDescription};
use sip_stack::ua::driver::UaHandle;
use sip_stack::ua::{CallRef, UaEvent};
use tokio::sync::mpsc;

use api::store::activeflows::Activeflow as ActiveflowRow;
use api::store::calls::{Address, Call, RtpStats};
use api::store::recordings::Recording;

use media_events::MediaEvents;
use writer::Write;

/// What every call actor shares.
pub struct Services {
    /// The SIP user agent.
    pub ua: UaHandle,
    /// The media engine.
    pub media: Arc<Engine>,
    /// Its events, by leg.
    pub media_events: MediaEvents,
    /// The API's state: the database, events (webhooks, WebSocket), timestamps.
    pub state: api::AppState,
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
    /// The OpenAI-compatible speech API for `talk` with provider `openai`.
    pub tts_openai: Option<tts::OpenAi>,
    /// Commits the calls' rows and events in batches.
    pub writer: writer::Writer,
}

/// A call routed to a flow.
pub struct Incoming {
    /// The user agent's handle of the call.
    pub call: CallRef,
    /// The INVITE.
    pub invite: Message,
    /// Its SDP offer.
    pub offer: Option<String>,
    /// The owner of the number.
    pub customer_id: String,
    /// The flow to run.
    pub flow_id: String,
}

/// What the API asks of a call's actor.
#[derive(Debug, Clone)]
enum Control {
    Hangup,
    Flow(api::FlowControl),
    Interrupt(serde_json::Value),
    Media(api::CallMedia),
}

/// Live calls and their activeflows by id, so the API can reach their actors.
#[derive(Clone, Default)]
pub struct Registry {
    live: Arc<std::sync::Mutex<HashMap<String, mpsc::UnboundedSender<Control>>>>,
}

impl Registry {
    /// Registers a call's actor under the call's and its activeflow's ids.
    fn add(&self, call_id: &str, activeflow_id: &str) -> mpsc::UnboundedReceiver<Control> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut m) = self.live.lock() {
            m.insert(call_id.to_owned(), tx.clone());
            m.insert(activeflow_id.to_owned(), tx);
        }
        rx
    }

    /// The call's actor now runs activeflow `to` in place of `from` (a chained
    /// flow): the API reaches it under the new id.
    fn rename(&self, from: &str, to: &str) {
        if let Ok(mut m) = self.live.lock()
            && let Some(tx) = m.remove(from)
        {
            m.insert(to.to_owned(), tx);
        }
    }

    fn remove(&self, ids: &[&str]) {
        if let Ok(mut m) = self.live.lock() {
            for id in ids {
                m.remove(*id);
            }
        }
    }

    /// Hangs up every live call (a shutdown), and waits up to `within` for their
    /// actors to finish, so each call gets its BYE and its final row.
    pub async fn hangup_all(&self, within: Duration) {
        let senders: Vec<mpsc::UnboundedSender<Control>> = self
            .live
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        for tx in &senders {
            let _ = tx.send(Control::Hangup);
        }
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if self.live.lock().map(|m| m.is_empty()).unwrap_or(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn send(&self, id: &str, what: Control) -> bool {
        self.live
            .lock()
            .ok()
            .and_then(|m| m.get(id).map(|tx| tx.send(what).is_ok()))
            .unwrap_or(false)
    }
}

impl api::CallControl for Registry {
    fn hangup(&self, call_id: &str) -> bool {
        self.send(call_id, Control::Hangup)
    }

    fn activeflow(&self, activeflow_id: &str, what: api::FlowControl) -> bool {
        self.send(activeflow_id, Control::Flow(what))
    }

    fn interrupt(&self, call_id: &str, actions: serde_json::Value) -> bool {
        self.send(call_id, Control::Interrupt(actions))
    }

    fn media(&self, call_id: &str, what: api::CallMedia) -> bool {
        self.send(call_id, Control::Media(what))
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
    offer: Option<String>,
    flow: Activeflow,
    leg: Option<OpenedLeg>,
    media_rx: Option<mpsc::UnboundedReceiver<MediaEvent>>,
    pending: HashMap<u64, ActionId>,
    /// Finished speech and prompts, ready to play for an action.
    ready: mpsc::UnboundedSender<(ActionId, Result<Source, String>, bool)>,
    ready_rx: mpsc::UnboundedReceiver<(ActionId, Result<Source, String>, bool)>,
    /// Answers from outside (HTTP responses, loaded flows) for the activeflow.
    replies: mpsc::UnboundedSender<Event>,
    replies_rx: mpsc::UnboundedReceiver<Event>,
    /// The call is still up on the SIP side.
    up: bool,
    recording: bool,
    /// The call's row, as last written.
    row: Call,
    /// Hangups asked for through the API.
    control: mpsc::UnboundedReceiver<Control>,
    /// The activeflow's row, as last written.
    flow_row: ActiveflowRow,
    /// The recording being made, if any.
    recording_row: Option<Recording>,
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
            let reason = Reason {
                protocol: "SIP".into(),
                cause: status,
                text: Some(text),
            };
            let _ = ua
                .with(move |ua, now| ua.reject(now, call, status, Some(&reason), &[]))
                .await;
        }
    };
    let flow = match api::store::owned::get::<api::store::flows::Flow>(
        services.state.store.pool(),
        &incoming.customer_id,
        &incoming.flow_id,
    )
    .await
    {
        Ok(Some(f)) => f,
        Ok(None) => return reject(404, "the number's flow is gone".into()).await,
        Err(e) => return reject(503, format!("the database failed: {e}")).await,
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
                sdp::answer(&offer, &our_media(services.media_ip, 0))
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
    let _ = services
        .ua
        .with(move |ua, now| ua.ring(now, call, 180, None))
        .await;
    let party = |uri: Option<&str>| {
        uri.and_then(|u| sip_stack::msg::Uri::parse(u).ok()?.user.map(str::to_owned))
            .unwrap_or_default()
    };
    let source = party(incoming.invite.from().ok().map(|f| f.uri));
    let destination = party(incoming.invite.request_uri());
    let stamps = &services.state.stamps;
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
        status: "ringing".into(),
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
        tm_create: services.state.stamps.unique(),
        tm_update: None,
        tm_delete: None,
    };
    services
        .writer
        .write(vec![
            Write::call(&row, true, &["created", "ringing"]),
            Write::activeflow(&flow_row, true, &["created"]),
        ])
        .await;
    let (ready, ready_rx) = mpsc::unbounded_channel();
    let (replies, replies_rx) = mpsc::unbounded_channel();
    let mut actor = Actor {
        services: services.clone(),
        call,
        offer: incoming.offer,
        flow: Activeflow::new(settings, actions, Default::default()),
        leg: None,
        media_rx: None,
        pending: HashMap::new(),
        ready,
        ready_rx,
        replies,
        replies_rx,
        up: true,
        recording: false,
        row,
        control,
        flow_row,
        recording_row: None,
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
        .handle(Event::CallStatusChanged("ringing".into()), now_ms());
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
                    actor.end("normal", "local");
                    actor.hangup(Some(Reason::q850(16, "Normal call clearing"))).await;
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
                Output::Event(_) => {}
            }
        }
        false
    }

    /// Starts the flow the ended one chains to, if any; true when one runs now.
    async fn chain(&mut self) -> bool {
        let next_id = uuid::Uuid::now_v7().to_string();
        let Some(settings) = self.flow.chain_settings(next_id) else {
            return false;
        };
        let loaded = api::store::owned::get::<api::store::flows::Flow>(
            self.services.state.store.pool(),
            &self.row.customer_id,
            &settings.flow_id,
        )
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
            tm_create: self.services.state.stamps.unique(),
            tm_update: None,
            ..self.flow_row.clone()
        };
        self.store(Write::activeflow(&self.flow_row, true, &["created"]))
            .await;
        self.flow = Activeflow::new(settings, actions, variables);
        if !self.up {
            self.flow
                .handle(Event::CallStatusChanged("hangup".into()), now_ms());
        }
        self.flow.start(now_ms());
        true
    }

    fn complete(&mut self, action_id: ActionId, outcome: Outcome) {
        self.flow
            .handle(Event::Completed { action_id, outcome }, now_ms());
    }

    async fn execute(&mut self, action_id: ActionId, command: Command) {
        tracing::debug!(call = ?self.call, action = %action_id, ?command, "command");
        let leg = self.leg.map(|l| l.id);
        match command {
            Command::Answer => {
                let outcome = match self.answer().await {
                    Ok(()) => {
                        self.flow
                            .handle(Event::CallStatusChanged("progressing".into()), now_ms());
                        self.row.status = "progressing".into();
                        self.row.tm_progressing = Some(self.services.state.stamps.now());
                        self.row.tm_update = self.row.tm_progressing.clone();
                        self.store(Write::call(&self.row, false, &["progressing"]))
                            .await;
                        Outcome::Done
                    }
                    Err(e) => {
                        tracing::warn!(call = ?self.call, error = %e, "answer failed");
                        Outcome::Failed(e)
                    }
                };
                self.complete(action_id, outcome);
            }
            Command::Talk {
                text,
                language,
                gender,
                provider,
                voice_id,
                wait,
            } => {
                let cache = self.services.data_dir.join("tts");
                let services = self.services.clone();
                let ready = self.ready.clone();
                tokio::spawn(async move {
                    let spoken = match (provider.as_str(), &services.tts_openai) {
                        ("openai", Some(api)) => {
                            tts::speak_openai(api, &cache, &text, &language, &voice_id).await
                        }
                        ("openai", None) => Err(tts::TtsError::Failed(
                            "provider openai is not configured (--tts-openai-url)".into(),
                        )),
                        _ => tts::speak(&cache, &text, &language, &gender).await,
                    };
                    let source = match spoken {
                        Ok(path) => prompt_source(&services, path).await,
                        Err(e) => Err(e.to_string()),
                    };
                    let _ = ready.send((action_id, source, wait));
                });
            }
            Command::Play { urls } => {
                let services = self.services.clone();
                let ready = self.ready.clone();
                tokio::spawn(async move {
                    let source = match urls.first() {
                        Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                            match fetch_prompt(&services.data_dir, url).await {
                                Ok(path) => prompt_source(&services, path).await,
                                Err(e) => Err(e),
                            }
                        }
                        Some(url) => match local_path(&services.data_dir, url) {
                            Some(path) => prompt_source(&services, path).await,
                            None => Err(format!("{url}: not a file under the data dir")),
                        },
                        None => Err("no url to play".into()),
                    };
                    let _ = ready.send((action_id, source, true));
                });
            }
            Command::Beep => {
                self.play(action_id, Ok(Source::Tone(Tone::beep())), true)
                    .await
            }
            Command::Echo { .. } => self.play(action_id, Ok(Source::Echo), false).await,
            Command::StopMedia => {
                if let Some(l) = leg {
                    let _ = self.services.media.stop(l);
                }
            }
            Command::DigitsSend {
                digits,
                duration_ms,
                ..
            } => {
                if let Some(l) = leg {
                    let _ = self
                        .services
                        .media
                        .send_digits(l, &digits, duration_ms as u32);
                }
                self.complete(action_id, Outcome::Done);
            }
            Command::RecordingStart { .. } => {
                if let Some(l) = leg.filter(|_| !self.recording) {
                    let dir = self.services.data_dir.join("recordings");
                    let _ = std::fs::create_dir_all(&dir);
                    let id = uuid::Uuid::now_v7().to_string();
                    let path = dir.join(format!("{id}.wav"));
                    self.recording = self
                        .services
                        .media
                        .record_start(l, &path, RecordLayout::Stereo)
                        .is_ok();
                    if self.recording {
                        self.row.recording_ids.push(id.clone());
                        let stamps = &self.services.state.stamps;
                        let rec = Recording {
                            id,
                            customer_id: self.row.customer_id.clone(),
                            owner_type: String::new(),
                            owner_id: String::new(),
                            reference_type: "call".into(),
                            reference_id: self.row.id.clone(),
                            status: "recording".into(),
                            format: "wav".into(),
                            activeflow_id: self.row.activeflow_id.clone(),
                            on_end_flow_id: String::new(),
                            tm_start: Some(stamps.now()),
                            tm_end: None,
                            tm_create: stamps.unique(),
                            tm_update: None,
                            tm_delete: None,
                            filepath: path.to_string_lossy().into_owned(),
                        };
                        self.store(Write::recording(&rec, "started")).await;
                        self.recording_row = Some(rec);
                    }
                }
            }
            Command::RecordingStop => {
                if let Some(l) = leg.filter(|_| self.recording) {
                    let _ = self.services.media.record_stop(l);
                    self.recording = false;
                }
            }
            Command::Hangup {
                reason,
                reference_id,
            } => {
                // hangup_relay: the reason another call of the customer's ended with.
                let reason = if reason.is_empty() && !reference_id.is_empty() {
                    api::store::owned::get::<Call>(
                        self.services.state.store.pool(),
                        &self.row.customer_id,
                        &reference_id,
                    )
                    .await
                    .ok()
                    .flatten()
                    .map(|c| c.hangup_reason)
                    .unwrap_or_default()
                } else {
                    reason
                };
                self.hang_up_for(&reason).await;
            }
            Command::Http(request) => {
                let replies = self.replies.clone();
                tokio::spawn(async move {
                    let wait = request.wait;
                    let (status, body) = http(&request).await;
                    if wait {
                        let _ = replies.send(Event::HttpResponse {
                            action_id,
                            status,
                            body,
                        });
                    }
                });
            }
            Command::LoadFlow { flow_id } => {
                let loaded = api::store::owned::get::<api::store::flows::Flow>(
                    self.services.state.store.pool(),
                    &self.row.customer_id,
                    &flow_id,
                )
                .await;
                let actions = match loaded {
                    Ok(Some(f)) => Ok(f.actions),
                    Ok(None) => Err(format!("flow {flow_id} not found")),
                    Err(e) => Err(e.to_string()),
                };
                self.flow
                    .handle(Event::FlowLoaded { action_id, actions }, now_ms());
            }
            Command::MohStart { .. } => self.on_media_control(api::CallMedia::Moh(true)).await,
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

    /// Opens the media leg and answers with our SDP.
    async fn answer(&mut self) -> Result<(), String> {
        if self.leg.is_some() {
            return Ok(());
        }
        let local = |port: u16| our_media(self.services.media_ip, port);
        let offer = match &self.offer {
            Some(text) => {
                Some(SessionDescription::parse(text).map_err(|e| format!("bad SDP offer: {e}"))?)
            }
            None => None,
        };
        let stream = match &offer {
            Some(o) => Some(sdp::answer(o, &local(0)).map_err(|e| e.to_string())?.1),
            None => None,
        };
        let opened = self
            .services
            .media
            .open(LegParams {
                remote: stream
                    .as_ref()
                    .map(|s| std::net::SocketAddr::new(s.remote_addr, s.remote_port)),
                audio_pt: stream.as_ref().map_or(0, |s| s.payload_type),
                opus: stream.as_ref().is_some_and(|s| s.codec.name == "opus"),
                rtcp_mux: stream.as_ref().is_some_and(|s| s.rtcp_mux),
                event_pt: stream.as_ref().map_or(Some(101), |s| s.telephone_event),
                rtp_timeout: self.services.rtp_timeout,
                // Tones in the audio are listened for only when the carrier did not
                // offer telephone-event (RFC 4733 section 2.6 prefers events), as
                // Asterisk's dtmf_mode=auto does: the detector costs CPU on every frame.
                inband_dtmf: stream.as_ref().is_none_or(|s| s.telephone_event.is_none()),
                ..LegParams::default()
            })
            .map_err(|e| format!("no media port: {e}"))?;
        self.media_rx = Some(self.services.media_events.register(opened.id));
        self.leg = Some(opened);
        let port = opened.local_rtp.port();
        let body = match &offer {
            Some(o) => sdp::answer(o, &local(port))
                .map_err(|e| e.to_string())?
                .0
                .to_string(),
            None => sdp::offer(&local(port), Direction::SendRecv).to_string(),
        };
        // Later offers (hold, the caller's re-INVITEs) keep the codec the leg uses.
        let mut kept = local(port);
        if let Some(s) = &stream {
            kept.codecs = vec![s.codec];
        }
        self.media_state.local = Some(kept);
        let call = self.call;
        self.services
            .ua
            .with(move |ua, now| ua.answer(now, call, Some(&body)))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// Starts a source for an action; a waiting one completes when it finishes.
    async fn play(&mut self, action_id: ActionId, source: Result<Source, String>, wait: bool) {
        let Some(leg) = self.leg else {
            return self.complete(
                action_id,
                Outcome::Failed("the call is not answered".into()),
            );
        };
        match source.and_then(|s| {
            self.services
                .media
                .play(leg.id, s)
                .map_err(|e| e.to_string())
        }) {
            Ok(play) if wait => {
                self.pending.insert(play, action_id);
            }
            Ok(_) => self.complete(action_id, Outcome::Done),
            Err(e) => {
                tracing::warn!(call = ?self.call, error = %e, "media action failed");
                self.complete(action_id, Outcome::Failed(e));
            }
        }
    }

    async fn on_sip(&mut self, event: UaEvent) {
        match event {
            UaEvent::Dtmf { digit, .. } => self
                .flow
                .handle(Event::DigitReceived(digit.digit), now_ms()),
            UaEvent::Ended { by, cause, .. } => {
                let reason = match cause {
                    sip_stack::ua::EndCause::Bye => "normal",
                    sip_stack::ua::EndCause::Cancelled => "cancel",
                    sip_stack::ua::EndCause::Timeout => "timeout",
                    _ => "failed",
                };
                let side = match by {
                    sip_stack::ua::Side::Remote => "remote",
                    sip_stack::ua::Side::Local => "local",
                };
                if reason == "cancel" {
                    // CANCEL before the answer: canceling, then hangup (cancel).
                    self.row.status = "canceling".into();
                    self.row.tm_update = Some(self.services.state.stamps.now());
                    self.store(Write::call(&self.row, false, &["canceling"]))
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
                    let _ = self
                        .services
                        .media
                        .set_remote(leg.id, std::net::SocketAddr::new(ip, m.port));
                }
            }
            UaEvent::Request { tx, msg, .. } => self.on_request(tx, msg).await,
            _ => {}
        }
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
            MediaEvent::DtmfReceived { key, .. } => {
                self.flow.handle(Event::DigitReceived(key), now_ms())
            }
            MediaEvent::RecordingFinished { .. } => self.recording_ended().await,
            MediaEvent::RtpTimeout { .. } => {
                tracing::info!(call = ?self.call, "no RTP: ending the call");
                self.end("failed", "local");
                self.hangup(Some(Reason::q850(41, "no media"))).await;
                self.flow.handle(Event::Hangup, now_ms());
            }
            _ => {}
        }
    }

    /// Writes the activeflow's row with its current and executed actions.
    /// Commits one row and its events (batched with other calls' writes).
    async fn store(&self, write: Write) {
        self.services.writer.write(vec![write]).await;
    }

    async fn write_flow(&mut self, verbs: &[&'static str]) {
        self.flow_row.current_action = self
            .flow
            .current_action()
            .map_or(serde_json::Value::Object(Default::default()), |a| {
                a.to_json()
            });
        self.flow_row.executed_actions =
            serde_json::Value::Array(self.flow.executed_actions().map(|a| a.to_json()).collect());
        self.flow_row.tm_update = Some(self.services.state.stamps.now());
        self.store(Write::activeflow(&self.flow_row, false, verbs))
            .await;
    }

    /// A recording's file is complete: its row says so.
    async fn recording_ended(&mut self) {
        self.recording = false;
        if let Some(mut rec) = self.recording_row.take() {
            rec.status = "ended".into();
            rec.tm_end = Some(self.services.state.stamps.now());
            self.store(Write::recording(&rec, "finished")).await;
        }
    }

    /// Notes why the call ends (the first reason found wins).
    fn end(&mut self, reason: &str, by: &str) {
        if self.row.hangup_reason.is_empty() {
            self.row.hangup_reason = reason.to_owned();
            self.row.hangup_by = by.to_owned();
        }
    }

    /// Ends the call for a flow's `hangup` reason: before the answer, the INVITE
    /// gets the status that says it (busy 486, noanswer 480, timeout 408, failed 503,
    /// anything else 480); after it, a BYE with the Q.850 cause (RFC 3326).
    async fn hang_up_for(&mut self, reason: &str) {
        let reason = match reason {
            "normal" | "failed" | "busy" | "cancel" | "timeout" | "noanswer" | "dialout"
            | "amd" => reason,
            _ => "normal",
        };
        self.end(reason, "local");
        if self.leg.is_some() {
            let (cause, text) = match reason {
                "busy" => (17, "User busy"),
                "noanswer" => (19, "No answer from user"),
                "failed" => (41, "Temporary failure"),
                _ => (16, "Normal call clearing"),
            };
            return self.hangup(Some(Reason::q850(cause, text))).await;
        }
        if !self.up {
            return;
        }
        self.up = false;
        let status = match reason {
            "busy" => 486,
            "timeout" => 408,
            "failed" => 503,
            _ => 480,
        };
        let why = Reason {
            protocol: "SIP".into(),
            cause: status,
            text: Some(reason.to_owned()),
        };
        let call = self.call;
        let _ = self
            .services
            .ua
            .with(move |ua, now| ua.reject(now, call, status, Some(&why), &[]))
            .await;
    }

    async fn hangup(&mut self, reason: Option<Reason>) {
        if !self.up {
            return;
        }
        self.up = false;
        if self.row.status == "progressing" {
            // Our BYE is on its way: terminating until the call is gone.
            self.row.status = "terminating".into();
            self.row.tm_update = Some(self.services.state.stamps.now());
            self.store(Write::call(&self.row, false, &["terminating"]))
                .await;
        }
        let call = self.call;
        let _ = self
            .services
            .ua
            .with(move |ua, now| ua.hangup(now, call, reason.as_ref()))
            .await;
    }

    /// After the activeflow: the call and the media leg end, and the row says how.
    async fn finish(mut self) {
        self.end("normal", "local");
        self.hangup(Some(Reason::q850(16, "Normal call clearing")))
            .await;
        if let Some(leg) = self.leg {
            if self.recording {
                let _ = self.services.media.record_stop(leg.id);
            }
            let _ = self.services.media.close(leg.id);
            // The leg's last statistics come with its Closed event.
            let deadline = tokio::time::sleep(Duration::from_secs(2));
            tokio::pin!(deadline);
            while let Some(rx) = self.media_rx.as_mut() {
                tokio::select! {
                    event = rx.recv() => match event {
                        Some(MediaEvent::RecordingFinished { .. }) => self.recording_ended().await,
                        Some(MediaEvent::Closed { stats, .. }) => {
                            self.row.rtp_stats = Some(RtpStats {
                                packets_sent: stats.packets_sent,
                                packets_received: stats.packets_received,
                                packets_lost: stats.lost,
                                jitter_ms: stats.jitter_ms,
                                rtt_ms: stats.rtt_ms,
                            });
                            break;
                        }
                        Some(_) => {}
                        None => break,
                    },
                    () = &mut deadline => break,
                }
            }
        }
        let now = self.services.state.stamps.now();
        self.row.status = "hangup".into();
        self.row.tm_hangup = Some(now.clone());
        self.row.tm_update = Some(now);
        self.store(Write::call(&self.row, false, &["hungup"])).await;
        self.services
            .registry
            .remove(&[&self.row.id, &self.flow_row.id]);
    }
}

/// Our side of a call's SDP: G.711 for carriers, Opus (coded at 8 kHz) for
/// softphones that offer it, 20 ms packets, RTP at `port` of `addr`.
fn our_media(addr: IpAddr, port: u16) -> LocalMedia {
    LocalMedia {
        addr,
        port,
        codecs: vec![sdp::PCMU, sdp::PCMA, sdp::OPUS],
        ptime: 20,
        session_id: now_ms(),
        session_version: 1,
    }
}

/// A path under the data dir for a play URL (`file://...`, or a relative path);
/// `None` for anything that leaves the data dir or is a network URL.
fn local_path(data_dir: &std::path::Path, url: &str) -> Option<PathBuf> {
    let rel = url.strip_prefix("file://").unwrap_or(url);
    if rel.contains("://") || rel.split(['/', '\\']).any(|p| p == "..") {
        return None;
    }
    let path = std::path::Path::new(rel);
    let full = if path.is_absolute() {
        path.to_owned()
    } else {
        data_dir.join(path)
    };
    full.starts_with(data_dir).then_some(full)
}

/// Makes an HTTP request for `webhook_send` or `fetch` (10 s timeout); the status is 0
/// when it could not be made.
async fn http(req: &flow_runtime::interpreter::HttpRequest) -> (u16, String) {
    let Ok(client) = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    else {
        return (0, String::new());
    };
    let method = reqwest::Method::from_bytes(req.method.to_ascii_uppercase().as_bytes())
        .unwrap_or(reqwest::Method::POST);
    let mut builder = client.request(method, &req.url);
    if !req.body.is_empty() {
        builder = builder
            .header(reqwest::header::CONTENT_TYPE, &req.content_type)
            .body(req.body.clone());
    }
    match builder.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap_or_default())
        }
        Err(e) => {
            tracing::info!(url = %req.url, error = %e, "{} failed", req.purpose);
            (0, String::new())
        }
    }
}

/// Downloads a prompt from an HTTP(S) URL into the data dir's cache (once per URL).
async fn fetch_prompt(data_dir: &std::path::Path, url: &str) -> Result<PathBuf, String> {
    use sha2::Digest;
    let dir = data_dir.join("cache");
    let path = dir.join(format!(
        "{}.wav",
        hex::encode(&sha2::Sha256::digest(url.as_bytes())[..16])
    ));
    if tokio::fs::metadata(&path).await.is_ok() {
        return Ok(path);
    }
    let resp = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("{url}: HTTP {}", resp.status()));
    }
    let bytes = resp.bytes().await.map_err(|e| format!("{url}: {e}"))?;
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| e.to_string())?;
    let partial = path.with_extension("partial");
    tokio::fs::write(&partial, &bytes)
        .await
        .map_err(|e| e.to_string())?;
    tokio::fs::rename(&partial, &path)
        .await
        .map_err(|e| e.to_string())?;
    Ok(path)
}

/// A prompt at the leg's rate (8 kHz), converted once and cached.
async fn prompt_source(services: &Arc<Services>, path: PathBuf) -> Result<Source, String> {
    let services = services.clone();
    tokio::task::spawn_blocking(move || services.prompts.get_at(&path, 8000))
        .await
        .map_err(|e| e.to_string())?
        .map(|prompt| Source::Prompt { prompt, times: 1 })
        .map_err(|e| e.to_string())
}
