//! RTP for external media (RFC 3550), sans-IO: the stream's 20 ms frames as
//! packets of one SSRC with their own sequence and timestamps, and the payload of
//! what the peer sends back. G.711 goes as PCMU (0) and PCMA (8) (RFC 3551
//! table 4); signed linear as L16 in network byte order (RFC 3551 section 4.5.11)
//! under dynamic types 118 (16 kHz) and 119 (8 kHz), since L16 has no static type
//! at these rates.

use api::media_stream::StreamFormat;
use rtp_types::{RtpPacket, RtpPacketBuilder};

/// The payload type a format is sent with.
pub fn payload_type(format: StreamFormat) -> u8 {
    match format {
        StreamFormat::Ulaw => 0,
        StreamFormat::Alaw => 8,
        StreamFormat::Slin16 => 118,
        StreamFormat::Slin => 119,
    }
}

/// Makes the packets of one stream.
#[derive(Debug)]
pub struct Packetizer {
    format: StreamFormat,
    ssrc: u32,
    seq: u16,
    timestamp: u32,
}

impl Packetizer {
    /// A stream starting at a random sequence number and timestamp (RFC 3550
    /// section 5.1).
    pub fn new(format: StreamFormat) -> Self {
        let seed = uuid::Uuid::new_v4().as_u128();
        Self {
            format,
            ssrc: seed as u32,
            seq: (seed >> 32) as u16,
            timestamp: (seed >> 48) as u32,
        }
    }

    /// One frame of the stream's audio (in its format, signed linear
    /// little-endian as the stream gives it) as a packet.
    pub fn packet(&mut self, audio: &[u8]) -> Vec<u8> {
        let swapped;
        let (payload, samples) = match self.format {
            StreamFormat::Slin | StreamFormat::Slin16 => {
                swapped = swap_bytes(audio);
                (swapped.as_slice(), audio.len() / 2)
            }
            StreamFormat::Ulaw | StreamFormat::Alaw => (audio, audio.len()),
        };
        let mut out = vec![0u8; 12 + payload.len()];
        let written = RtpPacketBuilder::<&[u8], &[u8]>::new()
            .payload_type(payload_type(self.format))
            .sequence_number(self.seq)
            .timestamp(self.timestamp)
            .ssrc(self.ssrc)
            .payload(payload)
            .write_into(&mut out);
        out.truncate(written.unwrap_or(0));
        self.seq = self.seq.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(samples as u32);
        out
    }
}

/// The audio of a packet the peer sent, in the stream's format (signed linear
/// little-endian); `None` for what is not RTP audio of ours (RTCP, garbage, a
/// telephone-event).
pub fn audio_of(format: StreamFormat, packet: &[u8]) -> Option<Vec<u8>> {
    let p = RtpPacket::parse(packet).ok()?;
    // RTCP shares the port when the peer muxes it (RFC 5761 section 4): types 72-76.
    if (72..=76).contains(&p.payload_type()) || p.payload_type() == 101 {
        return None;
    }
    Some(match format {
        StreamFormat::Slin | StreamFormat::Slin16 => swap_bytes(p.payload()),
        StreamFormat::Ulaw | StreamFormat::Alaw => p.payload().to_vec(),
    })
}

/// 16-bit samples with their bytes swapped (little-endian <-> network order).
fn swap_bytes(audio: &[u8]) -> Vec<u8> {
    audio
        .chunks_exact(2)
        .flat_map(|pair| [pair[1], pair[0]])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_count_samples_and_l16_goes_in_network_order() {
        let mut p = Packetizer::new(StreamFormat::Slin16);
        let first = p.packet(&[0x01, 0x02, 0x03, 0x04]);
        let second = p.packet(&[0x01, 0x02]);
        let a = RtpPacket::parse(&first).expect("RTP");
        let b = RtpPacket::parse(&second).expect("RTP");
        assert_eq!(a.payload_type(), 118);
        assert_eq!(a.payload(), &[0x02, 0x01, 0x04, 0x03]);
        assert_eq!(b.sequence_number(), a.sequence_number().wrapping_add(1));
        assert_eq!(b.timestamp(), a.timestamp().wrapping_add(2), "two samples");
        assert_eq!(a.ssrc(), b.ssrc());
        // And back: the peer's L16 becomes little-endian again.
        assert_eq!(
            audio_of(StreamFormat::Slin16, &first),
            Some(vec![0x01, 0x02, 0x03, 0x04])
        );
    }

    #[test]
    fn ulaw_packets_carry_the_bytes_as_they_are_and_garbage_is_skipped() {
        let mut p = Packetizer::new(StreamFormat::Ulaw);
        let packet = p.packet(&[0xff; 160]);
        assert_eq!(packet.len(), 172);
        assert_eq!(RtpPacket::parse(&packet).expect("RTP").payload_type(), 0);
        assert_eq!(audio_of(StreamFormat::Ulaw, &packet), Some(vec![0xff; 160]));
        assert_eq!(audio_of(StreamFormat::Ulaw, b"hello"), None);
    }
}
