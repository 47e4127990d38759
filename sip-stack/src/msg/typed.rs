//! The headers the stack reads, parsed on demand and borrowed from the message:
//! Via (RFC 3261 section 20.42), name-addr headers (From, To, Contact, Route, ...),
//! and CSeq (section 20.16).

use std::borrow::Cow;

use super::error::ParseError;
use super::grammar::{is_token, trim_wsp, unquote};
use super::params::Params;
use super::uri::{Host, Uri, split_host_port};

/// One Via element: `SIP/2.0/UDP host:port;branch=...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    /// The transport: UDP, TCP, TLS, WS, ...
    pub transport: &'a str,
    /// The sent-by host.
    pub host: Host<'a>,
    /// The sent-by port.
    pub port: Option<u16>,
    /// The via-params.
    pub params: Params<'a>,
}

impl<'a> Via<'a> {
    /// Parses one Via element (SWS is allowed around `/` and `:`).
    pub fn parse(text: &'a str) -> Result<Self, ParseError> {
        let bad = |why: String| ParseError::BadHeader("Via", why);
        let (head, params) = text.split_once(';').unwrap_or((text, ""));
        let mut parts = head.splitn(3, '/');
        let (name, version, rest) = match (parts.next(), parts.next(), parts.next()) {
            (Some(n), Some(v), Some(r)) => (trim_wsp(n), trim_wsp(v), trim_wsp(r)),
            _ => return Err(bad(format!("expected SIP/2.0/TRANSPORT host in {text:?}"))),
        };
        if !name.eq_ignore_ascii_case("SIP") || version != "2.0" {
            return Err(bad(format!("unknown protocol {name}/{version}")));
        }
        let split = rest
            .find([' ', '\t'])
            .ok_or_else(|| bad(format!("no sent-by in {text:?}")))?;
        let transport = &rest[..split];
        if !is_token(transport) {
            return Err(bad(format!("bad transport {transport:?}")));
        }
        let sent_by = trim_wsp(&rest[split..]);
        let (host, port) = if sent_by.starts_with('[') {
            split_host_port(sent_by).map_err(bad)?
        } else {
            match sent_by.rsplit_once(':') {
                Some((h, p)) => {
                    let p = trim_wsp(p);
                    let port = p
                        .parse::<u16>()
                        .ok()
                        .filter(|p| *p != 0)
                        .ok_or_else(|| bad(format!("bad port {p:?}")))?;
                    (trim_wsp(h), Some(port))
                }
                None => (sent_by, None),
            }
        };
        Ok(Via {
            transport,
            host: Host::parse(host).map_err(bad)?,
            port,
            params: Params(params),
        })
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&'a str> {
        self.params.value("branch")
    }

    /// The `received` parameter (RFC 3261 section 18.2.1).
    pub fn received(&self) -> Option<&'a str> {
        self.params.value("received")
    }

    /// The `rport` parameter (RFC 3581): `Some(None)` when asked for, `Some(Some(p))`
    /// when filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|p| p.parse().ok()))
    }
}

/// A name-addr or addr-spec with header parameters: From, To, Contact, Route, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// The display name as written (quoted or not), if any.
    pub display_raw: Option<&'a str>,
    /// The URI text.
    pub uri: &'a str,
    /// The header parameters (tag, expires, q, ...).
    pub params: Params<'a>,
}

impl<'a> NameAddr<'a> {
    /// Parses `"Name" <uri>;params`, `Name <uri>;params` or `uri;params`.
    pub fn parse(text: &'a str) -> Result<Self, String> {
        let text = trim_wsp(text);
        let open = find_unquoted(text, b'<');
        let (display_raw, uri, after) = match open {
            Some(open) => {
                let close = text[open..]
                    .find('>')
                    .map(|c| open + c)
                    .ok_or_else(|| format!("no '>' in {text:?}"))?;
                let display = trim_wsp(&text[..open]);
                let inner = &text[open + 1..close];
                if inner != trim_wsp(inner) {
                    // RFC 4475 section 3.1.2.14: no LWS inside the brackets.
                    return Err(format!("white space inside <> in {text:?}"));
                }
                (
                    Some(display).filter(|d| !d.is_empty()),
                    inner,
                    &text[close + 1..],
                )
            }
            None => {
                // addr-spec: parameters after ';' belong to the header, not the URI
                // (RFC 3261 section 20.10).
                let (uri, params) = text.split_once(';').map_or((text, ""), |(u, p)| (u, p));
                if uri.contains(['?', ',']) {
                    // Section 20: such a URI must be enclosed in <> (RFC 4475
                    // section 3.1.2.13).
                    return Err(format!("a URI with '?' or ',' must be in <>: {text:?}"));
                }
                (
                    None,
                    trim_wsp(uri),
                    if params.is_empty() {
                        ""
                    } else {
                        &text[uri.len()..]
                    },
                )
            }
        };
        if let Some(d) = display_raw {
            if d.starts_with('"') {
                if d.len() < 2 || !d.ends_with('"') {
                    return Err(format!("unterminated quoted display name in {text:?}"));
                }
            } else if !d.split([' ', '\t']).all(|w| w.is_empty() || is_token(w)) {
                // An unquoted display name is tokens (section 25.1; RFC 4475
                // section 3.1.2.15).
                return Err(format!("display name {d:?} must be quoted"));
            }
        }
        let after = trim_wsp(after);
        let params = match after.strip_prefix(';') {
            Some(p) => p,
            None if after.is_empty() => "",
            None => return Err(format!("unexpected {after:?} after the address")),
        };
        if uri.is_empty() {
            return Err("empty address".to_owned());
        }
        // SIP, SIPS and tel URIs are checked in full; any other scheme is allowed in
        // From, To and Contact (RFC 4475 section 3.3.4) when it is a well-formed
        // absolute URI.
        let sip_family = ["sip:", "sips:", "tel:"]
            .iter()
            .any(|scheme| starts_with_scheme(uri, scheme));
        if let Err(e) = Uri::parse(uri)
            && (sip_family || !super::uri::is_absolute_uri(uri))
        {
            return Err(e);
        }
        Ok(NameAddr {
            display_raw,
            uri,
            params: Params(params),
        })
    }

    /// The display name without quotes, if any.
    pub fn display(&self) -> Option<Cow<'a, str>> {
        self.display_raw.map(unquote)
    }

    /// The parsed URI (checked when the header was parsed).
    pub fn parsed_uri(&self) -> Result<Uri<'a>, String> {
        Uri::parse(self.uri)
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&'a str> {
        self.params.value("tag")
    }
}

/// Whether `uri` starts with `scheme` (which ends with ':'), ignoring case.
fn starts_with_scheme(uri: &str, scheme: &str) -> bool {
    uri.as_bytes()
        .get(..scheme.len())
        .is_some_and(|b| b.eq_ignore_ascii_case(scheme.as_bytes()))
}

/// The position of byte `b` outside double quotes.
fn find_unquoted(text: &str, b: u8) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in text.bytes().enumerate() {
        match c {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            c if c == b && !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// `CSeq: 4711 INVITE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// The sequence number (below 2^31, RFC 3261 section 8.1.1.5).
    pub seq: u32,
    /// The method.
    pub method: &'a str,
}

impl<'a> CSeq<'a> {
    /// Parses `number method`.
    pub fn parse(text: &'a str) -> Result<Self, String> {
        let text = trim_wsp(text);
        let split = text
            .find([' ', '\t'])
            .ok_or_else(|| format!("expected 'number METHOD', got {text:?}"))?;
        let (num, method) = (&text[..split], trim_wsp(&text[split..]));
        let seq = num
            .parse::<u32>()
            .ok()
            .filter(|n| *n < 1 << 31)
            .ok_or_else(|| format!("bad sequence number {num:?}"))?;
        if !is_token(method) {
            return Err(format!("bad method {method:?}"));
        }
        Ok(CSeq { seq, method })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_with_spaces_rport_and_ipv6() {
        let v =
            Via::parse("SIP / 2.0 / UDP 192.0.2.1 : 5060 ;branch=z9hG4bK77;rport").expect("valid");
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, Host::V4("192.0.2.1".parse().expect("v4")));
        assert_eq!(v.port, Some(5060));
        assert_eq!(v.branch(), Some("z9hG4bK77"));
        assert_eq!(v.rport(), Some(None));
        let v = Via::parse(
            "SIP/2.0/TCP [2001:db8::9:1]:5061;branch=z9hG4bKx;received=[2001:db8::9:255]",
        )
        .expect("valid");
        assert_eq!(v.port, Some(5061));
        assert_eq!(v.received(), Some("[2001:db8::9:255]"));
        assert!(Via::parse("SIP/2.0/UDP").is_err());
        assert!(Via::parse("SIP/3.0/UDP host").is_err());
    }

    #[test]
    fn name_addr_forms() {
        let a = NameAddr::parse(
            r#""Bob \"B\" Smith" <sip:bob@biloxi.example.com;transport=tcp>;tag=456248"#,
        )
        .expect("valid");
        assert_eq!(a.display().as_deref(), Some(r#"Bob "B" Smith"#));
        assert_eq!(a.uri, "sip:bob@biloxi.example.com;transport=tcp");
        assert_eq!(a.tag(), Some("456248"));
        let a = NameAddr::parse("sip:alice@atlanta.example.com;tag=88sja8x").expect("valid");
        assert_eq!(a.uri, "sip:alice@atlanta.example.com");
        assert_eq!(a.tag(), Some("88sja8x"));
        let a = NameAddr::parse("Anonymous <sip:c8oqz84zk7z@privacy.org>").expect("valid");
        assert_eq!(a.display().as_deref(), Some("Anonymous"));
        assert!(NameAddr::parse("<sip:a@b").is_err());
        assert!(NameAddr::parse("<http://a>").is_ok_and(|a| a.parsed_uri().is_err()));
    }

    #[test]
    fn cseq() {
        assert_eq!(
            CSeq::parse("4711 INVITE"),
            Ok(CSeq {
                seq: 4711,
                method: "INVITE"
            })
        );
        assert!(CSeq::parse("INVITE").is_err());
        assert!(CSeq::parse("4294967296 INVITE").is_err());
        assert!(CSeq::parse("-1 INVITE").is_err());
    }
}
