//! What a leg does with audio on the worker's 20 ms tick: it decodes what the peer
//! sends when something needs to hear it (recording, in-band DTMF, echo), plays a
//! source to the peer in place of the bridged audio (a prompt, a tone, a PCM stream,
//! silence, echo), sends RFC 4733 key presses, and writes the recording. Everything
//! here is sized when the leg or the command is set up; a tick allocates nothing.

use std::sync::Arc;

use crate::codec::G711;
use crate::codec::opus::OpusCodec;
use crate::dtmf::goertzel::InbandDetector;
use crate::dtmf::rfc4733::{EventPacket, EventReceiver, send_packets};
use crate::fork::{Direction, FORK_FRAME, ForkTap};
use crate::jitter::{JitterBuffer, Pop, conceal};
use crate::resample::FrameResampler;
use crate::stream::{StreamFill, StreamSource};
use crate::tone::{Tone, ToneGenerator};
use crate::vad::{Vad, VadEvent};
use crate::wav::{Prompt, Recorder};

/// How many ticks of nothing from the peer the in-band tone detector still hears
/// (200 ms: longer than its end-of-tone hangover).
const QUIET_DETECT_TICKS: u32 = 10;
/// Samples in one 20 ms frame at 8 kHz, the rate every leg's audio is handled at.
pub const FRAME: usize = 160;

/// The largest encoded frame (an Opus packet is at most 1275 bytes, RFC 6716).
const MAX_ENCODED: usize = 1275;

/// How a leg's audio is coded on the wire.
#[derive(Debug)]
pub(crate) enum Voice {
    /// PCMU or PCMA.
    G711(G711),
    /// Opus, coded at the leg's 8 kHz (its RTP clock stays 48 kHz, RFC 7587 section
    /// 4.1), with in-band FEC and PLC for lost packets.
    Opus(Box<OpusCodec>),
}

impl Voice {
    /// The G.711 law, for legs that relay packets sample by sample.
    pub fn g711(&self) -> Option<G711> {
        match self {
            Voice::G711(g) => Some(*g),
            Voice::Opus(_) => None,
        }
    }
}

/// A playback's id, named again in [`super::MediaEvent::PlayFinished`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PlayId(pub u64);

/// What a leg plays to its peer; one at a time, a new one replaces the old.
pub enum Source {
    /// A decoded prompt, played `times` times (0: until stopped). A prompt at another
    /// rate than the leg's is converted when the play starts (use
    /// [`crate::wav::PromptCache::get_at`] to convert once for many calls).
    Prompt {
        /// The audio.
        prompt: Arc<Prompt>,
        /// How many times.
        times: u32,
    },
    /// A tone: a beep, ringback, DTMF tones, or a custom cadence.
    Tone(Tone),
    /// Raw PCM at the leg's rate (TTS, AI audio) until its writer finishes, or a stop.
    Stream(StreamSource),
    /// Silence: nothing of the bridged peer reaches the leg (hold, mute towards it).
    Silence,
    /// The leg's own audio, back to it.
    Echo,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::Prompt { .. } => "Prompt",
            Source::Tone(_) => "Tone",
            Source::Stream(_) => "Stream",
            Source::Silence => "Silence",
            Source::Echo => "Echo",
        })
    }
}

/// Where a key press was heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfSource {
    /// RFC 4733 telephone-event packets.
    Rfc4733,
    /// Tones in the audio (Goertzel detection).
    Inband,
}

/// A source as the worker plays it.
#[derive(Debug)]
pub(crate) enum Playing {
    Samples {
        samples: Arc<[i16]>,
        pos: usize,
        /// Plays left after this one; `None` forever.
        left: Option<u32>,
    },
    Tone(ToneGenerator),
    Stream(StreamSource),
    Silence,
    Echo,
}

impl Playing {
    /// The worker's form of `source` for a leg at `rate`.
    pub(crate) fn new(source: Source, rate: u32) -> Result<Self, String> {
        Ok(match source {
            Source::Prompt { prompt, times } => {
                let samples: Arc<[i16]> = if prompt.rate == rate {
                    prompt.samples.clone()
                } else {
                    crate::resample::resample_all(&prompt.samples, prompt.rate, rate)
                        .map_err(|e| e.to_string())?
                        .into()
                };
                Playing::Samples {
                    samples,
                    pos: 0,
                    left: (times > 0).then(|| times - 1),
                }
            }
            Source::Tone(tone) => Playing::Tone(ToneGenerator::new(tone, rate)),
            Source::Stream(s) => Playing::Stream(s),
            Source::Silence => Playing::Silence,
            Source::Echo => Playing::Echo,
        })
    }

    /// Fills one frame; false when the source has ended (the frame is then silence
    /// from where it ended).
    fn fill(&mut self, inbound: &[i16; FRAME], frame: &mut [i16; FRAME]) -> bool {
        match self {
            Playing::Samples { samples, pos, left } => {
                let mut filled = 0;
                while filled < FRAME {
                    if *pos >= samples.len() {
                        match left {
                            Some(0) => break,
                            Some(n) => *n -= 1,
                            None => {}
                        }
                        *pos = 0;
                        if samples.is_empty() {
                            break;
                        }
                    }
                    let n = (FRAME - filled).min(samples.len() - *pos);
                    frame[filled..filled + n].copy_from_slice(&samples[*pos..*pos + n]);
                    filled += n;
                    *pos += n;
                }
                frame[filled..].fill(0);
                filled == FRAME
            }
            Playing::Tone(g) => g.fill(frame),
            Playing::Stream(s) => {
                !matches!(s.fill(frame), StreamFill::Finished | StreamFill::Stopped)
            }
            Playing::Silence => {
                frame.fill(0);
                true
            }
            Playing::Echo => {
                frame.copy_from_slice(inbound);
                true
            }
        }
    }

    fn needs_inbound(&self) -> bool {
        matches!(self, Playing::Echo)
    }
}

/// Key presses being sent as RFC 4733 events.
#[derive(Debug)]
pub(crate) struct DtmfOut {
    /// The keys still to send after the current one (last first), with their
    /// duration in ms and the ticks of nothing after them.
    queue: Vec<(char, u32, u32)>,
    packets: Vec<EventPacket>,
    next: usize,
    ticks: u32,
    duration_samples: u32,
    /// Ticks of silence left between two keys.
    gap: u32,
    /// The current key's gap, once it has ended.
    gap_after: u32,
    /// The current key as a tone, when the peer takes no telephone-event.
    tone: Option<ToneGenerator>,
}

/// What the jitter buffer gave a tick.
enum Got {
    /// A frame decoded.
    Frame,
    /// A frame to conceal (lost, undecodable, or an underrun mid-stream).
    Missing,
    /// Nothing yet, or nothing for a while: silence.
    Silence,
}

/// A leg's audio state.
#[derive(Debug)]
pub(crate) struct LegMedia {
    pub voice: Voice,
    pub audio_pt: u8,
    pub event_pt: Option<u8>,
    /// The rate the leg's audio is handled at (sources, recording, detection).
    pub rate: u32,
    /// The RTP clock (8 kHz for G.711, 48 kHz for Opus): timestamps, RFC 4733
    /// durations, the jitter estimate.
    pub clock_rate: u32,
    /// The telephone-event's clock, for event durations (usually `clock_rate`).
    pub event_rate: u32,
    /// What the peer sends, for decoding (made when something needs it).
    pub jitter: Option<JitterBuffer>,
    pub inbound: [i16; FRAME],
    last_good: [i16; FRAME],
    lost_in_row: u32,
    /// Ticks in a row with nothing from the peer (no packet, nothing to conceal).
    quiet_ticks: u32,
    /// A frame of the peer's has been decoded: a later underrun is concealed.
    heard: bool,
    pub outbound: [i16; FRAME],
    payload: [u8; MAX_ENCODED],
    payload_len: usize,
    pub events_in: EventReceiver,
    pub inband: Option<InbandDetector>,
    pub playing: Option<(PlayId, Playing)>,
    pub dtmf_out: Option<DtmfOut>,
    /// The queued key presses have all been sent (taken by the worker).
    pub digits_sent: bool,
    /// The peer takes no media now (its SDP said sendonly or inactive): nothing is
    /// sent, generated or relayed.
    pub send_off: bool,
    pub recorder: Option<(std::path::PathBuf, Box<Recorder>)>,
    /// The bridged peer records or forks this leg's audio: decode it.
    pub heard_by_peer: bool,
    /// Voice activity on what the peer says.
    pub vad: Option<Box<Vad>>,
    /// Speech onset on packet arrival, refereed by the VAD (on with it).
    pub speech: Option<crate::onset::SpeechGate>,
    /// Taps of the leg's audio for AI and transcription.
    pub forks: Vec<ForkTap>,
    /// 16 kHz copies of both directions, for the VAD and forks.
    pub wide: Option<Box<Wide>>,
    /// 20 ms frames since the leg opened.
    pub frame_index: u64,
    /// The conference the leg is in, and its place in the room's mixer.
    pub room: Option<(u64, crate::mix::ParticipantId)>,
    /// The mixer's output for this tick is in `outbound`.
    pub room_frame: bool,
    /// The peer's audio counts as silence (recordings, conferences, forks, the
    /// bridged party); its key presses still count.
    pub mute_in: bool,
    /// The peer hears silence, whatever the leg plays or is bridged to.
    pub mute_out: bool,
    /// Bridged to a leg of another codec family (Opus and G.711): it sends the
    /// peer's decoded audio, re-encoded on the tick, instead of relaying packets.
    pub transcodes: bool,
}

/// Both directions of a leg at 16 kHz (earshot's rate and the forks').
#[derive(Debug)]
pub(crate) struct Wide {
    up_in: FrameResampler,
    up_out: FrameResampler,
    pub inbound: [i16; FORK_FRAME],
    pub outbound: [i16; FORK_FRAME],
}

impl Wide {
    fn new(rate: u32) -> Option<Self> {
        Some(Self {
            up_in: FrameResampler::new(rate, 16_000).ok()?,
            up_out: FrameResampler::new(rate, 16_000).ok()?,
            inbound: [0; FORK_FRAME],
            outbound: [0; FORK_FRAME],
        })
    }
}

/// What one tick of a leg produced for the worker to send or report.
pub(crate) enum TickOut {
    Nothing,
    /// A packet of generated audio (the encoded outbound frame).
    Audio,
    /// RFC 4733 packets: indexes into the event list, sent with this timestamp.
    Events,
}

impl LegMedia {
    pub fn new(
        voice: Voice,
        audio_pt: u8,
        event_pt: Option<u8>,
        clock_rate: u32,
        event_clock_rate: u32,
        inband: bool,
    ) -> Self {
        let event_rate = if event_clock_rate == 0 {
            clock_rate
        } else {
            event_clock_rate
        };
        Self {
            voice,
            audio_pt,
            event_pt,
            rate: 8000,
            clock_rate,
            jitter: None,
            inbound: [0; FRAME],
            last_good: [0; FRAME],
            lost_in_row: 0,
            // Nothing heard yet: the detector rests until the first frame.
            quiet_ticks: QUIET_DETECT_TICKS + 1,
            heard: false,
            outbound: [0; FRAME],
            payload: [0; MAX_ENCODED],
            payload_len: 0,
            events_in: EventReceiver::new(event_rate),
            event_rate,
            inband: inband.then(InbandDetector::new),
            playing: None,
            dtmf_out: None,
            digits_sent: false,
            send_off: false,
            recorder: None,
            heard_by_peer: false,
            vad: None,
            speech: None,
            forks: Vec::new(),
            wide: None,
            frame_index: 0,
            room: None,
            room_frame: false,
            mute_in: false,
            mute_out: false,
            transcodes: false,
        }
        .with_buffer_if_needed()
    }

    /// Makes the jitter buffer when something needs the decoded audio.
    pub fn with_buffer_if_needed(mut self) -> Self {
        self.ensure_buffer();
        self
    }

    /// Whether anything needs the peer's audio decoded.
    pub fn needs_inbound(&self) -> bool {
        self.inband.is_some()
            || self.recorder.is_some()
            || self.heard_by_peer
            || self.vad.is_some()
            || !self.forks.is_empty()
            || self.room.is_some()
            || self
                .playing
                .as_ref()
                .is_some_and(|(_, p)| p.needs_inbound())
    }

    /// Makes (or keeps) the jitter buffer when the audio must be decoded, and the
    /// 16 kHz converters when the VAD or a fork needs them.
    pub fn ensure_buffer(&mut self) {
        if self.needs_inbound() && self.jitter.is_none() {
            self.jitter = Some(JitterBuffer::new(20, self.clock_rate, 2, 10));
        }
        if (self.vad.is_some() || !self.forks.is_empty()) && self.wide.is_none() {
            self.wide = Wide::new(self.rate).map(Box::new);
        }
    }

    /// Whether the leg only relays packets as they come. Then the 20 ms tick has
    /// nothing to do for it (it decodes, plays, transcodes, mixes, sends keys,
    /// records and analyses nothing, and waits for no RFC 4733 event's end), and the
    /// relay need not look here for mutes or a peer that takes no media. Its worker's
    /// tick passes it by until a command or an event packet reaches it.
    pub fn only_relays(&self) -> bool {
        !self.needs_inbound()
            && self.playing.is_none()
            && !self.transcodes
            && !self.mute_in
            && !self.mute_out
            && !self.send_off
            && self.wide.is_none()
            && self.dtmf_out.is_none()
            && !self.digits_sent
            && self.events_in.poll_timeout().is_none()
    }

    /// Whether what the leg sends must be known this tick (recording, forks).
    pub fn listens_to_both(&self) -> bool {
        self.recorder.is_some() || !self.forks.is_empty()
    }

    /// Runs the VAD and the forks on this tick's frames: `inbound` (what the peer
    /// said) and `other` (what the peer heard). VAD changes go to `on_vad`.
    pub fn analyse(&mut self, other: &[i16; FRAME], mut on_vad: impl FnMut(VadEvent)) {
        self.frame_index += 1;
        let Some(wide) = self.wide.as_mut() else {
            return;
        };
        let resampled = wide.up_in.process(&self.inbound, &mut wide.inbound);
        // Frames are 20 ms on both sides by construction.
        debug_assert!(resampled.is_ok(), "{resampled:?}");
        if let Some(vad) = self.vad.as_mut() {
            vad.feed(&wide.inbound, &mut on_vad);
        }
        if self.forks.is_empty() {
            return;
        }
        let resampled = wide.up_out.process(other, &mut wide.outbound);
        debug_assert!(resampled.is_ok(), "{resampled:?}");
        let index = self.frame_index;
        for tap in &self.forks {
            tap.push(Direction::In, index, &wide.inbound);
            tap.push(Direction::Out, index, &wide.outbound);
        }
        // A reader that went away ends its fork (retain moves, never allocates).
        self.forks.retain(|t| !t.is_abandoned());
    }

    /// Whether the leg's outgoing audio comes from here rather than the bridge.
    pub fn overrides_relay(&self) -> bool {
        self.playing.is_some() || self.dtmf_out.is_some() || self.room.is_some()
    }

    /// Fills `outbound` from the source playing, if any: true when it did. A source
    /// that ran out is forgotten and its id returned in the second place.
    pub fn fill_source(&mut self) -> (bool, Option<PlayId>) {
        let Some((id, playing)) = self.playing.as_mut() else {
            return (false, None);
        };
        let more = playing.fill(&self.inbound, &mut self.outbound);
        let ended = (!more).then_some(*id);
        if ended.is_some() {
            self.playing = None;
        }
        (true, ended)
    }

    /// Queues key presses to send (RFC 4733 section 2.5), each held `duration_ms`
    /// and followed by `interval_ms` of nothing (at least 40 ms, so two presses of
    /// one key stay two events); `digits_sent` is set when the last has gone.
    pub fn send_digits(&mut self, digits: &str, duration_ms: u32, interval_ms: u32) {
        let gap_ticks = interval_ms.div_ceil(20).clamp(2, 250);
        let mut keys: Vec<(char, u32, u32)> = digits
            .chars()
            .filter(|c| crate::dtmf::rfc4733::event_of(*c).is_some())
            .map(|c| (c, duration_ms.clamp(40, 2000), gap_ticks))
            .collect();
        keys.reverse();
        match &mut self.dtmf_out {
            Some(out) => {
                keys.append(&mut out.queue);
                out.queue = keys;
            }
            None => {
                self.dtmf_out = Some(DtmfOut {
                    queue: keys,
                    packets: Vec::new(),
                    next: 0,
                    ticks: 0,
                    duration_samples: 0,
                    gap: 0,
                    gap_after: 0,
                    tone: None,
                })
            }
        }
    }

    /// Decodes this tick's frame of the peer's audio (or conceals a lost one), and
    /// runs in-band detection on it. Digits heard go to `on_digit`.
    pub fn decode_inbound(&mut self, mut on_digit: impl FnMut(char, u32)) {
        let Some(jitter) = self.jitter.as_mut() else {
            return;
        };
        let got = match jitter.pop() {
            Pop::Packet(p) => {
                let ok = match &mut self.voice {
                    Voice::G711(g) if p.len() == FRAME => {
                        g.decode(p, &mut self.inbound);
                        true
                    }
                    Voice::G711(_) => false,
                    Voice::Opus(o) => o.decode(p, &mut self.inbound).is_ok_and(|n| n == FRAME),
                };
                if ok { Got::Frame } else { Got::Missing }
            }
            Pop::Lost => Got::Missing,
            // The buffer ran dry after a loss or a late packet: conceal, as for a
            // loss, for up to 100 ms (the concealment has faded out by then).
            Pop::Buffering if self.heard && self.lost_in_row < 5 => Got::Missing,
            Pop::Buffering => Got::Silence,
        };
        match got {
            Got::Frame => {
                self.last_good = self.inbound;
                self.lost_in_row = 0;
                self.heard = true;
            }
            Got::Missing => {
                self.lost_in_row += 1;
                match &mut self.voice {
                    // RFC 7587 section 3.3: the next packet's FEC when it is here, else
                    // PLC.
                    Voice::Opus(o) => {
                        if o.decode_lost(jitter.peek(), &mut self.inbound).is_err() {
                            self.inbound.fill(0);
                        }
                    }
                    Voice::G711(_) => conceal(&self.last_good, self.lost_in_row, &mut self.inbound),
                }
            }
            Got::Silence => self.inbound.fill(0),
        }
        self.quiet_ticks = if matches!(got, Got::Silence) {
            self.quiet_ticks.saturating_add(1)
        } else {
            0
        };
        // The tone detector hears the silence after a key (so it can end it), then
        // rests while the peer sends nothing: a bridged or idle leg costs no
        // Goertzel filters (they were a sixth of a connect's CPU).
        if let Some(d) = self
            .inband
            .as_mut()
            .filter(|_| self.quiet_ticks <= QUIET_DETECT_TICKS)
        {
            d.feed(&self.inbound, |digit| {
                on_digit(digit.key, digit.duration_ms)
            });
        }
        if self.mute_in {
            self.inbound.fill(0);
        }
    }

    /// Produces this tick's outgoing audio: the source's frame, or RFC 4733 packets.
    /// Returns what to send and whether the source just ended.
    pub fn generate(&mut self, heard: &[i16; FRAME]) -> (TickOut, Option<PlayId>) {
        if self.dtmf_out.is_some() && self.event_pt.is_none() {
            return self.generate_dtmf_tones();
        }
        if let Some(out) = self.dtmf_out.as_mut() {
            if out.gap > 0 {
                out.gap -= 1;
                return (TickOut::Nothing, None);
            }
            if out.next >= out.packets.len() {
                match out.queue.pop() {
                    Some((key, ms, gap)) => {
                        out.packets = send_packets(key, ms, 20, self.event_rate);
                        out.next = 0;
                        out.ticks = 0;
                        out.duration_samples = ms * self.clock_rate / 1000;
                        out.gap_after = gap;
                    }
                    None => {
                        self.dtmf_out = None;
                        self.digits_sent = true;
                        return (TickOut::Nothing, None);
                    }
                }
            }
            return (TickOut::Events, None);
        }
        if self.room.is_some() {
            // The mixer filled `outbound` (with any source whispered in).
            if !std::mem::take(&mut self.room_frame) {
                return (TickOut::Nothing, None);
            }
            return self.encode_outbound(None);
        }
        let (filled, ended) = self.fill_source();
        if !filled {
            if !self.transcodes {
                return (TickOut::Nothing, None);
            }
            // The bridged peer's audio, re-encoded for this leg's codec.
            self.outbound = *heard;
        }
        self.encode_outbound(ended)
    }

    /// The queued keys as tones in the audio (ITU-T Q.23 frequencies), for a peer
    /// that did not offer telephone-event, as RFC 4733 section 2.6 allows.
    fn generate_dtmf_tones(&mut self) -> (TickOut, Option<PlayId>) {
        let Some(out) = self.dtmf_out.as_mut() else {
            return (TickOut::Nothing, None);
        };
        loop {
            if let Some(tone) = out.tone.as_mut().filter(|t| !t.is_done()) {
                tone.fill(&mut self.outbound);
                break;
            }
            match out.queue.pop() {
                Some((key, ms, gap_ticks)) => {
                    let gap_ms = if out.queue.is_empty() {
                        0
                    } else {
                        gap_ticks * 20
                    };
                    out.tone =
                        Tone::dtmf(key, ms, gap_ms).map(|t| ToneGenerator::new(t, self.rate));
                }
                None => {
                    self.dtmf_out = None;
                    self.digits_sent = true;
                    return (TickOut::Nothing, None);
                }
            }
        }
        self.encode_outbound(None)
    }

    /// Encodes `outbound` for the peer (as silence when the leg is muted towards it):
    /// audio to send, unless the encoder gave nothing; `ended` passes through.
    fn encode_outbound(&mut self, ended: Option<PlayId>) -> (TickOut, Option<PlayId>) {
        if self.mute_out {
            self.outbound.fill(0);
        }
        self.payload_len = match &mut self.voice {
            Voice::G711(g) => {
                g.encode(&self.outbound, &mut self.payload[..FRAME]);
                FRAME
            }
            Voice::Opus(o) => o.encode(&self.outbound, &mut self.payload).unwrap_or(0),
        };
        let out = if self.payload_len == 0 {
            TickOut::Nothing
        } else {
            TickOut::Audio
        };
        (out, ended)
    }

    /// The encoded outbound frame.
    pub fn payload(&self) -> &[u8] {
        &self.payload[..self.payload_len]
    }

    /// The RFC 4733 packets due this tick: (marker, payload) for each, and, after
    /// the last, the event's duration to skip. Advances the schedule.
    pub fn due_events(&mut self, mut send: impl FnMut(bool, &[u8; 4])) -> Option<u32> {
        let out = self.dtmf_out.as_mut()?;
        let elapsed = out.ticks * 20;
        while let Some(p) = out.packets.get(out.next) {
            if p.at_ms > elapsed {
                break;
            }
            send(p.marker, &p.payload);
            out.next += 1;
        }
        out.ticks += 1;
        if out.next >= out.packets.len() {
            // The interval runs from the key's end to the next key; the end's two
            // repeats (RFC 4733 section 2.5.1.4) already took two ticks of it. After
            // the last key, the sending is done.
            out.gap = if out.queue.is_empty() {
                0
            } else {
                out.gap_after.saturating_sub(2)
            };
            return Some(out.duration_samples);
        }
        None
    }
}
