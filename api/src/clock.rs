//! Time for the API: the VoIPBIN timestamp format and an injectable clock.
//!
//! Timestamps are written as the current original writes them,
//! `2006-01-02T15:04:05.000000Z` (UTC, microseconds). Written that way they sort
//! as text, so they serve as keys for pagination (`page_token`) on SQLite and Postgres
//! alike.

use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

const FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// Formats microseconds since the Unix epoch as a VoIPBIN timestamp.
pub fn format_micros(micros: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    t.format(FORMAT).unwrap_or_default()
}

/// Parses a VoIPBIN timestamp back to microseconds since the epoch.
pub fn parse_micros(text: &str) -> Option<i64> {
    let t = time::PrimitiveDateTime::parse(text, FORMAT)
        .ok()?
        .assume_utc();
    i64::try_from(t.unix_timestamp_nanos() / 1000).ok()
}

/// The wall clock, injected so tests can move it.
pub trait Clock: Send + Sync + 'static {
    /// Microseconds since the Unix epoch.
    fn now_micros(&self) -> i64;
}

/// The system's wall clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_micros(&self) -> i64 {
        i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000).unwrap_or(0)
    }
}

/// Hands out creation timestamps that strictly increase within this process, so two
/// rows never share a `tm_create` and cursor pagination never skips one.
pub struct Stamps {
    clock: Box<dyn Clock>,
    last: AtomicI64,
}

impl Stamps {
    /// Stamps from `clock`.
    pub fn new(clock: Box<dyn Clock>) -> Self {
        Self {
            clock,
            last: AtomicI64::new(0),
        }
    }

    /// Now, in microseconds (not unique).
    pub fn now_micros(&self) -> i64 {
        self.clock.now_micros()
    }

    /// Now, in Unix seconds.
    pub fn now_secs(&self) -> u64 {
        u64::try_from(self.now_micros() / 1_000_000).unwrap_or(0)
    }

    /// Now, formatted (not unique).
    pub fn now(&self) -> String {
        format_micros(self.now_micros())
    }

    /// A timestamp later than every one handed out before, formatted.
    pub fn unique(&self) -> String {
        let now = self.clock.now_micros();
        let mut prev = self.last.load(Ordering::Relaxed);
        loop {
            let next = now.max(prev + 1);
            match self
                .last
                .compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return format_micros(next),
                Err(actual) => prev = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(i64);
    impl Clock for Fixed {
        fn now_micros(&self) -> i64 {
            self.0
        }
    }

    #[test]
    fn formats_like_the_original() {
        // 2026-01-15T09:30:00.000001Z
        let micros = 1_768_469_400_000_001;
        assert_eq!(format_micros(micros), "2026-01-15T09:30:00.000001Z");
        assert_eq!(parse_micros("2026-01-15T09:30:00.000001Z"), Some(micros));
    }

    #[test]
    fn unique_stamps_increase_under_a_stopped_clock() {
        let stamps = Stamps::new(Box::new(Fixed(1_000_000)));
        let a = stamps.unique();
        let b = stamps.unique();
        assert!(b > a, "{b} > {a}");
    }
}
