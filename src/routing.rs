//! Where an incoming call goes (the original's route-manager and number-manager):
//! its source address must belong to a provider (else 403), and the number it calls,
//! read from the Request-URI (else the To), must be a live number (else 404), which
//! names the customer and the flow.
//!
//! Everything it reads is in memory ([`RoutingTable`]), reloaded by the API's own
//! writes (`api::RoutingCache`) and every minute, so routing an INVITE never waits
//! for the database.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use api::store::numbers::NumberRoute;
use sip_stack::msg::{Message, Uri};

use crate::admission::{LiveCall, Providers};

/// The routing data in memory: providers (shared with the SIP screen) and numbers.
#[derive(Debug, Default)]
pub struct RoutingTable {
    /// The providers, by source address.
    pub providers: Arc<Providers>,
    numbers: RwLock<Arc<HashMap<String, NumberRoute>>>,
    /// The providers calls can go out through (those with a `hostname`), oldest
    /// first.
    carriers: RwLock<Arc<Vec<api::store::providers::Provider>>>,
    /// The routes, lowest priority first.
    routes: RwLock<Arc<Vec<api::store::routes::Route>>>,
}

impl RoutingTable {
    /// The number's owner and call flow, if it is a live number.
    pub fn number(&self, number: &str) -> Option<NumberRoute> {
        let table = match self.numbers.read() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        table.get(number).cloned()
    }

    /// The providers calls can go out through (those with a `hostname`), oldest
    /// first: the ones the health probes ping.
    pub fn carriers(&self) -> Arc<Vec<api::store::providers::Provider>> {
        read(&self.carriers)
    }

    /// The providers `customer_id`'s call to `number` goes out through, in the
    /// order they are tried: the customer's routes whose target prefixes the
    /// number, lowest priority first, then the default routes the same way; with
    /// no route at all, every carrier, oldest first. Each provider once.
    pub fn dialroutes(
        &self,
        customer_id: &str,
        number: &str,
    ) -> Vec<api::store::providers::Provider> {
        let carriers = read(&self.carriers);
        let routes = read(&self.routes);
        if routes.is_empty() {
            return carriers.as_ref().clone();
        }
        let mut picked: Vec<api::store::providers::Provider> = Vec::new();
        for owner in [customer_id, ""] {
            for route in routes
                .iter()
                .filter(|r| r.customer_id == owner && r.matches(number))
            {
                if let Some(p) = carriers.iter().find(|p| p.id == route.provider_id)
                    && !picked.iter().any(|q| q.id == p.id)
                {
                    picked.push(p.clone());
                }
            }
        }
        picked
    }
}

impl api::RoutingCache for RoutingTable {
    fn reload(&self, data: api::RoutingData) {
        self.providers.load(&data.providers);
        let mut carriers: Vec<_> = data
            .providers
            .iter()
            .filter(|p| !p.hostname.is_empty() && p.tm_delete.is_none())
            .cloned()
            .collect();
        carriers.sort_by(|a, b| a.tm_create.cmp(&b.tm_create));
        write(&self.carriers, carriers);
        let mut routes = data.routes;
        routes.sort_by(|a, b| (a.priority, &a.tm_create).cmp(&(b.priority, &b.tm_create)));
        write(&self.routes, routes);
        let numbers: HashMap<String, NumberRoute> = data
            .numbers
            .into_iter()
            .map(|n| (n.number.clone(), n))
            .collect();
        match self.numbers.write() {
            Ok(mut t) => *t = Arc::new(numbers),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(numbers),
        }
    }
}

/// The table's current value (a writer that panicked left it whole: it is only
/// ever replaced).
fn read<T>(lock: &RwLock<Arc<T>>) -> Arc<T> {
    match lock.read() {
        Ok(t) => t.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

/// Replaces a table.
fn write<T>(lock: &RwLock<Arc<T>>, value: T) {
    match lock.write() {
        Ok(mut t) => *t = Arc::new(value),
        Err(poisoned) => *poisoned.into_inner() = Arc::new(value),
    }
}

/// The verdict on an incoming INVITE.
#[derive(Debug)]
pub enum Route {
    /// No provider admits the source address (403).
    UnknownSource,
    /// The number is not one of ours (404), or has no call flow.
    UnknownNumber {
        /// The number as read.
        number: String,
        /// Why it cannot be served.
        why: &'static str,
    },
    /// The provider has its `max_concurrent_calls` up (503 with Retry-After).
    ProviderBusy {
        /// The provider.
        provider_id: String,
    },
    /// The call goes to this customer's flow.
    Flow {
        /// The provider that admitted it.
        provider_id: String,
        /// The call, counted against the provider's limit while this lives.
        live: LiveCall,
        /// The number called, in E.164.
        number: String,
        /// The owner of the number.
        customer_id: String,
        /// The flow for the call.
        flow_id: String,
    },
}

/// The number a call is for: the Request-URI's user part (else the To's), without
/// visual separators (RFC 3966 section 5.1.1: `-`, `.`, `(`, `)`, spaces), with a
/// leading `+` added when it has none.
pub fn called_number(invite: &Message) -> Option<String> {
    let user_of = |text: &str| -> Option<String> { Uri::parse(text).ok()?.user.map(str::to_owned) };
    let user = invite
        .request_uri()
        .and_then(user_of)
        .or_else(|| invite.to().ok().and_then(|t| user_of(t.uri)))?;
    // A user part with parameters (RFC 3261 section 19.1.1: `;user=phone`, `;npdi`).
    let user = user.split(';').next().unwrap_or_default();
    if !user
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | '(' | ')' | ' '))
    {
        return None;
    }
    let digits: String = user
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect();
    let plain = digits.trim_start_matches('+');
    if plain.is_empty() || plain.contains('+') {
        return None;
    }
    Some(format!("+{plain}"))
}

/// Decides where the INVITE from `source` goes, from memory.
pub fn route(table: &RoutingTable, invite: &Message, source: IpAddr) -> Route {
    let (provider_id, live) = match table.providers.admit(source) {
        None => return Route::UnknownSource,
        Some(Err(provider_id)) => return Route::ProviderBusy { provider_id },
        Some(Ok(admitted)) => admitted,
    };
    let Some(number) = called_number(invite) else {
        return Route::UnknownNumber {
            number: invite.request_uri().unwrap_or_default().to_owned(),
            why: "no number in the Request-URI or To",
        };
    };
    let Some(found) = table.number(&number) else {
        return Route::UnknownNumber {
            number,
            why: "not a number of this platform",
        };
    };
    let Some(flow_id) = found.call_flow_id else {
        return Route::UnknownNumber {
            number,
            why: "the number has no call flow",
        };
    };
    Route::Flow {
        provider_id,
        live,
        number,
        customer_id: found.customer_id,
        flow_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn invite(ruri: &str, to: &str) -> Message {
        let text = format!(
            "INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <{to}>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        );
        sip_stack::msg::parse_datagram(Bytes::from(text)).expect("parses")
    }

    #[test]
    fn numbers_are_read_from_the_request_uri_with_separators_removed() {
        let n = |ruri: &str| called_number(&invite(ruri, "sip:x@y"));
        assert_eq!(
            n("sip:+15551230000@192.0.2.1").as_deref(),
            Some("+15551230000")
        );
        assert_eq!(
            n("sip:15551230000@192.0.2.1").as_deref(),
            Some("+15551230000")
        );
        assert_eq!(
            n("sip:+1-555-123.0000@h;user=phone").as_deref(),
            Some("+15551230000")
        );
        assert_eq!(n("sip:(555)1230000;npdi@h").as_deref(), Some("+5551230000"));
        assert_eq!(n("tel:+1-555-123-0000").as_deref(), Some("+15551230000"));
        assert_eq!(n("sip:alice@h"), None);
        assert_eq!(
            called_number(&invite("sip:h", "sip:+442071234567@h")).as_deref(),
            Some("+442071234567")
        );
    }

    fn carrier(id: &str, tm_create: &str) -> api::store::providers::Provider {
        api::store::providers::Provider {
            id: id.into(),
            customer_id: "admin".into(),
            kind: "sip".into(),
            hostname: format!("{id}.example"),
            port: 5060,
            transport: "udp".into(),
            tech_prefix: String::new(),
            tech_postfix: String::new(),
            tech_headers: Default::default(),
            allowed_sources: Vec::new(),
            auth_username: String::new(),
            auth_password: String::new(),
            max_concurrent_calls: 0,
            health_status: "unknown".into(),
            health_checked_at: None,
            name: id.into(),
            detail: String::new(),
            tm_create: tm_create.into(),
            tm_update: None,
            tm_delete: None,
        }
    }

    fn route(
        customer: &str,
        provider: &str,
        priority: i64,
        target: &str,
    ) -> api::store::routes::Route {
        api::store::routes::Route {
            id: format!("{customer}-{provider}-{priority}"),
            owner_id: "admin".into(),
            customer_id: customer.into(),
            provider_id: provider.into(),
            priority,
            target: target.into(),
            name: String::new(),
            detail: String::new(),
            tm_create: "2026-01-01".into(),
            tm_update: None,
            tm_delete: None,
        }
    }

    fn table(routes: Vec<api::store::routes::Route>) -> RoutingTable {
        let t = RoutingTable::default();
        api::RoutingCache::reload(
            &t,
            api::RoutingData {
                providers: vec![
                    carrier("old", "2026-01-01"),
                    carrier("new", "2026-02-01"),
                    carrier("eu", "2026-03-01"),
                ],
                numbers: Vec::new(),
                routes,
            },
        );
        t
    }

    fn ids(providers: Vec<api::store::providers::Provider>) -> Vec<String> {
        providers.into_iter().map(|p| p.id).collect()
    }

    #[test]
    fn without_routes_every_carrier_is_tried_oldest_first() {
        assert_eq!(
            ids(table(Vec::new()).dialroutes("c1", "+15551230000")),
            ["old", "new", "eu"]
        );
    }

    #[test]
    fn the_customer_s_routes_by_priority_and_prefix_come_before_the_defaults() {
        let t = table(vec![
            route("", "old", 1, "all"),
            route("c1", "new", 2, "1"),
            route("c1", "eu", 1, "44"),
            route("c1", "old", 5, "all"),
        ]);
        // A US number: c1's matching routes (new by prefix 1, old for all), then the
        // defaults (old again: once only).
        assert_eq!(ids(t.dialroutes("c1", "+15551230000")), ["new", "old"]);
        assert_eq!(ids(t.dialroutes("c1", "+442071234567")), ["eu", "old"]);
        // Another customer has only the defaults.
        assert_eq!(ids(t.dialroutes("c2", "+15551230000")), ["old"]);
    }

    #[test]
    fn routes_that_match_nothing_leave_no_carrier() {
        let t = table(vec![route("c1", "eu", 1, "44")]);
        assert!(t.dialroutes("c1", "+15551230000").is_empty());
    }
}
