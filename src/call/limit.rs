//! The per-customer limit on concurrent outbound calls: each outbound call (one
//! placed through `POST /calls` or `call`, a `connect` leg) holds a [`Permit`]
//! while it is up; with a customer's permits all taken, the next is refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Counts each customer's outbound calls against one limit.
#[derive(Debug, Clone, Default)]
pub struct OutboundLimit {
    /// The most per customer; 0 for no limit.
    max: u32,
    up: Arc<Mutex<HashMap<String, u32>>>,
}

/// One outbound call counted against its customer's limit, until dropped.
#[derive(Debug)]
pub struct Permit {
    limit: OutboundLimit,
    customer_id: String,
}

impl OutboundLimit {
    /// A limit of `max` per customer (0: none).
    pub fn new(max: u32) -> Self {
        Self {
            max,
            up: Arc::default(),
        }
    }

    /// The limit (0: none).
    pub fn max(&self) -> u32 {
        self.max
    }

    fn counts(&self) -> MutexGuard<'_, HashMap<String, u32>> {
        self.up
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `n` permits for `customer_id`, all or none; `Err(limit)` when they would
    /// take it past the limit.
    pub fn acquire(&self, customer_id: &str, n: usize) -> Result<Vec<Permit>, u32> {
        let n32 = u32::try_from(n).unwrap_or(u32::MAX);
        {
            let mut counts = self.counts();
            let up = counts.entry(customer_id.to_owned()).or_insert(0);
            if self.max != 0 && up.saturating_add(n32) > self.max {
                if *up == 0 {
                    counts.remove(customer_id);
                }
                return Err(self.max);
            }
            *up += n32;
        }
        Ok((0..n)
            .map(|_| Permit {
                limit: self.clone(),
                customer_id: customer_id.to_owned(),
            })
            .collect())
    }

    /// Whether `n` more calls of `customer_id` would fit now (no permit taken).
    pub fn has_room(&self, customer_id: &str, n: usize) -> bool {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.max == 0 || self.up(customer_id).saturating_add(n) <= self.max
    }

    /// The customer's outbound calls up now.
    pub fn up(&self, customer_id: &str) -> u32 {
        self.counts().get(customer_id).copied().unwrap_or(0)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut counts = self.limit.counts();
        if let Some(up) = counts.get_mut(&self.customer_id) {
            *up = up.saturating_sub(1);
            if *up == 0 {
                counts.remove(&self.customer_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_are_all_or_none_and_come_back_when_dropped() {
        let limit = OutboundLimit::new(3);
        let two = limit.acquire("c1", 2).expect("under the limit");
        assert_eq!(limit.acquire("c1", 2).expect_err("past it"), 3);
        assert_eq!(limit.up("c1"), 2, "a refused request takes nothing");
        assert!(limit.has_room("c1", 1) && !limit.has_room("c1", 2));
        let other = limit
            .acquire("c2", 3)
            .expect("another customer's own limit");
        drop(two);
        assert_eq!(limit.up("c1"), 0);
        let three = limit.acquire("c1", 3).expect("freed");
        assert_eq!(three.len(), 3);
        drop(other);
        assert_eq!(limit.up("c2"), 0);
    }

    #[test]
    fn zero_means_no_limit() {
        let limit = OutboundLimit::new(0);
        let many = limit.acquire("c1", 10_000).expect("no limit");
        assert_eq!(limit.up("c1"), 10_000);
        drop(many);
        assert_eq!(limit.up("c1"), 0);
    }
}
