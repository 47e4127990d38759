//! `POST /v1.0/calls`: place calls, one per destination, each running a flow (a
//! stored one, or inline actions) once answered.

use std::collections::BTreeMap;

use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::St;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::originate::{FlowSource, OriginateError, OriginateRequest};
use crate::store::calls::{Address, Call};

/// The most destinations one request may call.
pub const MAX_DESTINATIONS: usize = 100;
/// The most variables a request may seed.
const MAX_VARIABLES: usize = 100;
/// The longest variable value, in bytes.
const MAX_VARIABLE_BYTES: usize = 32 * 1024;
/// All variables together, in bytes.
const MAX_VARIABLES_BYTES: usize = 64 * 1024;

/// The body of `POST /calls` (VoIPBIN's shape).
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateCalls {
    /// The flow the calls run once answered; `actions` is ignored when it is set.
    pub flow_id: Option<String>,
    /// Inline actions, run as an ephemeral flow when `flow_id` is not set.
    #[schema(value_type = Option<Vec<Object>>)]
    pub actions: Option<Value>,
    /// The caller ID: a `tel` number of the customer's (`GET /numbers`) or a SIP
    /// address.
    pub source: Option<Address>,
    /// Who to call: one call each.
    pub destinations: Option<Vec<Address>>,
    /// `yes` hides the caller ID (RFC 3325 Privacy), `no` or `auto` (the default)
    /// shows it.
    pub anonymous: Option<String>,
    /// Variables seeded into each call's flow; keys starting with `voipbin.` are
    /// ignored.
    pub variables: Option<BTreeMap<String, String>>,
    /// Run the flow while the call rings, not once it is answered.
    pub early_execution: Option<bool>,
}

/// What `POST /calls` answers: the calls placed, and the groupcalls (none yet: a
/// destination that rings several endpoints makes one).
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedCalls {
    /// One call per destination, status `dialing`.
    pub calls: Vec<Call>,
    /// Groupcalls made for destinations with several endpoints.
    #[schema(value_type = Vec<Object>)]
    pub groupcalls: Vec<Value>,
}

/// Destination types a call may have; those a later version brings fail the call
/// with the reason.
const ADDRESS_TYPES: &[&str] = &[
    "tel",
    "sip",
    "agent",
    "extension",
    "conference",
    "line",
    "email",
];

/// Place calls: one per destination. Each runs the flow once answered (or while it
/// rings, with `early_execution`); its row is written, status `dialing`, before the
/// answer.
#[utoipa::path(post, path = "/calls", tag = "calls", request_body = CreateCalls,
    responses((status = 200, body = CreatedCalls), (status = 400),
        (status = 429, description = "the customer's limit of concurrent outbound calls is reached"),
        (status = 503, description = "calls cannot be placed now")))]
pub async fn create(
    state: St,
    caller: Caller,
    ApiJson(body): ApiJson<CreateCalls>,
) -> ApiResult<Json<CreatedCalls>> {
    let flow = checked_flow_source(&state, &caller, body.flow_id, body.actions.as_ref()).await?;
    let source = checked_source(&state, &caller, body.source).await?;
    let destinations = checked_destinations(body.destinations)?;
    let anonymous = checked_anonymous(body.anonymous.as_deref())?;
    let variables = checked_variables(body.variables.unwrap_or_default())?;
    let engine = engine(&state)?;
    let request = OriginateRequest {
        customer_id: caller.customer_id.clone(),
        flow,
        source,
        destinations,
        anonymous,
        variables,
        early_execution: body.early_execution.unwrap_or(false),
        master_call_id: String::new(),
        groupcall_id: String::new(),
    };
    let calls = engine.originate(request).await.map_err(refused)?;
    Ok(Json(CreatedCalls {
        calls,
        groupcalls: Vec::new(),
    }))
}

/// The flow placed calls run: a stored one of the caller's (`flow_id` wins), or
/// inline `actions`, checked as `POST /flows` checks them.
pub(super) async fn checked_flow_source(
    state: &St,
    caller: &Caller,
    flow_id: Option<String>,
    actions: Option<&Value>,
) -> ApiResult<FlowSource> {
    if let Some(raw) = flow_id.as_deref().filter(|f| !f.is_empty()) {
        let id =
            super::numbers::checked_flow(&state.store, &caller.customer_id, "flow_id", Some(raw))
                .await?
                .ok_or_else(|| ApiError::invalid("flow_id", "empty"))?;
        return Ok(FlowSource::Stored(id));
    }
    match actions {
        Some(actions) => Ok(FlowSource::Inline {
            id: uuid::Uuid::now_v7().to_string(),
            actions: super::flows::checked_actions(actions)?,
        }),
        None => Err(ApiError::invalid(
            "flow_id",
            "give flow_id or actions: the flow the calls run",
        )),
    }
}

/// The engine that places calls, or 503 when this server runs none.
pub(super) fn engine(state: &St) -> ApiResult<&std::sync::Arc<dyn crate::originate::Originate>> {
    state.originate.get().ok_or_else(|| {
        ApiError::Unavailable("this server places no calls (its SIP engine is not running)".into())
    })
}

/// A placing the engine refused, as the API answers it.
pub(super) fn refused(e: OriginateError) -> ApiError {
    match e {
        OriginateError::Limit { .. } => ApiError::Exhausted {
            message: e.to_string(),
            retry_after: None,
        },
        OriginateError::Unavailable(_) => ApiError::Unavailable(e.to_string()),
    }
}

/// The anonymous option: `yes` hides the caller ID.
pub(super) fn checked_anonymous(raw: Option<&str>) -> ApiResult<bool> {
    match raw.unwrap_or("") {
        "yes" => Ok(true),
        "" | "no" | "auto" => Ok(false),
        other => Err(ApiError::InvalidArgument {
            reason: "INVALID_ANONYMOUS_VALUE",
            message: format!("anonymous: {other:?} is not yes, no or auto"),
            details: None,
        }),
    }
}

/// The caller ID: a `tel` source must be one of the customer's numbers (a caller
/// ID the customer does not own is refused, as the original does).
pub(super) async fn checked_source(
    state: &St,
    caller: &Caller,
    source: Option<Address>,
) -> ApiResult<Address> {
    let Some(mut source) = source else {
        return Err(ApiError::invalid(
            "source",
            "missing: the caller ID to present",
        ));
    };
    source.target = source.target.trim().to_owned();
    if source.kind.is_empty() {
        source.kind = "tel".into();
    }
    if source.target.is_empty() {
        return Err(ApiError::invalid("source.target", "empty"));
    }
    match source.kind.as_str() {
        "tel" => {
            super::numbers::check_e164(&source.target).map_err(|_| {
                ApiError::invalid(
                    "source.target",
                    format!(
                        "{:?} is not E.164 (for example +14155551234)",
                        source.target
                    ),
                )
            })?;
            let owned = crate::store::numbers::find_by_number(state.store.pool(), &source.target)
                .await?
                .is_some_and(|n| n.customer_id == caller.customer_id);
            if !owned {
                return Err(ApiError::invalid(
                    "source.target",
                    format!(
                        "{} is not one of your numbers (GET /numbers)",
                        source.target
                    ),
                ));
            }
        }
        "sip" => {}
        other => {
            return Err(ApiError::invalid(
                "source.type",
                format!("{other:?}: a caller ID is a tel number or a sip address"),
            ));
        }
    }
    Ok(source)
}

pub(super) fn checked_destinations(destinations: Option<Vec<Address>>) -> ApiResult<Vec<Address>> {
    let destinations = destinations.unwrap_or_default();
    if destinations.is_empty() {
        return Err(ApiError::invalid(
            "destinations",
            "empty: give at least one",
        ));
    }
    if destinations.len() > MAX_DESTINATIONS {
        return Err(ApiError::invalid(
            "destinations",
            format!("at most {MAX_DESTINATIONS}, not {}", destinations.len()),
        ));
    }
    destinations
        .into_iter()
        .enumerate()
        .map(|(i, mut d)| {
            d.target = d.target.trim().to_owned();
            if d.kind.is_empty() {
                d.kind = "tel".into();
            }
            if !ADDRESS_TYPES.contains(&d.kind.as_str()) {
                return Err(ApiError::invalid(
                    &format!("destinations[{i}].type"),
                    format!("{:?} is not one of {}", d.kind, ADDRESS_TYPES.join(", ")),
                ));
            }
            if d.target.is_empty() {
                return Err(ApiError::invalid(
                    &format!("destinations[{i}].target"),
                    "empty",
                ));
            }
            if d.kind == "tel" && super::numbers::check_e164(&d.target).is_err() {
                return Err(ApiError::invalid(
                    &format!("destinations[{i}].target"),
                    format!("{:?} is not E.164 (for example +14155551234)", d.target),
                ));
            }
            Ok(d)
        })
        .collect()
}

pub(super) fn checked_variables(
    variables: BTreeMap<String, String>,
) -> ApiResult<Vec<(String, String)>> {
    if variables.len() > MAX_VARIABLES {
        return Err(ApiError::invalid(
            "variables",
            format!("at most {MAX_VARIABLES} keys, not {}", variables.len()),
        ));
    }
    let mut total = 0;
    let mut out = Vec::with_capacity(variables.len());
    for (key, value) in variables {
        if value.len() > MAX_VARIABLE_BYTES {
            return Err(ApiError::invalid(
                &format!("variables.{key}"),
                format!("at most {MAX_VARIABLE_BYTES} bytes"),
            ));
        }
        total += key.len() + value.len();
        if key.starts_with("voipbin.") {
            // Reserved: the platform sets these.
            continue;
        }
        out.push((key, value));
    }
    if total > MAX_VARIABLES_BYTES {
        return Err(ApiError::invalid(
            "variables",
            format!("at most {MAX_VARIABLES_BYTES} bytes in all, not {total}"),
        ));
    }
    Ok(out)
}
