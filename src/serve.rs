//! `voipbin serve`: binds every listener first (so a busy port stops the start with a
//! message naming the flag that changes it), opens the database, then runs until
//! SIGINT or SIGTERM.

use std::io::ErrorKind;
use std::net::SocketAddr;

use anyhow::{Context, anyhow};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

use crate::config::Config;

/// Explains a bind failure: which address, which flag changes it.
fn bind_error(
    what: &str,
    addr: SocketAddr,
    flag: &str,
    env: &str,
    e: &std::io::Error,
) -> anyhow::Error {
    match e.kind() {
        ErrorKind::AddrInUse => anyhow!(
            "{what} address {addr} is already in use by another program; choose another with {flag} or {env}"
        ),
        ErrorKind::PermissionDenied => anyhow!(
            "{what} address {addr}: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE); choose another with {flag} or {env}"
        ),
        _ => anyhow!("{what} address {addr}: {e}; choose another with {flag} or {env}"),
    }
}

/// The SIP sockets, bound before anything else starts.
struct SipSockets {
    udp: UdpSocket,
    tcp: TcpListener,
}

async fn bind_sip(addr: SocketAddr) -> anyhow::Result<SipSockets> {
    // Port 0 lets the system choose the UDP port; TCP must then get the same one,
    // which another program may hold: choose again (a few times) rather than fail.
    let tries = if addr.port() == 0 { 20 } else { 1 };
    let mut attempt = 1;
    loop {
        // The stack's own bind: large kernel buffers, so bursts wait instead of
        // being dropped.
        let udp = sip_stack::driver::bind_udp(addr)
            .map_err(|e| bind_error("SIP (UDP)", addr, "--sip", "VOIPBIN_SIP", &e))?;
        let tcp_addr = udp.local_addr()?;
        match TcpListener::bind(tcp_addr).await {
            Ok(tcp) => {
                tracing::info!("SIP listening on udp:{tcp_addr} and tcp:{tcp_addr}");
                return Ok(SipSockets { udp, tcp });
            }
            Err(e) if e.kind() == ErrorKind::AddrInUse && attempt < tries => attempt += 1,
            Err(e) => {
                return Err(bind_error(
                    "SIP (TCP)",
                    tcp_addr,
                    "--sip",
                    "VOIPBIN_SIP",
                    &e,
                ));
            }
        }
    }
}

/// TLS for SIP: connections out to carriers always (trusting the system's roots
/// and `--sip-tls-ca`), and a listener when `--sip-tls` is given.
async fn bind_sip_tls(config: &Config) -> anyhow::Result<sip_stack::driver::Tls> {
    let tls =
        sip_stack::driver::Tls::client(crate::tls::client_config(config.sip_tls_ca.as_deref())?);
    let Some(listen) = &config.sip_tls else {
        return Ok(tls);
    };
    let server = crate::tls::server_config(&listen.cert, &listen.key)?;
    let listener = TcpListener::bind(listen.addr)
        .await
        .map_err(|e| bind_error("SIP (TLS)", listen.addr, "--sip-tls", "VOIPBIN_SIP_TLS", &e))?;
    tracing::info!("SIP listening on tls:{}", listener.local_addr()?);
    Ok(tls.listening(listener, server))
}

/// Runs the server until a shutdown signal.
pub async fn run(config: Config) -> anyhow::Result<()> {
    // Everything the server writes (database, recordings, caches) is its own: files
    // 0600, folders 0700, whatever the shell's umask.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let open_files = raise_open_files();
    let http = TcpListener::bind(config.http)
        .await
        .map_err(|e| bind_error("HTTP", config.http, "--http", "VOIPBIN_HTTP", &e))?;
    let sip = bind_sip(config.sip).await?;
    let sip_tls = bind_sip_tls(&config).await?;
    let media_ip = config.advertise.unwrap_or_else(|| config.sip.ip());
    // Every call opens its legs with its own event target (`Engine::open_to`), so
    // the engine's shared event stream carries nothing here and is dropped.
    let (media, _unrouted) =
        media_engine::engine::Engine::start(media_engine::engine::EngineConfig {
            ip: media_ip,
            rtp_ports: config.rtp_ports.clone(),
            workers: 0,
            event_queue: 65_536,
        })
        .map_err(|e| {
            anyhow!(
                "--rtp-ports {:?}: the media engine cannot start: {e}",
                config.rtp_ports
            )
        })?;
    tracing::info!(
        rtp_ports = ?config.rtp_ports,
        rtp_timeout_s = config.rtp_timeout.as_secs(),
        advertise = ?config.advertise,
        "media engine started"
    );
    private_data_dir(&config.data_dir)?;
    // One spelling of the data dir for every path made from it (so messages can
    // leave it out: see call::commands).
    let data_dir = std::fs::canonicalize(&config.data_dir)
        .with_context(|| format!("--data-dir {}", config.data_dir.display()))?;

    let api_config = api::ApiConfig {
        database_url: config.database.clone(),
        webhook_retry_schedule: config.webhook_retry_schedule.clone(),
        admin_accesskey: std::env::var("VOIPBIN_ADMIN_ACCESSKEY")
            .ok()
            .filter(|k| !k.is_empty()),
        admin_password: std::env::var("VOIPBIN_ADMIN_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty()),
        quota: i64::from(config.max_per_customer),
        outbound: api::outbound::OutboundPolicy {
            allowed: config.allow_outbound_to.clone(),
            own: [
                config.advertise,
                Some(config.sip.ip()),
                Some(config.http.ip()),
            ]
            .into_iter()
            .flatten()
            .filter(|ip| !ip.is_unspecified())
            .collect(),
        },
    };
    let (api, admin) = api::Api::open(api_config, Box::new(api::clock::SystemClock)).await?;
    tracing::info!(database = %api::redact(&config.database), "database ready");
    if let Some(admin) = admin {
        print_admin(&admin);
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let sip_local = {
        let bound = sip.udp.local_addr()?;
        match config.advertise {
            Some(ip) => SocketAddr::new(ip, bound.port()),
            None if bound.ip().is_unspecified() => {
                SocketAddr::new(default_route_ip(), bound.port())
            }
            None => bound,
        }
    };
    let media = std::sync::Arc::new(media);
    let registry = crate::call::Registry::default();
    if api
        .state()
        .calls
        .set(std::sync::Arc::new(registry.clone()) as std::sync::Arc<dyn api::CallControl>)
        .is_err()
    {
        tracing::warn!("the API's call control was set already");
    }
    let store: std::sync::Arc<dyn api::call_store::CallStore> =
        std::sync::Arc::new(api.state().clone());
    let orphans = store
        .close_orphans()
        .await
        .context("closing calls and activeflows left live by the last stop")?;
    if orphans.calls > 0 || orphans.activeflows > 0 || orphans.groupcalls > 0 {
        tracing::warn!(
            calls = orphans.calls,
            activeflows = orphans.activeflows,
            groupcalls = orphans.groupcalls,
            "calls left live by the last stop were closed as failed"
        );
    }
    let registry_for_shutdown = registry.clone();
    let routing = std::sync::Arc::new(crate::routing::RoutingTable::default());
    if api
        .state()
        .routing
        .set(routing.clone() as std::sync::Arc<dyn api::RoutingCache>)
        .is_err()
    {
        tracing::warn!("the routing cache was set already");
    }
    api.state()
        .reload_routing()
        .await
        .context("loading the providers and numbers")?;
    tokio::spawn(keep_routing_current(api.state().clone()));
    let mut tts_providers: Vec<Box<dyn crate::call::tts::TtsProvider>> = Vec::new();
    if let Some((base, key)) = config.tts_openai.clone() {
        let openai = crate::call::tts::OpenAi::new(base, key)
            .map_err(|e| anyhow!("--tts-openai-url: the HTTP client cannot start: {e}"))?;
        tts_providers.push(Box::new(openai));
    }
    let deps = crate::sip::CallDeps {
        registry,
        media: media.clone(),
        data_dir,
        media_ip: if media_ip.is_unspecified() {
            sip_local.ip()
        } else {
            media_ip
        },
        rtp_timeout: config.rtp_timeout,
        routing,
        store,
        stamps: api.state().stamps.clone(),
        invite_rate: config.invite_rate,
        load: config.shed_lag.map(|calm| crate::overload::Shedding {
            gauge: Default::default(),
            meter: crate::overload::LagMeter::new(calm, calm * 4),
        }),
        outbound: api.state().outbound.clone(),
        tts: std::sync::Arc::new(crate::call::tts::Providers::new(tts_providers)),
        max_outbound_calls: config.max_outbound_calls,
        dns: crate::call::dns::SipResolver::new(config.dns_server)
            .map_err(|e| anyhow!("--dns-server: {e}"))?,
        tls_client: crate::tls::client_config(config.sip_tls_ca.as_deref())?,
    };
    let sockets = sip_stack::driver::Sockets::udp(sip.udp)
        .with_tcp(sip.tcp)
        .with_tls(sip_tls);
    let (sip_task, services) = crate::sip::start(sockets, sip_local, deps, stop_rx.clone())
        .context("starting the SIP user agent's thread")?;
    if let Some(every) = config.provider_ping_interval {
        tokio::spawn(crate::call::health::run(services.clone(), every));
    }
    if api
        .state()
        .media_streams
        .set(std::sync::Arc::new(crate::call::media_stream::Streams(
            services.clone(),
        )))
        .is_err()
    {
        tracing::warn!("the API's media streams were set already");
    }
    if api
        .state()
        .originate
        .set(std::sync::Arc::new(crate::call::originate::Originator(
            services,
        )))
        .is_err()
    {
        tracing::warn!("the API's call placing was set already");
    }
    let sender = tokio::spawn(api.webhook_sender().run(stop_rx.clone()));
    let router = api.router();
    tracing::info!("HTTP API listening on http://{}", http.local_addr()?);
    let limits = api::serve::HttpLimits {
        total: usize::try_from(open_files / 4)
            .unwrap_or(16_384)
            .clamp(64, 16_384),
        ..api::serve::HttpLimits::default()
    };
    let server = tokio::spawn(api::serve::serve(http, router, limits, stop_rx.clone()));

    shutdown_signal().await;
    tracing::info!("shutting down: hanging up live calls");
    registry_for_shutdown
        .hangup_all(std::time::Duration::from_secs(5))
        .await;
    // Every receiver is held by a task that is still running.
    stop_tx.send(true).ok();
    server
        .await
        .context("HTTP server task")?
        .context("HTTP server")?;
    sender.await.context("webhook sender task")?;
    api.state().store.close().await;
    if let Err(e) = sip_task.await {
        tracing::error!(error = %e, "the SIP task panicked");
    }
    drop(media);
    tracing::info!("stopped");
    Ok(())
}

/// Makes the data dir (0700) or checks an existing one: it holds the JWT secret,
/// so a dir or database readable by other users is tightened, with a warning.
fn private_data_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("--data-dir {}: cannot create it", dir.display()))?;
        return Ok(());
    }
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("--data-dir {}: cannot read it", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("voipbin.db"))
        });
    for (path, private) in
        std::iter::once((dir.to_owned(), 0o700)).chain(entries.map(|p| (p, 0o600)))
    {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{mode:o}"),
                "other users could read this (it holds the JWT secret); made it {private:o}"
            );
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(private))
                .with_context(|| format!("{}: cannot make it private", path.display()))?;
        }
    }
    Ok(())
}

/// Raises the open-files limit to its hard maximum (every call holds two RTP
/// sockets, every HTTP or SIP TCP connection one); the limit now in force.
fn raise_open_files() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let raised = rustix::process::Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => raised.current.unwrap_or(1 << 20),
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-files limit");
            limit.current.unwrap_or(1024)
        }
    }
}

/// Reloads the routing data every minute, in case a write came from another node
/// sharing the database (this node's own writes reload it at once).
async fn keep_routing_current(state: api::AppState) {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        if let Err(e) = state.reload_routing().await {
            tracing::error!(error = %e, "reloading the routing data failed; the last stays in force");
        }
    }
}

/// The address this host uses towards the rest of the network (the default route's
/// source), for the Via and Contact when SIP is bound to a wildcard and no
/// `--advertise` is given. Connecting a UDP socket sends nothing.
fn default_route_ip() -> std::net::IpAddr {
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect("192.0.2.1:9")?;
            s.local_addr()
        })
        .map_or(std::net::Ipv4Addr::LOCALHOST.into(), |a| a.ip())
}

/// Prints the admin credentials made on first start, once.
fn print_admin(admin: &api::AdminCredentials) {
    println!("First start: created the platform admin. Keep these; they are not shown again.");
    println!("  username:  {}", admin.username);
    println!("  password:  {}", admin.password);
    println!("  accesskey: {}", admin.accesskey);
}

/// Waits for SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C; SIGTERM still stops the server");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
