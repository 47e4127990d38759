//! The tokio shell around one [`CallCore`]: it feeds the core the call's SIP
//! events, media events, job answers, API requests and timer expiries, and carries
//! out what the core asks (SIP through the user agent, media through the engine,
//! rows through the writer, jobs as tasks). It decides nothing.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use media_engine::engine::MediaEvent;
use sip_stack::ua::UaEvent;
use tokio::sync::{mpsc, oneshot};

use std::collections::HashMap;

use sip_stack::ua::CallRef;

use super::core::{
    CallCore, CalleeCommand, CoreConfig, Incoming, Input, LegId, MediaCommand, Output, SipCommand,
};
use super::{Services, media_done, tell_ua};

/// The wall clock, in ms since the epoch, for the flow interpreter.
pub(super) fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What every call core is set up with, from the services.
pub(super) fn core_config(services: &Services) -> CoreConfig {
    CoreConfig {
        media_ip: services.media_ip,
        rtp_timeout: services.rtp_timeout,
        data_dir: services.data_dir.clone(),
    }
}

/// Runs an incoming call to its end. `events` carries the user agent's events for
/// it (and for the legs it dials, which `events_tx` routes there).
pub async fn run(
    services: Arc<Services>,
    incoming: Incoming,
    events: mpsc::UnboundedReceiver<UaEvent>,
    events_tx: mpsc::WeakUnboundedSender<UaEvent>,
) {
    let core = CallCore::new(
        core_config(&services),
        services.stamps.clone(),
        incoming,
        Instant::now(),
        wall_ms(),
    );
    run_core(services, core, events, events_tx, None, None, None).await;
}

/// Runs a call we place to its end; `ready` fires once its first row is committed
/// and its INVITE is on its way (or has failed). `permit` counts it against its
/// customer's outbound limit until it ends.
pub(super) async fn run_outgoing(
    services: Arc<Services>,
    core: CallCore,
    permit: super::limit::Permit,
    ready: oneshot::Sender<()>,
    watch: Option<Watch>,
) {
    let (events_tx, events) = mpsc::unbounded_channel();
    // The task keeps its own sender: each INVITE it sends (one per failover) routes
    // its dialog here from a fresh upgrade of the weak one.
    let keep = Held {
        _events: events_tx.clone(),
        _permit: permit,
    };
    run_core(
        services,
        core,
        events,
        events_tx.downgrade(),
        Some(keep),
        Some(ready),
        watch,
    )
    .await;
}

/// Who hears when a placed call answers and when it ends (its groupcall).
pub(super) type Watch = mpsc::UnboundedSender<super::groupcall::core::GroupInput>;

/// What a placed call's task holds until it ends.
struct Held {
    _events: mpsc::UnboundedSender<UaEvent>,
    _permit: super::limit::Permit,
}

/// The shell's loop: feeds the core until it is finished.
async fn run_core(
    services: Arc<Services>,
    mut core: CallCore,
    events: mpsc::UnboundedReceiver<UaEvent>,
    events_tx: mpsc::WeakUnboundedSender<UaEvent>,
    held: Option<Held>,
    mut ready: Option<oneshot::Sender<()>>,
    watch: Option<Watch>,
) {
    let mut answer_told = false;
    let customer_id = core.row().customer_id.clone();
    let span = tracing::Span::current();
    span.record("call_id", core.call_id());
    span.record("activeflow_id", core.activeflow_id());
    let mut control = services.registry.add(core.call_id(), core.activeflow_id());
    let (inputs, mut inputs_rx) = mpsc::unbounded_channel::<Input>();
    let (media_tx, mut media_rx) = mpsc::unbounded_channel::<MediaEvent>();
    let mut shell = Shell {
        services: &services,
        customer_id: &customer_id,
        inputs,
        media_tx,
        events_tx,
        legs: HashMap::new(),
        permits: HashMap::new(),
        streams: Vec::new(),
        external_media: HashMap::new(),
        amd: None,
    };
    let mut events = Some(events);
    let mut gone = false;
    loop {
        while let Some(output) = core.poll_output() {
            shell.carry_out(&mut core, output).await;
        }
        if let Some(watch) = &watch
            && !answer_told
            && core.row().tm_progressing.is_some()
        {
            answer_told = true;
            let answered = super::groupcall::core::GroupInput::Answered(core.call_id().to_owned());
            if watch.send(answered).is_err() {
                tracing::debug!("the groupcall ended before its call answered");
            }
        }
        if let Some(ready) = ready.take() {
            // The rows so far are committed before whoever placed the call hears.
            services.writer.write(Vec::new()).await;
            if ready.send(()).is_err() {
                tracing::debug!("whoever placed the call stopped waiting");
            }
        }
        if !core.is_up() && !gone {
            // Hung up: the API no longer reaches it as a call (its row may lag by a
            // batch); a chained flow still answers under its activeflow id.
            services.registry.remove(&[core.call_id()]);
            gone = true;
        }
        if core.is_finished() {
            break;
        }
        let wake = core.poll_timeout();
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = recv_open(&mut events) => match event {
                Some(e) => {
                    let input = shell.sip_input(e);
                    core.handle(Instant::now(), input);
                }
                None => core.handle(Instant::now(), Input::SipGone),
            },
            Some(event) = media_rx.recv() => {
                shell.tell_streams(core.media_session(), &event);
                core.handle(Instant::now(), Input::Media(event));
            }
            Some(input) = inputs_rx.recv() => core.handle(Instant::now(), input),
            Some(request) = control.recv() => match request {
                super::Control::MediaStream(attach) => shell.attach_stream(core.media_session(), attach),
                other => core.handle(Instant::now(), Input::Control(other)),
            },
            () = sleep => core.handle_timeout(Instant::now()),
        }
    }
    let row = core.row();
    if core.packets_refused() > 0 {
        metrics::counter!("voipbin_rtp_packets_refused_total").increment(core.packets_refused());
    }
    if !row.hangup_reason.is_empty() {
        // For operators: calls ended, by reason and side, and whether answered.
        metrics::counter!(
            "voipbin_calls_total",
            "hangup_reason" => row.hangup_reason.clone(),
            "hangup_by" => row.hangup_by.clone(),
            "answered" => if row.tm_progressing.is_some() { "true" } else { "false" },
        )
        .increment(1);
    }
    services
        .registry
        .remove(&[core.call_id(), core.activeflow_id()]);
    if let Some(watch) = watch {
        let ended = super::groupcall::core::GroupInput::Ended(core.call_id().to_owned());
        if watch.send(ended).is_err() {
            tracing::debug!("the groupcall ended before its call");
        }
    }
    drop(held);
}

/// What the shell carries outputs out with.
struct Shell<'a> {
    services: &'a Arc<Services>,
    customer_id: &'a str,
    /// Answers that come later (jobs, a failed answer) go back to the core here.
    inputs: mpsc::UnboundedSender<Input>,
    /// Where the engine's events for the call's sessions go.
    media_tx: mpsc::UnboundedSender<MediaEvent>,
    /// The sender of the call's SIP events, for the legs it dials.
    events_tx: mpsc::WeakUnboundedSender<UaEvent>,
    /// The dialled legs' dialogs.
    legs: HashMap<CallRef, LegId>,
    /// The dialled legs counted against the customer's outbound limit.
    permits: HashMap<LegId, super::limit::Permit>,
    /// The call's media streams, told of its caller's keys and speech.
    streams: Vec<mpsc::UnboundedSender<super::media_stream::Signal>>,
    /// The call's external media, by id, to stop them.
    external_media: HashMap<String, oneshot::Sender<()>>,
    /// The answering machine detection running (dropping it stops it).
    amd: Option<super::amd::Running>,
}

impl Shell<'_> {
    /// Where a leg this call opens reports: straight to this call's task, from the
    /// media worker.
    fn media_target(&self) -> media_engine::engine::EventTarget {
        let tx = self.media_tx.clone();
        Box::new(move |event| {
            if tx.send(event).is_err() {
                // The call's task has ended; what its leg reports now (its closing
                // statistics) has no one to read it.
                tracing::trace!("a media event after its call ended");
            }
        })
    }

    /// Gives a media stream the caller's session (none before the call has
    /// media), and keeps it to tell of the caller's keys and speech.
    fn attach_stream(
        &mut self,
        session: Option<media_engine::engine::SessionId>,
        attach: super::media_stream::Attach,
    ) {
        if session.is_some() {
            self.streams.push(attach.signals);
        }
        if attach.reply.send(session).is_err() {
            tracing::debug!("a media stream stopped waiting for the call");
        }
    }

    /// Tells the media streams what the caller did; a stream that ended is
    /// forgotten.
    fn tell_streams(
        &mut self,
        caller: Option<media_engine::engine::SessionId>,
        event: &MediaEvent,
    ) {
        use super::media_stream::Signal;
        if self.streams.is_empty() || Some(event.session()) != caller {
            return;
        }
        let signal = match event {
            MediaEvent::DtmfReceived { key, .. } => Signal::Dtmf(*key),
            MediaEvent::SpeechStarted { .. } => Signal::Speech(true),
            MediaEvent::SpeechEnded { .. } => Signal::Speech(false),
            _ => return,
        };
        self.streams.retain(|s| s.send(signal).is_ok());
    }

    async fn carry_out(&mut self, core: &mut CallCore, output: Output) {
        match output {
            Output::Sip(command) => match core.dialog() {
                Some(call) => self.sip(call, command),
                None => tracing::debug!(?command, "a SIP command before the call was dialled"),
            },
            Output::Dial(dial) => {
                let result = self.dial(&dial).await;
                core.handle(Instant::now(), Input::LegDialed(result));
            }
            Output::HangupCalls(ids) => self.services.registry.hangup_calls(ids, "chained"),
            Output::Media(command) => self.media(core, command),
            Output::Write(write) => self.services.writer.submit(vec![write]),
            Output::LastWrite(write) => self.services.writer.write(vec![write]).await,
            Output::Job(job) => {
                if matches!(job, super::core::Job::Http { .. }) {
                    // What the flow sends out (webhook_send, fetch) may make its
                    // receiver read the API at once: the call's rows so far are
                    // committed first.
                    self.services.writer.write(Vec::new()).await;
                }
                super::jobs::spawn(self.services, self.customer_id, job, &self.inputs)
            }
            Output::Renamed { from, to } => {
                self.services.registry.rename(&from, &to);
                tracing::Span::current().record("activeflow_id", to.as_str());
            }
            Output::Callee { leg, command } => self.callee(core, leg, command).await,
            Output::ExternalMedia(command) => self.external_media(command),
            Output::Amd { session, config } => {
                self.amd = Some(super::amd::start(
                    &self.services.media,
                    session,
                    config,
                    self.inputs.clone(),
                ));
            }
        }
    }

    /// Starts external media (its streams are told of the caller's keys and
    /// speech like any other), or stops them.
    fn external_media(&mut self, command: super::core::ExternalMediaCommand) {
        use super::core::ExternalMediaCommand;
        match command {
            ExternalMediaCommand::Start {
                id,
                session,
                options,
            } => {
                let running = super::external_media::start(
                    self.services,
                    id.clone(),
                    session,
                    *options,
                    self.inputs.clone(),
                );
                self.streams.push(running.signals);
                self.external_media.insert(id, running.stop);
            }
            ExternalMediaCommand::Stop(ids) => {
                for id in ids {
                    if let Some(stop) = self.external_media.remove(&id)
                        && stop.send(()).is_err()
                    {
                        tracing::debug!(external_media_id = %id, "it had ended already");
                    }
                }
            }
        }
    }

    /// A SIP event as the core's input: the caller's, or a dialled leg's.
    fn sip_input(&mut self, event: UaEvent) -> Input {
        let leg = crate::sip::call_of(&event).and_then(|c| self.legs.get(&c).copied());
        match leg {
            Some(leg) => {
                if let UaEvent::Ended { call, .. } = &event {
                    self.legs.remove(call);
                    self.permits.remove(&leg);
                }
                Input::CalleeSip { leg, event }
            }
            None => Input::Sip(event),
        }
    }

    /// Carries out a command for a dialled leg.
    async fn callee(&mut self, core: &mut CallCore, leg: LegId, command: CalleeCommand) {
        match command {
            CalleeCommand::Open(params) => {
                let result = self
                    .services
                    .media
                    .open_to(params, self.media_target())
                    .map_err(|e| e.to_string());
                core.handle(Instant::now(), Input::CalleeOpened { leg, result });
            }
            CalleeCommand::Dial(dial) => {
                if !self.permits.contains_key(&leg) {
                    match self.services.outbound_limit.acquire(self.customer_id, 1) {
                        Ok(mut p) => {
                            if let Some(permit) = p.pop() {
                                self.permits.insert(leg, permit);
                            }
                        }
                        Err(limit) => {
                            let result = Err(super::core::DialError::Limit(limit));
                            return core.handle(Instant::now(), Input::Dialed { leg, result });
                        }
                    }
                }
                let result = self.dial(&dial).await;
                if result.is_err() {
                    self.permits.remove(&leg);
                }
                if let Ok(call) = result {
                    self.legs.insert(call, leg);
                }
                core.handle(Instant::now(), Input::Dialed { leg, result });
            }
            CalleeCommand::Sip(command) => match self.dialog_of(leg) {
                Some(call) => self.sip(call, command),
                None => tracing::debug!(%leg, "a SIP command for a leg not dialled"),
            },
        }
    }

    fn dialog_of(&self, leg: LegId) -> Option<CallRef> {
        self.legs.iter().find(|(_, l)| **l == leg).map(|(c, _)| *c)
    }

    /// Resolves the destination and sends the INVITE; the leg's events are routed
    /// to this call from the user agent's thread, before any can arrive.
    async fn dial(&self, dial: &super::core::Dial) -> Result<CallRef, super::core::DialError> {
        use super::core::DialError;
        let mut carriers = self
            .services
            .routing
            .dialroutes(self.customer_id, &dial.destination.target);
        // Carriers that stopped answering the probes go last.
        self.services.health.order(&mut carriers);
        let ctx = super::dial::DialContext {
            carriers: &carriers,
            dns: &self.services.dns,
            policy: self.services.outbound.policy(),
            local: self.services.sip_local,
        };
        let spec = super::dial::resolve(&ctx, dial).await?;
        tracing::info!(target = %spec.target, next_hop = %spec.next_hop, "dialling");
        let routes = self.services.sip_routes.clone();
        let events = self
            .events_tx
            .upgrade()
            .ok_or_else(|| DialError::Sip("the SIP user agent has stopped".into()))?;
        self.services
            .ua
            .with(move |ua, now| {
                let call = ua.call(now, spec)?;
                routes.insert(call, events);
                Ok(call)
            })
            .await
            .map_err(|e| DialError::Sip(e.to_string()))?
            .map_err(|e: sip_stack::ua::UaError| DialError::Sip(e.to_string()))
    }

    /// Carries out a SIP command on dialog `call` (the caller's or a dialled leg's).
    fn sip(&self, call: CallRef, command: SipCommand) {
        let ua = &self.services.ua;
        match command {
            SipCommand::Ring(status) => {
                tell_ua(ua, "ring", move |ua, now| ua.ring(now, call, status, None))
            }
            SipCommand::EarlyMedia { sdp } => tell_ua(ua, "183", move |ua, now| {
                ua.ring(now, call, 183, Some(&sdp))
            }),
            SipCommand::Answer { sdp } => {
                let inputs = self.inputs.clone();
                let span = tracing::Span::current();
                let posted = ua.post(move |ua, now| {
                    if let Err(e) = ua.answer(now, call, Some(&sdp)) {
                        span.in_scope(|| tracing::debug!(error = %e, "the answer was refused"));
                        // The call's task reads this unless it has ended.
                        inputs.send(Input::AnswerFailed(e.to_string())).ok();
                    }
                });
                if posted.is_err() && self.inputs.send(Input::SipGone).is_err() {
                    tracing::debug!("the user agent and the call stopped together");
                }
            }
            SipCommand::Reject {
                status,
                reason,
                headers,
            } => tell_ua(ua, "reject", move |ua, now| {
                ua.reject(now, call, status, Some(&reason), headers)
            }),
            SipCommand::Hangup { reason } => tell_ua(ua, "hangup", move |ua, now| {
                ua.hangup(now, call, Some(&reason))
            }),
            SipCommand::Respond { tx, status, sdp } => tell_ua(ua, "respond", move |ua, now| {
                let body = sdp.as_ref().map(|b| ("application/sdp", b.as_bytes()));
                ua.respond(now, tx, status, &[], body)
            }),
            SipCommand::Reinvite { sdp } => tell_ua(ua, "re-INVITE", move |ua, now| {
                ua.request(
                    now,
                    call,
                    sip_stack::msg::Method::Invite,
                    &[],
                    Some(("application/sdp", sdp.as_bytes())),
                )
                .map(|_| ())
            }),
        }
    }

    fn media(&mut self, core: &mut CallCore, command: MediaCommand) {
        let media = &self.services.media;
        match command {
            MediaCommand::Open(params) => {
                let opened = media
                    .open_to(params, self.media_target())
                    .map_err(|e| e.to_string());
                core.handle(Instant::now(), Input::LegOpened(opened));
            }
            MediaCommand::Play {
                session,
                play,
                source,
            } => media_done("play", media.play_as(session, play, source)),
            MediaCommand::PlayMusic { session, play } => {
                let music = super::jobs::music(&self.services.prompts, &self.services.data_dir);
                let source = media_engine::engine::Source::Prompt {
                    prompt: music,
                    times: 0,
                };
                media_done("play music", media.play_as(session, play, source));
            }
            MediaCommand::Stop(session) => media_done("stop", media.stop(session)),
            MediaCommand::SendDigits {
                session,
                digits,
                duration_ms,
                interval_ms,
            } => {
                if let Err(e) = media.send_digits(session, &digits, duration_ms, interval_ms) {
                    // The action waits for DigitsSent: it fails with the cause now.
                    let failed = media_engine::engine::MediaEvent::DigitsSent {
                        session,
                        error: Some(e.to_string()),
                    };
                    core.handle(Instant::now(), Input::Media(failed));
                }
            }
            MediaCommand::RecordStart { session, path } => {
                let started = path
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|()| {
                        media.record_start(session, &path, media_engine::wav::RecordLayout::Stereo)
                    });
                if let Err(e) = started {
                    core.handle(Instant::now(), Input::RecordingFailed(e.to_string()));
                }
            }
            MediaCommand::RecordStop(session) => {
                media_done("record_stop", media.record_stop(session))
            }
            MediaCommand::Vad { session, on } => media_done("vad", media.vad(session, on)),
            MediaCommand::SetRemote { session, remote } => {
                media_done("set_remote", media.set_remote(session, remote))
            }
            MediaCommand::SendRtp { session, on } => {
                media_done("send_rtp", media.send_rtp(session, on))
            }
            MediaCommand::ExpectRtp { session, on } => {
                media_done("expect_rtp", media.expect_rtp(session, on))
            }
            MediaCommand::Mute {
                session,
                inbound,
                outbound,
            } => media_done("mute", media.mute(session, inbound, outbound)),
            MediaCommand::Close(session) => media_done("close", media.close(session)),
            MediaCommand::Bridge { a, b } => media_done("bridge", media.bridge(a, b)),
            MediaCommand::Unbridge(session) => media_done("unbridge", media.unbridge(session)),
        }
    }
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
