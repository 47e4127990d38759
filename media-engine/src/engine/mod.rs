//! The media engine's run loop: a few worker threads (about one per core), each owning
//! many legs. [`Engine`] opens legs on the RTP port range, places them on workers and
//! sends them commands; [`MediaEvent`]s come back on one channel.
//!
//! ```no_run
//! use std::net::Ipv4Addr;
//! use media_engine::engine::{Engine, EngineConfig, LegParams};
//!
//! let (engine, events) = Engine::start(EngineConfig {
//!     ip: Ipv4Addr::LOCALHOST.into(),
//!     ..EngineConfig::default()
//! })?;
//! // Two legs of one call (the second on the first one's worker), each told where
//! // its peer's SDP said to send, then bridged: packets flow both ways.
//! let caller = engine.open(LegParams::default())?;
//! let callee = engine.open(LegParams { place_with: Some(caller.id), ..LegParams::default() })?;
//! engine.set_remote(caller.id, "192.0.2.10:4000".parse()?)?;
//! engine.set_remote(callee.id, "192.0.2.20:5000".parse()?)?;
//! engine.bridge(caller.id, callee.id)?;
//! while let Ok(event) = events.recv() {
//!     println!("{event:?}");
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod events;
mod media;
mod nudge;
mod ports;
mod relay;
mod session;
mod worker;

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Poll, Waker};

pub(crate) use events::EventSink;
pub use events::{EventTarget, MediaEvent};
pub use media::{DtmfSource, FRAME, PlayId, Source};
pub use ports::{PortPair, PortPool};
pub use session::SessionStats;

use crate::rtp::{RtcpSession, RtpSender};

/// A leg's id; its low byte names its worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SessionId(pub u64);

impl SessionId {
    /// The worker that runs the leg.
    pub fn worker(self) -> usize {
        (self.0 & 0xff) as usize
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The address RTP sockets bind to (and the SDP offers).
    pub ip: IpAddr,
    /// The RTP port range; each leg takes an even port and the one above.
    pub rtp_ports: RangeInclusive<u16>,
    /// Worker threads; 0 means one per core.
    pub workers: usize,
    /// Events held for a slow reader before new ones are dropped.
    pub event_queue: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            rtp_ports: 10_000..=20_000,
            workers: 0,
            event_queue: 65_536,
        }
    }
}

/// What a new leg needs to know.
#[derive(Debug, Clone)]
pub struct LegParams {
    /// Where to send until packets arrive (from the peer's SDP); none latches on the
    /// first packet.
    pub remote: Option<SocketAddr>,
    /// The host the call's signalling comes from. Media is taken only from it and
    /// from the host `remote` names (see [`crate::rtp::Latch`]); with neither given,
    /// from anyone.
    pub peer_ip: Option<IpAddr>,
    /// The RTP clock rate.
    pub clock_rate: u32,
    /// Samples per packet (the ptime at the clock rate).
    pub samples_per_packet: u32,
    /// No RTP for this long raises [`MediaEvent::RtpTimeout`].
    pub rtp_timeout: Duration,
    /// Put the leg on this leg's worker, so the two can be bridged.
    pub place_with: Option<SessionId>,
    /// The audio payload type: 0 (PCMU), 8 (PCMA), or Opus's dynamic one.
    pub audio_pt: u8,
    /// The audio payload type carries Opus (RFC 7587): the RTP clock is then 48 kHz
    /// and a packet 960 samples of it, whatever `clock_rate` says.
    pub opus: bool,
    /// The telephone-event payload type (RFC 4733), when the SDP has one.
    pub event_pt: Option<u8>,
    /// The telephone-event's clock rate when it differs from the audio's (a softphone
    /// pairing telephone-event/8000 with Opus): event durations are counted in it,
    /// while timestamps stay on the stream's clock. 0 for the audio's.
    pub event_clock_rate: u32,
    /// Listen for DTMF tones inside the audio (for carriers that do not send RFC
    /// 4733); it costs a decode and a detector per leg, so it is off for plain relays.
    pub inband_dtmf: bool,
    /// RTCP on the RTP port (RFC 5761, `a=rtcp-mux` agreed in the SDP).
    pub rtcp_mux: bool,
}

impl Default for LegParams {
    fn default() -> Self {
        Self {
            remote: None,
            peer_ip: None,
            clock_rate: 8000,
            samples_per_packet: 160,
            rtp_timeout: Duration::from_secs(30),
            place_with: None,
            audio_pt: 0,
            opus: false,
            event_pt: Some(101),
            event_clock_rate: 0,
            inband_dtmf: false,
            rtcp_mux: false,
        }
    }
}

/// A leg that was opened.
#[derive(Debug, Clone, Copy)]
pub struct OpenedLeg {
    /// Its id, for commands.
    pub id: SessionId,
    /// Its RTP address, for the SDP.
    pub local_rtp: SocketAddr,
}

/// What a worker is told.
pub(crate) enum Command {
    Add(Box<session::Session>, Option<EventTarget>),
    SetRemote(SessionId, SocketAddr),
    Bridge(SessionId, SessionId),
    Unbridge(SessionId),
    Stats(SessionId, SyncSender<Option<SessionStats>>),
    Close(SessionId),
    Play(SessionId, PlayId, Box<Source>),
    Stop(SessionId),
    SendDigits(SessionId, String, u32, u32),
    RecordStart(SessionId, std::path::PathBuf, Box<crate::wav::Recorder>),
    RecordStop(SessionId),
    Vad(SessionId, bool),
    Join(SessionId, u64),
    Leave(SessionId),
    Participant {
        id: SessionId,
        /// The room does not hear it.
        muted: bool,
        /// It does not hear the room.
        deaf: bool,
        /// Its level into the room, dB.
        gain_db: f32,
    },
    Mute {
        id: SessionId,
        /// What the peer says is not heard.
        inbound: bool,
        /// The peer hears silence.
        outbound: bool,
    },
    ExpectRtp(SessionId, bool),
    SendRtp(SessionId, bool),
    Fork(SessionId, Box<crate::fork::ForkTap>),
    Shutdown,
}

impl Command {
    /// Whether the worker must be woken for it now. The others wait for the worker's
    /// next 20 ms tick (which takes the queue before it plays, records or mixes
    /// anything), so what they change starts at the same tick it would have started
    /// at had the worker woken, and a call's setup and teardown cost the worker no
    /// wake-ups (a wake is a system call on each side and a context switch). Urgent
    /// are the commands that change how packets are relayed as they arrive (bridge,
    /// mute, hold), the ones someone waits on (statistics, shutdown), and stopping a
    /// prompt (barge-in's latency). An urgent command also delivers every command
    /// queued before it, in order.
    fn urgent(&self) -> bool {
        matches!(
            self,
            Command::Bridge(..)
                | Command::Unbridge(_)
                | Command::Stats(..)
                | Command::Stop(_)
                | Command::Mute { .. }
                | Command::SendRtp(..)
                | Command::Shutdown
        )
    }

    /// The legs the command is about (a bridge has two), so that the worker's tick
    /// looks at them again.
    fn sessions(&self) -> [Option<SessionId>; 2] {
        match self {
            Command::Add(s, _) => [Some(s.id), None],
            Command::Bridge(a, b) => [Some(*a), Some(*b)],
            Command::SetRemote(id, _)
            | Command::Unbridge(id)
            | Command::Stats(id, _)
            | Command::Close(id)
            | Command::Play(id, ..)
            | Command::Stop(id)
            | Command::SendDigits(id, ..)
            | Command::RecordStart(id, ..)
            | Command::RecordStop(id)
            | Command::Vad(id, _)
            | Command::Join(id, _)
            | Command::Leave(id)
            | Command::Participant { id, .. }
            | Command::Mute { id, .. }
            | Command::ExpectRtp(id, _)
            | Command::SendRtp(id, _)
            | Command::Fork(id, _) => [Some(*id), None],
            Command::Shutdown => [None, None],
        }
    }
}

struct WorkerHandle {
    commands: Sender<Command>,
    waker: nudge::Nudge,
    thread: Option<JoinHandle<io::Result<()>>>,
    cpu_file: Arc<std::sync::OnceLock<std::path::PathBuf>>,
}

/// The running media engine.
pub struct Engine {
    workers: Vec<WorkerHandle>,
    ports: Arc<PortPool>,
    next_id: AtomicU64,
    /// Round-robin over the workers for legs not placed with another one (counted
    /// apart from ids, so the second legs of calls do not skew it).
    next_worker: AtomicUsize,
    random: RandomState,
    events_deferred: Arc<AtomicU64>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("workers", &self.workers.len())
            .field("free_ports", &self.ports.available())
            .finish()
    }
}

impl Engine {
    /// Starts the workers; returns the engine and its event stream.
    pub fn start(config: EngineConfig) -> io::Result<(Self, Receiver<MediaEvent>)> {
        let count = if config.workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            config.workers
        }
        .min(256);
        let ports = Arc::new(PortPool::new(config.ip, config.rtp_ports.clone(), count));
        let (events_tx, events_rx) = mpsc::sync_channel(config.event_queue.max(1));
        let events_deferred = Arc::new(AtomicU64::new(0));
        let sink = EventSink::new(events_tx, events_deferred.clone());
        let mut workers = Vec::with_capacity(count);
        for n in 0..count {
            let poll = Poll::new()?;
            let (waker, nudged) = nudge::Nudge::new(Waker::new(poll.registry(), worker::WAKER)?);
            let (tx, rx) = mpsc::channel();
            let state = worker::Worker::new(n, poll, rx, nudged, sink.clone(), ports.clone());
            let cpu_file = Arc::new(std::sync::OnceLock::new());
            let cpu = cpu_file.clone();
            let thread = std::thread::Builder::new()
                .name(format!("media-{n}"))
                .spawn(move || {
                    if let Ok(link) = std::fs::read_link("/proc/thread-self") {
                        // Set once, here, by this thread.
                        cpu.set(std::path::Path::new("/proc").join(link).join("schedstat"))
                            .ok();
                    }
                    state.run()
                })?;
            workers.push(WorkerHandle {
                commands: tx,
                waker,
                thread: Some(thread),
                cpu_file,
            });
        }
        Ok((
            Self {
                workers,
                ports,
                next_id: AtomicU64::new(1),
                next_worker: AtomicUsize::new(0),
                random: RandomState::new(),
                events_deferred,
            },
            events_rx,
        ))
    }

    fn worker_of(&self, id: SessionId) -> io::Result<&WorkerHandle> {
        self.workers
            .get(id.worker())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no media leg {id}")))
    }

    fn send(&self, id: SessionId, command: Command) -> io::Result<()> {
        let worker = self.worker_of(id)?;
        let urgent = command.urgent();
        worker
            .commands
            .send(command)
            .map_err(|_| io::Error::other("the media worker has stopped"))?;
        if urgent {
            worker.waker.wake()?;
        }
        Ok(())
    }

    /// Opens a leg: binds its ports and hands it to a worker.
    pub fn open(&self, params: LegParams) -> io::Result<OpenedLeg> {
        self.open_leg(params, None)
    }

    /// Like [`Engine::open`], with the leg's events going to `events` rather than
    /// to the engine's shared stream.
    pub fn open_to(&self, params: LegParams, events: EventTarget) -> io::Result<OpenedLeg> {
        self.open_leg(params, Some(events))
    }

    fn open_leg(
        &self,
        mut params: LegParams,
        events: Option<EventTarget>,
    ) -> io::Result<OpenedLeg> {
        let voice = if params.opus {
            params.clock_rate = crate::codec::opus::OPUS_RTP_CLOCK;
            params.samples_per_packet = crate::codec::opus::OPUS_RTP_CLOCK / 50;
            let codec = crate::codec::opus::OpusCodec::new(8000, 10)
                .map_err(|e| io::Error::other(e.to_string()))?;
            media::Voice::Opus(Box::new(codec))
        } else {
            media::Voice::G711(
                crate::codec::G711::from_payload_type(params.audio_pt)
                    .unwrap_or(crate::codec::G711::Ulaw),
            )
        };
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let worker = match params.place_with {
            Some(other) => other.worker(),
            None => self.next_worker.fetch_add(1, Ordering::Relaxed) % self.workers.len(),
        };
        let id = SessionId((n << 8) | worker as u64);
        let pair = self.ports.open(worker)?;
        let local_rtp = pair.rtp_addr;
        let (rtp, rtcp, watched) = (pair.rtp, pair.rtcp, pair.watched);
        let random = self.random.hash_one(id);
        let ssrc = random as u32;
        let sender = RtpSender::new(
            ssrc,
            params.clock_rate,
            (random >> 32) as u16,
            (random >> 48) as u32 * 7919,
        );
        let media = media::LegMedia::new(
            voice,
            params.audio_pt,
            params.event_pt,
            params.clock_rate,
            params.event_clock_rate,
            params.inband_dtmf,
        );
        let session = session::Session {
            id,
            rtp,
            rtcp,
            local_rtp_port: local_rtp.port(),
            watched,
            latch: crate::rtp::Latch::new(params.remote, params.peer_ip),
            rtcp_remote: None,
            sender,
            received: crate::rtp::ReceiveStats::new(params.clock_rate),
            rtcp_state: RtcpSession::new(ssrc, format!("leg-{id}@voipbin")),
            remote_ssrc: None,
            clock_rate: params.clock_rate,
            samples_per_packet: params.samples_per_packet,
            bridged_to: None,
            created: Instant::now(),
            rtp_expected_since: Some(Instant::now()),
            rtp_timeout: params.rtp_timeout,
            timed_out: false,
            packets_received: 0,
            packets_sent: 0,
            packets_dropped: 0,
            formats: relay::Formats::of(&media),
            media: Box::new(media),
            rtcp_mux: params.rtcp_mux,
        };
        self.send(id, Command::Add(Box::new(session), events))?;
        Ok(OpenedLeg { id, local_rtp })
    }

    /// Sends the leg's RTP to `remote` (the peer's SDP, or a re-INVITE's).
    pub fn set_remote(&self, id: SessionId, remote: SocketAddr) -> io::Result<()> {
        self.send(id, Command::SetRemote(id, remote))
    }

    /// Bridges two legs on one worker: each one's packets go out of the other.
    pub fn bridge(&self, a: SessionId, b: SessionId) -> io::Result<()> {
        if a.worker() != b.worker() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "legs on different media workers; open the second with place_with",
            ));
        }
        self.send(a, Command::Bridge(a, b))
    }

    /// Ends the leg's bridge, if any.
    pub fn unbridge(&self, id: SessionId) -> io::Result<()> {
        self.send(id, Command::Unbridge(id))
    }

    /// The leg's statistics now; `None` if it is closed.
    pub fn stats(&self, id: SessionId) -> io::Result<Option<SessionStats>> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(id, Command::Stats(id, tx))?;
        rx.recv_timeout(Duration::from_secs(5))
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the media worker did not answer"))
    }

    /// Closes the leg; a [`MediaEvent::Closed`] follows with its statistics.
    pub fn close(&self, id: SessionId) -> io::Result<()> {
        self.send(id, Command::Close(id))
    }

    /// Plays `source` to the leg's peer in place of the bridged audio (a new source
    /// replaces the one playing); [`MediaEvent::PlayFinished`] names the returned id
    /// when it ends.
    pub fn play(&self, id: SessionId, source: Source) -> io::Result<PlayId> {
        let play = PlayId(self.next_id.fetch_add(1, Ordering::Relaxed));
        self.send(id, Command::Play(id, play, Box::new(source)))?;
        Ok(play)
    }

    /// Plays `source` on session `id` under a number the caller chose (unique among
    /// the session's plays), which its `PlayFinished` names; replaces what plays.
    /// For callers that keep their own numbering (a sans-IO call core).
    pub fn play_as(&self, id: SessionId, play: PlayId, source: Source) -> io::Result<()> {
        self.send(id, Command::Play(id, play, Box::new(source)))
    }

    /// Stops what the leg is playing; the bridged audio resumes.
    pub fn stop(&self, id: SessionId) -> io::Result<()> {
        self.send(id, Command::Stop(id))
    }

    /// Sends key presses as RFC 4733 events (each held `duration_ms`, end packets
    /// three times), one after the other with `interval_ms` between them (at least
    /// 40 ms); to a peer without telephone-event, as DTMF tones in the audio.
    /// [`MediaEvent::DigitsSent`] follows the last.
    pub fn send_digits(
        &self,
        id: SessionId,
        digits: &str,
        duration_ms: u32,
        interval_ms: u32,
    ) -> io::Result<()> {
        self.send(
            id,
            Command::SendDigits(id, digits.to_owned(), duration_ms, interval_ms),
        )
    }

    /// Starts recording the leg to a WAV file at `path`: the peer's audio left, what
    /// the leg sends (a source, or the bridged party) right, or both mixed. The file
    /// is readable at any moment (its header is rewritten every second).
    pub fn record_start(
        &self,
        id: SessionId,
        path: &std::path::Path,
        layout: crate::wav::RecordLayout,
    ) -> io::Result<()> {
        let recorder = crate::wav::Recorder::create(path, layout, 8000)
            .map_err(|e| io::Error::other(e.to_string()))?;
        self.send(
            id,
            Command::RecordStart(id, path.to_owned(), Box::new(recorder)),
        )
    }

    /// Stops the recording; [`MediaEvent::RecordingFinished`] follows.
    pub fn record_stop(&self, id: SessionId) -> io::Result<()> {
        self.send(id, Command::RecordStop(id))
    }

    /// Puts the leg in conference `room` (any id the caller picks; the room is made
    /// on first join and forgotten when empty): it hears the others' sum minus itself,
    /// and a source played to it is whispered (only it hears it). A room's legs must
    /// share a worker: open them with `place_with` the first one.
    pub fn join(&self, id: SessionId, room: u64) -> io::Result<()> {
        self.send(id, Command::Join(id, room))
    }

    /// Takes the leg out of its conference.
    pub fn leave(&self, id: SessionId) -> io::Result<()> {
        self.send(id, Command::Leave(id))
    }

    /// Sets a conference participant's flags: muted (the others do not hear it), deaf
    /// (it hears nothing) and its input gain in dB.
    pub fn set_participant(
        &self,
        id: SessionId,
        muted: bool,
        deaf: bool,
        gain_db: f32,
    ) -> io::Result<()> {
        self.send(
            id,
            Command::Participant {
                id,
                muted,
                deaf,
                gain_db,
            },
        )
    }

    /// Mutes the leg: `inbound`, what the peer says counts as silence (in
    /// recordings, conferences, forks and for a bridged party; key presses still
    /// count); `outbound`, the peer hears silence whatever the leg plays or is
    /// bridged to (packets keep flowing, so its jitter buffer and NAT stay warm).
    /// Each call sets both; `(false, false)` unmutes.
    pub fn mute(&self, id: SessionId, inbound: bool, outbound: bool) -> io::Result<()> {
        self.send(
            id,
            Command::Mute {
                id,
                inbound,
                outbound,
            },
        )
    }

    /// Whether the peer is expected to send RTP: not while it holds the call with
    /// `a=inactive` or `a=recvonly` (RFC 3264 section 8.4), so the RTP timeout does
    /// not end a held call; expecting it again restarts the timeout from now.
    pub fn expect_rtp(&self, id: SessionId, expected: bool) -> io::Result<()> {
        self.send(id, Command::ExpectRtp(id, expected))
    }

    /// Whether to send the peer media: not while its SDP says `a=sendonly` or
    /// `a=inactive` (RFC 3264 section 6.1: we answer recvonly or inactive). Sources
    /// keep their time while nothing goes out; sending again starts a new talk spurt.
    pub fn send_rtp(&self, id: SessionId, on: bool) -> io::Result<()> {
        self.send(id, Command::SendRtp(id, on))
    }

    /// Turns voice activity detection on the peer's audio on or off;
    /// [`MediaEvent::SpeechStarted`] and [`MediaEvent::SpeechEnded`] follow.
    pub fn vad(&self, id: SessionId, on: bool) -> io::Result<()> {
        self.send(id, Command::Vad(id, on))
    }

    /// Taps the leg's audio: 16 kHz 20 ms frames of what the peer says (in) and hears
    /// (out), on a ring of `capacity` frames that drops the oldest when the reader
    /// lags. Dropping the reader ends the fork.
    pub fn fork(
        &self,
        id: SessionId,
        directions: crate::fork::ForkDirections,
        capacity: usize,
    ) -> io::Result<crate::fork::ForkReader> {
        let (tap, reader) = crate::fork::fork(directions, capacity);
        self.send(id, Command::Fork(id, Box::new(tap)))?;
        Ok(reader)
    }

    /// Events that waited in a worker because the reader let the queue fill up
    /// (none is ever dropped).
    pub fn events_deferred(&self) -> u64 {
        self.events_deferred.load(Ordering::Relaxed)
    }

    /// CPU time the worker threads have used so far (Linux; zero elsewhere), for
    /// measuring the engine apart from anything else in the process.
    pub fn worker_cpu_time(&self) -> Duration {
        self.workers
            .iter()
            .filter_map(|w| w.cpu_file.get())
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .filter_map(|text| text.split_whitespace().next()?.parse::<u64>().ok())
            .map(Duration::from_nanos)
            .sum()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        for w in &self.workers {
            // A worker that has stopped already has nothing to be told.
            if w.commands.send(Command::Shutdown).is_ok()
                && let Err(e) = w.waker.wake()
            {
                tracing::warn!(error = %e, "a media worker could not be woken to stop");
            }
        }
        for w in &mut self.workers {
            if let Some(t) = w.thread.take() {
                match t.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "a media worker failed"),
                    Err(_) => tracing::error!("a media worker panicked"),
                }
            }
        }
    }
}
