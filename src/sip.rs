//! The SIP front of `voipbin serve`: the sip-stack user agent on the SIP sockets.
//! OPTIONS pings get 200 with what we support (the user agent does that). An INVITE
//! is routed (see [`crate::routing`]): 403 for a source no provider admits, 404 for a
//! number that is not ours; a call for one of our numbers goes to a call actor that
//! runs the number's flow ([`crate::call`]). Other requests outside calls get 405 with Allow.

use std::net::SocketAddr;
use std::sync::Arc;

use sip_stack::dialog::reason::Reason;

use crate::call::core::Incoming;
use crate::call::{self, Services};
use crate::routing::{Route, RoutingTable};
use tokio::sync::mpsc;

/// What the call actors need besides the user agent.
pub struct CallDeps {
    /// The media engine.
    pub media: Arc<media_engine::engine::Engine>,
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
    /// Providers and numbers, in memory.
    pub routing: Arc<RoutingTable>,
    /// The storage port: flows, rows and their events.
    pub store: Arc<dyn api::call_store::CallStore>,
    /// Timestamps for rows.
    pub stamps: Arc<api::clock::Stamps>,
    /// New INVITEs a second from one source (0: no limit).
    pub invite_rate: u32,
    /// Load shedding, when it is on: its probe runs beside the call tasks.
    pub load: Option<crate::overload::Shedding>,
    /// Where outbound HTTP may go.
    pub outbound: api::outbound::Outbound,
    /// The most outbound calls per customer (0: no limit).
    pub max_outbound_calls: u32,
    /// Finds carriers' servers by name.
    pub dns: call::dns::SipResolver,
    /// TLS out (external media over `wss://`): the system's roots and
    /// `--sip-tls-ca`.
    pub tls_client: Arc<rustls::ClientConfig>,
}
use sip_stack::ua::{UaConfig, UaEvent, UserAgent, driver};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The call an event is about, when it is about one.
pub(crate) fn call_of(event: &UaEvent) -> Option<sip_stack::ua::CallRef> {
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

/// Starts the user agent on the bound sockets; `local` is the address peers reach
/// us on (the Via and Contact). Returns a task that ends when the user agent stops,
/// and the services the call tasks share.
pub fn start(
    sockets: sip_stack::driver::Sockets,
    local: SocketAddr,
    deps: CallDeps,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<(JoinHandle<()>, Arc<Services>)> {
    let mut screen =
        crate::admission::SourceScreen::new(deps.routing.providers.clone(), deps.invite_rate);
    if let Some(shedding) = &deps.load {
        screen = screen.with_load(shedding.gauge.clone());
    }
    let mut ua_config = UaConfig::new(local);
    // Peers reach our TLS listener at the address they reach us on, on its port.
    ua_config.tls_local = sockets
        .tls
        .as_ref()
        .and_then(sip_stack::driver::Tls::local_addr)
        .map(|tls| SocketAddr::new(local.ip(), tls.port()));
    let ua = UserAgent::new(ua_config).with_screen(Box::new(screen));
    // The user agent runs on a thread of its own, at the priority the runtime's
    // workers yield to, and the call tasks run beside it on that thread's runtime:
    // a call's SIP events and its commands to the user agent go from task to task in
    // one run queue, where each used to cost a cross-thread wake-up (an eventfd write
    // and an epoll_wait on each side). The lag probe measures that runtime, so under
    // overload the share of new calls refused with 503 follows how late calls run.
    let thread = driver::spawn_on_thread(sockets, ua, shutdown)?;
    let calls = thread.runtime.clone();
    let load = deps.load.map(|shedding| {
        calls.spawn(crate::overload::run_probe(
            shedding.meter,
            shedding.gauge.clone(),
        ));
        shedding.gauge
    });
    // The writer spawns its task on the runtime it starts in.
    let writer = {
        let _beside_the_ua = calls.enter();
        crate::call::writer::Writer::start(deps.store.clone(), load.clone())
    };
    let services = Arc::new(Services {
        sip_routes: call::dial::SipRoutes::default(),
        routing: deps.routing,
        sip_local: local,
        outbound_limit: call::limit::OutboundLimit::new(deps.max_outbound_calls),
        dns: deps.dns,
        groupcalls: Default::default(),
        health: Default::default(),
        probes: Default::default(),
        ua: thread.handle,
        calls: calls.clone(),
        media: deps.media,
        store: deps.store,
        stamps: deps.stamps,
        registry: deps.registry,
        data_dir: deps.data_dir,
        prompts: Default::default(),
        media_ip: deps.media_ip,
        rtp_timeout: deps.rtp_timeout,
        tts: deps.tts,
        outbound: deps.outbound,
        tls_client: deps.tls_client,
        writer,
        load,
    });
    calls.spawn(dispatch(services.clone(), thread.events));
    let ua_task = thread.task;
    let task = tokio::spawn(async move {
        match ua_task.await {
            Ok(Err(e)) => tracing::error!(error = %e, "the SIP user agent stopped"),
            Err(e) => tracing::error!(error = %e, "the SIP user agent panicked"),
            Ok(Ok(_)) => {}
        }
    });
    Ok((task, services))
}

/// Hands each event of the user agent to its call's task, and starts a task for each
/// new INVITE, which routes it (from memory) and runs the call or refuses it. Never
/// waits; ends when the user agent stops.
async fn dispatch(services: Arc<Services>, mut events: mpsc::UnboundedReceiver<UaEvent>) {
    let sip_routes = &services.sip_routes;
    while let Some(event) = events.recv().await {
        if let Some(call) = call_of(&event)
            && let Some(actor) = sip_routes.get(call)
        {
            let ended = matches!(event, UaEvent::Ended { .. });
            if actor.send(event).is_err() {
                tracing::debug!(?call, "an event for a call whose task has ended");
            }
            if ended {
                sip_routes.remove(call);
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
                let (tx, rx) = mpsc::unbounded_channel();
                // The call's task holds only a weak sender (for the legs it
                // dials), so the channel closes when the user agent stops.
                let weak = tx.downgrade();
                sip_routes.insert(call, tx);
                // One span per call: every line of its story carries the SIP
                // Call-ID, then our call and activeflow ids.
                let span = tracing::info_span!(
                    "call",
                    sip_call_id = invite.call_id().unwrap_or_default(),
                    call_id = tracing::field::Empty,
                    activeflow_id = tracing::field::Empty,
                );
                let offered = Offered {
                    call,
                    invite,
                    offer,
                    source,
                    events_tx: weak,
                };
                tokio::spawn(tracing::Instrument::instrument(
                    accept(services.clone(), offered, rx),
                    span,
                ));
            }
            UaEvent::Probed { tx, status } => services.probes.answer(tx, status),
            UaEvent::Request { tx, .. } => {
                // A method SIP defines that we do not take outside a call
                // (REGISTER, MESSAGE, SUBSCRIBE, ...): 405 with what we do take
                // (RFC 3261 section 21.4.6). Unknown methods got 501 already.
                let allow = [("Allow", sip_stack::ua::ALLOW)];
                let posted = services.ua.post(move |ua, now| {
                    if let Err(e) = ua.respond(now, tx, 405, &allow, None) {
                        tracing::debug!(error = %e, "answering 405: the request is gone");
                    }
                });
                if posted.is_err() {
                    break;
                }
            }
            _ => {}
        }
    }
}

/// A new INVITE, before it is routed.
struct Offered {
    call: sip_stack::ua::CallRef,
    invite: sip_stack::msg::Message,
    offer: Option<String>,
    source: SocketAddr,
    /// The sender of the call's SIP events, for the legs it dials.
    events_tx: mpsc::WeakUnboundedSender<UaEvent>,
}

/// The task of a new INVITE: routes it (from memory) and runs its call, or refuses
/// it with the status that says why.
async fn accept(
    services: Arc<Services>,
    offered: Offered,
    events: mpsc::UnboundedReceiver<UaEvent>,
) {
    if let Some((status, why)) = loop_check(&offered.invite, services.sip_local) {
        return refuse_invite(&services, &offered, status, why).await;
    }
    route_and_run(services, offered, events).await;
}

/// Refuses an INVITE that would loop: Max-Forwards used up (483, RFC 3261 section
/// 16.3 step 2: we would forward it in a `connect`), or one we sent ourselves
/// (482: our own address in its top Via, as a carrier pointing back at us makes it).
fn loop_check(invite: &sip_stack::msg::Message, local: SocketAddr) -> Option<(u16, String)> {
    let max_forwards = invite
        .header(sip_stack::msg::HeaderName::MaxForwards)
        .and_then(|v| v.trim().parse::<u32>().ok());
    if max_forwards == Some(0) {
        return Some((483, "Max-Forwards reached 0".into()));
    }
    let from_us = invite.via().ok().is_some_and(|via| {
        let host = match via.host {
            sip_stack::msg::Host::V4(ip) => Some(std::net::IpAddr::V4(ip)),
            sip_stack::msg::Host::V6(ip) => Some(std::net::IpAddr::V6(ip)),
            sip_stack::msg::Host::Name(_) => None,
        };
        host == Some(local.ip()) && via.port.unwrap_or(5060) == local.port()
    });
    from_us.then(|| {
        (
            482,
            "the INVITE came from this server: a routing loop".into(),
        )
    })
}

/// Routes the INVITE and runs its call, or refuses it with the status that says
/// why.
async fn route_and_run(
    services: Arc<Services>,
    offered: Offered,
    events: mpsc::UnboundedReceiver<UaEvent>,
) {
    let (invite, source) = (&offered.invite, offered.source);
    let (status, why) = match crate::routing::route(&services.routing, invite, source.ip()) {
        Route::Flow {
            customer_id,
            flow_id,
            number,
            live,
            provider_id,
        } => {
            tracing::info!(%source, %number, flow_id, provider_id, "call routed to its flow");
            let party = |uri: Option<&str>| {
                uri.and_then(|u| sip_stack::msg::Uri::parse(u).ok()?.user.map(str::to_owned))
                    .unwrap_or_default()
            };
            let incoming = Incoming {
                call: offered.call,
                source: party(invite.from().ok().map(|f| f.uri)),
                destination: party(invite.request_uri()),
                peer: source,
                offer: offered.offer.clone(),
                customer_id,
                flow_id,
                max_forwards: invite
                    .header(sip_stack::msg::HeaderName::MaxForwards)
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(sip_stack::ua::DEFAULT_MAX_FORWARDS),
            };
            call::run(services, incoming, events, offered.events_tx).await;
            // The provider's count of live calls drops only now.
            drop(live);
            return;
        }
        Route::ProviderBusy { provider_id } => (
            503,
            format!("provider {provider_id} has its max_concurrent_calls up"),
        ),
        Route::UnknownSource => (403, format!("{} is not a provider's address", source.ip())),
        Route::UnknownNumber { number, why } => (404, format!("{number}: {why}")),
    };
    refuse_invite(&services, &offered, status, why).await;
}

/// Answers an INVITE that will not be served with `status` and a Reason saying why.
async fn refuse_invite(services: &Services, offered: &Offered, status: u16, why: String) {
    let (call, invite, source) = (offered.call, &offered.invite, offered.source);
    tracing::debug!(%source, to = invite.request_uri().unwrap_or_default(), status, "INVITE refused: {why}");
    metrics::counter!("voipbin_invites_refused_total", "status" => status.to_string()).increment(1);
    let r = Reason::sip(status, why);
    // RFC 3261 section 21.5.4: when to try again.
    let retry: &[(&str, &str)] = if status == 503 {
        &[("Retry-After", "2")]
    } else {
        &[]
    };
    let sent = services
        .ua
        .with(move |ua, now| ua.reject(now, call, status, Some(&r), retry))
        .await;
    match sent {
        Ok(Ok(())) => {}
        // CANCELled meanwhile: the user agent answered it already.
        Ok(Err(e)) => tracing::debug!(error = %e, "refusing the INVITE: it is gone"),
        Err(e) => tracing::debug!(error = %e, "refusing the INVITE"),
    }
}

#[cfg(test)]
mod tests {
    use super::loop_check;

    fn invite(via_host: &str, max_forwards: u32) -> sip_stack::msg::Message {
        let text = format!(
            "INVITE sip:+15551230000@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP {via_host};branch=z9hG4bK1\r\nMax-Forwards: {max_forwards}\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:+15551230000@192.0.2.1>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        );
        sip_stack::msg::parse_datagram(bytes::Bytes::from(text)).expect("an INVITE")
    }

    #[test]
    fn an_invite_out_of_hops_gets_483_and_one_from_ourselves_482() {
        let local = "192.0.2.1:5060".parse().expect("as written");
        assert_eq!(
            loop_check(&invite("203.0.113.9:5060", 0), local).map(|r| r.0),
            Some(483)
        );
        assert_eq!(
            loop_check(&invite("192.0.2.1:5060", 69), local).map(|r| r.0),
            Some(482)
        );
        assert_eq!(
            loop_check(&invite("192.0.2.1", 69), local).map(|r| r.0),
            Some(482)
        );
        assert_eq!(loop_check(&invite("192.0.2.1:5070", 69), local), None);
        assert_eq!(loop_check(&invite("203.0.113.9:5060", 1), local), None);
    }
}
