//! Placing calls (`POST /calls`, a flow's `call`): one call task per destination,
//! each running a [`CallCore::outgoing`] in the shell; the rows are committed
//! before the caller hears back, so `GET /calls/{id}` finds them at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use api::originate::{Originate, OriginateError, OriginateRequest};
use api::store::calls::Call;

use super::Services;
use super::core::{CallCore, Outgoing};

/// How long a placed call rings before it is given up (the original's default
/// dial timeout).
pub const RING_TIMEOUT: Duration = Duration::from_secs(60);

/// Places one call per destination and answers with their rows once each row is
/// committed and each INVITE is on its way (or has failed). All or none against
/// the customer's outbound limit.
pub async fn originate(
    services: &Arc<Services>,
    request: OriginateRequest,
) -> Result<Vec<Call>, OriginateError> {
    originate_with(services, request, None).await
}

/// [`originate`], each call telling `watch` when it answers and when it ends (a
/// groupcall follows its calls so).
pub async fn originate_with(
    services: &Arc<Services>,
    request: OriginateRequest,
    watch: Option<tokio::sync::mpsc::UnboundedSender<super::groupcall::core::GroupInput>>,
) -> Result<Vec<Call>, OriginateError> {
    let permits = services
        .outbound_limit
        .acquire(&request.customer_id, request.destinations.len())
        .map_err(|limit| OriginateError::Limit { limit })?;
    let mut rows = Vec::with_capacity(permits.len());
    let mut started = Vec::with_capacity(permits.len());
    for (destination, permit) in request.destinations.iter().zip(permits) {
        let out = Outgoing {
            call_id: uuid::Uuid::now_v7().to_string(),
            customer_id: request.customer_id.clone(),
            flow: request.flow.clone(),
            source: request.source.clone(),
            destination: destination.clone(),
            anonymous: request.anonymous,
            variables: request.variables.clone(),
            early_execution: request.early_execution,
            master_call_id: request.master_call_id.clone(),
            groupcall_id: request.groupcall_id.clone(),
            ring_timeout: RING_TIMEOUT,
        };
        let core = CallCore::outgoing(
            super::shell::core_config(services),
            services.stamps.clone(),
            out,
            Instant::now(),
            super::shell::wall_ms(),
        );
        rows.push(core.row().clone());
        let span = tracing::info_span!(
            "call",
            sip_call_id = tracing::field::Empty,
            call_id = core.call_id(),
            activeflow_id = core.activeflow_id(),
            direction = "outgoing",
        );
        let (ready, is_ready) = tokio::sync::oneshot::channel();
        services.calls.spawn(tracing::Instrument::instrument(
            super::shell::run_outgoing(services.clone(), core, permit, ready, watch.clone()),
            span,
        ));
        started.push(is_ready);
    }
    for is_ready in started {
        if is_ready.await.is_err() {
            // Its task ended before its first rows were out: it logged why.
            tracing::warn!("a placed call ended before its row was written");
        }
    }
    Ok(rows)
}

/// The engine's side of the API's [`Originate`] port.
pub struct Originator(pub Arc<Services>);

impl Originate for Originator {
    fn originate(&self, request: OriginateRequest) -> api::originate::PlaceFuture<'_, Vec<Call>> {
        Box::pin(originate(&self.0, request))
    }

    fn groupcall(
        &self,
        request: api::originate::GroupcallRequest,
    ) -> api::originate::PlaceFuture<'_, api::store::groupcalls::Groupcall> {
        Box::pin(super::groupcall::start(&self.0, request))
    }

    fn hangup_groupcall(&self, id: &str) -> bool {
        self.0.groupcalls.hangup(id)
    }
}
