//! The RTP port range (`--rtp-ports`): each leg takes an even port for RTP and the odd
//! one above it for RTCP (RFC 3550 section 11). Ports another program holds are
//! skipped; a closed leg's ports go to the back of the queue, so a late packet from an
//! old call rarely reaches a new one. The lock is taken when a leg opens or closes,
//! never per packet.
//!
//! A closed leg's sockets are parked, still bound and still in the poll of the
//! worker that closed them, rather than closed: a later leg on that worker takes
//! them once they have rested [`PARK_REST`], after reading out whatever arrived
//! meanwhile, and the worker only re-points them at the new leg's slot (one
//! `EPOLL_CTL_MOD` a socket). Opening and closing a leg then costs four system calls
//! (the two reads that find the sockets empty, the two re-pointings) where sockets
//! bound afresh cost eleven (socket, buffer size, bind, epoll add, epoll delete and
//! close), and none of the kernel's socket set-up and RCU-deferred teardown; at
//! most [`PARK_MAX`] pairs wait, the rest are closed. A packet reaching a parked
//! socket wakes its worker for nothing (it reads whichever leg holds the old slot
//! now, which loses nothing): peers stop sending at BYE.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;

/// How long a closed leg's sockets rest before another leg takes them: a peer that
/// keeps sending after its BYE has stopped by then.
pub const PARK_REST: Duration = Duration::from_secs(1);

/// The most parked pairs kept open (two descriptors each); at most half the range.
pub const PARK_MAX: usize = 2048;

/// The pair of sockets a leg owns.
#[derive(Debug)]
pub struct PortPair {
    /// RTP, on the even port.
    pub rtp: UdpSocket,
    /// RTCP, on the port above.
    pub rtcp: UdpSocket,
    /// Where the RTP socket is bound (known from the bind: no system call to ask).
    pub rtp_addr: SocketAddr,
    /// Both sockets are still in the poll of the worker the pair was asked for (it
    /// parked them there): that worker re-points them instead of adding them.
    pub watched: bool,
}

/// The free even ports of the range, and closed legs' sockets waiting to be reused.
#[derive(Debug)]
pub struct PortPool {
    ip: IpAddr,
    park_max: usize,
    free: Mutex<Free>,
}

#[derive(Debug)]
struct Free {
    /// Even ports nobody holds a socket on, oldest released first.
    ports: VecDeque<u16>,
    /// Closed legs' sockets by the worker whose poll still holds them, and when
    /// they were parked, oldest first.
    parked: Vec<VecDeque<Parked>>,
    /// How many pairs wait, over every worker.
    parked_count: usize,
}

/// A parked pair: its sockets, its RTP port, and since when.
#[derive(Debug)]
struct Parked {
    since: Instant,
    rtp: UdpSocket,
    rtcp: UdpSocket,
    rtp_port: u16,
}

impl PortPool {
    /// Every even port in `range` whose odd neighbour is in it too, on `ip`, for
    /// `workers` media workers.
    pub fn new(ip: IpAddr, range: RangeInclusive<u16>, workers: usize) -> Self {
        let (lo, hi) = (*range.start(), *range.end());
        let first = lo + lo % 2;
        let ports: VecDeque<u16> = (first..hi).step_by(2).collect();
        Self {
            ip,
            park_max: PARK_MAX.min(ports.len() / 2),
            free: Mutex::new(Free {
                ports,
                parked: (0..workers.max(1)).map(|_| VecDeque::new()).collect(),
                parked_count: 0,
            }),
        }
    }

    /// Pairs a leg can still take (free ports and parked sockets).
    pub fn available(&self) -> usize {
        self.free
            .lock()
            .map_or(0, |f| f.ports.len() + f.parked_count)
    }

    /// A pair for a new leg on `worker`: one that worker parked and that has
    /// rested, else the next free ports bound afresh (non-blocking, with room for
    /// bursts), else any parked one (another worker's is closed and bound again, to
    /// leave that worker's poll).
    pub fn open(&self, worker: usize) -> io::Result<PortPair> {
        self.open_at(worker, Instant::now())
    }

    fn open_at(&self, worker: usize, now: Instant) -> io::Result<PortPair> {
        let mut free = self
            .free
            .lock()
            .map_err(|_| io::Error::other("the port pool's lock was poisoned"))?;
        let free = &mut *free;
        let own = worker % free.parked.len();
        let rested = free.parked[own]
            .front()
            .is_some_and(|p| now.saturating_duration_since(p.since) >= PARK_REST);
        let taken = if rested {
            free.parked[own].pop_front().map(|p| (p, true))
        } else if let Some(pair) = self.bind_free(&mut free.ports) {
            return Ok(pair);
        } else {
            // Every free port is held elsewhere (or no descriptor is left): a pair
            // that has not rested yet still beats failing the call.
            free.parked[own].pop_front().map(|p| (p, true)).or_else(|| {
                let other = free.parked.iter_mut().find(|q| !q.is_empty())?;
                other.pop_front().map(|p| (p, false))
            })
        };
        let Some((parked, same_worker)) = taken else {
            return Err(exhausted());
        };
        free.parked_count -= 1;
        let port = parked.rtp_port;
        if !same_worker {
            // Closing takes the sockets out of the other worker's poll; the ports
            // are bound again at once.
            drop((parked.rtp, parked.rtcp));
            free.ports.push_front(port);
            return self.bind_free(&mut free.ports).ok_or_else(exhausted);
        }
        drain(&parked.rtp);
        drain(&parked.rtcp);
        Ok(PortPair {
            rtp: parked.rtp,
            rtcp: parked.rtcp,
            rtp_addr: SocketAddr::new(self.ip, port),
            watched: true,
        })
    }

    /// Binds the first free pair that nobody else holds.
    fn bind_free(&self, ports: &mut VecDeque<u16>) -> Option<PortPair> {
        for _ in 0..ports.len() {
            let port = ports.pop_front()?;
            match (
                bind(self.ip, port, Some(RTP_RECV_BUFFER)),
                bind(self.ip, port + 1, None),
            ) {
                (Ok(rtp), Ok(rtcp)) => {
                    return Some(PortPair {
                        rtp: UdpSocket::from_std(rtp),
                        rtcp: UdpSocket::from_std(rtcp),
                        rtp_addr: SocketAddr::new(self.ip, port),
                        watched: false,
                    });
                }
                // Held by someone else: try it again later, after the others.
                _ => ports.push_back(port),
            }
        }
        None
    }

    /// Takes back a closed leg's sockets, still in `worker`'s poll, for a later leg
    /// on that worker; with `PARK_MAX` pairs parked already they are closed and their
    /// port freed.
    pub fn park(&self, worker: usize, rtp: UdpSocket, rtcp: UdpSocket, rtp_port: u16) {
        self.park_at(worker, rtp, rtcp, rtp_port, Instant::now());
    }

    fn park_at(&self, worker: usize, rtp: UdpSocket, rtcp: UdpSocket, rtp_port: u16, now: Instant) {
        let Ok(mut free) = self.free.lock() else {
            return;
        };
        if free.parked_count < self.park_max {
            let own = worker % free.parked.len();
            free.parked[own].push_back(Parked {
                since: now,
                rtp,
                rtcp,
                rtp_port,
            });
            free.parked_count += 1;
        } else {
            // Closed (which takes them out of the poll) before the port is offered
            // again.
            drop((rtp, rtcp));
            free.ports.push_back(rtp_port);
        }
    }

    /// Gives back the port of a leg whose sockets are closed already.
    pub fn release(&self, rtp_port: u16) {
        if let Ok(mut free) = self.free.lock() {
            free.ports.push_back(rtp_port);
        }
    }
}

/// Every pair of the range is in use (or held by another program).
fn exhausted() -> io::Error {
    io::Error::new(
        io::ErrorKind::AddrInUse,
        "no free RTP port pair left in the --rtp-ports range",
    )
}

/// Reads out what reached a parked socket, so the new leg starts empty (bounded: a
/// socket holds at most its receive buffer).
fn drain(socket: &UdpSocket) {
    let mut buf = [0u8; 2048];
    for _ in 0..4096 {
        if socket.recv_from(&mut buf).is_err() {
            // WouldBlock: empty. Any other error the leg's own reads will meet.
            return;
        }
    }
}

/// The receive buffer an RTP socket asks for, for bursts; RTCP, a packet every few
/// seconds, keeps the kernel's default.
const RTP_RECV_BUFFER: usize = 256 * 1024;

/// A non-blocking UDP socket on `ip:port` (made non-blocking by `socket(2)` itself),
/// with `recv_buffer` bytes of receive buffer when given.
fn bind(ip: IpAddr, port: u16, recv_buffer: Option<usize>) -> io::Result<std::net::UdpSocket> {
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

    const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    /// An even port whose pair (and the pair above it) nobody holds right now.
    fn free_range(pairs: u16) -> RangeInclusive<u16> {
        let probe = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("binds");
        let port = probe.local_addr().expect("addr").port();
        let start = (port - port % 2).saturating_sub(pairs * 2 + 2);
        start..=start + pairs * 2 - 1
    }

    #[test]
    fn pairs_are_even_and_odd_and_busy_ports_are_skipped() {
        let busy = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("binds");
        let busy_port = busy.local_addr().expect("addr").port();
        let start = busy_port - busy_port % 2;
        let pool = PortPool::new(LOCALHOST, start..=start + 3, 1);
        assert_eq!(pool.available(), 2);
        let pair = pool.open(0).expect("the second pair is free");
        let rtp_port = pair.rtp.local_addr().expect("addr").port();
        assert_eq!(pair.rtp_addr, pair.rtp.local_addr().expect("addr"));
        assert_eq!(rtp_port, start + 2);
        assert_eq!(pair.rtcp.local_addr().expect("addr").port(), start + 3);
        for socket in [&pair.rtp, &pair.rtcp] {
            let nonblocking = socket2::SockRef::from(socket).nonblocking();
            assert!(nonblocking.expect("reads the flag"), "the worker polls it");
        }
        let err = pool.open(0).expect_err("only the busy pair is left");
        assert!(err.to_string().contains("--rtp-ports"), "{err}");
        drop(pair);
        pool.release(rtp_port);
        assert!(pool.open(0).is_ok());
    }

    #[test]
    fn a_parked_pair_is_reused_once_rested_and_empty() {
        let pool = PortPool::new(LOCALHOST, free_range(4), 1);
        let t0 = Instant::now();
        let pair = pool.open_at(0, t0).expect("opens");
        let addr = pair.rtp_addr;
        pool.park_at(0, pair.rtp, pair.rtcp, addr.port(), t0);
        // A late packet from the old call's peer lands while it is parked.
        let peer = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("binds");
        peer.send_to(b"late", addr).expect("sends");
        std::thread::sleep(Duration::from_millis(20));

        let fresh = pool.open_at(0, t0 + PARK_REST / 2).expect("opens");
        assert_ne!(fresh.rtp_addr, addr, "a pair that has not rested waits");
        let reused = pool.open_at(0, t0 + PARK_REST).expect("opens");
        assert_eq!(reused.rtp_addr, addr, "a rested pair is taken first");
        let mut buf = [0u8; 64];
        let err = reused.rtp.recv_from(&mut buf).expect_err("drained");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn with_no_free_port_left_a_pair_that_has_not_rested_is_taken() {
        let pool = PortPool::new(LOCALHOST, free_range(2), 1);
        let t0 = Instant::now();
        let a = pool.open_at(0, t0).expect("opens");
        let b = pool.open_at(0, t0).expect("opens");
        let port = a.rtp_addr.port();
        pool.park_at(0, a.rtp, a.rtcp, port, t0);
        let again = pool.open_at(0, t0).expect("the parked pair, rested or not");
        assert_eq!(again.rtp_addr.port(), port);
        assert!(pool.open_at(0, t0).is_err(), "both pairs are in use");
        drop(b);
    }

    #[test]
    fn beyond_the_parking_limit_sockets_close_and_their_port_is_freed() {
        // Two pairs: at most one parks.
        let pool = PortPool::new(LOCALHOST, free_range(2), 1);
        let t0 = Instant::now();
        let a = pool.open_at(0, t0).expect("opens");
        let b = pool.open_at(0, t0).expect("opens");
        let (pa, pb) = (a.rtp_addr.port(), b.rtp_addr.port());
        pool.park_at(0, a.rtp, a.rtcp, pa, t0);
        pool.park_at(0, b.rtp, b.rtcp, pb, t0);
        assert_eq!(pool.available(), 2);
        // The second was closed: its port binds afresh while the first still rests.
        let fresh = pool.open_at(0, t0).expect("opens");
        assert_eq!(fresh.rtp_addr.port(), pb);
    }

    #[test]
    fn a_pair_goes_back_to_the_worker_that_parked_it_and_leaves_it_for_another() {
        // Two pairs (so one may park), the second held throughout.
        let pool = PortPool::new(LOCALHOST, free_range(2), 2);
        let t0 = Instant::now();
        let a = pool.open_at(0, t0).expect("opens");
        let held = pool.open_at(0, t0).expect("opens");
        assert!(!a.watched, "bound afresh: no poll holds it yet");
        let port = a.rtp_addr.port();
        pool.park_at(0, a.rtp, a.rtcp, port, t0);
        let again = pool
            .open_at(0, t0 + PARK_REST)
            .expect("worker 0's own pair");
        assert!(again.watched, "still in worker 0's poll");
        assert_eq!(again.rtp_addr.port(), port);
        pool.park_at(0, again.rtp, again.rtcp, port, t0);
        // No port is free and the one parked pair is worker 0's: worker 1 gets its
        // ports, bound again.
        let other = pool.open_at(1, t0 + PARK_REST).expect("the same ports");
        assert!(
            !other.watched,
            "closed and bound again, out of worker 0's poll"
        );
        assert_eq!(other.rtp_addr.port(), port);
        assert_eq!(other.rtp.local_addr().expect("addr").port(), port);
        assert!(
            pool.open_at(0, t0 + PARK_REST).is_err(),
            "both pairs are in use"
        );
        drop(held);
    }
}
