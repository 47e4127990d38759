//! UTC calendar fields from Unix milliseconds, for `condition_datetime`. The time is
//! always passed in; nothing here reads a clock.

/// The calendar fields of one instant, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// e.g. 2026.
    pub year: i64,
    /// 1-12.
    pub month: i64,
    /// 1-31.
    pub day: i64,
    /// 0-23.
    pub hour: i64,
    /// 0-59.
    pub minute: i64,
    /// 0 = Sunday .. 6 = Saturday.
    pub weekday: i64,
}

impl Civil {
    /// The fields of `millis` since the Unix epoch.
    pub fn from_unix_millis(millis: u64) -> Self {
        let secs = i64::try_from(millis / 1000).unwrap_or(i64::MAX / 2);
        let days = secs.div_euclid(86_400);
        let of_day = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Self {
            year,
            month,
            day,
            hour: of_day / 3600,
            minute: (of_day % 3600) / 60,
            // 1970-01-01 was a Thursday (4).
            weekday: (days + 4).rem_euclid(7),
        }
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(
            Civil::from_unix_millis(0),
            Civil {
                year: 1970,
                month: 1,
                day: 1,
                hour: 0,
                minute: 0,
                weekday: 4
            }
        );
        // 2026-01-15T09:30:00Z was a Thursday.
        assert_eq!(
            Civil::from_unix_millis(1_768_469_400_000),
            Civil {
                year: 2026,
                month: 1,
                day: 15,
                hour: 9,
                minute: 30,
                weekday: 4
            }
        );
        // 2024-02-29T23:59:00Z, a leap day, a Thursday.
        assert_eq!(
            Civil::from_unix_millis(1_709_251_140_000),
            Civil {
                year: 2024,
                month: 2,
                day: 29,
                hour: 23,
                minute: 59,
                weekday: 4
            }
        );
    }
}
