//! Calls: one task per call runs a sans-IO [`core::CallCore`] (its leg, its
//! activeflow, its rows) inside a thin tokio [`shell`] (ARCHITECTURE.md, "A call's
//! path").
//!
//! Here: [`core`] (the call's logic, tested on a fake clock), [`shell`] (its IO),
//! `jobs` (TTS, prompts, HTTP, flows read for the core), [`reason`] (hangup reasons
//! and their SIP and Q.850 codes), `registry` (live calls for the API), [`writer`]
//! (group-committed rows and events), [`tts`] (espeak-ng, OpenAI-compatible speech),
//! `prompts` (downloads). A call's legs report their media events straight to its
//! task (`Engine::open_to`).

pub mod amd;
pub mod core;
pub mod dial;
pub mod dns;
pub mod external_media;
pub mod groupcall;
pub mod health;
mod jobs;
pub mod limit;
pub mod media_stream;
pub mod originate;
mod prompts;
pub mod reason;
mod registry;
pub mod shell;
pub mod tts;
pub mod writer;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use media_engine::engine::Engine;
use media_engine::wav::PromptCache;
use sip_stack::ua::driver::UaHandle;

pub use registry::{Control, Registry};
pub use shell::run;

/// What every call's shell shares.
pub struct Services {
    /// The SIP user agent.
    pub ua: UaHandle,
    /// Where call tasks run: beside the user agent, on its thread's runtime. A call
    /// started from elsewhere (the API) is spawned here.
    pub calls: tokio::runtime::Handle,
    /// The media engine.
    pub media: Arc<Engine>,
    /// The storage port: flows, rows and their events.
    pub store: Arc<dyn api::call_store::CallStore>,
    /// Timestamps for rows.
    pub stamps: Arc<api::clock::Stamps>,
    /// Live calls, for `POST /calls/{id}/hangup`.
    pub registry: Registry,
    /// Recordings and the TTS cache live here.
    pub data_dir: PathBuf,
    /// Decoded prompts, shared across calls.
    pub prompts: PromptCache,
    /// The address put in our SDP.
    pub media_ip: IpAddr,
    /// No RTP for this long ends the call.
    pub rtp_timeout: Duration,
    /// The TTS providers for `talk` (espeak-ng, and what is configured).
    pub tts: Arc<tts::Providers>,
    /// Commits the calls' rows and events in batches.
    pub writer: writer::Writer,
    /// Outbound HTTP (fetch, webhook_send, play URLs, TTS), refusing inside addresses.
    pub outbound: api::outbound::Outbound,
    /// TLS out (external media over `wss://`).
    pub tls_client: Arc<rustls::ClientConfig>,
    /// The load the overload protection measures, when it is on.
    pub load: Option<Arc<crate::overload::LoadGauge>>,
    /// Which call task each SIP dialog's events go to (dialled legs are added).
    pub sip_routes: dial::SipRoutes,
    /// Providers (the carriers calls go out through) and numbers.
    pub routing: Arc<crate::routing::RoutingTable>,
    /// Our SIP address, as peers reach it (the From of dialled legs).
    pub sip_local: std::net::SocketAddr,
    /// Each customer's outbound calls against its limit.
    pub outbound_limit: limit::OutboundLimit,
    /// Finds carriers' servers by name (RFC 3263).
    pub dns: dns::SipResolver,
    /// The live groupcalls.
    pub groupcalls: groupcall::Groupcalls,
    /// Carriers' health from the OPTIONS probes.
    pub health: Arc<health::ProviderHealth>,
    /// The probes waiting for their answer.
    pub probes: health::Probes,
}

/// Queues `f` for the user agent without waiting for it; a failure (the call is
/// gone on the SIP side, say a CANCEL crossed our answer) is logged in the call's
/// span with `what` was asked.
pub(crate) fn tell_ua<E: std::fmt::Display>(
    ua: &UaHandle,
    what: &'static str,
    f: impl FnOnce(&mut sip_stack::ua::UserAgent, std::time::Instant) -> Result<(), E> + Send + 'static,
) {
    let span = tracing::Span::current();
    let posted = ua.post(move |ua, now| {
        if let Err(e) = f(ua, now) {
            span.in_scope(|| tracing::debug!(%what, error = %e, "the SIP side did not take it"));
        }
    });
    if posted.is_err() {
        tracing::warn!(%what, "the SIP user agent has stopped");
    }
}

/// Logs a media command that failed: the leg is gone (its worker stopped, or the
/// engine is shutting down); the call notices its end by the leg's events.
pub(crate) fn media_done(what: &'static str, result: std::io::Result<()>) {
    if let Err(e) = result {
        tracing::warn!(%what, error = %e, "a media command failed");
    }
}
