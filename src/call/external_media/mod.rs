//! External media (`external_media_start` / `external_media_stop`): a call's audio
//! streamed to a host of the customer's and what it sends back played to the
//! caller, as the original does with Asterisk's external media channels. RTP over
//! UDP, or AudioSocket over TCP or a WebSocket; we connect as the client, or, with
//! `connection_type: server`, listen on the media address for the one peer
//! `external_host` names (the action is done once we listen). Each
//! runs as a media stream ([`super::media_stream`]: the fork that drops the oldest
//! audio for a slow peer, the player that paces what comes back to 20 ms) with a
//! transport pump on either side of it. It ends with the call, with
//! `external_media_stop`, or when the peer leaves; the call goes on without it.

pub mod audiosocket;
pub mod options;
pub mod rtp;
mod transport;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use media_engine::engine::SessionId;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::Services;
use super::core::Input;
use super::media_stream::{self, Signal, StreamSpec};
use options::Connection;
pub use options::ExternalMediaOptions;

/// How long connecting to the peer may take before the action fails.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a server-mode external media waits for its peer to come.
pub const ACCEPT_TIMEOUT: Duration = Duration::from_secs(30);

/// What became of an external media, told to the call's core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Connected: the audio flows (from our `local` address).
    Started {
        /// Our end of the connection.
        local: SocketAddr,
    },
    /// It could not start: why (the peer refused, timed out, is not allowed).
    Failed(String),
    /// It ran and ended: why (the peer left, it was stopped, the call ended).
    Ended(String),
}

/// A running external media, as the call's shell holds it.
#[derive(Debug)]
pub struct Running {
    /// Stops it.
    pub stop: oneshot::Sender<()>,
    /// Tells it the caller's keys and speech (AudioSocket carries the keys).
    pub signals: mpsc::UnboundedSender<Signal>,
}

/// Starts external media `id` on the caller's `session`; its [`Status`] comes
/// back to the call's core on `inputs`.
pub fn start(
    services: &Arc<Services>,
    id: String,
    session: SessionId,
    options: ExternalMediaOptions,
    inputs: mpsc::UnboundedSender<Input>,
) -> Running {
    let (stop, stop_rx) = oneshot::channel();
    let (signals, signals_rx) = mpsc::unbounded_channel();
    let span = tracing::info_span!("external_media", external_media_id = %id, host = %options.external_host);
    let services = services.clone();
    let task = async move {
        let report = |status: Status| {
            if inputs
                .send(Input::ExternalMedia {
                    id: id.clone(),
                    status,
                })
                .is_err()
            {
                tracing::debug!("the call ended before its external media reported");
            }
        };
        let mut stop_rx = stop_rx;
        let link = match options.connection {
            Connection::Client => {
                let connected = tokio::time::timeout(
                    CONNECT_TIMEOUT,
                    transport::connect(services.outbound.policy(), &services.tls_client, &options),
                )
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "{}: no connection within {} s",
                        options.external_host,
                        CONNECT_TIMEOUT.as_secs()
                    ))
                });
                match connected {
                    Ok(link) => link,
                    Err(why) => {
                        tracing::info!(%why, "external media could not start");
                        report(Status::Failed(why));
                        return;
                    }
                }
            }
            Connection::Server => {
                let listener = match transport::listen(&options, services.media_ip).await {
                    Ok(listener) => listener,
                    Err(why) => {
                        tracing::info!(%why, "external media could not listen");
                        report(Status::Failed(why));
                        return;
                    }
                };
                // The action is done: the flow tells the peer where to come.
                report(Status::Started {
                    local: listener.local(),
                });
                tracing::info!(local = %listener.local(), "external media waits for its peer");
                let accepted = tokio::select! {
                    accepted = tokio::time::timeout(ACCEPT_TIMEOUT, listener.accept()) => accepted,
                    _ = &mut stop_rx => return report(Status::Ended("stopped".into())),
                };
                match accepted {
                    Ok(Ok(link)) => link,
                    Ok(Err(why)) => return report(Status::Ended(why)),
                    Err(_) => {
                        return report(Status::Ended(format!(
                            "no peer came within {} s",
                            ACCEPT_TIMEOUT.as_secs()
                        )));
                    }
                }
            }
        };
        let spec = StreamSpec {
            format: options.format,
            listen: options.fork(),
            speak: options.speaks(),
        };
        let stream = match media_stream::spawn(
            &services.media,
            session,
            spec,
            id.clone(),
            signals_rx,
            tracing::Span::current(),
        ) {
            Ok(stream) => stream,
            Err(e) => {
                report(match options.connection {
                    Connection::Client => Status::Failed(e.to_string()),
                    Connection::Server => Status::Ended(e.to_string()),
                });
                return;
            }
        };
        if options.connection == Connection::Client {
            report(Status::Started {
                local: link.local(),
            });
        }
        tracing::info!("external media started");
        let why = link.pump(stream, options.format, stop_rx).await;
        tracing::info!(%why, "external media ended");
        report(Status::Ended(why));
    };
    tokio::spawn(task.instrument(span));
    Running { stop, signals }
}
