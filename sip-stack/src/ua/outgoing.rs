//! Outgoing calls: the INVITE out (with an outbound proxy, credentials for a
//! challenge, a late offer), the responses to it, CANCEL, and the ACK.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use crate::auth;
use crate::dialog::Dialog;
use crate::dialog::prack::RAck;
use crate::dialog::session_timer::{Refresher, SessionExpires, SessionTimer};
use crate::msg::{HeaderName, Message, MessageBuilder};
use crate::transaction::{Transport, TxId};

use super::incoming::wrong;
use super::{
    ALLOW, Call, CallRef, EndCause, OutgoingCall, Phase, Purpose, SUPPORTED, Side, UaError,
    UaEvent, UserAgent,
};

/// Refuses header text that would end the line: a header value given by the engine
/// (from an API request) must not inject headers.
pub(super) fn check_header(name: &str, value: &str) -> Result<(), UaError> {
    let bad = |c: char| c == '\r' || c == '\n' || c == '\0';
    if name.is_empty() || name.contains(bad) || name.contains(':') || value.contains(bad) {
        return Err(UaError::Build(format!(
            "header {name:?} has a line break, NUL or colon where it may not"
        )));
    }
    Ok(())
}

impl UserAgent {
    /// Places a call: sends the INVITE and returns the call's handle. Progress,
    /// the answer and the end come as events.
    pub fn call(&mut self, now: Instant, spec: OutgoingCall) -> Result<CallRef, UaError> {
        for (name, value) in &spec.headers {
            check_header(name, value)?;
        }
        for text in [&spec.target, &spec.from] {
            check_header("uri", text)?;
        }
        let tag = super::random_token();
        let call_id = format!("{}@{}", super::random_token(), self.config.local.ip());
        let bytes = self.build_invite(&spec, &tag, &call_id, 1, None);
        let sent = self.send(now, bytes, spec.next_hop, spec.transport, &spec.target)?;
        let no_reply_at = spec.no_reply_timeout.map(|t| now + t);
        let id = self.new_call(Call {
            no_reply_at,
            phase: Phase::Calling,
            invite: sent.msg,
            invite_tx: sent.tx,
            peer: spec.next_hop,
            transport: sent.transport,
            local_tag: tag,
            dialog: None,
            local_sdp: spec.sdp.clone(),
            reliable: None,
            rseq: 0,
            outgoing: Some(spec),
            auth_attempts: 0,
            provisional_seen: false,
            cancel_reason: None,
            pracked_rseq: None,
            ack: None,
            reinvite_pending: None,
            bye_on_ack: None,
            session_timer: None,
            peer_allows_update: false,
        });
        self.client.insert(sent.tx, (id, Purpose::Invite));
        Ok(id)
    }

    /// The INVITE for `spec` (section 8.1.1), with an Authorization header when
    /// answering a challenge.
    fn build_invite(
        &self,
        spec: &OutgoingCall,
        tag: &str,
        call_id: &str,
        cseq: u32,
        authorization: Option<(&str, &str)>,
    ) -> Bytes {
        let transport = spec.transport.via_token();
        let to = spec
            .to
            .clone()
            .unwrap_or_else(|| format!("<{}>", spec.target));
        let mut b = MessageBuilder::request("INVITE", &spec.target)
            .header(
                "Via",
                format_args!(
                    "SIP/2.0/{transport} {};branch={};rport",
                    self.config.sent_by(spec.transport),
                    super::new_branch()
                ),
            )
            .header("Max-Forwards", spec.max_forwards)
            .header("From", format_args!("{};tag={tag}", spec.from))
            .header("To", to)
            .header("Call-ID", call_id)
            .header("CSeq", format_args!("{cseq} INVITE"))
            .header("Contact", self.contact(spec.transport));
        if spec.via_proxy {
            b = b.header("Route", format_args!("<sip:{};lr>", spec.next_hop));
        }
        b = b
            .header("Allow", ALLOW)
            .header("Supported", SUPPORTED)
            .header("User-Agent", &self.config.user_agent);
        if let Some(se) = self.config.session_expires {
            b = b.header("Session-Expires", se);
        }
        if let Some((name, value)) = authorization {
            b = b.header(name, value);
        }
        for (name, value) in &spec.headers {
            b = b.header(name, value);
        }
        match &spec.sdp {
            Some(sdp) => b.body("application/sdp", sdp.as_bytes()),
            None => b.finish(),
        }
    }

    /// Sends a probe: an OPTIONS to `target` outside any call (RFC 3261 section
    /// 11), to learn whether a next hop answers at all. Its final status comes as
    /// [`UaEvent::Probed`]; any status means the server is up.
    pub fn probe(
        &mut self,
        now: Instant,
        target: &str,
        next_hop: SocketAddr,
        transport: Transport,
    ) -> Result<TxId, UaError> {
        check_header("uri", target)?;
        let via = transport.via_token();
        let bytes = MessageBuilder::request("OPTIONS", target)
            .header(
                "Via",
                format_args!(
                    "SIP/2.0/{via} {};branch={};rport",
                    self.config.local,
                    super::new_branch()
                ),
            )
            .header("Max-Forwards", 70)
            .header(
                "From",
                format_args!(
                    "<sip:{}@{}>;tag={}",
                    self.config.contact_user,
                    self.config.local,
                    super::random_token()
                ),
            )
            .header("To", format_args!("<{target}>"))
            .header(
                "Call-ID",
                format_args!("{}@{}", super::random_token(), self.config.local.ip()),
            )
            .header("CSeq", "1 OPTIONS")
            .header("Accept", "application/sdp")
            .header("User-Agent", &self.config.user_agent)
            .finish();
        let sent = self.send(now, bytes, next_hop, transport, target)?;
        self.probes.insert(sent.tx);
        Ok(sent.tx)
    }

    /// A response on one of our client transactions.
    pub(super) fn on_response(&mut self, now: Instant, tx: TxId, msg: Message) {
        if self.probes.contains(&tx) {
            let status = msg.status().unwrap_or(500);
            if status >= 200 {
                self.probes.remove(&tx);
                self.events.push_back(UaEvent::Probed {
                    tx,
                    status: Some(status),
                });
            }
            return;
        }
        let Some((id, purpose)) = self.client.get(&tx).copied() else {
            return;
        };
        let status = msg.status().unwrap_or(500);
        let is_invite = msg.cseq().is_ok_and(|c| c.method == "INVITE");
        if purpose == Purpose::Invite {
            return self.on_invite_response(now, id, tx, status, msg);
        }
        if is_invite && (200..300).contains(&status) {
            // A 2xx to a re-INVITE: ACK it, and each retransmission of it.
            self.ack_reinvite(now, id, &msg);
        }
        if status < 200 {
            return;
        }
        if let Some(call) = self.calls.get_mut(&id)
            && call.reinvite_pending == Some(tx)
        {
            call.reinvite_pending = None;
            if (200..300).contains(&status) {
                if let Some(d) = call.dialog.as_mut() {
                    d.on_refresh_response(&msg);
                }
                if let Some(t) = call.session_timer.as_mut() {
                    t.on_refresh(now);
                }
            }
        }
        match purpose {
            Purpose::Engine => {
                self.client.insert(tx, (id, Purpose::Housekeeping));
                self.events.push_back(UaEvent::Response {
                    call: id,
                    tx,
                    status,
                    msg: Some(msg),
                });
            }
            Purpose::Refresh if status == 408 || status == 481 => {
                // RFC 4028 section 10: a refresh that fails this way ends the session.
                self.bye_and_end(now, id, EndCause::SessionExpired, None);
            }
            _ => {}
        }
        self.schedule(id);
    }

    fn on_invite_response(
        &mut self,
        now: Instant,
        id: CallRef,
        tx: TxId,
        status: u16,
        msg: Message,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        // The next hop is alive: timer B decides from here.
        call.no_reply_at = None;
        match status {
            100..=199 => {
                call.provisional_seen = true;
                if status > 100
                    && call.dialog.is_none()
                    && msg.to().ok().and_then(|t| t.tag()).is_some()
                {
                    call.dialog = Dialog::uac(&call.invite, &msg).ok();
                }
                if call.phase == Phase::Cancelling {
                    self.send_cancel(now, id);
                    return;
                }
                if status == 100 || call.phase != Phase::Calling {
                    return;
                }
                self.prack_if_reliable(now, id, &msg);
                self.events.push_back(UaEvent::Progress {
                    call: id,
                    status,
                    sdp: super::sdp_of(&msg),
                    msg,
                });
            }
            200..=299 => self.on_invite_2xx(now, id, msg),
            401 | 407 if call.phase == Phase::Calling && call.auth_attempts < 2 => {
                if self
                    .retry_with_credentials(now, id, tx, status, &msg)
                    .is_err()
                {
                    self.end(id, Side::Remote, EndCause::Rejected(status), None);
                }
            }
            _ => {
                let by = Side::Remote;
                match call.phase {
                    Phase::Calling => self.end(id, by, EndCause::Rejected(status), None),
                    Phase::Cancelling => self.forget(id),
                    _ => {}
                }
            }
        }
    }

    fn on_invite_2xx(&mut self, now: Instant, id: CallRef, msg: Message) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        match call.phase {
            Phase::Calling | Phase::Cancelling => {
                let cancelling = call.phase == Phase::Cancelling;
                // The 2xx makes the dialog (section 13.2.2.4), replacing an early one.
                call.dialog = Dialog::uac(&call.invite, &msg).ok();
                if call.dialog.is_none() {
                    tracing::debug!("a 2xx without a usable To tag or Contact; it cannot be ACKed");
                    if !cancelling {
                        self.end(id, Side::Remote, EndCause::Rejected(500), None);
                    }
                    return;
                }
                call.peer_allows_update = msg
                    .list(HeaderName::Allow)
                    .any(|m| m.eq_ignore_ascii_case("UPDATE"));
                if let Some(se) = SessionExpires::of(&msg) {
                    call.session_timer = Some(SessionTimer::new(
                        now,
                        se.delta,
                        se.refresher != Some(Refresher::Uas),
                    ));
                }
                let late_offer = call.invite.body().is_empty();
                if cancelling {
                    // Too late to cancel: ACK, then BYE (section 9.1).
                    self.send_ack(now, id, None);
                    self.send_bye(now, id, None);
                    self.forget(id);
                    return;
                }
                if late_offer {
                    call.phase = Phase::AwaitingOurAck;
                } else {
                    call.phase = Phase::Confirmed;
                    self.send_ack(now, id, None);
                }
                self.events.push_back(UaEvent::Answered {
                    call: id,
                    sdp: super::sdp_of(&msg),
                    msg,
                });
                self.schedule(id);
            }
            // A retransmitted 2xx: the same ACK again (section 13.2.2.4).
            _ => self.resend_ack(id),
        }
    }

    /// Sends the ACK the engine owes for a late offer, with its SDP answer.
    pub fn ack(&mut self, now: Instant, id: CallRef, sdp: Option<&str>) -> Result<(), UaError> {
        let call = self.call_mut(id)?;
        if call.phase != Phase::AwaitingOurAck {
            return Err(wrong(call.phase, "ACK"));
        }
        call.phase = Phase::Confirmed;
        if let Some(s) = sdp {
            call.local_sdp = Some(s.to_owned());
        }
        self.send_ack(now, id, sdp);
        Ok(())
    }

    /// Builds, sends and keeps the ACK for the INVITE's 2xx (section 13.2.2.4).
    pub(super) fn send_ack(&mut self, _now: Instant, id: CallRef, sdp: Option<&str>) {
        let sent_by = self.config.local.to_string();
        let ua = self.config.user_agent.clone();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(dialog) = call.dialog.as_ref() else {
            return;
        };
        let seq = call.invite.cseq().map(|c| c.seq).unwrap_or(1);
        let b = dialog
            .request_with_seq(
                "ACK",
                seq,
                &sent_by,
                via_transport(call.transport),
                &super::new_branch(),
            )
            .header("User-Agent", ua);
        let bytes = match sdp {
            Some(s) => b.body("application/sdp", s.as_bytes()),
            None => b.finish(),
        };
        call.ack = Some(bytes.clone());
        let (peer, transport) = (call.peer, call.transport);
        self.layer.send_stateless(peer, transport, bytes);
    }

    fn resend_ack(&mut self, id: CallRef) {
        if let Some(call) = self.calls.get(&id)
            && let Some(ack) = call.ack.clone()
        {
            let (peer, transport) = (call.peer, call.transport);
            self.layer.send_stateless(peer, transport, ack);
        }
    }

    /// ACKs a 2xx to a re-INVITE of ours, with that re-INVITE's CSeq.
    fn ack_reinvite(&mut self, _now: Instant, id: CallRef, response: &Message) {
        let sent_by = self.config.local.to_string();
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let (Some(dialog), Ok(cseq)) = (call.dialog.as_ref(), response.cseq()) else {
            return;
        };
        let bytes = dialog
            .request_with_seq(
                "ACK",
                cseq.seq,
                &sent_by,
                via_transport(call.transport),
                &super::new_branch(),
            )
            .finish();
        let (peer, transport) = (call.peer, call.transport);
        self.layer.send_stateless(peer, transport, bytes);
    }

    /// A late 2xx retransmission after the INVITE's transaction ended: ACK it again.
    pub(super) fn on_stray(&mut self, msg: &Message) {
        let ours = msg.from().ok().and_then(|f| f.tag().map(str::to_owned));
        let key = msg.call_id().ok().zip(ours).map(|(c, t)| (c.to_owned(), t));
        if let Some(id) = key.and_then(|k| self.dialogs.get(&k).copied()) {
            self.resend_ack(id);
        }
    }

    /// Answers a reliable provisional with PRACK (RFC 3262 section 4), once per RSeq.
    fn prack_if_reliable(&mut self, now: Instant, id: CallRef, msg: &Message) {
        let required = msg
            .list(HeaderName::Require)
            .any(|t| t.eq_ignore_ascii_case("100rel"));
        let rseq = msg
            .header(HeaderName::RSeq)
            .and_then(|v| v.trim().parse::<u32>().ok());
        let (true, Some(rseq)) = (required, rseq) else {
            return;
        };
        let sent_by = self.config.local.to_string();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.pracked_rseq.is_some_and(|last| rseq <= last) {
            return;
        }
        call.pracked_rseq = Some(rseq);
        let cseq = call.invite.cseq().map(|c| c.seq).unwrap_or(1);
        let transport = call.transport;
        let Some(dialog) = call.dialog.as_mut() else {
            return;
        };
        let rack = RAck {
            rseq,
            cseq,
            method: "INVITE".into(),
        };
        let bytes = dialog
            .request(
                "PRACK",
                &sent_by,
                via_transport(transport),
                &super::new_branch(),
            )
            .header(
                "RAck",
                format_args!("{} {} {}", rack.rseq, rack.cseq, rack.method),
            )
            .finish();
        let (peer, uri) = (call.peer, dialog.remote_target.clone());
        if let Ok(sent) = self.send(now, bytes, peer, transport, &uri) {
            self.client.insert(sent.tx, (id, Purpose::Housekeeping));
        }
    }

    /// Sends the INVITE again with credentials for a 401/407 (RFC 8760): same
    /// Call-ID and tag, the next CSeq, a new branch.
    fn retry_with_credentials(
        &mut self,
        now: Instant,
        id: CallRef,
        old_tx: TxId,
        status: u16,
        challenge: &Message,
    ) -> Result<(), UaError> {
        let call = self.call_mut(id)?;
        let spec = call
            .outgoing
            .clone()
            .ok_or(UaError::Build("no call to retry".into()))?;
        let creds = spec
            .credentials
            .clone()
            .ok_or(UaError::Build("no credentials".into()))?;
        let (challenge_header, answer_header) = if status == 407 {
            (HeaderName::ProxyAuthenticate, "Proxy-Authorization")
        } else {
            (HeaderName::WwwAuthenticate, "Authorization")
        };
        let challenges: Vec<&str> = challenge
            .headers()
            .filter(|h| h.kind == challenge_header)
            .map(|h| h.value)
            .collect();
        let answer = auth::answer(
            &challenges,
            "INVITE",
            &spec.target,
            &creds.username,
            &creds.password,
            &super::random_token(),
            1,
        )
        .ok_or(UaError::Build("no digest challenge we can answer".into()))?;
        call.auth_attempts += 1;
        let cseq = call.invite.cseq().map(|c| c.seq).unwrap_or(1) + 1;
        let call_id = call.invite.call_id().unwrap_or_default().to_owned();
        let tag = call.local_tag.clone();
        let bytes = self.build_invite(&spec, &tag, &call_id, cseq, Some((answer_header, &answer)));
        let sent = self.send(now, bytes, spec.next_hop, spec.transport, &spec.target)?;
        self.client.remove(&old_tx);
        self.client.insert(sent.tx, (id, Purpose::Invite));
        let call = self.call_mut(id)?;
        call.invite = sent.msg;
        call.invite_tx = sent.tx;
        call.transport = sent.transport;
        call.provisional_seen = false;
        Ok(())
    }

    /// CANCELs our INVITE (section 9.1): its Request-URI, top Via, From, To,
    /// Call-ID, CSeq number and Route, with the method CANCEL.
    pub(super) fn send_cancel(&mut self, now: Instant, id: CallRef) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let invite = &call.invite;
        let uri = invite.request_uri().unwrap_or_default().to_owned();
        let mut b = MessageBuilder::request("CANCEL", &uri);
        if let Some(via) = invite.list(HeaderName::Via).next() {
            b = b.header("Via", via);
        }
        b = b.header("Max-Forwards", 70);
        for h in invite.headers() {
            if matches!(
                h.kind,
                HeaderName::From | HeaderName::To | HeaderName::CallId | HeaderName::Route
            ) {
                b = b.header(h.kind.as_str(), h.value);
            }
        }
        if let Some(reason) = &call.cancel_reason {
            // RFC 3326 section 2: why the request is cancelled ("Call completed
            // elsewhere" for a forked call answered on another branch).
            b = b.header("Reason", reason);
        }
        let seq = invite.cseq().map(|c| c.seq).unwrap_or(1);
        let bytes = b.header("CSeq", format_args!("{seq} CANCEL")).finish();
        let (peer, transport) = (call.peer, call.transport);
        if let Ok(msg) = crate::msg::parse_datagram(bytes)
            && let Ok(tx) = self.layer.send_request(now, msg, peer, transport)
        {
            self.client.insert(tx, (id, Purpose::Housekeeping));
        }
    }

    /// A transaction that got no answer in time.
    pub(super) fn on_tx_timeout(&mut self, now: Instant, tx: TxId) {
        if self.probes.remove(&tx) {
            self.events.push_back(UaEvent::Probed { tx, status: None });
            return;
        }
        if let Some((id, purpose)) = self.client.get(&tx).copied() {
            match purpose {
                Purpose::Invite => match self.calls.get(&id).map(|c| c.phase) {
                    Some(Phase::Calling) => self.end(id, Side::Local, EndCause::Timeout, None),
                    Some(Phase::Cancelling) => self.forget(id),
                    _ => {}
                },
                Purpose::Engine => self.events.push_back(UaEvent::Response {
                    call: id,
                    tx,
                    status: 408,
                    msg: None,
                }),
                Purpose::Refresh => {
                    self.bye_and_end(now, id, EndCause::SessionExpired, None);
                }
                Purpose::Housekeeping => {}
            }
            return;
        }
        // Our 2xx got no ACK in 64*T1 (section 13.3.1.4): end the call with a BYE.
        if let Some(id) = self.invites.get(&tx).copied()
            && self
                .calls
                .get(&id)
                .is_some_and(|c| c.phase == Phase::AwaitingAck)
        {
            // An engine that hung up meanwhile gets the BYE it asked for, with its
            // Reason; the call ended by its hangup (section 15).
            let (cause, reason) = match self.calls.get_mut(&id).and_then(|c| c.bye_on_ack.take()) {
                Some((reason, _)) => (EndCause::Bye, reason),
                None => (EndCause::Timeout, None),
            };
            self.bye_and_end(now, id, cause, reason);
        }
    }
}

/// The Via transport token.
pub(super) fn via_transport(t: Transport) -> &'static str {
    t.via_token()
}
