//! Opus (RFC 6716, RTP payload RFC 7587) through the `opus` crate, which bundles
//! libopus 1.6 (built with cmake). A leg codes 20 ms frames at its internal rate (8,
//! 16 or 48 kHz; the RTP clock is 48 kHz whatever the rate, RFC 7587 section 4.1). A
//! lost packet is rebuilt from the next one's in-band FEC when that has arrived, and
//! concealed by libopus's PLC when it has not.

use opus::{Application, Channels, Decoder, Encoder};

/// The RTP clock rate of Opus, whatever the audio rate (RFC 7587 section 4.1).
pub const OPUS_RTP_CLOCK: u32 = 48_000;

/// What went wrong in Opus.
#[derive(Debug, thiserror::Error)]
#[error("opus: {0}")]
pub struct OpusError(#[from] opus::Error);

/// An Opus encoder and decoder for one leg, mono.
pub struct OpusCodec {
    encoder: Encoder,
    decoder: Decoder,
    frame: usize,
}

impl std::fmt::Debug for OpusCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusCodec")
            .field("frame", &self.frame)
            .finish()
    }
}

impl OpusCodec {
    /// A codec for 20 ms frames at `rate` (8000, 12000, 16000, 24000 or 48000), with
    /// in-band FEC tuned for `expected_loss_pct` packet loss.
    pub fn new(rate: u32, expected_loss_pct: u8) -> Result<Self, OpusError> {
        let mut encoder = Encoder::new(rate, Channels::Mono, Application::Voip)?;
        encoder.set_inband_fec(true)?;
        encoder.set_packet_loss_perc(i32::from(expected_loss_pct.min(100)))?;
        let decoder = Decoder::new(rate, Channels::Mono)?;
        Ok(Self {
            encoder,
            decoder,
            frame: rate as usize / 50,
        })
    }

    /// Samples in a frame.
    pub fn frame_len(&self) -> usize {
        self.frame
    }

    /// Encodes one frame into `out` (1275 bytes is always enough); returns its length.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, OpusError> {
        Ok(self.encoder.encode(pcm, out)?)
    }

    /// Decodes a packet into `out` (room for at least one frame); returns the samples.
    pub fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, OpusError> {
        Ok(self.decoder.decode(payload, out, false)?)
    }

    /// Fills `out` (one frame) for a lost packet: from `next`'s FEC data when the
    /// packet after it is already here, else by concealment.
    pub fn decode_lost(
        &mut self,
        next: Option<&[u8]>,
        out: &mut [i16],
    ) -> Result<usize, OpusError> {
        let frame = self.frame.min(out.len());
        match next {
            Some(next) => Ok(self.decoder.decode(next, &mut out[..frame], true)?),
            None => Ok(self.decoder.decode(&[], &mut out[..frame], false)?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{frequency, mean_square};
    use crate::tone::{Tone, ToneGenerator};

    fn encoded_tone(codec: &mut OpusCodec, rate: u32, frames: usize) -> Vec<Vec<u8>> {
        let mut g = ToneGenerator::new(Tone::ringback_eu(), rate);
        let mut pcm = vec![0i16; codec.frame_len()];
        let mut out = [0u8; 1275];
        (0..frames)
            .map(|_| {
                g.fill(&mut pcm);
                let n = codec.encode(&pcm, &mut out).expect("encodes");
                out[..n].to_vec()
            })
            .collect()
    }

    #[test]
    fn a_tone_survives_encoding_at_8_16_and_48_khz() {
        for rate in [8000, 16_000, 48_000] {
            let mut codec = OpusCodec::new(rate, 10).expect("libopus");
            let packets = encoded_tone(&mut codec, rate, 40);
            let mut out = vec![0i16; codec.frame_len()];
            let mut all = Vec::new();
            for p in &packets {
                let n = codec.decode(p, &mut out).expect("decodes");
                assert_eq!(n, codec.frame_len());
                all.extend_from_slice(&out[..n]);
            }
            let f = frequency(&all[all.len() / 2..], rate);
            assert!((f - 425.0).abs() < 10.0, "{rate} Hz: {f}");
        }
    }

    #[test]
    fn a_lost_packet_comes_back_from_fec_or_plc() {
        let mut codec = OpusCodec::new(16_000, 20).expect("libopus");
        let packets = encoded_tone(&mut codec, 16_000, 30);
        let mut out = vec![0i16; 320];
        for p in &packets[..20] {
            codec.decode(p, &mut out).expect("decodes");
        }
        // Packet 20 is lost; 21 has arrived: FEC.
        let n = codec
            .decode_lost(Some(&packets[21]), &mut out)
            .expect("fec");
        assert_eq!(n, 320);
        assert!(
            mean_square(&out) > 0.25 * mean_square(&[(0.2 * 32767.0) as i16; 1]) / 2.0,
            "FEC frame energy {}",
            mean_square(&out)
        );
        codec.decode(&packets[21], &mut out).expect("decodes");
        // Packet 22 is lost and nothing after it yet: PLC.
        let n = codec.decode_lost(None, &mut out).expect("plc");
        assert_eq!(n, 320);
        assert!(mean_square(&out) > 0.0);
    }
}
