//! Options of the routing actions: connect, call, queue_join, conference_join,
//! confbridge_join and the deprecated agent_call.

use serde_json::Value;

use crate::model::action::NestedActions;
use crate::model::address::Address;

option_struct! {
    /// `connect`: dial destinations and bridge the first to answer with this call.
    ConnectOption {
        /// The caller id shown to the destinations.
        opt source: Address,
        /// Who to ring; several ring at once.
        req destinations: Vec<Address>,
        /// Pass the destinations' early media to the caller.
        opt early_media: bool,
        /// Hang this call up with the destination's hangup reason.
        opt relay_reason: bool,
        /// "", yes, no or auto.
        opt anonymous: String,
        /// Milliseconds to ring (seed 001).
        opt ring_timeout: i64,
        /// Whisper to the answering party before bridging (seed 001, call screening).
        opt whisper: Value,
    }
}

option_struct! {
    /// `call`: start independent outgoing calls with their own flow.
    CallOption {
        /// The caller id.
        opt source: Address,
        /// Who to call.
        req destinations: Vec<Address>,
        /// The new calls' flow.
        opt flow_id: String,
        /// Inline actions, used when `flow_id` is absent.
        opt actions: NestedActions,
        /// Hang the new calls up with this one.
        opt chained: bool,
        /// Run the flow while the new call rings.
        opt early_execution: bool,
        /// "", yes, no or auto.
        opt anonymous: String,
    }
}

option_struct! {
    /// `queue_join`: wait in a queue for an agent.
    QueueJoinOption {
        /// The queue.
        req queue_id: String,
    }
}

option_struct! {
    /// `conference_join`: join a conference.
    ConferenceJoinOption {
        /// The conference.
        req conference_id: String,
    }
}

option_struct! {
    /// `confbridge_join`: join an internal bridge (used by connect).
    ConfbridgeJoinOption {
        /// The bridge.
        req confbridge_id: String,
    }
}

option_struct! {
    /// `agent_call` (deprecated; use connect): ring an agent's addresses.
    AgentCallOption {
        /// The agent.
        req agent_id: String,
    }
}
