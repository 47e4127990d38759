//! The checks a request must pass before a transaction takes it (RFC 3261 sections
//! 8.1.1 and 8.2): the mandatory headers parse, and CSeq names the request's method.
//! A request that fails is answered with [`ParseError::status`].

use super::error::ParseError;
use super::header_name::HeaderName;
use super::message::Message;
use super::method::Method;

/// Checks a parsed request: Via (with a branch is not required here: RFC 2543 peers
/// send none), From, To, Call-ID and CSeq present and well formed, the CSeq method
/// equal to the request method, Max-Forwards a number when present, and a single
/// Content-Length / Call-ID / CSeq.
pub fn check_request(msg: &Message) -> Result<(), ParseError> {
    let Some(method) = msg.method() else {
        return Ok(());
    };
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
