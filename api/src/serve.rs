//! Serving the router on a TCP listener, with the limits a public server needs:
//! a header-read timeout (a slowloris connection that never finishes its headers is
//! closed), a cap on connections from one address, and a cap on all connections
//! (so the file descriptors never run out: `/ping` still answers during a flood).
//! Each request carries its peer's address (`ConnectInfo`), for the login throttle.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

/// The limits of the HTTP server.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// A request's head must arrive within this (also how long an idle keep-alive
    /// connection is kept).
    pub header_timeout: Duration,
    /// Connections open at once from one address.
    pub per_address: usize,
    /// Connections open at once in all.
    pub total: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            per_address: 256,
            total: 8192,
        }
    }
}

/// Open connections, by address.
#[derive(Debug, Default)]
struct Connections {
    by_address: HashMap<IpAddr, usize>,
    total: usize,
}

/// A connection counted until it closes.
struct Counted {
    table: Arc<Mutex<Connections>>,
    ip: IpAddr,
}

impl Counted {
    /// Counts a new connection from `ip`, or `None` when a cap is reached.
    fn take(table: &Arc<Mutex<Connections>>, ip: IpAddr, limits: &HttpLimits) -> Option<Self> {
        let mut t = table.lock().unwrap_or_else(|p| p.into_inner());
        let from_ip = t.by_address.get(&ip).copied().unwrap_or(0);
        if from_ip >= limits.per_address || t.total >= limits.total {
            return None;
        }
        t.by_address.insert(ip, from_ip + 1);
        t.total += 1;
        Some(Self {
            table: table.clone(),
            ip,
        })
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        t.total = t.total.saturating_sub(1);
        if let Some(n) = t.by_address.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                t.by_address.remove(&self.ip);
            }
        }
    }
}

/// Serves `router` on `listener` until `shutdown` turns true; then open connections
/// get up to 5 s to finish.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: HttpLimits,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let table = Arc::new(Mutex::new(Connections::default()));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors (EMFILE) or a connection reset before it
                    // was taken: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accepting an HTTP connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return Ok(()),
        };
        let Some(counted) = Counted::take(&table, peer.ip(), &limits) else {
            metrics::counter!("voipbin_http_connections_refused_total").increment(1);
            drop(stream);
            continue;
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY");
        }
        let service =
            router
                .clone()
                .map_request(move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                    req
                });
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let _counted = counted;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            let conn = builder
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                .with_upgrades();
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    // A connection still busy 5 s after shutdown is dropped.
                    tokio::time::timeout(Duration::from_secs(5), conn).await.unwrap_or(Ok(()))
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "HTTP connection ended");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_capped_per_address_and_in_all() {
        let table = Arc::new(Mutex::new(Connections::default()));
        let limits = HttpLimits {
            header_timeout: Duration::from_secs(1),
            per_address: 2,
            total: 3,
        };
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let first = Counted::take(&table, a, &limits).expect("1st");
        let _second = Counted::take(&table, a, &limits).expect("2nd");
        assert!(Counted::take(&table, a, &limits).is_none());
        let _third = Counted::take(&table, b, &limits).expect("another address");
        assert!(Counted::take(&table, b, &limits).is_none(), "the total");
        drop(first);
        assert!(Counted::take(&table, a, &limits).is_some());
    }
}
