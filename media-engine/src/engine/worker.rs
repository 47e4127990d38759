//! A media worker: one thread, one epoll set (mio), many legs. A readable RTP socket
//! is drained into one reused buffer; a bridged packet is rewritten in place and sent
//! on at once. Housekeeping every 100 ms sends RTCP reports and finds dead legs.
//! Nothing on the per-packet path allocates or takes a lock shared with other legs.

use std::io;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};
use rustc_hash::FxHashMap;

use super::media::{FRAME, TickOut};
use super::nudge::Nudged;
use super::relay::{accept_rtp, forward, take_rtcp};
use super::session::Session;
use super::{Command, DtmfSource, EventSink, MediaEvent, PortPool, SessionId};
use crate::rtp::ntp_now;

mod commands;

/// The waker's token; sockets use slot * 2 (RTP) and slot * 2 + 1 (RTCP).
pub(crate) const WAKER: Token = Token(usize::MAX);
const HOUSEKEEPING: Duration = Duration::from_millis(100);
/// The media tick: what is generated, decoded, detected and recorded runs every
/// packet time (20 ms).
const TICK: Duration = Duration::from_millis(20);
/// Room for any UDP datagram we accept (larger ones are truncated and dropped).
const BUFFER: usize = 2048;

/// The state one worker thread owns.
pub(crate) struct Worker {
    /// Which worker this is (the low byte of its legs' ids).
    pub me: usize,
    pub poll: Poll,
    pub commands: Receiver<Command>,
    /// Taken down when the worker wakes for its commands.
    pub nudged: Nudged,
    pub events: EventSink,
    pub ports: Arc<PortPool>,
    slots: Vec<Option<Session>>,
    /// Beside each slot: the leg only relays packets (`LegMedia::only_relays`), so the
    /// tick passes it by and the relay does not look into its media. Set by the tick,
    /// taken down by every command for the leg and by an RFC 4733 packet from its
    /// peer. A flat array, so that a tick over thousands of relaying legs reads a few
    /// cache lines, not each leg's state.
    plain: Vec<bool>,
    /// Empty slots, the last emptied on top: a new leg takes one without a scan
    /// over the others.
    vacant: Vec<usize>,
    index: FxHashMap<SessionId, usize>,
    /// Conferences on this worker, by the id the caller gave.
    rooms: FxHashMap<u64, crate::mix::Mixer>,
    buf: Box<[u8; BUFFER]>,
}

impl Worker {
    pub fn new(
        me: usize,
        poll: Poll,
        commands: Receiver<Command>,
        nudged: Nudged,
        events: EventSink,
        ports: Arc<PortPool>,
    ) -> Self {
        Self {
            me,
            poll,
            commands,
            nudged,
            events,
            ports,
            slots: Vec::new(),
            plain: Vec::new(),
            vacant: Vec::new(),
            index: FxHashMap::default(),
            rooms: FxHashMap::default(),
            buf: Box::new([0; BUFFER]),
        }
    }

    /// Runs until told to shut down (or the engine is dropped).
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut next_housekeeping = Instant::now() + HOUSEKEEPING;
        let mut next_tick = Instant::now() + TICK;
        loop {
            let timeout = next_housekeeping
                .min(next_tick)
                .saturating_duration_since(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            // One clock read per wake-up: every packet drained now arrived by this
            // moment (reading the clock per packet would add its processing delay to
            // its arrival time, and costs a call per packet).
            let woke = Instant::now();
            for event in events.iter() {
                match event.token() {
                    WAKER => {
                        self.nudged.arrived();
                        if !self.take_commands() {
                            return Ok(());
                        }
                    }
                    Token(t) if t % 2 == 0 => self.drain_rtp(t / 2, woke),
                    Token(t) => self.drain_rtcp(t / 2),
                }
            }
            let now = Instant::now();
            if now >= next_tick {
                // The commands that did not wake the worker (Command::urgent).
                if !self.take_commands() {
                    return Ok(());
                }
                self.tick(now);
                next_tick += TICK;
                if now > next_tick + TICK * 5 {
                    // Far behind (the thread was descheduled): start the cadence again.
                    next_tick = now + TICK;
                }
            }
            if now >= next_housekeeping {
                self.housekeeping(now);
                next_housekeeping = now + HOUSEKEEPING;
            }
        }
    }

    fn emit(&mut self, event: MediaEvent) {
        self.events.send(event);
    }

    /// The 20 ms tick: decode what must be heard, then generate, send and record.
    fn tick(&mut self, now: Instant) {
        // Events that waited for room go first.
        self.events.flush();
        let Self {
            slots,
            plain,
            buf,
            events,
            rooms,
            ..
        } = self;
        // A leg that records or forks hears its bridged peer: that peer decodes.
        for slot in 0..slots.len() {
            if plain[slot] {
                continue;
            }
            let peer = slots[slot]
                .as_ref()
                .filter(|s| s.media.listens_to_both() || s.media.transcodes)
                .and_then(|s| s.bridged_to);
            if let Some(p) = peer
                && let Some(s) = slots[p].as_mut()
                && !s.media.heard_by_peer
            {
                s.media.heard_by_peer = true;
                s.media.ensure_buffer();
                plain[p] = false;
            }
        }
        for (leg, plain) in slots.iter_mut().zip(plain.iter()) {
            let Some(leg) = leg.as_mut().filter(|_| !plain) else {
                continue;
            };
            if leg.media.needs_inbound() {
                let id = leg.id;
                leg.media.decode_inbound(|key, duration_ms| {
                    events.send(MediaEvent::DtmfReceived {
                        session: id,
                        key,
                        duration_ms,
                        source: DtmfSource::Inband,
                    });
                });
            }
            let now_ms = now.saturating_duration_since(leg.created).as_millis() as u64;
            if leg
                .media
                .events_in
                .poll_timeout()
                .is_some_and(|t| t <= now_ms)
                && let Some(d) = leg.media.events_in.on_timeout(now_ms)
            {
                events.send(MediaEvent::DtmfReceived {
                    session: leg.id,
                    key: d.key,
                    duration_ms: d.duration_ms,
                    source: DtmfSource::Rfc4733,
                });
            }
        }
        mix_rooms(slots, rooms, events);
        // What a leg's bridged peer said this tick, for the legs that use it (a
        // transcoding leg re-encodes it; the VAD, forks and recorders hear it).
        // A leg that only relays packets copies nothing: `heard` still holds an
        // earlier leg's frame then, which neither `generate` (it reads it only when
        // transcoding) nor `listen` reads.
        let mut heard = [0i16; FRAME];
        for slot in 0..slots.len() {
            if plain[slot] {
                continue;
            }
            let Some(leg) = slots[slot].as_ref() else {
                continue;
            };
            let listens = leg.media.wide.is_some() || leg.media.recorder.is_some();
            if listens || leg.media.transcodes {
                // What the leg's own peer heard, unless it played something of its own.
                match leg.bridged_to.and_then(|p| slots[p].as_ref()) {
                    Some(peer) => heard = peer.media.inbound,
                    None => heard.fill(0),
                }
            }
            let Some(leg) = slots[slot].as_mut() else {
                continue;
            };
            send_generated(leg, &heard, &mut buf[..], now, events);
            if listens {
                listen(leg, &heard, now, events);
            }
            plain[slot] = leg.media.only_relays();
        }
    }

    /// Reads every queued RTP packet of the leg in `slot` and relays or consumes it;
    /// `now` is when the worker woke up for them.
    fn drain_rtp(&mut self, slot: usize, now: Instant) {
        let Self {
            slots,
            plain,
            buf,
            events,
            ..
        } = self;
        loop {
            let (Some(Some(leg)), Some(leg_plain)) = (slots.get_mut(slot), plain.get_mut(slot))
            else {
                return;
            };
            let (len, from) = match leg.rtp.recv_from(&mut buf[..]) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => continue,
            };
            let Some(peer) = accept_rtp(leg, &buf[..len], from, now, events, leg_plain) else {
                continue;
            };
            // A plain leg neither transcodes nor is muted.
            let leg_plain = *leg_plain;
            if !leg_plain && leg.media.transcodes {
                // The peer re-encodes this leg's decoded audio on the tick.
                continue;
            }
            let samples = leg.samples_per_packet;
            let from = leg.formats;
            let muted = !leg_plain && leg.media.mute_in;
            let (Some(Some(out)), Some(&out_plain)) = (slots.get_mut(peer), plain.get(peer)) else {
                continue;
            };
            let silence = muted || (!out_plain && out.media.mute_out);
            forward(out, out_plain, &mut buf[..len], from, silence, samples, now);
        }
    }

    fn drain_rtcp(&mut self, slot: usize) {
        let Self { slots, buf, .. } = self;
        loop {
            let Some(leg) = slots.get_mut(slot).and_then(Option::as_mut) else {
                return;
            };
            let (len, from) = match leg.rtcp.recv_from(&mut buf[..]) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => continue,
            };
            take_rtcp(leg, &buf[..len], from);
        }
    }

    /// RTCP reports that are due, and legs that went quiet (RFC 3550 section 6.2).
    fn housekeeping(&mut self, now: Instant) {
        let mut timeouts = Vec::new();
        let Self { slots, buf, .. } = self;
        for leg in slots.iter_mut().flatten() {
            if !leg.timed_out && leg.is_inactive(now) {
                leg.timed_out = true;
                timeouts.push(leg.id);
            }
            if let Some(to) = leg.rtcp_destination()
                && leg.rtcp_state.report_due(now)
            {
                let sent = leg.sender.counters();
                let clock = leg.clock_rate;
                if let Ok(n) = leg.rtcp_state.write_report(
                    sent,
                    Some(&mut leg.received),
                    clock,
                    now,
                    ntp_now(),
                    &mut buf[..],
                ) {
                    let socket = if leg.rtcp_mux { &leg.rtp } else { &leg.rtcp };
                    if let Err(e) = socket.send_to(&buf[..n], to) {
                        // RTCP is advisory: the next report goes out in 5 s.
                        tracing::trace!(%to, error = %e, "an RTCP report was not sent");
                    }
                }
            }
        }
        for session in timeouts {
            self.emit(MediaEvent::RtpTimeout { session });
        }
    }
}

/// The conferences' tick: every participant's frame in (a source it plays is
/// whispered to it alone), each room mixed, each participant's mix out.
fn mix_rooms(
    slots: &mut [Option<Session>],
    rooms: &mut FxHashMap<u64, crate::mix::Mixer>,
    events: &EventSink,
) {
    if rooms.is_empty() {
        return;
    }
    for leg in slots.iter_mut().flatten() {
        let Some((room, pid)) = leg.media.room else {
            continue;
        };
        let Some(mixer) = rooms.get_mut(&room) else {
            continue;
        };
        let (filled, ended) = leg.media.fill_source();
        if filled {
            mixer.whisper(pid, &leg.media.outbound);
        }
        if let Some(play) = ended {
            events.send(MediaEvent::PlayFinished {
                session: leg.id,
                play,
                stopped: false,
            });
        }
        mixer.put(pid, &leg.media.inbound);
    }
    for mixer in rooms.values_mut() {
        mixer.mix();
    }
    for leg in slots.iter_mut().flatten() {
        if let Some((room, pid)) = leg.media.room
            && let Some(out) = rooms.get(&room).and_then(|m| m.output(pid))
        {
            leg.media.outbound.copy_from_slice(out);
            leg.media.room_frame = true;
        }
    }
}

/// This tick's frames for the leg's VAD, forks and recorder: what its peer said,
/// and what its peer heard (`heard` from the bridged leg, or the leg's own source).
fn listen(leg: &mut Session, heard: &[i16; FRAME], now: Instant, events: &EventSink) {
    let other = if leg.media.overrides_relay() {
        leg.media.outbound
    } else {
        *heard
    };
    if leg.media.wide.is_some() {
        let now_ms = now.saturating_duration_since(leg.created).as_millis() as u64;
        // A tick's frame gives the VAD 20 ms: at most two changes.
        let mut vad_changes: [Option<crate::vad::VadEvent>; 2] = [None; 2];
        leg.media.analyse(&other, |e| {
            if let Some(slot) = vad_changes.iter_mut().find(|s| s.is_none()) {
                *slot = Some(e);
            }
        });
        if let Some(gate) = leg.media.speech.as_mut() {
            for e in vad_changes.into_iter().flatten() {
                if let Some(change) = gate.on_vad(e, now_ms) {
                    events.send(speech_event(leg.id, change));
                }
            }
            if let Some(change) = gate.on_tick(now_ms) {
                events.send(speech_event(leg.id, change));
            }
        }
    }
    if leg.media.recorder.is_some() {
        let caller = leg.media.inbound;
        if let Some((_, rec)) = leg.media.recorder.as_mut()
            && let Err(e) = rec.write_frame(&caller, &other)
        {
            let id = leg.id;
            if let Some((path, _)) = leg.media.recorder.take() {
                events.send(MediaEvent::RecordingFinished {
                    session: id,
                    path,
                    error: Some(e.to_string()),
                });
            }
        }
    }
}

/// Sends what the leg generated this tick: a frame of its source, or RFC 4733
/// packets; reports a source that ended.
fn send_generated(
    leg: &mut Session,
    heard: &[i16; FRAME],
    buf: &mut [u8],
    now: Instant,
    events: &EventSink,
) {
    let (out, ended) = leg.media.generate(heard);
    if let Some(play) = ended {
        leg.sender.source_changed();
        events.send(MediaEvent::PlayFinished {
            session: leg.id,
            play,
            stopped: false,
        });
    }
    if std::mem::take(&mut leg.media.digits_sent) {
        events.send(MediaEvent::DigitsSent {
            session: leg.id,
            error: None,
        });
    }
    if leg.media.send_off {
        // The peer's SDP said sendonly or inactive (RFC 3264 section 6.1): sources
        // run on time, nothing goes out.
        return;
    }
    let Some(to) = leg.latch.remote() else {
        return;
    };
    match out {
        TickOut::Nothing => {}
        TickOut::Audio => {
            let Session {
                media,
                sender,
                rtp,
                packets_sent,
                packets_dropped,
                samples_per_packet,
                ..
            } = leg;
            let pt = media.audio_pt;
            if let Ok(n) = sender.write(pt, *samples_per_packet, media.payload(), now, buf) {
                match rtp.send_to(&buf[..n], to) {
                    Ok(_) => *packets_sent += 1,
                    Err(_) => *packets_dropped += 1,
                }
            }
        }
        TickOut::Events => {
            let Some(pt) = leg.media.event_pt else {
                // Not reached: without telephone-event `generate` plays the keys
                // as tones. Should that change, the action still ends, saying why.
                leg.media.dtmf_out = None;
                events.send(MediaEvent::DigitsSent {
                    session: leg.id,
                    error: Some("the peer did not offer telephone-event (RFC 4733)".into()),
                });
                return;
            };
            let Session {
                media,
                sender,
                rtp,
                packets_sent,
                samples_per_packet,
                ..
            } = leg;
            let spp = *samples_per_packet;
            let finished = media.due_events(|marker, payload| {
                if let Ok(n) = sender.write_event(pt, marker, payload, spp, now, buf)
                    && rtp.send_to(&buf[..n], to).is_ok()
                {
                    *packets_sent += 1;
                }
            });
            if let Some(samples) = finished {
                sender.skip(samples);
            }
        }
    }
}

/// A speech change as the event the engine reports.
pub(super) fn speech_event(session: SessionId, change: crate::onset::SpeechChange) -> MediaEvent {
    match change {
        crate::onset::SpeechChange::Started { at_ms } => {
            MediaEvent::SpeechStarted { session, at_ms }
        }
        crate::onset::SpeechChange::Ended { at_ms } => MediaEvent::SpeechEnded { session, at_ms },
    }
}
