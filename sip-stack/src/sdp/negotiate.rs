//! Offer/answer (RFC 3264): answering an offer with the codecs both sides have, and
//! making an offer (for late-offer calls, where the INVITE has no SDP and the offer
//! goes in our 200). Choosing ports belongs to the media engine; this module is given
//! the address and port to advertise.

use std::net::IpAddr;

use super::session::{Connection, Direction, Media, RtpMap, SessionDescription};

/// A codec the local side can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codec {
    /// The encoding name (compared case-insensitively).
    pub name: &'static str,
    /// The RTP clock rate.
    pub clock_rate: u32,
    /// Channels, when the rtpmap names them (opus: 2).
    pub channels: Option<u8>,
    /// The static payload type (RFC 3551), if any.
    pub static_pt: Option<u8>,
    /// The payload type to offer when there is no static one.
    pub dynamic_pt: u8,
    /// The fmtp to offer.
    pub fmtp: Option<&'static str>,
}

/// G.711 mu-law.
pub const PCMU: Codec = Codec {
    name: "PCMU",
    clock_rate: 8000,
    channels: None,
    static_pt: Some(0),
    dynamic_pt: 0,
    fmtp: None,
};
/// G.711 A-law.
pub const PCMA: Codec = Codec {
    name: "PCMA",
    clock_rate: 8000,
    channels: None,
    static_pt: Some(8),
    dynamic_pt: 8,
    fmtp: None,
};
/// Opus (RFC 7587).
pub const OPUS: Codec = Codec {
    name: "opus",
    clock_rate: 48000,
    channels: Some(2),
    static_pt: None,
    dynamic_pt: 111,
    fmtp: Some("minptime=10;useinbandfec=1"),
};
/// RFC 4733 DTMF events.
pub const TELEPHONE_EVENT: Codec = Codec {
    name: "telephone-event",
    clock_rate: 8000,
    channels: None,
    static_pt: None,
    dynamic_pt: 101,
    fmtp: Some("0-16"),
};

/// What the local side offers or accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// The address to put in `c=`.
    pub addr: IpAddr,
    /// The RTP port.
    pub port: u16,
    /// Audio codecs in preference order (telephone-event is added on its own).
    pub codecs: Vec<Codec>,
    /// Packet time in ms.
    pub ptime: u32,
    /// The `o=` session id.
    pub session_id: u64,
    /// The `o=` version (bump it for every new offer or answer in a dialog).
    pub session_version: u64,
}

/// The audio stream both sides agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioStream {
    /// Where to send RTP.
    pub remote_addr: IpAddr,
    /// The remote RTP port.
    pub remote_port: u16,
    /// The payload type to send and the codec it means.
    pub payload_type: u8,
    /// The codec.
    pub codec: Codec,
    /// The telephone-event payload type, when both sides have it.
    pub telephone_event: Option<u8>,
    /// Its clock rate (8000, or the audio's: 48000 beside Opus).
    pub telephone_event_rate: u32,
    /// Packet time in ms.
    pub ptime: u32,
    /// Our direction.
    pub direction: Direction,
    /// RTCP on the RTP port (RFC 5761).
    pub rtcp_mux: bool,
}

/// Why no media could be agreed on: the INVITE is answered with 488.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no common codec: the offer has {offered}")]
pub struct NoCommonCodec {
    /// The offered formats, for the message.
    pub offered: String,
}

/// The codec a payload type means in a media section (rtpmap, else static).
fn codec_of(m: &Media, pt: u8) -> Option<(String, u32)> {
    match m.rtpmap(pt) {
        Some(RtpMap {
            encoding,
            clock_rate,
            ..
        }) => Some((encoding.clone(), *clock_rate)),
        None => match pt {
            0 => Some(("PCMU".into(), 8000)),
            8 => Some(("PCMA".into(), 8000)),
            _ => None,
        },
    }
}

fn matches(codec: &Codec, name: &str, rate: u32) -> bool {
    codec.name.eq_ignore_ascii_case(name) && codec.clock_rate == rate
}

fn origin(local: &LocalMedia) -> String {
    let kind = if local.addr.is_ipv4() { "IP4" } else { "IP6" };
    format!(
        "voipbin {} {} IN {kind} {}",
        local.session_id, local.session_version, local.addr
    )
}

fn rtpmap(codec: &Codec, pt: u8) -> RtpMap {
    RtpMap {
        payload_type: pt,
        encoding: codec.name.to_owned(),
        clock_rate: codec.clock_rate,
        channels: codec.channels,
    }
}

/// Answers `offer`: the first audio stream with a common codec is accepted (codecs in
/// the offer's order), every other stream is rejected with port 0.
pub fn answer(
    offer: &SessionDescription,
    local: &LocalMedia,
) -> Result<(SessionDescription, AudioStream), NoCommonCodec> {
    let mut stream = None;
    let mut media = Vec::with_capacity(offer.media.len());
    for m in &offer.media {
        let usable = stream.is_none()
            && m.kind == "audio"
            && m.port != 0
            && matches!(m.proto.as_str(), "RTP/AVP" | "RTP/AVPF");
        let mut chosen: Vec<(u8, Codec)> = Vec::new();
        // Every telephone-event offered, with its clock rate.
        let mut events: Vec<(u8, u32)> = Vec::new();
        if usable {
            for pt in m.payload_types() {
                let Some((name, rate)) = codec_of(m, pt) else {
                    continue;
                };
                if let Some(c) = local.codecs.iter().find(|c| matches(c, &name, rate)) {
                    chosen.push((pt, *c));
                } else if name.eq_ignore_ascii_case(TELEPHONE_EVENT.name) {
                    events.push((pt, rate));
                }
            }
        }
        // The events' clock should be the audio's (RFC 4733 section 2.1: one
        // timestamp clock in the stream; Opus offers come with telephone-event/48000),
        // else the usual 8000.
        let dtmf = chosen.first().and_then(|(_, audio)| {
            events
                .iter()
                .find(|(_, rate)| *rate == audio.clock_rate)
                .or_else(|| events.iter().find(|(_, rate)| *rate == 8000))
                .map(|&(pt, rate)| (pt, rate))
        });
        let remote_addr = offer.media_addr(m);
        match (chosen.first(), remote_addr) {
            (Some(&(pt, codec)), Some(addr)) => {
                let offered_dir = m.direction.or(offer.direction).unwrap_or_default();
                let direction = offered_dir.answer();
                let ptime = m.ptime.unwrap_or(local.ptime);
                let mut formats: Vec<String> =
                    chosen.iter().map(|(pt, _)| pt.to_string()).collect();
                let mut rtpmaps: Vec<RtpMap> =
                    chosen.iter().map(|(pt, c)| rtpmap(c, *pt)).collect();
                // Our own parameters where the codec has them (RFC 7587 section 7:
                // Opus's say what this side receives and sends, so echoing the
                // offer's stereo=1 would promise stereo); else the offer's.
                let mut fmtps: Vec<(u8, String)> = chosen
                    .iter()
                    .filter_map(|(pt, c)| {
                        c.fmtp.or_else(|| m.fmtp(*pt)).map(|f| (*pt, f.to_owned()))
                    })
                    .collect();
                if let Some((te, rate)) = dtmf {
                    formats.push(te.to_string());
                    let events = Codec {
                        clock_rate: rate,
                        ..TELEPHONE_EVENT
                    };
                    rtpmaps.push(rtpmap(&events, te));
                    fmtps.push((te, m.fmtp(te).unwrap_or("0-16").to_owned()));
                }
                media.push(Media {
                    kind: m.kind.clone(),
                    port: local.port,
                    proto: m.proto.clone(),
                    formats,
                    connection: None,
                    rtpmaps,
                    fmtps,
                    ptime: Some(ptime),
                    direction: Some(direction),
                    rtcp_mux: m.rtcp_mux,
                    other: Vec::new(),
                });
                stream = Some(AudioStream {
                    remote_addr: addr,
                    remote_port: m.port,
                    payload_type: pt,
                    codec,
                    telephone_event: dtmf.map(|(pt, _)| pt),
                    telephone_event_rate: dtmf.map_or(8000, |(_, rate)| rate),
                    ptime,
                    direction,
                    rtcp_mux: m.rtcp_mux,
                });
            }
            _ => media.push(Media {
                port: 0,
                connection: None,
                rtpmaps: Vec::new(),
                fmtps: Vec::new(),
                ptime: None,
                direction: None,
                rtcp_mux: false,
                other: Vec::new(),
                ..m.clone()
            }),
        }
    }
    let Some(stream) = stream else {
        let offered = offer
            .media
            .iter()
            .map(|m| {
                format!(
                    "{} {}",
                    m.kind,
                    m.formats
                        .iter()
                        .map(|f| {
                            f.parse()
                                .ok()
                                .and_then(|pt| codec_of(m, pt))
                                .map_or(f.clone(), |(n, r)| format!("{n}/{r}"))
                        })
                        .collect::<Vec<_>>()
                        .join(",")
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        return Err(NoCommonCodec { offered });
    };
    let sdp = SessionDescription {
        origin: origin(local),
        session_name: "-".into(),
        connection: Some(Connection { addr: local.addr }),
        direction: None,
        other: vec!["t=0 0".into()],
        media,
    };
    Ok((sdp, stream))
}

/// An offer with every local codec and telephone-event.
pub fn offer(local: &LocalMedia, direction: Direction) -> SessionDescription {
    let mut formats = Vec::new();
    let mut rtpmaps = Vec::new();
    let mut fmtps = Vec::new();
    for c in local.codecs.iter().chain(std::iter::once(&TELEPHONE_EVENT)) {
        let pt = c.static_pt.unwrap_or(c.dynamic_pt);
        formats.push(pt.to_string());
        rtpmaps.push(rtpmap(c, pt));
        if let Some(f) = c.fmtp {
            fmtps.push((pt, f.to_owned()));
        }
    }
    SessionDescription {
        origin: origin(local),
        session_name: "-".into(),
        connection: Some(Connection { addr: local.addr }),
        direction: None,
        other: vec!["t=0 0".into()],
        media: vec![Media {
            kind: "audio".into(),
            port: local.port,
            proto: "RTP/AVP".into(),
            formats,
            connection: None,
            rtpmaps,
            fmtps,
            ptime: Some(local.ptime),
            direction: Some(direction),
            rtcp_mux: false,
            other: Vec::new(),
        }],
    }
}

/// Reads the answer to our offer: the stream to send on (the first codec the answer
/// lists that we offered).
pub fn accept_answer(
    our_offer: &SessionDescription,
    answer: &SessionDescription,
) -> Result<AudioStream, NoCommonCodec> {
    let fail = || NoCommonCodec {
        offered: "our offer was not accepted".into(),
    };
    let ours = our_offer.media.first().ok_or_else(fail)?;
    let m = answer
        .media
        .iter()
        .find(|m| m.kind == "audio" && m.port != 0)
        .ok_or_else(fail)?;
    let addr = answer.media_addr(m).ok_or_else(fail)?;
    let mut dtmf = None;
    let mut chosen = None;
    for pt in m.payload_types() {
        let Some((name, rate)) = codec_of(m, pt).or_else(|| codec_of(ours, pt)) else {
            continue;
        };
        if name.eq_ignore_ascii_case(TELEPHONE_EVENT.name) {
            dtmf.get_or_insert((pt, rate));
        } else if chosen.is_none()
            && let Some(c) = [PCMU, PCMA, OPUS]
                .into_iter()
                .find(|c| matches(c, &name, rate))
        {
            chosen = Some((pt, c));
        }
    }
    let (pt, codec) = chosen.ok_or_else(fail)?;
    Ok(AudioStream {
        remote_addr: addr,
        remote_port: m.port,
        payload_type: pt,
        codec,
        telephone_event: dtmf.map(|(pt, _)| pt),
        telephone_event_rate: dtmf.map_or(8000, |(_, rate)| rate),
        ptime: m.ptime.or(ours.ptime).unwrap_or(20),
        direction: m
            .direction
            .or(answer.direction)
            .unwrap_or_default()
            .answer(),
        rtcp_mux: m.rtcp_mux,
    })
}
