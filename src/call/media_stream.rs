//! The engine's side of a call's media stream (`GET /v1.0/calls/{id}/media_stream`,
//! [`api::media_stream`]): the caller's audio tapped from its leg (a fork that
//! drops the oldest frames when the client lags, so the call's media never waits),
//! encoded in the stream's format; the client's audio played to the caller through
//! a PCM stream that the media tick paces to 20 ms frames, whatever size it came
//! in; `mark`s echoed once the audio before them has played; `clear` dropping what
//! is queued at the next frame. The call's actor tells the stream of key presses
//! and speech; the stream ends with the call, and the client's leaving ends only
//! the stream.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use api::media_stream::{
    MediaStream, MediaStreams, OpenFuture, StreamError, StreamFormat, StreamIn, StreamOut,
};
use media_engine::codec::G711;
use media_engine::engine::{Engine, PlayId, SessionId, Source};
use media_engine::fork::{FORK_FRAME, ForkDirections, ForkFrame, ForkReader};
use media_engine::resample::FrameResampler;
use media_engine::stream::{CHUNK, StreamStopper, StreamWriter, pcm_stream};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::Services;

/// The rate of a call leg's PCM (G.711, and Opus as coded inside).
const LEG_RATE: u32 = 8000;

/// Frames of the caller's audio kept for a lagging client (1 s); older ones drop.
const FORK_RING: usize = 50;

/// Messages waiting for the client's WebSocket.
const OUT_QUEUE: usize = 16;

/// The client's audio queued ahead of playback (4 s at 8 kHz); more waits in the
/// stream task until there is room.
const PLAY_AHEAD: usize = 4 * LEG_RATE as usize;

/// Play numbers of streams: far above the call core's own (which count from 1),
/// so its `PlayFinished` bookkeeping never mistakes one for its own.
const STREAM_PLAYS: u64 = 1 << 62;

/// What the call's actor tells a stream about its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// A key press.
    Dtmf(char),
    /// Speech started (true) or ended (false).
    Speech(bool),
}

/// A stream asking the call's actor for its media session.
#[derive(Debug)]
pub struct Attach {
    /// The caller's session, or none before the call has media.
    pub reply: oneshot::Sender<Option<SessionId>>,
    /// Where the actor tells the stream what the caller does.
    pub signals: mpsc::UnboundedSender<Signal>,
}

/// The [`MediaStreams`] port on the engine's services.
pub struct Streams(pub Arc<Services>);

impl MediaStreams for Streams {
    fn open(&self, call_id: &str, format: StreamFormat) -> OpenFuture<'_> {
        let call_id = call_id.to_owned();
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            let (signals, signals_rx) = mpsc::unbounded_channel();
            if !self
                .0
                .registry
                .attach_stream(&call_id, Attach { reply, signals })
            {
                return Err(StreamError::NotLive);
            }
            let session = answer
                .await
                .map_err(|_| StreamError::NotLive)?
                .ok_or(StreamError::NoMedia)?;
            let stream_id = uuid::Uuid::now_v7().to_string();
            let span = tracing::info_span!("media_stream", %call_id, %stream_id);
            let spec = StreamSpec {
                format,
                listen: Some(ForkDirections::In),
                speak: true,
            };
            spawn(&self.0.media, session, spec, stream_id, signals_rx, span)
        })
    }
}

/// What a stream carries: its format both ways, which of the call's audio it
/// hears, and whether what comes back is played to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSpec {
    /// The audio's format, both ways.
    pub format: StreamFormat,
    /// What the stream hears: the caller (`In`), what the caller hears (`Out`), the
    /// two mixed (`Both`), or nothing (silence).
    pub listen: Option<ForkDirections>,
    /// Whether the audio that comes back is played to the caller.
    pub speak: bool,
}

/// Starts a stream on `session` (the caller's leg): taps its audio, turns its
/// speech events on, and spawns the task that runs it in `span`. The stream ends
/// with the session, or when the other side drops [`MediaStream::into`].
pub(super) fn spawn(
    media: &Arc<Engine>,
    session: SessionId,
    spec: StreamSpec,
    stream_id: String,
    signals: mpsc::UnboundedReceiver<Signal>,
    span: tracing::Span,
) -> Result<MediaStream, StreamError> {
    let directions = spec.listen.unwrap_or(ForkDirections::In);
    let fork = media
        .fork(session, directions, FORK_RING)
        .map_err(|e| StreamError::Engine(format!("tapping the call's audio: {e}")))?;
    if let Err(e) = media.vad(session, true) {
        span.in_scope(|| tracing::warn!(error = %e, "the media stream gets no speech events"));
    }
    let (out_tx, out) = mpsc::channel(OUT_QUEUE);
    let (into, into_rx) = mpsc::unbounded_channel();
    let task = StreamTask {
        media: media.clone(),
        session,
        spec,
        out: out_tx,
        player: Player::new(),
        mixer: (directions == ForkDirections::Both).then(Mixer::default),
    };
    tokio::spawn(task.run(fork, signals, into_rx).instrument(span));
    Ok(MediaStream {
        stream_id,
        out,
        into,
    })
}

/// One stream's task.
struct StreamTask {
    media: Arc<Engine>,
    session: SessionId,
    spec: StreamSpec,
    out: mpsc::Sender<StreamOut>,
    player: Player,
    /// Pairs the two directions' frames when the stream hears both.
    mixer: Option<Mixer>,
}

impl StreamTask {
    async fn run(
        mut self,
        fork: ForkReader,
        mut signals: mpsc::UnboundedReceiver<Signal>,
        mut into: mpsc::UnboundedReceiver<StreamIn>,
    ) {
        let mut encoder = Encoder::new(self.spec.format);
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut first_index = None;
        let ended = loop {
            tokio::select! {
                frame = fork.recv() => match frame {
                    Some(frame) => {
                        let (index, samples) = match self.mixer.as_mut() {
                            Some(mixer) => match mixer.push(&frame) {
                                Some(mixed) => mixed,
                                None => continue,
                            },
                            None => (frame.index, frame.samples),
                        };
                        let samples = if self.spec.listen.is_some() {
                            samples
                        } else {
                            [0; FORK_FRAME]
                        };
                        let first = *first_index.get_or_insert(index);
                        let audio = StreamOut::Audio {
                            payload: encoder.encode(&samples),
                            timestamp_ms: index.saturating_sub(first) * 20,
                        };
                        if !self.tell(audio).await {
                            break false;
                        }
                    }
                    None => break true,
                },
                signal = signals.recv() => {
                    let told = match signal {
                        Some(Signal::Dtmf(key)) => StreamOut::Dtmf(key),
                        Some(Signal::Speech(true)) => StreamOut::SpeechStarted,
                        Some(Signal::Speech(false)) => StreamOut::SpeechEnded,
                        None => break true,
                    };
                    if !self.tell(told).await {
                        break false;
                    }
                }
                command = into.recv() => match command {
                    Some(StreamIn::Audio(bytes)) => {
                        if self.spec.speak {
                            let pcm = decode(self.spec.format, &bytes);
                            self.player.push(&self.media, self.session, &pcm);
                        }
                    }
                    Some(StreamIn::Mark(name)) => {
                        if let Some(name) = self.player.mark(name)
                            && !self.tell(StreamOut::Mark(name)).await
                        {
                            break false;
                        }
                    }
                    Some(StreamIn::Clear) => {
                        for name in self.player.clear() {
                            if !self.tell(StreamOut::Mark(name)).await {
                                break;
                            }
                        }
                    }
                    // The client left: the stream ends, not the call.
                    None => break false,
                },
                _ = tick.tick() => {
                    self.player.pump();
                    for name in self.player.played_marks() {
                        if !self.tell(StreamOut::Mark(name)).await {
                            break;
                        }
                    }
                }
            }
        };
        if ended {
            // The call is over: its session and our play with it.
            if !self.tell(StreamOut::Stop("the call ended")).await {
                tracing::debug!("the media stream's client left before the call ended");
            }
        } else {
            self.player.clear();
        }
    }

    /// Sends the client a message, waiting while its socket is slow (the fork
    /// drops the oldest audio meanwhile); false when the client is gone.
    async fn tell(&self, message: StreamOut) -> bool {
        self.out.send(message).await.is_ok()
    }
}

/// Turns the fork's 16 kHz frames into the stream's format.
struct Encoder {
    format: StreamFormat,
    down: Option<FrameResampler>,
}

impl Encoder {
    fn new(format: StreamFormat) -> Self {
        let down = match format {
            StreamFormat::Slin16 => None,
            // 16 kHz to 8 kHz: a fixed ratio the resampler always takes.
            StreamFormat::Ulaw | StreamFormat::Alaw | StreamFormat::Slin => {
                FrameResampler::new(16_000, 8000).ok()
            }
        };
        Self { format, down }
    }

    fn encode(&mut self, samples: &[i16; FORK_FRAME]) -> Vec<u8> {
        let codec = match self.format {
            StreamFormat::Slin16 => return le_bytes(samples),
            StreamFormat::Ulaw => Some(G711::Ulaw),
            StreamFormat::Alaw => Some(G711::Alaw),
            StreamFormat::Slin => None,
        };
        let mut narrow = [0i16; FORK_FRAME / 2];
        match self.down.as_mut().map(|d| d.process(samples, &mut narrow)) {
            Some(Ok(())) => {}
            // Without a resampler (never: the ratio is fixed), every other sample.
            _ => {
                for (n, pair) in narrow.iter_mut().zip(samples.chunks_exact(2)) {
                    *n = pair[0];
                }
            }
        }
        let Some(codec) = codec else {
            return le_bytes(&narrow);
        };
        let mut out = vec![0u8; narrow.len()];
        codec.encode(&narrow, &mut out);
        out
    }
}

/// The client's audio as PCM at the leg's rate.
fn decode(format: StreamFormat, bytes: &[u8]) -> Vec<i16> {
    match format {
        StreamFormat::Ulaw | StreamFormat::Alaw => {
            let codec = if format == StreamFormat::Ulaw {
                G711::Ulaw
            } else {
                G711::Alaw
            };
            let mut pcm = vec![0i16; bytes.len()];
            codec.decode(bytes, &mut pcm);
            pcm
        }
        StreamFormat::Slin => le_samples(bytes),
        StreamFormat::Slin16 => {
            // Pairs averaged: 16 kHz to the leg's 8 kHz.
            le_samples(bytes)
                .chunks(2)
                .map(|p| ((i32::from(p[0]) + i32::from(*p.get(1).unwrap_or(&p[0]))) / 2) as i16)
                .collect()
        }
    }
}

/// Signed linear samples as little-endian bytes (the streams' `slin` formats).
fn le_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// Little-endian bytes as signed linear samples (an odd last byte is dropped).
fn le_samples(bytes: &[u8]) -> Vec<i16> {
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Pairs the frames of the two directions that fall at the same moment and sums
/// them (what the caller says and what it hears, as one conversation). A frame
/// whose partner does not come is passed on alone, one frame late.
#[derive(Debug, Default)]
struct Mixer {
    held: Option<ForkFrame>,
}

impl Mixer {
    /// Takes a frame; gives the frame to send, if one is complete.
    fn push(&mut self, frame: &ForkFrame) -> Option<(u64, [i16; FORK_FRAME])> {
        match self.held.take() {
            Some(held) if held.index == frame.index && held.direction != frame.direction => {
                let mut sum = held.samples;
                for (s, o) in sum.iter_mut().zip(frame.samples.iter()) {
                    *s = s.saturating_add(*o);
                }
                Some((frame.index, sum))
            }
            Some(held) => {
                self.held = Some(*frame);
                Some((held.index, held.samples))
            }
            None => {
                self.held = Some(*frame);
                None
            }
        }
    }
}

/// Plays the client's audio to the caller, and keeps its marks.
struct Player {
    /// The stream playing now, and what stops it.
    playing: Option<(StreamWriter, StreamStopper)>,
    /// Audio not yet taken by the stream (it was full).
    pending: VecDeque<i16>,
    /// Samples given to the current stream (taken or pending).
    given: u64,
    /// Marks waiting: each is played once the stream has played this many chunks.
    marks: VecDeque<(String, u64)>,
    plays: u64,
}

impl Player {
    fn new() -> Self {
        Self {
            playing: None,
            pending: VecDeque::new(),
            given: 0,
            marks: VecDeque::new(),
            plays: 0,
        }
    }

    /// Queues `pcm` for the caller, starting a stream when none plays.
    fn push(&mut self, media: &Engine, session: SessionId, pcm: &[i16]) {
        if self.playing.as_ref().is_none_or(|(w, _)| w.is_stopped()) {
            let (writer, source) = pcm_stream(PLAY_AHEAD);
            let stopper = source.stopper();
            self.plays += 1;
            if let Err(e) = media.play_as(
                session,
                PlayId(STREAM_PLAYS + self.plays),
                Source::Stream(source),
            ) {
                tracing::warn!(error = %e, "the stream's audio cannot be played");
                return;
            }
            self.playing = Some((writer, stopper));
            self.given = 0;
        }
        self.pending.extend(pcm);
        self.given += pcm.len() as u64;
        self.pump();
    }

    /// Moves pending audio into the stream as it has room.
    fn pump(&mut self) {
        let Some((writer, _)) = self.playing.as_mut() else {
            return;
        };
        while !self.pending.is_empty() {
            let (front, _) = self.pending.as_slices();
            let offered = front.len();
            let taken = writer.write(front);
            self.pending.drain(..taken);
            if taken < offered {
                break;
            }
        }
    }

    /// Keeps a mark until the audio before it has played; returns it at once when
    /// nothing is queued.
    fn mark(&mut self, name: String) -> Option<String> {
        if self.playing.is_none() || self.all_played() {
            return Some(name);
        }
        // Pad to a whole chunk (under 10 ms of silence), so the mark falls where a
        // chunk ends and the media side's count of played chunks reaches it.
        let pad = (CHUNK as u64 - self.given % CHUNK as u64) % CHUNK as u64;
        self.pending.extend(std::iter::repeat_n(0, pad as usize));
        self.given += pad;
        self.marks.push_back((name, self.given / CHUNK as u64));
        self.pump();
        None
    }

    fn all_played(&self) -> bool {
        self.pending.is_empty()
            && self.playing.as_ref().is_none_or(|(w, _)| {
                w.is_stopped() || w.played_chunks() * CHUNK as u64 >= self.given
            })
    }

    /// The marks whose audio has played.
    fn played_marks(&mut self) -> Vec<String> {
        let played = self.playing.as_ref().map_or(u64::MAX, |(w, _)| {
            if w.is_stopped() {
                u64::MAX
            } else {
                w.played_chunks()
            }
        });
        let mut done = Vec::new();
        while let Some((_, at)) = self.marks.front() {
            if *at > played {
                break;
            }
            if let Some((name, _)) = self.marks.pop_front() {
                done.push(name);
            }
        }
        done
    }

    /// Drops everything not yet played (the media side stops at its next frame);
    /// returns the marks that were waiting, for the client to hear of them.
    fn clear(&mut self) -> Vec<String> {
        if let Some((_, stopper)) = self.playing.take() {
            stopper.stop();
        }
        self.pending.clear();
        self.given = 0;
        self.marks.drain(..).map(|(name, _)| name).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_frames_are_160_bytes_and_slin16_640() {
        let frame = [1000i16; FORK_FRAME];
        assert_eq!(Encoder::new(StreamFormat::Ulaw).encode(&frame).len(), 160);
        assert_eq!(Encoder::new(StreamFormat::Slin16).encode(&frame).len(), 640);
        // The client's audio comes back at the leg's rate.
        assert_eq!(decode(StreamFormat::Ulaw, &[0xff; 160]).len(), 160);
        assert_eq!(decode(StreamFormat::Slin16, &[0; 640]).len(), 160);
        assert_eq!(Encoder::new(StreamFormat::Slin).encode(&frame).len(), 320);
        assert_eq!(decode(StreamFormat::Slin, &[0; 320]).len(), 160);
    }

    #[test]
    fn both_directions_are_summed_by_moment_and_a_lone_frame_goes_on_one_frame_late() {
        use media_engine::fork::Direction;
        let frame = |direction, index, value| ForkFrame {
            direction,
            index,
            samples: [value; FORK_FRAME],
        };
        let mut mixer = Mixer::default();
        assert_eq!(mixer.push(&frame(Direction::In, 0, 100)), None);
        let (index, mixed) = mixer.push(&frame(Direction::Out, 0, 50)).expect("a pair");
        assert_eq!((index, mixed[0]), (0, 150));
        // Only the caller speaks: each frame goes when the next comes.
        assert_eq!(mixer.push(&frame(Direction::In, 1, 7)), None);
        let (index, alone) = mixer
            .push(&frame(Direction::In, 2, 9))
            .expect("the held one");
        assert_eq!((index, alone[0]), (1, 7));
        // Loud sums saturate rather than wrap.
        let mut mixer = Mixer::default();
        assert_eq!(mixer.push(&frame(Direction::In, 3, 30_000)), None);
        let (_, loud) = mixer
            .push(&frame(Direction::Out, 3, 30_000))
            .expect("a pair");
        assert_eq!(loud[0], i16::MAX);
    }

    #[test]
    fn a_mark_with_nothing_queued_comes_back_at_once_and_clear_returns_the_waiting_ones() {
        let mut player = Player::new();
        assert_eq!(player.mark("first".into()), Some("first".into()));
        // With audio queued (no engine here: set up the stream by hand).
        let (writer, source) = pcm_stream(PLAY_AHEAD);
        player.playing = Some((writer, source.stopper()));
        player.pending.extend([1i16; 100]);
        player.given = 100;
        assert_eq!(player.mark("second".into()), None);
        assert!(player.played_marks().is_empty(), "nothing has played");
        assert_eq!(player.clear(), vec!["second".to_owned()]);
        drop(source);
    }
}
