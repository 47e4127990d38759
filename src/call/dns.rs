//! Locating a carrier's SIP server by its host name (RFC 3263 section 4): NAPTR
//! picks the transport when the provider names none, SRV gives the servers in
//! priority and weight order, A/AAAA their addresses. Each address is a hop a
//! call may try; a hop that fails hands the call to the next (section 4.3).
//!
//! The ordering rules are plain functions ([`srv_order`], [`naptr_targets`]),
//! tested without a network; [`SipResolver`] asks a DNS server through
//! hickory-resolver (the system's, or the one `--dns-server` names).

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use sip_stack::transaction::Transport;

/// The port SIP uses when nothing says otherwise (RFC 3261 section 19.1.2).
pub const SIP_PORT: u16 = 5060;

/// The default port of SIP over TLS (RFC 3261 section 19.1.2).
pub const SIPS_PORT: u16 = 5061;

/// The default port for `transport` (section 19.1.2): 5061 for TLS, else 5060.
pub fn default_port(transport: Transport) -> u16 {
    if transport == Transport::Tls {
        SIPS_PORT
    } else {
        SIP_PORT
    }
}

/// One place a request may go: an address and the transport to reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    /// The server's address.
    pub addr: SocketAddr,
    /// UDP or TCP.
    pub transport: Transport,
}

/// An SRV record's target, as ordering needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvTarget {
    /// Lower first.
    pub priority: u16,
    /// Share of the load within a priority.
    pub weight: u16,
    /// The server's port.
    pub port: u16,
    /// The server's host name.
    pub target: String,
}

/// A small deterministic generator (splitmix64): the order of a call's hops must
/// not change between its attempts, while different calls spread by weight.
struct Spread(u64);

impl Spread {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// SRV targets in the order to try them (RFC 2782, "Usage rules"): lowest
/// priority first; within a priority, a weighted random order, zero weights
/// placed first so they are picked rarely. `seed` makes the order repeatable for
/// one call. A lone "." target says the service is not offered: no targets.
pub fn srv_order(mut records: Vec<SrvTarget>, seed: u64) -> Vec<SrvTarget> {
    if records.len() == 1 && records[0].target.trim_end_matches('.').is_empty() {
        return Vec::new();
    }
    let mut spread = Spread(seed);
    records.sort_by_key(|r| (r.priority, r.weight != 0));
    let mut out = Vec::with_capacity(records.len());
    while !records.is_empty() {
        let priority = records[0].priority;
        let end = records
            .iter()
            .position(|r| r.priority != priority)
            .unwrap_or(records.len());
        let mut group: Vec<SrvTarget> = records.drain(..end).collect();
        while !group.is_empty() {
            let total: u64 = group.iter().map(|r| u64::from(r.weight)).sum();
            let pick = if total == 0 {
                0
            } else {
                spread.next() % (total + 1)
            };
            let mut running = 0;
            let chosen = group
                .iter()
                .position(|r| {
                    running += u64::from(r.weight);
                    running >= pick
                })
                .unwrap_or(0);
            out.push(group.remove(chosen));
        }
    }
    out
}

/// A NAPTR record, as RFC 3263 section 4.1 reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naptr {
    /// Lower first.
    pub order: u16,
    /// Lower first within an order.
    pub preference: u16,
    /// `s`: the replacement is an SRV name.
    pub flags: String,
    /// `SIP+D2U`, `SIP+D2T`, `SIPS+D2T`, ...
    pub services: String,
    /// The SRV name to look up.
    pub replacement: String,
}

/// The SRV names (and their transports) the NAPTR records lead to, best first:
/// only `s` records for services we speak (`SIP+D2U` UDP, `SIP+D2T` TCP,
/// `SIPS+D2T` TLS).
pub fn naptr_targets(mut records: Vec<Naptr>) -> Vec<(String, Transport)> {
    records.sort_by_key(|r| (r.order, r.preference));
    records
        .into_iter()
        .filter(|r| r.flags.eq_ignore_ascii_case("s"))
        .filter_map(|r| {
            let transport = match r.services.to_ascii_uppercase().as_str() {
                "SIP+D2U" => Transport::Udp,
                "SIP+D2T" => Transport::Tcp,
                "SIPS+D2T" => Transport::Tls,
                _ => return None,
            };
            Some((r.replacement, transport))
        })
        .collect()
}

/// The SRV name for SIP over `transport` at `domain` (RFC 3263 section 4.2:
/// `_sips._tcp` for TLS).
fn srv_name(domain: &str, transport: Transport) -> String {
    let service = match transport {
        Transport::Udp => "_sip._udp",
        Transport::Tcp => "_sip._tcp",
        Transport::Tls => "_sips._tcp",
    };
    format!("{service}.{}", domain.trim_end_matches('.'))
}

/// A provider's explicit port, if it has one (0 means "find it by DNS").
pub fn carrier_port(provider: &api::store::providers::Provider) -> Option<u16> {
    u16::try_from(provider.port).ok().filter(|p| *p != 0)
}

/// Finds carriers' servers by name, with a cache (hickory's, by TTL).
#[derive(Clone)]
pub struct SipResolver {
    resolver: TokioResolver,
}

impl std::fmt::Debug for SipResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SipResolver")
    }
}

impl SipResolver {
    /// A resolver asking the DNS server at `server` only (UDP and TCP), for
    /// tests and private zones; with `None`, the system's (`/etc/resolv.conf`).
    pub fn new(server: Option<SocketAddr>) -> Result<Self, String> {
        let builder = match server {
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![ns]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => match TokioResolver::builder_tokio() {
                Ok(builder) => builder,
                Err(e) => {
                    // Carriers named by address still work; names fail saying why.
                    tracing::warn!(error = %e, "the system's DNS settings cannot be read: carriers' host names will not resolve (see --dns-server)");
                    TokioResolver::builder_with_config(
                        ResolverConfig::from_name_servers(Vec::new()),
                        TokioRuntimeProvider::default(),
                    )
                }
            },
        };
        let resolver = builder
            .build()
            .map_err(|e| format!("starting the DNS resolver: {e}"))?;
        Ok(Self { resolver })
    }

    /// The hops for `host` (RFC 3263 section 4): a literal address, or a name
    /// with an explicit `port` (A/AAAA only), or else NAPTR (when `transport` is
    /// not given) and SRV, falling back to A/AAAA at the transport's default port. `seed` orders equal
    /// SRV priorities by weight, the same way for every attempt of one call.
    pub async fn hops(
        &self,
        host: &str,
        port: Option<u16>,
        transport: Option<Transport>,
        seed: u64,
    ) -> Result<Vec<Hop>, String> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let chosen = transport.unwrap_or(Transport::Udp);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(vec![Hop {
                addr: SocketAddr::new(ip, port.unwrap_or(default_port(chosen))),
                transport: chosen,
            }]);
        }
        if let Some(port) = port {
            return self.addresses(bare, port, chosen).await;
        }
        // Section 4.1: NAPTR picks the transport when none is given; without
        // NAPTR records, SRV is tried for each transport we speak.
        let services = match transport {
            Some(t) => vec![(srv_name(bare, t), t)],
            None => {
                let naptr = naptr_targets(self.naptr(bare).await);
                if naptr.is_empty() {
                    vec![
                        (srv_name(bare, Transport::Udp), Transport::Udp),
                        (srv_name(bare, Transport::Tcp), Transport::Tcp),
                    ]
                } else {
                    naptr
                }
            }
        };
        for (name, transport) in services {
            let targets = srv_order(self.srv(&name).await, seed);
            if targets.is_empty() {
                continue;
            }
            let mut hops = Vec::new();
            for t in targets {
                match self.addresses(&t.target, t.port, transport).await {
                    Ok(found) => hops.extend(found),
                    Err(e) => {
                        tracing::debug!(target = %t.target, error = %e, "an SRV target does not resolve")
                    }
                }
            }
            if !hops.is_empty() {
                return Ok(hops);
            }
        }
        // Section 4.2: no SRV records, the name's own addresses at the default port.
        self.addresses(bare, default_port(chosen), chosen).await
    }

    /// The hops of a provider that takes calls out: its `hostname` with its
    /// `port` (0: found by DNS) and `transport` (empty: chosen by DNS).
    pub async fn carrier_hops(
        &self,
        provider: &api::store::providers::Provider,
        seed: u64,
    ) -> Result<Vec<Hop>, String> {
        let transport = match provider.transport.to_ascii_lowercase().as_str() {
            "tcp" => Some(Transport::Tcp),
            "udp" => Some(Transport::Udp),
            "tls" => Some(Transport::Tls),
            _ => None,
        };
        self.hops(&provider.hostname, carrier_port(provider), transport, seed)
            .await
    }

    /// The A/AAAA addresses of `name` at `port`.
    async fn addresses(
        &self,
        name: &str,
        port: u16,
        transport: Transport,
    ) -> Result<Vec<Hop>, String> {
        let found = self
            .resolver
            .lookup_ip(name)
            .await
            .map_err(|e| format!("{name} does not resolve: {e}"))?;
        let hops: Vec<Hop> = found
            .iter()
            .map(|ip| Hop {
                addr: SocketAddr::new(ip, port),
                transport,
            })
            .collect();
        if hops.is_empty() {
            return Err(format!("{name} has no address"));
        }
        Ok(hops)
    }

    /// The SRV records at `name` (none when there are none, or on error).
    async fn srv(&self, name: &str) -> Vec<SrvTarget> {
        match self.resolver.lookup(name, RecordType::SRV).await {
            Ok(lookup) => lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::SRV(srv) => Some(SrvTarget {
                        priority: srv.priority,
                        weight: srv.weight,
                        port: srv.port,
                        target: srv.target.to_utf8(),
                    }),
                    _ => None,
                })
                .collect(),
            Err(e) => {
                tracing::debug!(%name, error = %e, "no SRV records");
                Vec::new()
            }
        }
    }

    /// The NAPTR records at `domain` (none when there are none, or on error).
    async fn naptr(&self, domain: &str) -> Vec<Naptr> {
        match self.resolver.lookup(domain, RecordType::NAPTR).await {
            Ok(lookup) => lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::NAPTR(n) => Some(Naptr {
                        order: n.order,
                        preference: n.preference,
                        flags: String::from_utf8_lossy(&n.flags).into_owned(),
                        services: String::from_utf8_lossy(&n.services).into_owned(),
                        replacement: n.replacement.to_utf8(),
                    }),
                    _ => None,
                })
                .collect(),
            Err(e) => {
                tracing::debug!(%domain, error = %e, "no NAPTR records");
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn srv(priority: u16, weight: u16, target: &str) -> SrvTarget {
        SrvTarget {
            priority,
            weight,
            port: 5060,
            target: target.into(),
        }
    }

    #[test]
    fn lower_priorities_come_first_whatever_the_weights() {
        let order = srv_order(vec![srv(20, 100, "c"), srv(10, 0, "a"), srv(10, 5, "b")], 7);
        let names: Vec<_> = order.iter().map(|t| t.target.as_str()).collect();
        assert_eq!(names.len(), 3);
        assert_eq!(names[2], "c");
    }

    #[test]
    fn weights_share_the_first_place_and_one_call_keeps_its_order() {
        let records = vec![srv(10, 90, "heavy"), srv(10, 10, "light")];
        let heavy_first = (0..1000u64)
            .filter(|seed| srv_order(records.clone(), *seed)[0].target == "heavy")
            .count();
        assert!(
            (800..=980).contains(&heavy_first),
            "about 90% first: {heavy_first}"
        );
        assert_eq!(srv_order(records.clone(), 42), srv_order(records, 42));
    }

    #[test]
    fn a_lone_dot_target_means_no_service() {
        assert!(srv_order(vec![srv(0, 0, ".")], 1).is_empty());
    }

    #[test]
    fn naptr_keeps_our_transports_in_order_and_preference() {
        let n = |order, preference, services: &str, replacement: &str| Naptr {
            order,
            preference,
            flags: "s".into(),
            services: services.into(),
            replacement: replacement.into(),
        };
        let targets = naptr_targets(vec![
            n(50, 50, "SIP+D2U", "_sip._udp.example.com"),
            n(90, 50, "SIP+D2T", "_sip._tcp.example.com"),
            n(10, 50, "SIPS+D2T", "_sips._tcp.example.com"),
        ]);
        assert_eq!(
            targets,
            [
                ("_sips._tcp.example.com".to_owned(), Transport::Tls),
                ("_sip._udp.example.com".to_owned(), Transport::Udp),
                ("_sip._tcp.example.com".to_owned(), Transport::Tcp)
            ]
        );
        assert_eq!(
            srv_name("example.com.", Transport::Tls),
            "_sips._tcp.example.com"
        );
    }

    #[tokio::test]
    async fn a_literal_address_needs_no_lookup() {
        let dns =
            SipResolver::new(Some("127.0.0.1:9".parse().expect("as written"))).expect("a resolver");
        let hops = dns.hops("192.0.2.7", None, None, 0).await.expect("literal");
        assert_eq!(hops[0].addr, "192.0.2.7:5060".parse().expect("as written"));
        let hops = dns
            .hops("[2001:db8::1]", Some(5080), Some(Transport::Tcp), 0)
            .await
            .expect("literal");
        assert_eq!(
            hops[0].addr,
            "[2001:db8::1]:5080".parse().expect("as written")
        );
        assert_eq!(hops[0].transport, Transport::Tcp);
        // Section 19.1.2: TLS's default port is 5061.
        let hops = dns
            .hops("192.0.2.7", None, Some(Transport::Tls), 0)
            .await
            .expect("literal");
        assert_eq!(hops[0].addr, "192.0.2.7:5061".parse().expect("as written"));
    }
}
