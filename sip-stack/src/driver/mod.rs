//! The tokio driver beside the sans-IO transaction layer: it owns the socket and the
//! timer, and nothing else. Each loop turn handles one input (a datagram, a timer, a
//! shutdown), then hands the layer's events to the [`Handler`] and puts its
//! transmits on the wire.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};

mod tcp;
mod tls;
use tcp::{ConnEvent, Link};
pub use tls::{HANDSHAKE_TIMEOUT, Tls};

use crate::msg::{Message, ParseError, parse_datagram};
use crate::transaction::{SendError, TransactionLayer, Transmit, Transport, TxEvent, TxId};

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
    /// TCP and TLS connections accepted or made.
    pub connections: u64,
}

/// The sockets the driver serves: UDP always, a TCP listener and TLS when given.
#[derive(Debug)]
pub struct Sockets {
    /// The UDP socket.
    pub udp: UdpSocket,
    /// The TCP listener (usually on the UDP socket's port).
    pub tcp: Option<TcpListener>,
    /// TLS: connections out, and a listener when there is one.
    pub tls: Option<Tls>,
}

impl Sockets {
    /// UDP only.
    pub fn udp(udp: UdpSocket) -> Self {
        Self {
            udp,
            tcp: None,
            tls: None,
        }
    }

    /// Also a TCP listener.
    pub fn with_tcp(mut self, listener: TcpListener) -> Self {
        self.tcp = Some(listener);
        self
    }

    /// Also TLS.
    pub fn with_tls(mut self, tls: Tls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Moves the sockets off their runtime, to register them on another one
    /// (tokio sockets belong to the runtime that registered them).
    pub(crate) fn into_std(self) -> std::io::Result<StdSockets> {
        Ok(StdSockets {
            udp: self.udp.into_std()?,
            tcp: self.tcp.map(TcpListener::into_std).transpose()?,
            tls: self.tls.map(Tls::into_std).transpose()?,
        })
    }
}

/// [`Sockets`] as std sockets (still non-blocking), between runtimes.
pub(crate) struct StdSockets {
    udp: std::net::UdpSocket,
    tcp: Option<std::net::TcpListener>,
    tls: Option<tls::StdTls>,
}

impl StdSockets {
    /// Registers the sockets on the current runtime.
    pub(crate) fn register(self) -> std::io::Result<Sockets> {
        Ok(Sockets {
            udp: UdpSocket::from_std(self.udp)?,
            tcp: self.tcp.map(TcpListener::from_std).transpose()?,
            tls: self.tls.map(tls::StdTls::register).transpose()?,
        })
    }
}

/// The most TCP connections open at once; more are refused.
pub const MAX_CONNECTIONS: usize = 10_000;

/// The most TCP connections accepted from one address at once; more are refused.
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 256;

/// The socket buffer size asked for: bursts at thousands of calls per second must
/// wait in the kernel, not be dropped (the kernel caps it at `net.core.rmem_max`).
pub const SOCKET_BUFFER: usize = 4 * 1024 * 1024;

/// Binds a UDP socket for SIP with large kernel buffers.
pub fn bind_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let domain = if addr.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    // Best effort: a smaller buffer still works, only with less room for bursts.
    for (which, set) in [
        ("receive", socket.set_recv_buffer_size(SOCKET_BUFFER)),
        ("send", socket.set_send_buffer_size(SOCKET_BUFFER)),
    ] {
        if let Err(e) = set {
            tracing::warn!(error = %e, "the SIP socket keeps its default {which} buffer");
        }
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// A sans-IO endpoint the driver runs: it takes messages and time, gives bytes to
/// send and its next timeout, may take commands of its own kind from a channel, and
/// hands its events out in [`Endpoint::flush`] after every turn.
pub trait Endpoint {
    /// What its users send it through the driver's command channel.
    type Command: Send + 'static;
    /// Takes a parsed message.
    fn receive(&mut self, now: Instant, msg: Message, source: SocketAddr, transport: Transport);
    /// Takes a datagram that did not parse (to answer it when it can be).
    fn receive_malformed(&mut self, raw: &[u8], err: &ParseError, source: SocketAddr);
    /// Runs what is due at `now`.
    fn handle_timeout(&mut self, now: Instant);
    /// The next bytes to send.
    fn poll_transmit(&mut self) -> Option<Transmit>;
    /// When [`Endpoint::handle_timeout`] must run next.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Runs one command.
    fn command(&mut self, now: Instant, command: Self::Command);
    /// Hands out what happened during the turn.
    fn flush(&mut self, now: Instant);
    /// A connection to `peer` could not be opened (refused, or its TLS handshake
    /// failed): the requests that were waiting for it fail now (RFC 3261 section
    /// 17.1.4), not at their timers.
    fn transport_failed(&mut self, _now: Instant, _peer: SocketAddr, _transport: Transport) {}
    /// The name a TLS server at `to` must prove in its certificate, when known.
    fn tls_name(&self, _to: SocketAddr) -> Option<String> {
        None
    }
}

/// The transaction layer with a [`Handler`] as its user.
struct Layered<'h, H> {
    layer: TransactionLayer,
    handler: &'h mut H,
}

impl<H: Handler> Endpoint for Layered<'_, H> {
    type Command = std::convert::Infallible;

    fn receive(&mut self, now: Instant, msg: Message, source: SocketAddr, transport: Transport) {
        self.layer.receive(now, msg, source, transport);
    }

    fn receive_malformed(&mut self, raw: &[u8], err: &ParseError, source: SocketAddr) {
        self.layer
            .refuse_unparsable(raw, err, source, Transport::Udp);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.layer.handle_timeout(now);
        if self.handler.poll_timeout().is_some_and(|t| t <= now) {
            self.handler.on_timeout(&mut Outbox {
                layer: &mut self.layer,
                now,
            });
        }
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.layer.poll_transmit()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        [self.layer.poll_timeout(), self.handler.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    fn command(&mut self, _now: Instant, command: Self::Command) {
        match command {}
    }

    fn transport_failed(&mut self, now: Instant, peer: SocketAddr, transport: Transport) {
        self.layer.transport_failed(now, peer, transport);
    }

    fn flush(&mut self, now: Instant) {
        while let Some(event) = self.layer.poll_event() {
            self.handler.on_event(
                event,
                &mut Outbox {
                    layer: &mut self.layer,
                    now,
                },
            );
        }
    }
}

/// Runs a UDP endpoint until `shutdown` turns true; returns what it counted.
pub async fn run_udp(
    socket: UdpSocket,
    layer: TransactionLayer,
    handler: &mut impl Handler,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<Stats> {
    run(Sockets::udp(socket), layer, handler, shutdown).await
}

/// Runs the transaction layer and its handler on `sockets` until `shutdown` turns
/// true; returns what it counted.
pub async fn run(
    sockets: Sockets,
    layer: TransactionLayer,
    handler: &mut impl Handler,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<Stats> {
    let mut endpoint = Layered { layer, handler };
    serve(sockets, &mut endpoint, None, shutdown).await
}

/// Runs any [`Endpoint`] on `sockets`, taking commands from `commands`, until
/// `shutdown` turns true.
pub async fn serve<E: Endpoint>(
    sockets: Sockets,
    endpoint: &mut E,
    mut commands: Option<mpsc::UnboundedReceiver<E::Command>>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<Stats> {
    let Sockets {
        udp: socket,
        tcp: listener,
        tls,
    } = sockets;
    let mut buf = vec![0u8; 65_536];
    let mut stats = Stats::default();
    let (conn_tx, mut conn_rx) = mpsc::channel::<ConnEvent>(1024);
    let mut links = Links::default();
    // One timer for the whole loop, moved only when the endpoint's next deadline
    // moves: a timer made afresh each turn cost a timer-wheel entry per datagram.
    let sleep = tokio::time::sleep_until(tokio::time::Instant::now());
    tokio::pin!(sleep);
    let mut armed_for: Option<Instant> = None;
    loop {
        let wake = endpoint.poll_timeout();
        if wake != armed_for {
            if let Some(at) = wake {
                sleep.as_mut().reset(at.into());
            }
            armed_for = wake;
        }
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                let (n, source) = match received {
                    Ok(r) => r,
                    // ICMP port unreachable from an earlier send shows up here on
                    // Linux; it is not fatal for the socket.
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
                    Err(e) => return Err(e),
                };
                let now = Instant::now();
                receive_one(endpoint, &mut stats, now, &buf[..n], source);
                // Drain what else is queued before handling events and sending, so a
                // burst costs one wake-up, not one per datagram.
                for _ in 0..64 {
                    match socket.try_recv_from(&mut buf) {
                        Ok((n, source)) => receive_one(endpoint, &mut stats, now, &buf[..n], source),
                        Err(_) => break,
                    }
                }
            }
            accepted = accept(listener.as_ref()) => {
                if let Ok((stream, peer)) = accepted {
                    let link = Link { transport: Transport::Tcp, peer };
                    if links.admit(link) {
                        stats.connections += 1;
                        nodelay(&stream);
                        tokio::spawn(tcp::serve(stream, link, None, conn_tx.clone()));
                    }
                }
            }
            accepted = accept_tls(tls.as_ref()) => {
                if let (Ok((stream, peer)), Some(tls)) = (accepted, tls.as_ref()) {
                    let link = Link { transport: Transport::Tls, peer };
                    if links.admit(link) {
                        stats.connections += 1;
                        nodelay(&stream);
                        tls.serve_accepted(stream, peer, conn_tx.clone());
                    }
                }
            }
            Some(event) = conn_rx.recv() => match event {
                ConnEvent::Opened(link, writer) => links.opened(link, writer),
                ConnEvent::Closed(link) => {
                    if links.closed(link) {
                        endpoint.transport_failed(Instant::now(), link.peer, link.transport);
                    }
                }
                ConnEvent::Message(link, msg) => {
                    stats.received += 1;
                    endpoint.receive(Instant::now(), msg, link.peer, link.transport);
                }
            },
            command = next_command(&mut commands) => match command {
                Some(c) => {
                    let now = Instant::now();
                    endpoint.command(now, c);
                    // Take what else is queued too, so the commands of a burst of
                    // calls cost one turn (and one round of sends), not one each.
                    if let Some(rx) = commands.as_mut() {
                        for _ in 0..COMMAND_BATCH {
                            match rx.try_recv() {
                                Ok(c) => endpoint.command(now, c),
                                Err(_) => break,
                            }
                        }
                    }
                }
                // Every handle is gone: no more commands, the endpoint goes on.
                None => commands = None,
            },
            () = &mut sleep, if armed_for.is_some() => {
                // Due: the next turn sets it again from the endpoint's deadline.
                armed_for = None;
            }
            _ = shutdown.changed() => return Ok(stats),
        }
        let now = Instant::now();
        endpoint.handle_timeout(now);
        endpoint.flush(now);
        while let Some(t) = endpoint.poll_transmit() {
            if t.transport.reliable() {
                let link = Link {
                    transport: t.transport,
                    peer: t.to,
                };
                let name = endpoint.tls_name(t.to);
                links.send(link, t.bytes, tls.as_ref(), name, &conn_tx, &mut stats);
                continue;
            }
            if let Err(e) = socket.send_to(&t.bytes, t.to).await {
                tracing::debug!(to = %t.to, error = %e, "send failed");
            } else {
                stats.sent += 1;
            }
        }
    }
}

/// How many more queued commands one turn takes after the one that woke it.
const COMMAND_BATCH: usize = 64;

/// The next command, or never when there is no channel.
async fn next_command<C>(commands: &mut Option<mpsc::UnboundedReceiver<C>>) -> Option<C> {
    match commands {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Parses and hands one datagram to the layer; a malformed one is counted and dropped.
fn receive_one(
    endpoint: &mut impl Endpoint,
    stats: &mut Stats,
    now: Instant,
    data: &[u8],
    source: SocketAddr,
) {
    stats.received += 1;
    match parse_datagram(Bytes::copy_from_slice(data)) {
        Ok(msg) => endpoint.receive(now, msg, source, Transport::Udp),
        Err(e) => {
            stats.malformed += 1;
            tracing::debug!(%source, error = %e, "malformed datagram");
            endpoint.receive_malformed(data, &e, source);
        }
    }
}

/// Accepts on the listener, or never when there is none.
async fn accept(
    listener: Option<&TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Accepts on the TLS listener, or never when there is none.
async fn accept_tls(tls: Option<&Tls>) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match tls {
        Some(t) => t.accept().await,
        None => std::future::pending().await,
    }
}

/// The open TCP and TLS connections, those being opened (with what waits for
/// them), and how many each address holds.
#[derive(Default)]
struct Links {
    open: HashMap<Link, mpsc::Sender<Bytes>>,
    /// Connections we are opening: the messages queued until it is up.
    opening: HashMap<Link, Vec<Bytes>>,
    /// Connections accepted, by peer address, for the per-address limit.
    per_ip: HashMap<std::net::IpAddr, usize>,
    accepted: std::collections::HashSet<Link>,
}

/// The most messages queued for a connection still being opened.
const OPENING_QUEUE: usize = 64;

impl Links {
    /// Whether an accepted connection may stay, counting it when it does.
    fn admit(&mut self, link: Link) -> bool {
        let from_ip = self.per_ip.get(&link.peer.ip()).copied().unwrap_or(0);
        if self.open.len() + self.opening.len() >= MAX_CONNECTIONS {
            tracing::warn!(peer = %link.peer, "refusing a connection: too many open");
            return false;
        }
        if from_ip >= MAX_CONNECTIONS_PER_ADDRESS {
            tracing::debug!(peer = %link.peer, "refusing a connection: too many from its address");
            return false;
        }
        self.per_ip.insert(link.peer.ip(), from_ip + 1);
        self.accepted.insert(link);
        true
    }

    /// A connection is up: what waited for it goes out first.
    fn opened(&mut self, link: Link, writer: mpsc::Sender<Bytes>) {
        for bytes in self.opening.remove(&link).unwrap_or_default() {
            if writer.try_send(bytes).is_err() {
                tracing::debug!(peer = %link.peer, "a queued message was dropped: the connection's queue is full");
            }
        }
        self.open.insert(link, writer);
    }

    /// A connection is gone. True when it never opened (its requests have failed).
    fn closed(&mut self, link: Link) -> bool {
        self.open.remove(&link);
        if self.accepted.remove(&link)
            && let Some(n) = self.per_ip.get_mut(&link.peer.ip())
        {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&link.peer.ip());
            }
        }
        self.opening.remove(&link).is_some()
    }

    /// Sends over the connection for `link`, opening one when there is none (TLS
    /// proving `name`); messages for a connection being opened wait for it.
    fn send(
        &mut self,
        link: Link,
        bytes: Bytes,
        tls: Option<&Tls>,
        name: Option<String>,
        events: &mpsc::Sender<ConnEvent>,
        stats: &mut Stats,
    ) {
        if let Some(writer) = self.open.get(&link) {
            // A full queue means the peer does not read: drop, and let the
            // transaction's timers decide.
            if writer.try_send(bytes).is_ok() {
                stats.sent += 1;
            }
            return;
        }
        if let Some(waiting) = self.opening.get_mut(&link) {
            if waiting.len() < OPENING_QUEUE {
                waiting.push(bytes);
            }
            return;
        }
        if self.open.len() + self.opening.len() >= MAX_CONNECTIONS {
            return;
        }
        stats.connections += 1;
        stats.sent += 1;
        self.opening.insert(link, Vec::new());
        let events = events.clone();
        match link.transport {
            Transport::Tls => match tls {
                Some(tls) => tls.connect(link.peer, name, bytes, events),
                None => {
                    tracing::warn!(peer = %link.peer, "a request over TLS, but TLS is not set up");
                    tokio::spawn(async move { tcp::closed(&events, link).await });
                }
            },
            _ => {
                tokio::spawn(async move {
                    match tokio::net::TcpStream::connect(link.peer).await {
                        Ok(stream) => {
                            nodelay(&stream);
                            tcp::serve(stream, link, Some(bytes), events).await;
                        }
                        Err(e) => {
                            tracing::debug!(peer = %link.peer, error = %e, "TCP connect failed");
                            tcp::closed(&events, link).await;
                        }
                    }
                });
            }
        }
    }
}

/// Turns Nagle off on a SIP connection: each message goes out at once. A socket
/// that refuses still works, only with some delay.
pub(crate) fn nodelay(stream: &tokio::net::TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY refused");
    }
}
