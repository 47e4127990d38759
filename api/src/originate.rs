//! The port through which the API places calls (`POST /v1.0/calls`): what it asks
//! of the engine ([`Originate`]), and how that can fail.

use std::future::Future;
use std::pin::Pin;

use crate::store::calls::{Address, Call};
use crate::store::groupcalls::Groupcall;

/// A placing in flight.
pub type PlaceFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, OriginateError>> + Send + 'a>>;

/// The flow a placed call runs once answered.
#[derive(Debug, Clone, PartialEq)]
pub enum FlowSource {
    /// A stored flow of the customer's.
    Stored(String),
    /// Inline actions (already validated): an ephemeral flow under this id, not
    /// stored, as the original keeps a temporary flow for them.
    Inline {
        /// The ephemeral flow's id (the call's `flow_id`).
        id: String,
        /// Its actions.
        actions: serde_json::Value,
    },
}

impl FlowSource {
    /// The flow's id, as the call row shows it.
    pub fn id(&self) -> &str {
        match self {
            FlowSource::Stored(id) | FlowSource::Inline { id, .. } => id,
        }
    }
}

/// Calls to place: one per destination, each running `flow` once answered.
#[derive(Debug, Clone)]
pub struct OriginateRequest {
    /// The customer the calls belong to.
    pub customer_id: String,
    /// The flow they run.
    pub flow: FlowSource,
    /// The caller ID.
    pub source: Address,
    /// Who to call, one call each.
    pub destinations: Vec<Address>,
    /// Hide the caller ID (RFC 3325).
    pub anonymous: bool,
    /// Variables seeded into each call's flow.
    pub variables: Vec<(String, String)>,
    /// Run the flow while the call rings rather than once it is answered.
    pub early_execution: bool,
    /// The call that placed them (a flow's `call` action), or empty.
    pub master_call_id: String,
    /// The groupcall they ring for, or empty.
    pub groupcall_id: String,
}

/// How a groupcall rings its destinations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingMethod {
    /// Every destination at once (`ring_all`).
    RingAll,
    /// One after another, the next when one fails (`linear`).
    Linear,
}

impl RingMethod {
    /// The name in rows and requests.
    pub fn as_str(self) -> &'static str {
        match self {
            RingMethod::RingAll => "ring_all",
            RingMethod::Linear => "linear",
        }
    }
}

/// What a groupcall does when one of its calls answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerMethod {
    /// The others are hung up (`hangup_others`).
    HangupOthers,
    /// The others ring on (empty).
    None,
}

impl AnswerMethod {
    /// The name in rows and requests.
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerMethod::HangupOthers => "hangup_others",
            AnswerMethod::None => "",
        }
    }
}

/// A groupcall to start: its calls, and how they ring.
#[derive(Debug, Clone)]
pub struct GroupcallRequest {
    /// The calls (one per destination), as for [`Originate::originate`].
    pub calls: OriginateRequest,
    /// How they ring.
    pub ring_method: RingMethod,
    /// What an answer does to the others.
    pub answer_method: AnswerMethod,
}

/// Why calls could not be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginateError {
    /// The customer has as many outbound calls up as it may (429).
    #[error(
        "the customer's limit of {limit} concurrent outbound calls is reached; try again when one has ended"
    )]
    Limit {
        /// The limit.
        limit: u32,
    },
    /// The engine cannot place calls now (it is shutting down or not started).
    #[error("calls cannot be placed now: {0}")]
    Unavailable(String),
}

/// What the engine does to place calls.
pub trait Originate: Send + Sync {
    /// Places one call per destination and answers with their rows, each written
    /// (`call_created`, `call_dialing`) before this returns. All or none: with the
    /// customer's limit short of the destinations, none is placed.
    fn originate(&self, request: OriginateRequest) -> PlaceFuture<'_, Vec<Call>>;

    /// Starts a groupcall and answers with its row, written (`groupcall_created`)
    /// with its first calls placed, before this returns.
    fn groupcall(&self, request: GroupcallRequest) -> PlaceFuture<'_, Groupcall>;

    /// Hangs up the live groupcall `id` (every call of it); false when it is not
    /// live here.
    fn hangup_groupcall(&self, id: &str) -> bool;
}
