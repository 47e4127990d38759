//! How a connect ends: settled when no leg is left ringing, the ring timeout,
//! the caller's hangup, the legs' media events and each leg's last row.

use super::*;

impl CallCore {
    /// When no leg is left ringing and none answered: the connect failed.
    pub(super) fn connect_settle(&mut self) {
        let Some(connect) = self.connect.as_ref() else {
            return;
        };
        if connect.winner.is_some() || !connect.all_ended() || connect.action.is_none() {
            return;
        }
        let relay = connect.request.relay_reason;
        // The status that says most: busy over declined over no answer over the rest.
        let statuses: Vec<u16> = connect.legs.iter().filter_map(|l| l.refused).collect();
        let status = [486u16, 600, 603, 480, 408, 487]
            .into_iter()
            .find(|s| statuses.contains(s))
            .or_else(|| statuses.first().copied())
            .unwrap_or(480);
        let reasons: Vec<HangupReason> = connect.legs.iter().filter_map(|l| l.reason).collect();
        let outcome = if reasons.contains(&HangupReason::Busy) {
            ConnectOutcome::Busy
        } else if reasons.contains(&HangupReason::NoAnswer) {
            ConnectOutcome::Noanswer
        } else {
            ConnectOutcome::Failed
        };
        if let Some(ringback) = self.connect.as_mut().and_then(|c| c.ringback.take())
            && let Some(caller) = self.leg.media
        {
            tracing::trace!(?ringback, "ringback stops");
            self.outputs
                .push_back(Output::Media(MediaCommand::Stop(caller.id)));
        }
        if relay && self.up {
            let reason = match outcome {
                ConnectOutcome::Busy => HangupReason::Busy,
                ConnectOutcome::Noanswer => HangupReason::NoAnswer,
                _ => HangupReason::Failed,
            };
            self.end(reason, HangupBy::Remote);
            if self.status == CallStatus::Progressing {
                self.hangup(reason);
            } else {
                // The caller gets the callee's own status (RFC 3326 Reason).
                let text = match status {
                    486 => "Busy Here",
                    600 => "Busy Everywhere",
                    603 => "Decline",
                    408 => "Request Timeout",
                    487 => "Request Terminated",
                    _ => "Temporarily Unavailable",
                };
                self.refuse(status, text, &[]);
            }
            self.flow_event(Event::Hangup);
        }
        self.finish_connect(Outcome::Connect(outcome));
    }

    /// The connect action completes (the flow goes on, unless it is hung up).
    pub(super) fn finish_connect(&mut self, outcome: Outcome) {
        if let Some(action) = self.connect.as_mut().and_then(|c| c.action.take()) {
            self.complete(action, outcome);
        }
    }

    /// The ring timeout: the legs still ringing are cancelled (no answer).
    pub(in crate::call::core) fn connect_timeout(&mut self, now: Instant) {
        let Some(connect) = self.connect.as_ref() else {
            return;
        };
        if connect.deadline().is_none_or(|d| now < d) {
            return;
        }
        for leg in connect.live_legs() {
            if let Some(c) = self.connect.as_mut().and_then(|c| c.leg_mut(leg)) {
                c.end(HangupReason::NoAnswer, HangupBy::Local);
                c.refused = Some(480);
            }
            self.hang_up_callee(leg, Reason::sip(480, "No answer"));
        }
        if let Some(c) = self.connect.as_mut() {
            c.deadline = None;
        }
    }

    /// The caller is gone (or the call closes): every dialled leg is hung up.
    pub(in crate::call::core) fn connect_caller_gone(&mut self) {
        let Some(connect) = self.connect.as_ref() else {
            return;
        };
        for leg in connect.live_legs() {
            if let Some(c) = self.connect.as_mut().and_then(|c| c.leg_mut(leg)) {
                c.end(HangupReason::Normal, HangupBy::Local);
            }
            self.hang_up_callee(leg, HangupReason::Normal.bye_reason());
        }
    }

    /// A dialled leg's media event (its session's close, its RTP timeout).
    pub(in crate::call::core) fn on_callee_media(
        &mut self,
        event: media_engine::engine::MediaEvent,
    ) {
        use media_engine::engine::MediaEvent;
        let Some(connect) = self.connect.as_ref() else {
            return;
        };
        match event {
            MediaEvent::Closed { session, stats } => {
                if let Some(leg) = connect.leg_of_session(session) {
                    self.callee_done(leg, Some(stats));
                }
            }
            MediaEvent::RtpTimeout { session } => {
                if let Some(leg) = connect.leg_of_session(session) {
                    tracing::info!(%leg, "no RTP from the callee: hanging it up");
                    if let Some(c) = self.connect.as_mut().and_then(|c| c.leg_mut(leg)) {
                        c.end(HangupReason::Failed, HangupBy::Local);
                    }
                    self.hang_up_callee(leg, HangupReason::Failed.bye_reason());
                }
            }
            _ => {}
        }
    }

    /// A dialled leg's last row: hangup, with its statistics when it had media.
    pub(super) fn callee_done(&mut self, leg: LegId, stats: Option<SessionStats>) {
        let now = self.stamps.now();
        let Some(callee) = self.connect.as_mut().and_then(|c| c.leg_mut(leg)) else {
            return;
        };
        if callee.state == CalleeState::Done {
            return;
        }
        if callee.state != CalleeState::Ended {
            // The session closed under a live leg (the engine failed it): end it.
            callee.end(HangupReason::Failed, HangupBy::Local);
            if callee.dialog.is_some() {
                self.outputs.push_back(Output::Callee {
                    leg,
                    command: CalleeCommand::Sip(SipCommand::Hangup {
                        reason: HangupReason::Failed.bye_reason(),
                    }),
                });
            }
        }
        let Some(callee) = self.connect.as_mut().and_then(|c| c.leg_mut(leg)) else {
            return;
        };
        callee.state = CalleeState::Done;
        if let Some(stats) = stats {
            callee.row.rtp_stats = Some(RtpStats {
                packets_sent: stats.packets_sent,
                packets_received: stats.packets_received,
                packets_lost: stats.lost,
                jitter_ms: stats.jitter_ms,
                rtt_ms: stats.rtt_ms,
            });
        }
        callee.row.status = CallStatus::Hangup.as_str().into();
        callee.row.tm_hangup = Some(now.clone());
        callee.row.tm_update = Some(now);
        let row = Write::call(&callee.row, false, &[Verb::Hungup]);
        self.outputs.push_back(Output::Write(row));
        self.closing_progress();
    }

    /// Closes a dialled leg's media session (its `Closed` writes the last row), or
    /// writes the last row now when it never had one.
    pub(super) fn close_callee(&mut self, leg: LegId) {
        let media = self
            .connect
            .as_mut()
            .and_then(|c| c.leg_mut(leg))
            .and_then(|l| l.media);
        match media {
            Some(m) => self
                .outputs
                .push_back(Output::Media(MediaCommand::Close(m.id))),
            None => self.callee_done(leg, None),
        }
    }

    /// Rows of the legs not closed in time, written without their statistics.
    pub(in crate::call::core) fn connect_flush(&mut self) {
        let open: Vec<LegId> = self
            .connect
            .as_ref()
            .map(|c| {
                c.legs
                    .iter()
                    .filter(|l| l.state != CalleeState::Done)
                    .map(|l| l.id)
                    .collect()
            })
            .unwrap_or_default();
        for leg in open {
            if let Some(c) = self.connect.as_mut().and_then(|c| c.leg_mut(leg)) {
                c.state = CalleeState::Ended;
            }
            self.callee_done(leg, None);
        }
    }
}
