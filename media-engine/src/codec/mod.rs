//! Codecs: what turns RTP payloads into 16-bit PCM frames and back.

pub mod g711;

pub use g711::G711;
