//! Incoming calls: the INVITE in, then ring, answer or reject from the engine, and
//! the ACK or CANCEL that follows.

use std::net::SocketAddr;
use std::time::Instant;

use crate::dialog::prack::ReliableProvisional;
use crate::dialog::reason::Reason;
use crate::dialog::session_timer::{self, Refresher, SessionTimer, UasDecision};
use crate::dialog::{Dialog, DialogState};
use crate::msg::{HeaderName, Message, MessageBuilder};
use crate::transaction::{Transport, TxId};

use super::{Call, CallRef, EndCause, Phase, SUPPORTED, Side, UaError, UaEvent, UserAgent};

/// The reason phrase for a status we send (RFC 3261 section 21).
pub(crate) fn reason_phrase(status: u16) -> &'static str {
    match status {
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        302 => "Moved Temporarily",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        422 => "Session Interval Too Small",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        600 => "Busy Everywhere",
        603 => "Decline",
        _ => match status / 100 {
            1 => "Progress",
            2 => "OK",
            3 => "Redirect",
            4 => "Client Error",
            5 => "Server Error",
            _ => "Global Failure",
        },
    }
}

/// The extensions a request requires that we do not support (section 8.2.2.3).
pub(super) fn unsupported(msg: &Message) -> Vec<String> {
    msg.list(HeaderName::Require)
        .filter(|ext| {
            !SUPPORTED
                .split(", ")
                .any(|ours| ours.eq_ignore_ascii_case(ext.trim()))
        })
        .map(str::to_owned)
        .collect()
}

/// Why an INVITE cannot be served for its bodies: 415 for a body that is not SDP
/// (section 21.4.13, RFC 4475 section 3.3.6), 406 when its Accept excludes SDP
/// (section 21.4.7, RFC 4475 section 3.3.15). The header to add comes along.
fn refuse_media(msg: &Message) -> Option<(u16, Option<(&'static str, &'static str)>)> {
    let is_sdp = |t: &str| {
        let t = t.split(';').next().unwrap_or_default().trim();
        t.eq_ignore_ascii_case("application/sdp")
    };
    if !msg.body().is_empty()
        && let Some(ct) = msg.header(HeaderName::ContentType)
        && !is_sdp(ct)
    {
        return Some((415, Some(("Accept", "application/sdp"))));
    }
    let mut accept = msg.list(HeaderName::Accept).peekable();
    if accept.peek().is_some()
        && !accept.any(|t| {
            let t = t.split(';').next().unwrap_or_default().trim();
            is_sdp(t) || t == "*/*" || t.eq_ignore_ascii_case("application/*")
        })
    {
        return Some((406, None));
    }
    None
}

impl UserAgent {
    /// A new INVITE: refused at once when its bodies are not SDP (415, 406) or its
    /// session interval is too short (422), else a new call for the engine.
    pub(super) fn on_invite(
        &mut self,
        now: Instant,
        tx: TxId,
        msg: Message,
        source: SocketAddr,
        transport: Transport,
    ) {
        if let Some((status, header)) = refuse_media(&msg) {
            let mut b = MessageBuilder::reply(&msg, source, status, reason_phrase(status), None);
            if let Some((name, value)) = header {
                b = b.header(name, value);
            }
            self.send_reply(now, tx, b.finish());
            return;
        }
        if let UasDecision::TooSmall(min_se) =
            session_timer::uas_decide(&msg, session_timer::MIN_SE)
        {
            // RFC 4028 section 8.1.
            let reply = MessageBuilder::reply(&msg, source, 422, reason_phrase(422), None)
                .header("Min-SE", min_se)
                .finish();
            self.send_reply(now, tx, reply);
            return;
        }
        let offer = super::sdp_of(&msg);
        let peer_allows_update = msg
            .list(HeaderName::Allow)
            .any(|m| m.eq_ignore_ascii_case("UPDATE"));
        let id = self.new_call(Call {
            phase: Phase::Offered,
            invite: msg.clone(),
            invite_tx: tx,
            peer: source,
            transport,
            local_tag: super::random_token(),
            dialog: None,
            local_sdp: None,
            reliable: None,
            rseq: 0,
            outgoing: None,
            auth_attempts: 0,
            provisional_seen: false,
            cancel_reason: None,
            no_reply_at: None,
            pracked_rseq: None,
            ack: None,
            reinvite_pending: None,
            bye_on_ack: None,
            session_timer: None,
            peer_allows_update,
        });
        self.invites.insert(tx, id);
        self.events.push_back(UaEvent::Incoming {
            call: id,
            invite: msg,
            offer,
            source,
            transport,
        });
    }

    /// Sends a provisional response (180 ringing, 183 with SDP for early media).
    /// It goes reliably, with an RSeq and retransmitted until its PRACK, when the
    /// INVITE requires 100rel (RFC 3262 section 3).
    pub fn ring(
        &mut self,
        now: Instant,
        id: CallRef,
        status: u16,
        sdp: Option<&str>,
    ) -> Result<(), UaError> {
        if !(101..200).contains(&status) {
            return Err(UaError::BadStatus(status));
        }
        let transport = self.call_mut(id)?.transport;
        let contact = self.contact(transport);
        let t1 = self.config.timers.t1;
        let call = self.call_mut(id)?;
        if call.phase != Phase::Offered {
            return Err(wrong(call.phase, "ring"));
        }
        let reliable = call
            .invite
            .list(HeaderName::Require)
            .any(|t| t.eq_ignore_ascii_case("100rel"));
        if reliable && call.reliable.as_ref().is_some_and(|r| !r.acknowledged()) {
            return Err(UaError::WrongState {
                action: "send another reliable provisional on",
                state: "waiting for the PRACK of the last one",
            });
        }
        let mut b = MessageBuilder::reply(
            &call.invite,
            call.peer,
            status,
            reason_phrase(status),
            Some(&call.local_tag),
        )
        .header("Contact", contact)
        .header("Allow", super::ALLOW);
        if reliable {
            call.rseq += 1;
            b = b.header("Require", "100rel").header("RSeq", call.rseq);
        }
        let bytes = match sdp {
            Some(body) => b.body("application/sdp", body.as_bytes()),
            None => b.finish(),
        };
        if call.dialog.is_none() {
            call.dialog = Dialog::uas(&call.invite, &call.local_tag, DialogState::Early).ok();
        }
        if reliable {
            let cseq = call.invite.cseq().map(|c| c.seq).unwrap_or_default();
            call.reliable = Some(ReliableProvisional::new(
                now,
                t1,
                call.rseq,
                cseq,
                bytes.clone(),
            ));
        }
        if let Some(body) = sdp {
            call.local_sdp = Some(body.to_owned());
        }
        let tx = call.invite_tx;
        self.layer.send_response(now, tx, bytes)?;
        self.schedule(id);
        Ok(())
    }

    /// Answers with 200 and our SDP: the answer to the INVITE's offer, or our offer
    /// when the INVITE had none (then the answer comes in the ACK, as
    /// [`UaEvent::Acked`]). Adds the session timer the INVITE asked for (RFC 4028).
    pub fn answer(&mut self, now: Instant, id: CallRef, sdp: Option<&str>) -> Result<(), UaError> {
        let transport = self.call_mut(id)?.transport;
        let contact = self.contact(transport);
        let server = self.config.user_agent.clone();
        let call = self.call_mut(id)?;
        if call.phase != Phase::Offered {
            return Err(wrong(call.phase, "answer"));
        }
        let mut b =
            MessageBuilder::reply(&call.invite, call.peer, 200, "OK", Some(&call.local_tag))
                .header("Contact", contact)
                .header("Allow", super::ALLOW)
                .header("Supported", SUPPORTED)
                .header("Server", server);
        if let UasDecision::Use(se) = session_timer::uas_decide(&call.invite, session_timer::MIN_SE)
        {
            b = b.header("Session-Expires", se);
            let uac_supports = call
                .invite
                .list(HeaderName::Supported)
                .any(|t| t.eq_ignore_ascii_case("timer"));
            if uac_supports {
                b = b.header("Require", "timer");
            }
            call.session_timer = Some(SessionTimer::new(
                now,
                se.delta,
                se.refresher == Some(Refresher::Uas),
            ));
        }
        let bytes = match sdp {
            Some(body) => b.body("application/sdp", body.as_bytes()),
            None => b.finish(),
        };
        match call.dialog.as_mut() {
            Some(d) => d.state = DialogState::Confirmed,
            None => {
                call.dialog =
                    Dialog::uas(&call.invite, &call.local_tag, DialogState::Confirmed).ok();
            }
        }
        call.reliable = None;
        call.phase = Phase::AwaitingAck;
        if let Some(body) = sdp {
            call.local_sdp = Some(body.to_owned());
        }
        let tx = call.invite_tx;
        self.layer.send_response(now, tx, bytes)?;
        self.schedule(id);
        Ok(())
    }

    /// Refuses the call with a final status (300-699), a Reason header (RFC 3326)
    /// when given, and any extra headers (WWW-Authenticate for a challenge,
    /// Contact for a redirect, Retry-After, ...). The call ends.
    pub fn reject(
        &mut self,
        now: Instant,
        id: CallRef,
        status: u16,
        reason: Option<&Reason>,
        headers: &[(&str, &str)],
    ) -> Result<(), UaError> {
        if !(300..700).contains(&status) {
            return Err(UaError::BadStatus(status));
        }
        let call = self.call_mut(id)?;
        if call.phase != Phase::Offered {
            return Err(wrong(call.phase, "reject"));
        }
        let mut b = MessageBuilder::reply(
            &call.invite,
            call.peer,
            status,
            reason_phrase(status),
            Some(&call.local_tag),
        );
        if let Some(r) = reason {
            b = b.header("Reason", r);
        }
        for (name, value) in headers {
            b = b.header(name, value);
        }
        let tx = call.invite_tx;
        self.layer.send_response(now, tx, b.finish())?;
        self.end(id, Side::Local, EndCause::Rejected(status), None);
        Ok(())
    }

    /// An ACK for a 2xx of ours: the call is up (or a re-INVITE is done).
    pub(super) fn on_ack(&mut self, now: Instant, msg: &Message) {
        let Some(id) = self.call_of_request(msg) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if matches!(call.phase, Phase::AwaitingAck | Phase::Confirmed) {
            call.phase = Phase::Confirmed;
            self.events.push_back(UaEvent::Acked {
                call: id,
                sdp: super::sdp_of(msg),
            });
            // The engine hung up while the ACK was on its way: the BYE goes now.
            if let Some((reason, _)) = call.bye_on_ack.take() {
                self.bye_and_end(now, id, EndCause::Bye, reason);
            }
        }
    }

    /// A CANCEL matched an incoming INVITE: 487 to it, and the call ends (section 9.2).
    pub(super) fn on_cancelled(&mut self, now: Instant, tx: TxId) {
        let Some(id) = self.invites.get(&tx).copied() else {
            return;
        };
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.phase != Phase::Offered {
            return;
        }
        let reply = MessageBuilder::reply(
            &call.invite,
            call.peer,
            487,
            reason_phrase(487),
            Some(&call.local_tag),
        )
        .finish();
        self.send_reply(now, tx, reply);
        self.end(id, Side::Remote, EndCause::Cancelled, None);
    }
}

/// The error for an action a call's phase does not allow.
pub(super) fn wrong(phase: Phase, action: &'static str) -> UaError {
    UaError::WrongState {
        action,
        state: phase.name(),
    }
}
