//! Providers' health: every carrier (a provider with a `hostname`) is probed with
//! a SIP OPTIONS now and then (as the original's proxy sidecar does). Any answer
//! means it is up (`healthy`, and `health_checked_at` moves on); none within the
//! probe's wait means it stopped answering (`unhealthy`), and calls try it after
//! the others until it answers again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use api::store::providers::Provider;
use sip_stack::transaction::TxId;
use tokio::sync::oneshot;

use super::Services;

/// How long a probe waits for its answer.
pub const PROBE_WAIT: Duration = Duration::from_secs(5);

/// What the last probe of a provider found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not probed yet.
    Unknown,
    /// It answered.
    Healthy,
    /// It did not.
    Unhealthy,
}

/// Each carrier's health, in memory, for ordering a call's carriers.
#[derive(Debug, Default)]
pub struct ProviderHealth(Mutex<HashMap<String, Health>>);

impl ProviderHealth {
    fn map(&self) -> MutexGuard<'_, HashMap<String, Health>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// What the last probe of `provider_id` found.
    pub fn get(&self, provider_id: &str) -> Health {
        self.map()
            .get(provider_id)
            .copied()
            .unwrap_or(Health::Unknown)
    }

    /// Records a probe's outcome.
    pub fn set(&self, provider_id: &str, health: Health) {
        self.map().insert(provider_id.to_owned(), health);
    }

    /// Moves the carriers that stopped answering after the others, keeping the
    /// routes' order otherwise.
    pub fn order(&self, carriers: &mut [Provider]) {
        let map = self.map();
        carriers.sort_by_key(|p| map.get(&p.id) == Some(&Health::Unhealthy));
    }
}

/// The probes waiting for their answer, by transaction: the SIP dispatcher hands
/// each [`sip_stack::ua::UaEvent::Probed`] to its waiter.
#[derive(Debug, Clone, Default)]
pub struct Probes(Arc<Mutex<HashMap<TxId, oneshot::Sender<Option<u16>>>>>);

impl Probes {
    fn map(&self) -> MutexGuard<'_, HashMap<TxId, oneshot::Sender<Option<u16>>>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Hands a probe's answer to its waiter (none when it gave up waiting).
    pub fn answer(&self, tx: TxId, status: Option<u16>) {
        if let Some(waiter) = self.map().remove(&tx)
            && waiter.send(status).is_err()
        {
            tracing::debug!(?tx, "a probe answered after its wait");
        }
    }
}

/// Probes every carrier each `every`, until the process ends.
pub async fn run(services: Arc<Services>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        tracing::debug!(
            carriers = services.routing.carriers().len(),
            "probing the carriers"
        );
        let mut probes = tokio::task::JoinSet::new();
        for provider in services.routing.carriers().iter().cloned() {
            let services = services.clone();
            probes.spawn(async move {
                let healthy = probe(&services, &provider).await;
                (provider, healthy)
            });
        }
        while let Some(done) = probes.join_next().await {
            match done {
                Ok((provider, healthy)) => record(&services, &provider, healthy).await,
                Err(e) => tracing::warn!(error = %e, "a provider probe failed"),
            }
        }
    }
}

/// Keeps a probe's outcome: in memory for the next calls, and on the row.
async fn record(services: &Services, provider: &Provider, healthy: bool) {
    let now = if healthy {
        Health::Healthy
    } else {
        Health::Unhealthy
    };
    if services.health.get(&provider.id) != now {
        tracing::info!(provider = %provider.id, host = %provider.hostname, health = ?now, "provider health changed");
    }
    services.health.set(&provider.id, now);
    let stamp = services.stamps.now();
    if let Err(e) = services
        .store
        .provider_health(&provider.id, healthy, &stamp)
        .await
    {
        tracing::warn!(provider = %provider.id, error = %e, "the provider's health was not stored");
    }
}

/// Whether the carrier's first server answers an OPTIONS within [`PROBE_WAIT`].
async fn probe(services: &Services, provider: &Provider) -> bool {
    let port = super::dns::carrier_port(provider);
    let hop = match services.dns.carrier_hops(provider, 0).await {
        Ok(hops) => match hops.first() {
            Some(hop) => *hop,
            None => return false,
        },
        Err(e) => {
            tracing::debug!(provider = %provider.id, error = %e, "probe: the host does not resolve");
            return false;
        }
    };
    let target = match port {
        Some(p) => format!("sip:{}:{p}", provider.hostname),
        None => format!("sip:{}", provider.hostname),
    };
    let (answer, answered) = oneshot::channel();
    let probes = services.probes.clone();
    let sent = services
        .ua
        .with(move |ua, now| {
            let tx = ua.probe(now, &target, hop.addr, hop.transport)?;
            probes.map().insert(tx, answer);
            Ok::<TxId, sip_stack::ua::UaError>(tx)
        })
        .await;
    let tx = match sent {
        Ok(Ok(tx)) => tx,
        Ok(Err(e)) => {
            tracing::debug!(provider = %provider.id, error = %e, "probe not sent");
            return false;
        }
        Err(e) => {
            tracing::debug!(error = %e, "probe: the SIP user agent has stopped");
            return false;
        }
    };
    tracing::debug!(provider = %provider.id, to = %hop.addr, "probe sent");
    match tokio::time::timeout(PROBE_WAIT, answered).await {
        Ok(Ok(Some(_status))) => true,
        Ok(Ok(None)) | Ok(Err(_)) => false,
        Err(_) => {
            services.probes.map().remove(&tx);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(id: &str) -> Provider {
        Provider {
            id: id.into(),
            ..Provider::default()
        }
    }

    #[test]
    fn a_carrier_that_stopped_answering_is_tried_after_the_others() {
        let health = ProviderHealth::default();
        health.set("a", Health::Unhealthy);
        health.set("b", Health::Healthy);
        let mut carriers = vec![provider("a"), provider("b"), provider("c")];
        health.order(&mut carriers);
        let ids: Vec<_> = carriers.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            ids,
            ["b", "c", "a"],
            "unknown keeps its place; unhealthy goes last"
        );
        health.set("a", Health::Healthy);
        let mut carriers = vec![provider("a"), provider("b")];
        health.order(&mut carriers);
        assert_eq!(carriers[0].id, "a", "back in its place once it answers");
    }
}
