//! The port through which a WebSocket client streams a live call's audio both ways
//! (`GET /v1.0/calls/{id}/media_stream`): what the API asks of the engine
//! ([`MediaStreams`]), the audio format, and the messages each side passes. The
//! engine owns the audio (codecs, pacing, the call's media); the API owns the
//! WebSocket and its JSON.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::mpsc;

/// An opening in flight.
pub type OpenFuture<'a> =
    Pin<Box<dyn Future<Output = Result<MediaStream, StreamError>> + Send + 'a>>;

/// The audio format of a stream, both ways (the names of the original's
/// `external_media` formats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFormat {
    /// G.711 mu-law at 8 kHz (the default, as Twilio Media Streams send).
    Ulaw,
    /// G.711 A-law at 8 kHz.
    Alaw,
    /// 16-bit signed little-endian PCM at 8 kHz (AudioSocket's own audio).
    Slin,
    /// 16-bit signed little-endian PCM at 16 kHz.
    Slin16,
}

impl StreamFormat {
    /// The format named `text` (`ulaw`, `alaw`, `slin`, `slin16`).
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "ulaw" | "mulaw" | "pcmu" => Some(Self::Ulaw),
            "alaw" | "pcma" => Some(Self::Alaw),
            "slin" | "slin8" => Some(Self::Slin),
            "slin16" => Some(Self::Slin16),
            _ => None,
        }
    }

    /// Its name in the `start` message.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ulaw => "ulaw",
            Self::Alaw => "alaw",
            Self::Slin => "slin",
            Self::Slin16 => "slin16",
        }
    }

    /// Its sample rate.
    pub fn rate(self) -> u32 {
        match self {
            Self::Ulaw | Self::Alaw | Self::Slin => 8000,
            Self::Slin16 => 16_000,
        }
    }
}

/// What the engine sends the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamOut {
    /// 20 ms of what the caller says, in the stream's format.
    Audio {
        /// The encoded audio.
        payload: Vec<u8>,
        /// Its place in the stream, in ms from the stream's start.
        timestamp_ms: u64,
    },
    /// The caller pressed a key.
    Dtmf(char),
    /// The caller started speaking (voice activity).
    SpeechStarted,
    /// The caller stopped speaking.
    SpeechEnded,
    /// The client's mark: everything it sent before the mark has been played (or
    /// dropped by a `clear`).
    Mark(String),
    /// The stream is over (the call ended).
    Stop(&'static str),
}

/// What the client sends the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamIn {
    /// Audio for the caller to hear, in the stream's format, any length.
    Audio(Vec<u8>),
    /// Tell the client when the audio sent so far has been played.
    Mark(String),
    /// Drop every frame not yet played, at once (barge-in).
    Clear,
}

/// An open stream: the engine's messages, and the channel for the client's.
#[derive(Debug)]
pub struct MediaStream {
    /// The stream's id.
    pub stream_id: String,
    /// From the engine, in order; closed when the stream is over.
    pub out: mpsc::Receiver<StreamOut>,
    /// To the engine; dropping it ends the stream (not the call).
    pub into: mpsc::UnboundedSender<StreamIn>,
}

/// Why a stream could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// No such call is live here.
    #[error("the call is not live")]
    NotLive,
    /// The call has no media yet (it is not answered).
    #[error("the call has no media yet: it is not answered")]
    NoMedia,
    /// The engine could not do it.
    #[error("{0}")]
    Engine(String),
}

/// What the API asks of the engine.
pub trait MediaStreams: Send + Sync {
    /// Opens a stream on the live call `call_id`.
    fn open(&self, call_id: &str, format: StreamFormat) -> OpenFuture<'_>;
}
