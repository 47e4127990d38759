//! The command line: `voipbin serve` and `voipbin flow ...`.
//!
//! Every `serve` setting can come from a flag, an environment variable or the TOML
//! file named by `--config`, in that order of precedence; see [`crate::config`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A programmable voice platform: SIP, RTP, flows and the VoIPBIN REST API in one
/// process.
#[derive(Debug, Parser)]
#[command(name = "voipbin", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: REST API, webhooks, WebSocket events, SIP and media.
    Serve(Box<ServeArgs>),
    /// Work with flow files without a server.
    #[command(subcommand)]
    Flow(FlowCommand),
}

/// `voipbin serve` settings. Unset ones fall back to the `--config` file, then to the
/// defaults shown.
#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// A TOML file with any of the settings below (keys as the flags, with
    /// underscores: http, sip, advertise, rtp_ports, rtp_timeout, data_dir, database,
    /// webhook_retry_schedule, tts_openai_url, tts_openai_key).
    #[arg(long, env = "VOIPBIN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address of the REST API and WebSocket [default: 127.0.0.1:8080].
    #[arg(long, env = "VOIPBIN_HTTP", value_name = "ADDR")]
    pub http: Option<String>,

    /// Address for SIP over UDP and TCP [default: 0.0.0.0:5060].
    #[arg(long, env = "VOIPBIN_SIP", value_name = "ADDR")]
    pub sip: Option<String>,

    /// Address for SIP over TLS (RFC 5922), for peers that connect to us over TLS
    /// (carriers, phones); needs --sip-tls-cert and --sip-tls-key. Calls out over
    /// TLS work without it [default: none].
    #[arg(long, env = "VOIPBIN_SIP_TLS", value_name = "ADDR")]
    pub sip_tls: Option<String>,

    /// Our certificate chain for SIP over TLS, PEM [default: none].
    #[arg(long, env = "VOIPBIN_SIP_TLS_CERT", value_name = "PATH")]
    pub sip_tls_cert: Option<PathBuf>,

    /// The private key of --sip-tls-cert, PEM [default: none].
    #[arg(long, env = "VOIPBIN_SIP_TLS_KEY", value_name = "PATH")]
    pub sip_tls_key: Option<PathBuf>,

    /// Certificates (PEM) trusted for carriers reached over TLS and for external
    /// media over `wss://`, beside the system's CA roots (a private CA) [default:
    /// the system's only].
    #[arg(long, env = "VOIPBIN_SIP_TLS_CA", value_name = "PATH")]
    pub sip_tls_ca: Option<PathBuf>,

    /// The IP address put in SDP and Contact headers [default: the local address each
    /// request arrived on].
    #[arg(long, env = "VOIPBIN_ADVERTISE", value_name = "IP")]
    pub advertise: Option<String>,

    /// UDP port range for RTP, even ports for RTP and odd for RTCP
    /// [default: 10000-20000].
    #[arg(long, env = "VOIPBIN_RTP_PORTS", value_name = "LOW-HIGH")]
    pub rtp_ports: Option<String>,

    /// Seconds without RTP before a call is ended as failed [default: 30].
    #[arg(long, env = "VOIPBIN_RTP_TIMEOUT", value_name = "SECONDS")]
    pub rtp_timeout: Option<u64>,

    /// Directory for recordings, the TTS cache and the default SQLite file
    /// [default: ./data].
    #[arg(long, env = "VOIPBIN_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Database URL: sqlite://PATH or postgres://USER:PASS@HOST/DB; created and
    /// migrated at start [default: sqlite://<data-dir>/voipbin.db].
    #[arg(long, env = "DATABASE_URL", value_name = "URL")]
    pub database: Option<String>,

    /// Waits before each webhook attempt, comma-separated (ms, s, m, h); five entries
    /// make five attempts [default: 0s,1m,5m,30m,2h].
    #[arg(long, env = "VOIPBIN_WEBHOOK_RETRY_SCHEDULE", value_name = "LIST")]
    pub webhook_retry_schedule: Option<String>,

    /// Base URL of an OpenAI-compatible speech API (`POST <url>/v1/audio/speech`),
    /// used by `talk` with provider `openai` [default: none].
    #[arg(long, env = "VOIPBIN_TTS_OPENAI_URL", value_name = "URL")]
    pub tts_openai_url: Option<String>,

    /// The API key for `--tts-openai-url`.
    #[arg(
        long,
        env = "VOIPBIN_TTS_OPENAI_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub tts_openai_key: Option<String>,

    /// New INVITEs a second admitted from one source address, with bursts of twice
    /// that; more get 503 with Retry-After. 0 turns the limit off (load tests)
    /// [default: 100].
    #[arg(long, env = "VOIPBIN_INVITE_RATE", value_name = "N")]
    pub invite_rate: Option<u32>,

    /// Address blocks that webhooks, `webhook_send`, `fetch`, `play` and TTS may reach
    /// although they are loopback, link-local, private or our own, comma-separated
    /// CIDRs (`127.0.0.0/8,10.1.0.0/16`) [default: none].
    #[arg(long, env = "VOIPBIN_ALLOW_OUTBOUND_TO", value_name = "CIDR,...")]
    pub allow_outbound_to: Option<String>,

    /// The most flows, numbers and access keys one customer may have (each)
    /// [default: 1000].
    #[arg(long, env = "VOIPBIN_MAX_PER_CUSTOMER", value_name = "N")]
    pub max_per_customer: Option<u32>,

    /// The DNS server that finds carriers' SIP servers by name (RFC 3263: NAPTR,
    /// SRV, A/AAAA), as IP:PORT [default: the system's, from /etc/resolv.conf].
    #[arg(long, env = "VOIPBIN_DNS_SERVER", value_name = "IP:PORT")]
    pub dns_server: Option<String>,

    /// Seconds between SIP OPTIONS probes of the providers that take outbound
    /// calls (`health_status`); 0 turns them off [default: 30].
    #[arg(long, env = "VOIPBIN_PROVIDER_PING_INTERVAL", value_name = "S")]
    pub provider_ping_interval: Option<u64>,

    /// The most outbound calls one customer may have up at once (`POST /calls`,
    /// `call`, `connect` legs); more get 429 or fail the leg. 0 turns the limit off
    /// [default: 100].
    #[arg(long, env = "VOIPBIN_MAX_OUTBOUND_CALLS", value_name = "N")]
    pub max_outbound_calls: Option<u32>,

    /// Overload protection: when the runtime runs this many ms late (smoothed), new
    /// calls start getting 503 with Retry-After, a share rising to all of them at
    /// four times the lag; calls already up keep their CPU. 0 turns it off
    /// [default: 100].
    #[arg(long, env = "VOIPBIN_SHED_LAG_MS", value_name = "MS")]
    pub shed_lag_ms: Option<u32>,

    /// How the log lines on stderr look: `text` for people, `json` (one object per
    /// line, with the call's span fields) for log shippers [default: text].
    #[arg(long, env = "VOIPBIN_LOG_FORMAT", value_name = "FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

/// The log lines' format (`--log-format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Plain lines, coloured on a terminal.
    #[default]
    Text,
    /// One JSON object per line: time, level, message, fields and the span's.
    Json,
}

/// `voipbin flow ...`.
#[derive(Debug, Subcommand)]
pub enum FlowCommand {
    /// Check a flow file: prints `error|warning <index> <action id> <field>: <message>`
    /// per finding; exits 1 on any error, 0 when there are only warnings.
    Validate {
        /// A flow object with `actions`, or a bare array of actions.
        file: PathBuf,
    },
    /// Dry-run a flow against a scripted call on a virtual clock: prints every action,
    /// command and variable change, then why it ended.
    Simulate(SimulateArgs),
}

/// `voipbin flow simulate` options.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// A flow object with `actions` (and optionally `on_complete_flow_id`), or a bare
    /// array of actions.
    pub file: PathBuf,
    /// A JSONL script of what happens: keys, hangup, variables, execute, amd verdicts,
    /// connect outcomes, canned HTTP answers, flows for fetch_flow (see the README).
    #[arg(long, value_name = "EVENTS.jsonl")]
    pub events: Option<PathBuf>,
    /// Print one JSON object per line instead of the timeline.
    #[arg(long)]
    pub json: bool,
    /// Virtual length of each talk and play, in ms.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub media_ms: u64,
    /// What the flow runs for: call (media actions run), or api, message, campaign,
    /// conversation (media actions are skipped).
    #[arg(long, default_value = "call", value_name = "TYPE")]
    pub reference_type: String,
}
