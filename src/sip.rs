//! The SIP front of `voipbin serve`: the sip-stack user agent on the SIP sockets.
//! OPTIONS pings get 200 with what we support (the user agent does that). An INVITE
//! is routed (see [`crate::routing`]): 403 for a source no provider admits, 404 for a
//! number that is not ours; a call for one of our numbers gets 480 with a Reason
//! saying flows do not run calls yet (the call actor comes with the first-call issue;
//! never silence: the carrier moves on at once). Other requests get 501.

use std::net::SocketAddr;

use sip_stack::dialog::reason::Reason;

use crate::routing::Route;
use sip_stack::ua::{UaConfig, UaEvent, UserAgent, driver};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The reason given to a routed INVITE until flows run calls.
const NOT_ROUTED: &str = "calls are not routed to flows in this version";

/// A Reason header for a refusal (RFC 3326).
fn reason(status: u16, text: impl Into<String>) -> Reason {
    Reason {
        protocol: "SIP".into(),
        cause: status,
        text: Some(text.into()),
    }
}

/// Starts the user agent on the bound sockets; `advertise` is the address peers
/// reach us on (the Via and Contact), when the socket is bound to a wildcard.
pub fn start(
    udp: UdpSocket,
    tcp: TcpListener,
    local: SocketAddr,
    store: api::store::Store,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let ua = UserAgent::new(UaConfig::new(local));
    let (handle, mut events, task) = driver::spawn(udp, Some(tcp), ua, shutdown);
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                UaEvent::Incoming {
                    call,
                    invite,
                    source,
                    ..
                } => {
                    let (status, why) = match crate::routing::route(&store, &invite, source.ip())
                        .await
                    {
                        Ok(Route::UnknownSource) => {
                            (403, format!("{} is not a provider's address", source.ip()))
                        }
                        Ok(Route::UnknownNumber { number, why }) => {
                            (404, format!("{number}: {why}"))
                        }
                        Ok(Route::Flow { number, .. }) => (480, format!("{number}: {NOT_ROUTED}")),
                        Err(e) => {
                            tracing::error!(error = %e, "routing a call: the database failed");
                            (503, "the database is unavailable".to_owned())
                        }
                    };
                    tracing::info!(%source, to = invite.request_uri().unwrap_or_default(), status, "INVITE refused: {why}");
                    let r = reason(status, why);
                    let _ = handle
                        .with(move |ua, now| ua.reject(now, call, status, Some(&r), &[]))
                        .await;
                }
                UaEvent::Request { tx, .. } => {
                    let _ = handle
                        .with(move |ua, now| ua.respond(now, tx, 501, &[], None))
                        .await;
                }
                _ => {}
            }
        }
        match task.await {
            Ok(Err(e)) => tracing::error!(error = %e, "the SIP user agent stopped"),
            Err(e) => tracing::error!(error = %e, "the SIP user agent panicked"),
            Ok(Ok(_)) => {}
        }
    })
}
