//! Symmetric RTP (RFC 4961) with latching for NAT: a leg sends to the address its
//! peer's packets actually come from, which behind a NAT is not the one in the SDP.
//!
//! Only trusted hosts may latch: the IP the SDP names, and the IP the call's SIP
//! came from (a NAT'd phone's SDP names its private address, while its media comes
//! from the public one its SIP comes from). A packet from any other host is dropped
//! and counted, whatever it carries (audio, RFC 4733 events, RTCP), so a stranger
//! spraying the port range can neither hear a call nor press its keys (RFC 3550
//! section 8.2 and RFC 7201 section 3 leave that check to the receiver). The first
//! trusted packet latches; after that a new port of a trusted host takes over only
//! when it sends several packets in a row of one SSRC, so a stray packet cannot
//! steal the stream, while a peer whose NAT mapping changed is followed.

use std::net::{IpAddr, SocketAddr};

/// Packets in a row from a new address before the stream moves to it.
pub const RELATCH_AFTER: u8 = 5;

/// What the latch decided about a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatchVerdict {
    /// From the latched address (or the one that just latched): take it.
    Accept,
    /// From a trusted host's other port, not (yet) followed: drop it.
    Ignore,
    /// From a host that is neither the SDP's nor the signalling peer's: drop it.
    Refuse,
}

/// The remote address of one leg, and who may move it.
#[derive(Debug, Clone)]
pub struct Latch {
    remote: Option<SocketAddr>,
    latched: bool,
    sdp_ip: Option<IpAddr>,
    peer_ip: Option<IpAddr>,
    candidate: Option<(SocketAddr, u32, u8)>,
    refused: u64,
}

impl Latch {
    /// Starts out sending to the address the SDP named (when known), trusting media
    /// from that address's host and from `peer_ip`, the host the call's signalling
    /// comes from. With neither, any host is trusted (legs the engine wires itself).
    pub fn new(signalled: Option<SocketAddr>, peer_ip: Option<IpAddr>) -> Self {
        Self {
            remote: signalled,
            latched: false,
            sdp_ip: signalled.map(|a| a.ip()).filter(|ip| !ip.is_unspecified()),
            peer_ip,
            candidate: None,
            refused: 0,
        }
    }

    /// Where to send now; `None` until the SDP or a trusted packet says.
    pub fn remote(&self) -> Option<SocketAddr> {
        self.remote
    }

    /// Whether a packet has been received yet.
    pub fn is_latched(&self) -> bool {
        self.latched
    }

    /// Packets refused because their host is not trusted.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Whether media from `ip` may be taken at all.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        match (self.sdp_ip, self.peer_ip) {
            (None, None) => true,
            (sdp, peer) => Some(ip) == sdp || Some(ip) == peer,
        }
    }

    /// The SDP changed (a re-INVITE): send there until packets say otherwise. The
    /// signalling peer stays trusted.
    pub fn resignal(&mut self, signalled: SocketAddr) {
        *self = Self {
            refused: self.refused,
            ..Self::new(Some(signalled), self.peer_ip)
        };
    }

    /// Judges a packet from `from` with this SSRC.
    pub fn observe(&mut self, from: SocketAddr, ssrc: u32) -> LatchVerdict {
        if !self.trusts(from.ip()) {
            self.refused += 1;
            return LatchVerdict::Refuse;
        }
        if from.port() == 0 {
            // Port 0 cannot be answered (SIPp's pcap replay sends from it): take the
            // media, keep sending where we do.
            return LatchVerdict::Accept;
        }
        if !self.latched {
            self.remote = Some(from);
            self.latched = true;
            return LatchVerdict::Accept;
        }
        if Some(from) == self.remote {
            self.candidate = None;
            return LatchVerdict::Accept;
        }
        let count = match self.candidate {
            Some((addr, s, n)) if addr == from && s == ssrc => n + 1,
            _ => 1,
        };
        if count >= RELATCH_AFTER {
            self.remote = Some(from);
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

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("test address"))
    }

    #[test]
    fn packets_from_port_zero_are_taken_but_never_latched_onto() {
        let mut l = Latch::new(Some(addr("127.0.0.1:4000")), None);
        for _ in 0..10 {
            assert_eq!(l.observe(addr("127.0.0.1:0"), 7), LatchVerdict::Accept);
        }
        assert_eq!(l.remote(), Some(addr("127.0.0.1:4000")));
        assert!(!l.is_latched());
    }

    #[test]
    fn the_first_packet_from_the_signalling_peer_latches_over_a_private_sdp_address() {
        // A NAT'd phone: its SDP names 10.0.0.5, its SIP and RTP come from 203.0.113.9.
        let mut l = Latch::new(Some(addr("10.0.0.5:4000")), ip("203.0.113.9"));
        assert_eq!(
            l.observe(addr("203.0.113.9:61000"), 1),
            LatchVerdict::Accept
        );
        assert_eq!(l.remote(), Some(addr("203.0.113.9:61000")));
    }

    #[test]
    fn a_stranger_never_latches_however_many_packets_it_sends() {
        let mut l = Latch::new(Some(addr("192.0.2.10:4000")), ip("192.0.2.1"));
        for _ in 0..100 {
            assert_eq!(
                l.observe(addr("198.51.100.66:4000"), 666),
                LatchVerdict::Refuse
            );
        }
        assert_eq!(l.refused(), 100);
        assert!(!l.is_latched());
        assert_eq!(l.remote(), Some(addr("192.0.2.10:4000")));
        // Nor after the real peer latched.
        assert_eq!(l.observe(addr("192.0.2.10:4000"), 1), LatchVerdict::Accept);
        for _ in 0..100 {
            assert_eq!(
                l.observe(addr("198.51.100.66:4002"), 1),
                LatchVerdict::Refuse
            );
        }
        assert_eq!(l.remote(), Some(addr("192.0.2.10:4000")));
    }

    #[test]
    fn a_stray_packet_does_not_steal_the_stream_but_a_moved_peer_is_followed() {
        let mut l = Latch::new(Some(addr("10.0.0.5:4000")), ip("203.0.113.9"));
        l.observe(addr("203.0.113.9:61000"), 1);
        assert_eq!(
            l.observe(addr("203.0.113.9:5000"), 666),
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
        assert_eq!(l.remote(), Some(moved));
    }

    #[test]
    fn a_reinvite_moves_the_sdp_host_and_keeps_the_signalling_peer() {
        let mut l = Latch::new(Some(addr("192.0.2.10:4000")), ip("192.0.2.1"));
        l.resignal(addr("192.0.2.20:5000"));
        assert!(l.trusts("192.0.2.20".parse().expect("ip")));
        assert!(l.trusts("192.0.2.1".parse().expect("ip")));
        assert!(!l.trusts("192.0.2.10".parse().expect("ip")));
        assert_eq!(l.remote(), Some(addr("192.0.2.20:5000")));
    }

    #[test]
    fn without_any_signalled_host_every_host_is_trusted() {
        let mut l = Latch::new(None, None);
        assert_eq!(l.remote(), None);
        assert_eq!(l.observe(addr("192.0.2.7:9000"), 1), LatchVerdict::Accept);
        assert_eq!(l.remote(), Some(addr("192.0.2.7:9000")));
    }
}
