//! `external_media_start`'s options (the reference's: `external_host`,
//! `encapsulation`, `transport`, `transport_data`, `connection_type`, `format`,
//! `direction_listen`, `direction_speak`, and seed 003's `direction` for both), read
//! into types, each bad value refused with the option's name.

use api::media_stream::StreamFormat;
use media_engine::fork::ForkDirections;
use serde_json::Value;

/// How the audio is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encapsulation {
    /// RTP (RFC 3550): one packet per 20 ms frame.
    Rtp,
    /// Asterisk's AudioSocket: a type byte, a 2-byte length, the payload.
    AudioSocket,
}

/// What carries the frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A UDP socket (RTP).
    Udp,
    /// A TCP connection (AudioSocket).
    Tcp,
    /// A WebSocket, one frame per binary message (AudioSocket).
    WebSocket,
}

/// Who opens the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// We connect to `external_host`.
    Client,
    /// We listen on the media address and `external_host` (its addresses only)
    /// connects; where we listen is told in the flow's variables.
    Server,
}

/// Which of the call's audio goes one way or the other (Asterisk's snoop
/// directions, which the original's external media is built on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Nothing.
    None,
    /// What the caller says.
    In,
    /// What the caller hears.
    Out,
    /// Both.
    Both,
}

/// `external_media_start`, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalMediaOptions {
    /// Where the peer listens: `host:port`, or a `ws://` URL for a WebSocket.
    pub external_host: String,
    /// The framing.
    pub encapsulation: Encapsulation,
    /// The transport.
    pub transport: Transport,
    /// Who connects.
    pub connection: Connection,
    /// Appended to a WebSocket's URL (its path or query), as the original appends
    /// it to the dial string.
    pub transport_data: String,
    /// The audio's format, both ways.
    pub format: StreamFormat,
    /// What the peer hears.
    pub listen: Direction,
    /// Where what the peer sends goes: `Out` and `Both` play it to the caller.
    pub speak: Direction,
}

impl ExternalMediaOptions {
    /// Reads the action's option object; the error names the option and says why.
    pub fn parse(option: &Value) -> Result<Self, String> {
        let text = |name: &str| -> Result<String, String> {
            match option.get(name) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(s)) => Ok(s.trim().to_owned()),
                Some(other) => Err(format!("{name}: expected a string, got {other}")),
            }
        };
        let external_host = text("external_host")?;
        if external_host.is_empty() {
            return Err("external_host: required (host:port of the media receiver)".into());
        }
        let encapsulation = match text("encapsulation")?.to_ascii_lowercase().as_str() {
            "" | "rtp" => Encapsulation::Rtp,
            "audiosocket" => Encapsulation::AudioSocket,
            other => {
                return Err(format!(
                    "encapsulation: {other:?} is not rtp or audiosocket"
                ));
            }
        };
        let transport = match text("transport")?.to_ascii_lowercase().as_str() {
            "" => match encapsulation {
                Encapsulation::Rtp => Transport::Udp,
                Encapsulation::AudioSocket => Transport::Tcp,
            },
            "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            "websocket" | "ws" => Transport::WebSocket,
            other => return Err(format!("transport: {other:?} is not udp, tcp or websocket")),
        };
        match (encapsulation, transport) {
            (Encapsulation::Rtp, Transport::Udp)
            | (Encapsulation::AudioSocket, Transport::Tcp | Transport::WebSocket) => {}
            (Encapsulation::Rtp, _) => {
                return Err(
                    "transport: rtp travels over udp (audiosocket over tcp or websocket)".into(),
                );
            }
            (Encapsulation::AudioSocket, _) => {
                return Err("transport: audiosocket travels over tcp or websocket, not udp".into());
            }
        }
        let connection = match text("connection_type")?.to_ascii_lowercase().as_str() {
            "" | "client" => Connection::Client,
            "server" => Connection::Server,
            other => {
                return Err(format!(
                    "connection_type: {other:?} is not client or server"
                ));
            }
        };
        let format = match (text("format")?, encapsulation) {
            (f, Encapsulation::Rtp) if f.is_empty() => StreamFormat::Ulaw,
            // AudioSocket's audio messages carry signed linear only (0x10, 0x12).
            (f, Encapsulation::AudioSocket) if f.is_empty() => StreamFormat::Slin,
            (f, _) => StreamFormat::parse(&f)
                .ok_or_else(|| format!("format: {f:?} is not ulaw, alaw, slin or slin16"))?,
        };
        if encapsulation == Encapsulation::AudioSocket
            && matches!(format, StreamFormat::Ulaw | StreamFormat::Alaw)
        {
            return Err(
                "format: audiosocket carries signed linear audio (slin or slin16), not G.711"
                    .into(),
            );
        }
        let both = direction("direction", &text("direction")?, Direction::Both)?;
        let listen = direction("direction_listen", &text("direction_listen")?, both)?;
        let speak = direction("direction_speak", &text("direction_speak")?, both)?;
        if speak == Direction::In {
            return Err("direction_speak: in (toward the call's other side) is not available in this version; out or both play the peer's audio to the caller".into());
        }
        let external_host = match (connection, transport) {
            // The peer that may connect: a host, its port (if given) not checked.
            (Connection::Server, _) => {
                peer_host(&external_host)?;
                external_host
            }
            (Connection::Client, Transport::WebSocket) => {
                websocket_url(&external_host, &text("transport_data")?)?
            }
            (Connection::Client, Transport::Udp | Transport::Tcp) => {
                host_port(&external_host)?;
                external_host
            }
        };
        Ok(Self {
            external_host,
            encapsulation,
            transport,
            connection,
            transport_data: text("transport_data")?,
            format,
            listen,
            speak,
        })
    }

    /// The fork the peer hears from, or none when it hears nothing.
    pub fn fork(&self) -> Option<ForkDirections> {
        match self.listen {
            Direction::None => None,
            Direction::In => Some(ForkDirections::In),
            Direction::Out => Some(ForkDirections::Out),
            Direction::Both => Some(ForkDirections::Both),
        }
    }

    /// Whether the caller hears what the peer sends.
    pub fn speaks(&self) -> bool {
        matches!(self.speak, Direction::Out | Direction::Both)
    }
}

fn direction(name: &str, text: &str, default: Direction) -> Result<Direction, String> {
    Ok(match text.to_ascii_lowercase().as_str() {
        "" => default,
        "none" => Direction::None,
        "in" => Direction::In,
        "out" => Direction::Out,
        "both" => Direction::Both,
        other => return Err(format!("{name}: {other:?} is not in, out, both or none")),
    })
}

/// Splits `host:port` (`[v6]:port` for IPv6).
pub fn host_port(text: &str) -> Result<(String, u16), String> {
    let bad = || format!("external_host: {text:?} is not host:port");
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

/// The host of a server mode's `external_host` (`host`, `host:port` or
/// `[v6]:port`): the one peer let in.
pub fn peer_host(text: &str) -> Result<String, String> {
    let host = match host_port(text) {
        Ok((host, _)) => host,
        Err(_) if !text.contains("://") && !text.is_empty() && !text.contains('/') => text
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        Err(_) => {
            return Err(format!(
                "external_host: {text:?} is not the host that connects (host or host:port)"
            ));
        }
    };
    Ok(host)
}

/// The WebSocket URL: `external_host` as a `ws://` URL, or `host:port` made one,
/// with `transport_data` appended.
fn websocket_url(host: &str, data: &str) -> Result<String, String> {
    let base = if host.starts_with("ws://") || host.starts_with("wss://") {
        host.to_owned()
    } else if host.contains("://") {
        return Err(format!(
            "external_host: {host:?} is not a ws:// or wss:// URL or host:port"
        ));
    } else {
        host_port(host)?;
        format!("ws://{host}")
    };
    let joined = match data {
        "" => base,
        d if d.starts_with('/') || d.starts_with('?') => {
            format!("{}{d}", base.trim_end_matches('/'))
        }
        d => format!("{}/{d}", base.trim_end_matches('/')),
    };
    let authority = authority_of(&joined);
    if authority.is_empty() {
        return Err(format!("external_host: {host:?} names no host"));
    }
    Ok(joined)
}

/// The `host:port` of a `ws://` or `wss://` URL (port 80 or 443 when it has none).
pub fn authority_of(url: &str) -> String {
    let (rest, default_port) = match url.strip_prefix("wss://") {
        Some(rest) => (rest, 443),
        None => (url.trim_start_matches("ws://"), 80),
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if authority.is_empty() || host_port(authority).is_ok() {
        authority.to_owned()
    } else {
        format!("{authority}:{default_port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_are_the_originals_rtp_over_udp_ulaw_both_ways() {
        let o =
            ExternalMediaOptions::parse(&json!({"external_host": "10.0.0.1:4000"})).expect("valid");
        assert_eq!(o.encapsulation, Encapsulation::Rtp);
        assert_eq!(o.transport, Transport::Udp);
        assert_eq!(o.format, StreamFormat::Ulaw);
        assert_eq!((o.listen, o.speak), (Direction::Both, Direction::Both));
        assert_eq!(o.fork(), Some(ForkDirections::Both));
        assert!(o.speaks());
    }

    #[test]
    fn audiosocket_defaults_to_tcp_and_websocket_urls_take_the_transport_data() {
        let o = ExternalMediaOptions::parse(&json!({
            "external_host": "127.0.0.1:9000", "encapsulation": "audiosocket",
            "format": "slin16", "direction_listen": "in", "direction_speak": "none"
        }))
        .expect("valid");
        assert_eq!(o.transport, Transport::Tcp);
        assert_eq!(o.format, StreamFormat::Slin16);
        assert_eq!(o.fork(), Some(ForkDirections::In));
        assert!(!o.speaks());
        let ws = ExternalMediaOptions::parse(&json!({
            "external_host": "127.0.0.1:9000", "encapsulation": "audiosocket",
            "transport": "websocket", "transport_data": "bot?lang=en"
        }))
        .expect("valid");
        assert_eq!(ws.external_host, "ws://127.0.0.1:9000/bot?lang=en");
        assert_eq!(ws.format, StreamFormat::Slin, "AudioSocket's default");
        assert_eq!(ws.connection, Connection::Client);
        let server = ExternalMediaOptions::parse(&json!({
            "external_host": "10.1.2.3", "connection_type": "server"
        }))
        .expect("valid");
        assert_eq!(server.connection, Connection::Server);
        assert_eq!(peer_host(&server.external_host).as_deref(), Ok("10.1.2.3"));
        // Seed 003's single `direction` sets both.
        let d = ExternalMediaOptions::parse(&json!({"external_host": "h:1", "direction": "out"}))
            .expect("valid");
        assert_eq!((d.listen, d.speak), (Direction::Out, Direction::Out));
    }

    #[test]
    fn websocket_urls_name_their_host_and_port() {
        assert_eq!(authority_of("ws://h:9/x"), "h:9");
        assert_eq!(
            authority_of("wss://bot.example.com/a?b"),
            "bot.example.com:443"
        );
        assert_eq!(authority_of("ws://10.0.0.1"), "10.0.0.1:80");
        let o = ExternalMediaOptions::parse(&json!({
            "external_host": "wss://bot.example.com", "encapsulation": "audiosocket",
            "transport": "websocket", "transport_data": "media"
        }))
        .expect("valid");
        assert_eq!(o.external_host, "wss://bot.example.com/media");
    }

    #[test]
    fn each_bad_option_is_named() {
        for (option, field) in [
            (json!({}), "external_host"),
            (json!({"external_host": "nohost"}), "external_host"),
            (json!({"external_host": "h:99999"}), "external_host"),
            (
                json!({"external_host": "h:1", "encapsulation": "srtp"}),
                "encapsulation",
            ),
            (
                json!({"external_host": "h:1", "transport": "sctp"}),
                "transport",
            ),
            (
                json!({"external_host": "h:1", "transport": "tcp"}),
                "transport",
            ),
            (
                json!({"external_host": "h:1", "encapsulation": "audiosocket", "transport": "udp"}),
                "transport",
            ),
            (
                json!({"external_host": "h:1", "encapsulation": "audiosocket", "format": "ulaw"}),
                "format",
            ),
            (
                json!({"external_host": "h:1", "connection_type": "peer"}),
                "connection_type",
            ),
            (
                json!({"external_host": "ws://h:1/x", "connection_type": "server"}),
                "external_host",
            ),
            (json!({"external_host": "h:1", "format": "opus"}), "format"),
            (
                json!({"external_host": "h:1", "direction_listen": "up"}),
                "direction_listen",
            ),
            (
                json!({"external_host": "h:1", "direction_speak": "in"}),
                "direction_speak",
            ),
            (json!({"external_host": 5}), "external_host"),
        ] {
            let err = ExternalMediaOptions::parse(&option).expect_err("refused");
            assert!(err.starts_with(field), "{option}: {err}");
        }
    }
}
