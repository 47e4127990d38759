//! Placing a dialled leg: where its INVITE goes ([`resolve`]) and how its SIP
//! events find the call's task ([`SipRoutes`]).
//!
//! - `tel` numbers go out through the carriers (providers with a `hostname`,
//!   oldest first; attempt N takes the N-th, after the ones before failed), the
//!   number wrapped in the provider's `tech_prefix` and `tech_postfix`, with its
//!   `tech_headers` and its digest credentials for a 401/407.
//! - `sip` addresses (`sip:user@host[:port]`) are dialled directly, for a
//!   customer's own SIP endpoints, under the same rule as outbound HTTP: loopback,
//!   link-local, private and our own addresses are refused unless
//!   `--allow-outbound-to` allows them.
//! - Other destination types come with later versions and fail the leg saying so.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use sip_stack::msg::{Scheme, Uri};
use sip_stack::transaction::Transport;
use sip_stack::ua::{CallRef, Credentials, OutgoingCall, UaEvent};
use tokio::sync::mpsc;

use super::core::{Dial, DialError};

/// How long a next hop may stay silent (not even 100 Trying) before the call
/// tries its next route.
pub const NO_REPLY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(4);

/// Which call task each SIP dialog's events go to: the dispatcher reads it for
/// every event; a call adds the legs it dials, from the user agent's own thread
/// as the INVITE is made, so the leg's first response cannot arrive before its
/// route.
#[derive(Debug, Clone, Default)]
pub struct SipRoutes(Arc<Mutex<HashMap<CallRef, mpsc::UnboundedSender<UaEvent>>>>);

impl SipRoutes {
    /// Sends the dialog's events to `to` from now on.
    pub fn insert(&self, call: CallRef, to: mpsc::UnboundedSender<UaEvent>) {
        match self.0.lock() {
            Ok(mut map) => map.insert(call, to),
            Err(poisoned) => poisoned.into_inner().insert(call, to),
        };
    }

    /// Where the dialog's events go.
    pub fn get(&self, call: CallRef) -> Option<mpsc::UnboundedSender<UaEvent>> {
        match self.0.lock() {
            Ok(map) => map.get(&call).cloned(),
            Err(poisoned) => poisoned.into_inner().get(&call).cloned(),
        }
    }

    /// Forgets the dialog (after its last event).
    pub fn remove(&self, call: CallRef) {
        match self.0.lock() {
            Ok(mut map) => map.remove(&call),
            Err(poisoned) => poisoned.into_inner().remove(&call),
        };
    }
}

/// What resolving a destination needs.
pub struct DialContext<'a> {
    /// The carriers, in the order they are tried.
    pub carriers: &'a [api::store::providers::Provider],
    /// Finds carriers' servers by name (RFC 3263).
    pub dns: &'a super::dns::SipResolver,
    /// Where direct SIP calls may go.
    pub policy: &'a api::outbound::OutboundPolicy,
    /// Our SIP address (the From's host).
    pub local: SocketAddr,
}

/// The INVITE for `dial`: its target, next hop, caller ID headers and credentials.
pub async fn resolve(ctx: &DialContext<'_>, dial: &Dial) -> Result<OutgoingCall, DialError> {
    let kind = dial.destination.kind.as_str();
    let target = dial.destination.target.trim();
    let (uri, next_hop, transport, credentials, mut headers) = match kind {
        "tel" | "" => {
            let (provider, hop) = carrier_hop(ctx, dial, target).await?;
            let number = format!(
                "{}{}{}",
                provider.tech_prefix, target, provider.tech_postfix
            );
            let credentials = (!provider.auth_username.is_empty()).then(|| Credentials {
                username: provider.auth_username.clone(),
                password: provider.auth_password.clone(),
            });
            let headers: Vec<(String, String)> = provider
                .tech_headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            // The Request-URI names the carrier as configured (RFC 3263: the
            // lookup chose where it goes, not what it says).
            let host = match super::dns::carrier_port(provider) {
                Some(port) => host_port(&provider.hostname, port),
                None => provider.hostname.clone(),
            };
            (
                format!("sip:{number}@{host}"),
                hop.addr,
                hop.transport,
                credentials,
                headers,
            )
        }
        "sip" if dial.attempt > 0 => return Err(DialError::Exhausted(target.to_owned())),
        "sip" => {
            let text = if target.starts_with("sip:") || target.starts_with("sips:") {
                target.to_owned()
            } else {
                format!("sip:{target}")
            };
            let parsed = Uri::parse(&text)
                .map_err(|e| DialError::NoRoute(format!("{target}: not a SIP address ({e})")))?;
            let transport = uri_transport(&parsed)
                .map_err(|what| DialError::NoRoute(format!("{target}: {what}")))?;
            let port = parsed.port.unwrap_or(super::dns::default_port(transport));
            let host = parsed
                .host
                .as_ref()
                .map(ToString::to_string)
                .ok_or_else(|| DialError::NoRoute(format!("{target}: no host")))?;
            // The same rule as outbound HTTP: only addresses the policy permits.
            let next_hop = match ctx.policy.resolve(&host, port).await {
                Ok(found) => found[0],
                Err(api::outbound::OutboundError::Internal(what)) => {
                    return Err(DialError::Refused(what));
                }
                Err(e) => return Err(DialError::NoRoute(format!("{target}: {e}"))),
            };
            (text, next_hop, transport, None, Vec::new())
        }
        other => return Err(DialError::Unsupported(other.to_owned())),
    };
    let host = ctx.local;
    let from = if dial.anonymous {
        // RFC 3325 section 9.3 / RFC 3323: the From says nothing; the identity goes
        // in P-Asserted-Identity for the trusted carrier, with Privacy: id.
        headers.push((
            "P-Asserted-Identity".into(),
            format!("<sip:{}@{host}>", dial.caller_id),
        ));
        headers.push(("Privacy".into(), "id".into()));
        "\"Anonymous\" <sip:anonymous@anonymous.invalid>".to_owned()
    } else if dial.caller_name.is_empty() {
        format!("<sip:{}@{host}>", dial.caller_id)
    } else {
        format!(
            "\"{}\" <sip:{}@{host}>",
            dial.caller_name.replace('"', ""),
            dial.caller_id
        )
    };
    headers.push(("VB-CALL-ID".into(), dial.call_id.clone()));
    Ok(OutgoingCall {
        target: uri,
        from,
        to: None,
        next_hop,
        via_proxy: false,
        transport,
        credentials,
        sdp: Some(dial.sdp.clone()),
        headers,
        max_forwards: dial.max_forwards,
        // A next hop silent for this long is given up for the next route, well
        // before timer B (32 s).
        no_reply_timeout: Some(NO_REPLY_TIMEOUT),
    })
}

/// The transport a SIP address asks for (RFC 3261 section 19.1.1): TLS for a
/// `sips:` URI or `transport=tls`, TCP for `transport=tcp`, else UDP.
fn uri_transport(uri: &Uri<'_>) -> Result<Transport, String> {
    let named = uri.params.value("transport").map(str::to_ascii_lowercase);
    match (uri.scheme, named.as_deref()) {
        (Scheme::Sips, None | Some("tls" | "tcp")) | (_, Some("tls")) => Ok(Transport::Tls),
        (Scheme::Sips, Some(other)) => Err(format!(
            "a sips: address must go over TLS, not transport={other}"
        )),
        (_, Some("tcp")) => Ok(Transport::Tcp),
        (_, None | Some("udp")) => Ok(Transport::Udp),
        (_, Some(other)) => Err(format!(
            "transport={other} is not one we speak (udp, tcp, tls)"
        )),
    }
}

/// `host:port`, bracketing an IPv6 address.
fn host_port(host: &str, port: u16) -> String {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]:{port}"),
        _ => format!("{host}:{port}"),
    }
}

/// The carrier and hop for `dial.attempt`: every carrier's hops (RFC 3263: its
/// SRV targets' addresses, or its one address) in the carriers' order, so each
/// failover tries the next server of a carrier, then the next carrier. A carrier
/// whose name does not resolve is passed over.
async fn carrier_hop<'a>(
    ctx: &DialContext<'a>,
    dial: &Dial,
    target: &str,
) -> Result<(&'a api::store::providers::Provider, super::dns::Hop), DialError> {
    let seed = dial.call_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut skip = dial.attempt as usize;
    let mut unresolved = Vec::new();
    for provider in ctx.carriers {
        let hops = match ctx.dns.carrier_hops(provider, seed).await {
            Ok(hops) => hops,
            Err(e) => {
                unresolved.push(e);
                continue;
            }
        };
        if let Some(hop) = hops.get(skip) {
            return Ok((provider, *hop));
        }
        skip -= hops.len();
    }
    if dial.attempt == 0 {
        let why = if unresolved.is_empty() {
            "no route or carrier takes it".to_owned()
        } else {
            unresolved.join("; ")
        };
        return Err(DialError::NoRoute(format!("{target} ({why})")));
    }
    Err(DialError::Exhausted(target.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::store::calls::Address;

    fn dial(kind: &str, target: &str) -> Dial {
        Dial {
            destination: Address {
                kind: kind.into(),
                target: target.into(),
                target_name: String::new(),
            },
            caller_id: "+15550001111".into(),
            caller_name: "Alice".into(),
            anonymous: false,
            sdp: "v=0\r\n".into(),
            call_id: "c-1".into(),
            max_forwards: 69,
            attempt: 0,
        }
    }

    #[test]
    fn a_sip_address_names_its_transport() {
        let t = |text: &str| uri_transport(&Uri::parse(text).expect("a URI"));
        assert_eq!(t("sip:a@example.com"), Ok(Transport::Udp));
        assert_eq!(t("sip:a@example.com;transport=TCP"), Ok(Transport::Tcp));
        assert_eq!(t("sip:a@example.com;transport=tls"), Ok(Transport::Tls));
        assert_eq!(t("sips:a@example.com"), Ok(Transport::Tls));
        assert!(t("sips:a@example.com;transport=udp").is_err());
        assert!(t("sip:a@example.com;transport=sctp").is_err());
    }

    fn carrier() -> api::store::providers::Provider {
        api::store::providers::Provider {
            hostname: "192.0.2.50".into(),
            port: 5080,
            transport: "udp".into(),
            tech_prefix: "99".into(),
            tech_postfix: "#1".into(),
            tech_headers: [("X-Account".to_owned(), "42".to_owned())].into(),
            auth_username: "trunk".into(),
            auth_password: "secret".into(),
            id: String::new(),
            customer_id: String::new(),
            kind: "sip".into(),
            allowed_sources: Vec::new(),
            max_concurrent_calls: 0,
            health_status: "unknown".into(),
            health_checked_at: None,
            name: String::new(),
            detail: String::new(),
            tm_create: String::new(),
            tm_update: None,
            tm_delete: None,
        }
    }

    fn ctx<'a>(
        carriers: &'a [api::store::providers::Provider],
        policy: &'a api::outbound::OutboundPolicy,
    ) -> DialContext<'a> {
        static DNS: std::sync::OnceLock<crate::call::dns::SipResolver> = std::sync::OnceLock::new();
        DialContext {
            carriers,
            dns: DNS.get_or_init(|| {
                crate::call::dns::SipResolver::new(Some("127.0.0.1:9".parse().expect("as written")))
                    .expect("a resolver")
            }),
            policy,
            local: "203.0.113.1:5060".parse().expect("as written"),
        }
    }

    #[tokio::test]
    async fn a_number_goes_to_the_carrier_wrapped_in_its_prefix_and_postfix() {
        let carriers = [carrier()];
        let policy = Default::default();
        let out = resolve(&ctx(&carriers, &policy), &dial("tel", "+15552223333"))
            .await
            .expect("as written");
        assert_eq!(out.target, "sip:99+15552223333#1@192.0.2.50:5080");
        assert_eq!(out.next_hop, "192.0.2.50:5080".parse().expect("as written"));
        assert_eq!(out.from, "\"Alice\" <sip:+15550001111@203.0.113.1:5060>");
        assert_eq!(out.max_forwards, 69);
        assert_eq!(out.credentials.expect("as written").username, "trunk");
        assert!(out.headers.contains(&("X-Account".into(), "42".into())));
        assert!(out.headers.contains(&("VB-CALL-ID".into(), "c-1".into())));
    }

    #[tokio::test]
    async fn each_attempt_takes_the_next_carrier_until_none_is_left() {
        let second = api::store::providers::Provider {
            hostname: "192.0.2.60".into(),
            ..carrier()
        };
        let carriers = [carrier(), second];
        let policy = Default::default();
        let next = Dial {
            attempt: 1,
            ..dial("tel", "+1555")
        };
        let out = resolve(&ctx(&carriers, &policy), &next)
            .await
            .expect("the second carrier");
        assert_eq!(out.next_hop, "192.0.2.60:5080".parse().expect("as written"));
        let past = Dial {
            attempt: 2,
            ..dial("tel", "+1555")
        };
        let err = resolve(&ctx(&carriers, &policy), &past)
            .await
            .expect_err("none left");
        assert_eq!(err, DialError::Exhausted("+1555".into()));
    }

    #[tokio::test]
    async fn a_number_without_a_carrier_has_no_route() {
        let policy = Default::default();
        let err = resolve(&ctx(&[], &policy), &dial("tel", "+1555"))
            .await
            .expect_err("refused");
        assert!(matches!(err, DialError::NoRoute(_)), "{err}");
    }

    #[tokio::test]
    async fn a_sip_address_inside_is_refused_unless_allowed() {
        let policy = api::outbound::OutboundPolicy::default();
        let err = resolve(&ctx(&[], &policy), &dial("sip", "sip:bob@127.0.0.1:5090"))
            .await
            .expect_err("refused");
        assert_eq!(err, DialError::Refused("127.0.0.1".into()));
        let allowed = api::outbound::OutboundPolicy {
            allowed: vec!["127.0.0.0/8".parse().expect("as written")],
            own: Vec::new(),
        };
        let out = resolve(&ctx(&[], &allowed), &dial("sip", "bob@127.0.0.1:5090"))
            .await
            .expect("as written");
        assert_eq!(out.target, "sip:bob@127.0.0.1:5090");
        assert_eq!(out.next_hop, "127.0.0.1:5090".parse().expect("as written"));
    }

    #[tokio::test]
    async fn anonymous_hides_the_from_and_asserts_the_identity() {
        let carriers = [carrier()];
        let policy = Default::default();
        let out = resolve(
            &ctx(&carriers, &policy),
            &Dial {
                anonymous: true,
                ..dial("tel", "+1555")
            },
        )
        .await
        .expect("as written");
        assert!(out.from.contains("anonymous.invalid"));
        assert!(out.headers.contains(&(
            "P-Asserted-Identity".into(),
            "<sip:+15550001111@203.0.113.1:5060>".into()
        )));
        assert!(out.headers.contains(&("Privacy".into(), "id".into())));
    }

    #[tokio::test]
    async fn an_agent_is_not_available_yet() {
        let policy = Default::default();
        let err = resolve(&ctx(&[], &policy), &dial("agent", "a-1"))
            .await
            .expect_err("refused");
        assert_eq!(
            err.to_string(),
            "destination type agent is not available in this version"
        );
    }
}
