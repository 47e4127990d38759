//! The wire side of an external media: a connected UDP socket carrying RTP, or a
//! TCP connection or WebSocket carrying AudioSocket messages, pumped against the
//! call's media stream. Addresses are checked like every outbound connection
//! (inside addresses only with `--allow-outbound-to`).

use std::net::SocketAddr;

use api::media_stream::{MediaStream, StreamFormat, StreamIn, StreamOut};
use api::outbound::OutboundPolicy;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::oneshot;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::audiosocket::{Decoder, Message};
use super::options::{ExternalMediaOptions, Transport, authority_of, host_port, peer_host};
use super::rtp::{Packetizer, audio_of};

/// A byte stream a WebSocket runs on: TCP, or TLS over TCP (`wss://`).
pub(super) trait ByteStream:
    tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send
{
}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> ByteStream for T {}

/// A WebSocket over TCP or TLS.
type Ws = WebSocketStream<Box<dyn ByteStream>>;

/// A connection to the peer.
pub(super) enum Link {
    Udp(UdpSocket),
    Tcp(TcpStream),
    WebSocket(Box<Ws>, SocketAddr),
}

/// Resolves the peer (refusing addresses the policy does not permit) and connects.
pub(super) async fn connect(
    policy: &OutboundPolicy,
    tls: &std::sync::Arc<rustls::ClientConfig>,
    options: &ExternalMediaOptions,
) -> Result<Link, String> {
    let authority = match options.transport {
        Transport::WebSocket => authority_of(&options.external_host),
        Transport::Udp | Transport::Tcp => options.external_host.clone(),
    };
    let (host, port) = host_port(&authority)?;
    let peers = policy
        .resolve(&host, port)
        .await
        .map_err(|e| e.to_string())?;
    let mut last = format!("{authority}: no address");
    for peer in peers {
        let attempt = match options.transport {
            Transport::Udp => udp(peer).await.map(Link::Udp),
            Transport::Tcp => TcpStream::connect(peer).await.map(Link::Tcp),
            Transport::WebSocket => match TcpStream::connect(peer).await {
                // The peer answered: its handshake decides, no other address is tried.
                Ok(tcp) => return websocket(&options.external_host, &host, tls, tcp).await,
                Err(e) => Err(e),
            },
        };
        match attempt {
            Ok(link) => return Ok(link),
            Err(e) => last = format!("{peer}: {e}"),
        }
    }
    Err(last)
}

/// Where we wait for the peer (`connection_type: server`), and who may come.
pub(super) struct Listener {
    kind: Listening,
    /// The peer's addresses: no one else is let in.
    allowed: Vec<std::net::IpAddr>,
    local: SocketAddr,
}

enum Listening {
    /// RTP.
    Udp(UdpSocket),
    /// AudioSocket, on TCP or (after the handshake) a WebSocket.
    Tcp {
        listener: tokio::net::TcpListener,
        websocket: bool,
    },
}

/// Opens a port on `ip` (the media address) for the peer named by the options'
/// `external_host`.
pub(super) async fn listen(
    options: &ExternalMediaOptions,
    ip: std::net::IpAddr,
) -> Result<Listener, String> {
    let host = peer_host(&options.external_host)?;
    let allowed: Vec<std::net::IpAddr> = tokio::net::lookup_host((host.as_str(), 0))
        .await
        .map_err(|e| format!("{host}: {e}"))?
        .map(|a| a.ip())
        .collect();
    if allowed.is_empty() {
        return Err(format!("{host}: no address"));
    }
    let at = SocketAddr::new(ip, 0);
    let opened = |e: std::io::Error| format!("opening a port on {ip}: {e}");
    let kind = match options.transport {
        Transport::Udp => Listening::Udp(UdpSocket::bind(at).await.map_err(opened)?),
        Transport::Tcp | Transport::WebSocket => Listening::Tcp {
            listener: tokio::net::TcpListener::bind(at).await.map_err(opened)?,
            websocket: options.transport == Transport::WebSocket,
        },
    };
    let local = match &kind {
        Listening::Udp(s) => s.local_addr(),
        Listening::Tcp { listener, .. } => listener.local_addr(),
    }
    .map_err(opened)?;
    Ok(Listener {
        kind,
        allowed,
        local,
    })
}

impl Listener {
    /// Where the peer must connect.
    pub(super) fn local(&self) -> SocketAddr {
        self.local
    }

    /// Waits for the peer: its first RTP packet (the socket is then connected to
    /// it, symmetric RTP as RFC 4961 has it) or its connection (and WebSocket
    /// handshake). Anyone else is turned away.
    pub(super) async fn accept(self) -> Result<Link, String> {
        let allowed = |ip: std::net::IpAddr| self.allowed.contains(&ip);
        match self.kind {
            Listening::Udp(socket) => {
                let mut probe = [0u8; 16];
                loop {
                    let (_, from) = socket
                        .peek_from(&mut probe)
                        .await
                        .map_err(|e| format!("waiting for RTP: {e}"))?;
                    if allowed(from.ip()) {
                        socket
                            .connect(from)
                            .await
                            .map_err(|e| format!("{from}: {e}"))?;
                        return Ok(Link::Udp(socket));
                    }
                    tracing::info!(%from, "external media: RTP from a stranger dropped");
                    if let Err(e) = socket.recv_from(&mut probe).await {
                        return Err(format!("waiting for RTP: {e}"));
                    }
                }
            }
            Listening::Tcp {
                listener,
                websocket,
            } => loop {
                let (tcp, from) = listener
                    .accept()
                    .await
                    .map_err(|e| format!("waiting for the peer: {e}"))?;
                if !allowed(from.ip()) {
                    tracing::info!(%from, "external media: a stranger's connection refused");
                    continue;
                }
                if !websocket {
                    return Ok(Link::Tcp(tcp));
                }
                let stream: Box<dyn ByteStream> = Box::new(tcp);
                match tokio_tungstenite::accept_async(stream).await {
                    Ok(ws) => return Ok(Link::WebSocket(Box::new(ws), self.local)),
                    Err(e) => {
                        tracing::info!(%from, error = %e, "external media: a WebSocket handshake failed")
                    }
                }
            },
        }
    }
}

/// The WebSocket handshake on `tcp`, after TLS for a `wss://` URL (the peer's
/// certificate checked for `host` against the system's roots and `--sip-tls-ca`).
async fn websocket(
    url: &str,
    host: &str,
    tls: &std::sync::Arc<rustls::ClientConfig>,
    tcp: TcpStream,
) -> Result<Link, String> {
    let local = tcp
        .local_addr()
        .map_err(|e| format!("{url}: the connection failed: {e}"))?;
    let stream: Box<dyn ByteStream> = if url.starts_with("wss://") {
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|e| format!("{url}: {host} is not a name TLS can check: {e}"))?;
        let secured = tokio_rustls::TlsConnector::from(tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| format!("{url}: TLS failed: {e}"))?;
        Box::new(secured)
    } else {
        Box::new(tcp)
    };
    let (ws, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .map_err(|e| format!("{url}: the WebSocket handshake failed: {e}"))?;
    Ok(Link::WebSocket(Box::new(ws), local))
}

async fn udp(peer: SocketAddr) -> std::io::Result<UdpSocket> {
    let any: SocketAddr = if peer.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(any).await?;
    // Connected: only the peer's packets come in (symmetric RTP, RFC 4961).
    socket.connect(peer).await?;
    Ok(socket)
}

impl Link {
    /// Our end of the connection.
    pub(super) fn local(&self) -> SocketAddr {
        let unknown = SocketAddr::from(([0, 0, 0, 0], 0));
        match self {
            Self::Udp(s) => s.local_addr().unwrap_or(unknown),
            Self::Tcp(s) => s.local_addr().unwrap_or(unknown),
            Self::WebSocket(_, local) => *local,
        }
    }

    /// Carries the stream's audio to the peer and the peer's back into the stream
    /// until one side ends or `stop` fires; says why it ended.
    pub(super) async fn pump(
        self,
        stream: MediaStream,
        format: StreamFormat,
        stop: oneshot::Receiver<()>,
    ) -> String {
        let uuid = uuid::Uuid::parse_str(&stream.stream_id)
            .map(|u| *u.as_bytes())
            .unwrap_or_default();
        match self {
            Self::Udp(socket) => pump_rtp(socket, stream, format, stop).await,
            Self::Tcp(tcp) => pump_audiosocket(Bytes::Tcp(tcp), stream, format, stop, uuid).await,
            Self::WebSocket(ws, _) => {
                pump_audiosocket(Bytes::Ws(ws), stream, format, stop, uuid).await
            }
        }
    }
}

async fn pump_rtp(
    socket: UdpSocket,
    mut stream: MediaStream,
    format: StreamFormat,
    mut stop: oneshot::Receiver<()>,
) -> String {
    let mut packets = Packetizer::new(format);
    let mut buf = vec![0u8; 2048];
    loop {
        tokio::select! {
            out = stream.out.recv() => match out {
                Some(StreamOut::Audio { payload, .. }) => {
                    if let Err(e) = socket.send(&packets.packet(&payload)).await {
                        // A port unreachable comes back as a refused send.
                        return format!("sending RTP: {e}");
                    }
                }
                Some(StreamOut::Stop(why)) => return why.to_owned(),
                Some(_) => {}
                None => return "the call ended".to_owned(),
            },
            got = socket.recv(&mut buf) => match got {
                Ok(n) => {
                    if let Some(audio) = buf.get(..n).and_then(|p| audio_of(format, p))
                        && stream.into.send(StreamIn::Audio(audio)).is_err()
                    {
                        return "the call ended".to_owned();
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    return "the peer's port is closed (ICMP port unreachable)".to_owned();
                }
                Err(e) => return format!("receiving RTP: {e}"),
            },
            _ = &mut stop => return "stopped".to_owned(),
        }
    }
}

/// A byte pipe that AudioSocket messages travel in: a TCP stream, or a WebSocket's
/// binary messages.
enum Bytes {
    Tcp(TcpStream),
    Ws(Box<Ws>),
}

impl Bytes {
    async fn send(&mut self, message: &Message) -> Result<(), String> {
        let mut wire = Vec::with_capacity(3 + 640);
        message.encode(&mut wire);
        match self {
            Self::Tcp(tcp) => tcp.write_all(&wire).await.map_err(|e| e.to_string()),
            Self::Ws(ws) => ws
                .send(WsMessage::Binary(wire.into()))
                .await
                .map_err(|e| e.to_string()),
        }
    }

    /// The next bytes from the peer; `None` when it closed.
    async fn recv(&mut self, buf: &mut [u8]) -> Result<Option<Vec<u8>>, String> {
        match self {
            Self::Tcp(tcp) => match tcp.read(buf).await {
                Ok(0) => Ok(None),
                Ok(n) => Ok(Some(buf.get(..n).unwrap_or_default().to_vec())),
                Err(e) => Err(e.to_string()),
            },
            Self::Ws(ws) => loop {
                match ws.next().await {
                    None | Some(Ok(WsMessage::Close(_))) => return Ok(None),
                    Some(Ok(WsMessage::Binary(data))) => return Ok(Some(data.to_vec())),
                    // Pings are answered by the library; text is not AudioSocket.
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.to_string()),
                }
            },
        }
    }

    async fn close(mut self) {
        let closed = match &mut self {
            Self::Tcp(tcp) => tcp.shutdown().await.map_err(|e| e.to_string()),
            Self::Ws(ws) => WebSocketStream::close(ws.as_mut(), None)
                .await
                .map_err(|e| e.to_string()),
        };
        if let Err(e) = closed {
            tracing::debug!(error = %e, "closing the external media's connection");
        }
    }
}

async fn pump_audiosocket(
    mut pipe: Bytes,
    mut stream: MediaStream,
    format: StreamFormat,
    mut stop: oneshot::Receiver<()>,
    uuid: [u8; 16],
) -> String {
    if let Err(e) = pipe.send(&Message::Uuid(uuid)).await {
        return format!("sending the stream's UUID: {e}");
    }
    let audio = |payload: Vec<u8>| match format {
        StreamFormat::Slin16 => Message::Audio16k(payload),
        StreamFormat::Ulaw | StreamFormat::Alaw | StreamFormat::Slin => Message::Audio8k(payload),
    };
    let mut decoder = Decoder::default();
    let mut buf = vec![0u8; 4096];
    let why = loop {
        tokio::select! {
            out = stream.out.recv() => {
                let message = match out {
                    Some(StreamOut::Audio { payload, .. }) => audio(payload),
                    Some(StreamOut::Dtmf(key)) => Message::Dtmf(key),
                    Some(StreamOut::Stop(why)) => {
                        if let Err(e) = pipe.send(&Message::Hangup).await {
                            tracing::debug!(error = %e, "the peer did not take our hangup");
                        }
                        break why.to_owned();
                    }
                    Some(_) => continue,
                    None => break "the call ended".to_owned(),
                };
                if let Err(e) = pipe.send(&message).await {
                    return format!("sending to the peer: {e}");
                }
            }
            got = pipe.recv(&mut buf) => match got {
                Ok(Some(bytes)) => {
                    decoder.feed(&bytes);
                    match read_messages(&mut decoder, &stream) {
                        Ok(()) => {}
                        Err(why) => break why,
                    }
                }
                Ok(None) => return "the peer closed the connection".to_owned(),
                Err(e) => return format!("receiving from the peer: {e}"),
            },
            _ = &mut stop => {
                if let Err(e) = pipe.send(&Message::Hangup).await {
                    tracing::debug!(error = %e, "the peer did not take our hangup");
                }
                break "stopped".to_owned();
            }
        }
    };
    pipe.close().await;
    why
}

/// Hands the peer's audio to the stream; an error ends the external media with
/// the reason.
fn read_messages(decoder: &mut Decoder, stream: &MediaStream) -> Result<(), String> {
    loop {
        match decoder.next_message() {
            Ok(Some(Message::Audio8k(audio) | Message::Audio16k(audio))) => {
                if stream.into.send(StreamIn::Audio(audio)).is_err() {
                    return Err("the call ended".to_owned());
                }
            }
            Ok(Some(Message::Hangup)) => return Err("the peer hung up".to_owned()),
            Ok(Some(Message::Error(code))) => {
                return Err(format!("the peer reported an error (code {code:?})"));
            }
            Ok(Some(other)) => tracing::debug!(?other, "an AudioSocket message skipped"),
            Ok(None) => return Ok(()),
            Err(e) => return Err(format!("the peer's AudioSocket stream is broken: {e}")),
        }
    }
}
