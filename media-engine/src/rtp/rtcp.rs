//! RTCP for one leg (RFC 3550 section 6): the compound report we send (an SR while we
//! are sending, an RR otherwise, always with an SDES CNAME, section 6.1), and what we
//! learn from the peer's reports: its view of our stream (loss, jitter) and the round
//! trip time from the LSR/DLSR fields (section 6.4.1). Reports go out every 5 s,
//! randomised over [0.5, 1.5] of that (section 6.2). Packets are parsed and written
//! with `rtcp-types`. A report is built every few seconds, not per packet, so the
//! builder's small allocations stay off the per-packet path.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rtcp_types::{
    Compound, Packet, ReceiverReport, ReportBlock, RtcpPacketWriterExt, RtcpParseError,
    RtcpWriteError, Sdes, SdesChunk, SdesItem, SenderReport,
};

use super::{ReceiveStats, SendCounters};

/// RFC 3550 section 6.2: the minimum report interval.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(5);
/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// The wall clock as a 64-bit NTP timestamp (RFC 3550 section 4).
pub fn ntp_now() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    ntp_from_unix(since)
}

/// A time since the Unix epoch as a 64-bit NTP timestamp.
pub fn ntp_from_unix(since: Duration) -> u64 {
    let frac = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
    ((since.as_secs() + NTP_UNIX_OFFSET) << 32) | frac
}

/// The middle 32 bits of an NTP timestamp: the LSR field's unit (1/65536 s).
fn ntp_middle(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// What the peer's RTCP told us.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RemoteView {
    /// Sender reports received.
    pub sender_reports: u32,
    /// Receiver reports received.
    pub receiver_reports: u32,
    /// The fraction of our packets the peer lost, of 256, in its last report.
    pub fraction_lost: u8,
    /// The packets of ours the peer lost in all.
    pub cumulative_lost: i32,
    /// The jitter the peer measured on our stream, in timestamp units.
    pub jitter: u32,
    /// The last round trip time measured, in milliseconds.
    pub rtt_ms: Option<f64>,
    /// The peer sent a BYE.
    pub bye: bool,
}

/// The RTCP state of one leg.
#[derive(Debug, Clone)]
pub struct RtcpSession {
    ssrc: u32,
    cname: String,
    /// The peer's SSRC, once seen.
    remote_ssrc: Option<u32>,
    /// The middle bits of the last SR's NTP time and when it arrived.
    last_sr: Option<(u32, Instant)>,
    packets_at_last_report: u32,
    remote: RemoteView,
    next_report: Option<Instant>,
    rng: u64,
}

impl RtcpSession {
    /// RTCP for the leg that sends with `ssrc`, named `cname` (RFC 7022: unique per
    /// session).
    pub fn new(ssrc: u32, cname: impl Into<String>) -> Self {
        Self {
            ssrc,
            cname: cname.into(),
            remote_ssrc: None,
            last_sr: None,
            packets_at_last_report: 0,
            remote: RemoteView::default(),
            next_report: None,
            rng: u64::from(ssrc) | 1,
        }
    }

    /// What the peer has told us so far.
    pub fn remote_view(&self) -> RemoteView {
        self.remote
    }

    /// Sets the peer's SSRC (from its RTP), which the report block is about.
    pub fn set_remote_ssrc(&mut self, ssrc: u32) {
        self.remote_ssrc = Some(ssrc);
    }

    /// A factor in [0.5, 1.5) (RFC 3550 section 6.3.1), from a small xorshift.
    fn jitter_factor(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        0.5 + (self.rng % 1000) as f64 / 1000.0
    }

    /// Whether a report is due at `now` (the first one is sent at once).
    pub fn report_due(&mut self, now: Instant) -> bool {
        let due = self.next_report.is_none_or(|at| now >= at);
        if due {
            let factor = self.jitter_factor();
            self.next_report = Some(now + REPORT_INTERVAL.mul_f64(factor));
        }
        due
    }

    /// Writes the compound report into `out`: an SR if we sent since the last report
    /// (RFC 3550 section 6.4), else an RR, with a report block on the peer's stream
    /// when it has sent, and the SDES CNAME. Returns its length.
    pub fn write_report(
        &mut self,
        sent: SendCounters,
        received: Option<&mut ReceiveStats>,
        clock_rate: u32,
        now: Instant,
        ntp: u64,
        out: &mut [u8],
    ) -> Result<usize, RtcpWriteError> {
        let block = match (self.remote_ssrc, received) {
            (Some(remote), Some(stats)) if stats.received() > 0 => {
                let figures = stats.report();
                let (lsr, dlsr) = match self.last_sr {
                    Some((lsr, at)) => (
                        lsr,
                        (now.saturating_duration_since(at).as_secs_f64() * 65536.0) as u32,
                    ),
                    None => (0, 0),
                };
                Some(
                    ReportBlock::builder(remote)
                        .fraction_lost(figures.fraction_lost)
                        .cumulative_lost((figures.cumulative_lost as u32) & 0x00ff_ffff)
                        .extended_sequence_number(figures.extended_highest_seq)
                        .interarrival_jitter(figures.jitter)
                        .last_sender_report_timestamp(lsr)
                        .delay_since_last_sender_report_timestamp(dlsr),
                )
            }
            _ => None,
        };
        let sending = sent.packets != self.packets_at_last_report;
        self.packets_at_last_report = sent.packets;
        let sdes = Sdes::builder().add_chunk(
            SdesChunk::builder(self.ssrc).add_item(SdesItem::builder(SdesItem::CNAME, &self.cname)),
        );
        let compound = if sending {
            // The RTP timestamp that corresponds to `ntp` (section 6.4.1): the last
            // packet's, moved on by the time since it was sent.
            let since = sent
                .last_sent
                .map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
            let rtp_ts = sent
                .last_timestamp
                .wrapping_add((since.as_secs_f64() * f64::from(clock_rate)) as u32);
            let mut sr = SenderReport::builder(self.ssrc)
                .ntp_timestamp(ntp)
                .rtp_timestamp(rtp_ts)
                .packet_count(sent.packets)
                .octet_count(sent.octets);
            if let Some(b) = block {
                sr = sr.add_report_block(b);
            }
            Compound::builder().add_packet(sr).add_packet(sdes)
        } else {
            let mut rr = ReceiverReport::builder(self.ssrc);
            if let Some(b) = block {
                rr = rr.add_report_block(b);
            }
            Compound::builder().add_packet(rr).add_packet(sdes)
        };
        compound.write_into(out)
    }

    /// Takes a compound RTCP packet from the peer, arrived at `now` (wall clock `ntp`).
    pub fn on_packet(&mut self, data: &[u8], now: Instant, ntp: u64) -> Result<(), RtcpParseError> {
        for packet in Compound::parse(data)? {
            match packet? {
                Packet::Sr(sr) => {
                    self.remote.sender_reports += 1;
                    self.last_sr = Some((ntp_middle(sr.ntp_timestamp()), now));
                    self.take_blocks(sr.report_blocks(), ntp);
                }
                Packet::Rr(rr) => {
                    self.remote.receiver_reports += 1;
                    self.take_blocks(rr.report_blocks(), ntp);
                }
                Packet::Bye(_) => self.remote.bye = true,
                _ => {}
            }
        }
        Ok(())
    }

    /// Reads the report block about our stream; RTT = A - LSR - DLSR (section 6.4.1).
    fn take_blocks<'a>(&mut self, blocks: impl Iterator<Item = ReportBlock<'a>>, ntp: u64) {
        for block in blocks.filter(|b| b.ssrc() == self.ssrc) {
            self.remote.fraction_lost = block.fraction_lost();
            // A 24-bit two's complement field.
            let raw = block.cumulative_lost() & 0x00ff_ffff;
            self.remote.cumulative_lost = ((raw << 8) as i32) >> 8;
            self.remote.jitter = block.interarrival_jitter();
            let lsr = block.last_sender_report_timestamp();
            if lsr != 0 {
                let rtt = ntp_middle(ntp)
                    .wrapping_sub(lsr)
                    .wrapping_sub(block.delay_since_last_sender_report_timestamp());
                // A negative result (clock trouble) wraps to a huge value: ignore it.
                if rtt < 65536 * 60 {
                    self.remote.rtt_ms = Some(f64::from(rtt) * 1000.0 / 65536.0);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_ms(ms: u64) -> u64 {
        ntp_from_unix(Duration::from_secs(1_700_000_000) + Duration::from_millis(ms))
    }

    #[test]
    fn ntp_time_counts_from_1900() {
        assert_eq!(ntp_from_unix(Duration::ZERO) >> 32, NTP_UNIX_OFFSET);
        assert_eq!(
            ntp_from_unix(Duration::from_millis(500)) & 0xffff_ffff,
            1 << 31
        );
    }

    /// Two legs report to each other: A sends an SR; B answers 30 ms later with an RR
    /// that holds 10 ms of delay since A's SR; A reads it 50 ms after its SR went out:
    /// the round trip is 40 ms.
    #[test]
    fn an_sr_answered_by_an_rr_gives_the_round_trip_time() {
        let t0 = Instant::now();
        let mut a = RtcpSession::new(0xaaaa, "a@voipbin");
        let mut b = RtcpSession::new(0xbbbb, "b@peer");
        a.set_remote_ssrc(0xbbbb);
        b.set_remote_ssrc(0xaaaa);
        let sent = SendCounters {
            packets: 50,
            octets: 8000,
            last_timestamp: 8000,
            last_sent: Some(t0),
        };
        let mut buf = [0u8; 1500];
        let n = a
            .write_report(sent, None, 8000, t0, at_ms(0), &mut buf)
            .expect("writes");
        b.on_packet(&buf[..n], t0 + Duration::from_millis(20), at_ms(20))
            .expect("parses");
        assert_eq!(b.remote_view().sender_reports, 1);

        let mut stats = ReceiveStats::new(8000);
        for seq in 0..50u16 {
            if seq != 7 {
                stats.on_packet(
                    seq,
                    u32::from(seq) * 160,
                    t0 + Duration::from_millis(u64::from(seq) * 20),
                );
            }
        }
        let idle = SendCounters::default();
        let n = b
            .write_report(
                idle,
                Some(&mut stats),
                8000,
                t0 + Duration::from_millis(30),
                at_ms(30),
                &mut buf,
            )
            .expect("writes");
        a.on_packet(&buf[..n], t0 + Duration::from_millis(50), at_ms(50))
            .expect("parses");
        let view = a.remote_view();
        assert_eq!(view.receiver_reports, 1);
        assert_eq!(view.cumulative_lost, 1);
        assert!(view.fraction_lost > 0);
        let rtt = view.rtt_ms.expect("an RTT");
        assert!((rtt - 40.0).abs() < 0.1, "rtt {rtt} ms");
    }

    #[test]
    fn bye_and_garbage_are_told_apart() {
        let mut s = RtcpSession::new(1, "x");
        let bye = Compound::builder()
            .add_packet(rtcp_types::Bye::builder().add_source(2))
            .write_vec_unchecked_for_test();
        s.on_packet(&bye, Instant::now(), at_ms(0)).expect("parses");
        assert!(s.remote_view().bye);
        assert!(
            s.on_packet(&[0x80, 200, 0, 50], Instant::now(), at_ms(0))
                .is_err(),
            "a length past the end"
        );
        assert!(s.on_packet(&[], Instant::now(), at_ms(0)).is_err());
    }

    #[test]
    fn reports_are_spaced_around_five_seconds() {
        let mut s = RtcpSession::new(1234, "x");
        let t0 = Instant::now();
        assert!(s.report_due(t0));
        assert!(!s.report_due(t0 + Duration::from_millis(2400)));
        assert!(s.report_due(t0 + Duration::from_millis(7600)));
    }

    trait WriteForTest {
        fn write_vec_unchecked_for_test(self) -> Vec<u8>;
    }
    impl WriteForTest for rtcp_types::CompoundBuilder<'_> {
        fn write_vec_unchecked_for_test(self) -> Vec<u8> {
            let mut v = vec![0u8; 1500];
            let n = self.write_into(&mut v).expect("writes");
            v.truncate(n);
            v
        }
    }
}
