//! `connect` (seed 003): the call dials its destinations at once (a groupcall),
//! the first to answer wins and is bridged to the caller, the others get CANCEL.
//!
//! Each dialled leg is a call of its own in the API (direction `outgoing`, its
//! `master_call_id` the caller's call, listed in the caller's `chained_call_ids`)
//! with its own media session; the engine bridges the two sessions (packets
//! forwarded as they come when the codecs match).
//!
//! What happens around it, as the original's code does it (the seeds are silent):
//! - The caller is answered when the callee answers (answer on bridge), unless the
//!   flow answered before. Until then the caller hears its own ringback (our 180),
//!   or with `early_media` the callee's 183 with SDP is passed on as our 183.
//! - A caller already answered hears a local ringback tone while the callees ring.
//! - The callee hangs up: with `relay_reason` the caller is hung up with its
//!   reason; otherwise the caller's flow goes on with its next action.
//! - The caller hangs up: every dialled leg is hung up (the original's connect
//!   bridge ends when either side leaves).
//! - Nobody answers (busy, declined, no answer within the ring timeout, no
//!   route): with `relay_reason` the caller gets the callee's status (486, 480,
//!   603, with a Reason header, RFC 3326) or, once answered, a BYE with the
//!   matching cause; otherwise the flow goes on.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use flow_runtime::ActionId;
use flow_runtime::interpreter::{ConnectOutcome, Outcome};
use flow_runtime::{CallStatus, interpreter::Event};
use media_engine::engine::{LegParams, OpenedLeg, SessionStats, Source};
use media_engine::tone::Tone;
use sip_stack::dialog::reason::Reason;
use sip_stack::sdp::{self, Direction, SessionDescription};
use sip_stack::ua::{CallRef, EndCause, UaEvent};

use api::call_store::{Verb, Write};
use api::store::calls::{Address, Call, RtpStats};

use super::super::reason::{HangupBy, HangupReason};
use super::io::{CalleeCommand, Dial, DialError, LegId};
use super::media::our_media;
use super::{CallCore, MediaCommand, Output, PlayId, SipCommand};

/// How long destinations ring when the action does not say (the original's
/// default dial timeout).
pub(super) const DEFAULT_RING_TIMEOUT: Duration = Duration::from_secs(60);

/// What the flow's `connect` asked for.
#[derive(Debug, Clone)]
pub(super) struct ConnectRequest {
    /// The caller ID to present (the caller's own number when empty).
    pub source: Option<flow_runtime::model::address::Address>,
    /// Who to ring, all at once.
    pub destinations: Vec<flow_runtime::model::address::Address>,
    /// Pass the callee's early media (183 with SDP) to the caller.
    pub early_media: bool,
    /// The callee's failure or hangup ends the caller with the same reason.
    pub relay_reason: bool,
    /// `yes` hides the caller ID; `auto` hides it when the caller's is hidden.
    pub anonymous: String,
    /// How long to ring (0: [`DEFAULT_RING_TIMEOUT`]).
    pub ring_timeout_ms: u64,
}

/// Where a dialled leg is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CalleeState {
    /// Its media session is being opened.
    Opening,
    /// The INVITE is out, nothing back yet.
    Dialing,
    /// A provisional response came.
    Ringing,
    /// It answered and is bridged to the caller.
    Up,
    /// Over on the SIP side; waiting for its media statistics.
    Ended,
    /// Its last row is out.
    Done,
}

/// One dialled leg.
#[derive(Debug)]
struct Callee {
    id: LegId,
    state: CalleeState,
    /// The INVITE to send once the media session is open.
    dial: Dial,
    dialog: Option<CallRef>,
    media: Option<OpenedLeg>,
    /// Our side of its SDP as last sent.
    local: Option<sip_stack::sdp::LocalMedia>,
    row: Call,
    /// The final status it refused with, when it did.
    refused: Option<u16>,
}

/// A `connect` in progress, and its legs until each one's last row is out.
#[derive(Debug)]
pub(super) struct Connect {
    /// The action, until it completes.
    action: Option<ActionId>,
    request: ConnectRequest,
    deadline: Instant,
    legs: Vec<Callee>,
    /// The leg that answered.
    winner: Option<LegId>,
    /// The leg whose early media the caller hears.
    early: Option<LegId>,
    /// The local ringback playing to an answered caller.
    ringback: Option<PlayId>,
}

impl Connect {
    fn leg_mut(&mut self, id: LegId) -> Option<&mut Callee> {
        self.legs.iter_mut().find(|l| l.id == id)
    }

    /// Whether every leg is over on the SIP side.
    fn all_ended(&self) -> bool {
        self.legs
            .iter()
            .all(|l| matches!(l.state, CalleeState::Ended | CalleeState::Done))
    }

    /// Whether every leg's last row is out.
    pub(super) fn all_done(&self) -> bool {
        self.legs.iter().all(|l| l.state == CalleeState::Done)
    }

    /// When the ring timeout strikes, while nobody has answered.
    pub(super) fn deadline(&self) -> Option<Instant> {
        (self.winner.is_none() && !self.all_ended()).then_some(self.deadline)
    }

    /// Whether `session` is one of the legs' media sessions.
    pub(super) fn owns_session(&self, session: media_engine::engine::SessionId) -> bool {
        self.legs
            .iter()
            .any(|l| l.media.is_some_and(|m| m.id == session))
    }
}

/// Whether a dialled leg's end means its carrier failed, not the callee: no
/// final answer (timer B), 408, a 5xx, or a 6xx but 603 (the callee declined).
fn fails_over(cause: &EndCause) -> bool {
    match cause {
        EndCause::Timeout => true,
        EndCause::Rejected(status) => {
            *status == 408
                || (500..600).contains(status)
                || (600..700).contains(status) && *status != 603
        }
        _ => false,
    }
}

/// What a dialled leg's end says: its hangup reason (the original's names).
fn reason_of(cause: &EndCause, by_us: bool) -> HangupReason {
    match cause {
        EndCause::Bye => HangupReason::Normal,
        EndCause::Rejected(486 | 600 | 603) => HangupReason::Busy,
        EndCause::Rejected(408 | 480 | 487) => HangupReason::NoAnswer,
        EndCause::Cancelled if by_us => HangupReason::NoAnswer,
        EndCause::Cancelled => HangupReason::Cancel,
        EndCause::Timeout => HangupReason::Timeout,
        _ => HangupReason::Failed,
    }
}

impl CallCore {
    /// The flow's `connect`: rings every destination (opening the caller's media
    /// first when the caller is not answered, so early media and the answer can
    /// follow the callee's).
    pub(super) fn connect(&mut self, action_id: ActionId, request: ConnectRequest) {
        if self.connect.as_ref().is_some_and(|c| !c.all_done()) {
            return self.complete(
                action_id,
                Outcome::Failed("a connect is already in progress".into()),
            );
        }
        if !self.up {
            return self.complete(action_id, Outcome::Failed("the call is gone".into()));
        }
        if request.destinations.is_empty() {
            return self.complete(
                action_id,
                Outcome::Failed("connect has no destinations".into()),
            );
        }
        let ring = match request.ring_timeout_ms {
            0 => DEFAULT_RING_TIMEOUT,
            ms => Duration::from_millis(ms),
        };
        self.connect = Some(Connect {
            action: Some(action_id),
            deadline: self.now + ring,
            request,
            legs: Vec::new(),
            winner: None,
            early: None,
            ringback: None,
        });
        if self.leg.media.is_some() {
            return self.dial_all();
        }
        // Answer on bridge: the caller's session opens now, its 200 waits.
        self.open_caller(super::Answering::Connect);
    }

    /// The caller's session is open (for a connect): the destinations are dialled.
    pub(super) fn caller_ready_for_connect(&mut self) {
        if self.connect.is_some() {
            self.dial_all();
        }
    }

    /// The caller's session could not open: the connect fails.
    pub(super) fn connect_failed(&mut self, why: &str) {
        if let Some(mut c) = self.connect.take()
            && let Some(action) = c.action.take()
        {
            self.complete(action, Outcome::Failed(why.to_owned()));
        }
    }

    /// Makes a row and opens a media session for each destination.
    fn dial_all(&mut self) {
        let Some(connect) = self.connect.as_ref() else {
            return;
        };
        let request = connect.request.clone();
        let anonymous = match request.anonymous.as_str() {
            "yes" => true,
            "auto" => self.incoming.source.is_empty() || self.incoming.source == "anonymous",
            _ => false,
        };
        let (caller_id, caller_name) = match &request.source {
            Some(a) if !a.target.is_empty() => (a.target.clone(), a.target_name.clone()),
            _ => (self.incoming.source.clone(), String::new()),
        };
        let codec = self.leg.bridge_codec();
        let mut ids = Vec::new();
        for destination in &request.destinations {
            self.next_leg += 1;
            let id = LegId(self.next_leg);
            let call_id = uuid::Uuid::now_v7().to_string();
            let destination = Address {
                kind: if destination.kind.is_empty() {
                    "tel".into()
                } else {
                    destination.kind.clone()
                },
                target: destination.target.clone(),
                target_name: destination.target_name.clone(),
            };
            let row = Call {
                id: call_id.clone(),
                customer_id: self.row.customer_id.clone(),
                kind: "flow".into(),
                master_call_id: self.row.id.clone(),
                source: Address {
                    kind: "tel".into(),
                    target: caller_id.clone(),
                    target_name: caller_name.clone(),
                },
                destination: destination.clone(),
                status: CallStatus::Dialing.as_str().into(),
                direction: "outgoing".into(),
                metadata: serde_json::Value::Object(Default::default()),
                tm_create: self.stamps.unique(),
                ..Call::default()
            };
            self.outputs.push_back(Output::Write(Write::call(
                &row,
                true,
                &[Verb::Created, Verb::Dialing],
            )));
            ids.push(call_id.clone());
            let dial = Dial {
                destination,
                caller_id: caller_id.clone(),
                caller_name: caller_name.clone(),
                anonymous,
                sdp: String::new(),
                call_id,
                max_forwards: self.incoming.max_forwards.saturating_sub(1),
                attempt: 0,
            };
            if let Some(c) = self.connect.as_mut() {
                c.legs.push(Callee {
                    id,
                    state: CalleeState::Opening,
                    dial,
                    dialog: None,
                    media: None,
                    local: None,
                    row,
                    refused: None,
                });
            }
            self.outputs.push_back(Output::Callee {
                leg: id,
                command: CalleeCommand::Open(LegParams {
                    audio_pt: codec.static_pt.unwrap_or(0),
                    event_pt: Some(101),
                    rtp_timeout: self.config.rtp_timeout,
                    // Bridged legs share a media worker.
                    place_with: self.leg.media.map(|m| m.id),
                    ..LegParams::default()
                }),
            });
        }
        self.row.chained_call_ids.extend(ids);
        self.row.tm_update = Some(self.stamps.now());
        self.outputs.push_back(Output::Write(Write::call(
            &self.row,
            false,
            &[Verb::Updated],
        )));
    }

    /// A dialled leg's media session is open: its INVITE goes out with our offer.
    pub(super) fn callee_opened(&mut self, leg: LegId, result: Result<OpenedLeg, String>) {
        let session_id = self.clock.ms(self.now);
        let codec = self.leg.bridge_codec();
        let media_ip = self.config.media_ip;
        let Some(callee) = self.connect.as_mut().and_then(|c| c.leg_mut(leg)) else {
            if let Ok(opened) = result {
                self.outputs
                    .push_back(Output::Media(MediaCommand::Close(opened.id)));
            }
            return;
        };
        match result {
            Ok(opened) => {
                // The caller's G.711 codec only: the session is opened for it, and
                // the bridge forwards packets untouched.
                let mut local = our_media(media_ip, opened.local_rtp.port(), session_id);
                local.codecs = vec![codec];
                callee.media = Some(opened);
                callee.dial.sdp = sdp::offer(&local, Direction::SendRecv).to_string();
                callee.local = Some(local);
                callee.state = CalleeState::Dialing;
                let dial = callee.dial.clone();
                self.outputs.push_back(Output::Callee {
                    leg,
                    command: CalleeCommand::Dial(dial),
                });
            }
            Err(e) => {
                let why = format!("no media port for {}: {e}", callee.dial.destination.target);
                self.callee_failed(leg, &why, 503);
            }
        }
    }

    /// The INVITE of a dialled leg is out, or could not be sent.
    pub(super) fn dialed(&mut self, leg: LegId, result: Result<CallRef, DialError>) {
        match result {
            Ok(dialog) => {
                if let Some(callee) = self.connect.as_mut().and_then(|c| c.leg_mut(leg)) {
                    callee.dialog = Some(dialog);
                }
            }
            Err(e) => {
                let last = self
                    .connect
                    .as_mut()
                    .and_then(|c| c.leg_mut(leg))
                    .and_then(|l| l.refused);
                let status = match e {
                    DialError::NoRoute(_) => 404,
                    DialError::Refused(_) => 403,
                    DialError::Unsupported(_) => 488,
                    DialError::Sip(_) => 503,
                    // The last carrier's own answer says most.
                    DialError::Exhausted(_) => last.unwrap_or(503),
                };
                self.callee_failed(leg, &e.to_string(), status);
            }
        }
    }

    /// A dialled leg failed before its INVITE went out: its row says why, an
    /// `activeflow_action_failed` names the cause, and the connect goes on with
    /// the others.
    fn callee_failed(&mut self, leg: LegId, why: &str, status: u16) {
        self.action_failed(&format!("connect: {why}"));
        if let Some(callee) = self.connect.as_mut().and_then(|c| c.leg_mut(leg)) {
            callee.refused = Some(status);
            callee.row.hangup_reason = HangupReason::Failed.as_str().into();
            callee.row.hangup_by = HangupBy::Local.as_str().into();
            callee.state = CalleeState::Ended;
            if let Some(m) = callee.media {
                self.outputs
                    .push_back(Output::Media(MediaCommand::Close(m.id)));
            } else {
                self.callee_done(leg, None);
            }
        }
        self.connect_settle();
    }

    /// The user agent's event about a dialled leg.
    pub(super) fn on_callee_sip(&mut self, leg: LegId, event: UaEvent) {
        match event {
            UaEvent::Progress { status, sdp, .. } => self.callee_progress(leg, status, sdp),
            UaEvent::Answered { sdp, .. } => self.callee_answered(leg, sdp),
            UaEvent::Ended { by, cause, .. } => {
                let by_us = by == sip_stack::ua::Side::Local;
                self.callee_ended(leg, &cause, by_us);
            }
            UaEvent::Request { tx, msg, .. } => self.callee_request(leg, tx, &msg),
            _ => {}
        }
    }

    /// A request inside a dialled leg's dialog: a re-INVITE or UPDATE gets our
    /// answer and moves the leg's media to the address it names (RFC 3264
    /// section 8); INFO and NOTIFY get 200; other methods 501.
    fn callee_request(
        &mut self,
        leg: LegId,
        tx: sip_stack::transaction::TxId,
        msg: &sip_stack::msg::Message,
    ) {
        use sip_stack::msg::Method;
        let Some(callee) = self.connect.as_mut().and_then(|c| c.leg_mut(leg)) else {
            return;
        };
        let (status, sdp) = match (msg.method(), callee.local.as_mut()) {
            (Some(Method::Invite | Method::Update), Some(local)) => {
                match super::media::reanswer(local, msg, Direction::SendRecv) {
                    Ok((answer, stream)) => {
                        if let (Some(stream), Some(media)) = (stream, callee.media) {
                            self.outputs
                                .push_back(Output::Media(MediaCommand::SetRemote {
                                    session: media.id,
                                    remote: SocketAddr::new(stream.remote_addr, stream.remote_port),
                                }));
                        }
                        (200, Some(answer))
                    }
                    Err(status) => (status, None),
                }
            }
            (Some(Method::Invite | Method::Update), None) => (491, None),
            (Some(Method::Info | Method::Notify), _) => (200, None),
            _ => (501, None),
        };
        self.outputs.push_back(Output::Callee {
            leg,
            command: CalleeCommand::Respond { tx, status, sdp },
        });
    }

    fn callee_progress(&mut self, leg: LegId, status: u16, sdp: Option<String>) {
        let caller_answered = self.status == CallStatus::Progressing;
        let caller = self.leg.media.map(|m| m.id);
        let Some(connect) = self.connect.as_mut() else {
            return;
        };
        let early_wanted = connect.request.early_media && connect.early.is_none();
        let Some(callee) = connect.leg_mut(leg) else {
            return;
        };
        if callee.state == CalleeState::Dialing {
            callee.state = CalleeState::Ringing;
            let now = self.stamps.now();
            callee.row.status = CallStatus::Ringing.as_str().into();
            callee.row.tm_ringing = Some(now.clone());
            callee.row.tm_update = Some(now);
            let row = Write::call(&callee.row, false, &[Verb::Ringing]);
            self.outputs.push_back(Output::Write(row));
        }
        let Some(callee) = self.connect.as_mut().and_then(|c| c.leg_mut(leg)) else {
            return;
        };
        let remote = sdp.as_deref().and_then(remote_of);
        match (remote, caller, callee.media) {
            (Some(remote), Some(caller), Some(media))
                if early_wanted && !caller_answered && (status == 183 || status == 180) =>
            {
                // Early media (RFC 3960): the caller hears the callee before the answer.
                self.outputs
                    .push_back(Output::Media(MediaCommand::SetRemote {
                        session: media.id,
                        remote,
                    }));
                self.outputs.push_back(Output::Media(MediaCommand::Bridge {
                    a: caller,
                    b: media.id,
                }));
                if let Some(c) = self.connect.as_mut() {
                    c.early = Some(leg);
                }
                if let Some(answer) = self.early_sdp.clone() {
                    self.outputs
                        .push_back(Output::Sip(SipCommand::EarlyMedia { sdp: answer }));
                }
            }
            _ if caller_answered => self.start_ringback(),
            _ => {}
        }
    }

    /// A local ringback tone to an answered caller, while the callees ring.
    fn start_ringback(&mut self) {
        let Some(caller) = self.leg.media else {
            return;
        };
        if self.connect.as_ref().is_none_or(|c| c.ringback.is_some()) {
            return;
        }
        let play = self.next_play_id();
        self.outputs.push_back(Output::Media(MediaCommand::Play {
            session: caller.id,
            play,
            source: Source::Tone(Tone::ringback_us()),
        }));
        if let Some(c) = self.connect.as_mut() {
            c.ringback = Some(play);
        }
    }

    fn callee_answered(&mut self, leg: LegId, sdp: Option<String>) {
        let Some(connect) = self.connect.as_mut() else {
            return;
        };
        if connect.winner.is_some() {
            // Answered after another: it is not wanted (section 13.2.2.4: ACKed,
            // then a BYE).
            self.hang_up_callee(leg, Reason::sip(200, "Call completed elsewhere"));
            return;
        }
        connect.winner = Some(leg);
        let ringback = connect.ringback.take();
        let early = connect.early;
        let others: Vec<LegId> = connect
            .legs
            .iter()
            .filter(|l| {
                l.id != leg
                    && matches!(
                        l.state,
                        CalleeState::Dialing | CalleeState::Ringing | CalleeState::Opening
                    )
            })
            .map(|l| l.id)
            .collect();
        let Some(callee) = connect.leg_mut(leg) else {
            return;
        };
        callee.state = CalleeState::Up;
        let now = self.stamps.now();
        callee.row.status = CallStatus::Progressing.as_str().into();
        callee.row.tm_progressing = Some(now.clone());
        callee.row.tm_update = Some(now);
        let row = Write::call(&callee.row, false, &[Verb::Progressing]);
        let media = callee.media;
        self.outputs.push_back(Output::Write(row));
        for other in others {
            // RFC 3326: the others are told why they stop ringing.
            self.hang_up_callee(other, Reason::sip(200, "Call completed elsewhere"));
        }
        let (Some(media), Some(caller)) = (media, self.leg.media) else {
            return;
        };
        if ringback.is_some() {
            self.outputs
                .push_back(Output::Media(MediaCommand::Stop(caller.id)));
        }
        if let Some(remote) = sdp.as_deref().and_then(remote_of) {
            self.outputs
                .push_back(Output::Media(MediaCommand::SetRemote {
                    session: media.id,
                    remote,
                }));
        }
        if early != Some(leg) {
            if early.is_some() {
                self.outputs
                    .push_back(Output::Media(MediaCommand::Unbridge(caller.id)));
            }
            self.outputs.push_back(Output::Media(MediaCommand::Bridge {
                a: caller.id,
                b: media.id,
            }));
        }
        if self.status != CallStatus::Progressing {
            // Answer on bridge: the caller's 200 goes now.
            if let Some(sdp) = self.early_sdp.take() {
                self.outputs
                    .push_back(Output::Sip(SipCommand::Answer { sdp }));
                self.flow_event(Event::CallStatusChanged(CallStatus::Progressing));
                self.set_status(CallStatus::Progressing, Verb::Progressing, |c, now| {
                    c.tm_progressing = Some(now.to_owned())
                });
            }
        }
    }

    /// Ends a dialled leg on the SIP side (its `Ended` follows).
    fn hang_up_callee(&mut self, leg: LegId, reason: Reason) {
        let Some(callee) = self.connect.as_mut().and_then(|c| c.leg_mut(leg)) else {
            return;
        };
        match callee.state {
            CalleeState::Dialing | CalleeState::Ringing | CalleeState::Up => {
                self.outputs.push_back(Output::Callee {
                    leg,
                    command: CalleeCommand::Hangup { reason },
                });
            }
            CalleeState::Opening => {
                // Not dialled yet: it never will be.
                callee.state = CalleeState::Ended;
                callee.row.hangup_reason = HangupReason::Cancel.as_str().into();
                callee.row.hangup_by = HangupBy::Local.as_str().into();
                if let Some(m) = callee.media {
                    self.outputs
                        .push_back(Output::Media(MediaCommand::Close(m.id)));
                } else {
                    self.callee_done(leg, None);
                }
            }
            CalleeState::Ended | CalleeState::Done => {}
        }
    }

    /// A dialled leg is over on the SIP side: its media closes, and the caller and
    /// the flow hear what it means.
    fn callee_ended(&mut self, leg: LegId, cause: &EndCause, by_us: bool) {
        let caller = self.leg.media.map(|m| m.id);
        let Some(connect) = self.connect.as_mut() else {
            return;
        };
        let was_winner = connect.winner == Some(leg);
        let was_early = connect.early == Some(leg);
        if was_early && !was_winner {
            connect.early = None;
        }
        let Some(callee) = connect.leg_mut(leg) else {
            return;
        };
        if matches!(callee.state, CalleeState::Ended | CalleeState::Done) {
            return;
        }
        if let EndCause::Rejected(status) = cause {
            callee.refused = Some(*status);
        }
        if !was_winner && fails_over(cause) && callee.dial.destination.kind == "tel" {
            // The carrier failed (no answer, 408, 5xx, 6xx but 603): the next one
            // is tried with the same offer, as Kamailio's dispatcher and jambonz do.
            callee.dial.attempt += 1;
            callee.dialog = None;
            callee.state = CalleeState::Dialing;
            tracing::info!(%leg, attempt = callee.dial.attempt, ?cause, "carrier failed: trying the next");
            let dial = callee.dial.clone();
            self.outputs.push_back(Output::Callee {
                leg,
                command: CalleeCommand::Dial(dial),
            });
            return;
        }
        callee.state = CalleeState::Ended;
        if callee.row.hangup_reason.is_empty() {
            let reason = reason_of(cause, by_us);
            callee.row.hangup_reason = reason.as_str().into();
            callee.row.hangup_by = if by_us {
                HangupBy::Local
            } else {
                HangupBy::Remote
            }
            .as_str()
            .into();
        }
        let reason = HangupReason::from_flow(&callee.row.hangup_reason);
        match callee.media {
            Some(m) => self
                .outputs
                .push_back(Output::Media(MediaCommand::Close(m.id))),
            None => self.callee_done(leg, None),
        }
        if (was_winner || was_early)
            && let Some(caller) = caller
        {
            self.outputs
                .push_back(Output::Media(MediaCommand::Unbridge(caller)));
        }
        if was_winner {
            let relay = self
                .connect
                .as_ref()
                .is_some_and(|c| c.request.relay_reason);
            if relay && self.up {
                // The caller ends first, so the flow hears the hangup, not a next
                // action to run.
                self.end(reason, HangupBy::Remote);
                self.hangup(reason);
                self.flow_event(Event::Hangup);
            }
            self.finish_connect(Outcome::Connect(ConnectOutcome::Answered));
            return;
        }
        self.connect_settle();
    }

    /// When no leg is left ringing and none answered: the connect failed.
    fn connect_settle(&mut self) {
        let Some(connect) = self.connect.as_ref() else {
            return;
        };
        if connect.winner.is_some() || !connect.all_ended() || connect.action.is_none() {
            return;
        }
        let relay = connect.request.relay_reason;
        // The status that says most: busy over declined over no answer over the rest.
        let statuses: Vec<u16> = connect.legs.iter().filter_map(|l| l.refused).collect();
        let status = [486u16, 600, 603, 480, 408, 487]
            .into_iter()
            .find(|s| statuses.contains(s))
            .or_else(|| statuses.first().copied())
            .unwrap_or(480);
        let reasons: Vec<HangupReason> = connect
            .legs
            .iter()
            .map(|l| HangupReason::from_flow(&l.row.hangup_reason))
            .collect();
        let outcome = if reasons.contains(&HangupReason::Busy) {
            ConnectOutcome::Busy
        } else if reasons.contains(&HangupReason::NoAnswer) {
            ConnectOutcome::Noanswer
        } else {
            ConnectOutcome::Failed
        };
        if let Some(ringback) = self.connect.as_mut().and_then(|c| c.ringback.take())
            && let Some(caller) = self.leg.media
        {
            tracing::trace!(?ringback, "ringback stops");
            self.outputs
                .push_back(Output::Media(MediaCommand::Stop(caller.id)));
        }
        if relay && self.up {
            let reason = match outcome {
                ConnectOutcome::Busy => HangupReason::Busy,
                ConnectOutcome::Noanswer => HangupReason::NoAnswer,
                _ => HangupReason::Failed,
            };
            self.end(reason, HangupBy::Remote);
            if self.status == CallStatus::Progressing {
                self.hangup(reason);
            } else {
                // The caller gets the callee's own status (RFC 3326 Reason).
                let text = match status {
                    486 => "Busy Here",
                    600 => "Busy Everywhere",
                    603 => "Decline",
                    408 => "Request Timeout",
                    487 => "Request Terminated",
                    _ => "Temporarily Unavailable",
                };
                self.refuse(status, text, &[]);
            }
            self.flow_event(Event::Hangup);
        }
        self.finish_connect(Outcome::Connect(outcome));
    }

    /// The connect action completes (the flow goes on, unless it is hung up).
    fn finish_connect(&mut self, outcome: Outcome) {
        if let Some(action) = self.connect.as_mut().and_then(|c| c.action.take()) {
            self.complete(action, outcome);
        }
    }

    /// The ring timeout: the legs still ringing are cancelled (no answer).
    pub(super) fn connect_timeout(&mut self, now: Instant) {
        let Some(connect) = self.connect.as_ref() else {
            return;
        };
        if connect.deadline().is_none_or(|d| now < d) {
            return;
        }
        let ringing: Vec<LegId> = connect
            .legs
            .iter()
            .filter(|l| !matches!(l.state, CalleeState::Ended | CalleeState::Done))
            .map(|l| l.id)
            .collect();
        for leg in ringing {
            if let Some(c) = self.connect.as_mut().and_then(|c| c.leg_mut(leg)) {
                c.row.hangup_reason = HangupReason::NoAnswer.as_str().into();
                c.row.hangup_by = HangupBy::Local.as_str().into();
                c.refused = Some(480);
            }
            self.hang_up_callee(leg, Reason::sip(480, "No answer"));
        }
        if let Some(c) = self.connect.as_mut() {
            // Fired once.
            c.deadline = now + Duration::from_secs(3600);
        }
    }

    /// The caller is gone (or the call closes): every dialled leg is hung up.
    pub(super) fn connect_caller_gone(&mut self) {
        let Some(connect) = self.connect.as_ref() else {
            return;
        };
        let live: Vec<LegId> = connect
            .legs
            .iter()
            .filter(|l| !matches!(l.state, CalleeState::Ended | CalleeState::Done))
            .map(|l| l.id)
            .collect();
        for leg in live {
            if let Some(c) = self.connect.as_mut().and_then(|c| c.leg_mut(leg)) {
                c.row.hangup_reason = HangupReason::Normal.as_str().into();
                c.row.hangup_by = HangupBy::Local.as_str().into();
            }
            self.hang_up_callee(leg, HangupReason::Normal.bye_reason());
        }
    }

    /// A dialled leg's media event (its session's close, its RTP timeout).
    pub(super) fn on_callee_media(&mut self, event: media_engine::engine::MediaEvent) {
        use media_engine::engine::MediaEvent;
        let Some(connect) = self.connect.as_ref() else {
            return;
        };
        match event {
            MediaEvent::Closed { session, stats } => {
                if let Some(leg) = connect
                    .legs
                    .iter()
                    .find(|l| l.media.is_some_and(|m| m.id == session))
                    .map(|l| l.id)
                {
                    self.callee_done(leg, Some(stats));
                }
            }
            MediaEvent::RtpTimeout { session } => {
                if let Some(leg) = connect
                    .legs
                    .iter()
                    .find(|l| l.media.is_some_and(|m| m.id == session))
                    .map(|l| l.id)
                {
                    tracing::info!(%leg, "no RTP from the callee: hanging it up");
                    if let Some(c) = self.connect.as_mut().and_then(|c| c.leg_mut(leg)) {
                        c.row.hangup_reason = HangupReason::Failed.as_str().into();
                        c.row.hangup_by = HangupBy::Local.as_str().into();
                    }
                    self.hang_up_callee(leg, HangupReason::Failed.bye_reason());
                }
            }
            _ => {}
        }
    }

    /// A dialled leg's last row: hangup, with its statistics when it had media.
    fn callee_done(&mut self, leg: LegId, stats: Option<SessionStats>) {
        let now = self.stamps.now();
        let Some(callee) = self.connect.as_mut().and_then(|c| c.leg_mut(leg)) else {
            return;
        };
        if callee.state == CalleeState::Done {
            return;
        }
        if callee.state != CalleeState::Ended {
            // The session closed under a live leg (the engine failed it): end it.
            callee.row.hangup_reason = HangupReason::Failed.as_str().into();
            callee.row.hangup_by = HangupBy::Local.as_str().into();
            if callee.dialog.is_some() {
                self.outputs.push_back(Output::Callee {
                    leg,
                    command: CalleeCommand::Hangup {
                        reason: HangupReason::Failed.bye_reason(),
                    },
                });
            }
        }
        let Some(callee) = self.connect.as_mut().and_then(|c| c.leg_mut(leg)) else {
            return;
        };
        callee.state = CalleeState::Done;
        if let Some(stats) = stats {
            callee.row.rtp_stats = Some(RtpStats {
                packets_sent: stats.packets_sent,
                packets_received: stats.packets_received,
                packets_lost: stats.lost,
                jitter_ms: stats.jitter_ms,
                rtt_ms: stats.rtt_ms,
            });
        }
        callee.row.status = CallStatus::Hangup.as_str().into();
        callee.row.tm_hangup = Some(now.clone());
        callee.row.tm_update = Some(now);
        let row = Write::call(&callee.row, false, &[Verb::Hungup]);
        self.outputs.push_back(Output::Write(row));
        self.closing_progress();
    }

    /// Rows of the legs not closed in time, written without their statistics.
    pub(super) fn connect_flush(&mut self) {
        let open: Vec<LegId> = self
            .connect
            .as_ref()
            .map(|c| {
                c.legs
                    .iter()
                    .filter(|l| l.state != CalleeState::Done)
                    .map(|l| l.id)
                    .collect()
            })
            .unwrap_or_default();
        for leg in open {
            if let Some(c) = self.connect.as_mut().and_then(|c| c.leg_mut(leg)) {
                c.state = CalleeState::Ended;
            }
            self.callee_done(leg, None);
        }
    }
}

/// Where a peer's SDP says its audio goes.
fn remote_of(text: &str) -> Option<SocketAddr> {
    let sdp = SessionDescription::parse(text).ok()?;
    let m = sdp.media.first()?;
    let ip = sdp.media_addr(m)?;
    Some(SocketAddr::new(ip, m.port))
}
