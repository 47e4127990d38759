//! G.711 (ITU-T G.711): mu-law (PCMU, payload type 0) and A-law (PCMA, payload
//! type 8), on whole frames, allocation-free.
//!
//! The companding itself comes from the `audio-codec-algorithms` crate; its results
//! are laid out once in lookup tables (256 entries to decode, 65,536 to encode), so a
//! 20 ms frame costs one table read per sample. The tests check them against values
//! of ITU-T G.711's tables.

use std::sync::OnceLock;

use audio_codec_algorithms::{decode_alaw, decode_ulaw, encode_alaw, encode_ulaw};

/// Which G.711 law.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum G711 {
    /// mu-law: PCMU, North America and Japan.
    Ulaw,
    /// A-law: PCMA, elsewhere.
    Alaw,
}

struct Tables {
    decode: [[i16; 256]; 2],
    encode: [Box<[u8]>; 2],
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut decode = [[0i16; 256]; 2];
        for code in 0..=255u8 {
            decode[0][usize::from(code)] = decode_ulaw(code);
            decode[1][usize::from(code)] = decode_alaw(code);
        }
        let build =
            |f: fn(i16) -> u8| -> Box<[u8]> { (0..=u16::MAX).map(|u| f(u as i16)).collect() };
        Tables {
            decode,
            encode: [build(encode_ulaw), build(encode_alaw)],
        }
    })
}

impl G711 {
    fn index(self) -> usize {
        match self {
            G711::Ulaw => 0,
            G711::Alaw => 1,
        }
    }

    /// The static RTP payload type (RFC 3551).
    pub fn payload_type(self) -> u8 {
        match self {
            G711::Ulaw => 0,
            G711::Alaw => 8,
        }
    }

    /// The law of a static payload type.
    pub fn from_payload_type(pt: u8) -> Option<Self> {
        match pt {
            0 => Some(G711::Ulaw),
            8 => Some(G711::Alaw),
            _ => None,
        }
    }

    /// The code of silence (a zero sample).
    pub fn silence(self) -> u8 {
        self.encode_sample(0)
    }

    /// Encodes one sample.
    pub fn encode_sample(self, sample: i16) -> u8 {
        tables().encode[self.index()][usize::from(sample as u16)]
    }

    /// Decodes one code.
    pub fn decode_sample(self, code: u8) -> i16 {
        tables().decode[self.index()][usize::from(code)]
    }

    /// Encodes `pcm` into `out` (as many samples as both hold).
    pub fn encode(self, pcm: &[i16], out: &mut [u8]) {
        let table = &tables().encode[self.index()];
        for (o, s) in out.iter_mut().zip(pcm) {
            *o = table[usize::from(*s as u16)];
        }
    }

    /// Decodes `data` into `out` (as many samples as both hold).
    pub fn decode(self, data: &[u8], out: &mut [i16]) {
        let table = &tables().decode[self.index()];
        for (o, c) in out.iter_mut().zip(data) {
            *o = table[usize::from(*c)];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::G711;

    /// Values of ITU-T G.711 (and RFC 3551's silence codes): the largest
    /// magnitudes, the smallest steps, and silence.
    #[test]
    fn itu_table_values() {
        let u = G711::Ulaw;
        assert_eq!(u.decode_sample(0x80), 32124, "mu-law positive maximum");
        assert_eq!(u.decode_sample(0x00), -32124, "mu-law negative maximum");
        assert_eq!(u.decode_sample(0xFF), 0, "mu-law positive zero");
        assert_eq!(u.decode_sample(0x7F), 0, "mu-law negative zero");
        assert_eq!(u.decode_sample(0xFE), 8);
        assert_eq!(u.silence(), 0xFF);
        let a = G711::Alaw;
        assert_eq!(a.decode_sample(0xAA), 32256, "A-law positive maximum");
        assert_eq!(a.decode_sample(0x2A), -32256, "A-law negative maximum");
        assert_eq!(a.decode_sample(0xD5), 8, "A-law smallest positive step");
        assert_eq!(a.decode_sample(0x55), -8);
        assert_eq!(a.silence(), 0xD5);
    }

    #[test]
    fn every_code_survives_a_round_trip() {
        for law in [G711::Ulaw, G711::Alaw] {
            for code in 0..=255u8 {
                let pcm = law.decode_sample(code);
                assert_eq!(
                    law.decode_sample(law.encode_sample(pcm)),
                    pcm,
                    "{law:?} {code:#04x}"
                );
            }
        }
    }

    #[test]
    fn companding_error_is_bounded() {
        // G.711's largest step is 1024 (mu-law) or 1024 (A-law) at the top segment,
        // so a sample comes back within half a step.
        for law in [G711::Ulaw, G711::Alaw] {
            for s in (i16::MIN..=i16::MAX).step_by(7) {
                let back = i32::from(law.decode_sample(law.encode_sample(s)));
                assert!((back - i32::from(s)).abs() <= 1024, "{law:?} {s} -> {back}");
            }
        }
    }

    #[test]
    fn frames_encode_and_decode_without_allocating_buffers() {
        let pcm: Vec<i16> = (0..160)
            .map(|i| ((i as f32 * 0.3).sin() * 12_000.0) as i16)
            .collect();
        let mut coded = [0u8; 160];
        let mut back = [0i16; 160];
        G711::Ulaw.encode(&pcm, &mut coded);
        G711::Ulaw.decode(&coded, &mut back);
        let err: i64 = pcm
            .iter()
            .zip(back)
            .map(|(a, b)| (i64::from(*a) - i64::from(b)).abs())
            .max()
            .unwrap_or(0);
        assert!(err < 400, "max error {err}");
        assert_eq!(G711::from_payload_type(8), Some(G711::Alaw));
        assert_eq!(G711::Alaw.payload_type(), 8);
    }
}
