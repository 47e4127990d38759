//! The tokio driver beside the sans-IO transaction layer: it owns the socket and the
//! timer, and nothing else. Each loop turn handles one input (a datagram, a timer, a
//! shutdown), then hands the layer's events to the [`Handler`] and puts its
//! transmits on the wire.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::watch;

use crate::msg::{Message, parse_datagram};
use crate::transaction::{SendError, TransactionLayer, Transport, TxEvent, TxId};

/// What the handler may do while handling an event: answer, send, or send outside
/// any transaction.
pub struct Outbox<'a> {
    layer: &'a mut TransactionLayer,
    now: Instant,
}

impl Outbox<'_> {
    /// The time of the event being handled.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Sends a response on a server transaction.
    pub fn respond(&mut self, tx: TxId, response: Bytes) -> Result<(), SendError> {
        self.layer.send_response(self.now, tx, response)
    }

    /// Starts a client transaction.
    pub fn request(&mut self, request: Message, to: SocketAddr) -> Result<TxId, SendError> {
        self.layer
            .send_request(self.now, request, to, Transport::Udp)
    }

    /// Sends bytes outside any transaction (an ACK for a 2xx).
    pub fn stateless(&mut self, to: SocketAddr, bytes: Bytes) {
        self.layer.send_stateless(to, Transport::Udp, bytes);
    }
}

/// The transaction user: gets every event, and may keep timers of its own.
pub trait Handler {
    /// Handles one event.
    fn on_event(&mut self, event: TxEvent, out: &mut Outbox<'_>);

    /// When [`Handler::on_timeout`] wants to run next.
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// Runs the handler's due timers.
    fn on_timeout(&mut self, _out: &mut Outbox<'_>) {}
}

/// Counters of what the driver saw, for logs and metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Datagrams received.
    pub received: u64,
    /// Datagrams that did not parse (dropped).
    pub malformed: u64,
    /// Datagrams sent.
    pub sent: u64,
}

/// Runs a UDP endpoint until `shutdown` turns true; returns what it counted.
pub async fn run_udp(
    socket: UdpSocket,
    mut layer: TransactionLayer,
    handler: &mut impl Handler,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<Stats> {
    let mut buf = vec![0u8; 65_536];
    let mut stats = Stats::default();
    loop {
        let wake = [layer.poll_timeout(), handler.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                let (n, source) = match received {
                    Ok(r) => r,
                    // ICMP port unreachable from an earlier send shows up here on
                    // Linux; it is not fatal for the socket.
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
                    Err(e) => return Err(e),
                };
                stats.received += 1;
                let now = Instant::now();
                match parse_datagram(Bytes::copy_from_slice(&buf[..n])) {
                    Ok(msg) => layer.receive(now, msg, source, Transport::Udp),
                    Err(e) => {
                        stats.malformed += 1;
                        tracing::debug!(%source, error = %e, "dropped a malformed datagram");
                    }
                }
            }
            () = sleep => {}
            _ = shutdown.changed() => return Ok(stats),
        }
        let now = Instant::now();
        layer.handle_timeout(now);
        {
            let mut out = Outbox {
                layer: &mut layer,
                now,
            };
            if handler.poll_timeout().is_some_and(|t| t <= now) {
                handler.on_timeout(&mut out);
            }
        }
        while let Some(event) = layer.poll_event() {
            handler.on_event(
                event,
                &mut Outbox {
                    layer: &mut layer,
                    now,
                },
            );
        }
        while let Some(t) = layer.poll_transmit() {
            if let Err(e) = socket.send_to(&t.bytes, t.to).await {
                tracing::debug!(to = %t.to, error = %e, "send failed");
            } else {
                stats.sent += 1;
            }
        }
    }
}
