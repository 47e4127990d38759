//! `serve` settings: flags and environment (through clap), then the TOML file, then
//! the defaults. Every value is checked here, so a bad setting stops the start with a
//! message naming the flag.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde::Deserialize;

use crate::cli::ServeArgs;

/// The `--config` file: the same settings as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    http: Option<String>,
    sip: Option<String>,
    sip_tls: Option<String>,
    sip_tls_cert: Option<PathBuf>,
    sip_tls_key: Option<PathBuf>,
    sip_tls_ca: Option<PathBuf>,
    advertise: Option<String>,
    rtp_ports: Option<String>,
    rtp_timeout: Option<u64>,
    data_dir: Option<PathBuf>,
    database: Option<String>,
    webhook_retry_schedule: Option<String>,
    tts_openai_url: Option<String>,
    tts_openai_key: Option<String>,
    invite_rate: Option<u32>,
    shed_lag_ms: Option<u32>,
    allow_outbound_to: Option<String>,
    max_per_customer: Option<u32>,
    max_outbound_calls: Option<u32>,
    dns_server: Option<String>,
    provider_ping_interval: Option<u64>,
}

/// The checked settings of a running server.
#[derive(Debug, Clone)]
pub struct Config {
    /// The REST API's address.
    pub http: SocketAddr,
    /// The SIP address (UDP and TCP).
    pub sip: SocketAddr,
    /// The SIP over TLS listener: its address, certificate and key files.
    pub sip_tls: Option<TlsListen>,
    /// Extra CA certificates trusted for carriers over TLS.
    pub sip_tls_ca: Option<PathBuf>,
    /// The address for SDP and Contact, when fixed.
    pub advertise: Option<IpAddr>,
    /// RTP ports.
    pub rtp_ports: RangeInclusive<u16>,
    /// RTP inactivity before a call fails.
    pub rtp_timeout: Duration,
    /// Recordings, TTS cache, default database.
    pub data_dir: PathBuf,
    /// The database URL.
    pub database: String,
    /// Webhook retry waits.
    pub webhook_retry_schedule: Vec<Duration>,
    /// An OpenAI-compatible speech API: (base URL, key).
    pub tts_openai: Option<(String, String)>,
    /// New INVITEs a second from one source; 0 for no limit.
    pub invite_rate: u32,
    /// The runtime lag (smoothed) at which new calls start to be shed; `None`: never.
    pub shed_lag: Option<std::time::Duration>,
    /// Blocks outbound HTTP may reach although they are not public.
    pub allow_outbound_to: Vec<ipnet::IpNet>,
    /// The most flows, numbers and access keys per customer.
    pub max_per_customer: u32,
    /// The most outbound calls up at once per customer; 0 for no limit.
    pub max_outbound_calls: u32,
    /// The DNS server for carriers' names; the system's when `None`.
    pub dns_server: Option<SocketAddr>,
    /// How often carriers are probed; `None`: never.
    pub provider_ping_interval: Option<Duration>,
}

/// Where and as whom we take SIP over TLS.
#[derive(Debug, Clone)]
pub struct TlsListen {
    /// The listener's address.
    pub addr: SocketAddr,
    /// Our certificate chain (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
}

impl Config {
    /// Merges flags/environment, the file, and the defaults, and checks every value.
    pub fn resolve(args: ServeArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let http = args
            .http
            .or(file.http)
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let sip = args
            .sip
            .or(file.sip)
            .unwrap_or_else(|| "0.0.0.0:5060".to_owned());
        let sip_tls = match (
            args.sip_tls.or(file.sip_tls),
            args.sip_tls_cert.or(file.sip_tls_cert),
            args.sip_tls_key.or(file.sip_tls_key),
        ) {
            (None, _, _) => None,
            (Some(addr), Some(cert), Some(key)) => Some(TlsListen {
                addr: addr
                    .parse()
                    .map_err(|e| anyhow!("--sip-tls {addr:?}: {e} (expected IP:PORT)"))?,
                cert,
                key,
            }),
            (Some(_), _, _) => {
                bail!("--sip-tls needs --sip-tls-cert and --sip-tls-key (PEM files)")
            }
        };
        let sip_tls_ca = args.sip_tls_ca.or(file.sip_tls_ca);
        let advertise = args.advertise.or(file.advertise);
        let rtp_ports = args
            .rtp_ports
            .or(file.rtp_ports)
            .unwrap_or_else(|| "10000-20000".to_owned());
        let rtp_timeout = args.rtp_timeout.or(file.rtp_timeout).unwrap_or(30);
        let data_dir = args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./data"));
        let database = args
            .database
            .or(file.database)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("voipbin.db").display()));
        let schedule = args
            .webhook_retry_schedule
            .or(file.webhook_retry_schedule)
            .unwrap_or_else(|| "0s,1m,5m,30m,2h".to_owned());
        let tts_openai_url = args.tts_openai_url.or(file.tts_openai_url);
        let tts_openai_key = args
            .tts_openai_key
            .or(file.tts_openai_key)
            .unwrap_or_default();
        if let Some(url) = &tts_openai_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            bail!("--tts-openai-url {url:?}: expected an http or https URL");
        }
        let invite_rate = args.invite_rate.or(file.invite_rate).unwrap_or(100);
        let shed_lag = Some(args.shed_lag_ms.or(file.shed_lag_ms).unwrap_or(100))
            .filter(|&ms| ms > 0)
            .map(|ms| std::time::Duration::from_millis(u64::from(ms)));
        let allow = args
            .allow_outbound_to
            .or(file.allow_outbound_to)
            .unwrap_or_default();
        let allow_outbound_to = allow
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                api::store::providers::parse_cidr(s)
                    .map_err(|e| anyhow!("--allow-outbound-to: {e}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let max_per_customer = args
            .max_per_customer
            .or(file.max_per_customer)
            .unwrap_or(1000);
        let max_outbound_calls = args
            .max_outbound_calls
            .or(file.max_outbound_calls)
            .unwrap_or(100);
        let dns_server = match args.dns_server.or(file.dns_server) {
            Some(text) => Some(
                text.parse::<SocketAddr>()
                    .map_err(|e| anyhow!("--dns-server {text:?}: {e} (expected IP:PORT)"))?,
            ),
            None => None,
        };
        let provider_ping_interval = Some(
            args.provider_ping_interval
                .or(file.provider_ping_interval)
                .unwrap_or(30),
        )
        .filter(|s| *s > 0)
        .map(Duration::from_secs);
        Ok(Self {
            sip_tls,
            sip_tls_ca,
            max_per_customer,
            max_outbound_calls,
            dns_server,
            provider_ping_interval,
            invite_rate,
            shed_lag,
            allow_outbound_to,
            tts_openai: tts_openai_url
                .map(|u| (u.trim_end_matches('/').to_owned(), tts_openai_key)),
            http: http
                .parse()
                .map_err(|e| anyhow!("--http {http:?}: {e} (expected IP:PORT)"))?,
            sip: sip
                .parse()
                .map_err(|e| anyhow!("--sip {sip:?}: {e} (expected IP:PORT)"))?,
            advertise: advertise
                .map(|a| {
                    a.parse()
                        .map_err(|e| anyhow!("--advertise {a:?}: {e} (expected an IP address)"))
                })
                .transpose()?,
            rtp_ports: parse_port_range(&rtp_ports)
                .map_err(|e| anyhow!("--rtp-ports {rtp_ports:?}: {e}"))?,
            rtp_timeout: match rtp_timeout {
                0 => bail!("--rtp-timeout must be at least 1 second"),
                s => Duration::from_secs(s),
            },
            data_dir,
            database,
            webhook_retry_schedule: api::events::webhook::parse_schedule(&schedule)
                .map_err(|e| anyhow!("--webhook-retry-schedule {schedule:?}: {e}"))?,
        })
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileSettings> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("--config {}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow!("--config {}: {e}", path.display()))
}

/// Parses `LOW-HIGH`: even LOW, LOW < HIGH, room for at least one RTP/RTCP pair.
fn parse_port_range(text: &str) -> Result<RangeInclusive<u16>, String> {
    let (low, high) = text
        .split_once('-')
        .ok_or("expected LOW-HIGH, for example 10000-20000")?;
    let low: u16 = low
        .trim()
        .parse()
        .map_err(|_| format!("{low:?} is not a port"))?;
    let high: u16 = high
        .trim()
        .parse()
        .map_err(|_| format!("{high:?} is not a port"))?;
    if low == 0 || low >= high {
        return Err("LOW must be above 0 and below HIGH".to_owned());
    }
    if !low.is_multiple_of(2) {
        return Err("LOW must be even (RTP on even ports, RTCP on the next odd one)".to_owned());
    }
    Ok(low..=high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_beats_file_beats_default() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("v.toml");
        std::fs::write(
            &file,
            "http = \"127.0.0.1:9000\"\nsip = \"127.0.0.1:5070\"\n",
        )
        .expect("write");
        let args = ServeArgs {
            config: Some(file),
            sip: Some("127.0.0.1:5080".into()),
            ..Default::default()
        };
        let c = Config::resolve(args).expect("valid");
        assert_eq!(c.http.port(), 9000, "from the file");
        assert_eq!(c.sip.port(), 5080, "the flag wins");
        assert_eq!(c.rtp_ports, 10000..=20000, "the default");
        assert!(c.database.ends_with("data/voipbin.db"), "{}", c.database);
    }

    #[test]
    fn unknown_file_key_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("v.toml");
        std::fs::write(&file, "htttp = \"x\"\n").expect("write");
        let err = Config::resolve(ServeArgs {
            config: Some(file),
            ..Default::default()
        })
        .err();
        assert!(format!("{err:?}").contains("htttp"), "{err:?}");
    }

    #[test]
    fn odd_rtp_range_is_refused() {
        assert!(parse_port_range("10001-20000").is_err());
        assert!(parse_port_range("20000-10000").is_err());
        assert_eq!(parse_port_range("10000-10010"), Ok(10000..=10010));
    }
}
