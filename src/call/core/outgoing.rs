//! A call we place (`POST /calls`, a flow's `call`): its leg is dialled, not
//! answered. The media session opens first (our offer needs its port), the INVITE
//! goes out through the routes, and the call moves `dialing -> ringing ->
//! progressing` as the callee answers; its flow starts on the answer (or at once
//! with `early_execution`, as seed 003 says).
//!
//! A carrier that fails (no final answer, 408, 5xx, 6xx but 603) hands the call to
//! the next one of its routes, with the same offer, as a `connect` leg does. A
//! callee that does not answer within the ring timeout is given up (CANCEL, reason
//! `noanswer`). Our offer is PCMU with telephone-event: every SIP peer takes it,
//! and the leg's codec is fixed when its session opens.

use std::net::SocketAddr;
use std::time::Instant;

use flow_runtime::interpreter::Event;
use flow_runtime::{CallStatus, parse_flow};
use media_engine::engine::{LegParams, OpenedLeg};
use sip_stack::sdp::{self, Direction};
use sip_stack::ua::{CallRef, EndCause, Side, UaEvent};

use api::call_store::{Verb, Write};
use api::originate::FlowSource;

use super::super::reason::{HangupBy, HangupReason};
use super::connect::{fails_over, reason_of, remote_of};
use super::io::{Dial, DialError, LoadedFlow, Outgoing};
use super::media::our_media;
use super::{Answering, CallCore, FlowPurpose, Job, MediaCommand, Output, Phase, SipCommand};

/// Where the call's own leg is, while we dial it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OutState {
    /// Its media session is being opened.
    Opening,
    /// The INVITE is out.
    Dialing,
    /// The callee answered.
    Answered,
    /// It never was answered: over.
    Failed,
}

/// What a call we place keeps while it is dialled.
#[derive(Debug)]
pub(super) struct Outbound {
    pub state: OutState,
    /// The INVITE (its offer once the session is open; the attempt moves on with
    /// each failover).
    pub dial: Dial,
    pub flow: FlowSource,
    pub variables: Vec<(String, String)>,
    /// When ringing is given up; gone once the call is answered or over.
    pub deadline: Option<Instant>,
    /// The status the last carrier refused with.
    pub refused: Option<u16>,
    /// The flow was asked for (at once with early execution, else on the answer).
    pub flow_started: bool,
}

impl CallCore {
    /// A call we place, at `now`, whose wall clock reads `wall_ms`: its row is
    /// written (`call_created`, `call_dialing`) and its media session opened; the
    /// INVITE follows with our offer.
    pub fn outgoing(
        config: super::CoreConfig,
        stamps: std::sync::Arc<api::clock::Stamps>,
        out: Outgoing,
        now: Instant,
        wall_ms: u64,
    ) -> Self {
        let incoming = super::Incoming {
            // Placeholders: an outgoing call has no INVITE of its own; its dialog
            // is the leg's once dialled.
            call: CallRef(0),
            source: out.source.target.clone(),
            destination: out.destination.target.clone(),
            peer: SocketAddr::from(([0, 0, 0, 0], 0)),
            offer: None,
            customer_id: out.customer_id.clone(),
            flow_id: out.flow.id().to_owned(),
            max_forwards: sip_stack::ua::DEFAULT_MAX_FORWARDS,
        };
        let mut core = Self::new(config, stamps, incoming, now, wall_ms);
        // `new` asked for the number's flow: an outgoing call asks later.
        core.outputs.clear();
        core.leg.call = None;
        core.phase = Phase::Dialing;
        core.status = CallStatus::Dialing;
        core.row.id = out.call_id.clone();
        core.flow_row.reference_id = out.call_id.clone();
        core.row.source = out.source.clone();
        core.row.destination = out.destination.clone();
        core.row.direction = "outgoing".into();
        core.row.status = CallStatus::Dialing.as_str().into();
        core.row.master_call_id = out.master_call_id.clone();
        core.row.groupcall_id = out.groupcall_id.clone();
        core.row.tm_create = core.stamps.unique();
        core.outputs.push_back(Output::Write(Write::call(
            &core.row,
            true,
            &[Verb::Created, Verb::Dialing],
        )));
        core.outgoing = Some(Outbound {
            state: OutState::Opening,
            dial: Dial {
                destination: out.destination,
                caller_id: out.source.target,
                caller_name: out.source.target_name,
                anonymous: out.anonymous,
                sdp: String::new(),
                call_id: out.call_id,
                max_forwards: sip_stack::ua::DEFAULT_MAX_FORWARDS,
                attempt: 0,
            },
            flow: out.flow,
            variables: out.variables,
            deadline: Some(now + out.ring_timeout),
            refused: None,
            flow_started: false,
        });
        core.answering = Some(Answering::Dial);
        core.outputs
            .push_back(Output::Media(MediaCommand::Open(LegParams {
                audio_pt: sdp::PCMU.static_pt.unwrap_or(0),
                event_pt: Some(101),
                rtp_timeout: core.config.rtp_timeout,
                ..LegParams::default()
            })));
        if out.early_execution {
            core.start_outgoing_flow();
        }
        core
    }

    /// Whether this is a call we placed whose leg is not answered yet.
    pub(super) fn dialing_out(&self) -> bool {
        self.outgoing
            .as_ref()
            .is_some_and(|o| matches!(o.state, OutState::Opening | OutState::Dialing))
    }

    /// When ringing is given up, while it rings.
    pub(super) fn outgoing_deadline(&self) -> Option<Instant> {
        self.outgoing
            .as_ref()
            .filter(|_| self.dialing_out() && self.up)
            .and_then(|o| o.deadline)
    }

    /// The session for our offer is open: the INVITE goes out.
    pub(super) fn dial_opened(&mut self, opened: OpenedLeg) {
        if !self.up || matches!(self.phase, Phase::Closing(_) | Phase::Finished) {
            // Hung up before it was dialled.
            self.outputs
                .push_back(Output::Media(MediaCommand::Close(opened.id)));
            return;
        }
        let session_id = self.clock.ms(self.now);
        let mut local = our_media(self.config.media_ip, opened.local_rtp.port(), session_id);
        local.codecs = vec![sdp::PCMU];
        let offer = sdp::offer(&local, Direction::SendRecv).to_string();
        self.leg.media = Some(opened);
        self.leg.state.local = Some(local);
        // Nothing is owed before the answer (early media is a bonus): the RTP
        // timeout waits for it.
        self.outputs
            .push_back(Output::Media(MediaCommand::ExpectRtp {
                session: opened.id,
                on: false,
            }));
        if let Some(out) = self.outgoing.as_mut() {
            out.dial.sdp = offer;
            out.state = OutState::Dialing;
            let dial = out.dial.clone();
            self.outputs.push_back(Output::Dial(dial));
        }
    }

    /// The INVITE is out (its dialog is the call's), or could not be sent.
    pub(super) fn leg_dialed(&mut self, result: Result<CallRef, DialError>) {
        match result {
            Ok(call) => {
                self.leg.call = Some(call);
                if !self.up {
                    // Hung up while the INVITE was being made: CANCEL it now.
                    self.outputs.push_back(Output::Sip(SipCommand::Hangup {
                        reason: HangupReason::Normal.bye_reason(),
                    }));
                }
            }
            Err(e) => {
                tracing::info!(error = %e, "the call could not be placed");
                let reason = match e {
                    DialError::Exhausted(_) => {
                        let refused = self.outgoing.as_ref().and_then(|o| o.refused);
                        reason_of(&EndCause::Rejected(refused.unwrap_or(503)), false)
                    }
                    _ => HangupReason::Failed,
                };
                self.action_failed(&format!("the call could not be placed: {e}"));
                self.dial_over(reason, HangupBy::Local);
            }
        }
    }

    /// The user agent's event about our leg before it is answered.
    pub(super) fn outgoing_sip(&mut self, event: UaEvent) {
        match event {
            UaEvent::Progress { sdp, .. } => {
                if self.status == CallStatus::Dialing {
                    self.set_status(CallStatus::Ringing, Verb::Ringing, |c, now| {
                        c.tm_ringing = Some(now.to_owned())
                    });
                    self.flow_event(Event::CallStatusChanged(CallStatus::Ringing));
                }
                // Early media (RFC 3960): what the callee plays goes to its address.
                self.remote_from(sdp.as_deref());
            }
            UaEvent::Answered { sdp, .. } => {
                if !self.up {
                    // The answer crossed our CANCEL: it is ended with a BYE.
                    self.outputs.push_back(Output::Sip(SipCommand::Hangup {
                        reason: HangupReason::Normal.bye_reason(),
                    }));
                    return;
                }
                if let Some(media) = self.leg.media {
                    self.outputs
                        .push_back(Output::Media(MediaCommand::ExpectRtp {
                            session: media.id,
                            on: true,
                        }));
                }
                if let Some(out) = self.outgoing.as_mut() {
                    out.state = OutState::Answered;
                    out.deadline = None;
                }
                self.remote_from(sdp.as_deref());
                self.set_status(CallStatus::Progressing, Verb::Progressing, |c, now| {
                    c.tm_progressing = Some(now.to_owned())
                });
                self.flow_event(Event::CallStatusChanged(CallStatus::Progressing));
                self.start_outgoing_flow();
            }
            UaEvent::Ended { by, cause, .. } => self.outgoing_ended(&cause, by == Side::Local),
            UaEvent::Request { tx, msg, .. } => self.on_request(tx, &msg),
            _ => {}
        }
    }

    /// The callee's SDP names where our audio goes.
    fn remote_from(&mut self, sdp: Option<&str>) {
        if let (Some(remote), Some(media)) = (sdp.and_then(remote_of), self.leg.media) {
            self.outputs
                .push_back(Output::Media(MediaCommand::SetRemote {
                    session: media.id,
                    remote,
                }));
        }
    }

    /// Our leg ended before it was answered: the next carrier is tried when its
    /// carrier failed; otherwise the call is over.
    fn outgoing_ended(&mut self, cause: &EndCause, by_us: bool) {
        let up = self.up;
        let Some(out) = self.outgoing.as_mut() else {
            return;
        };
        if let EndCause::Rejected(status) = cause {
            out.refused = Some(*status);
        }
        let carrier_failed = matches!(cause, EndCause::Timeout) || !by_us && fails_over(cause);
        if up && carrier_failed && out.dial.destination.kind == "tel" {
            out.dial.attempt += 1;
            tracing::info!(
                attempt = out.dial.attempt,
                ?cause,
                "carrier failed: trying the next"
            );
            self.leg.call = None;
            let dial = out.dial.clone();
            self.outputs.push_back(Output::Dial(dial));
            return;
        }
        let by = if by_us {
            HangupBy::Local
        } else {
            HangupBy::Remote
        };
        self.dial_over(reason_of(cause, by_us), by);
    }

    /// The call was never answered: its row says why, and it closes.
    fn dial_over(&mut self, reason: HangupReason, by: HangupBy) {
        if let Some(out) = self.outgoing.as_mut() {
            out.state = OutState::Failed;
            out.deadline = None;
        }
        self.end(reason, by);
        self.up = false;
        self.flow_event(Event::Hangup);
        if self.flow.is_none() || self.phase != Phase::Running {
            self.close();
        }
    }

    /// Nobody answered within the ring timeout: the call is given up (CANCEL).
    pub(super) fn outgoing_timeout(&mut self, now: Instant) {
        if self.outgoing_deadline().is_none_or(|d| now < d) {
            return;
        }
        if let Some(out) = self.outgoing.as_mut() {
            out.deadline = None;
        }
        tracing::info!("no answer within the ring timeout");
        self.end(HangupReason::NoAnswer, HangupBy::Local);
        if self.leg.call.is_some() {
            self.hangup(HangupReason::NoAnswer);
        } else {
            self.dial_over(HangupReason::NoAnswer, HangupBy::Local);
        }
    }

    /// Hung up before the answer (the API, a flow's hangup): the INVITE is
    /// cancelled, or, not sent yet, never will be.
    pub(super) fn outgoing_hangup(&mut self) {
        if self.leg.call.is_none() {
            self.up = false;
            self.dial_over(HangupReason::Normal, HangupBy::Local);
        }
    }

    /// The flow starts: a stored one is read, inline actions run at once.
    fn start_outgoing_flow(&mut self) {
        let Some(out) = self.outgoing.as_mut() else {
            return;
        };
        if out.flow_started {
            return;
        }
        out.flow_started = true;
        match out.flow.clone() {
            FlowSource::Stored(flow_id) => {
                if self.phase == Phase::Dialing {
                    self.phase = Phase::Loading;
                }
                self.outputs.push_back(Output::Job(Job::LoadFlow {
                    flow_id,
                    purpose: FlowPurpose::First,
                }));
            }
            FlowSource::Inline { id, actions } => self.outgoing_flow(Ok(Some(LoadedFlow {
                id,
                actions,
                on_complete_flow_id: None,
            }))),
        }
    }

    /// The flow is read: it runs for the call; one that cannot run hangs it up.
    pub(super) fn outgoing_flow(&mut self, flow: Result<Option<LoadedFlow>, String>) {
        if !self.up || matches!(self.phase, Phase::Closing(_) | Phase::Finished) {
            return;
        }
        let parsed = match flow {
            Ok(Some(f)) => parse_flow(&f.actions)
                .map(|p| (f, p.actions))
                .map_err(|findings| {
                    let first = findings.first().map(|f| f.message.clone());
                    format!("the flow does not load: {}", first.unwrap_or_default())
                }),
            Ok(None) => Err("the call's flow is gone".to_owned()),
            Err(e) => Err(e),
        };
        let (flow, actions) = match parsed {
            Ok(p) => p,
            Err(why) => {
                tracing::warn!(%why, "the placed call's flow cannot run");
                self.action_failed(&why);
                self.end(HangupReason::Failed, HangupBy::Local);
                self.hangup(HangupReason::Failed);
                if self.dialing_out() {
                    return;
                }
                return self.close();
            }
        };
        let mut variables = vec![
            (
                "voipbin.call.source.target".to_owned(),
                self.incoming.source.clone(),
            ),
            (
                "voipbin.call.destination.target".to_owned(),
                self.incoming.destination.clone(),
            ),
        ];
        if let Some(out) = self.outgoing.as_ref() {
            variables.extend(out.variables.iter().cloned());
        }
        self.start_flow(&flow, actions, variables);
    }
}
