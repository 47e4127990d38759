//! Parsing: one datagram into a [`Message`], and framing a byte stream into messages
//! (RFC 3261 sections 7 and 18.3, RFC 5626 section 3.5.1 keep-alives).
//!
//! Hostile input gets an error, never a panic: a message over 64 KiB, a header line
//! over 8 KiB, a control character in the head, a head that is not UTF-8, a
//! Content-Length larger than the body.

use bytes::Bytes;

use super::error::ParseError;
use super::grammar::{is_token, is_wsp, trim_wsp};
use super::header_name::HeaderName;
use super::message::{HeaderAt, Message, Span, StartLine, ValueAt};
use super::method::Method;

/// The largest message accepted.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// The longest header line accepted.
pub const MAX_LINE: usize = 8 * 1024;

/// The offset after leading CRLFs, which are ignored before a start line
/// (RFC 3261 section 7.5).
fn skip_crlf(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|b| *b != b'\r' && *b != b'\n')
        .unwrap_or(bytes.len())
}

/// The offset just after the blank line that ends the head, searching from `from`.
fn head_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(nl) = bytes[i..].iter().position(|b| *b == b'\n') {
        let at = i + nl;
        match bytes.get(at + 1) {
            Some(b'\n') => return Some(at + 2),
            Some(b'\r') if bytes.get(at + 2) == Some(&b'\n') => return Some(at + 3),
            _ => i = at + 1,
        }
    }
    None
}

/// The lines of the head (without their line endings), as (start, end) offsets.
fn lines(bytes: &[u8], from: usize, to: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut pos = from;
    std::iter::from_fn(move || {
        if pos >= to {
            return None;
        }
        let nl = bytes[pos..to]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(to, |n| pos + n);
        let end = if nl > pos && bytes[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        let line = (pos, end);
        pos = nl + 1;
        Some(line)
    })
}

/// Whether the head holds a control character (NUL, BEL, DEL, ...) that is not the
/// second half of a quoted-pair: `"\\\x00"` inside a quoted string is legal
/// (RFC 3261 section 25.1, RFC 4475 section 3.1.1.2), a bare one is not.
fn has_bare_control(head: &[u8]) -> bool {
    head.iter().enumerate().any(|(i, b)| {
        let control = (*b < 0x20 && !matches!(b, b'\t' | b'\r' | b'\n')) || *b == 0x7f;
        control && (i == 0 || head[i - 1] != b'\\')
    })
}

/// Parses one datagram: its body is Content-Length bytes, or everything after the
/// head when Content-Length is absent (RFC 3261 section 18.3).
pub fn parse_datagram(raw: Bytes) -> Result<Message, ParseError> {
    parse(raw, false)
}

/// Parses one complete message cut from a stream by [`frame`].
pub fn parse_framed(raw: Bytes) -> Result<Message, ParseError> {
    parse(raw, true)
}

fn parse(raw: Bytes, framed: bool) -> Result<Message, ParseError> {
    if raw.len() > MAX_MESSAGE {
        return Err(ParseError::TooLarge(MAX_MESSAGE));
    }
    let bytes = &raw[..];
    let start = skip_crlf(bytes);
    let end = head_end(bytes, start).ok_or(ParseError::Incomplete)?;
    let head = &bytes[start..end];
    if has_bare_control(head) {
        return Err(ParseError::ControlCharacter);
    }
    let head_text = std::str::from_utf8(head).map_err(|_| ParseError::NotUtf8)?;
    let text = |s: usize, e: usize| &head_text[s - start..e - start];

    let mut line_iter = lines(bytes, start, end);
    let (ls, le) = line_iter.next().ok_or(ParseError::StartLine("empty"))?;
    if le - ls > MAX_LINE {
        return Err(ParseError::LineTooLong(MAX_LINE));
    }
    let start_line = parse_start_line(text(ls, le), ls)?;

    let mut headers: Vec<HeaderAt> = Vec::with_capacity(16);
    let mut unfolded: Vec<String> = Vec::new();
    for (s, e) in line_iter {
        if e - s > MAX_LINE {
            return Err(ParseError::LineTooLong(MAX_LINE));
        }
        if s == e {
            break; // the blank line
        }
        let line = text(s, e);
        if is_wsp(bytes[s]) {
            // A folded continuation of the previous header (RFC 3261 section 7.3.1).
            let prev = headers
                .last_mut()
                .ok_or_else(|| ParseError::HeaderLine("continuation before any header".into()))?;
            let more = trim_wsp(line);
            match prev.value {
                ValueAt::Raw(span) => {
                    let mut v = text(span.start as usize, span.end as usize).to_owned();
                    if !more.is_empty() {
                        if !v.is_empty() {
                            v.push(' ');
                        }
                        v.push_str(more);
                    }
                    prev.value = ValueAt::Unfolded(unfolded.len() as u32);
                    unfolded.push(v);
                }
                ValueAt::Unfolded(i) => {
                    if let Some(v) = unfolded.get_mut(i as usize)
                        && !more.is_empty()
                    {
                        v.push(' ');
                        v.push_str(more);
                    }
                }
            }
            continue;
        }
        let colon = line
            .find(':')
            .ok_or_else(|| ParseError::HeaderLine(format!("no colon in {:?}", clip(line))))?;
        // HCOLON allows white space before the colon: "Via  : ..."
        let name = trim_wsp(&line[..colon]);
        if !is_token(name) {
            return Err(ParseError::HeaderLine(format!(
                "bad header name {:?}",
                clip(name)
            )));
        }
        let name_start = s + (name.as_ptr() as usize - line.as_ptr() as usize);
        let raw_value = &line[colon + 1..];
        let value = trim_wsp(raw_value);
        let value_start = s + (value.as_ptr() as usize - line.as_ptr() as usize);
        headers.push(HeaderAt {
            name: HeaderName::parse(name),
            name_at: Span::new(name_start, name_start + name.len()),
            value: ValueAt::Raw(Span::new(value_start, value_start + value.len())),
        });
    }

    let mut msg = Message {
        raw: raw.clone(),
        start: start_line,
        headers,
        unfolded,
        body: Bytes::new(),
    };
    let available = raw.len() - end;
    let declared = match msg.header(HeaderName::ContentLength) {
        Some(v) => Some(
            v.parse::<usize>()
                .map_err(|_| ParseError::BadHeader("Content-Length", clip(v)))?,
        ),
        None if framed => return Err(ParseError::MissingHeader("Content-Length")),
        None => None,
    };
    let body_len = match declared {
        Some(n) if n > available => {
            return Err(ParseError::BodyTooShort {
                declared: n,
                actual: available,
            });
        }
        Some(n) => n,
        None => available,
    };
    msg.body = raw.slice(end..end + body_len);
    Ok(msg)
}

/// At most 80 characters of `s`, for error messages.
fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Whether `s` starts with `prefix`, ignoring ASCII case (byte-wise, so a multi-byte
/// character never splits).
fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|b| b.eq_ignore_ascii_case(prefix.as_bytes()))
}

fn parse_start_line(line: &str, offset: usize) -> Result<StartLine, ParseError> {
    let mut parts = line.split([' ', '\t']).filter(|p| !p.is_empty());
    let first = parts.next().ok_or(ParseError::StartLine("empty"))?;
    let pos = |s: &str| (offset + (s.as_ptr() as usize - line.as_ptr() as usize)) as u32;
    if starts_with_ignore_case(first, "SIP/") {
        if !first.eq_ignore_ascii_case("SIP/2.0") {
            return Err(ParseError::Version(clip(first)));
        }
        let code = parts
            .next()
            .ok_or(ParseError::StartLine("no status code"))?;
        let status = code
            .parse::<u16>()
            .ok()
            .filter(|c| code.len() == 3 && (100..700).contains(c))
            .ok_or(ParseError::StartLine("bad status code"))?;
        let after_code = pos(code) as usize - offset + code.len();
        let reason = trim_wsp(&line[after_code..]);
        let rs = pos(reason);
        return Ok(StartLine::Response {
            status,
            reason_at: (rs, rs + reason.len() as u32),
        });
    }
    if !is_token(first) {
        return Err(ParseError::StartLine("bad method"));
    }
    let uri = parts
        .next()
        .ok_or(ParseError::StartLine("no Request-URI"))?;
    let version = parts
        .next()
        .ok_or(ParseError::StartLine("no SIP version"))?;
    if parts.next().is_some() {
        return Err(ParseError::StartLine("extra text after the SIP version"));
    }
    if !starts_with_ignore_case(version, "SIP/") {
        return Err(ParseError::StartLine("bad SIP version"));
    }
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(ParseError::Version(clip(version)));
    }
    if !uri.contains(':') {
        return Err(ParseError::StartLine("the Request-URI has no scheme"));
    }
    let us = pos(uri);
    Ok(StartLine::Request {
        method: Method::parse(first),
        uri_at: (us, us + uri.len() as u32),
    })
}

/// What the next bytes of a stream hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// Not a whole message yet: read more.
    NeedMore,
    /// A keep-alive (RFC 5626 section 3.5.1): `consume` bytes; `pong` when it was a
    /// double-CRLF ping that wants a single CRLF back.
    KeepAlive {
        /// Bytes to drop.
        consume: usize,
        /// Whether to answer with CRLF.
        pong: bool,
    },
    /// A message: skip `skip` bytes, then `len` bytes are the message.
    Message {
        /// Leading bytes to drop.
        skip: usize,
        /// The message's length.
        len: usize,
    },
}

/// Finds the next message in a stream buffer (Content-Length is required on
/// streams, RFC 3261 section 18.3). An error means the stream cannot be framed any
/// more and should be closed.
pub fn frame(buf: &[u8]) -> Result<Frame, ParseError> {
    if buf.starts_with(b"\r\n\r\n") {
        return Ok(Frame::KeepAlive {
            consume: 4,
            pong: true,
        });
    }
    let skip = skip_crlf(buf);
    if skip == buf.len() {
        // Only line ends: a pong (or the start of a ping) so far.
        return Ok(
            if buf.len() >= 2 && buf.starts_with(b"\r\n") && buf.len() < 4 {
                if buf.len() == 2 {
                    Frame::KeepAlive {
                        consume: 2,
                        pong: false,
                    }
                } else {
                    Frame::NeedMore
                }
            } else if buf.is_empty() {
                Frame::NeedMore
            } else {
                Frame::KeepAlive {
                    consume: buf.len(),
                    pong: false,
                }
            },
        );
    }
    let Some(end) = head_end(buf, skip) else {
        if buf.len() - skip > MAX_MESSAGE {
            return Err(ParseError::TooLarge(MAX_MESSAGE));
        }
        return Ok(Frame::NeedMore);
    };
    let mut length = None;
    for (s, e) in lines(buf, skip, end).skip(1) {
        let line = &buf[s..e];
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = std::str::from_utf8(&line[..colon])
            .map(trim_wsp)
            .unwrap_or("");
        if HeaderName::parse(name) == HeaderName::ContentLength {
            let value = std::str::from_utf8(&line[colon + 1..])
                .map(trim_wsp)
                .unwrap_or("");
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| ParseError::BadHeader("Content-Length", clip(value)))?,
            );
            break;
        }
    }
    let length = length.ok_or(ParseError::MissingHeader("Content-Length"))?;
    let total = end - skip + length;
    if total > MAX_MESSAGE {
        return Err(ParseError::TooLarge(MAX_MESSAGE));
    }
    Ok(if buf.len() - skip >= total {
        Frame::Message { skip, len: total }
    } else {
        Frame::NeedMore
    })
}
