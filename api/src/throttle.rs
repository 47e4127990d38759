//! Password guessing, held back: a failed login counts against the caller's address
//! and the username tried; after [`FREE_FAILURES`] in a row the next attempt waits
//! (1 s, then doubling to [`MAX_LOCKOUT`]) and gets 429 with Retry-After without a
//! password hash being computed. A success clears the username's count (and the
//! address's). Sans-IO: it is told the time.
//!
//! Hashing itself is bounded elsewhere ([`crate::auth`]: as many argon2 runs at once
//! as there are cores), so a burst of logins queues instead of taking 19 MiB each.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Failures allowed before attempts are slowed.
pub const FREE_FAILURES: u32 = 5;
/// The longest wait imposed.
pub const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// Entries kept before quiet ones are swept out.
const MAX_ENTRIES: usize = 100_000;

/// Who a login attempt counts against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// The address the request came from.
    Address(IpAddr),
    /// The username tried (lower case).
    Username(String),
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    locked_until: Option<Instant>,
    last: Instant,
}

/// Failed logins by subject.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    records: Mutex<HashMap<Subject, Record>>,
}

impl LoginThrottle {
    /// How long `subjects` must still wait at `now` (the longest of them), if at all.
    pub fn wait(&self, now: Instant, subjects: &[Subject]) -> Option<Duration> {
        let records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        subjects
            .iter()
            .filter_map(|s| records.get(s)?.locked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max()
    }

    /// Counts a failed attempt against each subject.
    pub fn failed(&self, now: Instant, subjects: &[Subject]) {
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        if records.len() >= MAX_ENTRIES {
            records.retain(|_, r| now.saturating_duration_since(r.last) < MAX_LOCKOUT);
        }
        for s in subjects {
            let r = records.entry(s.clone()).or_insert(Record {
                failures: 0,
                locked_until: None,
                last: now,
            });
            // A subject quiet for the longest lockout starts afresh.
            if now.saturating_duration_since(r.last) >= MAX_LOCKOUT {
                r.failures = 0;
            }
            r.failures += 1;
            r.last = now;
            if r.failures >= FREE_FAILURES {
                let doublings = (r.failures - FREE_FAILURES).min(10);
                let wait = (Duration::from_secs(1) * 2u32.pow(doublings)).min(MAX_LOCKOUT);
                r.locked_until = Some(now + wait);
            }
        }
    }

    /// Clears the subjects' counts after a success.
    pub fn succeeded(&self, subjects: &[Subject]) {
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        for s in subjects {
            records.remove(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subjects() -> Vec<Subject> {
        vec![
            Subject::Address("192.0.2.1".parse().expect("ip")),
            Subject::Username("acme".into()),
        ]
    }

    #[test]
    fn five_failures_are_free_then_the_waits_double() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..FREE_FAILURES - 1 {
            t.failed(now, &subjects());
            assert_eq!(t.wait(now, &subjects()), None);
        }
        t.failed(now, &subjects());
        assert_eq!(t.wait(now, &subjects()), Some(Duration::from_secs(1)));
        let later = now + Duration::from_secs(1);
        assert_eq!(t.wait(later, &subjects()), None);
        t.failed(later, &subjects());
        assert_eq!(t.wait(later, &subjects()), Some(Duration::from_secs(2)));
        // The right password from elsewhere still waits for the username's lockout.
        let other = [
            Subject::Address("198.51.100.7".parse().expect("ip")),
            Subject::Username("acme".into()),
        ];
        assert_eq!(t.wait(later, &other), Some(Duration::from_secs(2)));
        t.succeeded(&subjects());
        assert_eq!(t.wait(later, &subjects()), None);
    }

    #[test]
    fn the_wait_is_capped() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..100 {
            t.failed(now, &subjects());
        }
        assert_eq!(t.wait(now, &subjects()), Some(MAX_LOCKOUT));
    }
}
