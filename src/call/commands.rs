//! What the call actor does for each of the interpreter's commands: answer, speak,
//! play, record, send digits, make HTTP requests, load flows; and the helpers that
//! find prompts and build our SDP.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use flow_runtime::interpreter::{Command, Event, Outcome};
use flow_runtime::{ActionId, CallStatus};
use media_engine::engine::{LegParams, Source};

use super::prompts;
use media_engine::tone::Tone;
use sip_stack::sdp::{self, Direction, LocalMedia, SessionDescription};

use super::{Actor, Services, now_ms, tts};

impl Actor {
    pub(super) fn complete(&mut self, action_id: ActionId, outcome: Outcome) {
        // What failed is told to the customer (activeflow_action_failed): without
        // where the server keeps its files.
        let outcome = match outcome {
            Outcome::Failed(why) => {
                Outcome::Failed(without_data_dir(&why, &self.services.data_dir))
            }
            other => other,
        };
        self.flow
            .handle(Event::Completed { action_id, outcome }, now_ms());
    }

    pub(super) async fn execute(&mut self, action_id: ActionId, command: Command) {
        tracing::debug!(call = ?self.call, action = %action_id, ?command, "command");
        let leg = self.leg.map(|l| l.id);
        match command {
            Command::Answer => {
                let outcome = match self.answer().await {
                    Ok(()) => {
                        self.flow
                            .handle(Event::CallStatusChanged(CallStatus::Progressing), now_ms());
                        self.set_status(CallStatus::Progressing, "progressing", |c, now| {
                            c.tm_progressing = Some(now.to_owned())
                        })
                        .await;
                        Outcome::Done
                    }
                    Err(e) => {
                        // Without media the flow cannot go on: it ends here.
                        self.action_failed(&format!("action {action_id} failed: {e}"))
                            .await;
                        return self.answer_failed(&e).await;
                    }
                };
                self.complete(action_id, outcome);
            }
            Command::Talk {
                text,
                language,
                gender,
                provider,
                voice_id,
                wait,
            } => {
                let cache = self.services.data_dir.join("tts");
                let services = self.services.clone();
                let ready = self.ready.clone();
                tokio::spawn(async move {
                    let speech = tts::Speech {
                        text,
                        language,
                        gender,
                        voice_id,
                    };
                    let spoken = services.tts.speak(&provider, &cache, &speech).await;
                    let source = match spoken {
                        Ok(path) => prompt_source(&services, path).await,
                        Err(e) => Err(e.to_string()),
                    };
                    if ready.send((action_id, source, wait)).is_err() {
                        tracing::debug!("speech ready after the call ended");
                    }
                });
            }
            Command::Play { urls } => {
                let services = self.services.clone();
                let ready = self.ready.clone();
                let media_dir = customer_media(&services.data_dir, &self.row.customer_id);
                tokio::spawn(async move {
                    let source = match urls.first() {
                        Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                            match prompts::fetch(&services.outbound, &services.data_dir, url).await
                            {
                                Ok(path) => prompt_source(&services, path).await,
                                Err(e) => Err(e),
                            }
                        }
                        Some(url) => match local_path(&media_dir, url) {
                            Some(path) => prompt_source(&services, path).await,
                            None => Err(format!(
                                "{url}: not a file of the customer's media (media/<customer id>/ in the data dir)"
                            )),
                        },
                        None => Err("no url to play".into()),
                    };
                    if ready.send((action_id, source, true)).is_err() {
                        tracing::debug!("a prompt ready after the call ended");
                    }
                });
            }
            Command::Beep => {
                self.play(action_id, Ok(Source::Tone(Tone::beep())), true)
                    .await
            }
            Command::Echo { .. } => self.play(action_id, Ok(Source::Echo), false).await,
            Command::StopMedia => {
                if let Some(l) = leg {
                    super::media_done("stop", self.services.media.stop(l));
                }
            }
            Command::DigitsSend {
                digits,
                duration_ms,
                interval_ms,
            } => {
                // Done when the engine says the last key has gone (DigitsSent), so a
                // hangup right after does not cut the keys off.
                let sent = match leg {
                    Some(l) => self
                        .services
                        .media
                        .send_digits(
                            l,
                            &digits,
                            u32::try_from(duration_ms).unwrap_or(u32::MAX),
                            u32::try_from(interval_ms).unwrap_or(u32::MAX),
                        )
                        .map_err(|e| e.to_string()),
                    None => Err("the call is not answered".to_owned()),
                };
                match sent {
                    Ok(()) => self.sending_digits = Some(action_id),
                    Err(e) => self.complete(action_id, Outcome::Failed(e)),
                }
            }
            Command::RecordingStart {
                end_of_silence_s,
                end_of_key,
                duration_s,
                beep_start,
                ..
            } => {
                self.start_recording(super::recording::RecordingOptions {
                    duration_s,
                    end_of_silence_s,
                    end_of_key,
                    beep_start,
                })
                .await
            }
            Command::RecordingStop => self.stop_recording(),
            Command::Hangup {
                reason,
                reference_id,
            } => {
                // hangup_relay: the reason another call of the customer's ended with.
                let reason = if reason.is_empty() && !reference_id.is_empty() {
                    match self
                        .services
                        .store
                        .hangup_reason(&self.row.customer_id, &reference_id)
                        .await
                    {
                        Ok(reason) => reason.unwrap_or_default(),
                        Err(e) => {
                            tracing::warn!(error = %e, %reference_id, "hangup_relay: the other call's reason could not be read; hanging up as normal");
                            String::new()
                        }
                    }
                } else {
                    reason
                };
                self.hang_up_for(super::reason::HangupReason::from_flow(&reason))
                    .await;
            }
            Command::Http(request) => {
                let replies = self.replies.clone();
                let outbound = self.services.outbound.clone();
                tokio::spawn(async move {
                    let wait = request.wait;
                    let (status, body) = http(&outbound, &request).await;
                    if wait
                        && replies
                            .send(Event::HttpResponse {
                                action_id,
                                status,
                                body,
                            })
                            .is_err()
                    {
                        tracing::debug!("an HTTP answer after the call ended");
                    }
                });
            }
            Command::LoadFlow { flow_id } => {
                let loaded = self
                    .services
                    .store
                    .flow(&self.row.customer_id, &flow_id)
                    .await;
                let actions = match loaded {
                    Ok(Some(f)) => Ok(f.actions),
                    Ok(None) => Err(format!("flow {flow_id} not found")),
                    Err(e) => Err(e.to_string()),
                };
                self.flow
                    .handle(Event::FlowLoaded { action_id, actions }, now_ms());
            }
            Command::MohStart { .. } => self.on_media_control(api::CallMedia::Moh(true)).await,
            Command::DigitsReceive { .. } | Command::Sleep { .. } => {}
            other => {
                let name = serde_json::to_value(&other)
                    .ok()
                    .and_then(|v| v.get("command").and_then(|c| c.as_str()).map(str::to_owned))
                    .unwrap_or_else(|| "this action".into());
                self.complete(
                    action_id,
                    Outcome::Failed(format!("{name} is not available in this version")),
                );
            }
        }
    }

    /// Opens the media leg and answers with our SDP.
    pub(super) async fn answer(&mut self) -> Result<(), String> {
        if self.leg.is_some() {
            return Ok(());
        }
        let local = |port: u16| our_media(self.services.media_ip, port);
        let offer = match &self.offer {
            Some(text) => {
                Some(SessionDescription::parse(text).map_err(|e| format!("bad SDP offer: {e}"))?)
            }
            None => None,
        };
        let stream = match &offer {
            Some(o) => Some(sdp::answer(o, &local(0)).map_err(|e| e.to_string())?.1),
            None => None,
        };
        let opened = self
            .services
            .media
            .open(LegParams {
                remote: stream
                    .as_ref()
                    .map(|s| std::net::SocketAddr::new(s.remote_addr, s.remote_port)),
                peer_ip: Some(self.peer.ip()),
                audio_pt: stream.as_ref().map_or(0, |s| s.payload_type),
                opus: stream.as_ref().is_some_and(|s| s.codec.name == "opus"),
                rtcp_mux: stream.as_ref().is_some_and(|s| s.rtcp_mux),
                event_pt: stream.as_ref().map_or(Some(101), |s| s.telephone_event),
                event_clock_rate: stream.as_ref().map_or(0, |s| s.telephone_event_rate),
                rtp_timeout: self.services.rtp_timeout,
                // Tones in the audio are listened for only when the carrier did not
                // offer telephone-event (RFC 4733 section 2.6 prefers events), as
                // Asterisk's dtmf_mode=auto does: the detector costs CPU on every frame.
                inband_dtmf: stream.as_ref().is_none_or(|s| s.telephone_event.is_none()),
                ..LegParams::default()
            })
            .map_err(|e| format!("no media port: {e}"))?;
        self.media_rx = Some(self.services.media_events.register(opened.id));
        self.leg = Some(opened);
        let port = opened.local_rtp.port();
        let body = match &offer {
            Some(o) => sdp::answer(o, &local(port))
                .map_err(|e| e.to_string())?
                .0
                .to_string(),
            None => sdp::offer(&local(port), Direction::SendRecv).to_string(),
        };
        // Later offers (hold, the caller's re-INVITEs) keep the codec the leg uses.
        let mut kept = local(port);
        if let Some(s) = &stream {
            kept.codecs = vec![s.codec];
        }
        self.media_state.local = Some(kept);
        let call = self.call;
        self.services
            .ua
            .with(move |ua, now| ua.answer(now, call, Some(&body)))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// Starts a source for an action; a waiting one completes when it finishes.
    pub(super) async fn play(
        &mut self,
        action_id: ActionId,
        source: Result<Source, String>,
        wait: bool,
    ) {
        let Some(leg) = self.leg else {
            return self.complete(
                action_id,
                Outcome::Failed("the call is not answered".into()),
            );
        };
        match source.and_then(|s| {
            self.services
                .media
                .play(leg.id, s)
                .map_err(|e| e.to_string())
        }) {
            Ok(play) if wait => {
                self.pending.insert(play, action_id);
            }
            Ok(_) => self.complete(action_id, Outcome::Done),
            Err(e) => {
                tracing::warn!(call = ?self.call, error = %e, "media action failed");
                self.complete(action_id, Outcome::Failed(e));
            }
        }
    }
}

/// Our side of a call's SDP: G.711 for carriers, Opus (coded at 8 kHz) for
/// softphones that offer it, 20 ms packets, RTP at `port` of `addr`.
pub(super) fn our_media(addr: IpAddr, port: u16) -> LocalMedia {
    LocalMedia {
        addr,
        port,
        codecs: vec![sdp::PCMU, sdp::PCMA, sdp::OPUS],
        ptime: 20,
        session_id: now_ms(),
        session_version: 1,
    }
}

/// `why` with the data dir's path cut out (`media/...`, not `/srv/voipbin/media/...`).
/// The server canonicalizes the data dir once at start, so every path made from it
/// is spelled the same way.
fn without_data_dir(why: &str, data_dir: &std::path::Path) -> String {
    let dir = data_dir.to_string_lossy();
    let dir = dir.trim_end_matches('/');
    if dir.is_empty() {
        return why.to_owned();
    }
    why.replace(&format!("{dir}/"), "")
        .replace(dir, "<data dir>")
}

/// The folder of a customer's own media: `play` of a relative path or `file://`
/// URL reads only from here, so one customer cannot play another's recordings.
fn customer_media(data_dir: &std::path::Path, customer_id: &str) -> PathBuf {
    data_dir.join("media").join(customer_id)
}

/// A path under `media_dir` for a play URL (`file://...`, or a relative path);
/// `None` for anything that leaves it or is a network URL.
fn local_path(media_dir: &std::path::Path, url: &str) -> Option<PathBuf> {
    let rel = url.strip_prefix("file://").unwrap_or(url);
    if rel.contains("://") || rel.split(['/', '\\']).any(|p| p == "..") {
        return None;
    }
    let path = std::path::Path::new(rel.trim_start_matches('/'));
    let full = media_dir.join(path);
    full.starts_with(media_dir).then_some(full)
}

/// Makes an HTTP request for `webhook_send` or `fetch` (10 s timeout, answers of at
/// most 1 MiB, public addresses only); the status is 0 when it could not be made.
async fn http(
    outbound: &api::outbound::Outbound,
    req: &flow_runtime::interpreter::HttpRequest,
) -> (u16, String) {
    let method = reqwest::Method::from_bytes(req.method.to_ascii_uppercase().as_bytes())
        .unwrap_or(reqwest::Method::POST);
    let mut builder = match outbound.request(method, &req.url, Duration::from_secs(10)) {
        Ok(b) => b,
        Err(e) => {
            tracing::info!(url = %req.url, error = %e, "{} refused", req.purpose);
            return (0, String::new());
        }
    };
    if !req.body.is_empty() {
        builder = builder
            .header(reqwest::header::CONTENT_TYPE, &req.content_type)
            .body(req.body.clone());
    }
    let resp = match builder.send().await {
        Ok(resp) => resp,
        Err(e) => {
            tracing::info!(url = %req.url, error = %e, "{} failed", req.purpose);
            return (0, String::new());
        }
    };
    let status = resp.status().as_u16();
    match api::outbound::Outbound::read_capped(resp, api::outbound::MAX_FETCHED_BODY).await {
        Ok(body) => (status, String::from_utf8_lossy(&body).into_owned()),
        Err(e) => {
            tracing::info!(url = %req.url, error = %e, "{}: the answer was not read", req.purpose);
            (status, String::new())
        }
    }
}

/// A prompt at the leg's rate (8 kHz), converted once and cached.
pub(super) async fn prompt_source(
    services: &Arc<Services>,
    path: PathBuf,
) -> Result<Source, String> {
    let services = services.clone();
    tokio::task::spawn_blocking(move || services.prompts.get_at(&path, 8000))
        .await
        .map_err(|e| e.to_string())?
        .map(|prompt| Source::Prompt { prompt, times: 1 })
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn play_reads_only_the_customers_own_media() {
        let media = customer_media(std::path::Path::new("/srv/vb"), "cust-a");
        assert_eq!(
            local_path(&media, "prompts/hi.wav"),
            Some(PathBuf::from("/srv/vb/media/cust-a/prompts/hi.wav"))
        );
        assert_eq!(
            local_path(&media, "file:///prompts/hi.wav"),
            Some(PathBuf::from("/srv/vb/media/cust-a/prompts/hi.wav"))
        );
        // Another customer's recording, however it is written, is not reachable.
        for url in [
            "../../recordings/r1.wav",
            "/srv/vb/recordings/r1.wav",
            "file:///../cust-b/x.wav",
            "..\\cust-b\\x.wav",
        ] {
            let got = local_path(&media, url);
            assert!(
                got.as_ref().is_none_or(|p| p.starts_with(&media)),
                "{url} -> {got:?}"
            );
        }
        assert_eq!(local_path(&media, "http://x/a.wav"), None);
    }

    #[test]
    fn failures_do_not_show_where_the_data_dir_is() {
        let msg = without_data_dir(
            "/srv/vb/media/c1/x.wav: No such file or directory",
            std::path::Path::new("/srv/vb"),
        );
        assert_eq!(msg, "media/c1/x.wav: No such file or directory");
    }
}
