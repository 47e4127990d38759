//! SIP, SIPS and tel URIs (RFC 3261 section 19.1, RFC 3966), with IPv4, IPv6
//! (RFC 5118) and host names, borrowed from the text.

use super::params::Params;

/// A URI's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `sip:`
    Sip,
    /// `sips:`
    Sips,
    /// `tel:`
    Tel,
}

/// A host: a name, an IPv4 address or an IPv6 reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host<'a> {
    /// A domain name.
    Name(&'a str),
    /// A dotted IPv4 address.
    V4(std::net::Ipv4Addr),
    /// An IPv6 address (written in brackets).
    V6(std::net::Ipv6Addr),
}

impl<'a> Host<'a> {
    /// Reads a host: `[v6]`, dotted v4, or a name of alphanumerics, `-` and `.`.
    pub fn parse(text: &'a str) -> Result<Self, String> {
        if let Some(inner) = text.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or_else(|| format!("unclosed IPv6 reference {text:?}"))?;
            // RFC 5118 section 4.10: RFC 3261's grammar let `2001:db8:::192.0.2.1`
            // through; be liberal and read it as the two-colon form.
            let fixed;
            let inner = if inner.contains(":::") {
                fixed = inner.replacen(":::", "::", 1);
                fixed.as_str()
            } else {
                inner
            };
            return inner
                .parse()
                .map(Host::V6)
                .map_err(|_| format!("bad IPv6 address {inner:?}"));
        }
        if text.bytes().all(|b| b.is_ascii_digit() || b == b'.') && text.contains('.') {
            return text
                .parse()
                .map(Host::V4)
                .map_err(|_| format!("bad IPv4 address {text:?}"));
        }
        let ok = !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && !text.starts_with(['-', '.']);
        if ok {
            Ok(Host::Name(text))
        } else {
            Err(format!("bad host {text:?}"))
        }
    }
}

impl std::fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// A parsed URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uri<'a> {
    /// The scheme.
    pub scheme: Scheme,
    /// The user part (for tel: the number), still %-escaped.
    pub user: Option<&'a str>,
    /// The password, if any (discouraged but legal).
    pub password: Option<&'a str>,
    /// The host (absent for tel:).
    pub host: Option<Host<'a>>,
    /// The port.
    pub port: Option<u16>,
    /// The `;` parameters.
    pub params: Params<'a>,
    /// The `?` headers, as written.
    pub headers: Option<&'a str>,
}

impl<'a> Uri<'a> {
    /// Parses `sip:user:pass@host:port;params?headers`, `sips:...` or `tel:number;params`.
    pub fn parse(text: &'a str) -> Result<Self, String> {
        let (scheme, rest) = text
            .split_once(':')
            .ok_or_else(|| format!("no scheme in {text:?}"))?;
        let scheme = if scheme.eq_ignore_ascii_case("sip") {
            Scheme::Sip
        } else if scheme.eq_ignore_ascii_case("sips") {
            Scheme::Sips
        } else if scheme.eq_ignore_ascii_case("tel") {
            Scheme::Tel
        } else {
            return Err(format!("unsupported URI scheme {scheme:?}"));
        };
        if rest.bytes().any(|b| b <= b' ') {
            return Err(format!("white space in URI {text:?}"));
        }
        if scheme == Scheme::Tel {
            let (rest, headers) = match rest.split_once('?') {
                Some((r, h)) => (r, Some(h)),
                None => (rest, None),
            };
            let (number, params) = rest.split_once(';').unwrap_or((rest, ""));
            if number.is_empty() {
                return Err("empty tel number".to_owned());
            }
            return Ok(Uri {
                scheme,
                user: Some(number),
                password: None,
                host: None,
                port: None,
                params: Params(params),
                headers,
            });
        }
        // The user part may contain ';' and '?' (RFC 4475 section 3.1.1.2), and the
        // headers cannot hold an unescaped '@', so find the '@' first.
        let (userinfo, after_at) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (hostport_params, headers) = match after_at.split_once('?') {
            Some((r, h)) => (r, Some(h)),
            None => (after_at, None),
        };
        let (hostport, params) = hostport_params
            .split_once(';')
            .unwrap_or((hostport_params, ""));
        let (user, password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((user, pass)) => (Some(user), Some(pass)),
                None => (Some(u), None),
            },
            None => (None, None),
        };
        if user.is_some_and(str::is_empty) {
            return Err(format!("empty user part in {text:?}"));
        }
        let (host, port) = split_host_port(hostport)?;
        Ok(Uri {
            scheme,
            user,
            password,
            host: Some(Host::parse(host)?),
            port,
            params: Params(params),
            headers,
        })
    }
}

/// Whether `text` is an absolute URI of any scheme (RFC 3986 section 3.1:
/// `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"` and something after, without
/// white space), for the headers where RFC 3261 allows any scheme.
pub fn is_absolute_uri(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once(':') else {
        return false;
    };
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        && !rest.is_empty()
        && !rest.bytes().any(|b| b <= b' ')
}

/// Splits `host[:port]`, minding IPv6 brackets.
pub fn split_host_port(text: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if text.starts_with('[') {
        match text.find(']') {
            Some(end) => (&text[..=end], text[end + 1..].strip_prefix(':')),
            None => return Err(format!("unclosed IPv6 reference {text:?}")),
        }
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("bad port {p:?}"))
        })
        .transpose()?;
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uri_parts() {
        let u = Uri::parse("sip:alice:secret@example.com:5070;transport=tcp;lr?subject=x")
            .expect("valid");
        assert_eq!(u.scheme, Scheme::Sip);
        assert_eq!((u.user, u.password), (Some("alice"), Some("secret")));
        assert_eq!(u.host, Some(Host::Name("example.com")));
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.params.value("transport"), Some("tcp"));
        assert!(u.params.has("lr"));
        assert_eq!(u.headers, Some("subject=x"));
    }

    #[test]
    fn ipv6_and_ipv4_hosts() {
        let u = Uri::parse("sip:[2001:db8::10]:5060").expect("valid");
        assert_eq!(u.host, Some(Host::V6("2001:db8::10".parse().expect("v6"))));
        assert_eq!(u.port, Some(5060));
        let u = Uri::parse("sips:+15551234@192.0.2.4").expect("valid");
        assert_eq!(u.host, Some(Host::V4("192.0.2.4".parse().expect("v4"))));
        assert!(Uri::parse("sip:[2001:db8::10:5060").is_err());
        assert!(Uri::parse("sip:user@300.1.1.1").is_err());
    }

    #[test]
    fn user_part_with_question_mark_and_three_colon_ipv6() {
        let u = Uri::parse("sip:a?b;c:pw@example.com?Route=%3Csip:x%3E").expect("valid");
        assert_eq!((u.user, u.password), (Some("a?b;c"), Some("pw")));
        assert_eq!(u.headers, Some("Route=%3Csip:x%3E"));
        let u = Uri::parse("sip:user@[2001:db8:::192.0.2.1]").expect("tolerated");
        assert_eq!(
            u.host,
            Some(Host::V6("2001:db8::192.0.2.1".parse().expect("v6")))
        );
        assert!(is_absolute_uri("isbn:2983792873"));
        assert!(!is_absolute_uri("<sip:a@b>"));
        assert!(!is_absolute_uri("\"Mr <sip:a@b>"));
    }

    #[test]
    fn tel_uri() {
        let u = Uri::parse("tel:+1-201-555-0123;phone-context=example.com").expect("valid");
        assert_eq!(u.scheme, Scheme::Tel);
        assert_eq!(u.user, Some("+1-201-555-0123"));
        assert_eq!(u.params.value("phone-context"), Some("example.com"));
    }

    #[test]
    fn refuses_bad_uris() {
        assert!(Uri::parse("http://x").is_err());
        assert!(Uri::parse("sip:@host").is_err());
        assert!(Uri::parse("sip:host:0").is_err());
        assert!(Uri::parse("sip:a b@host").is_err());
    }
}
