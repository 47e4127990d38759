//! The `/v1.0` REST API: auth, storage, webhooks and WebSocket events.
//!
//! # What it owns
//! - [`store`]: sqlx over SQLite (the embedded default) or Postgres, one set of
//!   migrations and queries for both.
//! - [`auth`]: access keys, JWTs, argon2 passwords; every row carries `customer_id`
//!   and one customer never sees another's rows (a 404, never a 403).
//! - [`routes`]: VoIPBIN's resources and JSON shapes, and the OpenAPI document
//!   generated from the same code (`/v1.0/openapi.json`).
//! - [`events`]: every change becomes an event, written to the webhook outbox in the
//!   change's transaction and pushed to WebSocket subscribers after it commits.
//!
//! # Run loop
//! [`Api::open`] opens and migrates the database and seeds the admin on first start;
//! [`Api::router`] is the axum router to serve; [`Api::webhook_sender`] is the task
//! that drains the outbox until shutdown.
//!
//! # Time
//! Stored timestamps come from an injected [`clock::Clock`]; webhook retry waits use
//! tokio's timer, so tests can pause and advance it.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub mod auth;
pub mod call_store;
pub mod clock;
pub mod error;
pub mod events;
pub mod extract;
pub mod flow_cache;
pub mod media_stream;
pub mod originate;
pub mod outbound;
pub mod routes;
pub mod serve;
pub mod store;
pub mod throttle;

use auth::Authenticator;
use clock::{Clock, Stamps};
use events::EventBus;
use events::webhook::WebhookSender;
use store::Store;

/// What the API needs to start.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// `sqlite://PATH` or `postgres://...`.
    pub database_url: String,
    /// Waits before each webhook attempt; entry 0 is the first attempt's.
    pub webhook_retry_schedule: Vec<Duration>,
    /// The admin's access key on first start; random when `None`.
    pub admin_accesskey: Option<String>,
    /// The admin's password on first start; random when `None`.
    pub admin_password: Option<String>,
    /// Where webhooks and other outbound HTTP may go.
    pub outbound: outbound::OutboundPolicy,
    /// The most flows, numbers and access keys one customer may have.
    pub quota: i64,
}

/// The shared state every handler gets.
#[derive(Clone)]
pub struct AppState(Arc<StateInner>);

/// What [`AppState`] holds.
pub struct StateInner {
    /// The database.
    pub store: Store,
    /// The event hub.
    pub events: EventBus,
    /// Credentials.
    pub auth: Authenticator,
    /// Timestamps.
    pub stamps: Arc<Stamps>,
    /// The Prometheus registry.
    pub metrics: PrometheusHandle,
    /// What the engine lets the API do to live calls (set by the server at start).
    pub calls: std::sync::OnceLock<Arc<dyn CallControl>>,
    /// The flows calls read, for a few seconds.
    pub flows: flow_cache::FlowCache,
    /// How the engine places calls (set by the server at start).
    pub originate: std::sync::OnceLock<Arc<dyn originate::Originate>>,
    /// How the engine streams a live call's audio (set by the server at start).
    pub media_streams: std::sync::OnceLock<Arc<dyn media_stream::MediaStreams>>,
    /// The most flows, numbers and access keys one customer may have.
    pub quota: i64,
    /// Failed logins, by address and username.
    pub logins: throttle::LoginThrottle,
    /// The outbound HTTP client (webhooks, and the engine's fetches).
    pub outbound: outbound::Outbound,
    /// The engine's routing data in memory, reloaded by every write to it (set by
    /// the server at start).
    pub routing: std::sync::OnceLock<Arc<dyn RoutingCache>>,
}

/// The engine's copy of the routing data (providers and numbers), kept current by
/// the API's writes: a provider or number written is in force for the next INVITE.
pub trait RoutingCache: Send + Sync {
    /// Replaces the routing data with `data` (every live provider and number).
    fn reload(&self, data: RoutingData);
}

/// What an incoming call is routed by: every live provider and number.
#[derive(Debug, Clone, Default)]
pub struct RoutingData {
    /// The providers (their sources admit INVITEs; their limits cap calls).
    pub providers: Vec<store::providers::Provider>,
    /// The numbers, each with its owner and call flow.
    pub numbers: Vec<store::numbers::NumberRoute>,
    /// The routes: which providers carry whose outbound calls.
    pub routes: Vec<store::routes::Route>,
}

impl StateInner {
    /// Reloads the engine's routing data (after a write to it, at start, and now
    /// and then for writes made by other nodes).
    pub async fn reload_routing(&self) -> Result<(), sqlx::Error> {
        if let Some(cache) = self.routing.get() {
            let providers = store::providers::all_live(self.store.pool()).await?;
            let numbers = store::numbers::all_routes(self.store.pool()).await?;
            let routes = store::routes::all_live(self.store.pool()).await?;
            cache.reload(RoutingData {
                providers,
                numbers,
                routes,
            });
        }
        Ok(())
    }

    /// [`StateInner::reload_routing`] after a write that has committed: a failure
    /// is logged, not returned (the write stands; the next reload catches up).
    pub async fn routing_changed(&self) {
        if let Err(e) = self.reload_routing().await {
            tracing::error!(error = %e, "the routing data was written, but reloading it failed; it is reloaded within a minute");
        }
    }
}

/// What the API can ask of a running activeflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowControl {
    /// Stop it.
    Stop,
    /// Resume it from a `block` action.
    Execute,
}

/// A change to a live call's media, asked for through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallMedia {
    /// Mute (`on`) or unmute the directions named: `inbound`, what the caller says
    /// is not heard (recordings, the other parties); `outbound`, the caller hears
    /// silence.
    Mute {
        /// What the caller says.
        inbound: bool,
        /// What the caller hears.
        outbound: bool,
        /// Mute, or unmute.
        on: bool,
    },
    /// Put the caller on hold (a re-INVITE with `a=sendonly`, RFC 3264 section 8.4;
    /// what it says is not heard) or take it off.
    Hold(bool),
    /// Music on hold: the caller hears music whenever the flow plays nothing.
    Moh(bool),
    /// Silence: whenever the flow plays nothing (and no music is on), the caller is
    /// sent silent audio rather than no packets at all, as Asterisk's channel silence
    /// does; for carriers and NATs that want media to keep flowing.
    Silence(bool),
}

/// What the engine lets the API do to live calls.
pub trait CallControl: Send + Sync {
    /// Hangs up the live call `call_id`; false when no such call is live here.
    fn hangup(&self, call_id: &str) -> bool;
    /// Stops or resumes the running activeflow `activeflow_id`; false when none runs
    /// here.
    fn activeflow(&self, activeflow_id: &str, what: FlowControl) -> bool;
    /// Runs `actions` (a validated JSON array) in the live call `call_id` now, ahead
    /// of its flow's current action (VoIPBIN's interrupt actions); false when no such
    /// call is live here.
    fn interrupt(&self, call_id: &str, actions: serde_json::Value) -> bool;
    /// Changes the live call's media (mute, hold, music on hold); false when no such
    /// call is live here.
    fn media(&self, call_id: &str, what: CallMedia) -> bool;
}

impl std::ops::Deref for AppState {
    type Target = StateInner;
    fn deref(&self) -> &StateInner {
        &self.0
    }
}

/// The admin credentials made on first start, to be printed once.
#[derive(Debug, Clone)]
pub struct AdminCredentials {
    /// The admin's username (`admin`).
    pub username: String,
    /// The admin's password.
    pub password: String,
    /// The admin's access key.
    pub accesskey: String,
}

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("database {url}: {source}")]
    Database {
        /// The URL, without its password.
        url: String,
        /// The cause.
        source: sqlx::Error,
    },
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// An opened API: its state and the webhook sender to run.
pub struct Api {
    state: AppState,
    config: ApiConfig,
}

fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may be installed already (tests); then ours stays
            // empty but the server still runs.
            metrics::set_global_recorder(recorder).ok();
            handle
        })
        .clone()
}

impl Api {
    /// Opens the database, runs migrations, and creates the admin on first start.
    pub async fn open(
        config: ApiConfig,
        clock: Box<dyn Clock>,
    ) -> Result<(Self, Option<AdminCredentials>), StartError> {
        let store =
            Store::open(&config.database_url)
                .await
                .map_err(|source| StartError::Database {
                    url: redact(&config.database_url),
                    source,
                })?;
        let stamps = Arc::new(Stamps::new(clock));
        let secret = store::settings::get_or_insert(&store, "jwt_secret", &auth::new_token())
            .await
            .map_err(|e| StartError::Other(format!("reading the JWT secret: {e}")))?;
        let first_delay = config
            .webhook_retry_schedule
            .first()
            .copied()
            .unwrap_or_default();
        let state = AppState(Arc::new(StateInner {
            events: EventBus::new(
                stamps.clone(),
                i64::try_from(first_delay.as_micros()).unwrap_or(0),
            ),
            auth: Authenticator::new(secret.as_bytes()),
            stamps,
            metrics: prometheus(),
            calls: std::sync::OnceLock::new(),
            originate: std::sync::OnceLock::new(),
            media_streams: std::sync::OnceLock::new(),
            flows: Default::default(),
            routing: std::sync::OnceLock::new(),
            logins: throttle::LoginThrottle::default(),
            quota: config.quota,
            outbound: outbound::Outbound::new(config.outbound.clone())
                .map_err(|e| StartError::Other(format!("the outbound HTTP client: {e}")))?,
            store,
        }));
        let admin = routes::customers::bootstrap_admin(&state, &config)
            .await
            .map_err(|e| StartError::Other(format!("creating the admin: {e}")))?;
        routes::providers::bootstrap_local(&state)
            .await
            .map_err(|e| StartError::Other(format!("creating the local provider: {e}")))?;
        Ok((Self { state, config }, admin))
    }

    /// The router to serve.
    pub fn router(&self) -> axum::Router {
        routes::router(self.state.clone())
    }

    /// The task that sends webhooks until shutdown.
    pub fn webhook_sender(&self) -> WebhookSender {
        WebhookSender::new(
            self.state.store.clone(),
            self.state.stamps.clone(),
            self.config.webhook_retry_schedule.clone(),
            self.state.events.sender_wakeup(),
            self.state.outbound.clone(),
        )
    }

    /// The shared state (for the engine and tests).
    pub fn state(&self) -> &AppState {
        &self.state
    }
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
