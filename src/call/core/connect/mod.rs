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
//!
//! Here: the connect's state and its start; [`dialing`] places the legs;
//! [`callee`] takes what each leg does (rings, answers, re-INVITEs, ends);
//! [`ending`] settles the connect, its timeout and each leg's last row.

mod callee;
mod dialing;
mod ending;
mod hold;

pub(in crate::call::core) use hold::{Holder, holds};

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
    /// Why it ended, once known (the first reason given stands).
    reason: Option<HangupReason>,
    /// The final status it refused with, when it did.
    refused: Option<u16>,
}

impl Callee {
    /// Records why the leg ended, on the row too; the first reason stands, as for
    /// the call's own end.
    fn end(&mut self, reason: HangupReason, by: HangupBy) {
        if self.reason.is_none() {
            self.reason = Some(reason);
            self.row.hangup_reason = reason.as_str().into();
            self.row.hangup_by = by.as_str().into();
        }
    }

    /// Whether it is over on the SIP side.
    fn ended(&self) -> bool {
        matches!(self.state, CalleeState::Ended | CalleeState::Done)
    }
}

/// A `connect` in progress, and its legs until each one's last row is out.
#[derive(Debug)]
pub(super) struct Connect {
    /// The action, until it completes.
    action: Option<ActionId>,
    request: ConnectRequest,
    /// When the ring timeout strikes; gone once it has.
    deadline: Option<Instant>,
    legs: Vec<Callee>,
    /// The leg that answered.
    winner: Option<LegId>,
    /// The leg whose early media the caller hears.
    early: Option<LegId>,
    /// The local ringback playing to an answered caller.
    ringback: Option<PlayId>,
    /// The sides holding now (each told to the other once).
    held_by: Vec<hold::Holder>,
}

impl Connect {
    fn leg_mut(&mut self, id: LegId) -> Option<&mut Callee> {
        self.legs.iter_mut().find(|l| l.id == id)
    }

    /// Whether every leg is over on the SIP side.
    fn all_ended(&self) -> bool {
        self.legs.iter().all(Callee::ended)
    }

    /// The legs still up or ringing.
    fn live_legs(&self) -> Vec<LegId> {
        self.legs
            .iter()
            .filter(|l| !l.ended())
            .map(|l| l.id)
            .collect()
    }

    /// The leg whose media session is `session`.
    fn leg_of_session(&self, session: media_engine::engine::SessionId) -> Option<LegId> {
        self.legs
            .iter()
            .find(|l| l.media.is_some_and(|m| m.id == session))
            .map(|l| l.id)
    }

    /// Whether every leg's last row is out.
    pub(super) fn all_done(&self) -> bool {
        self.legs.iter().all(|l| l.state == CalleeState::Done)
    }

    /// When the ring timeout strikes, while nobody has answered.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.deadline
            .filter(|_| self.winner.is_none() && !self.all_ended())
    }

    /// Whether `session` is one of the legs' media sessions.
    pub(super) fn owns_session(&self, session: media_engine::engine::SessionId) -> bool {
        self.leg_of_session(session).is_some()
    }
}

/// Whether a dialled leg's end means its carrier failed, not the callee: no
/// final answer (timer B), 408, a 5xx, or a 6xx but 603 (the callee declined).
pub(in crate::call::core) fn fails_over(cause: &EndCause) -> bool {
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
pub(in crate::call::core) fn reason_of(cause: &EndCause, by_us: bool) -> HangupReason {
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
    pub(in crate::call::core) fn connect(&mut self, action_id: ActionId, request: ConnectRequest) {
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
            deadline: Some(self.now + ring),
            request,
            legs: Vec::new(),
            winner: None,
            early: None,
            ringback: None,
            held_by: Vec::new(),
        });
        if self.leg.media.is_some() {
            return self.dial_all();
        }
        // Answer on bridge: the caller's session opens now, its 200 waits.
        self.open_caller(super::Answering::Connect);
    }

    /// The caller's session is open (for a connect): the destinations are dialled.
    pub(in crate::call::core) fn caller_ready_for_connect(&mut self) {
        if self.connect.is_some() {
            self.dial_all();
        }
    }

    /// The caller's session could not open: the connect fails.
    pub(in crate::call::core) fn connect_failed(&mut self, why: &str) {
        if let Some(mut c) = self.connect.take()
            && let Some(action) = c.action.take()
        {
            self.complete(action, Outcome::Failed(why.to_owned()));
        }
    }
}

/// Where a peer's SDP says its audio goes.
pub(in crate::call::core) fn remote_of(text: &str) -> Option<SocketAddr> {
    let sdp = SessionDescription::parse(text).ok()?;
    let m = sdp.media.first()?;
    let ip = sdp.media_addr(m)?;
    Some(SocketAddr::new(ip, m.port))
}
