//! The call's leg and what changes its media: the answer (and a late offer's
//! answer in the ACK), plays and the music under them, mute and hold asked for
//! through the API, and the caller's own re-INVITEs and UPDATEs (a new offer in the
//! dialog, RFC 3264 section 8).

use std::net::{IpAddr, SocketAddr};

use flow_runtime::interpreter::{Event, Outcome};
use flow_runtime::{ActionId, CallStatus};
use media_engine::engine::{LegParams, OpenedLeg, Source};
use sip_stack::msg::{Message, Method};
use sip_stack::sdp::{self, Direction, LocalMedia, SessionDescription};
use sip_stack::transaction::TxId;
use sip_stack::ua::CallRef;

use api::call_store::{Verb, Write};

use super::super::reason::{HangupBy, HangupReason};
use super::{Answering, CallCore, MediaCommand, Output, PlayId, SipCommand};

/// One leg: a SIP dialog (the user agent's call) and, once answered, its media
/// session. A leg is what a bridge or a room joins.
#[derive(Debug)]
pub(super) struct Leg {
    /// The user agent's handle of the dialog (none for a call we place until its
    /// INVITE is out).
    pub call: Option<CallRef>,
    /// Where the dialog's SIP comes from.
    pub peer: SocketAddr,
    /// The INVITE's SDP offer, if it had one.
    pub offer: Option<String>,
    /// The offer parsed, and the stream agreed from it: read once, when the call
    /// is set up, for the leg's parameters and its answer.
    negotiated: Option<(SessionDescription, sdp::AudioStream)>,
    /// The media session, once the leg is answered.
    pub media: Option<OpenedLeg>,
    /// Mute, hold and music.
    pub state: MediaState,
}

/// The leg's media settings beyond what the flow plays.
#[derive(Debug, Default)]
pub(super) struct MediaState {
    /// Muted through the API: what the caller says is not heard.
    mute_in: bool,
    /// Muted through the API: the caller hears silence.
    mute_out: bool,
    /// On hold (we offered `a=sendonly`).
    held: bool,
    /// The caller holds: its last offer said it sends nothing (`a=inactive` or
    /// `a=recvonly`, RFC 3264 section 8.4).
    caller_silent: bool,
    /// Music on hold is on.
    moh: bool,
    /// Silence is on: silent audio whenever nothing else plays (and no music).
    silence: bool,
    /// The music (or silence) playing now, when it plays.
    moh_play: Option<PlayId>,
    /// Our side of the SDP as last sent; each new offer or answer bumps its version.
    pub local: Option<LocalMedia>,
}

impl Leg {
    /// The G.711 codec a leg bridged to this one should use: the caller's own when
    /// it speaks G.711 (the bridge then forwards packets untouched), else PCMU
    /// (transcoded on the engine's tick).
    pub fn bridge_codec(&self) -> sdp::Codec {
        match self.state.local.as_ref().and_then(|l| l.codecs.first()) {
            Some(c) if c.name.eq_ignore_ascii_case("PCMA") => sdp::PCMA,
            _ => sdp::PCMU,
        }
    }

    pub fn new(call: Option<CallRef>, peer: SocketAddr, offer: Option<String>) -> Self {
        Self {
            call,
            peer,
            offer,
            negotiated: None,
            media: None,
            state: MediaState::default(),
        }
    }

    /// Reads the INVITE's offer and agrees a stream (RFC 3264 section 6); an error
    /// says why it cannot be answered (488).
    pub fn negotiate(&mut self, media_ip: IpAddr) -> Result<(), String> {
        let Some(text) = &self.offer else {
            return Ok(());
        };
        let offer = SessionDescription::parse(text)
            .map_err(|e| format!("the SDP offer does not parse: {e}"))?;
        let (_, stream) =
            sdp::answer(&offer, &our_media(media_ip, 0, 0)).map_err(|e| e.to_string())?;
        self.negotiated = Some((offer, stream));
        Ok(())
    }
}

/// Our SDP for a peer's re-INVITE or UPDATE (RFC 3264 section 8), its version
/// bumped: the answer to its offer with the stream agreed (the same codec: a leg
/// does not change codec mid-call, else 488), or, with no offer, our offer in
/// `direction`. 400 for an offer that does not parse.
pub(super) fn reanswer(
    local: &mut LocalMedia,
    msg: &Message,
    direction: Direction,
) -> Result<(String, Option<sdp::AudioStream>), u16> {
    local.session_version += 1;
    let body = msg.body();
    if body.is_empty() {
        return Ok((sdp::offer(local, direction).to_string(), None));
    }
    let text = std::str::from_utf8(body).map_err(|_| 400u16)?;
    let offer = SessionDescription::parse(text).map_err(|_| 400u16)?;
    let (answer, stream) = sdp::answer(&offer, local).map_err(|_| 488u16)?;
    Ok((answer.to_string(), Some(stream)))
}

/// A new offer of ours in `direction`, its version bumped (RFC 3264 section 8).
pub(super) fn next_offer(local: &mut LocalMedia, direction: Direction) -> String {
    local.session_version += 1;
    sdp::offer(local, direction).to_string()
}

/// Our side of a call's SDP: G.711 for carriers, Opus (coded at 8 kHz) for
/// softphones that offer it, 20 ms packets, RTP at `port` of `addr`.
pub(super) fn our_media(addr: IpAddr, port: u16, session_id: u64) -> LocalMedia {
    LocalMedia {
        addr,
        port,
        codecs: vec![sdp::PCMU, sdp::PCMA, sdp::OPUS],
        ptime: 20,
        session_id,
        session_version: 1,
    }
}

impl CallCore {
    /// The flow's `answer`: opens the leg (its answer comes as `LegOpened`).
    pub(super) fn answer(&mut self, action_id: ActionId) {
        if self.leg.media.is_some() && self.status == CallStatus::Progressing {
            return self.complete(action_id, Outcome::Done);
        }
        if !self.up {
            return self.complete(action_id, Outcome::Failed("the call is gone".into()));
        }
        if self.leg.media.is_some() {
            // Open for a connect's early media, not answered yet: the 200 goes now.
            if let Some(sdp) = self.early_sdp.take() {
                self.send_answer(sdp);
            }
            return self.complete(action_id, Outcome::Done);
        }
        self.open_caller(Answering::Action(action_id));
    }

    /// Opens the caller's media session, for `what` (its answer comes as
    /// `LegOpened`).
    pub(super) fn open_caller(&mut self, what: Answering) {
        let stream = self.leg.negotiated.as_ref().map(|(_, s)| s.clone());
        self.answering = Some(what);
        self.outputs
            .push_back(Output::Media(MediaCommand::Open(LegParams {
                remote: stream
                    .as_ref()
                    .map(|s| SocketAddr::new(s.remote_addr, s.remote_port)),
                peer_ip: Some(self.leg.peer.ip()),
                audio_pt: stream.as_ref().map_or(0, |s| s.payload_type),
                opus: stream.as_ref().is_some_and(|s| s.codec.name == "opus"),
                rtcp_mux: stream.as_ref().is_some_and(|s| s.rtcp_mux),
                event_pt: stream.as_ref().map_or(Some(101), |s| s.telephone_event),
                event_clock_rate: stream.as_ref().map_or(0, |s| s.telephone_event_rate),
                rtp_timeout: self.config.rtp_timeout,
                // Tones in the audio are listened for only when the carrier did not
                // offer telephone-event (RFC 4733 section 2.6 prefers events), as
                // Asterisk's dtmf_mode=auto does: the detector costs CPU on every frame.
                inband_dtmf: stream.as_ref().is_none_or(|s| s.telephone_event.is_none()),
                ..LegParams::default()
            })));
    }

    /// The leg is open (or could not be): for `answer`, the 200 with our SDP goes
    /// out, the call is progressing and the answer is done; for a `connect`, the
    /// SDP waits for the callee and the destinations are dialled.
    pub(super) fn on_leg_opened(&mut self, result: Result<OpenedLeg, String>) {
        let Some(what) = self.answering.take() else {
            if let Ok(opened) = result {
                // Nobody waits for it any more (the call ended meanwhile).
                self.outputs
                    .push_back(Output::Media(MediaCommand::Close(opened.id)));
            }
            return;
        };
        let opened = match result {
            Ok(o) => o,
            Err(e) => {
                let e = format!("no media port: {e}");
                return self.open_failed(what, &e);
            }
        };
        if what == Answering::Dial {
            return self.dial_opened(opened);
        }
        let port = opened.local_rtp.port();
        let session_id = self.clock.ms(self.now);
        let mut local = our_media(self.config.media_ip, port, session_id);
        let body = match &self.leg.negotiated {
            Some((offer, _)) => {
                let answered = sdp::answer(offer, &local).map_err(|e| e.to_string());
                match answered {
                    Ok((answer, stream)) => {
                        // Later offers (hold, re-INVITEs) keep the codec the leg uses.
                        local.codecs = vec![stream.codec];
                        answer.to_string()
                    }
                    Err(e) => {
                        self.leg.media = Some(opened);
                        return self.open_failed(what, &e);
                    }
                }
            }
            None => sdp::offer(&local, Direction::SendRecv).to_string(),
        };
        self.leg.media = Some(opened);
        self.leg.state.local = Some(local);
        match what {
            Answering::Action(action_id) => {
                self.send_answer(body);
                self.complete(action_id, Outcome::Done);
            }
            Answering::Connect => {
                self.early_sdp = Some(body);
                self.caller_ready_for_connect();
            }
            Answering::Dial => {}
        }
    }

    /// The 200 with our SDP: the call is progressing.
    fn send_answer(&mut self, sdp: String) {
        self.outputs
            .push_back(Output::Sip(SipCommand::Answer { sdp }));
        self.flow_event(Event::CallStatusChanged(CallStatus::Progressing));
        self.set_status(CallStatus::Progressing, Verb::Progressing, |c, now| {
            c.tm_progressing = Some(now.to_owned())
        });
    }

    /// The caller's session could not be opened (or answered) for `what`.
    fn open_failed(&mut self, what: Answering, why: &str) {
        match what {
            Answering::Action(action_id) => {
                self.action_failed(&format!("action {action_id} failed: {why}"));
                self.answer_failed(why);
            }
            Answering::Connect => self.connect_failed(why),
            Answering::Dial => {
                self.action_failed(&format!("the call could not be placed: {why}"));
                self.end(HangupReason::Failed, HangupBy::Local);
                self.up = false;
                self.close();
            }
        }
    }

    /// A late offer's answer (in the ACK): where to send media.
    pub(super) fn late_answer(&mut self, answer: &str) {
        if let (Some(leg), Ok(a)) = (self.leg.media, SessionDescription::parse(answer))
            && let Some(m) = a.media.first()
            && let Some(ip) = a.media_addr(m)
        {
            self.outputs
                .push_back(Output::Media(MediaCommand::SetRemote {
                    session: leg.id,
                    remote: SocketAddr::new(ip, m.port),
                }));
        }
    }

    /// Starts a source for an action; a waiting one completes when it finishes.
    pub(super) fn play(&mut self, action_id: ActionId, source: Result<Source, String>, wait: bool) {
        let Some(leg) = self.leg.media else {
            return self.complete(
                action_id,
                Outcome::Failed("the call is not answered".into()),
            );
        };
        match source {
            Ok(source) => {
                let play = self.next_play_id();
                self.outputs.push_back(Output::Media(MediaCommand::Play {
                    session: leg.id,
                    play,
                    source,
                }));
                if wait {
                    self.pending.insert(play, action_id);
                } else {
                    self.complete(action_id, Outcome::Done);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "media action failed");
                self.complete(action_id, Outcome::Failed(e));
            }
        }
    }

    pub(super) fn next_play_id(&mut self) -> PlayId {
        let id = PlayId(self.next_play);
        self.next_play += 1;
        id
    }

    /// Carries out a media change the API asked for.
    pub(super) fn on_media_control(&mut self, what: api::CallMedia) {
        match what {
            api::CallMedia::Mute {
                inbound,
                outbound,
                on,
            } => {
                if inbound {
                    self.leg.state.mute_in = on;
                }
                if outbound {
                    self.leg.state.mute_out = on;
                }
                self.apply_mute();
                self.row.mute_direction = match (self.leg.state.mute_in, self.leg.state.mute_out) {
                    (true, true) => "both",
                    (true, false) => "in",
                    (false, true) => "out",
                    (false, false) => "",
                }
                .into();
                self.row.tm_update = Some(self.stamps.now());
                self.outputs.push_back(Output::Write(Write::call(
                    &self.row,
                    false,
                    &[Verb::Updated],
                )));
            }
            api::CallMedia::Hold(on) => {
                if self.leg.state.held == on {
                    return;
                }
                self.leg.state.held = on;
                self.apply_mute();
                self.apply_rtp_expected();
                // RFC 3264 section 8.4: hold is a new offer marked sendonly.
                let direction = if on {
                    Direction::SendOnly
                } else {
                    Direction::SendRecv
                };
                self.reoffer(direction);
            }
            api::CallMedia::Moh(on) => {
                self.leg.state.moh = on;
                self.restart_idle_source();
            }
            api::CallMedia::Silence(on) => {
                self.leg.state.silence = on;
                self.restart_idle_source();
            }
        }
    }

    /// Tells the media leg whether RTP should come: not while either side holds (a
    /// held caller answers recvonly and sends nothing), so the RTP timeout waits.
    fn apply_rtp_expected(&mut self) {
        if let Some(leg) = self.leg.media {
            let s = &self.leg.state;
            let on = !s.held && !s.caller_silent;
            self.outputs
                .push_back(Output::Media(MediaCommand::ExpectRtp {
                    session: leg.id,
                    on,
                }));
        }
    }

    /// Tells the media leg how it is muted: by the API, or by the hold.
    fn apply_mute(&mut self) {
        if let Some(leg) = self.leg.media {
            let s = &self.leg.state;
            let (inbound, outbound) = (s.mute_in || s.held, s.mute_out);
            self.outputs.push_back(Output::Media(MediaCommand::Mute {
                session: leg.id,
                inbound,
                outbound,
            }));
        }
    }

    /// Sends the caller a re-INVITE with our SDP in `direction`; its answer comes as
    /// a response event (the user agent ACKs a 2xx).
    pub(super) fn reoffer(&mut self, direction: Direction) {
        let Some(local) = self.leg.state.local.as_mut() else {
            return;
        };
        let sdp = next_offer(local, direction);
        self.outputs
            .push_back(Output::Sip(SipCommand::Reinvite { sdp }));
    }

    /// Music or silence changed: what plays while the flow plays nothing starts over.
    fn restart_idle_source(&mut self) {
        if self.leg.state.moh_play.take().is_some()
            && let Some(leg) = self.leg.media
        {
            self.outputs
                .push_back(Output::Media(MediaCommand::Stop(leg.id)));
        }
        self.start_music_if_idle();
    }

    /// Starts the music (or silence) when it is on and the flow plays nothing.
    pub(super) fn start_music_if_idle(&mut self) {
        let s = &self.leg.state;
        if !(s.moh || s.silence) || s.moh_play.is_some() || !self.pending.is_empty() {
            return;
        }
        let Some(leg) = self.leg.media else { return };
        let music = s.moh;
        let play = self.next_play_id();
        self.outputs.push_back(Output::Media(if music {
            MediaCommand::PlayMusic {
                session: leg.id,
                play,
            }
        } else {
            MediaCommand::Play {
                session: leg.id,
                play,
                source: Source::Silence,
            }
        }));
        self.leg.state.moh_play = Some(play);
    }

    /// The flow's `moh_start`: music whenever it plays nothing.
    pub(super) fn music_on(&mut self) {
        self.on_media_control(api::CallMedia::Moh(true));
    }

    /// A play ended; true when it was the music (the flow does not hear of it).
    pub(super) fn music_ended(&mut self, play: PlayId) -> bool {
        if self.leg.state.moh_play == Some(play) {
            self.leg.state.moh_play = None;
            return true;
        }
        false
    }

    /// Answers a request the caller sent in the call: a re-INVITE or UPDATE gets our
    /// answer to its offer (or our offer, when it had none), INFO and NOTIFY get 200,
    /// anything else 501.
    pub(super) fn on_request(&mut self, tx: TxId, msg: &Message) {
        let (status, sdp) = match msg.method() {
            Some(Method::Invite | Method::Update) => match self.answer_reoffer(msg) {
                Ok(body) => (200, Some(body)),
                Err(status) => (status, None),
            },
            Some(Method::Info | Method::Notify) => (200, None),
            _ => (501, None),
        };
        self.outputs
            .push_back(Output::Sip(SipCommand::Respond { tx, status, sdp }));
    }

    /// Our SDP for a re-INVITE or UPDATE: the answer to its offer (the same codec:
    /// the leg does not change codec mid-call; otherwise 488), or, with no offer,
    /// our offer. Moves the media to a new address the offer names.
    fn answer_reoffer(&mut self, msg: &Message) -> Result<String, u16> {
        let held = self.leg.state.held;
        let Some(local) = self.leg.state.local.as_mut() else {
            return Err(491);
        };
        let direction = if held {
            Direction::SendOnly
        } else {
            Direction::SendRecv
        };
        let (answer, stream) = reanswer(local, msg, direction)?;
        let Some(stream) = stream else {
            return Ok(answer);
        };
        if let Some(leg) = self.leg.media {
            let remote = SocketAddr::new(stream.remote_addr, stream.remote_port);
            self.outputs
                .push_back(Output::Media(MediaCommand::SetRemote {
                    session: leg.id,
                    remote,
                }));
            // A caller that takes no media (its offer said sendonly or inactive)
            // gets none until it asks again (RFC 3264 section 6.1).
            let sending = matches!(stream.direction, Direction::SendRecv | Direction::SendOnly);
            self.outputs.push_back(Output::Media(MediaCommand::SendRtp {
                session: leg.id,
                on: sending,
            }));
        }
        // Our answer's direction says whether we receive: not from a caller that holds.
        self.leg.state.caller_silent =
            !matches!(stream.direction, Direction::SendRecv | Direction::RecvOnly);
        self.apply_rtp_expected();
        // Connected: the callee hears of the caller's hold.
        let holding = super::connect::holds(&stream);
        self.relay_hold(super::connect::Holder::Caller, holding);
        Ok(answer)
    }

    /// The answer failed (no free media port, an offer we cannot answer): a call
    /// that cannot carry media ends as failed, and the flow hears the hangup rather
    /// than running on without a caller. Before the answer the INVITE gets 503 with
    /// Retry-After (RFC 3261 section 21.5.4), so a carrier tries its next route, and
    /// a Reason naming the problem (RFC 3326).
    pub(super) fn answer_failed(&mut self, problem: &str) {
        self.end(HangupReason::Failed, HangupBy::Local);
        if self.status == CallStatus::Progressing {
            self.hangup(HangupReason::Failed);
        } else {
            self.refuse(503, problem, &[("Retry-After", "5")]);
        }
        self.flow_event(Event::Hangup);
    }
}
