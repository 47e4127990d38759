//! What changes an answered call's media: mute, hold and music on hold asked for
//! through the API, and the caller's own re-INVITEs and UPDATEs (a new offer in the
//! dialog, RFC 3264 section 8).

use std::sync::{Arc, OnceLock};

use media_engine::engine::{PlayId, Source};
use media_engine::wav::{Prompt, PromptCache};
use sip_stack::msg::{Message, Method};
use sip_stack::sdp::{self, Direction, LocalMedia, SessionDescription};
use sip_stack::transaction::TxId;

use super::{Actor, Write};

/// The call's media settings beyond what its flow plays.
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
    pub(super) local: Option<LocalMedia>,
}

impl Actor {
    /// Carries out a media change the API asked for.
    pub(super) async fn on_media_control(&mut self, what: api::CallMedia) {
        match what {
            api::CallMedia::Mute {
                inbound,
                outbound,
                on,
            } => {
                if inbound {
                    self.media_state.mute_in = on;
                }
                if outbound {
                    self.media_state.mute_out = on;
                }
                self.apply_mute();
                self.row.mute_direction =
                    match (self.media_state.mute_in, self.media_state.mute_out) {
                        (true, true) => "both",
                        (true, false) => "in",
                        (false, true) => "out",
                        (false, false) => "",
                    }
                    .into();
                self.row.tm_update = Some(self.services.stamps.now());
                self.store(Write::call(&self.row, false, &["updated"]))
                    .await;
            }
            api::CallMedia::Hold(on) => {
                if self.media_state.held == on {
                    return;
                }
                self.media_state.held = on;
                self.apply_mute();
                self.apply_rtp_expected();
                // RFC 3264 section 8.4: hold is a new offer marked sendonly.
                let direction = if on {
                    Direction::SendOnly
                } else {
                    Direction::SendRecv
                };
                self.reoffer(direction).await;
            }
            api::CallMedia::Moh(on) => {
                self.media_state.moh = on;
                self.restart_idle_source();
            }
            api::CallMedia::Silence(on) => {
                self.media_state.silence = on;
                self.restart_idle_source();
            }
        }
    }

    /// Tells the media leg whether RTP should come: not while either side holds (a
    /// held caller answers recvonly and sends nothing), so the RTP timeout waits.
    fn apply_rtp_expected(&self) {
        if let Some(leg) = self.leg {
            let s = &self.media_state;
            super::media_done(
                "expect_rtp",
                self.services
                    .media
                    .expect_rtp(leg.id, !s.held && !s.caller_silent),
            );
        }
    }

    /// Tells the media leg how it is muted: by the API, or by the hold.
    fn apply_mute(&self) {
        if let Some(leg) = self.leg {
            let s = &self.media_state;
            super::media_done(
                "mute",
                self.services
                    .media
                    .mute(leg.id, s.mute_in || s.held, s.mute_out),
            );
        }
    }

    /// Sends the caller a re-INVITE with our SDP in `direction`; its answer comes as
    /// a response event (the user agent ACKs a 2xx).
    async fn reoffer(&mut self, direction: Direction) {
        let Some(local) = self.media_state.local.as_mut() else {
            return;
        };
        local.session_version += 1;
        let body = sdp::offer(local, direction).to_string();
        let call = self.call;
        let sent = self
            .services
            .ua
            .with(move |ua, now| {
                ua.request(
                    now,
                    call,
                    "INVITE",
                    &[],
                    Some(("application/sdp", body.as_bytes())),
                )
            })
            .await;
        match sent {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(call = ?self.call, error = %e, "no re-INVITE"),
            Err(e) => tracing::warn!(call = ?self.call, error = %e, "no re-INVITE"),
        }
    }

    /// Music or silence changed: what plays while the flow plays nothing starts over.
    fn restart_idle_source(&mut self) {
        if self.media_state.moh_play.take().is_some()
            && let Some(leg) = self.leg
        {
            super::media_done("stop", self.services.media.stop(leg.id));
        }
        self.start_music_if_idle();
    }

    /// Starts the music (or silence) when it is on and the flow plays nothing.
    pub(super) fn start_music_if_idle(&mut self) {
        let s = &self.media_state;
        if !(s.moh || s.silence) || s.moh_play.is_some() || !self.pending.is_empty() {
            return;
        }
        let Some(leg) = self.leg else { return };
        let source = if s.moh {
            Source::Prompt {
                prompt: music(&self.services.prompts, &self.services.data_dir),
                times: 0,
            }
        } else {
            Source::Silence
        };
        if let Ok(play) = self.services.media.play(leg.id, source) {
            self.media_state.moh_play = Some(play);
        }
    }

    /// A play ended; true when it was the music (the flow does not hear of it).
    pub(super) fn music_ended(&mut self, play: PlayId) -> bool {
        if self.media_state.moh_play == Some(play) {
            self.media_state.moh_play = None;
            return true;
        }
        false
    }

    /// Answers a request the caller sent in the call: a re-INVITE or UPDATE gets our
    /// answer to its offer (or our offer, when it had none), INFO and NOTIFY get 200,
    /// anything else 501.
    pub(super) async fn on_request(&mut self, tx: TxId, msg: Message) {
        let (status, body) = match msg.method() {
            Some(Method::Invite | Method::Update) => match self.answer_reoffer(&msg) {
                Ok(body) => (200, Some(body)),
                Err(status) => (status, None),
            },
            Some(Method::Info | Method::Notify) => (200, None),
            _ => (501, None),
        };
        let sent = self
            .services
            .ua
            .with(move |ua, now| {
                let body = body.as_ref().map(|b| ("application/sdp", b.as_bytes()));
                ua.respond(now, tx, status, &[], body)
            })
            .await;
        if !matches!(sent, Ok(Ok(()))) {
            tracing::warn!(call = ?self.call, status, "the answer to an in-call request failed");
        }
    }

    /// Our SDP for a re-INVITE or UPDATE: the answer to its offer (the same codec:
    /// the leg does not change codec mid-call; otherwise 488), or, with no offer,
    /// our offer. Moves the media to a new address the offer names.
    fn answer_reoffer(&mut self, msg: &Message) -> Result<String, u16> {
        let Some(local) = self.media_state.local.as_mut() else {
            return Err(491);
        };
        local.session_version += 1;
        let body = msg.body();
        if body.is_empty() {
            let direction = if self.media_state.held {
                Direction::SendOnly
            } else {
                Direction::SendRecv
            };
            return Ok(sdp::offer(local, direction).to_string());
        }
        let text = std::str::from_utf8(body).map_err(|_| 400u16)?;
        let offer = SessionDescription::parse(text).map_err(|_| 400u16)?;
        let (answer, stream) = sdp::answer(&offer, local).map_err(|_| 488u16)?;
        if let Some(leg) = self.leg {
            let remote = std::net::SocketAddr::new(stream.remote_addr, stream.remote_port);
            super::media_done("set_remote", self.services.media.set_remote(leg.id, remote));
            // A caller that takes no media (its offer said sendonly or inactive)
            // gets none until it asks again (RFC 3264 section 6.1).
            let sending = matches!(stream.direction, Direction::SendRecv | Direction::SendOnly);
            super::media_done("send_rtp", self.services.media.send_rtp(leg.id, sending));
        }
        // Our answer's direction says whether we receive: not from a caller that holds.
        self.media_state.caller_silent =
            !matches!(stream.direction, Direction::SendRecv | Direction::RecvOnly);
        self.apply_rtp_expected();
        Ok(answer.to_string())
    }
}

/// The music: `<data dir>/moh/default.wav` when there is one (any WAV the prompts
/// may be, converted once and cached), else a built-in tune.
fn music(prompts: &PromptCache, data_dir: &std::path::Path) -> Arc<Prompt> {
    let path = data_dir.join("moh").join("default.wav");
    if path.is_file()
        && let Ok(p) = prompts.get_at(&path, 8000)
    {
        return p;
    }
    static TUNE: OnceLock<Arc<Prompt>> = OnceLock::new();
    TUNE.get_or_init(|| Arc::new(tune())).clone()
}

/// Eight seconds of a soft pentatonic arpeggio at 8 kHz: each note fades in and out
/// so the loop has no clicks.
fn tune() -> Prompt {
    const RATE: f32 = 8000.0;
    const NOTE: usize = 2000; // 250 ms
    let notes = [
        261.63, 329.63, 392.00, 440.00, 392.00, 329.63, 293.66, 329.63, 220.00, 261.63, 329.63,
        392.00, 349.23, 293.66, 246.94, 261.63, 261.63, 329.63, 392.00, 523.25, 440.00, 392.00,
        329.63, 293.66, 220.00, 246.94, 261.63, 293.66, 329.63, 293.66, 261.63, 196.00,
    ];
    let mut samples = Vec::with_capacity(notes.len() * NOTE);
    for f in notes {
        for i in 0..NOTE {
            let t = i as f32 / RATE;
            let envelope = (std::f32::consts::PI * i as f32 / NOTE as f32).sin();
            let tone = (std::f32::consts::TAU * f * t).sin()
                + 0.3 * (std::f32::consts::TAU * 2.0 * f * t).sin();
            samples.push((tone * envelope * 4000.0) as i16);
        }
    }
    Prompt {
        rate: 8000,
        samples: samples.into(),
    }
}
