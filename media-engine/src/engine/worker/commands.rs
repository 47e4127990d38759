//! What a worker does with its commands: legs added, bridged, played to, recorded,
//! joined to rooms and closed. The worker takes its queue when woken for an urgent
//! command and at the start of every tick (`Command::urgent`).

use std::sync::mpsc::TryRecvError;
use std::time::Instant;

use mio::{Interest, Token};

use super::Worker;
use crate::engine::media::{FRAME, Playing};
use crate::engine::session::Session;
use crate::engine::{Command, EventTarget, MediaEvent, PlayId, SessionId, Source};

impl Worker {
    /// The tick and the relay must look at the leg again (a command changed what it
    /// does).
    fn rouse(&mut self, id: SessionId) {
        if let Some(&slot) = self.index.get(&id)
            && let Some(plain) = self.plain.get_mut(slot)
        {
            *plain = false;
        }
    }

    /// Applies the queued commands. False when the worker must stop (told to, or
    /// the engine is gone): every leg is closed by then, its closing statistics
    /// reported.
    pub(super) fn take_commands(&mut self) -> bool {
        loop {
            let command = self.commands.try_recv();
            if let Ok(c) = &command {
                for id in c.sessions().into_iter().flatten() {
                    self.rouse(id);
                }
            }
            match command {
                Ok(Command::Add(session, events)) => self.add(*session, events),
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
                Err(TryRecvError::Empty) => return true,
                Ok(Command::Shutdown) | Err(TryRecvError::Disconnected) => {
                    self.close_all();
                    return false;
                }
            }
        }
    }

    pub(super) fn session_mut(&mut self, id: SessionId) -> Option<&mut Session> {
        let slot = *self.index.get(&id)?;
        self.slots.get_mut(slot)?.as_mut()
    }

    fn add(&mut self, mut session: Session, events: Option<EventTarget>) {
        if let Some(target) = events {
            self.events.route(session.id, target);
        }
        let slot = self.vacant.pop().unwrap_or(self.slots.len());
        if let Err(e) = self.watch(&mut session, slot) {
            let id = session.id;
            self.ports.release(session.local_rtp_port);
            if slot < self.slots.len() {
                self.vacant.push(slot);
            }
            self.emit(MediaEvent::Failed {
                session: id,
                reason: format!("could not watch the leg's sockets: {e}"),
            });
            self.events.forget(id);
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
    fn play(&mut self, id: SessionId, play: PlayId, source: Source) {
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

    /// Points the leg's sockets at `slot` in this worker's poll: re-pointed when
    /// they are there already (a pair this worker parked), added otherwise.
    fn watch(&mut self, session: &mut Session, slot: usize) -> std::io::Result<()> {
        let registry = self.poll.registry();
        let (rtp, rtcp) = (Token(slot * 2), Token(slot * 2 + 1));
        if session.watched {
            registry
                .reregister(&mut session.rtp, rtp, Interest::READABLE)
                .and_then(|()| registry.reregister(&mut session.rtcp, rtcp, Interest::READABLE))
        } else {
            registry
                .register(&mut session.rtp, rtp, Interest::READABLE)
                .and_then(|()| registry.register(&mut session.rtcp, rtcp, Interest::READABLE))?;
            session.watched = true;
            Ok(())
        }
    }

    pub(super) fn close(&mut self, id: SessionId) {
        self.leave(id);
        self.stop(id, true);
        self.record_stop(id);
        self.unbridge(id);
        let Some(slot) = self.index.remove(&id) else {
            return;
        };
        // The sockets stay open and in this worker's poll, parked for a later leg
        // on this worker (ports.rs).
        if let Some(s) = self.slots[slot].take() {
            self.vacant.push(slot);
            let stats = s.stats();
            let Session {
                rtp,
                rtcp,
                local_rtp_port,
                ..
            } = s;
            self.ports.park(self.me, rtp, rtcp, local_rtp_port);
            self.emit(MediaEvent::Closed { session: id, stats });
        }
    }

    fn close_all(&mut self) {
        let ids: Vec<SessionId> = self.index.keys().copied().collect();
        for id in ids {
            self.close(id);
        }
    }
}
