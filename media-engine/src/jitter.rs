//! The adaptive jitter buffer: packets in by RTP sequence number, frames out on the
//! 20 ms tick. It reorders, drops duplicates and packets that come after their turn,
//! reports a gap as lost so the decoder conceals it (Opus PLC, or [`conceal`] for
//! G.711), and sizes its delay to the measured jitter (RFC 3550 section 6.4.1's
//! estimator) between bounds. Its slots' storage is made when the first packet
//! comes (a leg that never receives media holds none) and is sized to the largest
//! payload seen (160 bytes for 20 ms of G.711, not the 1,500 an Opus frame might
//! need); it grows, rarely, when a larger payload arrives, and a packet otherwise
//! costs no allocation.

use crate::rtp::InterarrivalJitter;

/// The largest payload kept (an Opus frame is at most 1275 bytes).
pub const MAX_PAYLOAD: usize = 1500;

/// What happened to a pushed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// Kept for playout.
    Accepted,
    /// Already held.
    Duplicate,
    /// Its turn has passed.
    Late,
    /// Too far ahead of the playout point (or too large); dropped.
    Dropped,
}

/// What the tick gets.
#[derive(Debug, PartialEq, Eq)]
pub enum Pop<'a> {
    /// Still filling up to the target depth: play silence.
    Buffering,
    /// The next packet's payload.
    Packet(&'a [u8]),
    /// The next packet is missing: conceal.
    Lost,
}

/// Counters for the call's statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets accepted.
    pub accepted: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Late packets dropped.
    pub late: u64,
    /// Frames concealed.
    pub lost: u64,
    /// The current target depth, in frames.
    pub target_depth: u32,
    /// The interarrival jitter estimate, in ms.
    pub jitter_ms: u32,
}

#[derive(Debug, Clone)]
struct Slot {
    seq: Option<u16>,
    len: usize,
}

/// Sequence numbers compared across the 16-bit wrap (RFC 3550 appendix A.1).
fn seq_diff(a: u16, b: u16) -> i32 {
    i32::from(a.wrapping_sub(b) as i16)
}

/// An adaptive jitter buffer for one stream.
#[derive(Debug, Clone)]
pub struct JitterBuffer {
    slots: Box<[Slot]>,
    /// The slots' payloads, `stride` bytes each, in one allocation (empty until
    /// the first packet).
    data: Vec<u8>,
    /// The room for one payload in `data`: the largest payload so far, rounded up.
    stride: usize,
    ptime_ms: u32,
    min_depth: u32,
    max_depth: u32,
    target: u32,
    next: Option<u16>,
    playing: bool,
    jitter: InterarrivalJitter,
    clock_khz: i64,
    stats: JitterStats,
}

impl JitterBuffer {
    /// A buffer of frames of `ptime_ms` at `clock_rate`, its depth between `min_depth`
    /// and `max_depth` frames.
    pub fn new(ptime_ms: u32, clock_rate: u32, min_depth: u32, max_depth: u32) -> Self {
        let capacity = (max_depth as usize * 4).max(16);
        let slots = (0..capacity).map(|_| Slot { seq: None, len: 0 }).collect();
        Self {
            slots,
            data: Vec::new(),
            stride: 0,
            ptime_ms: ptime_ms.max(10),
            min_depth: min_depth.max(1),
            max_depth: max_depth.max(min_depth.max(1)),
            target: min_depth.max(1),
            next: None,
            playing: false,
            jitter: InterarrivalJitter::default(),
            clock_khz: i64::from(clock_rate / 1000).max(1),
            stats: JitterStats {
                target_depth: min_depth.max(1),
                ..JitterStats::default()
            },
        }
    }

    /// The statistics so far.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    fn slot(&self, seq: u16) -> usize {
        usize::from(seq) % self.slots.len()
    }

    /// How many packets wait from the playout point on.
    pub fn depth(&self) -> u32 {
        let Some(next) = self.next else { return 0 };
        self.slots
            .iter()
            .filter(|s| s.seq.is_some_and(|q| seq_diff(q, next) >= 0))
            .count() as u32
    }

    /// Takes a packet that arrived at `arrival_ms` (the local clock).
    pub fn push(&mut self, seq: u16, timestamp: u32, payload: &[u8], arrival_ms: u64) -> Push {
        if payload.len() > MAX_PAYLOAD {
            return Push::Dropped;
        }
        if let Some(next) = self.next {
            let d = seq_diff(seq, next);
            if d < 0 {
                self.stats.late += 1;
                return Push::Late;
            }
            if d >= self.slots.len() as i32 {
                return Push::Dropped;
            }
        } else {
            self.next = Some(seq);
        }
        self.update_jitter(timestamp, arrival_ms);
        let i = self.slot(seq);
        if self.slots[i].seq == Some(seq) {
            self.stats.duplicates += 1;
            return Push::Duplicate;
        }
        // Widened before the slot is taken: the copy moves held payloads only.
        if payload.len() > self.stride {
            self.widen(payload.len());
        }
        let slot = &mut self.slots[i];
        slot.seq = Some(seq);
        slot.len = payload.len();
        self.data[i * self.stride..][..payload.len()].copy_from_slice(payload);
        self.stats.accepted += 1;
        // A packet older than the current first one moves the playout point back
        // while nothing has been played.
        if let Some(next) = self.next
            && !self.playing
            && seq_diff(seq, next) < 0
        {
            self.next = Some(seq);
        }
        Push::Accepted
    }

    /// Makes room for payloads of `len` bytes, keeping the held ones in place.
    fn widen(&mut self, len: usize) {
        let stride = len.next_power_of_two().clamp(64, MAX_PAYLOAD);
        let mut data = vec![0; self.slots.len() * stride];
        // Before the first packet no slot is held (and `data` is empty).
        for (i, slot) in self.slots.iter().enumerate() {
            if slot.seq.is_some() {
                data[i * stride..][..slot.len]
                    .copy_from_slice(&self.data[i * self.stride..][..slot.len]);
            }
        }
        self.data = data;
        self.stride = stride;
    }

    /// The RFC 3550 estimate of the jitter (section 6.4.1); the target depth follows
    /// it (two jitters and a frame, within the bounds).
    fn update_jitter(&mut self, timestamp: u32, arrival_ms: u64) {
        let arrival = i64::try_from(arrival_ms)
            .unwrap_or(i64::MAX)
            .saturating_mul(self.clock_khz);
        self.jitter.update(arrival, timestamp);
        let jitter_ms =
            u32::try_from(i64::from(self.jitter.get()) / self.clock_khz).unwrap_or(u32::MAX);
        self.stats.jitter_ms = jitter_ms;
        let want = (2 * jitter_ms).div_ceil(self.ptime_ms) + 1;
        self.target = want.clamp(self.min_depth, self.max_depth);
        self.stats.target_depth = self.target;
    }

    /// The payload of the packet due next, when it has arrived: after a
    /// [`Pop::Lost`], the packet whose Opus FEC rebuilds the lost one.
    pub fn peek(&self) -> Option<&[u8]> {
        let next = self.next?;
        let i = self.slot(next);
        let slot = &self.slots[i];
        (slot.seq == Some(next)).then(|| &self.data[i * self.stride..][..slot.len])
    }

    /// The frame for this tick.
    pub fn pop(&mut self) -> Pop<'_> {
        let Some(next) = self.next else {
            return Pop::Buffering;
        };
        let depth = self.depth();
        if !self.playing {
            if depth < self.target {
                return Pop::Buffering;
            }
            self.playing = true;
        }
        // Too much queued (the jitter fell): skip one frame to shorten the delay.
        if depth > self.max_depth + 1 {
            let i = self.slot(next);
            self.slots[i].seq = None;
            self.next = Some(next.wrapping_add(1));
            self.stats.lost += 1;
            return Pop::Lost;
        }
        self.next = Some(next.wrapping_add(1));
        let i = self.slot(next);
        if self.slots[i].seq == Some(next) {
            self.slots[i].seq = None;
            let len = self.slots[i].len;
            return Pop::Packet(&self.data[i * self.stride..][..len]);
        }
        self.stats.lost += 1;
        // The missing packet held no slot, so nothing waiting changed: none left means
        // it ran dry; fill up to the target again before playing on.
        if depth == 0 {
            self.playing = false;
        }
        Pop::Lost
    }
}

/// G.711 loss concealment (repeat and fade): the last good frame, quieter by a fifth
/// for each frame lost in a row, silent from the fifth on.
pub fn conceal(last_good: &[i16], lost_in_row: u32, out: &mut [i16]) {
    let gain = 5i32
        .saturating_sub(i32::try_from(lost_in_row).unwrap_or(5))
        .max(0);
    for (o, s) in out
        .iter_mut()
        .zip(last_good.iter().chain(std::iter::repeat(&0)))
    {
        *o = ((i32::from(*s) * gain) / 5) as i16;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pushes packets by (seq, arrival ms) with 20 ms timestamps, then pops one frame
    /// per 20 ms tick; returns what each tick played ("1" = seq 1, "L" lost, "." buffering).
    fn run(jb: &mut JitterBuffer, arrivals: &[(u16, u64)], ticks: u64) -> Vec<String> {
        let mut out = Vec::new();
        for t in 0..ticks {
            let now = t * 20;
            for &(seq, at) in arrivals
                .iter()
                .filter(|(_, at)| *at >= now && *at < now + 20)
            {
                jb.push(seq, u32::from(seq) * 160, &[seq as u8], at);
            }
            out.push(match jb.pop() {
                Pop::Buffering => ".".to_owned(),
                Pop::Packet(p) => p[0].to_string(),
                Pop::Lost => "L".to_owned(),
            });
        }
        out
    }

    #[test]
    fn reorders_within_its_depth() {
        let mut jb = JitterBuffer::new(20, 8000, 2, 8);
        let arrivals = [
            (0, 0),
            (2, 21),
            (1, 25),
            (3, 60),
            (5, 81),
            (4, 85),
            (6, 120),
            (7, 140),
        ];
        let played = run(&mut jb, &arrivals, 9);
        let heard: Vec<&str> = played
            .iter()
            .map(String::as_str)
            .filter(|s| *s != ".")
            .collect();
        assert_eq!(&heard[..8], ["0", "1", "2", "3", "4", "5", "6", "7"]);
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn a_larger_payload_widens_the_slots_and_keeps_the_held_ones() {
        let mut jb = JitterBuffer::new(20, 8000, 1, 4);
        let small = [7u8; 160];
        let large: Vec<u8> = (0..1200u32).map(|i| i as u8).collect();
        assert_eq!(jb.push(1, 160, &small, 0), Push::Accepted);
        assert_eq!(jb.push(2, 320, &small[..80], 1), Push::Accepted);
        assert_eq!(jb.push(3, 480, &large, 2), Push::Accepted);
        assert_eq!(jb.pop(), Pop::Packet(&small[..]));
        assert_eq!(jb.pop(), Pop::Packet(&small[..80]));
        assert_eq!(jb.pop(), Pop::Packet(&large[..]));
        assert_eq!(jb.push(4, 640, &[0; MAX_PAYLOAD + 1], 3), Push::Dropped);
    }

    #[test]
    fn a_larger_payload_in_the_last_slot_widens_without_reading_past_the_old_storage() {
        let mut jb = JitterBuffer::new(20, 8000, 1, 4);
        let last = u16::try_from(jb.slots.len() - 1).expect("few slots");
        let large = [9u8; 1200];
        assert_eq!(jb.push(0, 0, &[1; 160], 0), Push::Accepted);
        assert_eq!(
            jb.push(last, u32::from(last) * 160, &large, 1),
            Push::Accepted
        );
        assert_eq!(jb.peek(), Some(&[1u8; 160][..]));
        assert_eq!(jb.slots[usize::from(last)].len, large.len());
        assert_eq!(
            &jb.data[usize::from(last) * jb.stride..][..large.len()],
            &large[..]
        );
    }

    #[test]
    fn duplicates_and_late_packets_are_dropped_and_counted() {
        let mut jb = JitterBuffer::new(20, 8000, 1, 4);
        assert_eq!(jb.push(10, 1600, b"a", 0), Push::Accepted);
        assert_eq!(jb.push(10, 1600, b"a", 1), Push::Duplicate);
        assert_eq!(jb.push(11, 1760, b"b", 20), Push::Accepted);
        assert_eq!(jb.pop(), Pop::Packet(b"a"));
        assert_eq!(jb.pop(), Pop::Packet(b"b"));
        assert_eq!(jb.push(10, 1600, b"a", 45), Push::Late);
        let s = jb.stats();
        assert_eq!((s.accepted, s.duplicates, s.late), (2, 1, 1));
    }

    #[test]
    fn a_missing_packet_is_reported_lost_once_its_turn_comes() {
        let mut jb = JitterBuffer::new(20, 8000, 1, 4);
        for seq in [0u16, 1, 3, 4] {
            jb.push(seq, u32::from(seq) * 160, &[seq as u8], u64::from(seq) * 20);
        }
        let got: Vec<String> = (0..5)
            .map(|_| match jb.pop() {
                Pop::Packet(p) => p[0].to_string(),
                Pop::Lost => "L".into(),
                Pop::Buffering => ".".into(),
            })
            .collect();
        assert_eq!(got, ["0", "1", "L", "3", "4"]);
        assert_eq!(jb.stats().lost, 1);
    }

    #[test]
    fn depth_adapts_to_jitter_within_bounds() {
        let mut calm = JitterBuffer::new(20, 8000, 2, 10);
        for seq in 0..200u16 {
            calm.push(seq, u32::from(seq) * 160, b"x", u64::from(seq) * 20);
            let _ = calm.pop();
        }
        assert_eq!(calm.stats().target_depth, 2, "no jitter: the minimum");
        let mut rough = JitterBuffer::new(20, 8000, 2, 10);
        for seq in 0..200u16 {
            let wobble = if seq % 2 == 0 { 0 } else { 60 };
            rough.push(
                seq,
                u32::from(seq) * 160,
                b"x",
                u64::from(seq) * 20 + wobble,
            );
            let _ = rough.pop();
        }
        let s = rough.stats();
        assert!(s.jitter_ms >= 30, "jitter {} ms", s.jitter_ms);
        assert!(
            s.target_depth > 2 && s.target_depth <= 10,
            "target {}",
            s.target_depth
        );
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut jb = JitterBuffer::new(20, 8000, 1, 4);
        for (i, seq) in [65534u16, 65535, 0, 1].into_iter().enumerate() {
            jb.push(seq, i as u32 * 160, &[i as u8], i as u64 * 20);
        }
        let got: Vec<u8> = (0..4)
            .filter_map(|_| {
                if let Pop::Packet(p) = jb.pop() {
                    Some(p[0])
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(got, [0, 1, 2, 3]);
    }

    #[test]
    fn conceal_repeats_and_fades() {
        let last = [1000i16; 4];
        let mut out = [0i16; 4];
        conceal(&last, 1, &mut out);
        assert_eq!(out[0], 800);
        conceal(&last, 4, &mut out);
        assert_eq!(out[0], 200);
        conceal(&last, 5, &mut out);
        assert_eq!(out[0], 0);
    }
}
