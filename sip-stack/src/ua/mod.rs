//! The user agent the engine drives: calls in and out on top of the transaction
//! layer and dialogs, sans-IO like the layers under it.
//!
//! It owns a [`TransactionLayer`]. Feed it what arrives ([`UserAgent::receive`]) and
//! the time ([`UserAgent::handle_timeout`]); drain [`UserAgent::poll_transmit`] onto
//! the wire and [`UserAgent::poll_event`] to the engine; sleep until
//! [`UserAgent::poll_timeout`]. The engine answers events with commands (ring,
//! answer, reject, hangup, request, respond) and places calls with
//! [`UserAgent::call`]. [`driver`] runs it on tokio sockets.
//!
//! What it does by itself: 100 Trying, ACKs, CANCEL handling (487), 481 to requests
//! outside any dialog, 491 on re-INVITE glare (RFC 3261 section 14.2), OPTIONS
//! (200 with Allow, Accept, Supported), SIP INFO DTMF, PRACK both ways (RFC 3262),
//! session timers (RFC 4028: 422 for a short interval, refresh by UPDATE or
//! re-INVITE, BYE on expiry), answering digest challenges (RFC 8760), and a BYE
//! when the ACK for our 2xx never comes (section 13.3.1.4).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use crate::dialog::prack::ReliableProvisional;
use crate::dialog::session_timer::SessionTimer;
use crate::dialog::{Dialog, DialogId};
use crate::msg::{Message, MessageBuilder, Method};
use crate::transaction::{TimerConfig, TransactionLayer, Transmit, Transport, TxEvent, TxId};

/// The tokio driver: the user agent on real sockets, commanded through a handle.
#[cfg(feature = "tokio")]
pub mod driver;
mod event;
mod in_dialog;
mod incoming;
mod outgoing;
pub mod screen;

pub use event::{
    CallRef, Credentials, DEFAULT_MAX_FORWARDS, EndCause, OutgoingCall, Side, UaError, UaEvent,
};

/// The methods we accept (Allow). REFER and MESSAGE join when transfers and
/// messaging are carried out; until then a peer is not invited to send them.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK, NOTIFY";
/// The extensions we support (Supported): reliable provisionals (RFC 3262) and
/// session timers (RFC 4028). Not `replaces` (RFC 3891): an INVITE that requires it
/// gets 420.
pub const SUPPORTED: &str = "100rel, timer";

/// How the user agent presents itself and its limits.
#[derive(Debug, Clone)]
pub struct UaConfig {
    /// Our SIP address: the Via sent-by and the Contact host.
    pub local: SocketAddr,
    /// Where we take TLS connections, when we do: the Contact (and INVITE Via)
    /// of a call over TLS, so that the peer's requests reach a TLS listener.
    pub tls_local: Option<SocketAddr>,
    /// The user part of our Contact.
    pub contact_user: String,
    /// The User-Agent and Server header.
    pub user_agent: String,
    /// T1, T2, T4.
    pub timers: TimerConfig,
    /// The most open transactions (new requests get 503 beyond).
    pub max_transactions: usize,
    /// The session interval we ask for on outgoing calls (RFC 4028), and the
    /// smallest we accept (Min-SE); `None` asks for none.
    pub session_expires: Option<u32>,
}

impl UaConfig {
    /// Our address for requests over `transport`: the TLS listener's for TLS when
    /// there is one, else `local`.
    pub fn sent_by(&self, transport: Transport) -> SocketAddr {
        match (transport, self.tls_local) {
            (Transport::Tls, Some(tls)) => tls,
            _ => self.local,
        }
    }

    /// Defaults for a user agent at `local`.
    pub fn new(local: SocketAddr) -> Self {
        Self {
            local,
            tls_local: None,
            contact_user: "voipbin".into(),
            user_agent: concat!("voipbin/", env!("CARGO_PKG_VERSION")).into(),
            timers: TimerConfig::default(),
            max_transactions: 200_000,
            session_expires: Some(1800),
        }
    }
}

/// Where a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Incoming, no final response yet.
    Offered,
    /// Outgoing, no final response yet.
    Calling,
    /// Incoming, our 2xx sent, its ACK not here yet.
    AwaitingAck,
    /// Outgoing, 2xx received, the engine owes the ACK (late offer).
    AwaitingOurAck,
    /// Up.
    Confirmed,
    /// Outgoing, the engine hung up before the answer: CANCEL sent or waiting for a
    /// provisional to send it; a 2xx that still comes gets ACK and BYE.
    Cancelling,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Offered => "ringing (incoming)",
            Phase::Calling => "dialing (outgoing)",
            Phase::AwaitingAck => "answered, waiting for the ACK",
            Phase::AwaitingOurAck => "answered, waiting for our ACK",
            Phase::Confirmed => "up",
            Phase::Cancelling => "being cancelled",
        }
    }
}

/// One call.
#[derive(Debug)]
struct Call {
    phase: Phase,
    /// The INVITE: the peer's (incoming) or our latest (outgoing: retried with
    /// credentials, needed for CANCEL and the ACK).
    invite: Message,
    invite_tx: TxId,
    /// Where the INVITE came from (incoming) or where requests go (next hop).
    peer: SocketAddr,
    transport: Transport,
    local_tag: String,
    /// Once a tagged response exists.
    dialog: Option<Dialog>,
    /// Our last SDP (for a session refresh by re-INVITE).
    local_sdp: Option<String>,
    /// Incoming: a reliable provisional waiting for its PRACK, and the last RSeq.
    reliable: Option<ReliableProvisional>,
    rseq: u32,
    /// Outgoing: what was asked, for retries with credentials.
    outgoing: Option<OutgoingCall>,
    auth_attempts: u32,
    /// Outgoing: a provisional came (a CANCEL may be sent, section 9.1).
    provisional_seen: bool,
    /// Outgoing: why we cancel, sent in the CANCEL's Reason header (RFC 3326).
    cancel_reason: Option<crate::dialog::reason::Reason>,
    /// Outgoing: when the next hop is given up if it has not answered at all
    /// ([`OutgoingCall::no_reply_timeout`]); gone with its first response.
    no_reply_at: Option<Instant>,
    /// Outgoing: the last RSeq we PRACKed.
    pracked_rseq: Option<u32>,
    /// Outgoing: our ACK for the 2xx, sent again for each retransmitted 2xx.
    ack: Option<Bytes>,
    /// Our re-INVITE waiting for its final response (glare, section 14.1).
    reinvite_pending: Option<TxId>,
    /// Incoming: the engine hung up before our 2xx was ACKed; the BYE (with this
    /// Reason) waits for the ACK, or goes at the deadline (64*T1, when the ACK
    /// would be given up on: section 15).
    bye_on_ack: Option<(Option<crate::dialog::reason::Reason>, Instant)>,
    session_timer: Option<SessionTimer>,
    /// The peer allows UPDATE (a session refresh without SDP).
    peer_allows_update: bool,
}

impl Call {
    /// Whether the peer called us.
    fn incoming(&self) -> bool {
        self.outgoing.is_none()
    }

    fn dialog_key(&self) -> Option<(String, String)> {
        Some((
            self.invite.call_id().ok()?.to_owned(),
            self.local_tag.clone(),
        ))
    }

    /// The next timer this call has of its own.
    fn next_timer(&self) -> Option<Instant> {
        let prack = self.reliable.as_ref().and_then(|r| r.poll_timeout());
        let session = self.session_timer.as_ref().map(|t| t.poll_timeout());
        let bye = self.bye_on_ack.as_ref().map(|(_, at)| *at);
        prack
            .into_iter()
            .chain(session)
            .chain(bye)
            .chain(self.no_reply_at)
            .min()
    }
}

/// What a client transaction of ours was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// The call's INVITE.
    Invite,
    /// A CANCEL, BYE, PRACK or our session refresh: its response matters to nobody.
    Housekeeping,
    /// A session refresh: its 2xx restarts the session timer.
    Refresh,
    /// A request the engine sent: its final response goes to the engine.
    Engine,
}

/// The user agent. See the module documentation for its run loop.
#[derive(Debug)]
pub struct UserAgent {
    config: UaConfig,
    layer: TransactionLayer,
    /// Boxed: a call is most of a kilobyte, and growing a map of tens of thousands
    /// moves every entry at once (a pause of tens of milliseconds under load).
    calls: HashMap<CallRef, Box<Call>>,
    /// (Call-ID, our tag) to the call.
    dialogs: HashMap<(String, String), CallRef>,
    /// Client transactions: whose, and what for.
    client: HashMap<TxId, (CallRef, Purpose)>,
    /// Our probes (OPTIONS outside calls) waiting for their final response.
    probes: std::collections::HashSet<TxId>,
    /// Server transactions the engine must answer: the request, its source, its call.
    pending: HashMap<TxId, (Message, SocketAddr, Option<CallRef>)>,
    /// Server INVITE transactions of incoming calls, for CANCEL and timeouts.
    invites: HashMap<TxId, CallRef>,
    timers: BinaryHeap<Reverse<(Instant, CallRef)>>,
    events: VecDeque<UaEvent>,
    next_call: u64,
    screen: ScreenSlot,
    /// The name each TLS next hop must prove (RFC 5922 section 4: the host of
    /// the URI we resolved it from), for the driver's handshake.
    tls_names: HashMap<SocketAddr, String>,
}

/// The most TLS next-hop names kept (a map of carriers' servers, which are few).
const MAX_TLS_NAMES: usize = 4096;

/// The engine's screen for new INVITEs.
struct ScreenSlot(Box<dyn screen::Screen>);

impl std::fmt::Debug for ScreenSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Screen")
    }
}

impl UserAgent {
    /// A user agent with `config`.
    pub fn new(config: UaConfig) -> Self {
        let layer = TransactionLayer::new(config.timers, config.max_transactions);
        Self {
            config,
            layer,
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            client: HashMap::new(),
            tls_names: HashMap::new(),
            probes: Default::default(),
            pending: HashMap::new(),
            invites: HashMap::new(),
            timers: BinaryHeap::new(),
            events: VecDeque::new(),
            next_call: 0,
            screen: ScreenSlot(Box::new(screen::AdmitAll)),
        }
    }

    /// Judges each new INVITE's source with `screen` before any transaction is made
    /// (see [`screen`]).
    pub fn with_screen(mut self, screen: Box<dyn screen::Screen>) -> Self {
        self.screen = ScreenSlot(screen);
        self
    }

    /// Its configuration.
    pub fn config(&self) -> &UaConfig {
        &self.config
    }

    /// How many calls it keeps.
    pub fn calls(&self) -> usize {
        self.calls.len()
    }

    /// How many transactions are open.
    pub fn transactions(&self) -> usize {
        self.layer.len()
    }

    /// Takes a parsed message that arrived from `source`.
    pub fn receive(
        &mut self,
        now: Instant,
        msg: Message,
        source: SocketAddr,
        transport: Transport,
    ) {
        if self.screened_out(now, &msg, source, transport) {
            return;
        }
        self.layer.receive(now, msg, source, transport);
        self.pump(now);
    }

    /// Asks the engine's screen about a new INVITE (not a retransmission, not
    /// in a dialog); true when it was refused (one stateless answer, section 8.2.7,
    /// with a Reason, RFC 3326) or dropped.
    fn screened_out(
        &mut self,
        now: Instant,
        msg: &Message,
        source: SocketAddr,
        transport: Transport,
    ) -> bool {
        if msg.method() != Some(&Method::Invite)
            || msg.to().ok().and_then(|t| t.tag()).is_some()
            || self.layer.knows(msg)
        {
            return false;
        }
        let (status, retry_after, why) = match self.screen.0.screen(now, source, msg) {
            screen::Admission::Admit => return false,
            screen::Admission::Drop => return true,
            screen::Admission::Refuse {
                status,
                retry_after,
                why,
            } => (status, retry_after, why),
        };
        let mut headers = Vec::new();
        if let Some(secs) = retry_after {
            headers.push(("Retry-After", secs.to_string()));
        }
        if let Some(text) = why {
            let reason = crate::dialog::reason::Reason::sip(status, text);
            headers.push(("Reason", reason.to_string()));
        }
        let phrase = incoming::reason_phrase(status);
        self.layer
            .refuse_stateless(msg, source, transport, status, phrase, &headers);
        true
    }

    /// Takes a datagram that did not parse: a request that can still be answered
    /// gets the status its error names (400, or 505 for another SIP version).
    pub fn receive_malformed(
        &mut self,
        raw: &[u8],
        err: &crate::msg::ParseError,
        source: SocketAddr,
        transport: Transport,
    ) {
        self.layer.refuse_unparsable(raw, err, source, transport);
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.layer.handle_timeout(now);
        while let Some(Reverse((at, call))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            self.call_timers(now, call);
        }
        self.pump(now);
    }

    /// A connection to `peer` over `transport` could not be opened: the requests
    /// waiting for it fail now, as timeouts (RFC 3261 section 17.1.4), so a call
    /// moves to its next route at once.
    pub fn transport_failed(&mut self, now: Instant, peer: SocketAddr, transport: Transport) {
        self.layer.transport_failed(now, peer, transport);
        self.pump(now);
    }

    /// The next bytes to put on the wire.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.layer.poll_transmit()
    }

    /// The next event for the engine.
    pub fn poll_event(&mut self) -> Option<UaEvent> {
        self.events.pop_front()
    }

    /// When [`UserAgent::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let ours = self.timers.peek().map(|Reverse((at, _))| *at);
        [self.layer.poll_timeout(), ours]
            .into_iter()
            .flatten()
            .min()
    }

    /// Hands the transaction layer's events to the call logic.
    fn pump(&mut self, now: Instant) {
        while let Some(event) = self.layer.poll_event() {
            match event {
                TxEvent::Request {
                    tx,
                    msg,
                    source,
                    transport,
                } => self.on_request(now, tx, msg, source, transport),
                TxEvent::Ack { msg, .. } => self.on_ack(now, &msg),
                TxEvent::Cancelled { tx } => self.on_cancelled(now, tx),
                TxEvent::Response { tx, msg } => self.on_response(now, tx, msg),
                TxEvent::Stray { msg, .. } => self.on_stray(&msg),
                TxEvent::Timeout { tx } => self.on_tx_timeout(now, tx),
                TxEvent::Terminated { tx } => {
                    self.client.remove(&tx);
                    self.probes.remove(&tx);
                    self.pending.remove(&tx);
                    self.invites.remove(&tx);
                }
            }
        }
    }

    /// A request from the peer: a new call, a request in a call, or one outside any.
    fn on_request(
        &mut self,
        now: Instant,
        tx: TxId,
        msg: Message,
        source: SocketAddr,
        transport: Transport,
    ) {
        if !matches!(msg.method(), Some(Method::Ack | Method::Cancel)) {
            let missing = incoming::unsupported(&msg);
            if !missing.is_empty() {
                // Section 8.2.2.3: 420 listing what we lack (RFC 4475 section 3.3.5).
                let reply = MessageBuilder::reply(&msg, source, 420, "Bad Extension", None)
                    .header("Unsupported", missing.join(", "))
                    .finish();
                self.send_reply(now, tx, reply);
                return;
            }
        }
        let in_dialog = msg.to().ok().and_then(|t| t.tag()).is_some();
        if in_dialog {
            return self.on_dialog_request(now, tx, msg, source);
        }
        match msg.method() {
            Some(Method::Invite) => self.on_invite(now, tx, msg, source, transport),
            Some(Method::Options) => {
                let reply = self.options_reply(&msg, source);
                self.send_reply(now, tx, reply);
            }
            Some(Method::Bye | Method::Prack | Method::Update | Method::Info) => {
                self.reply(
                    now,
                    tx,
                    &msg,
                    source,
                    481,
                    "Call/Transaction Does Not Exist",
                );
            }
            Some(Method::Extension(_)) => {
                // Section 8.2.1: 501 with what we do implement.
                let reply = MessageBuilder::reply(&msg, source, 501, "Not Implemented", None)
                    .header("Allow", ALLOW)
                    .finish();
                self.send_reply(now, tx, reply);
            }
            _ => {
                self.pending.insert(tx, (msg.clone(), source, None));
                self.events.push_back(UaEvent::Request {
                    call: None,
                    tx,
                    msg,
                    source,
                });
            }
        }
    }

    /// 200 to OPTIONS with what we accept (RFC 3261 section 11.2).
    fn options_reply(&self, msg: &Message, source: SocketAddr) -> Bytes {
        MessageBuilder::reply(msg, source, 200, "OK", Some(&random_token()))
            .header("Allow", ALLOW)
            .header("Accept", "application/sdp")
            .header("Supported", SUPPORTED)
            .header("Server", &self.config.user_agent)
            .finish()
    }

    /// A bodiless response on a server transaction.
    fn reply(
        &mut self,
        now: Instant,
        tx: TxId,
        msg: &Message,
        source: SocketAddr,
        status: u16,
        reason: &str,
    ) {
        let bytes = MessageBuilder::reply(msg, source, status, reason, None).finish();
        self.send_reply(now, tx, bytes);
    }

    /// Sends a response on server transaction `tx`. It fails only when the
    /// transaction is gone (answered already, or timed out, RFC 3261 section 17.2),
    /// when there is nothing left to answer: logged, not returned.
    fn send_reply(&mut self, now: Instant, tx: TxId, bytes: Bytes) {
        if let Err(e) = self.layer.send_response(now, tx, bytes) {
            tracing::debug!(?tx, error = %e, "a response with no transaction to carry it");
        }
    }

    /// The call an in-dialog request belongs to.
    fn call_of_request(&self, msg: &Message) -> Option<CallRef> {
        let id = DialogId::of_request(msg)?;
        self.dialogs.get(&(id.call_id, id.local_tag)).copied()
    }

    /// A new call handle.
    fn new_call(&mut self, call: Call) -> CallRef {
        self.next_call += 1;
        let id = CallRef(self.next_call);
        if let Some(key) = call.dialog_key() {
            self.dialogs.insert(key, id);
        }
        self.calls.insert(id, Box::new(call));
        self.schedule(id);
        id
    }

    /// Re-arms a call's own timers.
    fn schedule(&mut self, id: CallRef) {
        if let Some(at) = self.calls.get(&id).and_then(|call| call.next_timer()) {
            self.timers.push(Reverse((at, id)));
        }
    }

    /// Ends a call: the one `Ended` event, and the call forgotten.
    fn end(
        &mut self,
        id: CallRef,
        by: Side,
        cause: EndCause,
        reason: Option<crate::dialog::reason::Reason>,
    ) {
        if let Some(call) = self.calls.remove(&id) {
            if let Some(key) = call.dialog_key() {
                self.dialogs.remove(&key);
            }
            self.events.push_back(UaEvent::Ended {
                call: id,
                by,
                cause,
                reason,
            });
        }
    }

    /// The call, or the error naming it.
    fn call_mut(&mut self, id: CallRef) -> Result<&mut Call, UaError> {
        self.calls
            .get_mut(&id)
            .map(|call| &mut **call)
            .ok_or(UaError::NoCall(id))
    }

    /// Keeps the name the TLS server at `to` must prove: the host of
    /// `target_uri` (RFC 5922 section 4).
    fn remember_tls_name(&mut self, to: SocketAddr, target_uri: &str) {
        let Some(host) = crate::msg::Uri::parse(target_uri)
            .ok()
            .and_then(|uri| uri.host.map(|h| h.to_string()))
        else {
            return;
        };
        if self.tls_names.len() >= MAX_TLS_NAMES && !self.tls_names.contains_key(&to) {
            self.tls_names.clear();
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.tls_names.insert(to, host.to_owned());
    }

    /// The name the TLS server at `to` must prove in its certificate (the host of
    /// the URI of the last request sent there over TLS), for the driver's
    /// handshake; `None` for a server we never sent a request to.
    pub fn tls_name(&self, to: SocketAddr) -> Option<&str> {
        self.tls_names.get(&to).map(String::as_str)
    }

    /// Our Contact header value.
    fn contact(&self, transport: Transport) -> String {
        format!(
            "<sip:{}@{}{}>",
            self.config.contact_user,
            self.config.sent_by(transport),
            transport.uri_param()
        )
    }

    /// Sends a request on a new client transaction, over TCP when it is too large
    /// for UDP (section 18.1.1).
    fn send(
        &mut self,
        now: Instant,
        bytes: Bytes,
        to: SocketAddr,
        transport: Transport,
        target_uri: &str,
    ) -> Result<Sent, UaError> {
        let (bytes, transport) = if transport == Transport::Udp
            && crate::transport::needs_tcp(bytes.len(), target_uri)
        {
            (switch_via_to_tcp(&bytes), Transport::Tcp)
        } else {
            (bytes, transport)
        };
        let msg = crate::msg::parse_datagram(bytes).map_err(|e| UaError::Build(e.to_string()))?;
        if transport == Transport::Tls {
            self.remember_tls_name(to, target_uri);
        }
        let tx = self.layer.send_request(now, msg.clone(), to, transport)?;
        Ok(Sent { tx, msg, transport })
    }
}

/// A request on its way: its transaction, the message, and the transport it took.
struct Sent {
    tx: TxId,
    msg: Message,
    transport: Transport,
}

/// The same request with its top Via on TCP (`UDP` and `TCP` have the same length,
/// so nothing else moves).
fn switch_via_to_tcp(bytes: &Bytes) -> Bytes {
    let mut out = bytes.to_vec();
    if let Some(at) = find(&out, b"SIP/2.0/UDP") {
        out[at + 8..at + 11].copy_from_slice(b"TCP");
    }
    Bytes::from(out)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A random token for tags, branches and Call-IDs (64 bits, hex).
pub(crate) fn random_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A new branch with the RFC 3261 magic cookie.
pub(crate) fn new_branch() -> String {
    format!("{}{}", crate::transaction::MAGIC_COOKIE, random_token())
}

/// The body as SDP text, when there is one.
fn sdp_of(msg: &Message) -> Option<String> {
    if msg.body().is_empty() {
        return None;
    }
    std::str::from_utf8(msg.body()).ok().map(str::to_owned)
}

#[cfg(test)]
mod tests;
