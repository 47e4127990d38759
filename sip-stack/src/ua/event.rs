//! What the user agent tells the engine, and what the engine gives it to place a
//! call.

use std::net::SocketAddr;

use crate::dialog::info::InfoDigit;
use crate::dialog::reason::Reason;
use crate::msg::Message;
use crate::transaction::{SendError, Transport, TxId};

/// One call (an INVITE dialog) the user agent keeps, incoming or outgoing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallRef(pub u64);

/// Which side ended a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// We did (the engine's hangup or reject, or one of our timers).
    Local,
    /// The peer did (BYE, CANCEL, an error response).
    Remote,
}

/// Why a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndCause {
    /// A BYE, either way.
    Bye,
    /// Cancelled before the final response (CANCEL in, or our hangup before answer).
    Cancelled,
    /// Refused with this final status (our reject, or the peer's answer to our
    /// INVITE).
    Rejected(u16),
    /// No final response to our INVITE (timer B) or no ACK for our 2xx
    /// (section 13.3.1.4).
    Timeout,
    /// The session timer ran out without a refresh (RFC 4028 section 10).
    SessionExpired,
}

/// What happened, for the engine. Every event that comes from a message carries it
/// whole, so routing can read any header (P-Asserted-Identity, Diversion, X-...).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum UaEvent {
    /// A new INVITE. Answer with [`super::UserAgent::ring`],
    /// [`super::UserAgent::answer`] or [`super::UserAgent::reject`].
    Incoming {
        /// The call.
        call: CallRef,
        /// The INVITE.
        invite: Message,
        /// The SDP offer, when the INVITE has one (else the offer goes in our 200).
        offer: Option<String>,
        /// Where it came from.
        source: SocketAddr,
        /// On which transport.
        transport: Transport,
    },
    /// A provisional response to our INVITE (180, 183 with early media SDP, ...).
    Progress {
        /// The call.
        call: CallRef,
        /// The status.
        status: u16,
        /// Its SDP, when it has one.
        sdp: Option<String>,
        /// The response.
        msg: Message,
    },
    /// Our INVITE was answered; the ACK is sent, except for a late offer: then `sdp`
    /// is the peer's offer and [`super::UserAgent::ack`] sends the answer.
    Answered {
        /// The call.
        call: CallRef,
        /// The answer to our offer, or the peer's offer.
        sdp: Option<String>,
        /// The 2xx.
        msg: Message,
    },
    /// The ACK for our 2xx (to the INVITE or a re-INVITE) arrived: the call is up.
    /// `sdp` is the answer to the offer we put in our 200 (late offer).
    Acked {
        /// The call.
        call: CallRef,
        /// The SDP in the ACK.
        sdp: Option<String>,
    },
    /// A request inside a call, or outside any, that the engine answers with
    /// [`super::UserAgent::respond`]: re-INVITE, UPDATE, INFO that is not DTMF,
    /// REFER, NOTIFY, MESSAGE, REGISTER, ...
    Request {
        /// The call, when it belongs to one.
        call: Option<CallRef>,
        /// The server transaction to answer on.
        tx: TxId,
        /// The request.
        msg: Message,
        /// Where it came from.
        source: SocketAddr,
    },
    /// A key press sent in SIP INFO (answered with 200 already).
    Dtmf {
        /// The call.
        call: CallRef,
        /// The key and its duration.
        digit: InfoDigit,
    },
    /// The final response to a request the engine sent in a call with
    /// [`super::UserAgent::request`] (a 2xx to a re-INVITE is ACKed already).
    Response {
        /// The call.
        call: CallRef,
        /// The request's transaction.
        tx: TxId,
        /// The status (408 when no response came).
        status: u16,
        /// The response, when one came.
        msg: Option<Message>,
    },
    /// The answer to a probe sent with [`super::UserAgent::probe`] (an OPTIONS
    /// outside any call): its final status, or `None` when nothing came back
    /// before timer F.
    Probed {
        /// The probe's transaction.
        tx: TxId,
        /// The final status, if any came.
        status: Option<u16>,
    },
    /// The call is over; it is the last event for it.
    Ended {
        /// The call.
        call: CallRef,
        /// Who ended it.
        by: Side,
        /// Why.
        cause: EndCause,
        /// The Reason header (RFC 3326) of the BYE or CANCEL, when it had one.
        reason: Option<Reason>,
    },
}

/// Digest credentials for answering a challenge (RFC 8760).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The username.
    pub username: String,
    /// The password.
    pub password: String,
}

/// An outgoing call to place.
#[derive(Debug, Clone)]
pub struct OutgoingCall {
    /// The Request-URI (`sip:+15551234567@carrier.example`).
    pub target: String,
    /// The From header's name-addr (`"Alice" <sip:alice@example.com>`), without a tag.
    pub from: String,
    /// The To header's name-addr; the target when `None`.
    pub to: Option<String>,
    /// Where to send it: an outbound proxy, or the target's own address. Name
    /// resolution is the caller's (this layer does no I/O).
    pub next_hop: SocketAddr,
    /// Whether `next_hop` is an outbound proxy (a `Route: <sip:proxy;lr>` is added,
    /// RFC 3261 section 8.1.2).
    pub via_proxy: bool,
    /// The transport to use (UDP moves to TCP for a request over 1300 bytes).
    pub transport: Transport,
    /// Credentials for a 401/407.
    pub credentials: Option<Credentials>,
    /// The SDP offer; `None` for a late offer (the peer offers in its 2xx).
    pub sdp: Option<String>,
    /// Extra headers (P-Asserted-Identity, X-...).
    pub headers: Vec<(String, String)>,
    /// The INVITE's Max-Forwards: [`DEFAULT_MAX_FORWARDS`] for a call we start, the
    /// incoming call's less one for a leg a B2BUA places for it (RFC 3261 section
    /// 16.6, step 3), so a loop runs out.
    pub max_forwards: u32,
    /// Give the next hop up when it sends no response at all (not even 100
    /// Trying) within this, well before timer B's 64*T1: the call ends with
    /// [`EndCause::Timeout`], so a B2BUA fails over to its next route at once (as
    /// Kamailio's `fr_timer` does). `None` waits for timer B.
    pub no_reply_timeout: Option<std::time::Duration>,
}

/// Max-Forwards of a request we start (RFC 3261 section 8.1.1.6).
pub const DEFAULT_MAX_FORWARDS: u32 = 70;

/// Why the user agent could not do what the engine asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UaError {
    /// No such call (it ended, or never was).
    #[error("no call {0:?}")]
    NoCall(CallRef),
    /// The call is not in a state where this can be done.
    #[error("cannot {action} a call that is {state}")]
    WrongState {
        /// What was asked.
        action: &'static str,
        /// The call's state.
        state: &'static str,
    },
    /// A status code outside the range the action allows.
    #[error("status {0} is not allowed here")]
    BadStatus(u16),
    /// The transaction layer refused to send.
    #[error(transparent)]
    Send(#[from] SendError),
    /// A message could not be built from what was given.
    #[error("cannot build the request: {0}")]
    Build(String),
}
