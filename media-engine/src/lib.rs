//! media-engine: RTP/RTCP sessions and everything done to call audio.
//!
//! # What it owns
//! RTP/RTCP sessions, the jitter buffer, G.711/Opus/telephone-event, resampling, DTMF
//! detection and generation, tones, playback, recording, bridges, the conference
//! mixer, VAD/AMD and media forks.
//!
//! # What it must not know
//! SIP, flows, providers, SQL.
//!
//! # Run loop
//! A few media workers (about one per core) each own many sessions. A bridged packet
//! is forwarded as soon as it arrives; a 20 ms tick drives what is generated or
//! mixed. The per-packet path allocates nothing and takes no lock shared across
//! calls. Control reaches a session through a channel; events come back through one.
//!
//! Status: G.711 ([`codec::G711`]), RFC 4733 events and in-band DTMF detection
//! ([`dtmf`]), the conference mixer ([`mix::Mixer`]), the adaptive jitter buffer
//! ([`jitter`]), RTP/RTCP streams ([`rtp`]: RFC 3550 statistics, sender continuity,
//! symmetric latching, SR/RR with RTT) and the worker run loop with bridged relay and
//! RTP timeouts ([`engine::Engine`]) are here; Opus, resampling, playback, recording,
//! transcoding bridges, VAD, forks and the full control surface follow (the
//! media-engine issue).

pub mod codec;
pub mod dtmf;
pub mod engine;
pub mod fork;
pub mod jitter;
pub mod mix;
pub mod resample;
pub mod rtp;
pub mod stream;
#[cfg(test)]
mod test_signal;
pub mod tone;
pub mod vad;
pub mod wav;
