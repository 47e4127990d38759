//! What a receiver learns about a stream (RFC 3550 appendix A): sequence validation
//! and the extended highest sequence number (A.1), expected and lost packets and the
//! fraction lost (A.3), and the interarrival jitter (A.8). These fill the report
//! block of an RTCP SR/RR and the per-call statistics.

use std::time::Instant;

use super::InterarrivalJitter;

/// RFC 3550 A.1: the largest forward jump still taken as the same stream.
const MAX_DROPOUT: u16 = 3000;
/// RFC 3550 A.1: the largest backward jump taken as reordering.
const MAX_MISORDER: u16 = 100;
/// RFC 3550 A.1: packets in sequence before a new source counts as valid.
const MIN_SEQUENTIAL: u8 = 2;
const SEQ_MOD: u32 = 1 << 16;

/// How a received packet's sequence number was judged (RFC 3550 A.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqVerdict {
    /// In sequence, reordered or a duplicate: counted.
    Counted,
    /// The source is still on probation (a new SSRC, or a restart).
    Probation,
    /// A jump too large to believe; a second packet following it restarts the count.
    Jump,
}

/// The receiver's view of one source.
#[derive(Debug, Clone)]
pub struct ReceiveStats {
    clock_rate: u32,
    started: bool,
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    probation: u8,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    jitter: InterarrivalJitter,
    epoch: Option<Instant>,
    last_arrival: Option<Instant>,
}

/// A receiver report block's content (RFC 3550 section 6.4.1), without the SSRC and
/// the LSR/DLSR fields that the RTCP session adds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportFigures {
    /// Lost since the last report, as a fraction of 256.
    pub fraction_lost: u8,
    /// Lost since the start, clamped to the 24-bit signed field.
    pub cumulative_lost: i32,
    /// Cycles in the high 16 bits, the highest sequence number in the low.
    pub extended_highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
}

impl ReceiveStats {
    /// Statistics for a stream with this RTP clock rate.
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate: clock_rate.max(1),
            started: false,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: SEQ_MOD + 1,
            probation: MIN_SEQUENTIAL,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            jitter: InterarrivalJitter::default(),
            epoch: None,
            last_arrival: None,
        }
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// Records a packet with this sequence number and RTP timestamp, arrived `now`.
    pub fn on_packet(&mut self, seq: u16, timestamp: u32, now: Instant) -> SeqVerdict {
        self.last_arrival = Some(now);
        let verdict = self.update_seq(seq);
        if verdict == SeqVerdict::Counted {
            self.update_jitter(timestamp, now);
        }
        verdict
    }

    /// RFC 3550 A.1 `update_seq`.
    fn update_seq(&mut self, seq: u16) -> SeqVerdict {
        if !self.started {
            self.started = true;
            self.init_seq(seq);
            self.max_seq = seq.wrapping_sub(1);
            self.probation = MIN_SEQUENTIAL;
        }
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return SeqVerdict::Counted;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return SeqVerdict::Probation;
        }
        if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(SEQ_MOD);
            }
            self.max_seq = seq;
        } else if u32::from(udelta) <= SEQ_MOD - u32::from(MAX_MISORDER) {
            if u32::from(seq) == self.bad_seq {
                // Two in a row after the jump: the sender restarted.
                self.init_seq(seq);
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (SEQ_MOD - 1);
                return SeqVerdict::Jump;
            }
        }
        self.received += 1;
        SeqVerdict::Counted
    }

    /// RFC 3550 A.8, with arrival times in timestamp units since the first packet.
    fn update_jitter(&mut self, timestamp: u32, now: Instant) {
        let epoch = *self.epoch.get_or_insert(now);
        let elapsed_us =
            u64::try_from(now.saturating_duration_since(epoch).as_micros()).unwrap_or(u64::MAX);
        let arrival = elapsed_us.saturating_mul(u64::from(self.clock_rate)) / 1_000_000;
        self.jitter
            .update(i64::try_from(arrival).unwrap_or(i64::MAX), timestamp);
    }

    /// Packets counted so far.
    pub fn received(&self) -> u32 {
        self.received
    }

    /// When the last packet arrived (for the inactivity timeout).
    pub fn last_arrival(&self) -> Option<Instant> {
        self.last_arrival
    }

    /// The current jitter in timestamp units.
    pub fn jitter(&self) -> u32 {
        self.jitter.get()
    }

    /// The current jitter in milliseconds.
    pub fn jitter_ms(&self) -> f64 {
        f64::from(self.jitter()) * 1000.0 / f64::from(self.clock_rate)
    }

    fn extended_max(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    /// Packets expected from the first to the highest sequence number (RFC 3550 A.3).
    pub fn expected(&self) -> u32 {
        if self.received == 0 {
            return 0;
        }
        self.extended_max()
            .wrapping_sub(self.base_seq)
            .wrapping_add(1)
    }

    /// Lost since the start: expected minus received; negative with duplicates.
    pub fn cumulative_lost(&self) -> i64 {
        i64::from(self.expected()) - i64::from(self.received)
    }

    /// The figures for a report block; moves the "since the last report" mark.
    pub fn report(&mut self) -> ReportFigures {
        let expected = self.expected();
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        ReportFigures {
            fraction_lost,
            cumulative_lost: self.cumulative_lost().clamp(-0x80_0000, 0x7f_ffff) as i32,
            extended_highest_seq: self.extended_max(),
            jitter: self.jitter(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn feed(stats: &mut ReceiveStats, seqs: impl IntoIterator<Item = u16>) -> Vec<SeqVerdict> {
        let t0 = Instant::now();
        seqs.into_iter()
            .enumerate()
            .map(|(i, s)| {
                stats.on_packet(
                    s,
                    u32::from(s) * 160,
                    t0 + Duration::from_millis(i as u64 * 20),
                )
            })
            .collect()
    }

    #[test]
    fn a_new_source_is_on_probation_for_one_packet_then_counted() {
        let mut s = ReceiveStats::new(8000);
        let v = feed(&mut s, [100, 101, 102]);
        assert_eq!(
            v,
            [
                SeqVerdict::Probation,
                SeqVerdict::Counted,
                SeqVerdict::Counted
            ]
        );
        assert_eq!((s.expected(), s.received()), (2, 2));
    }

    #[test]
    fn loss_and_the_fraction_lost_follow_appendix_a3() {
        let mut s = ReceiveStats::new(8000);
        // 0..=99 with every tenth missing (10 lost of 100 expected after probation).
        feed(&mut s, (0..100u16).filter(|n| n % 10 != 5));
        let r = s.report();
        assert_eq!(s.expected(), 99);
        assert_eq!(r.cumulative_lost, 10);
        assert_eq!(r.fraction_lost, (10 * 256 / 99) as u8);
        assert_eq!(r.extended_highest_seq, 99);
        // Nothing new since: the next report's fraction is zero.
        assert_eq!(s.report().fraction_lost, 0);
    }

    #[test]
    fn the_extended_sequence_counts_wraps() {
        let mut s = ReceiveStats::new(8000);
        feed(&mut s, (65530..=65535u16).chain(0..5));
        let r = s.report();
        assert_eq!(r.extended_highest_seq, (1 << 16) + 4);
        assert_eq!(r.cumulative_lost, 0);
    }

    #[test]
    fn a_big_jump_is_believed_only_when_followed() {
        let mut s = ReceiveStats::new(8000);
        feed(&mut s, [1, 2, 3]);
        let t = Instant::now();
        assert_eq!(s.on_packet(40_000, 0, t), SeqVerdict::Jump);
        assert_eq!(s.on_packet(40_001, 160, t), SeqVerdict::Counted);
        assert_eq!(s.report().extended_highest_seq, 40_001);
        assert_eq!(s.cumulative_lost(), 0, "the restart resets the counts");
    }

    #[test]
    fn reordering_and_duplicates_do_not_count_as_loss() {
        let mut s = ReceiveStats::new(8000);
        feed(&mut s, [0, 1, 3, 2, 4, 4, 5]);
        assert!(s.cumulative_lost() <= 0);
        assert_eq!(s.report().extended_highest_seq, 5);
    }

    #[test]
    fn jitter_is_zero_on_a_steady_stream_and_tracks_a_wobble() {
        let mut calm = ReceiveStats::new(8000);
        feed(&mut calm, 0..200u16);
        assert_eq!(calm.jitter(), 0);
        let mut rough = ReceiveStats::new(8000);
        let t0 = Instant::now();
        for seq in 0..400u16 {
            let wobble = if seq % 2 == 0 { 0 } else { 10 };
            rough.on_packet(
                seq,
                u32::from(seq) * 160,
                t0 + Duration::from_millis(u64::from(seq) * 20 + wobble),
            );
        }
        // |D| is 10 ms on every packet: J converges to 80 timestamp units.
        assert!(
            (75..=80).contains(&rough.jitter()),
            "jitter {}",
            rough.jitter()
        );
        assert!((rough.jitter_ms() - 10.0).abs() < 0.7);
    }
}
