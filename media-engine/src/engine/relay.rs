//! The per-packet path: a peer's packet taken in (RTCP on a muxed port, the symmetric
//! latch, statistics, RFC 4733 events, the jitter buffer), and relayed onto the
//! bridged leg's stream, converted between formats or silenced on a mute. It runs
//! for every packet, so it allocates nothing and touches only the two legs.

use std::net::SocketAddr;
use std::time::Instant;

use rtp_types::RtpPacket;

use super::session::Session;
use super::{DtmfSource, EventSink, MediaEvent};
use crate::rtp::{LatchVerdict, ntp_now};

/// Reads a peer's RTCP report into the leg's statistics. Only the peer's host may
/// report on the stream.
pub(super) fn take_rtcp(leg: &mut Session, data: &[u8], from: SocketAddr) {
    let from_peer = leg.latch.remote().is_some_and(|r| r.ip() == from.ip());
    if from_peer
        && leg
            .rtcp_state
            .on_packet(data, Instant::now(), ntp_now())
            .is_ok()
    {
        leg.rtcp_remote = Some(from);
    }
}

/// The most samples of a packet the onset detector looks at (40 ms at 8 kHz).
const ONSET_SAMPLES: usize = 320;

/// Checks a packet from the peer of `leg` and records it; returns the slot of the leg
/// it should be relayed to. `plain` (the worker's mark that the leg only relays, so
/// the tick passes it by) is taken down when the packet gives the tick work: an
/// RFC 4733 event, whose end the tick waits for.
pub(super) fn accept_rtp(
    leg: &mut Session,
    data: &[u8],
    from: SocketAddr,
    now: Instant,
    events: &EventSink,
    plain: &mut bool,
) -> Option<usize> {
    // RFC 5761 section 4: on a muxed port, RTCP packet types 192-223 sit where RTP
    // has its marker and payload type.
    if leg.rtcp_mux && data.len() >= 8 && (192..=223).contains(&data[1]) {
        take_rtcp(leg, data, from);
        return None;
    }
    let Ok(packet) = RtpPacket::parse(data) else {
        leg.packets_dropped += 1;
        return None;
    };
    let ssrc = packet.ssrc();
    if leg.latch.observe(from, ssrc) != LatchVerdict::Accept {
        leg.packets_dropped += 1;
        return None;
    }
    if leg.remote_ssrc != Some(ssrc) {
        leg.remote_ssrc = Some(ssrc);
        leg.rtcp_state.set_remote_ssrc(ssrc);
    }
    leg.received
        .on_packet(packet.sequence_number(), packet.timestamp(), now);
    leg.packets_received += 1;
    leg.timed_out = false;
    let pt = packet.payload_type();
    if Some(pt) == leg.formats.event_pt {
        // RFC 4733 section 2.5.2: one event per key press, whatever the redundancy.
        *plain = false;
        let now_ms = now.saturating_duration_since(leg.created).as_millis() as u64;
        for d in leg
            .media
            .events_in
            .on_packet(packet.timestamp(), packet.payload(), now_ms)
            .into_iter()
            .flatten()
        {
            events.send(MediaEvent::DtmfReceived {
                session: leg.id,
                key: d.key,
                duration_ms: d.duration_ms,
                source: DtmfSource::Rfc4733,
            });
        }
    } else if pt == leg.formats.audio_pt
        // A plain leg decodes nothing (`LegMedia::only_relays`).
        && !*plain
        && let Some(jitter) = leg.media.jitter.as_mut()
    {
        let arrival_ms = now.saturating_duration_since(leg.created).as_millis() as u64;
        // Duplicates, late and dropped packets are counted by the buffer itself.
        jitter.push(
            packet.sequence_number(),
            packet.timestamp(),
            packet.payload(),
            arrival_ms,
        );
        // Barge-in: a G.711 packet's level is looked at as it arrives, ahead of
        // the jitter buffer and the VAD (crate::onset).
        if !leg.media.mute_in
            && let Some(codec) = leg.media.voice.g711()
            && let Some(gate) = leg.media.speech.as_mut()
        {
            let mut pcm = [0i16; ONSET_SAMPLES];
            let payload = packet.payload();
            let n = payload.len().min(ONSET_SAMPLES);
            codec.decode(&payload[..n], &mut pcm[..n]);
            if let Some(change) = gate.on_packet(&pcm[..n], arrival_ms) {
                events.send(super::worker::speech_event(leg.id, change));
            }
        }
    }
    leg.bridged_to
}

/// A leg's payload types and audio codec, for relaying between legs that differ.
/// Fixed when the leg opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Formats {
    audio_pt: u8,
    event_pt: Option<u8>,
    /// `None` for Opus.
    codec: Option<crate::codec::G711>,
}

impl Formats {
    pub(super) fn of(media: &super::media::LegMedia) -> Self {
        Self {
            audio_pt: media.audio_pt,
            event_pt: media.event_pt,
            codec: media.voice.g711(),
        }
    }
}

/// Moves a packet from the formats of the leg it came from to those of the leg it
/// leaves on: G.711 mu-law and A-law are converted sample by sample (in place, the
/// length is the same), and payload type numbers are rewritten (RFC 3264 lets each
/// side number them). False when the packet cannot be carried.
fn convert(packet: &mut [u8], from: Formats, to: Formats) -> bool {
    let Ok(mut p) = rtp_types::RtpPacketMut::parse(packet) else {
        return false;
    };
    let pt = p.payload_type();
    if pt == from.audio_pt {
        match (from.codec, to.codec) {
            (Some(f), Some(t)) if f != t => {
                for b in p.payload_mut() {
                    *b = t.encode_sample(f.decode_sample(*b));
                }
            }
            (Some(_), None) | (None, Some(_)) => return false,
            _ => {}
        }
        p.set_payload_type(to.audio_pt).is_ok()
    } else if Some(pt) == from.event_pt {
        to.event_pt.is_some_and(|ev| p.set_payload_type(ev).is_ok())
    } else {
        true
    }
}

/// Sends a packet received on the other leg out of `out`, moved onto its stream
/// (and into its formats when they differ); with `silence` (a mute either side) its
/// audio is replaced by the codec's silence, so the stream's timing stays intact.
/// `out_plain`: the worker's mark that `out` only relays (it plays nothing and its
/// peer takes media).
pub(super) fn forward(
    out: &mut Session,
    out_plain: bool,
    packet: &mut [u8],
    from: Formats,
    silence: bool,
    samples: u32,
    now: Instant,
) {
    if !out_plain && (out.media.overrides_relay() || out.media.send_off) {
        // The leg plays a source or sends DTMF, or its peer takes no media now.
        return;
    }
    let to = out.formats;
    if from != to && !convert(packet, from, to) {
        out.packets_dropped += 1;
        return;
    }
    if silence
        && let Ok(mut p) = rtp_types::RtpPacketMut::parse(&mut *packet)
        && p.payload_type() == to.audio_pt
    {
        match to.codec {
            Some(c) => p.payload_mut().fill(c.encode_sample(0)),
            // No cheap Opus silence: the muted frame is not sent.
            None => return,
        }
    }
    let Some(to) = out.latch.remote() else {
        out.packets_dropped += 1;
        return;
    };
    if out.sender.relay(packet, samples, now).is_err() {
        out.packets_dropped += 1;
        return;
    }
    match out.rtp.send_to(packet, to) {
        Ok(_) => out.packets_sent += 1,
        Err(_) => out.packets_dropped += 1,
    }
}
