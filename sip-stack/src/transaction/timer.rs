//! Transaction timers (RFC 3261 section 17, table 4): their names, their defaults,
//! and a heap of deadlines with lazy cancellation.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::TxId;

/// The timer values a stack runs with (RFC 3261 section 17.1.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// The round-trip estimate (default 500 ms).
    pub t1: Duration,
    /// The longest retransmit interval for non-INVITE requests and INVITE responses
    /// (default 4 s).
    pub t2: Duration,
    /// How long a message may stay in the network (default 5 s).
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// 64 * T1: timers B, F, H, J (on unreliable transports), L and M.
    pub fn t1x64(&self) -> Duration {
        self.t1 * 64
    }
}

/// The timers of RFC 3261 section 17 (and RFC 6026's L and M).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerName {
    /// INVITE client: retransmit the request (UDP).
    A,
    /// INVITE client: give up waiting for a response.
    B,
    /// INVITE client: absorb response retransmissions after a non-2xx.
    D,
    /// Non-INVITE client: retransmit the request (UDP).
    E,
    /// Non-INVITE client: give up.
    F,
    /// INVITE server: retransmit a non-2xx final response (UDP).
    G,
    /// INVITE server: give up waiting for the ACK.
    H,
    /// INVITE server: absorb ACK retransmissions.
    I,
    /// Non-INVITE server: absorb request retransmissions after the final response.
    J,
    /// Non-INVITE client: absorb response retransmissions.
    K,
    /// INVITE server (RFC 6026): stay in Accepted to absorb retransmissions.
    L,
    /// INVITE client (RFC 6026): stay in Accepted to pass 2xx retransmissions.
    M,
}

/// A deadline for a timer of a transaction. `generation` tells a stale entry (the
/// timer was re-armed or cancelled) from a live one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Deadline {
    pub(crate) at: Instant,
    pub(crate) tx: TxId,
    pub(crate) timer: TimerName,
    pub(crate) generation: u32,
}

/// The deadlines of every transaction, earliest first.
#[derive(Debug, Default)]
pub(crate) struct TimerHeap(BinaryHeap<Reverse<Deadline>>);

impl TimerHeap {
    pub(crate) fn push(&mut self, d: Deadline) {
        self.0.push(Reverse(d));
    }

    /// The earliest deadline (possibly stale).
    pub(crate) fn peek(&self) -> Option<&Deadline> {
        self.0.peek().map(|r| &r.0)
    }

    /// Removes and returns the earliest deadline if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Deadline> {
        if self.peek().is_some_and(|d| d.at <= now) {
            self.0.pop().map(|r| r.0)
        } else {
            None
        }
    }
}

/// The timers a transaction has armed: never more than two at once (A and B, E and F,
/// G and H, G and L), so they live inline, without an allocation.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Armed([Option<(TimerName, Instant)>; 2]);

impl Armed {
    /// Arms `timer` for `at`, replacing an earlier deadline of the same timer.
    pub(crate) fn set(&mut self, timer: TimerName, at: Instant) {
        let slot = self
            .0
            .iter()
            .position(|s| s.is_some_and(|(n, _)| n == timer))
            .or_else(|| self.0.iter().position(Option::is_none));
        debug_assert!(slot.is_some(), "at most two timers are armed at once");
        self.0[slot.unwrap_or(0)] = Some((timer, at));
    }

    /// Disarms `timer`.
    pub(crate) fn cancel(&mut self, timer: TimerName) {
        for s in &mut self.0 {
            if s.is_some_and(|(n, _)| n == timer) {
                *s = None;
            }
        }
    }

    /// Disarms `timer` if it is armed for exactly `at`; true when it was (the
    /// deadline is live, not stale).
    pub(crate) fn take(&mut self, timer: TimerName, at: Instant) -> bool {
        match self.0.iter_mut().find(|s| **s == Some((timer, at))) {
            Some(s) => {
                *s = None;
                true
            }
            None => false,
        }
    }
}
