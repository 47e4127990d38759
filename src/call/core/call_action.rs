//! The flow's `call` action (seed 003): new calls with their own flow, placed
//! through the same path as `POST /calls` (a job, so the flow goes on at once),
//! listed on this call and, with `chained`, hung up when it ends.

use api::call_store::{Verb, Write};
use api::originate::FlowSource;
use flow_runtime::parse_flow;

use super::{CallCore, Job, Output, Phase};

/// What a flow's `call` action asked for (seed 003).
#[derive(Debug, Clone)]
pub(super) struct CallRequest {
    pub source: Option<flow_runtime::model::address::Address>,
    pub destinations: Vec<flow_runtime::model::address::Address>,
    pub flow_id: String,
    pub actions: Vec<serde_json::Value>,
    pub early_execution: bool,
    pub anonymous: String,
}

/// An address of the flow's, as a row's.
fn address(a: &flow_runtime::model::address::Address) -> api::store::calls::Address {
    api::store::calls::Address {
        kind: if a.kind.is_empty() {
            "tel".into()
        } else {
            a.kind.clone()
        },
        target: a.target.clone(),
        target_name: a.target_name.clone(),
    }
}

impl CallCore {
    /// The flow's `call`: new calls with their own flow, placed through the same
    /// path as `POST /calls`; the flow goes on at once. A call that cannot be
    /// placed is announced as the action's failure.
    pub(super) fn place_calls(&mut self, request: CallRequest, chained: bool) {
        let flow = if !request.flow_id.is_empty() {
            FlowSource::Stored(request.flow_id)
        } else if !request.actions.is_empty() {
            let actions = serde_json::Value::Array(request.actions);
            if let Err(findings) = parse_flow(&actions) {
                let first = findings.first().map(|f| f.message.clone());
                return self.action_failed(&format!(
                    "call: its actions do not load: {}",
                    first.unwrap_or_default()
                ));
            }
            FlowSource::Inline {
                id: uuid::Uuid::now_v7().to_string(),
                actions,
            }
        } else {
            return self.action_failed("call: give flow_id or actions for the new calls");
        };
        if request.destinations.is_empty() {
            return self.action_failed("call: no destinations");
        }
        // The caller ID by default: the number this call reached (ours), or the
        // one a call we placed shows.
        let source = match &request.source {
            Some(a) if !a.target.is_empty() => address(a),
            _ if self.outgoing.is_some() => self.row.source.clone(),
            _ => self.row.destination.clone(),
        };
        let anonymous = self.hides_caller_id(&request.anonymous);
        let request = api::originate::OriginateRequest {
            customer_id: self.row.customer_id.clone(),
            flow,
            source,
            destinations: request.destinations.iter().map(address).collect(),
            anonymous,
            // The new calls' flows start with their own variables (seed 003 says
            // nothing of passing this call's on).
            variables: Vec::new(),
            early_execution: request.early_execution,
            master_call_id: self.row.id.clone(),
            groupcall_id: String::new(),
        };
        self.outputs.push_back(Output::Job(Job::Originate {
            request: Box::new(request),
            chained,
        }));
    }

    /// The calls a `call` action placed: listed on this call (`chained_call_ids`),
    /// and, chained, hung up with it.
    pub(super) fn originated(&mut self, chained: bool, result: Result<Vec<String>, String>) {
        match result {
            Ok(ids) => {
                if chained {
                    if self.up || !matches!(self.phase, Phase::Closing(_) | Phase::Finished) {
                        self.chained.extend(ids.iter().cloned());
                    } else {
                        self.outputs.push_back(Output::HangupCalls(ids.clone()));
                    }
                }
                self.row.chained_call_ids.extend(ids);
                self.row.tm_update = Some(self.stamps.now());
                self.outputs.push_back(Output::Write(Write::call(
                    &self.row,
                    false,
                    &[Verb::Updated],
                )));
            }
            Err(why) => self.action_failed(&format!("call: {why}")),
        }
    }
}
