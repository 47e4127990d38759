//! The checks a request must pass before a transaction takes it (RFC 3261 sections
//! 8.1.1 and 8.2): the mandatory headers parse, and CSeq names the request's method.
//! A request that fails is answered with [`ParseError::status`].

use super::error::ParseError;
use super::header_name::HeaderName;
use super::message::Message;
use super::method::Method;
use super::uri::{Uri, is_absolute_uri};

/// The Request-URI (section 8.2.2.1): an absolute URI (not `<sip:...>`, RFC 4475
/// section 3.1.2.7), of a scheme we serve (else 416), well formed (an IPv6 host in
/// brackets, RFC 5118 section 4.2), and without headers (RFC 4475 section 3.1.2.11).
fn check_request_uri(text: &str) -> Result<(), ParseError> {
    if !is_absolute_uri(text) {
        return Err(ParseError::RequestUri(format!("{text:.80} is not a URI")));
    }
    let scheme = text.split(':').next().unwrap_or_default();
    if !["sip", "sips", "tel"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
    {
        return Err(ParseError::UnsupportedScheme(
            scheme.chars().take(40).collect(),
        ));
    }
    let uri = Uri::parse(text).map_err(ParseError::RequestUri)?;
    if uri.headers.is_some() {
        return Err(ParseError::RequestUri(
            "headers are not allowed in a Request-URI".to_owned(),
        ));
    }
    Ok(())
}

/// Checks a parsed request: Via (with a branch is not required here: RFC 2543 peers
/// send none), From, To, Call-ID and CSeq present and well formed, the CSeq method
/// equal to the request method, Max-Forwards a number when present, and a single
/// Content-Length / Call-ID / CSeq.
pub fn check_request(msg: &Message) -> Result<(), ParseError> {
    let Some(method) = msg.method() else {
        return Ok(());
    };
    check_request_uri(msg.request_uri().unwrap_or_default())?;
    msg.via()?;
    for via in msg.vias() {
        via?;
    }
    msg.from()?;
    msg.to()?;
    msg.call_id()?;
    let cseq = msg.cseq()?;
    if cseq.method != method.as_str() {
        return Err(ParseError::CseqMismatch {
            method: method.to_string(),
            cseq: cseq.method.to_owned(),
        });
    }
    msg.max_forwards()?;
    for (kind, name) in [
        (HeaderName::CallId, "Call-ID"),
        (HeaderName::CSeq, "CSeq"),
        (HeaderName::ContentLength, "Content-Length"),
        (HeaderName::From, "From"),
        (HeaderName::To, "To"),
    ] {
        if msg.headers().filter(|h| h.kind == kind).count() > 1 {
            return Err(ParseError::BadHeader(
                name,
                "appears more than once".to_owned(),
            ));
        }
    }
    if *method == Method::Invite || *method == Method::Register {
        for contact in msg.contacts() {
            contact?;
        }
    }
    Ok(())
}
