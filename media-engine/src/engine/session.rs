//! One leg's media state as its worker holds it: the sockets, the latch, the sending
//! and receiving halves of the RTP stream, RTCP, and the leg it is bridged to.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;

use super::SessionId;
use super::media::LegMedia;
use super::relay::Formats;
use crate::rtp::{Latch, ReceiveStats, RtcpSession, RtpSender};

/// A snapshot of a leg's statistics, for the call's record and events.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SessionStats {
    /// RTP packets accepted from the peer.
    pub packets_received: u64,
    /// RTP packets sent to the peer.
    pub packets_sent: u64,
    /// Packets dropped: not RTP, from an address that is not the peer's, or with no
    /// peer address to send to yet.
    pub packets_dropped: u64,
    /// Packets refused because they came from a host that is neither the SDP's nor
    /// the signalling peer's (counted in `packets_dropped` too).
    pub packets_refused: u64,
    /// Packets of the peer's stream lost on the way (RFC 3550 A.3).
    pub lost: i64,
    /// Interarrival jitter of the peer's stream, in ms (RFC 3550 A.8).
    pub jitter_ms: f64,
    /// Round trip time from RTCP, in ms, once measured.
    pub rtt_ms: Option<f64>,
    /// The fraction of our packets the peer reported lost, of 256.
    pub remote_fraction_lost: u8,
}

/// A leg in its worker.
#[derive(Debug)]
pub(crate) struct Session {
    pub id: SessionId,
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
    pub local_rtp_port: u16,
    /// The sockets are in this worker's poll: a parked pair it took back (it
    /// re-points them at the leg's slot instead of adding them), or once added.
    pub watched: bool,
    pub latch: Latch,
    pub rtcp_remote: Option<SocketAddr>,
    pub sender: RtpSender,
    pub received: ReceiveStats,
    pub rtcp_state: RtcpSession,
    pub remote_ssrc: Option<u32>,
    pub clock_rate: u32,
    pub samples_per_packet: u32,
    pub bridged_to: Option<usize>,
    pub created: Instant,
    /// Since when RTP is expected from the peer; `None` while it is not (a hold
    /// with `a=inactive` or `a=recvonly` from the peer), so the timeout waits.
    pub rtp_expected_since: Option<Instant>,
    pub rtp_timeout: Duration,
    pub timed_out: bool,
    pub packets_received: u64,
    pub packets_sent: u64,
    pub packets_dropped: u64,
    /// Audio: decoding, sources, DTMF, recording.
    pub media: Box<LegMedia>,
    /// `media`'s payload types and codec, here beside the stream's state so that
    /// relaying a packet need not reach into `media` for them.
    pub formats: Formats,
    /// RTCP shares the RTP port (RFC 5761).
    pub rtcp_mux: bool,
}

impl Session {
    /// Where RTCP goes: where the peer's RTCP comes from, else its RTP address with
    /// rtcp-mux (RFC 5761), else the port above its RTP.
    pub fn rtcp_destination(&self) -> Option<SocketAddr> {
        if self.rtcp_mux {
            return self.latch.remote();
        }
        self.rtcp_remote.or_else(|| {
            let rtp = self.latch.remote()?;
            Some(SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1)))
        })
    }

    /// The statistics now.
    pub fn stats(&self) -> SessionStats {
        let view = self.rtcp_state.remote_view();
        SessionStats {
            packets_received: self.packets_received,
            packets_sent: self.packets_sent,
            packets_dropped: self.packets_dropped,
            packets_refused: self.latch.refused(),
            lost: self.received.cumulative_lost().max(0),
            jitter_ms: self.received.jitter_ms(),
            rtt_ms: view.rtt_ms,
            remote_fraction_lost: view.fraction_lost,
        }
    }

    /// Whether no RTP has come for longer than the timeout (since the last packet, or
    /// since RTP was expected: the leg opened, or the peer came off hold).
    pub fn is_inactive(&self, now: Instant) -> bool {
        let Some(since) = self.rtp_expected_since else {
            return false;
        };
        let last = self
            .received
            .last_arrival()
            .map_or(since, |arrival| arrival.max(since));
        now.saturating_duration_since(last) > self.rtp_timeout
    }
}
