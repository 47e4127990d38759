//! Stream connections, TCP or TLS (RFC 3261 section 18.3): one task per connection
//! frames the byte stream by Content-Length, answers RFC 5626 double-CRLF pings with
//! a CRLF, and writes what the endpoint hands it. A connection whose buffer grows
//! past one message without framing, or that sends garbage, is closed; the others
//! go on.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::msg::{Frame, MAX_MESSAGE, Message, frame, parse_framed};
use crate::transaction::Transport;

/// One connection's identity: the peer's address and the transport (TCP or TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Link {
    /// TCP or TLS.
    pub transport: Transport,
    /// The far end.
    pub peer: SocketAddr,
}

/// What a connection task tells the endpoint.
#[derive(Debug)]
pub(crate) enum ConnEvent {
    /// A connection is open; bytes for the link go to `writer`.
    Opened(Link, mpsc::Sender<Bytes>),
    /// A message arrived on the connection.
    Message(Link, Message),
    /// The connection closed (or never opened: a failed connect or handshake).
    Closed(Link),
}

/// How many outgoing messages may wait for one connection.
const WRITE_QUEUE: usize = 256;

/// A message begun must be complete within this, or the connection is closed (a
/// slowloris peer sending a header a minute holds nothing for long).
pub const PARTIAL_MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection with no bytes either way for this long is closed (Kamailio's
/// `tcp_connection_lifetime` is 120 s; phones keep theirs up with RFC 5626 pings).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Serves one connection until it closes: reads and frames, writes what arrives on
/// its queue. `first` is sent first (an outgoing connection's request).
pub(crate) async fn serve<S>(
    stream: S,
    link: Link,
    first: Option<Bytes>,
    events: mpsc::Sender<ConnEvent>,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let peer = link.peer;
    let (tx, mut writes) = mpsc::channel::<Bytes>(WRITE_QUEUE);
    if events.send(ConnEvent::Opened(link, tx)).await.is_err() {
        return;
    }
    let (mut reader, mut writer) = tokio::io::split(stream);
    if let Some(bytes) = first
        && write_flushed(&mut writer, &bytes).await.is_err()
    {
        closed(&events, link).await;
        return;
    }
    let mut buf = BytesMut::with_capacity(8192);
    let mut idle_until = Instant::now() + IDLE_TIMEOUT;
    // When the message now in the buffer must be complete.
    let mut partial_until: Option<Instant> = None;
    loop {
        let deadline = partial_until.map_or(idle_until, |p| p.min(idle_until));
        tokio::select! {
            read = reader.read_buf(&mut buf) => {
                match read {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let now = Instant::now();
                idle_until = now + IDLE_TIMEOUT;
                if !drain_frames(&mut buf, link, &events, &mut writer).await {
                    break;
                }
                partial_until = if buf.is_empty() {
                    None
                } else {
                    partial_until.or(Some(now + PARTIAL_MESSAGE_TIMEOUT))
                };
            }
            out = writes.recv() => match out {
                Some(bytes) => {
                    idle_until = Instant::now() + IDLE_TIMEOUT;
                    if write_flushed(&mut writer, &bytes).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            () = tokio::time::sleep_until(deadline) => {
                tracing::debug!(%peer, transport = ?link.transport, partial = partial_until.is_some(), "closing a connection: timed out");
                break;
            }
        }
    }
    closed(&events, link).await;
}

/// Writes `bytes` and flushes them (a TLS stream holds a record until flushed).
async fn write_flushed<W: AsyncWrite + Unpin>(writer: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    writer.write_all(bytes).await?;
    writer.flush().await
}

/// Tells the driver the connection is gone; a driver that stopped has no need to
/// know.
pub(crate) async fn closed(events: &mpsc::Sender<ConnEvent>, link: Link) {
    if events.send(ConnEvent::Closed(link)).await.is_err() {
        tracing::debug!(peer = %link.peer, "a connection closed after the driver stopped");
    }
}

/// Cuts every complete message out of `buf`; false when the stream cannot be framed
/// any more (the connection is then closed).
async fn drain_frames<W: AsyncWrite + Unpin>(
    buf: &mut BytesMut,
    link: Link,
    events: &mpsc::Sender<ConnEvent>,
    writer: &mut W,
) -> bool {
    let peer = link.peer;
    loop {
        match frame(buf) {
            Ok(Frame::NeedMore) => return buf.len() <= MAX_MESSAGE,
            Ok(Frame::KeepAlive { consume, pong }) => {
                buf.advance(consume);
                if pong && write_flushed(writer, b"\r\n").await.is_err() {
                    return false;
                }
            }
            Ok(Frame::Message { skip, len }) => {
                buf.advance(skip);
                let bytes = buf.split_to(len).freeze();
                match parse_framed(bytes) {
                    Ok(msg) => {
                        if events.send(ConnEvent::Message(link, msg)).await.is_err() {
                            return false;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "dropped a malformed message on a connection")
                    }
                }
            }
            Err(e) => {
                tracing::debug!(%peer, error = %e, "closing a connection that cannot be framed");
                return false;
            }
        }
    }
}
