//! A media worker: one thread, one epoll set (mio), many legs. A readable RTP socket
//! is drained into one reused buffer; a bridged packet is rewritten in place and sent
//! on at once. Housekeeping every 100 ms sends RTCP reports and finds dead legs.
//! Nothing on the per-packet path allocates or takes a lock shared with other legs.

use std::io;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use rustc_hash::FxHashMap;

use super::media::{FRAME, Playing, TickOut};
use super::nudge::Nudged;
use super::relay::{accept_rtp, forward, take_rtcp};
use super::session::Session;
use super::{Command, DtmfSource, EventSink, MediaEvent, PortPool, SessionId};
use crate::rtp::ntp_now;

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
    index: FxHashMap<SessionId, usize>,
    /// Conferences on this worker, by the id the caller gave.
    rooms: FxHashMap<u64, crate::mix::Mixer>,
    buf: Box<[u8; BUFFER]>,
}

impl Worker {
    pub fn new(
        poll: Poll,
        commands: Receiver<Command>,
        nudged: Nudged,
        events: EventSink,
        ports: Arc<PortPool>,
    ) -> Self {
        Self {
            poll,
            commands,
            nudged,
            events,
            ports,
            slots: Vec::new(),
            plain: Vec::new(),
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
                            self.close_all();
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
                    self.close_all();
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

    /// The tick and the relay must look at the leg again (a command changed what it
    /// does).
    fn rouse(&mut self, id: SessionId) {
        if let Some(&slot) = self.index.get(&id)
            && let Some(plain) = self.plain.get_mut(slot)
        {
            *plain = false;
        }
    }

    /// Applies queued commands; false when the worker must stop.
    fn take_commands(&mut self) -> bool {
        loop {
            let command = self.commands.try_recv();
            if let Ok(c) = &command {
                for id in c.sessions().into_iter().flatten() {
                    self.rouse(id);
                }
            }
            match command {
                Ok(Command::Add(session)) => self.add(*session),
                Ok(Command::SetRemote(id, addr)) => {
                    if let Some(s) = self.session_mut(id) {
                        s.latch.resignal(addr);
                        s.rtcp_remote = None;
                    }
                }
                Ok(Command::Bridge(a, b)) => self.bridge(a, b),
                Ok(Command::Unbridge(id)) => self.unbridge(id),
                Ok(Command::Stats(id, reply)) => {
                    // The asker may have given up waiting; then nobody needs them.
                    reply.send(self.session_mut(id).map(|s| s.stats())).ok();
                }
                Ok(Command::Close(id)) => self.close(id),
                Ok(Command::Play(id, play, source)) => self.play(id, play, *source),
                Ok(Command::Stop(id)) => self.stop(id, true),
                Ok(Command::SendDigits(id, digits, ms, interval_ms)) => {
                    if let Some(s) = self.session_mut(id) {
                        s.media.send_digits(&digits, ms, interval_ms);
                        s.sender.source_changed();
                    }
                }
                Ok(Command::RecordStart(id, path, recorder)) => {
                    self.record_start(id, path, recorder)
                }
                Ok(Command::RecordStop(id)) => self.record_stop(id),
                Ok(Command::Join(id, room)) => self.join(id, room),
                Ok(Command::Leave(id)) => self.leave(id),
                Ok(Command::Participant {
                    id,
                    muted,
                    deaf,
                    gain_db,
                }) => {
                    if let Some((room, pid)) = self.session_mut(id).and_then(|s| s.media.room)
                        && let Some(m) = self.rooms.get_mut(&room)
                    {
                        m.set_muted(pid, muted);
                        m.set_deaf(pid, deaf);
                        m.set_gain_db(pid, gain_db);
                    }
                }
                Ok(Command::Mute {
                    id,
                    inbound,
                    outbound,
                }) => {
                    if let Some(s) = self.session_mut(id) {
                        s.media.mute_in = inbound;
                        s.media.mute_out = outbound;
                    }
                }
                Ok(Command::SendRtp(id, on)) => {
                    if let Some(s) = self.session_mut(id) {
                        s.media.send_off = !on;
                        s.sender.source_changed();
                    }
                }
                Ok(Command::ExpectRtp(id, expected)) => {
                    if let Some(s) = self.session_mut(id) {
                        s.rtp_expected_since = expected.then(Instant::now);
                        s.timed_out = false;
                    }
                }
                Ok(Command::Vad(id, on)) => {
                    if let Some(s) = self.session_mut(id) {
                        s.media.vad =
                            on.then(|| Box::new(crate::vad::Vad::new(Default::default())));
                        s.media.speech = on.then(crate::onset::SpeechGate::new);
                        s.media.ensure_buffer();
                    }
                }
                Ok(Command::Fork(id, tap)) => {
                    if let Some(s) = self.session_mut(id) {
                        s.media.forks.push(*tap);
                        s.media.ensure_buffer();
                    }
                }
                Ok(Command::Shutdown) => return false,
                Err(std::sync::mpsc::TryRecvError::Empty) => return true,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => return false,
            }
        }
    }

    fn session_mut(&mut self, id: SessionId) -> Option<&mut Session> {
        let slot = *self.index.get(&id)?;
        self.slots.get_mut(slot)?.as_mut()
    }

    fn add(&mut self, mut session: Session) {
        let slot = self
            .slots
            .iter()
            .position(Option::is_none)
            .unwrap_or(self.slots.len());
        let registry = self.poll.registry();
        let registered = registry
            .register(&mut session.rtp, Token(slot * 2), Interest::READABLE)
            .and_then(|()| {
                registry.register(&mut session.rtcp, Token(slot * 2 + 1), Interest::READABLE)
            });
        if let Err(e) = registered {
            let id = session.id;
            self.ports.release(session.local_rtp_port);
            self.emit(MediaEvent::Failed {
                session: id,
                reason: format!("could not watch the leg's sockets: {e}"),
            });
            return;
        }
        self.index.insert(session.id, slot);
        if slot == self.slots.len() {
            self.slots.push(Some(session));
            self.plain.push(false);
        } else {
            self.slots[slot] = Some(session);
            self.plain[slot] = false;
        }
    }

    fn bridge(&mut self, a: SessionId, b: SessionId) {
        let (Some(&sa), Some(&sb)) = (self.index.get(&a), self.index.get(&b)) else {
            self.emit(MediaEvent::Failed {
                session: a,
                reason: format!("cannot bridge: leg {b} is not on leg {a}'s worker or is closed"),
            });
            return;
        };
        self.unbridge(a);
        self.unbridge(b);
        // Opus and G.711 cannot pass packets to each other: both sides transcode.
        let families = [sa, sb].map(|s| {
            self.slots[s]
                .as_ref()
                .is_some_and(|s| s.media.voice.g711().is_some())
        });
        let transcodes = families[0] != families[1];
        for (slot, peer) in [(sa, sb), (sb, sa)] {
            if let Some(s) = self.slots[slot].as_mut() {
                s.bridged_to = Some(peer);
                s.media.transcodes = transcodes;
                s.sender.source_changed();
            }
        }
    }

    fn unbridge(&mut self, id: SessionId) {
        let Some(&slot) = self.index.get(&id) else {
            return;
        };
        let peer = self.slots[slot].as_mut().and_then(|s| {
            s.media.transcodes = false;
            s.bridged_to.take()
        });
        if let Some(p) = peer
            && let Some(other) = self.slots[p].as_mut()
        {
            other.bridged_to = None;
            other.media.transcodes = false;
        }
    }

    /// Starts a source on the leg (replacing, and reporting, one that was playing).
    fn play(&mut self, id: SessionId, play: super::PlayId, source: super::Source) {
        self.stop(id, true);
        let Some(s) = self.session_mut(id) else {
            return;
        };
        match Playing::new(source, s.media.rate) {
            Ok(playing) => {
                s.media.playing = Some((play, playing));
                s.media.ensure_buffer();
                s.sender.source_changed();
            }
            Err(reason) => self.emit(MediaEvent::Failed {
                session: id,
                reason: format!("cannot play: {reason}"),
            }),
        }
    }

    /// Puts the leg in conference `room` (made on first join), out of any bridge.
    fn join(&mut self, id: SessionId, room: u64) {
        self.leave(id);
        self.unbridge(id);
        let mixer = self
            .rooms
            .entry(room)
            .or_insert_with(|| crate::mix::Mixer::new(FRAME));
        let pid = mixer.join();
        if let Some(s) = self.session_mut(id) {
            s.media.room = Some((room, pid));
            s.media.ensure_buffer();
            s.sender.source_changed();
        }
    }

    /// Takes the leg out of its conference; an empty room is forgotten.
    fn leave(&mut self, id: SessionId) {
        let Some((room, pid)) = self.session_mut(id).and_then(|s| s.media.room.take()) else {
            return;
        };
        if let Some(s) = self.session_mut(id) {
            s.sender.source_changed();
        }
        if let Some(m) = self.rooms.get_mut(&room) {
            m.leave(pid);
            if m.is_empty() {
                self.rooms.remove(&room);
            }
        }
    }

    /// Stops what the leg plays; the bridged audio resumes.
    fn stop(&mut self, id: SessionId, stopped: bool) {
        let Some(s) = self.session_mut(id) else {
            return;
        };
        if let Some((play, _)) = s.media.playing.take() {
            s.sender.source_changed();
            self.emit(MediaEvent::PlayFinished {
                session: id,
                play,
                stopped,
            });
        }
    }

    fn record_start(
        &mut self,
        id: SessionId,
        path: std::path::PathBuf,
        recorder: Box<crate::wav::Recorder>,
    ) {
        self.record_stop(id);
        let Some(&slot) = self.index.get(&id) else {
            return;
        };
        let peer = self.slots[slot].as_ref().and_then(|s| s.bridged_to);
        if let Some(s) = self.slots[slot].as_mut() {
            s.media.recorder = Some((path, recorder));
            s.media.ensure_buffer();
        }
        if let Some(p) = peer
            && let Some(s) = self.slots[p].as_mut()
        {
            s.media.heard_by_peer = true;
            s.media.ensure_buffer();
            self.plain[p] = false;
        }
    }

    fn record_stop(&mut self, id: SessionId) {
        let Some(&slot) = self.index.get(&id) else {
            return;
        };
        let Some((path, recorder)) = self.slots[slot]
            .as_mut()
            .and_then(|s| s.media.recorder.take())
        else {
            return;
        };
        let error = recorder.finish().err().map(|e| e.to_string());
        self.emit(MediaEvent::RecordingFinished {
            session: id,
            path,
            error,
        });
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

    fn close(&mut self, id: SessionId) {
        self.leave(id);
        self.stop(id, true);
        self.record_stop(id);
        self.unbridge(id);
        let Some(slot) = self.index.remove(&id) else {
            return;
        };
        if let Some(mut s) = self.slots[slot].take() {
            for socket in [&mut s.rtp, &mut s.rtcp] {
                if let Err(e) = self.poll.registry().deregister(socket) {
                    // The socket closes when dropped below, which deregisters it.
                    tracing::debug!(session = %id, error = %e, "deregistering an RTP socket");
                }
            }
            self.ports.release(s.local_rtp_port);
            let stats = s.stats();
            self.emit(MediaEvent::Closed { session: id, stats });
        }
    }

    fn close_all(&mut self) {
        let ids: Vec<SessionId> = self.index.keys().copied().collect();
        for id in ids {
            self.close(id);
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
