//! The flow model: actions, their typed options, addresses and findings.

pub mod action;
pub mod action_id;
pub mod address;
pub mod finding;
pub mod option_value;
pub mod options;

pub use action::{Action, ActionKind, NestedActions, actions_to_json, parse_actions};
pub use action_id::ActionId;
pub use address::Address;
pub use finding::{Finding, Severity};
