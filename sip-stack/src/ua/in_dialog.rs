//! Inside a call: requests from the peer (BYE, re-INVITE, UPDATE, INFO, PRACK,
//! OPTIONS, ...), the engine's own requests and responses, hanging up, and the
//! call's timers (reliable provisionals, session timers).

use std::net::SocketAddr;
use std::time::Instant;

use crate::dialog::DialogError;
use crate::dialog::info;
use crate::dialog::prack::Retransmit;
use crate::dialog::reason::Reason;
use crate::dialog::session_timer::{SessionExpires, SessionTimerAction};
use crate::msg::{HeaderName, Message, MessageBuilder, Method};
use crate::transaction::TxId;

use super::incoming::{reason_phrase, wrong};
use super::outgoing::{check_header, via_transport};
use super::{CallRef, EndCause, Phase, Purpose, Side, UaError, UaEvent, UserAgent};

impl UserAgent {
    /// Forgets a call whose end was announced already.
    pub(super) fn forget(&mut self, id: CallRef) {
        if let Some(call) = self.calls.remove(&id)
            && let Some(key) = call.dialog_key()
        {
            self.dialogs.remove(&key);
        }
    }

    /// A request with a To tag: it must belong to one of our calls (section 12.2.2).
    pub(super) fn on_dialog_request(
        &mut self,
        now: Instant,
        tx: TxId,
        msg: Message,
        source: SocketAddr,
    ) {
        let method = msg.method().cloned();
        let Some(id) = self.call_of_request(&msg) else {
            return self.reply(now, tx, &msg, source, 481, reason_phrase(481));
        };
        let checked = match self.calls.get_mut(&id).and_then(|c| c.dialog.as_mut()) {
            Some(dialog) => dialog.on_request(&msg),
            None => Err(DialogError::Malformed("dialog")),
        };
        match checked {
            Ok(()) => {}
            Err(DialogError::OutOfOrder { .. }) => {
                return self.reply(now, tx, &msg, source, 500, "CSeq Out Of Order");
            }
            Err(_) => return self.reply(now, tx, &msg, source, 481, reason_phrase(481)),
        }
        match method {
            Some(Method::Bye) => {
                self.reply(now, tx, &msg, source, 200, "OK");
                if let Some(call) = self.calls.get(&id)
                    && call.phase == Phase::Offered
                {
                    let reply = MessageBuilder::reply(
                        &call.invite,
                        call.peer,
                        487,
                        reason_phrase(487),
                        Some(&call.local_tag),
                    )
                    .finish();
                    let invite_tx = call.invite_tx;
                    self.send_reply(now, invite_tx, reply);
                }
                let reason = msg
                    .header(HeaderName::Reason)
                    .and_then(|v| Reason::parse_all(v).into_iter().next());
                self.end(id, Side::Remote, EndCause::Bye, reason);
            }
            Some(Method::Invite | Method::Update)
                if self
                    .calls
                    .get(&id)
                    .is_some_and(|c| c.reinvite_pending.is_some()) =>
            {
                // Glare (section 14.2, RFC 3311 section 5.2).
                let reply = MessageBuilder::reply(&msg, source, 491, reason_phrase(491), None)
                    .header("Retry-After", 1)
                    .finish();
                self.send_reply(now, tx, reply);
            }
            Some(Method::Update) if msg.body().is_empty() => {
                // A session refresh without SDP (RFC 4028 section 7.4): nothing for
                // the engine; 200 with the interval, and the timer starts over.
                let transport = self
                    .calls
                    .get(&id)
                    .map_or(crate::transaction::Transport::Udp, |c| c.transport);
                let mut b = MessageBuilder::reply(&msg, source, 200, "OK", None)
                    .header("Contact", self.contact(transport));
                if let Some(se) = SessionExpires::of(&msg) {
                    b = b.header("Session-Expires", se).header("Require", "timer");
                }
                self.send_reply(now, tx, b.finish());
                if let Some(t) = self
                    .calls
                    .get_mut(&id)
                    .and_then(|c| c.session_timer.as_mut())
                {
                    t.on_refresh(now);
                }
                self.schedule(id);
            }
            Some(Method::Prack) => {
                let matched = self
                    .calls
                    .get_mut(&id)
                    .and_then(|c| c.reliable.as_mut())
                    .is_some_and(|r| r.on_prack(&msg));
                let status = if matched { 200 } else { 481 };
                self.reply(now, tx, &msg, source, status, reason_phrase(status));
            }
            Some(Method::Options) => {
                let reply = self.options_reply(&msg, source);
                self.send_reply(now, tx, reply);
            }
            Some(Method::Info)
                if let Some(digit) = msg
                    .header(HeaderName::ContentType)
                    .zip(std::str::from_utf8(msg.body()).ok())
                    .and_then(|(ct, body)| info::parse(ct, body)) =>
            {
                self.reply(now, tx, &msg, source, 200, "OK");
                self.events.push_back(UaEvent::Dtmf { call: id, digit });
            }
            _ => {
                self.pending.insert(tx, (msg.clone(), source, Some(id)));
                self.events.push_back(UaEvent::Request {
                    call: Some(id),
                    tx,
                    msg,
                    source,
                });
            }
        }
    }

    /// Answers a request the engine got as [`UaEvent::Request`]: any status, extra
    /// headers, and a body. A 2xx to a re-INVITE or UPDATE gets our Contact and
    /// counts as a session refresh (RFC 4028).
    pub fn respond(
        &mut self,
        now: Instant,
        tx: TxId,
        status: u16,
        headers: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> Result<(), UaError> {
        if !(101..700).contains(&status) {
            return Err(UaError::BadStatus(status));
        }
        for (name, value) in headers {
            check_header(name, value)?;
        }
        let Some((msg, source, call)) = self.pending.get(&tx).cloned() else {
            return Err(UaError::Send(crate::transaction::SendError::NoTransaction(
                tx,
            )));
        };
        let tag = super::random_token();
        let mut b = MessageBuilder::reply(&msg, source, status, reason_phrase(status), Some(&tag));
        let refresh = matches!(msg.method(), Some(Method::Invite | Method::Update));
        if refresh && (200..300).contains(&status) {
            let transport = call
                .and_then(|id| self.calls.get(&id))
                .map_or(crate::transaction::Transport::Udp, |c| c.transport);
            b = b.header("Contact", self.contact(transport));
            if let Some(t) = call
                .and_then(|id| self.calls.get_mut(&id))
                .and_then(|c| c.session_timer.as_mut())
            {
                t.on_refresh(now);
            }
        }
        for (name, value) in headers {
            b = b.header(name, value);
        }
        let bytes = match body {
            Some((content_type, data)) => b.body(content_type, data),
            None => b.finish(),
        };
        self.layer.send_response(now, tx, bytes)?;
        if status >= 200 {
            self.pending.remove(&tx);
        }
        if let Some(id) = call {
            self.schedule(id);
        }
        Ok(())
    }

    /// Sends a request inside an answered call (re-INVITE for hold or a codec
    /// change, UPDATE, INFO, REFER, ...), with extra headers and a body. Its final
    /// response comes as [`UaEvent::Response`].
    pub fn request(
        &mut self,
        now: Instant,
        id: CallRef,
        method: Method,
        headers: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> Result<TxId, UaError> {
        for (name, value) in headers {
            check_header(name, value)?;
        }
        if !crate::msg::grammar::is_token(method.as_str())
            || matches!(method, Method::Ack | Method::Cancel | Method::Bye)
        {
            return Err(UaError::Build(format!(
                "{method:?} is not a method to send this way (ACK, CANCEL and BYE are the user agent's)"
            )));
        }
        let sent_by = self.config.local.to_string();
        let transport = self.call_mut(id)?.transport;
        let contact = self.contact(transport);
        let call = self.call_mut(id)?;
        if !matches!(call.phase, Phase::Confirmed | Phase::AwaitingAck) {
            return Err(wrong(call.phase, "send a request in"));
        }
        let refresh = matches!(method, Method::Invite | Method::Update);
        if refresh && call.reinvite_pending.is_some() {
            return Err(UaError::WrongState {
                action: "send a re-INVITE or UPDATE in",
                state: "waiting for the answer to the last one",
            });
        }
        let transport = call.transport;
        let Some(dialog) = call.dialog.as_mut() else {
            return Err(wrong(call.phase, "send a request in"));
        };
        let mut b = dialog.request(
            method.as_str(),
            &sent_by,
            via_transport(transport),
            &super::new_branch(),
        );
        if refresh {
            b = b.header("Contact", contact);
        }
        for (name, value) in headers {
            b = b.header(name, value);
        }
        let bytes = match body {
            Some((content_type, data)) => b.body(content_type, data),
            None => b.finish(),
        };
        let (peer, uri) = (call.peer, dialog.remote_target.clone());
        if refresh
            && let Some((ct, data)) = body
            && ct.eq_ignore_ascii_case("application/sdp")
        {
            call.local_sdp = std::str::from_utf8(data).ok().map(str::to_owned);
        }
        let sent = self.send(now, bytes, peer, transport, &uri)?;
        self.client.insert(sent.tx, (id, Purpose::Engine));
        if refresh && let Some(call) = self.calls.get_mut(&id) {
            call.reinvite_pending = Some(sent.tx);
        }
        Ok(sent.tx)
    }

    /// Ends the call from our side, whatever its state: before the answer, an
    /// incoming call gets 480 and an outgoing one a CANCEL; after it, a BYE. The
    /// Reason header (RFC 3326) goes along when given. [`UaEvent::Ended`] follows.
    pub fn hangup(
        &mut self,
        now: Instant,
        id: CallRef,
        reason: Option<&Reason>,
    ) -> Result<(), UaError> {
        let phase = self.call_mut(id)?.phase;
        match phase {
            Phase::Offered => self.reject(now, id, 480, reason, &[]),
            Phase::Calling => {
                let call = self.call_mut(id)?;
                call.phase = Phase::Cancelling;
                call.cancel_reason = reason.cloned();
                let provisional_seen = call.provisional_seen;
                self.events.push_back(UaEvent::Ended {
                    call: id,
                    by: Side::Local,
                    cause: EndCause::Cancelled,
                    reason: reason.cloned(),
                });
                // A CANCEL waits for a provisional response (section 9.1).
                if provisional_seen {
                    self.send_cancel(now, id);
                }
                Ok(())
            }
            Phase::Cancelling => Err(UaError::NoCall(id)),
            Phase::AwaitingAck => {
                // Section 15: the callee MUST NOT send a BYE before the ACK for its 2xx
                // (or the end of the transaction): a lost 2xx would otherwise meet a
                // BYE for a call the caller never saw answered. It goes with the ACK.
                let give_up = now + self.config.timers.t1 * 64;
                let call = self.call_mut(id)?;
                if call.bye_on_ack.is_none() {
                    call.bye_on_ack = Some((reason.cloned(), give_up));
                    self.schedule(id);
                }
                Ok(())
            }
            Phase::AwaitingOurAck | Phase::Confirmed => {
                if phase == Phase::AwaitingOurAck {
                    self.send_ack(now, id, None);
                }
                self.bye_and_end(now, id, EndCause::Bye, reason.cloned());
                Ok(())
            }
        }
    }

    /// Ends the call from our side: a BYE (with `reason`, RFC 3326) and the engine's
    /// `Ended` with `cause`.
    pub(super) fn bye_and_end(
        &mut self,
        now: Instant,
        id: CallRef,
        cause: EndCause,
        reason: Option<Reason>,
    ) {
        self.send_bye(now, id, reason.as_ref());
        self.end(id, Side::Local, cause, reason);
    }

    /// Sends a BYE in the call's dialog.
    pub(super) fn send_bye(&mut self, now: Instant, id: CallRef, reason: Option<&Reason>) {
        let sent_by = self.config.local.to_string();
        let ua = self.config.user_agent.clone();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let transport = call.transport;
        let Some(dialog) = call.dialog.as_mut() else {
            return;
        };
        let mut b = dialog
            .request(
                "BYE",
                &sent_by,
                via_transport(transport),
                &super::new_branch(),
            )
            .header("User-Agent", ua);
        if let Some(r) = reason {
            b = b.header("Reason", r);
        }
        let (peer, uri) = (call.peer, dialog.remote_target.clone());
        if let Ok(sent) = self.send(now, b.finish(), peer, transport, &uri) {
            self.client.insert(sent.tx, (id, Purpose::Housekeeping));
        }
    }

    /// Runs a call's own timers: reliable provisional retransmissions and the
    /// session timer.
    pub(super) fn call_timers(&mut self, now: Instant, id: CallRef) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        // Nothing at all from the next hop in time: it is given up (its INVITE's
        // retransmissions stop), so the engine can try another route before
        // timer B.
        if call.no_reply_at.is_some_and(|at| at <= now) {
            call.no_reply_at = None;
            if call.phase == Phase::Calling {
                let tx = call.invite_tx;
                self.layer.terminate(tx);
                let reason = Reason::sip(408, "No reply from the next hop");
                self.end(id, Side::Local, EndCause::Timeout, Some(reason));
                return;
            }
        }
        // A BYE that waited for the ACK in vain goes now (section 15).
        if call.bye_on_ack.as_ref().is_some_and(|(_, at)| *at <= now)
            && let Some((reason, _)) = call.bye_on_ack.take()
        {
            self.bye_and_end(now, id, EndCause::Bye, reason);
            return;
        }
        let prack = call.reliable.as_mut().and_then(|r| r.on_timeout(now));
        let session = call.session_timer.as_mut().and_then(|t| t.on_timeout(now));
        let invite_tx = call.invite_tx;
        match prack {
            Some(Retransmit::Send(bytes)) => {
                self.send_reply(now, invite_tx, bytes);
            }
            Some(Retransmit::GiveUp) => {
                // RFC 3262 section 3: no PRACK in 64*T1, reject with a 5xx.
                if let Err(e) = self.reject(now, id, 504, None, &[]) {
                    tracing::debug!(error = %e, "the unacknowledged call was gone already");
                }
                return;
            }
            None => {}
        }
        match session {
            Some(SessionTimerAction::Refresh) => self.refresh_session(now, id),
            Some(SessionTimerAction::Expire) => {
                let reason = Reason::sip(408, "Session expired");
                self.bye_and_end(now, id, EndCause::SessionExpired, Some(reason));
                return;
            }
            None => {}
        }
        self.schedule(id);
    }

    /// Refreshes the session (RFC 4028 section 7.4): UPDATE without a body when the
    /// peer allows it, else a re-INVITE with our last SDP.
    fn refresh_session(&mut self, now: Instant, id: CallRef) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.reinvite_pending.is_some() || call.phase != Phase::Confirmed {
            return;
        }
        let sdp = call.local_sdp.clone();
        let interval = call
            .session_timer
            .as_ref()
            .map(|t| t.interval_secs())
            .unwrap_or(1800);
        let se = format!(
            "{interval};refresher={}",
            if call.incoming() { "uas" } else { "uac" }
        );
        let headers = [("Session-Expires", se.as_str()), ("Supported", "timer")];
        let result = if call.peer_allows_update || sdp.is_none() {
            self.request(now, id, Method::Update, &headers, None)
        } else {
            let body = sdp.unwrap_or_default();
            self.request(
                now,
                id,
                Method::Invite,
                &headers,
                Some(("application/sdp", body.as_bytes())),
            )
        };
        if let Ok(tx) = result {
            self.client.insert(tx, (id, Purpose::Refresh));
        }
    }
}
