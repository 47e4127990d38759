//! DTMF as RTP events (RFC 4733 section 2.3): the 4-byte payload, a receiver that
//! reports one digit per key press however many packets (redundant ends, losses)
//! carry it, and a sender that paces a key press into packets with the end packet
//! sent three times (section 2.5.1.4).

/// The payload of one telephone-event packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// The event code: 0-9, 10 = *, 11 = #, 12-15 = A-D.
    pub event: u8,
    /// The end bit.
    pub end: bool,
    /// The volume in -dBm0 (0-63).
    pub volume: u8,
    /// The duration so far, in RTP timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Reads a payload; `None` when shorter than 4 bytes.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let b: [u8; 4] = payload.get(..4)?.try_into().ok()?;
        Some(Self {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3f,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    /// Writes the payload.
    pub fn write(&self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3f),
            d[0],
            d[1],
        ]
    }
}

/// The key of an event code, for DTMF events (0-15).
pub fn key_of(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

/// The event code of a key.
pub fn event_of(key: char) -> Option<u8> {
    match key.to_ascii_uppercase() {
        d @ '0'..='9' => Some(d as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        k @ 'A'..='D' => Some(k as u8 - b'A' + 12),
        _ => None,
    }
}

/// A key press heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digit {
    /// The key.
    pub key: char,
    /// How long it was held, in ms.
    pub duration_ms: u32,
}

/// Turns telephone-event packets into key presses. An event is known by its RTP
/// timestamp (every packet of one key press carries the same one): it is reported
/// once, at its first end packet, or, when every end packet was lost, when the next
/// event starts or no packet came for `timeout_ms`.
#[derive(Debug, Clone)]
pub struct EventReceiver {
    clock_rate: u32,
    timeout_ms: u64,
    /// The event in progress: (timestamp, code, duration units, last packet ms).
    current: Option<(u32, u8, u16, u64)>,
    /// The timestamps of the last two events reported, to drop their redundant or
    /// late packets.
    reported: [Option<u32>; 2],
}

impl EventReceiver {
    /// A receiver for events at `clock_rate` (8000 for narrowband).
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate: clock_rate.max(1),
            timeout_ms: 250,
            current: None,
            reported: [None; 2],
        }
    }

    fn mark_reported(&mut self, timestamp: u32) {
        self.reported = [Some(timestamp), self.reported[0]];
    }

    fn digit(&self, code: u8, units: u16) -> Option<Digit> {
        key_of(code).map(|key| Digit {
            key,
            duration_ms: u32::from(units) * 1000 / self.clock_rate,
        })
    }

    /// Takes one packet (its RTP timestamp and payload) arriving at `now_ms`; returns
    /// the key presses it completes, oldest first: at most two (an event that lost
    /// its end packets, then this one when this packet ends it).
    pub fn on_packet(&mut self, timestamp: u32, payload: &[u8], now_ms: u64) -> [Option<Digit>; 2] {
        let Some(ev) = TelephoneEvent::parse(payload) else {
            return [None, None];
        };
        if self.reported.contains(&Some(timestamp)) {
            return [None, None]; // a redundant end packet, or a late one
        }
        let mut older = None;
        match self.current {
            Some((ts, code, units, _)) if ts != timestamp => {
                // A new event while the last had no end packet: the last one ended.
                self.mark_reported(ts);
                older = self.digit(code, units);
                self.current = Some((timestamp, ev.event, ev.duration, now_ms));
            }
            Some((ts, code, units, _)) => {
                self.current = Some((ts, code, units.max(ev.duration), now_ms))
            }
            None => self.current = Some((timestamp, ev.event, ev.duration, now_ms)),
        }
        let mut this = None;
        if ev.end
            && let Some((ts, code, units, _)) = self.current.take()
        {
            self.mark_reported(ts);
            this = self.digit(code, units);
        }
        [older, this]
    }

    /// When [`EventReceiver::on_timeout`] should run (an event without an end).
    pub fn poll_timeout(&self) -> Option<u64> {
        self.current.map(|(_, _, _, last)| last + self.timeout_ms)
    }

    /// Reports an event whose end packets were all lost.
    pub fn on_timeout(&mut self, now_ms: u64) -> Option<Digit> {
        let (ts, code, units, last) = self.current?;
        if now_ms < last + self.timeout_ms {
            return None;
        }
        self.current = None;
        self.mark_reported(ts);
        self.digit(code, units)
    }
}

/// One packet to send for a key press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    /// The RTP marker bit (the first packet of the event).
    pub marker: bool,
    /// The payload.
    pub payload: [u8; 4],
    /// Milliseconds after the key press starts when this packet goes out.
    pub at_ms: u32,
}

/// The packets of one key press of `duration_ms`, one every `ptime_ms`, each with the
/// duration so far, then the end packet three times; all share one RTP timestamp.
pub fn send_packets(
    key: char,
    duration_ms: u32,
    ptime_ms: u32,
    clock_rate: u32,
) -> Vec<EventPacket> {
    let Some(event) = event_of(key) else {
        return Vec::new();
    };
    let ptime = ptime_ms.max(10);
    let units =
        |ms: u32| u16::try_from(u64::from(ms) * u64::from(clock_rate) / 1000).unwrap_or(u16::MAX);
    let mut out = Vec::new();
    let mut t = ptime;
    while t < duration_ms {
        let ev = TelephoneEvent {
            event,
            end: false,
            volume: 10,
            duration: units(t),
        };
        out.push(EventPacket {
            marker: out.is_empty(),
            payload: ev.write(),
            at_ms: t - ptime,
        });
        t += ptime;
    }
    let end = TelephoneEvent {
        event,
        end: true,
        volume: 10,
        duration: units(duration_ms),
    };
    let at = duration_ms
        .saturating_sub(ptime)
        .max(out.last().map_or(0, |p| p.at_ms + ptime));
    for i in 0..3 {
        out.push(EventPacket {
            marker: out.is_empty(),
            payload: end.write(),
            at_ms: at + i * ptime,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip() {
        let ev = TelephoneEvent {
            event: 11,
            end: true,
            volume: 10,
            duration: 1600,
        };
        assert_eq!(ev.write(), [11, 0x8a, 0x06, 0x40]);
        assert_eq!(TelephoneEvent::parse(&ev.write()), Some(ev));
        assert_eq!(TelephoneEvent::parse(&[1, 2]), None);
        assert_eq!(
            (key_of(10), key_of(15), key_of(16)),
            (Some('*'), Some('D'), None)
        );
        assert_eq!(
            (event_of('#'), event_of('a'), event_of('x')),
            (Some(11), Some(12), None)
        );
    }

    fn feed(rx: &mut EventReceiver, ts: u32, packets: &[EventPacket]) -> Vec<Digit> {
        packets
            .iter()
            .flat_map(|p| rx.on_packet(ts, &p.payload, u64::from(p.at_ms)))
            .flatten()
            .collect()
    }

    #[test]
    fn one_digit_per_key_press_despite_three_end_packets() {
        let mut rx = EventReceiver::new(8000);
        let packets = send_packets('5', 200, 20, 8000);
        assert!(packets[0].marker && !packets[1].marker);
        assert_eq!(
            packets
                .iter()
                .filter(|p| TelephoneEvent::parse(&p.payload).is_some_and(|e| e.end))
                .count(),
            3
        );
        assert_eq!(
            feed(&mut rx, 1000, &packets),
            [Digit {
                key: '5',
                duration_ms: 200
            }]
        );
        // The same key again is a new press: a new timestamp.
        assert_eq!(
            feed(&mut rx, 3000, &send_packets('5', 100, 20, 8000)).len(),
            1
        );
    }

    #[test]
    fn lost_end_packets_are_covered_by_the_next_event_or_a_timeout() {
        let mut rx = EventReceiver::new(8000);
        let no_end: Vec<EventPacket> = send_packets('1', 160, 20, 8000)
            .into_iter()
            .filter(|p| p.payload[1] & 0x80 == 0)
            .collect();
        assert!(feed(&mut rx, 100, &no_end).is_empty());
        let next = feed(&mut rx, 5000, &send_packets('2', 100, 20, 8000));
        assert_eq!(
            next.iter().map(|d| d.key).collect::<String>(),
            "12",
            "the next event completes the first"
        );
        let mut rx = EventReceiver::new(8000);
        assert!(feed(&mut rx, 100, &no_end).is_empty());
        let t = rx.poll_timeout().expect("waiting");
        assert_eq!(rx.on_timeout(t).map(|d| d.key), Some('1'));
        assert_eq!(rx.on_timeout(t + 1000), None);
    }

    #[test]
    fn a_lone_end_packet_after_a_lost_end_yields_both_digits() {
        let mut rx = EventReceiver::new(8000);
        let start = send_packets('4', 100, 20, 8000)[0];
        assert_eq!(rx.on_packet(10, &start.payload, 0), [None, None]);
        let end = *send_packets('6', 100, 20, 8000).last().expect("packets");
        let got = rx.on_packet(900, &end.payload, 500);
        assert_eq!(got.map(|d| d.map(|d| d.key)), [Some('4'), Some('6')]);
        // A late packet of the first press does not bring it back.
        assert_eq!(rx.on_packet(10, &start.payload, 600), [None, None]);
    }

    #[test]
    fn only_the_end_packets_arriving_still_count() {
        let mut rx = EventReceiver::new(8000);
        let ends: Vec<EventPacket> = send_packets('#', 120, 20, 8000)
            .into_iter()
            .filter(|p| p.payload[1] & 0x80 != 0)
            .collect();
        assert_eq!(
            feed(&mut rx, 7, &ends),
            [Digit {
                key: '#',
                duration_ms: 120
            }]
        );
    }
}
