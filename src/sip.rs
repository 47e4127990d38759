//! The SIP front of `voipbin serve`: the sip-stack user agent on the SIP sockets.
//! OPTIONS pings get 200 with what we support (the user agent does that). An INVITE
//! is routed (see [`crate::routing`]): 403 for a source no provider admits, 404 for a
//! number that is not ours; a call for one of our numbers goes to a call actor that
//! runs the number's flow ([`crate::call`]). Other requests outside calls get 405 with Allow.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use sip_stack::dialog::reason::Reason;

use crate::call::{self, Incoming, Services};
use crate::routing::Route;

/// What the call actors need besides the user agent.
pub struct CallDeps {
    /// The media engine.
    pub media: Arc<media_engine::engine::Engine>,
    /// Its events, by leg.
    pub media_events: call::media_events::MediaEvents,
    /// Recordings and the TTS cache.
    pub data_dir: std::path::PathBuf,
    /// The address in our SDP.
    pub media_ip: std::net::IpAddr,
    /// No RTP for this long ends a call.
    pub rtp_timeout: std::time::Duration,
    /// Live calls, shared with the API.
    pub registry: call::Registry,
    /// The TTS providers for `talk`.
    pub tts: std::sync::Arc<call::tts::Providers>,
    /// The providers' sources and limits, in memory.
    pub providers: Arc<crate::admission::Providers>,
    /// New INVITEs a second from one source (0: no limit).
    pub invite_rate: u32,
    /// Where outbound HTTP may go.
    pub outbound: api::outbound::Outbound,
}
use sip_stack::ua::{UaConfig, UaEvent, UserAgent, driver};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A Reason header for a refusal (RFC 3326).
fn reason(status: u16, text: impl Into<String>) -> Reason {
    Reason {
        protocol: "SIP".into(),
        cause: status,
        text: Some(text.into()),
    }
}

/// The call an event is about, when it is about one.
fn call_of(event: &UaEvent) -> Option<sip_stack::ua::CallRef> {
    match event {
        UaEvent::Progress { call, .. }
        | UaEvent::Answered { call, .. }
        | UaEvent::Acked { call, .. }
        | UaEvent::Dtmf { call, .. }
        | UaEvent::Response { call, .. }
        | UaEvent::Ended { call, .. } => Some(*call),
        UaEvent::Request { call, .. } => *call,
        _ => None,
    }
}

/// Starts the user agent on the bound sockets; `advertise` is the address peers
/// reach us on (the Via and Contact), when the socket is bound to a wildcard.
pub fn start(
    udp: UdpSocket,
    tcp: TcpListener,
    local: SocketAddr,
    state: api::AppState,
    deps: CallDeps,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let ua = UserAgent::new(UaConfig::new(local)).with_screen(Box::new(
        crate::admission::SourceScreen::new(deps.providers.clone(), deps.invite_rate),
    ));
    let providers = deps.providers.clone();
    let (handle, mut events, task) = driver::spawn(udp, Some(tcp), ua, shutdown);
    let services = Arc::new(Services {
        ua: handle.clone(),
        media: deps.media,
        media_events: deps.media_events,
        state: state.clone(),
        registry: deps.registry,
        data_dir: deps.data_dir,
        prompts: Default::default(),
        media_ip: deps.media_ip,
        rtp_timeout: deps.rtp_timeout,
        tts: deps.tts,
        outbound: deps.outbound,
        writer: crate::call::writer::Writer::start(state.clone()),
    });
    tokio::spawn(async move {
        let mut calls: HashMap<
            sip_stack::ua::CallRef,
            (
                tokio::sync::mpsc::UnboundedSender<UaEvent>,
                crate::admission::LiveCall,
            ),
        > = HashMap::new();
        while let Some(event) = events.recv().await {
            if let Some(call) = call_of(&event)
                && let Some((actor, _)) = calls.get(&call)
            {
                let ended = matches!(event, UaEvent::Ended { .. });
                if actor.send(event).is_err() {
                    tracing::debug!(?call, "an event for a call whose actor has ended");
                }
                if ended {
                    calls.remove(&call);
                }
                continue;
            }
            match event {
                UaEvent::Incoming {
                    call,
                    invite,
                    offer,
                    source,
                    ..
                } => {
                    let (status, why) = match crate::routing::route(
                        &state.store,
                        &providers,
                        &invite,
                        source.ip(),
                    )
                    .await
                    {
                        Ok(Route::Flow {
                            customer_id,
                            flow_id,
                            number,
                            live,
                            provider_id,
                        }) => {
                            tracing::info!(%source, %number, flow_id, provider_id, "call routed to its flow");
                            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                            calls.insert(call, (tx, live));
                            let incoming = Incoming {
                                call,
                                invite,
                                source,
                                offer,
                                customer_id,
                                flow_id,
                            };
                            // One span per call: every line of its story carries the
                            // SIP Call-ID, then our call and activeflow ids.
                            let span = tracing::info_span!(
                                "call",
                                sip_call_id = incoming.invite.call_id().unwrap_or_default(),
                                call_id = tracing::field::Empty,
                                activeflow_id = tracing::field::Empty,
                            );
                            tokio::spawn(tracing::Instrument::instrument(
                                call::run(services.clone(), incoming, rx),
                                span,
                            ));
                            continue;
                        }
                        Ok(Route::ProviderBusy { provider_id }) => (
                            503,
                            format!("provider {provider_id} has its max_concurrent_calls up"),
                        ),
                        Ok(Route::UnknownSource) => {
                            (403, format!("{} is not a provider's address", source.ip()))
                        }
                        Ok(Route::UnknownNumber { number, why }) => {
                            (404, format!("{number}: {why}"))
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "routing a call: the database failed");
                            (503, "the database is unavailable".to_owned())
                        }
                    };
                    tracing::debug!(%source, to = invite.request_uri().unwrap_or_default(), status, "INVITE refused: {why}");
                    metrics::counter!("voipbin_invites_refused_total", "status" => status.to_string())
                        .increment(1);
                    let r = reason(status, why);
                    let _ = handle
                        .with(move |ua, now| {
                            // RFC 3261 section 21.5.4: when to try again.
                            let retry: &[(&str, &str)] = if status == 503 {
                                &[("Retry-After", "2")]
                            } else {
                                &[]
                            };
                            ua.reject(now, call, status, Some(&r), retry)
                        })
                        .await;
                }
                UaEvent::Request { tx, .. } => {
                    // A method SIP defines that we do not take outside a call
                    // (REGISTER, MESSAGE, SUBSCRIBE, ...): 405 with what we do take
                    // (RFC 3261 section 21.4.6). Unknown methods got 501 already.
                    let allow = [("Allow", sip_stack::ua::ALLOW)];
                    let _ = handle
                        .with(move |ua, now| ua.respond(now, tx, 405, &allow, None))
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
