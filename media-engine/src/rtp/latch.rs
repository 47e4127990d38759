//! Symmetric RTP (RFC 4961) with latching for NAT: a leg sends to the address its
//! peer's packets actually come from, which behind a NAT is not the one in the SDP.
//! The first packet latches; after that a new address takes over only when it sends
//! several packets in a row of one SSRC, so a stray or spoofed packet cannot steal
//! the stream, while a peer whose NAT mapping changed is followed.

use std::net::SocketAddr;

/// Packets in a row from a new address before the stream moves to it.
pub const RELATCH_AFTER: u8 = 5;

/// What the latch decided about a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatchVerdict {
    /// From the latched address (or the one that just latched): take it.
    Accept,
    /// From another address, not (yet) trusted: drop it.
    Ignore,
}

/// The remote address of one leg.
#[derive(Debug, Clone)]
pub struct Latch {
    remote: SocketAddr,
    latched: bool,
    candidate: Option<(SocketAddr, u32, u8)>,
}

impl Latch {
    /// Starts out sending to the address the SDP named.
    pub fn new(signalled: SocketAddr) -> Self {
        Self {
            remote: signalled,
            latched: false,
            candidate: None,
        }
    }

    /// Where to send now.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// Whether a packet has been received yet.
    pub fn is_latched(&self) -> bool {
        self.latched
    }

    /// The SDP changed (a re-INVITE): send there until packets say otherwise.
    pub fn resignal(&mut self, signalled: SocketAddr) {
        *self = Self::new(signalled);
    }

    /// Judges a packet from `from` with this SSRC.
    pub fn observe(&mut self, from: SocketAddr, ssrc: u32) -> LatchVerdict {
        if from.port() == 0 {
            // Port 0 cannot be answered (SIPp's pcap replay sends from it): take the
            // media, keep sending where we do.
            return LatchVerdict::Accept;
        }
        if !self.latched {
            self.remote = from;
            self.latched = true;
            return LatchVerdict::Accept;
        }
        if from == self.remote {
            self.candidate = None;
            return LatchVerdict::Accept;
        }
        let count = match self.candidate {
            Some((addr, s, n)) if addr == from && s == ssrc => n + 1,
            _ => 1,
        };
        if count >= RELATCH_AFTER {
            self.remote = from;
            self.candidate = None;
            return LatchVerdict::Accept;
        }
        self.candidate = Some((from, ssrc, count));
        LatchVerdict::Ignore
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn packets_from_port_zero_are_taken_but_never_latched_onto() {
        let mut l = Latch::new(addr("10.0.0.5:4000"));
        for _ in 0..10 {
            assert_eq!(l.observe(addr("127.0.0.1:0"), 7), LatchVerdict::Accept);
        }
        assert_eq!(l.remote(), addr("10.0.0.5:4000"));
        assert!(!l.is_latched());
    }

    #[test]
    fn the_first_packet_latches_over_the_sdp_address() {
        let mut l = Latch::new(addr("10.0.0.5:4000"));
        assert_eq!(
            l.observe(addr("203.0.113.9:61000"), 1),
            LatchVerdict::Accept
        );
        assert_eq!(l.remote(), addr("203.0.113.9:61000"));
    }

    #[test]
    fn a_stray_packet_does_not_steal_the_stream_but_a_moved_peer_is_followed() {
        let mut l = Latch::new(addr("10.0.0.5:4000"));
        l.observe(addr("203.0.113.9:61000"), 1);
        assert_eq!(
            l.observe(addr("198.51.100.1:5000"), 666),
            LatchVerdict::Ignore
        );
        assert_eq!(
            l.observe(addr("203.0.113.9:61000"), 1),
            LatchVerdict::Accept
        );
        let moved = addr("203.0.113.9:62000");
        for _ in 1..RELATCH_AFTER {
            assert_eq!(l.observe(moved, 1), LatchVerdict::Ignore);
        }
        assert_eq!(l.observe(moved, 1), LatchVerdict::Accept);
        assert_eq!(l.remote(), moved);
    }
}
