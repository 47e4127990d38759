//! The outgoing side of an RTP stream: one SSRC for the life of the leg, a sequence
//! number that never skips, and a timestamp that follows the wall clock, whatever
//! feeds the leg (a prompt, TTS, a bridged peer, the mixer). The marker bit is set on
//! the first packet of each talk spurt (RFC 3551 section 4.1): after a source change
//! or a pause.

use std::time::{Duration, Instant};

use rtp_types::{RtpPacketBuilder, RtpPacketMut, RtpWriteError};

/// Counters for the RTCP sender report (RFC 3550 section 6.4.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendCounters {
    /// Packets sent.
    pub packets: u32,
    /// Payload octets sent.
    pub octets: u32,
    /// The RTP timestamp of the last packet.
    pub last_timestamp: u32,
    /// When it was sent.
    pub last_sent: Option<Instant>,
}

/// Where a relayed stream's sequence numbers and timestamps are moved to.
#[derive(Debug, Clone, Copy)]
struct Mapping {
    ssrc: u32,
    seq_offset: u16,
    ts_offset: u32,
}

/// The sending state of one leg.
#[derive(Debug, Clone)]
pub struct RtpSender {
    ssrc: u32,
    clock_rate: u32,
    next_seq: u16,
    next_ts: u32,
    /// The timestamp every packet of the current RFC 4733 event carries.
    event_ts: u32,
    /// When the current event started, and the leg's packet length then.
    event_started: Option<(Instant, u32)>,
    spurt_start: bool,
    relay: Option<Mapping>,
    counters: SendCounters,
}

impl RtpSender {
    /// A sender with this SSRC, first sequence number and first timestamp (RFC 3550
    /// section 5.1 wants the last two random).
    pub fn new(ssrc: u32, clock_rate: u32, first_seq: u16, first_ts: u32) -> Self {
        Self {
            ssrc,
            clock_rate: clock_rate.max(1),
            next_seq: first_seq,
            next_ts: first_ts,
            event_ts: first_ts,
            event_started: None,
            spurt_start: true,
            relay: None,
            counters: SendCounters {
                last_timestamp: first_ts,
                ..SendCounters::default()
            },
        }
    }

    /// The SSRC this leg sends with.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The counters for the sender report.
    pub fn counters(&self) -> SendCounters {
        self.counters
    }

    /// A new source starts feeding the leg: its first packet carries the marker.
    pub fn source_changed(&mut self) {
        self.spurt_start = true;
        self.relay = None;
    }

    /// Moves the timestamp on by the time that passed without packets, so a pause
    /// (silence, hold, a gap between prompts) keeps the timestamp on the wall clock;
    /// a pause of more than two frames starts a new talk spurt.
    fn account_for_pause(&mut self, samples: u32, now: Instant) {
        let Some(last) = self.counters.last_sent else {
            return;
        };
        let gap = now.saturating_duration_since(last);
        let frame =
            Duration::from_micros(u64::from(samples) * 1_000_000 / u64::from(self.clock_rate));
        if gap > frame * 2 {
            let gap_samples = self.samples_in(gap);
            // Whole frames (the nearest, as ticks wander by a little): next_ts already
            // includes the one frame after `last`.
            let samples = samples.max(1);
            let extra = (gap_samples.saturating_sub(samples) + samples / 2) / samples * samples;
            self.next_ts = self.next_ts.wrapping_add(extra);
            self.spurt_start = true;
        }
    }

    /// How many samples of the RTP clock `d` lasts.
    fn samples_in(&self, d: Duration) -> u32 {
        u32::try_from(d.as_micros() * u128::from(self.clock_rate) / 1_000_000).unwrap_or(u32::MAX)
    }

    fn record(&mut self, ts: u32, payload_len: usize, now: Instant) {
        self.counters.packets = self.counters.packets.wrapping_add(1);
        self.counters.octets = self.counters.octets.wrapping_add(payload_len as u32);
        self.counters.last_timestamp = ts;
        self.counters.last_sent = Some(now);
    }

    /// The timestamp the next packet of generated audio gets (where a telephone
    /// event starts).
    pub fn next_timestamp(&self) -> u32 {
        self.next_ts
    }

    /// Writes a packet of an RFC 4733 event without moving the stream's timestamp
    /// on: every packet of one event shares the event's start timestamp (RFC 4733
    /// section 2.5.1.1). The first (`marker`) starts the event where the wall clock
    /// is, after any pause since the last packet (`samples` is the leg's packet
    /// length); [`RtpSender::skip`] moves the timestamp past the event after it.
    pub fn write_event(
        &mut self,
        payload_type: u8,
        marker: bool,
        payload: &[u8],
        samples: u32,
        now: Instant,
        out: &mut [u8],
    ) -> Result<usize, RtpWriteError> {
        self.relay = None;
        if marker {
            self.account_for_pause(samples, now);
            self.event_ts = self.next_ts;
            self.event_started = Some((now, samples.max(1)));
        }
        let timestamp = self.event_ts;
        let seq = self.next_seq;
        let len = RtpPacketBuilder::<&[u8], &[u8]>::new()
            .payload_type(payload_type)
            .marker_bit(marker)
            .sequence_number(seq)
            .timestamp(timestamp)
            .ssrc(self.ssrc)
            .payload(payload)
            .write_into(out)?;
        self.next_seq = seq.wrapping_add(1);
        self.record(timestamp, payload.len(), now);
        Ok(len)
    }

    /// Moves the timestamp past the event just sent (`samples` long) and starts a
    /// new talk spurt: to where the wall clock is one packet after the event's last
    /// packet (its end is repeated after its duration), and at least past its
    /// duration.
    pub fn skip(&mut self, samples: u32) {
        let on_clock = match (self.event_started, self.counters.last_sent) {
            (Some((start, frame)), Some(last)) => {
                let elapsed = self.samples_in(last.saturating_duration_since(start));
                (elapsed + frame / 2) / frame * frame + frame
            }
            _ => 0,
        };
        self.next_ts = self.event_ts.wrapping_add(samples.max(on_clock));
        self.spurt_start = true;
    }

    /// Writes a packet of `samples` samples of `payload` into `out`; returns its length.
    pub fn write(
        &mut self,
        payload_type: u8,
        samples: u32,
        payload: &[u8],
        now: Instant,
        out: &mut [u8],
    ) -> Result<usize, RtpWriteError> {
        if self.relay.take().is_some() {
            self.spurt_start = true;
        }
        self.account_for_pause(samples, now);
        let (seq, ts) = (self.next_seq, self.next_ts);
        let len = RtpPacketBuilder::<&[u8], &[u8]>::new()
            .payload_type(payload_type)
            .marker_bit(self.spurt_start)
            .sequence_number(seq)
            .timestamp(ts)
            .ssrc(self.ssrc)
            .payload(payload)
            .write_into(out)?;
        self.spurt_start = false;
        self.next_seq = seq.wrapping_add(1);
        self.next_ts = ts.wrapping_add(samples);
        self.record(ts, payload.len(), now);
        Ok(len)
    }

    /// Rewrites a relayed packet in place so it continues this leg's stream: our SSRC,
    /// and the peer's sequence numbers and timestamps moved by a fixed offset (so the
    /// peer's own spacing, gaps and reordering pass through untouched). A new peer SSRC
    /// sets new offsets and the marker. `samples` is the packet's duration, used only
    /// when the mapping starts.
    pub fn relay(
        &mut self,
        packet: &mut [u8],
        samples: u32,
        now: Instant,
    ) -> Result<(), rtp_types::RtpParseError> {
        let mut p = RtpPacketMut::parse(packet)?;
        let (in_ssrc, in_seq, in_ts) = {
            let r = &*p;
            (r.ssrc(), r.sequence_number(), r.timestamp())
        };
        let mapping = match self.relay {
            Some(m) if m.ssrc == in_ssrc => m,
            _ => {
                self.account_for_pause(samples, now);
                let m = Mapping {
                    ssrc: in_ssrc,
                    seq_offset: self.next_seq.wrapping_sub(in_seq),
                    ts_offset: self.next_ts.wrapping_sub(in_ts),
                };
                self.relay = Some(m);
                p.set_marker_bit(true);
                m
            }
        };
        let seq = in_seq.wrapping_add(mapping.seq_offset);
        let ts = in_ts.wrapping_add(mapping.ts_offset);
        p.set_ssrc(self.ssrc);
        p.set_sequence_number(seq);
        p.set_timestamp(ts);
        self.spurt_start = false;
        // Only a newer packet moves the stream on (a reordered one keeps its place).
        if (seq.wrapping_sub(self.next_seq) as i16) >= 0 {
            self.next_seq = seq.wrapping_add(1);
            self.next_ts = ts.wrapping_add(samples);
        }
        let payload_len = p.payload_mut().len();
        self.record(ts, payload_len, now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rtp_types::RtpPacket;

    use super::*;

    fn header(buf: &[u8]) -> (bool, u16, u32, u32) {
        let p = RtpPacket::parse(buf).expect("our own packet parses");
        (p.marker_bit(), p.sequence_number(), p.timestamp(), p.ssrc())
    }

    #[test]
    fn a_steady_source_counts_up_with_the_marker_on_the_first_packet_only() {
        let mut s = RtpSender::new(7, 8000, 65534, 1000);
        let t0 = Instant::now();
        let mut out = [0u8; 200];
        let got: Vec<_> = (0..3u32)
            .map(|i| {
                let n = s
                    .write(
                        0,
                        160,
                        &[0xff; 160],
                        t0 + Duration::from_millis(u64::from(i) * 20),
                        &mut out,
                    )
                    .expect("fits");
                assert_eq!(n, 172);
                header(&out[..n])
            })
            .collect();
        assert_eq!(
            got,
            [
                (true, 65534, 1000, 7),
                (false, 65535, 1160, 7),
                (false, 0, 1320, 7)
            ]
        );
        assert_eq!(s.counters().packets, 3);
        assert_eq!(s.counters().octets, 480);
    }

    #[test]
    fn a_pause_advances_the_timestamp_by_the_wall_clock_and_marks_the_next_spurt() {
        let mut s = RtpSender::new(7, 8000, 0, 0);
        let t0 = Instant::now();
        let mut out = [0u8; 200];
        s.write(0, 160, &[0; 160], t0, &mut out).expect("fits");
        // One second of silence, then the next prompt.
        let n = s
            .write(
                0,
                160,
                &[0; 160],
                t0 + Duration::from_millis(1000),
                &mut out,
            )
            .expect("fits");
        assert_eq!(header(&out[..n]), (true, 1, 8000, 7));
    }

    #[test]
    fn a_relayed_peer_is_moved_onto_our_stream_and_a_new_peer_continues_it() {
        let mut s = RtpSender::new(99, 8000, 500, 40_000);
        let t0 = Instant::now();
        let mut out = [0u8; 200];
        s.write(0, 160, &[0; 160], t0, &mut out).expect("fits");
        let peer = |ssrc: u32, seq: u16, ts: u32| {
            RtpPacketBuilder::<&[u8], &[u8]>::new()
                .payload_type(0)
                .ssrc(ssrc)
                .sequence_number(seq)
                .timestamp(ts)
                .payload(&[1u8; 160][..])
                .write_vec()
                .expect("builds")
        };
        let mut p = peer(1, 9000, 123_456);
        s.relay(&mut p, 160, t0 + Duration::from_millis(20))
            .expect("parses");
        assert_eq!(header(&p), (true, 501, 40_160, 99));
        let mut p = peer(1, 9002, 123_776);
        s.relay(&mut p, 160, t0 + Duration::from_millis(60))
            .expect("parses");
        assert_eq!(
            header(&p),
            (false, 503, 40_480, 99),
            "the peer's own gap passes through"
        );
        // A transfer: another peer, other numbering; our stream carries on from 504.
        let mut p = peer(2, 7, 7);
        s.relay(&mut p, 160, t0 + Duration::from_millis(80))
            .expect("parses");
        assert_eq!(header(&p), (true, 504, 40_640, 99));
        // Back to generated audio.
        let n = s
            .write(0, 160, &[0; 160], t0 + Duration::from_millis(100), &mut out)
            .expect("fits");
        assert_eq!(header(&out[..n]), (true, 505, 40_800, 99));
    }

    #[test]
    fn events_share_a_timestamp_and_keep_to_the_wall_clock_across_pauses() {
        let mut s = RtpSender::new(7, 8000, 1, 1000);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut out = [0u8; 200];
        // Audio at 0 ms, then a 100 ms key: packets at 20..=120 ms (the end repeated).
        s.write(0, 160, &[0xff; 160], at(0), &mut out)
            .expect("fits");
        let mut key = |first_ms: u64| {
            let stamps: Vec<u32> = (0..7u64)
                .map(|i| {
                    let n = s
                        .write_event(
                            101,
                            i == 0,
                            &[1, 10, 0, 160],
                            160,
                            at(first_ms + i * 20),
                            &mut out,
                        )
                        .expect("fits");
                    header(&out[..n]).2
                })
                .collect();
            s.skip(800);
            stamps
        };
        let first = key(20);
        assert!(first.iter().all(|&t| t == 1160), "one timestamp: {first:?}");
        // The next key starts 300 ms after the first: 2,400 samples on.
        let second = key(320);
        assert!(second.iter().all(|&t| t == 1160 + 2400), "{second:?}");
        // Audio 60 ms after that key's last packet (at 440 ms): 180 ms past its start.
        let n = s
            .write(0, 160, &[0xff; 160], at(500), &mut out)
            .expect("fits");
        assert_eq!(header(&out[..n]).2, 1160 + 2400 + 1440);
    }
}
