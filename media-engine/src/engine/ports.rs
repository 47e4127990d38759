//! The RTP port range (`--rtp-ports`): each leg takes an even port for RTP and the odd
//! one above it for RTCP (RFC 3550 section 11). Ports another program holds are
//! skipped; a closed leg's ports go to the back of the queue, so a late packet from an
//! old call rarely reaches a new one. The lock is taken when a leg opens or closes,
//! never per packet.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::ops::RangeInclusive;
use std::sync::Mutex;

/// The pair of sockets a leg owns.
#[derive(Debug)]
pub struct PortPair {
    /// RTP, on the even port.
    pub rtp: UdpSocket,
    /// RTCP, on the port above.
    pub rtcp: UdpSocket,
    /// Where the RTP socket is bound (known from the bind: no system call to ask).
    pub rtp_addr: SocketAddr,
}

/// The free even ports of the range.
#[derive(Debug)]
pub struct PortPool {
    ip: IpAddr,
    free: Mutex<VecDeque<u16>>,
}

impl PortPool {
    /// Every even port in `range` whose odd neighbour is in it too, on `ip`.
    pub fn new(ip: IpAddr, range: RangeInclusive<u16>) -> Self {
        let (lo, hi) = (*range.start(), *range.end());
        let first = lo + lo % 2;
        let free = (first..hi).step_by(2).collect();
        Self {
            ip,
            free: Mutex::new(free),
        }
    }

    /// Ports still free.
    pub fn available(&self) -> usize {
        self.free.lock().map_or(0, |f| f.len())
    }

    /// Binds the next free pair, non-blocking, with room for bursts.
    pub fn open(&self) -> io::Result<PortPair> {
        let mut free = self
            .free
            .lock()
            .map_err(|_| io::Error::other("the port pool's lock was poisoned"))?;
        for _ in 0..free.len() {
            let Some(port) = free.pop_front() else { break };
            match (
                bind(self.ip, port, Some(RTP_RECV_BUFFER)),
                bind(self.ip, port + 1, None),
            ) {
                (Ok(rtp), Ok(rtcp)) => {
                    return Ok(PortPair {
                        rtp,
                        rtcp,
                        rtp_addr: SocketAddr::new(self.ip, port),
                    });
                }
                // Held by someone else: try it again later, after the others.
                _ => free.push_back(port),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "no free RTP port pair left in the --rtp-ports range",
        ))
    }

    /// Gives a closed leg's RTP port back.
    pub fn release(&self, rtp_port: u16) {
        if let Ok(mut free) = self.free.lock() {
            free.push_back(rtp_port);
        }
    }
}

/// The receive buffer an RTP socket asks for, for bursts; RTCP, a packet every few
/// seconds, keeps the kernel's default.
const RTP_RECV_BUFFER: usize = 256 * 1024;

/// A non-blocking UDP socket on `ip:port` (made non-blocking by `socket(2)` itself),
/// with `recv_buffer` bytes of receive buffer when given.
fn bind(ip: IpAddr, port: u16, recv_buffer: Option<usize>) -> io::Result<UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(SocketAddr::new(ip, port)),
        socket2::Type::DGRAM.nonblocking(),
        Some(socket2::Protocol::UDP),
    )?;
    // Best effort: the kernel caps it at its rmem maximum, and a smaller buffer
    // still carries a call (with less room for a burst).
    if let Some(size) = recv_buffer
        && let Err(e) = socket.set_recv_buffer_size(size)
    {
        tracing::debug!(error = %e, port, "an RTP socket keeps its default buffer");
    }
    socket.bind(&SocketAddr::new(ip, port).into())?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn pairs_are_even_and_odd_and_busy_ports_are_skipped() {
        let busy = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("binds");
        let busy_port = busy.local_addr().expect("addr").port();
        let start = busy_port - busy_port % 2;
        let pool = PortPool::new(IpAddr::V4(Ipv4Addr::LOCALHOST), start..=start + 3);
        assert_eq!(pool.available(), 2);
        let pair = pool.open().expect("the second pair is free");
        let rtp_port = pair.rtp.local_addr().expect("addr").port();
        assert_eq!(pair.rtp_addr, pair.rtp.local_addr().expect("addr"));
        assert_eq!(rtp_port, start + 2);
        assert_eq!(pair.rtcp.local_addr().expect("addr").port(), start + 3);
        for socket in [&pair.rtp, &pair.rtcp] {
            let nonblocking = socket2::SockRef::from(socket).nonblocking();
            assert!(nonblocking.expect("reads the flag"), "the worker polls it");
        }
        let err = pool.open().expect_err("only the busy pair is left");
        assert!(err.to_string().contains("--rtp-ports"), "{err}");
        drop(pair);
        pool.release(rtp_port);
        assert!(pool.open().is_ok());
    }
}
