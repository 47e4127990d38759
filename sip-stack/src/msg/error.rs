//! Why a message could not be parsed, and the response it earns.
//!
//! Malformed input is one cause among several (rustls' split: input, peer, caller);
//! each variant maps to a status code in one place, [`ParseError::status`], so the
//! transport layer can answer a bad request with 400 (or 505, 513) and a reason phrase
//! that names the problem, and drop a bad response.

/// Why a message could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Not enough bytes yet (a stream transport should read more).
    #[error("incomplete message")]
    Incomplete,
    /// Larger than the limit.
    #[error("message larger than {0} bytes")]
    TooLarge(usize),
    /// A header line longer than the limit.
    #[error("header line longer than {0} bytes")]
    LineTooLong(usize),
    /// A NUL byte or other control character in the head.
    #[error("control character in the message head")]
    ControlCharacter,
    /// The head is not UTF-8.
    #[error("message head is not UTF-8")]
    NotUtf8,
    /// The start line is malformed.
    #[error("malformed start line: {0}")]
    StartLine(&'static str),
    /// A SIP version other than 2.0 (RFC 3261 section 8.2.2... answered with 505).
    #[error("unsupported SIP version {0}")]
    Version(String),
    /// A header line without a colon or with a bad name.
    #[error("malformed header line: {0}")]
    HeaderLine(String),
    /// A header the stack needs is missing.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// A header the stack needs is malformed.
    #[error("malformed {0} header: {1}")]
    BadHeader(&'static str, String),
    /// Content-Length is larger than the body that arrived (datagram).
    #[error("Content-Length {declared} larger than the {actual}-byte body")]
    BodyTooShort {
        /// Declared length.
        declared: usize,
        /// Bytes present.
        actual: usize,
    },
    /// The Request-URI is malformed, or carries headers (RFC 4475 section 3.1.2.11).
    #[error("malformed Request-URI: {0}")]
    RequestUri(String),
    /// The Request-URI's scheme is one we do not serve (answered with 416,
    /// RFC 3261 section 8.2.2.1).
    #[error("unsupported URI scheme {0:?}")]
    UnsupportedScheme(String),
    /// The CSeq method does not match the request method (RFC 3261 section 8.1.1.5).
    #[error("CSeq method {cseq} does not match request method {method}")]
    CseqMismatch {
        /// The request's method.
        method: String,
        /// The CSeq's method.
        cseq: String,
    },
}

impl ParseError {
    /// The status code a request with this error is answered with (a response with
    /// it is dropped): 505 for a version, 513 for a size, else 400.
    pub fn status(&self) -> u16 {
        match self {
            Self::Version(_) => 505,
            Self::TooLarge(_) => 513,
            Self::UnsupportedScheme(_) => 416,
            _ => 400,
        }
    }

    /// A reason phrase naming the problem, for the response's status line (kept to
    /// printable ASCII).
    pub fn reason(&self) -> String {
        let text = match self {
            Self::Version(_) => "Version Not Supported".to_owned(),
            Self::TooLarge(_) => "Message Too Large".to_owned(),
            Self::UnsupportedScheme(scheme) => format!("Unsupported URI Scheme ({scheme})"),
            other => format!("Bad Request ({other})"),
        };
        text.chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .take(120)
            .collect()
    }
}
