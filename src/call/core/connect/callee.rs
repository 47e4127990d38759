//! What a dialled leg does: rings (with early media), answers (the first wins
//! the bridge), sends requests in its dialog, and ends (failing over to the next
//! carrier when its carrier failed).

use super::*;

impl CallCore {
    /// The user agent's event about a dialled leg.
    pub(in crate::call::core) fn on_callee_sip(&mut self, leg: LegId, event: UaEvent) {
        match event {
            UaEvent::Progress { status, sdp, .. } => self.callee_progress(leg, status, sdp),
            UaEvent::Answered { sdp, .. } => self.callee_answered(leg, sdp),
            UaEvent::Ended { by, cause, .. } => {
                let by_us = by == sip_stack::ua::Side::Local;
                self.callee_ended(leg, &cause, by_us);
            }
            UaEvent::Request { tx, msg, .. } => self.callee_request(leg, tx, &msg),
            _ => {}
        }
    }

    /// A request inside a dialled leg's dialog: a re-INVITE or UPDATE gets our
    /// answer and moves the leg's media to the address it names (RFC 3264
    /// section 8); INFO and NOTIFY get 200; other methods 501.
    pub(super) fn callee_request(
        &mut self,
        leg: LegId,
        tx: sip_stack::transaction::TxId,
        msg: &sip_stack::msg::Message,
    ) {
        use sip_stack::msg::Method;
        let Some(callee) = self.connect.as_mut().and_then(|c| c.leg_mut(leg)) else {
            return;
        };
        let (status, sdp) = match (msg.method(), callee.local.as_mut()) {
            (Some(Method::Invite | Method::Update), Some(local)) => {
                match super::super::media::reanswer(local, msg, Direction::SendRecv) {
                    Ok((answer, stream)) => {
                        if let (Some(stream), Some(media)) = (&stream, callee.media) {
                            self.outputs
                                .push_back(Output::Media(MediaCommand::SetRemote {
                                    session: media.id,
                                    remote: SocketAddr::new(stream.remote_addr, stream.remote_port),
                                }));
                        }
                        if let Some(stream) = &stream {
                            let holding = super::holds(stream);
                            self.outputs.push_back(Output::Callee {
                                leg,
                                command: CalleeCommand::Sip(SipCommand::Respond {
                                    tx,
                                    status: 200,
                                    sdp: Some(answer),
                                }),
                            });
                            return self.relay_hold(super::Holder::Callee, holding);
                        }
                        (200, Some(answer))
                    }
                    Err(status) => (status, None),
                }
            }
            (Some(Method::Invite | Method::Update), None) => (491, None),
            (Some(Method::Info | Method::Notify), _) => (200, None),
            _ => (501, None),
        };
        self.outputs.push_back(Output::Callee {
            leg,
            command: CalleeCommand::Sip(SipCommand::Respond { tx, status, sdp }),
        });
    }

    pub(super) fn callee_progress(&mut self, leg: LegId, status: u16, sdp: Option<String>) {
        let caller_answered = self.status == CallStatus::Progressing;
        let caller = self.leg.media.map(|m| m.id);
        let Some(connect) = self.connect.as_mut() else {
            return;
        };
        let early_wanted = connect.request.early_media && connect.early.is_none();
        let Some(callee) = connect.leg_mut(leg) else {
            return;
        };
        if callee.state == CalleeState::Dialing {
            callee.state = CalleeState::Ringing;
            let now = self.stamps.now();
            callee.row.status = CallStatus::Ringing.as_str().into();
            callee.row.tm_ringing = Some(now.clone());
            callee.row.tm_update = Some(now);
            let row = Write::call(&callee.row, false, &[Verb::Ringing]);
            self.outputs.push_back(Output::Write(row));
        }
        let Some(callee) = self.connect.as_mut().and_then(|c| c.leg_mut(leg)) else {
            return;
        };
        let remote = sdp.as_deref().and_then(remote_of);
        match (remote, caller, callee.media) {
            (Some(remote), Some(caller), Some(media))
                if early_wanted && !caller_answered && (status == 183 || status == 180) =>
            {
                // Early media (RFC 3960): the caller hears the callee before the answer.
                self.outputs
                    .push_back(Output::Media(MediaCommand::SetRemote {
                        session: media.id,
                        remote,
                    }));
                self.outputs.push_back(Output::Media(MediaCommand::Bridge {
                    a: caller,
                    b: media.id,
                }));
                if let Some(c) = self.connect.as_mut() {
                    c.early = Some(leg);
                }
                if let Some(answer) = self.early_sdp.clone() {
                    self.outputs
                        .push_back(Output::Sip(SipCommand::EarlyMedia { sdp: answer }));
                }
            }
            _ if caller_answered => self.start_ringback(),
            _ => {}
        }
    }

    /// A local ringback tone to an answered caller, while the callees ring.
    pub(super) fn start_ringback(&mut self) {
        let Some(caller) = self.leg.media else {
            return;
        };
        if self.connect.as_ref().is_none_or(|c| c.ringback.is_some()) {
            return;
        }
        let play = self.next_play_id();
        self.outputs.push_back(Output::Media(MediaCommand::Play {
            session: caller.id,
            play,
            source: Source::Tone(Tone::ringback_us()),
        }));
        if let Some(c) = self.connect.as_mut() {
            c.ringback = Some(play);
        }
    }

    pub(super) fn callee_answered(&mut self, leg: LegId, sdp: Option<String>) {
        let Some(connect) = self.connect.as_mut() else {
            return;
        };
        if connect.winner.is_some() {
            // Answered after another: it is not wanted (section 13.2.2.4: ACKed,
            // then a BYE).
            self.hang_up_callee(leg, Reason::sip(200, "Call completed elsewhere"));
            return;
        }
        connect.winner = Some(leg);
        let ringback = connect.ringback.take();
        let early = connect.early;
        let others: Vec<LegId> = connect
            .legs
            .iter()
            .filter(|l| {
                l.id != leg
                    && matches!(
                        l.state,
                        CalleeState::Dialing | CalleeState::Ringing | CalleeState::Opening
                    )
            })
            .map(|l| l.id)
            .collect();
        let Some(callee) = connect.leg_mut(leg) else {
            return;
        };
        callee.state = CalleeState::Up;
        let now = self.stamps.now();
        callee.row.status = CallStatus::Progressing.as_str().into();
        callee.row.tm_progressing = Some(now.clone());
        callee.row.tm_update = Some(now);
        let row = Write::call(&callee.row, false, &[Verb::Progressing]);
        let media = callee.media;
        self.outputs.push_back(Output::Write(row));
        for other in others {
            // RFC 3326: the others are told why they stop ringing.
            self.hang_up_callee(other, Reason::sip(200, "Call completed elsewhere"));
        }
        let (Some(media), Some(caller)) = (media, self.leg.media) else {
            return;
        };
        if ringback.is_some() {
            self.outputs
                .push_back(Output::Media(MediaCommand::Stop(caller.id)));
        }
        if let Some(remote) = sdp.as_deref().and_then(remote_of) {
            self.outputs
                .push_back(Output::Media(MediaCommand::SetRemote {
                    session: media.id,
                    remote,
                }));
        }
        if early != Some(leg) {
            if early.is_some() {
                self.outputs
                    .push_back(Output::Media(MediaCommand::Unbridge(caller.id)));
            }
            self.outputs.push_back(Output::Media(MediaCommand::Bridge {
                a: caller.id,
                b: media.id,
            }));
        }
        if self.status != CallStatus::Progressing {
            // Answer on bridge: the caller's 200 goes now.
            if let Some(sdp) = self.early_sdp.take() {
                self.outputs
                    .push_back(Output::Sip(SipCommand::Answer { sdp }));
                self.flow_event(Event::CallStatusChanged(CallStatus::Progressing));
                self.set_status(CallStatus::Progressing, Verb::Progressing, |c, now| {
                    c.tm_progressing = Some(now.to_owned())
                });
            }
        }
    }

    /// Ends a dialled leg on the SIP side (its `Ended` follows).
    pub(super) fn hang_up_callee(&mut self, leg: LegId, reason: Reason) {
        let Some(callee) = self.connect.as_mut().and_then(|c| c.leg_mut(leg)) else {
            return;
        };
        match callee.state {
            CalleeState::Dialing | CalleeState::Ringing | CalleeState::Up => {
                self.outputs.push_back(Output::Callee {
                    leg,
                    command: CalleeCommand::Sip(SipCommand::Hangup { reason }),
                });
            }
            CalleeState::Opening => {
                // Not dialled yet: it never will be.
                callee.state = CalleeState::Ended;
                callee.end(HangupReason::Cancel, HangupBy::Local);
                self.close_callee(leg);
            }
            CalleeState::Ended | CalleeState::Done => {}
        }
    }

    /// A dialled leg is over on the SIP side: its media closes, and the caller and
    /// the flow hear what it means.
    pub(super) fn callee_ended(&mut self, leg: LegId, cause: &EndCause, by_us: bool) {
        let Some(connect) = self.connect.as_mut() else {
            return;
        };
        let was_winner = connect.winner == Some(leg);
        let was_early = connect.early == Some(leg);
        if was_early && !was_winner {
            connect.early = None;
        }
        let Some(callee) = connect.leg_mut(leg) else {
            return;
        };
        if matches!(callee.state, CalleeState::Ended | CalleeState::Done) {
            return;
        }
        if let EndCause::Rejected(status) = cause {
            callee.refused = Some(*status);
        }
        if !was_winner && fails_over(cause) && callee.dial.destination.kind == "tel" {
            // The carrier failed (no answer, 408, 5xx, 6xx but 603): the next one
            // is tried with the same offer, as Kamailio's dispatcher and jambonz do.
            callee.dial.attempt += 1;
            callee.dialog = None;
            callee.state = CalleeState::Dialing;
            tracing::info!(%leg, attempt = callee.dial.attempt, ?cause, "carrier failed: trying the next");
            let dial = callee.dial.clone();
            self.outputs.push_back(Output::Callee {
                leg,
                command: CalleeCommand::Dial(dial),
            });
            return;
        }
        callee.state = CalleeState::Ended;
        let by = if by_us {
            HangupBy::Local
        } else {
            HangupBy::Remote
        };
        callee.end(reason_of(cause, by_us), by);
        let reason = callee.reason.unwrap_or(HangupReason::Normal);
        // Closing the callee's leg ends its bridge with the caller's in the media
        // worker: no separate unbridge (which would wake the worker once more).
        self.close_callee(leg);
        if was_winner {
            let relay = self
                .connect
                .as_ref()
                .is_some_and(|c| c.request.relay_reason);
            if relay && self.up {
                // The caller ends first, so the flow hears the hangup, not a next
                // action to run.
                self.end(reason, HangupBy::Remote);
                self.hangup(reason);
                self.flow_event(Event::Hangup);
            }
            self.finish_connect(Outcome::Connect(ConnectOutcome::Answered));
            return;
        }
        self.connect_settle();
    }
}
