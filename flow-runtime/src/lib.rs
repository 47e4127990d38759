//! The VoIPBIN flow model, its load-time validation, and the sans-IO flow
//! interpreter ([`interpreter::Activeflow`]).
//!
//! # Model
//! A flow is a list of [`Action`]s. Each action has an id, an optional `next_id` and a
//! typed [`ActionKind`] with one option struct per action type. Parsing runs in two
//! phases: a lenient raw form, then the typed option ([`parse_actions`]). Unknown
//! option keys are kept and written back, so nothing a user stored is lost, and the
//! canonical form written by [`actions_to_json`] is stable under a second round trip.
//!
//! # Validation
//! [`parse_flow`] returns the actions with every [`Finding`]: errors (unknown type,
//! missing or mistyped option, duplicate id, bad value) stop a flow from being
//! stored; warnings (a jump target outside the flow, an unreachable action, an endless
//! loop) are reported and the flow is kept.
//!
//! # Rules
//! No IO of any kind and no clock: this crate is pure computation, so the API uses it
//! to validate and the engine drives it.

pub mod call_status;
pub mod interpreter;
pub mod model;
pub mod simulate;
pub mod validate;

pub use call_status::CallStatus;
pub use model::{
    Action, ActionId, ActionKind, Address, Finding, Severity, actions_to_json, parse_actions,
};

/// A parsed and validated list of actions.
#[derive(Debug, Clone)]
pub struct ParsedFlow {
    /// The actions, with ids assigned where they were missing.
    pub actions: Vec<Action>,
    /// The warnings found; a flow with errors is never returned as parsed.
    pub warnings: Vec<Finding>,
}

/// Parses and validates a JSON array of actions: `Ok` with the warnings, or `Err`
/// with every finding (errors first).
pub fn parse_flow(actions: &serde_json::Value) -> Result<ParsedFlow, Vec<Finding>> {
    let actions = parse_actions(actions)?;
    let findings = validate::validate(&actions);
    let (mut errors, warnings): (Vec<_>, Vec<_>) = findings
        .into_iter()
        .partition(|f| f.severity == Severity::Error);
    if errors.is_empty() {
        Ok(ParsedFlow { actions, warnings })
    } else {
        errors.extend(warnings);
        Err(errors)
    }
}

#[cfg(test)]
mod tests;
