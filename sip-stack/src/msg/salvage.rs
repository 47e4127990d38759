//! A response for a request that did not parse (RFC 3261 section 21.4.1, 400; 505
//! for another SIP version, RFC 4475 section 3.1.2.16): when Via, From, To, Call-ID
//! and CSeq can still be read line by line, the peer gets a status that names the
//! problem instead of silence. A response that did not parse is dropped, as is an
//! ACK (it gets no response) and a request too broken to answer.

use bytes::Bytes;

use super::error::ParseError;
use super::grammar::{is_wsp, trim_wsp};
use super::header_name::HeaderName;

/// The headers a response copies, found in an unparsable request.
#[derive(Default)]
struct Copied {
    vias: Vec<String>,
    from: Option<String>,
    to: Option<String>,
    call_id: Option<String>,
    cseq: Option<String>,
}

/// The header lines of `head` with their continuations joined (section 7.3.1),
/// skipping the start line and lines that are not text.
fn unfolded_lines(head: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in head.split('\n').skip(1) {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        match out.last_mut() {
            Some(prev) if line.as_bytes().first().copied().is_some_and(is_wsp) => {
                prev.push(' ');
                prev.push_str(trim_wsp(line));
            }
            _ => out.push(line.to_owned()),
        }
    }
    out
}

/// The bytes of a response to the unparsable request `raw`, or `None` when it must
/// be dropped.
pub fn reply_to_unparsable(raw: &[u8], err: &ParseError) -> Option<Bytes> {
    let start = raw.iter().position(|b| *b != b'\r' && *b != b'\n')?;
    let raw = &raw[start..];
    let head_len = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(raw.len(), |p| p + 2);
    let head = String::from_utf8_lossy(&raw[..head_len]);
    let first = head.split(['\r', '\n']).next()?;
    let method = first.split([' ', '\t']).next()?;
    let is_response = method
        .as_bytes()
        .get(..4)
        .is_some_and(|b| b.eq_ignore_ascii_case(b"SIP/"));
    if method.is_empty() || is_response || method.eq_ignore_ascii_case("ACK") {
        return None;
    }
    let mut c = Copied::default();
    for line in unfolded_lines(&head) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = trim_wsp(value);
        if value.bytes().any(|b| b < 0x20 && b != b'\t') || value.contains('\u{fffd}') {
            continue;
        }
        match HeaderName::parse(trim_wsp(name)) {
            HeaderName::Via => c.vias.push(value.to_owned()),
            HeaderName::From => c.from = c.from.or(Some(value.to_owned())),
            HeaderName::To => c.to = c.to.or(Some(value.to_owned())),
            HeaderName::CallId => c.call_id = c.call_id.or(Some(value.to_owned())),
            HeaderName::CSeq => c.cseq = c.cseq.or(Some(value.to_owned())),
            _ => {}
        }
    }
    let (Some(from), Some(to), Some(call_id), Some(cseq)) = (c.from, c.to, c.call_id, c.cseq)
    else {
        return None;
    };
    if c.vias.is_empty() {
        return None;
    }
    let mut out = format!("SIP/2.0 {} {}\r\n", err.status(), err.reason());
    for via in &c.vias {
        out.push_str(&format!("Via: {via}\r\n"));
    }
    let to = if to.contains(";tag=") {
        to
    } else {
        format!("{to};tag=refused")
    };
    out.push_str(&format!(
        "From: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n"
    ));
    Some(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n";

    #[test]
    fn answers_a_request_with_the_status_naming_the_problem() {
        let raw = format!("INVITE sip:c@d SIP/7.0\r\n{HEAD}\r\n");
        let err = ParseError::Version("SIP/7.0".into());
        let reply = reply_to_unparsable(raw.as_bytes(), &err).expect("a reply");
        let text = std::str::from_utf8(&reply).expect("text");
        assert!(
            text.starts_with("SIP/2.0 505 Version Not Supported\r\n"),
            "{text}"
        );
        assert!(text.contains("To: <sip:c@d>;tag=refused\r\n"));
        assert!(text.contains("CSeq: 1 INVITE\r\n"));
    }

    #[test]
    fn drops_responses_acks_and_requests_missing_what_a_response_needs() {
        let err = ParseError::StartLine("bad");
        for raw in [
            format!("SIP/2.0 4294967301 big\r\n{HEAD}\r\n"),
            format!("ACK sip:c@d SIP/2.0 x\r\n{HEAD}\r\n"),
            "INVITE sip:c@d SIP/2.0 x\r\nVia: SIP/2.0/UDP h\r\n\r\n".to_owned(),
            // Found by fuzzing: a multi-byte character across the first four bytes.
            String::from_utf8_lossy(b"\x02\x02\x89\n").into_owned(),
            String::new(),
        ] {
            assert!(
                reply_to_unparsable(raw.as_bytes(), &err).is_none(),
                "{raw:?}"
            );
        }
    }
}
