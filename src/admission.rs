//! Who may place calls, judged before a call costs anything: the providers' source
//! blocks and call limits, held in memory (reloaded whenever the API writes a
//! provider), and a per-source INVITE rate limit (as Kamailio's pike).
//!
//! [`SourceScreen`] is the user agent's [`Screen`]: a stranger gets one stateless
//! 403 (RFC 3261 section 8.2.7), and past a few a second nothing at all, so spoofed
//! INVITEs cannot turn the server into a reflector; an admitted source over its rate,
//! or a provider at its `max_concurrent_calls`, gets 503 with Retry-After (section
//! 21.5.4) before a transaction, a media port or a flow exists.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use sip_stack::msg::Message;
use sip_stack::ua::screen::{Admission, RateLimiter, Screen};

/// Stateless 403s a second to one source; past that its INVITEs are dropped.
const REFUSALS_PER_SECOND: f64 = 2.0;
/// Log lines a minute about one refused source.
const LOGS_PER_MINUTE: f64 = 1.0;

/// One provider as routing needs it.
#[derive(Debug)]
pub struct Admitted {
    /// Its id.
    pub id: String,
    /// Where its calls may come from.
    pub sources: Vec<ipnet::IpNet>,
    /// The most calls up at once; 0 for no limit.
    pub max_calls: usize,
    /// Its calls up now.
    pub live: Arc<AtomicUsize>,
}

impl Admitted {
    /// Whether its calls may come from `ip`.
    fn admits(&self, ip: IpAddr) -> bool {
        self.sources.iter().any(|n| n.contains(&ip))
    }

    /// Whether it has its `max_concurrent_calls` up.
    fn full(&self) -> bool {
        self.max_calls > 0 && self.live.load(Ordering::Relaxed) >= self.max_calls
    }
}

/// The providers in memory, shared by the screen and the dispatcher.
#[derive(Debug, Default)]
pub struct Providers {
    table: RwLock<Arc<Vec<Admitted>>>,
}

impl Providers {
    /// Replaces the table with `providers`, keeping each one's count of live calls.
    pub fn load(&self, providers: &[api::store::providers::Provider]) {
        let old = self.snapshot();
        let table = providers
            .iter()
            .map(|p| Admitted {
                id: p.id.clone(),
                sources: p
                    .allowed_sources
                    .iter()
                    .filter_map(|c| api::store::providers::parse_cidr(c).ok())
                    .collect(),
                max_calls: usize::try_from(p.max_concurrent_calls).unwrap_or(0),
                live: old
                    .iter()
                    .find(|o| o.id == p.id)
                    .map_or_else(Default::default, |o| o.live.clone()),
            })
            .collect();
        match self.table.write() {
            Ok(mut t) => *t = Arc::new(table),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(table),
        }
    }

    /// The table as it is now.
    pub fn snapshot(&self) -> Arc<Vec<Admitted>> {
        match self.table.read() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The provider whose sources hold `ip`: its id, and a call counted against it,
    /// or `Err` with its id when it has its `max_concurrent_calls` up already.
    pub fn admit(&self, ip: IpAddr) -> Option<Result<(String, LiveCall), String>> {
        let table = self.snapshot();
        let p = table.iter().find(|p| p.admits(ip))?;
        if p.full() {
            return Some(Err(p.id.clone()));
        }
        Some(Ok((p.id.clone(), LiveCall::start(p.live.clone()))))
    }
}

/// A call counted against its provider's limit until it is dropped.
#[derive(Debug)]
pub struct LiveCall(Arc<AtomicUsize>);

impl LiveCall {
    /// Counts one more call on `counter`.
    pub fn start(counter: Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for LiveCall {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The screen the SIP user agent asks about each new INVITE.
#[derive(Debug)]
pub struct SourceScreen {
    providers: Arc<Providers>,
    /// The share of new calls to refuse while overloaded, and who spreads it.
    load: Option<(Arc<crate::overload::LoadGauge>, crate::overload::Shedder)>,
    invites: Option<RateLimiter<IpAddr>>,
    refusals: RateLimiter<IpAddr>,
    logs: RateLimiter<IpAddr>,
}

impl SourceScreen {
    /// A screen over `providers`, admitting `invite_rate` new INVITEs a second from
    /// one source (bursts of twice that); 0 for no limit.
    pub fn new(providers: Arc<Providers>, invite_rate: u32) -> Self {
        Self {
            providers,
            load: None,
            invites: (invite_rate > 0)
                .then(|| RateLimiter::new(f64::from(invite_rate), invite_rate.saturating_mul(2))),
            refusals: RateLimiter::new(REFUSALS_PER_SECOND, 4),
            logs: RateLimiter::new(LOGS_PER_MINUTE / 60.0, 1),
        }
    }

    /// Refuses a share of new calls while `gauge` says the server is overloaded.
    pub fn with_load(mut self, gauge: Arc<crate::overload::LoadGauge>) -> Self {
        self.load = Some((gauge, crate::overload::Shedder::default()));
        self
    }

    fn refuse(&mut self, now: Instant, ip: IpAddr, status: u16, why: String) -> Admission {
        metrics::counter!("voipbin_invites_refused_total", "status" => status.to_string())
            .increment(1);
        if self.logs.allow(now, &ip) {
            tracing::info!(source = %ip, status, "INVITE refused: {why} (logged once a minute per source)");
        }
        if status == 403 && !self.refusals.allow(now, &ip) {
            return Admission::Drop;
        }
        Admission::Refuse {
            status,
            retry_after: (status == 503).then_some(2),
            why: Some(why),
        }
    }
}

impl Screen for SourceScreen {
    fn screen(&mut self, now: Instant, source: SocketAddr, _invite: &Message) -> Admission {
        let ip = source.ip();
        let table = self.providers.snapshot();
        let Some(provider) = table.iter().find(|p| p.admits(ip)) else {
            return self.refuse(now, ip, 403, format!("{ip} is not a provider's address"));
        };
        if provider.full() {
            let why = format!(
                "provider {} has its {} calls up (max_concurrent_calls)",
                provider.id, provider.max_calls
            );
            return self.refuse(now, ip, 503, why);
        }
        if let Some((gauge, shedder)) = self.load.as_mut() {
            let share = gauge.shed_permille();
            if !shedder.admit(share) {
                let why = format!(
                    "overloaded: refusing {}% of new calls until the backlog clears",
                    share.div_ceil(10)
                );
                return self.refuse(now, ip, 503, why);
            }
        }
        if let Some(limiter) = self.invites.as_mut()
            && !limiter.allow(now, &ip)
        {
            return self.refuse(
                now,
                ip,
                503,
                format!("{ip} is over the INVITE rate (--invite-rate)"),
            );
        }
        Admission::Admit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn table(max: i64) -> Arc<Providers> {
        let providers = Arc::new(Providers::default());
        let p = api::store::providers::Provider {
            id: "p1".into(),
            customer_id: "admin".into(),
            kind: "sip".into(),
            hostname: String::new(),
            port: 5060,
            transport: "udp".into(),
            tech_prefix: String::new(),
            tech_postfix: String::new(),
            tech_headers: Default::default(),
            allowed_sources: vec!["192.0.2.0/24".into()],
            auth_username: String::new(),
            max_concurrent_calls: max,
            health_status: "unknown".into(),
            health_checked_at: None,
            name: String::new(),
            detail: String::new(),
            tm_create: String::new(),
            tm_update: None,
            tm_delete: None,
            auth_password: String::new(),
        };
        providers.load(&[p]);
        providers
    }

    fn invite() -> Message {
        let text = "INVITE sip:+1555@h SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:+1555@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        sip_stack::msg::parse_datagram(bytes::Bytes::from(text)).expect("parses")
    }

    fn at(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    #[test]
    fn a_stranger_gets_a_few_403s_a_second_then_nothing() {
        let mut screen = SourceScreen::new(table(0), 0);
        let t0 = Instant::now();
        let verdicts: Vec<_> = (0..100)
            .map(|_| screen.screen(t0, at("198.51.100.1:5060"), &invite()))
            .collect();
        let refused = verdicts
            .iter()
            .filter(|v| matches!(v, Admission::Refuse { status: 403, .. }))
            .count();
        assert_eq!(refused, 4, "{verdicts:?}");
        assert!(verdicts[4..].iter().all(|v| *v == Admission::Drop));
    }

    #[test]
    fn an_admitted_source_is_held_to_its_rate() {
        let mut screen = SourceScreen::new(table(0), 10);
        let t0 = Instant::now();
        let admitted = (0..100)
            .filter(|_| screen.screen(t0, at("192.0.2.7:5060"), &invite()) == Admission::Admit)
            .count();
        assert_eq!(admitted, 20, "a burst of twice the rate");
        let t1 = t0 + Duration::from_secs(1);
        let admitted = (0..100)
            .filter(|_| screen.screen(t1, at("192.0.2.7:5060"), &invite()) == Admission::Admit)
            .count();
        assert_eq!(admitted, 10);
        assert_eq!(
            screen.screen(t1, at("192.0.2.7:5060"), &invite()),
            Admission::Refuse {
                status: 503,
                retry_after: Some(2),
                why: Some("192.0.2.7 is over the INVITE rate (--invite-rate)".into()),
            }
        );
    }

    #[test]
    fn a_provider_at_its_call_limit_gets_503_until_a_call_ends() {
        let providers = table(2);
        let mut screen = SourceScreen::new(providers.clone(), 0);
        let t0 = Instant::now();
        let ip = "192.0.2.9".parse().expect("ip");
        let a = providers.admit(ip).expect("a provider").expect("first");
        let _b = providers.admit(ip).expect("a provider").expect("second");
        assert!(providers.admit(ip).expect("a provider").is_err(), "a third");
        assert!(matches!(
            screen.screen(t0, at("192.0.2.9:5060"), &invite()),
            Admission::Refuse { status: 503, .. }
        ));
        drop(a);
        assert_eq!(
            screen.screen(t0, at("192.0.2.9:5060"), &invite()),
            Admission::Admit
        );
    }
}
