//! RFC 3261 transactions (section 17, with RFC 6026's Accepted states), sans-IO.
//!
//! # Run loop
//! The driver feeds parsed messages with [`TransactionLayer::receive`], sends
//! requests and responses through [`TransactionLayer::send_request`] and
//! [`TransactionLayer::send_response`], and after each call drains
//! [`TransactionLayer::poll_transmit`] (bytes to put on the wire) and
//! [`TransactionLayer::poll_event`] (what the transaction user must know), then
//! sleeps until [`TransactionLayer::poll_timeout`] and calls
//! [`TransactionLayer::handle_timeout`]. Every call takes the current time; nothing
//! here reads a clock, sleeps or touches a socket.
//!
//! # What it does for the user
//! - Retransmits requests (timers A, E) and final responses (G) on unreliable
//!   transports, and absorbs retransmissions from the peer, re-answering them.
//! - Sends 100 Trying at once for a new INVITE.
//! - Sends the ACK for a non-2xx final response (section 17.1.1.3).
//! - Answers CANCEL (200, or 481 without a matching INVITE) and reports it, so the
//!   user sends 487 to the INVITE.
//! - Retransmits a 2xx to an INVITE until its ACK arrives (section 13.3.1.4),
//!   reporting the ACK, or a timeout when none came.
//! - Refuses a malformed request statelessly with the status [`ParseError::status`]
//!   names, and new requests with 503 + Retry-After when the transaction table is
//!   full.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::msg::{Message, MessageBuilder, Method, ParseError, check_request};

mod client;
pub mod key;
mod server;
pub mod timer;

pub use key::{MAGIC_COOKIE, TxKey};
use timer::{Armed, Deadline, TimerHeap};
pub use timer::{TimerConfig, TimerName};

/// A transaction's handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId(pub u64);

/// The transport a message travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP: unreliable, so the transaction retransmits.
    Udp,
    /// TCP: reliable, so it does not.
    Tcp,
    /// TLS over TCP (RFC 3261 section 26.2.1, RFC 5922): reliable as TCP.
    Tls,
}

impl Transport {
    /// Whether the transport delivers reliably (no retransmissions needed).
    pub fn reliable(self) -> bool {
        matches!(self, Transport::Tcp | Transport::Tls)
    }

    /// The Via header's transport token (RFC 3261 section 20.42).
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// The `transport` URI parameter that names it, if any (RFC 3261 section
    /// 19.1.1: UDP is the default and needs none).
    pub fn uri_param(self) -> &'static str {
        match self {
            Transport::Udp => "",
            Transport::Tcp => ";transport=tcp",
            Transport::Tls => ";transport=tls",
        }
    }
}

/// Bytes to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub to: SocketAddr,
    /// On which transport.
    pub transport: Transport,
    /// What.
    pub bytes: Bytes,
}

/// What the transaction user must know.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TxEvent {
    /// A new request (a server transaction was made for it).
    Request {
        /// Its transaction, for the responses.
        tx: TxId,
        /// The request.
        msg: Message,
        /// Where it came from.
        source: SocketAddr,
        /// On which transport.
        transport: Transport,
    },
    /// An ACK for a 2xx (end to end, outside any transaction).
    Ack {
        /// The ACK.
        msg: Message,
        /// Where it came from.
        source: SocketAddr,
    },
    /// A CANCEL matched this INVITE transaction before its final response: the user
    /// should answer the INVITE with 487. The CANCEL itself was answered with 200.
    Cancelled {
        /// The INVITE's transaction.
        tx: TxId,
    },
    /// A response for a client transaction (1xx, 2xx and its retransmissions, or a
    /// non-2xx final response once).
    Response {
        /// The client transaction.
        tx: TxId,
        /// The response.
        msg: Message,
    },
    /// A response matching no transaction (a late 2xx retransmission: the dialog
    /// should ACK it again).
    Stray {
        /// The response.
        msg: Message,
        /// Where it came from.
        source: SocketAddr,
    },
    /// A transaction timed out: no final response (B, F), no ACK for a non-2xx (H),
    /// or no ACK for a 2xx (L).
    Timeout {
        /// The transaction.
        tx: TxId,
    },
    /// A transaction ended and was forgotten.
    Terminated {
        /// The transaction.
        tx: TxId,
    },
}

/// Why a request could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The request is malformed (no Via branch, no CSeq, ...).
    #[error("cannot send: {0}")]
    Malformed(#[from] ParseError),
    /// A transaction with that branch and method exists already.
    #[error("a transaction with this branch exists already")]
    Duplicate,
    /// No such transaction, or it cannot send that now.
    #[error("no open server transaction {0:?} can send this")]
    NoTransaction(TxId),
    /// The transaction table is full.
    #[error("too many open transactions")]
    Full,
}

/// Which of the four transaction machines (RFC 3261 figures 5-8), named as the RFC
/// names them.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    ClientInvite,
    ClientNonInvite,
    ServerInvite,
    ServerNonInvite,
}

/// Transaction states (figures 5-8, with RFC 6026's Accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// INVITE client: sent, nothing back yet.
    Calling,
    /// Non-INVITE: sent or received, no response yet.
    Trying,
    /// A provisional response seen or sent.
    Proceeding,
    /// A 2xx to an INVITE seen or sent (RFC 6026).
    Accepted,
    /// A final response seen or sent.
    Completed,
    /// INVITE server: the ACK for a non-2xx arrived.
    Confirmed,
    /// Done.
    Terminated,
}

/// One transaction.
#[derive(Debug)]
pub(crate) struct Transaction {
    pub(crate) kind: Kind,
    pub(crate) key: TxKey,
    pub(crate) state: State,
    pub(crate) peer: SocketAddr,
    pub(crate) transport: Transport,
    /// The request, while it may still be needed: a client keeps it to retransmit
    /// and to build the ACK until the final response; a server does not keep it
    /// (finished transactions stay 32 s to absorb retransmissions, so this is most of
    /// their memory).
    pub(crate) request: Option<Message>,
    /// The last response sent (server) or the ACK sent (client INVITE).
    pub(crate) last_sent: Option<Bytes>,
    /// The current retransmit interval.
    pub(crate) interval: Duration,
    /// The armed timers.
    pub(crate) armed: Armed,
    /// INVITE server: the ACK for a 2xx arrived.
    pub(crate) acked: bool,
    /// INVITE server: how its 2xx's ACK is recognised (that ACK has its own branch).
    pub(crate) ack_key: Option<AckKey>,
}

/// What an ACK for a 2xx shares with its INVITE (RFC 3261 section 13.2.2.4: the
/// same Call-ID, CSeq number and From tag), since it has a branch of its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct AckKey(Box<str>);

impl AckKey {
    pub(crate) fn of(msg: &Message) -> Option<Self> {
        let key = format!(
            "{}\n{}\n{}",
            msg.call_id().ok()?,
            msg.cseq().ok()?.seq,
            msg.from().ok()?.tag().unwrap_or_default()
        );
        Some(Self(key.into_boxed_str()))
    }
}

/// Every open transaction, and what is waiting to go out.
#[derive(Debug)]
pub struct TransactionLayer {
    pub(crate) timers_cfg: TimerConfig,
    max_transactions: usize,
    next_id: u64,
    /// Boxed: finished transactions stay 32 s, so at a thousand calls a second
    /// this map holds tens of thousands, and growing it would move every entry at
    /// once (a pause of tens of milliseconds); boxed, only pointers move.
    pub(crate) txs: HashMap<TxId, Box<Transaction>>,
    by_key: HashMap<TxKey, TxId>,
    /// INVITE server transactions by the identifiers their 2xx's ACK carries.
    pub(crate) by_ack: HashMap<AckKey, TxId>,
    timers: TimerHeap,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TxEvent>,
}

impl TransactionLayer {
    /// A layer with these timers, holding at most `max_transactions` at once.
    pub fn new(timers: TimerConfig, max_transactions: usize) -> Self {
        Self {
            timers_cfg: timers,
            max_transactions,
            next_id: 1,
            txs: HashMap::new(),
            by_key: HashMap::new(),
            by_ack: HashMap::new(),
            timers: TimerHeap::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// How many transactions are open.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// The state of a transaction, if it is open.
    pub fn state(&self, tx: TxId) -> Option<State> {
        self.txs.get(&tx).map(|t| t.state)
    }

    /// The next bytes to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the user.
    pub fn poll_event(&mut self) -> Option<TxEvent> {
        self.events.pop_front()
    }

    /// When [`TransactionLayer::handle_timeout`] must run next (possibly early).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|d| d.at)
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(d) = self.timers.pop_due(now) {
            let live = self
                .txs
                .get_mut(&d.tx)
                .is_some_and(|t| t.armed.take(d.timer, d.at));
            if live {
                match self.txs.get(&d.tx).map(|t| t.kind) {
                    Some(Kind::ClientInvite | Kind::ClientNonInvite) => {
                        self.client_timer(now, d.tx, d.timer)
                    }
                    Some(Kind::ServerInvite | Kind::ServerNonInvite) => {
                        self.server_timer(now, d.tx, d.timer)
                    }
                    None => {}
                }
            }
        }
    }

    /// Handles a message that arrived from `source`.
    pub fn receive(
        &mut self,
        now: Instant,
        msg: Message,
        source: SocketAddr,
        transport: Transport,
    ) {
        if msg.is_request() {
            self.receive_request(now, msg, source, transport);
        } else {
            self.receive_response(now, msg, source);
        }
    }

    /// Sends bytes outside any transaction (an ACK for a 2xx, a stateless reply).
    pub fn send_stateless(&mut self, to: SocketAddr, transport: Transport, bytes: Bytes) {
        self.transmits.push_back(Transmit {
            to,
            transport,
            bytes,
        });
    }

    // --- plumbing shared by the client and server halves ---

    pub(crate) fn new_id(&mut self) -> TxId {
        let id = TxId(self.next_id);
        self.next_id += 1;
        id
    }

    pub(crate) fn full(&self) -> bool {
        self.txs.len() >= self.max_transactions
    }

    pub(crate) fn insert(&mut self, id: TxId, tx: Transaction) {
        self.by_key.insert(tx.key.clone(), id);
        if let Some(k) = &tx.ack_key {
            self.by_ack.insert(k.clone(), id);
        }
        self.txs.insert(id, Box::new(tx));
    }

    pub(crate) fn find(&self, key: &TxKey) -> Option<TxId> {
        self.by_key.get(key).copied()
    }

    pub(crate) fn arm(&mut self, now: Instant, id: TxId, timer: TimerName, after: Duration) {
        let at = now + after;
        if let Some(t) = self.txs.get_mut(&id) {
            t.armed.set(timer, at);
            self.timers.push(Deadline {
                at,
                tx: id,
                timer,
                generation: 0,
            });
        }
    }

    pub(crate) fn cancel(&mut self, id: TxId, timer: TimerName) {
        if let Some(t) = self.txs.get_mut(&id) {
            t.armed.cancel(timer);
        }
    }

    pub(crate) fn transmit(&mut self, to: SocketAddr, transport: Transport, bytes: Bytes) {
        self.transmits.push_back(Transmit {
            to,
            transport,
            bytes,
        });
    }

    /// A connection to `peer` over `transport` could not be opened (refused, or
    /// its TLS handshake failed): each client transaction to it that has had no
    /// response yet is told the TU as a timeout and ends (section 17.1.4; the TU
    /// treats it as a 503 or a 408, section 8.1.3.1). Rare, so a scan.
    pub fn transport_failed(&mut self, _now: Instant, peer: SocketAddr, transport: Transport) {
        let failed: Vec<TxId> = self
            .txs
            .iter()
            .filter(|(_, t)| {
                t.peer == peer
                    && t.transport == transport
                    && matches!(t.kind, Kind::ClientInvite | Kind::ClientNonInvite)
                    && matches!(t.state, State::Calling | State::Trying)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in failed {
            self.emit(TxEvent::Timeout { tx: id });
            self.terminate(id);
        }
    }

    pub(crate) fn emit(&mut self, event: TxEvent) {
        self.events.push_back(event);
    }

    pub(crate) fn terminate(&mut self, id: TxId) {
        if let Some(t) = self.txs.remove(&id) {
            if self.by_key.get(&t.key) == Some(&id) {
                self.by_key.remove(&t.key);
            }
            if let Some(k) = &t.ack_key
                && self.by_ack.get(k) == Some(&id)
            {
                self.by_ack.remove(k);
            }
            self.emit(TxEvent::Terminated { tx: id });
        }
    }

    /// Answers a request outside any transaction (malformed, or the table is full).
    pub(crate) fn reject_stateless(
        &mut self,
        msg: &Message,
        source: SocketAddr,
        transport: Transport,
        err: &ParseError,
    ) {
        // Without a usable Via there is nowhere to send a response: drop it.
        if msg.via().is_err() || msg.method() == Some(&Method::Ack) {
            return;
        }
        let reply = MessageBuilder::reply(msg, source, err.status(), &err.reason(), None).finish();
        self.transmit(Self::reply_to(msg, source, transport), transport, reply);
    }

    /// Answers a datagram that did not parse, when it is a request that can still
    /// be answered (see [`crate::msg::salvage`]); anything else is dropped.
    pub fn refuse_unparsable(
        &mut self,
        raw: &[u8],
        err: &ParseError,
        source: SocketAddr,
        transport: Transport,
    ) {
        if let Some(reply) = crate::msg::salvage::reply_to_unparsable(raw, err) {
            self.transmit(source, transport, reply);
        }
    }

    /// Refuses a new request because the table is full (RFC 3261 section 21.5.4).
    pub(crate) fn reject_full(&mut self, msg: &Message, source: SocketAddr, transport: Transport) {
        self.refuse_stateless(
            msg,
            source,
            transport,
            503,
            "Service Unavailable",
            &[("Retry-After", "5".to_owned())],
        );
    }

    /// Answers a request once, outside any transaction (RFC 3261 section 8.2.7):
    /// no 100 Trying before it, no retransmission after it.
    pub fn refuse_stateless(
        &mut self,
        msg: &Message,
        source: SocketAddr,
        transport: Transport,
        status: u16,
        reason: &str,
        headers: &[(&str, String)],
    ) {
        if msg.method() == Some(&Method::Ack) || msg.via().is_err() {
            return;
        }
        let mut reply = MessageBuilder::reply(msg, source, status, reason, None);
        for (name, value) in headers {
            reply = reply.header(name, value);
        }
        let reply = reply.finish();
        self.transmit(Self::reply_to(msg, source, transport), transport, reply);
    }

    /// Whether a transaction already holds this request (a retransmission).
    pub fn knows(&self, msg: &Message) -> bool {
        TxKey::for_request(msg).is_ok_and(|key| self.find(&key).is_some())
    }

    /// Where a response to `msg` goes (section 18.2.2).
    fn reply_to(msg: &Message, source: SocketAddr, transport: Transport) -> SocketAddr {
        msg.via().map_or(source, |via| {
            crate::transport::response_address(&via, source, transport)
        })
    }

    /// Checks a request before a transaction takes it.
    pub(crate) fn check(msg: &Message) -> Result<(), ParseError> {
        check_request(msg)
    }
}

#[cfg(test)]
mod tests;
