//! Building messages to send: start line, headers in the order given, and the body
//! with its Content-Length. Responses to a request copy what RFC 3261 section 8.2.6.2
//! says they must: every Via, From, To (with a tag added when asked), Call-ID and
//! CSeq.

use std::fmt::Write;
use std::net::SocketAddr;

use bytes::Bytes;

use super::header_name::HeaderName;
use super::message::Message;

/// Appends formatted text. Writing to a `String` cannot fail (it only grows); an
/// error could only come from a `Display` impl that broke its contract, which is a
/// bug there, so it is caught in debug builds rather than returned.
pub(crate) fn append(out: &mut String, args: std::fmt::Arguments<'_>) {
    let written = out.write_fmt(args);
    debug_assert!(written.is_ok(), "a Display impl failed while writing SIP");
}

/// A message being written.
#[derive(Debug, Clone)]
pub struct MessageBuilder {
    head: String,
}

impl MessageBuilder {
    /// `METHOD uri SIP/2.0`.
    pub fn request(method: &str, uri: &str) -> Self {
        let mut head = String::with_capacity(512);
        append(&mut head, format_args!("{method} {uri} SIP/2.0\r\n"));
        Self { head }
    }

    /// `SIP/2.0 status reason`.
    pub fn response(status: u16, reason: &str) -> Self {
        let mut head = String::with_capacity(512);
        append(&mut head, format_args!("SIP/2.0 {status} {reason}\r\n"));
        Self { head }
    }

    /// A response to `request` with its Via, From, To, Call-ID and CSeq copied. When
    /// `to_tag` is given and the To has no tag yet, the tag is added.
    pub fn response_to(request: &Message, status: u16, reason: &str, to_tag: Option<&str>) -> Self {
        Self::answer(request, None, status, reason, to_tag)
    }

    /// A response to `request` received from `source`: as [`Self::response_to`], with
    /// the top Via stamped with `received` and `rport` (RFC 3261 section 18.2.1,
    /// RFC 3581 section 4) so the peer learns its public address.
    pub fn reply(
        request: &Message,
        source: SocketAddr,
        status: u16,
        reason: &str,
        to_tag: Option<&str>,
    ) -> Self {
        Self::answer(request, Some(source), status, reason, to_tag)
    }

    fn answer(
        request: &Message,
        source: Option<SocketAddr>,
        status: u16,
        reason: &str,
        to_tag: Option<&str>,
    ) -> Self {
        let mut b = Self::response(status, reason);
        let mut first_via = true;
        for h in request.headers() {
            match h.kind {
                HeaderName::Via => match source {
                    Some(src) if first_via => {
                        first_via = false;
                        // A header line may hold several Vias: stamp only the first.
                        let mut parts = crate::msg::grammar::split_list(h.value);
                        let top = parts.next().unwrap_or(h.value);
                        b = b.header("Via", crate::transport::stamp_via(top, src));
                        for rest in parts {
                            b = b.header("Via", rest);
                        }
                    }
                    _ => b = b.header("Via", h.value),
                },
                HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                    b = b.header(h.kind.as_str(), h.value);
                }
                HeaderName::To => {
                    let has_tag = request.to().ok().and_then(|t| t.tag()).is_some();
                    b = match to_tag {
                        Some(tag) if !has_tag => {
                            b.header("To", format_args!("{};tag={tag}", h.value))
                        }
                        _ => b.header("To", h.value),
                    };
                }
                _ => {}
            }
        }
        b
    }

    /// Adds a header line (values are written as given; callers must not pass CR or
    /// LF, which would end the line).
    pub fn header(mut self, name: &str, value: impl std::fmt::Display) -> Self {
        append(&mut self.head, format_args!("{name}: {value}\r\n"));
        self
    }

    /// Ends with a body of `content_type`.
    pub fn body(mut self, content_type: &str, body: &[u8]) -> Bytes {
        append(
            &mut self.head,
            format_args!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            ),
        );
        let mut out = Vec::with_capacity(self.head.len() + body.len());
        out.extend_from_slice(self.head.as_bytes());
        out.extend_from_slice(body);
        Bytes::from(out)
    }

    /// Ends without a body (`Content-Length: 0`).
    pub fn finish(mut self) -> Bytes {
        self.head.push_str("Content-Length: 0\r\n\r\n");
        Bytes::from(self.head)
    }
}
