//! Reliable provisional responses (RFC 3262): a 1xx with `Require: 100rel` and an
//! `RSeq` is retransmitted (T1, doubling) until a PRACK whose `RAck` names it arrives,
//! for at most 64*T1; then the UAS should reject the INVITE with a 5xx (section 3).

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::msg::{HeaderName, Message};

/// An `RAck` value: `rseq cseq method`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RAck {
    /// The RSeq of the provisional response acknowledged.
    pub rseq: u32,
    /// The CSeq number of the request it answered.
    pub cseq: u32,
    /// That request's method.
    pub method: String,
}

impl RAck {
    /// Reads the RAck of a PRACK.
    pub fn of(prack: &Message) -> Option<Self> {
        let mut parts = prack.header(HeaderName::RAck)?.split_whitespace();
        let rseq = parts.next()?.parse().ok()?;
        let cseq = parts.next()?.parse().ok()?;
        let method = parts.next()?.to_owned();
        Some(Self { rseq, cseq, method })
    }
}

/// What a reliable provisional response asks of the sender when its timer fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retransmit {
    /// Send these bytes again.
    Send(Bytes),
    /// 64*T1 passed without a PRACK: reject the INVITE with a 5xx.
    GiveUp,
}

/// One reliable provisional response in flight.
#[derive(Debug, Clone)]
pub struct ReliableProvisional {
    rseq: u32,
    cseq: u32,
    bytes: Bytes,
    interval: Duration,
    next: Instant,
    deadline: Instant,
    acknowledged: bool,
}

impl ReliableProvisional {
    /// Tracks `bytes` (a 1xx carrying `RSeq: rseq`) answering the INVITE with CSeq
    /// number `cseq`, first sent at `now`.
    pub fn new(now: Instant, t1: Duration, rseq: u32, cseq: u32, bytes: Bytes) -> Self {
        Self {
            rseq,
            cseq,
            bytes,
            interval: t1,
            next: now + t1,
            deadline: now + t1 * 64,
            acknowledged: false,
        }
    }

    /// Whether its PRACK came.
    pub fn acknowledged(&self) -> bool {
        self.acknowledged
    }

    /// When [`ReliableProvisional::on_timeout`] is due, while unacknowledged.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.acknowledged).then_some(self.next.min(self.deadline))
    }

    /// Runs its timer at `now`.
    pub fn on_timeout(&mut self, now: Instant) -> Option<Retransmit> {
        if self.acknowledged || now < self.next.min(self.deadline) {
            return None;
        }
        if now >= self.deadline {
            self.acknowledged = true; // nothing more to do for it
            return Some(Retransmit::GiveUp);
        }
        self.interval *= 2;
        self.next = now + self.interval;
        Some(Retransmit::Send(self.bytes.clone()))
    }

    /// Takes a PRACK: true when its RAck names this response (the PRACK then gets
    /// 200; otherwise 481, section 7.2).
    pub fn on_prack(&mut self, prack: &Message) -> bool {
        let matches = RAck::of(prack)
            .is_some_and(|r| r.rseq == self.rseq && r.cseq == self.cseq && r.method == "INVITE");
        if matches {
            self.acknowledged = true;
        }
        matches
    }
}

/// Whether a request asks for (Require) or allows (Supported) reliable provisional
/// responses.
pub fn wants_100rel(req: &Message) -> bool {
    req.list(HeaderName::Require)
        .chain(req.list(HeaderName::Supported))
        .any(|t| t.eq_ignore_ascii_case("100rel"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::parse_datagram;

    fn prack(rack: &str) -> Message {
        let text = format!(
            "PRACK sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKp\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>;tag=2\r\n\
Call-ID: c\r\nCSeq: 2 PRACK\r\nRAck: {rack}\r\nContent-Length: 0\r\n\r\n"
        );
        parse_datagram(Bytes::from(text)).expect("valid")
    }

    #[test]
    fn retransmits_doubling_until_the_prack() {
        let t0 = Instant::now();
        let t1 = Duration::from_millis(500);
        let mut r = ReliableProvisional::new(t0, t1, 77, 1, Bytes::from_static(b"180"));
        assert_eq!(r.on_timeout(t0 + Duration::from_millis(499)), None);
        assert!(matches!(r.on_timeout(t0 + t1), Some(Retransmit::Send(_))));
        assert_eq!(r.poll_timeout(), Some(t0 + t1 * 3), "the next after 2*T1");
        assert!(!r.on_prack(&prack("78 1 INVITE")), "another RSeq");
        assert!(r.on_prack(&prack("77 1 INVITE")));
        assert_eq!(r.poll_timeout(), None);
        assert_eq!(r.on_timeout(t0 + t1 * 10), None);
    }

    #[test]
    fn gives_up_after_64_t1() {
        let t0 = Instant::now();
        let t1 = Duration::from_millis(500);
        let mut r = ReliableProvisional::new(t0, t1, 1, 1, Bytes::from_static(b"183"));
        let mut now = t0;
        let mut sends = 0;
        while let Some(at) = r.poll_timeout() {
            now = at;
            match r.on_timeout(now) {
                Some(Retransmit::Send(_)) => sends += 1,
                Some(Retransmit::GiveUp) => break,
                None => {}
            }
        }
        assert_eq!(now, t0 + t1 * 64);
        assert_eq!(sends, 6, "at 0.5, 1.5, 3.5, 7.5, 15.5 and 31.5 s");
    }
}
