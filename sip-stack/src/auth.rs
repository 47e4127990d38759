//! Digest authentication (RFC 8760, on RFC 7616's scheme): MD5 and SHA-256 with
//! `qop=auth`, as the challenger (401/407 with stateless nonces that expire, and
//! `stale=true` for an expired one) and as the client answering a carrier.
//!
//! Nonces carry their own issue time and an HMAC of it, so verifying one needs no
//! table of issued nonces and survives restarts of nothing but the secret.

use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::{Digest, Sha256};

use crate::msg::grammar::{split_list, unquote};

/// The digest algorithms of RFC 8760 the stack speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// MD5 (RFC 2617; still what most SIP peers use).
    Md5,
    /// SHA-256 (RFC 8760).
    Sha256,
}

impl Algorithm {
    fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_uppercase().as_str() {
            "" | "MD5" => Some(Self::Md5),
            "SHA-256" => Some(Self::Sha256),
            _ => None,
        }
    }

    /// The name in headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Sha256 => "SHA-256",
        }
    }

    fn hash(self, data: &str) -> String {
        match self {
            Self::Md5 => hex::encode(Md5::digest(data.as_bytes())),
            Self::Sha256 => hex::encode(Sha256::digest(data.as_bytes())),
        }
    }
}

/// The parameters of a `Digest` challenge or credentials header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestParams {
    params: Vec<(String, String)>,
}

impl DigestParams {
    /// Parses `Digest k=v, k="v", ...`; `None` when the scheme is not Digest.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let (scheme, rest) = value.split_once([' ', '\t'])?;
        if !scheme.eq_ignore_ascii_case("digest") {
            return None;
        }
        let params = split_list(rest)
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), unquote(v).into_owned()))
            .collect();
        Some(Self { params })
    }

    /// A parameter's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The response a client computes (RFC 7616 section 3.4.1), with `qop=auth` when
/// `qop` is given, else the RFC 2069 form.
#[allow(clippy::too_many_arguments)]
fn response(
    alg: Algorithm,
    username: &str,
    realm: &str,
    password: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    qop: Option<(&str, &str)>,
) -> String {
    let ha1 = alg.hash(&format!("{username}:{realm}:{password}"));
    let ha2 = alg.hash(&format!("{method}:{uri}"));
    match qop {
        Some((nc, cnonce)) => alg.hash(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")),
        None => alg.hash(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

/// Why credentials were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No credentials: challenge.
    #[error("no credentials")]
    Missing,
    /// Credentials that do not parse or lack a field.
    #[error("malformed credentials: {0}")]
    Malformed(&'static str),
    /// For another realm.
    #[error("credentials for another realm")]
    WrongRealm,
    /// A nonce we did not issue.
    #[error("a nonce we did not issue")]
    ForgedNonce,
    /// A nonce past its lifetime: challenge again with `stale=true`.
    #[error("the nonce expired")]
    Stale,
    /// An unknown user or a wrong password (not told apart).
    #[error("wrong username or password")]
    Denied,
}

/// The server side: issues challenges, verifies credentials.
#[derive(Clone)]
pub struct Challenger {
    realm: String,
    secret: [u8; 32],
    lifetime_secs: u64,
    algorithms: Vec<Algorithm>,
}

impl std::fmt::Debug for Challenger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Challenger")
            .field("realm", &self.realm)
            .field("lifetime_secs", &self.lifetime_secs)
            .finish()
    }
}

impl Challenger {
    /// A challenger for `realm` whose nonces live `lifetime_secs`, signed with a fresh
    /// random secret.
    pub fn new(realm: impl Into<String>, lifetime_secs: u64) -> Self {
        Self {
            realm: realm.into(),
            secret: rand::random(),
            lifetime_secs,
            algorithms: vec![Algorithm::Md5, Algorithm::Sha256],
        }
    }

    /// Offers these algorithms, in this order. The default is MD5 then SHA-256:
    /// RFC 8760 asks for the preferred one first, but many peers read only the first
    /// challenge and speak only MD5 (SIPp 3.6.1 among them), so the default puts
    /// interoperation first. `[Sha256, Md5]` follows the RFC's order.
    pub fn with_algorithms(mut self, algorithms: &[Algorithm]) -> Self {
        if !algorithms.is_empty() {
            self.algorithms = algorithms.to_vec();
        }
        self
    }

    fn sign(&self, issued: u64) -> String {
        // HMAC takes keys of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .expect("HMAC-SHA256 takes any key length");
        mac.update(&issued.to_be_bytes());
        let tag = mac.finalize().into_bytes();
        format!("{issued:x}.{}", hex::encode(&tag[..16]))
    }

    /// The challenge header values to send (401 `WWW-Authenticate` or 407
    /// `Proxy-Authenticate`), one per algorithm offered.
    pub fn challenges(&self, now_secs: u64, stale: bool) -> Vec<String> {
        let nonce = self.sign(now_secs);
        self.algorithms
            .iter()
            .map(|&alg| {
                let mut v = format!(
                    "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"",
                    self.realm,
                    alg.as_str()
                );
                if stale {
                    v.push_str(", stale=true");
                }
                v
            })
            .collect()
    }

    /// Checks credentials (an `Authorization` or `Proxy-Authorization` value) of a
    /// request with `method`; `password` looks a user's password up. Returns the
    /// username.
    pub fn verify(
        &self,
        now_secs: u64,
        method: &str,
        credentials: Option<&str>,
        password: impl Fn(&str) -> Option<String>,
    ) -> Result<String, AuthError> {
        let creds = DigestParams::parse(credentials.ok_or(AuthError::Missing)?)
            .ok_or(AuthError::Malformed("not Digest"))?;
        let field = |name: &'static str| creds.get(name).ok_or(AuthError::Malformed(name));
        let username = field("username")?;
        if field("realm")? != self.realm {
            return Err(AuthError::WrongRealm);
        }
        let nonce = field("nonce")?;
        let issued = nonce
            .split('.')
            .next()
            .and_then(|t| u64::from_str_radix(t, 16).ok())
            .ok_or(AuthError::ForgedNonce)?;
        if self.sign(issued) != nonce {
            return Err(AuthError::ForgedNonce);
        }
        if now_secs.saturating_sub(issued) > self.lifetime_secs {
            return Err(AuthError::Stale);
        }
        let alg = Algorithm::parse(creds.get("algorithm").unwrap_or(""))
            .ok_or(AuthError::Malformed("algorithm"))?;
        let uri = field("uri")?;
        let qop = match creds.get("qop") {
            Some("auth") => Some((field("nc")?, field("cnonce")?)),
            Some(_) => return Err(AuthError::Malformed("qop")),
            None => None,
        };
        let given = field("response")?;
        let pass = password(username).ok_or(AuthError::Denied)?;
        let expected = response(alg, username, &self.realm, &pass, method, uri, nonce, qop);
        if constant_time_eq(expected.as_bytes(), given.to_ascii_lowercase().as_bytes()) {
            Ok(username.to_owned())
        } else {
            Err(AuthError::Denied)
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The client side: answers a carrier's challenge. Picks the strongest algorithm
/// offered among `challenges` (SHA-256 over MD5); `nc` counts the uses of a nonce.
pub fn answer(
    challenges: &[&str],
    method: &str,
    uri: &str,
    username: &str,
    password: &str,
    cnonce: &str,
    nc: u32,
) -> Option<String> {
    let parsed: Vec<(Algorithm, DigestParams)> = challenges
        .iter()
        .filter_map(|c| DigestParams::parse(c))
        .filter_map(|p| Algorithm::parse(p.get("algorithm").unwrap_or("")).map(|a| (a, p)))
        .collect();
    let (alg, ch) = parsed
        .iter()
        .find(|(a, _)| *a == Algorithm::Sha256)
        .or_else(|| parsed.first())?;
    let realm = ch.get("realm")?;
    let nonce = ch.get("nonce")?;
    let offers_auth = ch
        .get("qop")
        .is_some_and(|q| q.split(',').any(|v| v.trim() == "auth"));
    let nc_text = format!("{nc:08x}");
    let qop = offers_auth.then_some((nc_text.as_str(), cnonce));
    let digest = response(*alg, username, realm, password, method, uri, nonce, qop);
    let mut out = format!(
        "Digest username=\"{username}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{digest}\", algorithm={}",
        alg.as_str()
    );
    if offers_auth {
        crate::msg::writer::append(
            &mut out,
            format_args!(", qop=auth, nc={nc_text}, cnonce=\"{cnonce}\""),
        );
    }
    if let Some(opaque) = ch.get("opaque") {
        crate::msg::writer::append(&mut out, format_args!(", opaque=\"{opaque}\""));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 section 3.5's example (MD5, qop=auth): the response is
    /// 6629fae49393a05397450978507c4ef1.
    #[test]
    fn rfc2617_vector() {
        let r = response(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            Some(("00000001", "0a4f113b")),
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    /// RFC 7616 section 3.9.1's SHA-256 example.
    #[test]
    fn rfc7616_sha256_vector() {
        let r = response(
            Algorithm::Sha256,
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            Some(("00000001", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")),
        );
        assert_eq!(
            r,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    fn users(name: &str) -> Option<String> {
        (name == "alice").then(|| "secret".to_owned())
    }

    #[test]
    fn challenge_answer_verify_round_trip_for_both_algorithms() {
        let ch = Challenger::new("voipbin", 300);
        let challenges = ch.challenges(1000, false);
        assert!(
            challenges[0].contains("algorithm=MD5") && challenges[1].contains("algorithm=SHA-256")
        );
        let refs: Vec<&str> = challenges.iter().map(String::as_str).collect();
        let sha = answer(
            &refs,
            "INVITE",
            "sip:1000@voipbin",
            "alice",
            "secret",
            "c1",
            1,
        )
        .expect("answers");
        assert!(
            sha.contains("algorithm=SHA-256"),
            "a client picks the strongest offered"
        );
        assert_eq!(
            ch.verify(1010, "INVITE", Some(&sha), users),
            Ok("alice".into())
        );
        let md5 = answer(
            &refs[..1],
            "INVITE",
            "sip:1000@voipbin",
            "alice",
            "secret",
            "c1",
            1,
        )
        .expect("answers");
        assert_eq!(
            ch.verify(1010, "INVITE", Some(&md5), users),
            Ok("alice".into())
        );
    }

    #[test]
    fn refusals_name_their_cause() {
        let ch = Challenger::new("voipbin", 300);
        let challenges = ch.challenges(1000, false);
        let refs: Vec<&str> = challenges.iter().map(String::as_str).collect();
        let wrong = answer(&refs, "INVITE", "sip:x", "alice", "guess", "c", 1).expect("answers");
        assert_eq!(
            ch.verify(1001, "INVITE", Some(&wrong), users),
            Err(AuthError::Denied)
        );
        let good = answer(&refs, "INVITE", "sip:x", "alice", "secret", "c", 1).expect("answers");
        assert_eq!(
            ch.verify(1301, "INVITE", Some(&good), users),
            Err(AuthError::Stale)
        );
        assert_eq!(
            ch.verify(1001, "BYE", Some(&good), users),
            Err(AuthError::Denied),
            "the method is signed"
        );
        let other = Challenger::new("voipbin", 300);
        assert_eq!(
            other.verify(1001, "INVITE", Some(&good), users),
            Err(AuthError::ForgedNonce)
        );
        assert_eq!(
            ch.verify(1001, "INVITE", None, users),
            Err(AuthError::Missing)
        );
        assert_eq!(
            ch.verify(1001, "INVITE", Some("Basic abc"), users),
            Err(AuthError::Malformed("not Digest"))
        );
        let bob = answer(&refs, "INVITE", "sip:x", "bob", "secret", "c", 1).expect("answers");
        assert_eq!(
            ch.verify(1001, "INVITE", Some(&bob), users),
            Err(AuthError::Denied)
        );
        assert!(ch.challenges(1000, true)[0].ends_with("stale=true"));
    }
}
