//! The port through which the API places calls (`POST /v1.0/calls`): what it asks
//! of the engine ([`Originate`]), and how that can fail.

use std::future::Future;
use std::pin::Pin;

use crate::store::calls::{Address, Call};

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
    fn originate(
        &self,
        request: OriginateRequest,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Call>, OriginateError>> + Send + '_>>;
}
