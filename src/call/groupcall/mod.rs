//! Groupcalls (`/v1.0/groupcalls`): a task per groupcall runs a sans-IO
//! [`core::GroupcallCore`], placing its calls through [`super::originate`] and
//! hearing from each when it answers and when it ends.

pub mod core;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use api::originate::{GroupcallRequest, OriginateError, OriginateRequest, RingMethod};
use api::store::groupcalls::Groupcall;
use tokio::sync::mpsc;

use self::core::{GroupInput, GroupOutput, GroupcallCore};
use super::Services;

/// The live groupcalls, by id: where their inputs go.
#[derive(Debug, Clone, Default)]
pub struct Groupcalls(Arc<Mutex<HashMap<String, mpsc::UnboundedSender<GroupInput>>>>);

impl Groupcalls {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<GroupInput>>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Hangs up the live groupcall `id`; false when it is not live here.
    pub fn hangup(&self, id: &str) -> bool {
        self.map()
            .get(id)
            .is_some_and(|tx| tx.send(GroupInput::Hangup).is_ok())
    }
}

/// Starts a groupcall: its row is written and its first calls placed before this
/// returns; a task follows it to its end.
pub async fn start(
    services: &Arc<Services>,
    request: GroupcallRequest,
) -> Result<Groupcall, OriginateError> {
    let calls = request.calls;
    let first = match request.ring_method {
        RingMethod::RingAll => calls.destinations.len(),
        RingMethod::Linear => 1,
    };
    let limit = &services.outbound_limit;
    if !limit.has_room(&calls.customer_id, first) {
        return Err(OriginateError::Limit { limit: limit.max() });
    }
    let row = Groupcall {
        id: uuid::Uuid::now_v7().to_string(),
        customer_id: calls.customer_id.clone(),
        flow_id: calls.flow.id().to_owned(),
        source: calls.source.clone(),
        destinations: calls.destinations.clone(),
        master_call_id: calls.master_call_id.clone(),
        tm_create: services.stamps.unique(),
        ..Groupcall::default()
    };
    let id = row.id.clone();
    let mut core = GroupcallCore::new(row, request.ring_method, request.answer_method);
    let (tx, mut rx) = mpsc::unbounded_channel();
    services.groupcalls.map().insert(id.clone(), tx.clone());
    let span = tracing::info_span!("groupcall", groupcall_id = %id);
    let template = OriginateRequest {
        groupcall_id: id.clone(),
        ..calls
    };
    drive(services, &mut core, &template, &tx).await;
    let row = core.row().clone();
    let calls = services.calls.clone();
    let services = services.clone();
    calls.spawn(tracing::Instrument::instrument(
        async move {
            while !core.is_finished() {
                let Some(input) = rx.recv().await else {
                    break;
                };
                core.handle(input, &services.stamps.now());
                drive(&services, &mut core, &template, &tx).await;
            }
            services.groupcalls.map().remove(&template.groupcall_id);
        },
        span,
    ));
    Ok(row)
}

/// Carries out the groupcall's outputs: rows written (and waited for), calls
/// placed (their answers and ends come back on `inputs`), calls hung up.
async fn drive(
    services: &Arc<Services>,
    core: &mut GroupcallCore,
    template: &OriginateRequest,
    inputs: &mpsc::UnboundedSender<GroupInput>,
) {
    while let Some(output) = core.poll_output() {
        match output {
            GroupOutput::Write(write) => services.writer.write(vec![write]).await,
            GroupOutput::Place(destinations) => {
                let request = OriginateRequest {
                    destinations,
                    ..template.clone()
                };
                let placed =
                    super::originate::originate_with(services, request, Some(inputs.clone()))
                        .await
                        .map(|calls| calls.into_iter().map(|c| c.id).collect())
                        .map_err(|e| e.to_string());
                core.handle(GroupInput::Placed(placed), &services.stamps.now());
            }
            GroupOutput::Hangup(ids) => services.registry.hangup_calls(ids, "groupcall"),
        }
    }
}
