//! The flows calls read, kept in memory for a few seconds: a call reads its flow
//! at its start (and again for each chained flow), and under load that read was a
//! database round trip per call. A flow written through this node's API is
//! forgotten at once; one written through another node's is read again within
//! [`FlowCache::TTL`].

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::store::flows::Flow;

/// Flows by id, each with the moment it was read.
#[derive(Debug, Default)]
pub struct FlowCache(Mutex<HashMap<String, (Instant, Flow)>>);

impl FlowCache {
    /// How long a flow read from the database is used without reading it again.
    pub const TTL: Duration = Duration::from_secs(10);
    /// The most flows kept; past it the cache starts afresh.
    pub const MAX: usize = 10_000;

    fn map(&self) -> MutexGuard<'_, HashMap<String, (Instant, Flow)>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The customer's flow `flow_id`, if it was read less than [`Self::TTL`] ago.
    pub fn get(&self, customer_id: &str, flow_id: &str, now: Instant) -> Option<Flow> {
        let map = self.map();
        let (at, flow) = map.get(flow_id)?;
        (flow.customer_id == customer_id && now.saturating_duration_since(*at) < Self::TTL)
            .then(|| flow.clone())
    }

    /// Keeps a flow just read.
    pub fn put(&self, flow: &Flow, now: Instant) {
        let mut map = self.map();
        if map.len() >= Self::MAX {
            map.clear();
        }
        map.insert(flow.id.clone(), (now, flow.clone()));
    }

    /// Forgets a flow that was written or deleted.
    pub fn forget(&self, flow_id: &str) {
        self.map().remove(flow_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(id: &str, customer: &str) -> Flow {
        Flow {
            id: id.into(),
            customer_id: customer.into(),
            kind: "flow".into(),
            name: String::new(),
            detail: String::new(),
            actions: serde_json::json!([]),
            on_complete_flow_id: None,
            tm_create: String::new(),
            tm_update: None,
            tm_delete: None,
        }
    }

    #[test]
    fn a_flow_is_served_to_its_owner_until_it_expires_or_is_written() {
        let cache = FlowCache::default();
        let t0 = Instant::now();
        cache.put(&flow("f", "c1"), t0);
        assert!(cache.get("c1", "f", t0 + Duration::from_secs(1)).is_some());
        assert!(
            cache.get("c2", "f", t0).is_none(),
            "another customer's flow"
        );
        assert!(
            cache.get("c1", "f", t0 + FlowCache::TTL).is_none(),
            "expired"
        );
        cache.put(&flow("f", "c1"), t0);
        cache.forget("f");
        assert!(
            cache.get("c1", "f", t0).is_none(),
            "written through the API"
        );
    }
}
