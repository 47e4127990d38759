//! SDP as text in and out (RFC 8866) and offer/answer (RFC 3264): codecs PCMU, PCMA,
//! opus and telephone-event with payload-type mapping, ptime, direction attributes,
//! connection lines per session and per media, rtcp-mux, port 0 to reject a stream,
//! late offers, and 488 when nothing is common.

pub mod negotiate;
pub mod session;

pub use negotiate::{
    AudioStream, Codec, LocalMedia, NoCommonCodec, OPUS, PCMA, PCMU, TELEPHONE_EVENT,
    accept_answer, answer, offer,
};
pub use session::{Connection, Direction, Media, RtpMap, SdpError, SessionDescription};

#[cfg(test)]
mod tests;
