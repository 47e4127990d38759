//! Codecs: what turns RTP payloads into 16-bit PCM frames and back.

pub mod g711;
pub mod opus;

pub use g711::G711;
pub use opus::OpusCodec;
