//! TCP connections (RFC 3261 section 18.3): one task per connection frames the byte
//! stream by Content-Length, answers RFC 5626 double-CRLF pings with a CRLF, and
//! writes what the endpoint hands it. A connection whose buffer grows past one
//! message without framing, or that sends garbage, is closed; the others go on.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::msg::{Frame, MAX_MESSAGE, Message, frame, parse_framed};

/// What a connection task tells the endpoint.
#[derive(Debug)]
pub(crate) enum ConnEvent {
    /// A connection is open; bytes for `peer` go to `writer`.
    Opened(SocketAddr, mpsc::Sender<Bytes>),
    /// A message arrived on the connection from `peer`.
    Message(SocketAddr, Message),
    /// The connection closed.
    Closed(SocketAddr),
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
pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    first: Option<Bytes>,
    events: mpsc::Sender<ConnEvent>,
) {
    let (tx, mut writes) = mpsc::channel::<Bytes>(WRITE_QUEUE);
    if events.send(ConnEvent::Opened(peer, tx)).await.is_err() {
        return;
    }
    let (mut reader, mut writer) = stream.into_split();
    if let Some(bytes) = first
        && writer.write_all(&bytes).await.is_err()
    {
        closed(&events, peer).await;
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
                if !drain_frames(&mut buf, peer, &events, &mut writer).await {
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
                    if writer.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            () = tokio::time::sleep_until(deadline) => {
                tracing::debug!(%peer, partial = partial_until.is_some(), "closing a TCP connection: timed out");
                break;
            }
        }
    }
    closed(&events, peer).await;
}

/// Tells the driver the connection is gone; a driver that stopped has no need to
/// know.
async fn closed(events: &tokio::sync::mpsc::Sender<ConnEvent>, peer: std::net::SocketAddr) {
    if events.send(ConnEvent::Closed(peer)).await.is_err() {
        tracing::debug!(%peer, "a TCP connection closed after the driver stopped");
    }
}

/// Cuts every complete message out of `buf`; false when the stream cannot be framed
/// any more (the connection is then closed).
async fn drain_frames(
    buf: &mut BytesMut,
    peer: SocketAddr,
    events: &mpsc::Sender<ConnEvent>,
    writer: &mut tokio::net::tcp::OwnedWriteHalf,
) -> bool {
    loop {
        match frame(buf) {
            Ok(Frame::NeedMore) => return buf.len() <= MAX_MESSAGE,
            Ok(Frame::KeepAlive { consume, pong }) => {
                buf.advance(consume);
                if pong && writer.write_all(b"\r\n").await.is_err() {
                    return false;
                }
            }
            Ok(Frame::Message { skip, len }) => {
                buf.advance(skip);
                let bytes = buf.split_to(len).freeze();
                match parse_framed(bytes) {
                    Ok(msg) => {
                        if events.send(ConnEvent::Message(peer, msg)).await.is_err() {
                            return false;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "dropped a malformed message on TCP")
                    }
                }
            }
            Err(e) => {
                tracing::debug!(%peer, error = %e, "closing a TCP connection that cannot be framed");
                return false;
            }
        }
    }
}
