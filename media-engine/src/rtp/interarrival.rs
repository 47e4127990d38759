//! The interarrival jitter estimator of RFC 3550 section 6.4.1 and appendix A.8, shared
//! by the receive statistics (for RTCP) and the jitter buffer (to size its depth).

/// J += (|D| - J) / 16 over transit times, in timestamp units, kept times 16 in fixed
/// point as A.8 does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InterarrivalJitter {
    transit: Option<i64>,
    jitter16: u32,
}

impl InterarrivalJitter {
    /// Takes a packet with RTP `timestamp` that arrived at `arrival` (the local clock,
    /// in the same timestamp units, from any origin).
    pub fn update(&mut self, arrival: i64, timestamp: u32) {
        let transit = arrival - i64::from(timestamp);
        if let Some(prev) = self.transit {
            // A step larger than this is a timestamp jump, not jitter.
            let d = (transit - prev)
                .unsigned_abs()
                .min(u64::from(u32::MAX / 32)) as u32;
            self.jitter16 = self.jitter16 + d - ((self.jitter16 + 8) >> 4);
        }
        self.transit = Some(transit);
    }

    /// The estimate, in timestamp units.
    pub fn get(&self) -> u32 {
        self.jitter16 >> 4
    }
}
