//! Asterisk's AudioSocket framing, sans-IO: each message is a one-byte kind, a
//! two-byte big-endian payload length and the payload. Kinds: `0x00` hang up,
//! `0x01` the stream's UUID (16 bytes), `0x03` a DTMF digit (one ASCII byte),
//! `0x10` audio at 8 kHz (signed linear little-endian, or the stream's G.711
//! bytes as Asterisk's channel driver sends them), `0x12` signed linear at 16 kHz,
//! `0xff` an error (an optional code).

/// The most a payload may hold (the length field's limit).
pub const MAX_PAYLOAD: usize = u16::MAX as usize;

/// One AudioSocket message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// The peer hangs up: the stream ends (`0x00`).
    Hangup,
    /// The stream's id (`0x01`).
    Uuid([u8; 16]),
    /// A key (`0x03`).
    Dtmf(char),
    /// 20 ms (or any length) of audio at 8 kHz (`0x10`).
    Audio8k(Vec<u8>),
    /// Signed linear audio at 16 kHz (`0x12`).
    Audio16k(Vec<u8>),
    /// The peer reports an error, with its code if any (`0xff`).
    Error(Option<u8>),
    /// A kind this version does not know (skipped).
    Other(u8),
}

/// Why a byte stream is not AudioSocket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A UUID message whose payload is not 16 bytes.
    #[error("a UUID message of {0} bytes (16 expected)")]
    BadUuid(usize),
}

impl Message {
    /// Appends the message's bytes to `out`; a payload longer than
    /// [`MAX_PAYLOAD`] is cut there (audio frames are far shorter).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let (kind, payload): (u8, &[u8]) = match self {
            Self::Hangup => (0x00, &[]),
            Self::Uuid(id) => (0x01, id),
            Self::Dtmf(key) => {
                let byte = u8::try_from(u32::from(*key)).unwrap_or(b'?');
                return push(out, 0x03, &[byte]);
            }
            Self::Audio8k(audio) => (0x10, audio),
            Self::Audio16k(audio) => (0x12, audio),
            Self::Error(code) => match code {
                Some(c) => return push(out, 0xff, &[*c]),
                None => (0xff, &[]),
            },
            Self::Other(kind) => (*kind, &[]),
        };
        push(out, kind, payload);
    }
}

fn push(out: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    let payload = &payload[..payload.len().min(MAX_PAYLOAD)];
    out.push(kind);
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.extend_from_slice(payload);
}

/// Reads messages out of bytes as they arrive, in pieces of any size.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    /// Takes bytes that arrived.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole message, if one has arrived.
    pub fn next_message(&mut self) -> Result<Option<Message>, FrameError> {
        let [kind, hi, lo, ..] = self.buf[..] else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if self.buf.len() < 3 + len {
            return Ok(None);
        }
        let payload: Vec<u8> = self.buf.drain(..3 + len).skip(3).collect();
        Ok(Some(match kind {
            0x00 => Message::Hangup,
            0x01 => Message::Uuid(
                payload
                    .as_slice()
                    .try_into()
                    .map_err(|_| FrameError::BadUuid(payload.len()))?,
            ),
            0x03 => Message::Dtmf(payload.first().map_or('?', |b| char::from(*b))),
            0x10 => Message::Audio8k(payload),
            0x12 => Message::Audio16k(payload),
            0xff => Message::Error(payload.first().copied()),
            other => Message::Other(other),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_in_pieces_of_any_size() {
        let sent = [
            Message::Uuid([7; 16]),
            Message::Audio8k(vec![1; 320]),
            Message::Dtmf('5'),
            Message::Audio16k(vec![2; 640]),
            Message::Error(Some(4)),
            Message::Hangup,
        ];
        let mut wire = Vec::new();
        for m in &sent {
            m.encode(&mut wire);
        }
        assert_eq!(
            &wire[..3],
            &[0x01, 0x00, 0x10],
            "kind, then big-endian length"
        );
        for piece in [1, 2, 3, 7, 500, wire.len()] {
            let mut d = Decoder::default();
            let mut got = Vec::new();
            for chunk in wire.chunks(piece) {
                d.feed(chunk);
                while let Some(m) = d.next_message().expect("valid") {
                    got.push(m);
                }
            }
            assert_eq!(got, sent, "in pieces of {piece}");
        }
    }

    #[test]
    fn the_hangup_is_three_zero_bytes_and_a_short_uuid_is_an_error() {
        let mut wire = Vec::new();
        Message::Hangup.encode(&mut wire);
        assert_eq!(wire, [0, 0, 0]);
        let mut d = Decoder::default();
        d.feed(&[0x01, 0x00, 0x02, 1, 2]);
        assert_eq!(d.next_message(), Err(FrameError::BadUuid(2)));
        let mut d = Decoder::default();
        d.feed(&[0x42, 0x00, 0x01, 9]);
        assert_eq!(d.next_message(), Ok(Some(Message::Other(0x42))));
    }
}
