//! SIP over TLS (RFC 3261 section 26.2.1, RFC 5922): the handshakes, on tasks of
//! their own so a slow peer never holds the driver. A connection we open proves the
//! name of the URI we resolved its address from (the user agent remembers it); a
//! connection we accept presents our certificate. Once up, a TLS connection is
//! framed and served exactly as a TCP one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rustls::pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::tcp::{self, ConnEvent, Link};
use crate::transaction::Transport;

/// A handshake not done within this is given up (a peer that connects and stays
/// silent holds a task for no longer).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS for the driver: whom we trust when we connect, and, when we listen, the
/// listener and our certificate.
pub struct Tls {
    connector: TlsConnector,
    listener: Option<(TcpListener, TlsAcceptor)>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field(
                "listening",
                &self.listener.as_ref().map(|(l, _)| l.local_addr().ok()),
            )
            .finish()
    }
}

impl Tls {
    /// Connections out only, trusting what `client` trusts.
    pub fn client(client: Arc<rustls::ClientConfig>) -> Self {
        Self {
            connector: TlsConnector::from(client),
            listener: None,
        }
    }

    /// Also takes connections on `listener`, presenting `server`'s certificate.
    pub fn listening(mut self, listener: TcpListener, server: Arc<rustls::ServerConfig>) -> Self {
        self.listener = Some((listener, TlsAcceptor::from(server)));
        self
    }

    /// The listener's address, when there is one.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener
            .as_ref()
            .and_then(|(l, _)| l.local_addr().ok())
    }

    /// Moves the listener off its runtime (to register it on another one).
    pub(crate) fn into_std(self) -> std::io::Result<StdTls> {
        let listener = match self.listener {
            Some((l, acceptor)) => Some((l.into_std()?, acceptor)),
            None => None,
        };
        Ok(StdTls {
            connector: self.connector,
            listener,
        })
    }

    /// Accepts the next connection's TCP part, or never when not listening.
    pub(crate) async fn accept(&self) -> std::io::Result<(TcpStream, SocketAddr)> {
        match &self.listener {
            Some((l, _)) => l.accept().await,
            None => std::future::pending().await,
        }
    }

    /// Runs the handshake of an accepted connection, then serves it.
    pub(crate) fn serve_accepted(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        events: mpsc::Sender<ConnEvent>,
    ) {
        let Some((_, acceptor)) = &self.listener else {
            return;
        };
        let acceptor = acceptor.clone();
        let link = Link {
            transport: Transport::Tls,
            peer,
        };
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tcp::serve(tls, link, None, events).await,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "a TLS handshake failed");
                    tcp::closed(&events, link).await;
                }
                Err(_) => {
                    tracing::debug!(%peer, "a TLS handshake timed out");
                    tcp::closed(&events, link).await;
                }
            }
        });
    }

    /// Opens a connection to `to`, proves `name` (the peer's address when none is
    /// known), sends `first`, and serves it. A failure closes the link at once, so
    /// the request's transaction fails without waiting for its timers.
    pub(crate) fn connect(
        &self,
        to: SocketAddr,
        name: Option<String>,
        first: Bytes,
        events: mpsc::Sender<ConnEvent>,
    ) {
        let connector = self.connector.clone();
        let link = Link {
            transport: Transport::Tls,
            peer: to,
        };
        tokio::spawn(async move {
            let server_name = match name {
                Some(n) => ServerName::try_from(n),
                None => Ok(ServerName::IpAddress(to.ip().into())),
            };
            let server_name = match server_name {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(%to, error = %e, "not a TLS server name");
                    tcp::closed(&events, link).await;
                    return;
                }
            };
            let shaken = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
                let stream = TcpStream::connect(to).await?;
                super::nodelay(&stream);
                connector.connect(server_name.clone(), stream).await
            })
            .await;
            match shaken {
                Ok(Ok(tls)) => tcp::serve(tls, link, Some(first), events).await,
                Ok(Err(e)) => {
                    tracing::warn!(%to, name = ?server_name, error = %e, "TLS connection failed");
                    tcp::closed(&events, link).await;
                }
                Err(_) => {
                    tracing::warn!(%to, name = ?server_name, "TLS handshake timed out");
                    tcp::closed(&events, link).await;
                }
            }
        });
    }
}

/// [`Tls`] with its listener as a std socket, between runtimes.
pub(crate) struct StdTls {
    connector: TlsConnector,
    listener: Option<(std::net::TcpListener, TlsAcceptor)>,
}

impl StdTls {
    /// Registers the listener on the current runtime.
    pub(crate) fn register(self) -> std::io::Result<Tls> {
        let listener = match self.listener {
            Some((l, acceptor)) => Some((TcpListener::from_std(l)?, acceptor)),
            None => None,
        };
        Ok(Tls {
            connector: self.connector,
            listener,
        })
    }
}
