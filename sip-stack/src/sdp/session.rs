//! SDP as text in and out (RFC 8866): the session and media descriptions the stack
//! needs, with every other line kept and written back.

use std::fmt;
use std::net::IpAddr;

/// Why an SDP body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// A line that is not `x=value`.
    #[error("line {0}: expected <type>=<value>")]
    Line(usize),
    /// A required line is missing or out of place.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A line whose value is malformed.
    #[error("line {line}: bad {what}: {text}")]
    Bad {
        /// The line number.
        line: usize,
        /// What it should hold.
        what: &'static str,
        /// What it held.
        text: String,
    },
}

/// A `c=` line: where media goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    /// The address (IP4 or IP6).
    pub addr: IpAddr,
}

impl Connection {
    fn parse(value: &str, line: usize) -> Result<Self, SdpError> {
        let bad = || SdpError::Bad {
            line,
            what: "connection",
            text: value.to_owned(),
        };
        let mut parts = value.split_whitespace();
        let (net, kind, addr) = (parts.next(), parts.next(), parts.next());
        if net != Some("IN") {
            return Err(bad());
        }
        // A multicast TTL suffix (224.2.1.1/127) is cut off.
        let addr = addr.ok_or_else(bad)?.split('/').next().unwrap_or("");
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        match (kind, addr) {
            (Some("IP4"), IpAddr::V4(_)) | (Some("IP6"), IpAddr::V6(_)) => Ok(Self { addr }),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            IpAddr::V4(a) => write!(f, "IN IP4 {a}"),
            IpAddr::V6(a) => write!(f, "IN IP6 {a}"),
        }
    }
}

/// The media direction attribute (RFC 3264 section 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Both ways (the default).
    #[default]
    SendRecv,
    /// Only sending (the sender holds the other side).
    SendOnly,
    /// Only receiving.
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    fn parse(attr: &str) -> Option<Self> {
        match attr {
            "sendrecv" => Some(Self::SendRecv),
            "sendonly" => Some(Self::SendOnly),
            "recvonly" => Some(Self::RecvOnly),
            "inactive" => Some(Self::Inactive),
            _ => None,
        }
    }

    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }

    /// The direction an answer takes to this offered one (RFC 3264 section 6.1).
    pub fn answer(self) -> Self {
        match self {
            Self::SendOnly => Self::RecvOnly,
            Self::RecvOnly => Self::SendOnly,
            other => other,
        }
    }
}

/// One `a=rtpmap:` mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// The payload type.
    pub payload_type: u8,
    /// The encoding name as written (PCMU, opus, telephone-event, ...).
    pub encoding: String,
    /// The clock rate.
    pub clock_rate: u32,
    /// Channels, when given.
    pub channels: Option<u8>,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// audio, video, ...
    pub kind: String,
    /// The port; 0 rejects or disables the stream.
    pub port: u16,
    /// RTP/AVP, RTP/SAVP, ...
    pub proto: String,
    /// The formats (payload types for RTP), in preference order.
    pub formats: Vec<String>,
    /// A media-level `c=`.
    pub connection: Option<Connection>,
    /// The `a=rtpmap:` lines.
    pub rtpmaps: Vec<RtpMap>,
    /// `a=fmtp:` lines: (payload type, parameters).
    pub fmtps: Vec<(u8, String)>,
    /// `a=ptime:`.
    pub ptime: Option<u32>,
    /// The direction attribute, when given.
    pub direction: Option<Direction>,
    /// `a=rtcp-mux`.
    pub rtcp_mux: bool,
    /// Other lines of the section (`b=`, other `a=`), kept as written.
    pub other: Vec<String>,
}

impl Media {
    /// The RTP payload types of the formats.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| f.parse().ok())
    }

    /// The rtpmap of a payload type.
    pub fn rtpmap(&self, pt: u8) -> Option<&RtpMap> {
        self.rtpmaps.iter().find(|m| m.payload_type == pt)
    }

    /// The fmtp of a payload type.
    pub fn fmtp(&self, pt: u8) -> Option<&str> {
        self.fmtps
            .iter()
            .find(|(p, _)| *p == pt)
            .map(|(_, f)| f.as_str())
    }
}

/// A session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=` as written.
    pub origin: String,
    /// `s=`.
    pub session_name: String,
    /// The session-level `c=`.
    pub connection: Option<Connection>,
    /// The session-level direction attribute.
    pub direction: Option<Direction>,
    /// Other session-level lines (`b=`, `t=`, other `a=`), kept as written.
    pub other: Vec<String>,
    /// The media sections.
    pub media: Vec<Media>,
}

impl SessionDescription {
    /// Parses SDP text (CRLF or LF line ends).
    pub fn parse(text: &str) -> Result<Self, SdpError> {
        let mut sdp = SessionDescription {
            origin: String::new(),
            session_name: String::new(),
            connection: None,
            direction: None,
            other: Vec::new(),
            media: Vec::new(),
        };
        let mut seen_version = false;
        for (n, raw) in text.lines().enumerate() {
            let line_no = n + 1;
            let line = raw.trim_end_matches('\r');
            if line.is_empty() {
                continue;
            }
            let (kind, value) = line.split_once('=').ok_or(SdpError::Line(line_no))?;
            if kind.len() != 1 {
                return Err(SdpError::Line(line_no));
            }
            let bad = |what| SdpError::Bad {
                line: line_no,
                what,
                text: value.to_owned(),
            };
            match (kind, sdp.media.last_mut()) {
                ("v", None) if value == "0" => seen_version = true,
                ("v", _) => return Err(bad("version (must be 0, first)")),
                ("o", None) => sdp.origin = value.to_owned(),
                ("s", None) => sdp.session_name = value.to_owned(),
                ("c", None) => sdp.connection = Some(Connection::parse(value, line_no)?),
                ("c", Some(m)) => m.connection = Some(Connection::parse(value, line_no)?),
                ("m", _) => sdp.media.push(parse_media_line(value, line_no)?),
                ("a", Some(m)) => parse_media_attribute(m, value, line_no)?,
                ("a", None) => match Direction::parse(value) {
                    Some(d) => sdp.direction = Some(d),
                    None => sdp.other.push(line.to_owned()),
                },
                (_, Some(m)) => m.other.push(line.to_owned()),
                (_, None) => sdp.other.push(line.to_owned()),
            }
        }
        if !seen_version {
            return Err(SdpError::Missing("v=0"));
        }
        Ok(sdp)
    }

    /// The address media of section `m` goes to: its own `c=`, else the session's.
    pub fn media_addr(&self, m: &Media) -> Option<IpAddr> {
        m.connection.or(self.connection).map(|c| c.addr)
    }
}

fn parse_media_line(value: &str, line: usize) -> Result<Media, SdpError> {
    let bad = || SdpError::Bad {
        line,
        what: "media line",
        text: value.to_owned(),
    };
    let mut parts = value.split_whitespace();
    let kind = parts.next().ok_or_else(bad)?.to_owned();
    // A port may carry a count (`49170/2`); the count is ignored.
    let port = parts
        .next()
        .and_then(|p| p.split('/').next())
        .and_then(|p| p.parse().ok())
        .ok_or_else(bad)?;
    let proto = parts.next().ok_or_else(bad)?.to_owned();
    let formats: Vec<String> = parts.map(str::to_owned).collect();
    if formats.is_empty() {
        return Err(bad());
    }
    Ok(Media {
        kind,
        port,
        proto,
        formats,
        connection: None,
        rtpmaps: Vec::new(),
        fmtps: Vec::new(),
        ptime: None,
        direction: None,
        rtcp_mux: false,
        other: Vec::new(),
    })
}

fn parse_media_attribute(m: &mut Media, value: &str, line: usize) -> Result<(), SdpError> {
    let bad = |what| SdpError::Bad {
        line,
        what,
        text: value.to_owned(),
    };
    let (name, arg) = value.split_once(':').map_or((value, ""), |(n, a)| (n, a));
    match name {
        "rtpmap" => {
            let (pt, enc) = arg.split_once(' ').ok_or_else(|| bad("rtpmap"))?;
            let mut enc_parts = enc.trim().split('/');
            let encoding = enc_parts
                .next()
                .filter(|e| !e.is_empty())
                .ok_or_else(|| bad("rtpmap"))?;
            let clock_rate = enc_parts
                .next()
                .and_then(|r| r.parse().ok())
                .ok_or_else(|| bad("rtpmap"))?;
            let channels = enc_parts.next().and_then(|c| c.parse().ok());
            let payload_type = pt.parse().map_err(|_| bad("rtpmap payload type"))?;
            m.rtpmaps.push(RtpMap {
                payload_type,
                encoding: encoding.to_owned(),
                clock_rate,
                channels,
            });
        }
        "fmtp" => {
            let (pt, params) = arg.split_once(' ').ok_or_else(|| bad("fmtp"))?;
            m.fmtps.push((
                pt.parse().map_err(|_| bad("fmtp payload type"))?,
                params.trim().to_owned(),
            ));
        }
        "ptime" => m.ptime = Some(arg.trim().parse().map_err(|_| bad("ptime"))?),
        "rtcp-mux" => m.rtcp_mux = true,
        other => match Direction::parse(other) {
            Some(d) => m.direction = Some(d),
            None => m.other.push(format!("a={value}")),
        },
    }
    Ok(())
}

impl fmt::Display for SessionDescription {
    /// Writes SDP with CRLF line ends.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "v=0\r\no={}\r\ns={}\r\n",
            self.origin,
            if self.session_name.is_empty() {
                "-"
            } else {
                &self.session_name
            }
        )?;
        if let Some(c) = self.connection {
            write!(f, "c={c}\r\n")?;
        }
        let mut has_t = false;
        for line in &self.other {
            has_t |= line.starts_with("t=");
            write!(f, "{line}\r\n")?;
        }
        if !has_t {
            f.write_str("t=0 0\r\n")?;
        }
        if let Some(d) = self.direction {
            write!(f, "a={}\r\n", d.as_str())?;
        }
        for m in &self.media {
            write!(
                f,
                "m={} {} {} {}\r\n",
                m.kind,
                m.port,
                m.proto,
                m.formats.join(" ")
            )?;
            if let Some(c) = m.connection {
                write!(f, "c={c}\r\n")?;
            }
            for line in &m.other {
                write!(f, "{line}\r\n")?;
            }
            for r in &m.rtpmaps {
                write!(
                    f,
                    "a=rtpmap:{} {}/{}",
                    r.payload_type, r.encoding, r.clock_rate
                )?;
                if let Some(ch) = r.channels {
                    write!(f, "/{ch}")?;
                }
                f.write_str("\r\n")?;
            }
            for (pt, params) in &m.fmtps {
                write!(f, "a=fmtp:{pt} {params}\r\n")?;
            }
            if let Some(p) = m.ptime {
                write!(f, "a=ptime:{p}\r\n")?;
            }
            if m.rtcp_mux {
                f.write_str("a=rtcp-mux\r\n")?;
            }
            if let Some(d) = m.direction {
                write!(f, "a={}\r\n", d.as_str())?;
            }
        }
        Ok(())
    }
}
