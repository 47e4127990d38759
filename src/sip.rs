//! The SIP front of `voipbin serve`: the sip-stack user agent on the SIP sockets.
//! Until calls are routed to flows (the first-call issue), it answers what it can
//! answer truthfully: OPTIONS pings get 200 with what we support (the user agent does
//! that), an INVITE gets 480 with a Reason saying calls are not routed yet (never
//! silence: the carrier moves on at once), and other requests 501.

use std::net::SocketAddr;

use sip_stack::dialog::reason::Reason;
use sip_stack::ua::{UaConfig, UaEvent, UserAgent, driver};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The reason given to every INVITE until routing exists.
const NOT_ROUTED: &str = "calls are not routed to flows in this version";

/// Starts the user agent on the bound sockets; `advertise` is the address peers
/// reach us on (the Via and Contact), when the socket is bound to a wildcard.
pub fn start(
    udp: UdpSocket,
    tcp: TcpListener,
    local: SocketAddr,
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
                    tracing::info!(
                        %source,
                        to = invite.request_uri().unwrap_or_default(),
                        "INVITE refused with 480: {NOT_ROUTED}"
                    );
                    let reason = Reason {
                        protocol: "SIP".into(),
                        cause: 480,
                        text: Some(NOT_ROUTED.into()),
                    };
                    let _ = handle
                        .with(move |ua, now| ua.reject(now, call, 480, Some(&reason), &[]))
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
