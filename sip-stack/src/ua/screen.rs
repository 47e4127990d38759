//! Screening new calls before they cost anything: the engine's [`Screen`] judges
//! each new INVITE's source before a transaction exists, so a refused source gets
//! one stateless response (RFC 3261 section 8.2.7: no 100 Trying, no retransmission,
//! nothing kept) or nothing at all. That keeps a stranger's INVITEs from drawing
//! twelve responses each (a reflection amplifier) and a flood from an admitted
//! source from holding transactions and media ports.
//!
//! [`RateLimiter`] is the token bucket per source address the screens use (as
//! Kamailio's pike does), sans-IO like the rest: it is told the time.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::msg::Message;

/// The verdict on a new INVITE's source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Take the call: a transaction, 100 Trying, an incoming-call event.
    Admit,
    /// Answer once, statelessly, with this status (403 for a stranger, 503 for an
    /// admitted source over its rate or its provider's call limit).
    Refuse {
        /// The final status.
        status: u16,
        /// `Retry-After` seconds (RFC 3261 section 20.33), for 503.
        retry_after: Option<u32>,
        /// Why, for a Reason header (RFC 3326).
        why: Option<String>,
    },
    /// Send nothing: the source is over its rate of refusals, or not worth an answer.
    Drop,
}

/// Judges new INVITEs (not retransmissions, not in-dialog requests) by source.
pub trait Screen: Send {
    /// The verdict for `invite` from `source` at `now`.
    fn screen(&mut self, now: Instant, source: SocketAddr, invite: &Message) -> Admission;
}

/// Admits everyone (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct AdmitAll;

impl Screen for AdmitAll {
    fn screen(&mut self, _: Instant, _: SocketAddr, _: &Message) -> Admission {
        Admission::Admit
    }
}

/// Token buckets by key: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug, Clone)]
pub struct RateLimiter<K> {
    rate: f64,
    burst: f64,
    buckets: HashMap<K, (f64, Instant)>,
    /// Buckets kept before full ones are swept out.
    max_keys: usize,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// A limiter of `rate` per second with bursts of `burst` (at least 1).
    pub fn new(rate: f64, burst: u32) -> Self {
        Self {
            rate: rate.max(0.0),
            burst: f64::from(burst.max(1)),
            buckets: HashMap::new(),
            max_keys: 100_000,
        }
    }

    /// Takes a token for `key` at `now`; false when its bucket is empty.
    pub fn allow(&mut self, now: Instant, key: &K) -> bool {
        if self.buckets.len() >= self.max_keys && !self.buckets.contains_key(key) {
            self.sweep(now);
        }
        let (rate, burst) = (self.rate, self.burst);
        let (tokens, at) = self.buckets.entry(key.clone()).or_insert((burst, now));
        let elapsed = now.saturating_duration_since(*at).as_secs_f64();
        *tokens = (*tokens + elapsed * rate).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Forgets buckets that have filled up again (their sources went quiet); when
    /// every source is busy, forgets them all rather than grow without bound.
    fn sweep(&mut self, now: Instant) {
        let full_after = Duration::from_secs_f64(if self.rate > 0.0 {
            self.burst / self.rate
        } else {
            3600.0
        });
        self.buckets
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < full_after);
        if self.buckets.len() >= self.max_keys {
            self.buckets.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_gives_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(10.0, 5);
        let k = "a";
        assert_eq!((0..20).filter(|_| l.allow(t0, &k)).count(), 5);
        // Another source is not held back by the first.
        assert!(l.allow(t0, &"b"));
        // A second later, ten more.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!((0..20).filter(|_| l.allow(t1, &k)).count(), 5);
        let t2 = t1 + Duration::from_millis(300);
        assert_eq!((0..20).filter(|_| l.allow(t2, &k)).count(), 3);
    }

    #[test]
    fn the_table_of_sources_stays_bounded() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(1.0, 1);
        l.max_keys = 100;
        for i in 0..1000u32 {
            l.allow(t0, &i);
        }
        assert!(l.buckets.len() <= 100);
    }
}
