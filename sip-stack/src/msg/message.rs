//! A parsed SIP message: the received bytes, with the positions of its parts.
//!
//! Parsing copies nothing: the start line, each header's name and value, and the
//! body are positions into the [`Bytes`] that arrived. Only a header folded over
//! several lines is stored unfolded on its own. Typed access ([`Message::via`],
//! [`Message::cseq`], ...) parses a header when asked, borrowing from the message.

use bytes::Bytes;

use super::error::ParseError;
use super::grammar::split_list;
use super::header_name::HeaderName;
use super::method::Method;
use super::typed::{CSeq, NameAddr, Via};

/// A byte range of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    pub(crate) fn new(start: usize, end: usize) -> Self {
        // Messages are at most 64 KiB, so positions fit in u32.
        Self {
            start: start as u32,
            end: end as u32,
        }
    }
}

/// Where a header's value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueAt {
    /// In the message bytes.
    Raw(Span),
    /// Unfolded, in the message's side table.
    Unfolded(u32),
}

/// One header line as it arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeaderAt {
    pub(crate) name: HeaderName,
    pub(crate) name_at: Span,
    pub(crate) value: ValueAt,
}

/// The first line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `METHOD Request-URI SIP/2.0`.
    Request {
        /// The method.
        method: Method,
        /// Where the Request-URI is.
        #[doc(hidden)]
        uri_at: (u32, u32),
    },
    /// `SIP/2.0 CODE Reason`.
    Response {
        /// The status code, 100-699.
        status: u16,
        /// Where the reason phrase is.
        #[doc(hidden)]
        reason_at: (u32, u32),
    },
}

/// A parsed SIP request or response.
#[derive(Debug, Clone)]
pub struct Message {
    pub(crate) raw: Bytes,
    pub(crate) start: StartLine,
    pub(crate) headers: Vec<HeaderAt>,
    pub(crate) unfolded: Vec<String>,
    pub(crate) body: Bytes,
}

/// One header: its name as written, what it is, and its value.
#[derive(Debug, Clone, Copy)]
pub struct Header<'a> {
    /// The name as it arrived (compact or long, any case).
    pub name: &'a str,
    /// Which header it is.
    pub kind: HeaderName,
    /// The value, trimmed and unfolded.
    pub value: &'a str,
}

impl Message {
    pub(crate) fn text(&self, span: Span) -> &str {
        // The head was checked to be UTF-8 and spans end at ASCII delimiters, so
        // this never fails; an empty string is the safe answer if it ever did.
        std::str::from_utf8(&self.raw[span.start as usize..span.end as usize]).unwrap_or("")
    }

    fn value_of(&self, h: &HeaderAt) -> &str {
        match h.value {
            ValueAt::Raw(span) => self.text(span),
            ValueAt::Unfolded(i) => self.unfolded.get(i as usize).map_or("", String::as_str),
        }
    }

    /// The bytes as they arrived.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The start line.
    pub fn start_line(&self) -> &StartLine {
        &self.start
    }

    /// A request's method.
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// A request's Request-URI, as written.
    pub fn request_uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri_at, .. } => Some(self.text(Span {
                start: uri_at.0,
                end: uri_at.1,
            })),
            StartLine::Response { .. } => None,
        }
    }

    /// A response's status code.
    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { status, .. } => Some(*status),
            StartLine::Request { .. } => None,
        }
    }

    /// A response's reason phrase.
    pub fn reason(&self) -> Option<&str> {
        match &self.start {
            StartLine::Response { reason_at, .. } => Some(self.text(Span {
                start: reason_at.0,
                end: reason_at.1,
            })),
            StartLine::Request { .. } => None,
        }
    }

    /// Every header line, in order.
    pub fn headers(&self) -> impl Iterator<Item = Header<'_>> {
        self.headers.iter().map(|h| Header {
            name: self.text(h.name_at),
            kind: h.name,
            value: self.value_of(h),
        })
    }

    /// The value of the first `kind` header line.
    pub fn header(&self, kind: HeaderName) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name == kind)
            .map(|h| self.value_of(h))
    }

    /// The value of the first header named `name` (any case), known or not; a known
    /// header is found by its long or compact form (`Subject` finds `s:`).
    pub fn header_named(&self, name: &str) -> Option<&str> {
        match HeaderName::parse(name) {
            HeaderName::Other => self
                .headers()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value),
            kind => self.header(kind),
        }
    }

    /// Every element of a list header, over all its lines, split at commas.
    pub fn list(&self, kind: HeaderName) -> impl Iterator<Item = &str> {
        self.headers
            .iter()
            .filter(move |h| h.name == kind)
            .flat_map(|h| split_list(self.value_of(h)))
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The topmost Via.
    pub fn via(&self) -> Result<Via<'_>, ParseError> {
        let top = self
            .list(HeaderName::Via)
            .next()
            .ok_or(ParseError::MissingHeader("Via"))?;
        Via::parse(top)
    }

    /// Every Via, topmost first.
    pub fn vias(&self) -> impl Iterator<Item = Result<Via<'_>, ParseError>> {
        self.list(HeaderName::Via).map(Via::parse)
    }

    /// The From header.
    pub fn from(&self) -> Result<NameAddr<'_>, ParseError> {
        let v = self
            .header(HeaderName::From)
            .ok_or(ParseError::MissingHeader("From"))?;
        NameAddr::parse(v).map_err(|e| ParseError::BadHeader("From", e))
    }

    /// The To header.
    pub fn to(&self) -> Result<NameAddr<'_>, ParseError> {
        let v = self
            .header(HeaderName::To)
            .ok_or(ParseError::MissingHeader("To"))?;
        NameAddr::parse(v).map_err(|e| ParseError::BadHeader("To", e))
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Result<&str, ParseError> {
        self.header(HeaderName::CallId)
            .filter(|v| !v.is_empty())
            .ok_or(ParseError::MissingHeader("Call-ID"))
    }

    /// The CSeq.
    pub fn cseq(&self) -> Result<CSeq<'_>, ParseError> {
        let v = self
            .header(HeaderName::CSeq)
            .ok_or(ParseError::MissingHeader("CSeq"))?;
        CSeq::parse(v).map_err(|e| ParseError::BadHeader("CSeq", e))
    }

    /// Every Contact (empty for `*`, which [`Message::header`] shows as it is).
    pub fn contacts(&self) -> impl Iterator<Item = Result<NameAddr<'_>, ParseError>> {
        self.list(HeaderName::Contact)
            .filter(|c| *c != "*")
            .map(|c| NameAddr::parse(c).map_err(|e| ParseError::BadHeader("Contact", e)))
    }

    /// Max-Forwards, when present.
    pub fn max_forwards(&self) -> Result<Option<u32>, ParseError> {
        self.header(HeaderName::MaxForwards)
            .map(|v| {
                v.parse::<u32>()
                    .map_err(|_| ParseError::BadHeader("Max-Forwards", v.to_owned()))
            })
            .transpose()
    }
}
