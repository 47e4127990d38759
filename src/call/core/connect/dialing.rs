//! Placing the legs: a row and a media session for each destination, then its
//! INVITE with our offer; a leg that cannot be placed fails with its reason.

use super::*;

impl CallCore {
    /// Whether a dialled call hides the caller ID: `anonymous` is `yes`, or `auto`
    /// and this call's own caller is hidden.
    pub(in crate::call::core) fn hides_caller_id(&self, anonymous: &str) -> bool {
        match anonymous {
            "yes" => true,
            "auto" => self.incoming.source.is_empty() || self.incoming.source == "anonymous",
            _ => false,
        }
    }

    /// Makes a row and opens a media session for each destination.
    pub(super) fn dial_all(&mut self) {
        let Some(connect) = self.connect.as_ref() else {
            return;
        };
        let request = connect.request.clone();
        let anonymous = self.hides_caller_id(&request.anonymous);
        let (caller_id, caller_name) = match &request.source {
            Some(a) if !a.target.is_empty() => (a.target.clone(), a.target_name.clone()),
            _ => (self.incoming.source.clone(), String::new()),
        };
        let codec = self.leg.bridge_codec();
        let mut ids = Vec::new();
        for destination in &request.destinations {
            self.next_leg += 1;
            let id = LegId(self.next_leg);
            let call_id = uuid::Uuid::now_v7().to_string();
            let destination = Address {
                kind: if destination.kind.is_empty() {
                    "tel".into()
                } else {
                    destination.kind.clone()
                },
                target: destination.target.clone(),
                target_name: destination.target_name.clone(),
            };
            let row = Call {
                id: call_id.clone(),
                customer_id: self.row.customer_id.clone(),
                kind: "flow".into(),
                master_call_id: self.row.id.clone(),
                source: Address {
                    kind: "tel".into(),
                    target: caller_id.clone(),
                    target_name: caller_name.clone(),
                },
                destination: destination.clone(),
                status: CallStatus::Dialing.as_str().into(),
                direction: "outgoing".into(),
                metadata: serde_json::Value::Object(Default::default()),
                tm_create: self.stamps.unique(),
                ..Call::default()
            };
            self.outputs.push_back(Output::Write(Write::call(
                &row,
                true,
                &[Verb::Created, Verb::Dialing],
            )));
            ids.push(call_id.clone());
            let dial = Dial {
                destination,
                caller_id: caller_id.clone(),
                caller_name: caller_name.clone(),
                anonymous,
                sdp: String::new(),
                call_id,
                max_forwards: self.incoming.max_forwards.saturating_sub(1),
                attempt: 0,
            };
            if let Some(c) = self.connect.as_mut() {
                c.legs.push(Callee {
                    id,
                    state: CalleeState::Opening,
                    dial,
                    dialog: None,
                    media: None,
                    local: None,
                    row,
                    reason: None,
                    refused: None,
                });
            }
            self.outputs.push_back(Output::Callee {
                leg: id,
                command: CalleeCommand::Open(LegParams {
                    audio_pt: codec.static_pt.unwrap_or(0),
                    event_pt: Some(101),
                    rtp_timeout: self.config.rtp_timeout,
                    // Bridged legs share a media worker.
                    place_with: self.leg.media.map(|m| m.id),
                    ..LegParams::default()
                }),
            });
        }
        self.row.chained_call_ids.extend(ids);
        self.row.tm_update = Some(self.stamps.now());
        self.outputs.push_back(Output::Write(Write::call(
            &self.row,
            false,
            &[Verb::Updated],
        )));
    }

    /// A dialled leg's media session is open: its INVITE goes out with our offer.
    pub(in crate::call::core) fn callee_opened(
        &mut self,
        leg: LegId,
        result: Result<OpenedLeg, String>,
    ) {
        let session_id = self.clock.ms(self.now);
        let codec = self.leg.bridge_codec();
        let media_ip = self.config.media_ip;
        let Some(callee) = self.connect.as_mut().and_then(|c| c.leg_mut(leg)) else {
            if let Ok(opened) = result {
                self.outputs
                    .push_back(Output::Media(MediaCommand::Close(opened.id)));
            }
            return;
        };
        match result {
            Ok(opened) => {
                // The caller's G.711 codec only: the session is opened for it, and
                // the bridge forwards packets untouched.
                let mut local = our_media(media_ip, opened.local_rtp.port(), session_id);
                local.codecs = vec![codec];
                callee.media = Some(opened);
                callee.dial.sdp = sdp::offer(&local, Direction::SendRecv).to_string();
                callee.local = Some(local);
                callee.state = CalleeState::Dialing;
                let dial = callee.dial.clone();
                self.outputs.push_back(Output::Callee {
                    leg,
                    command: CalleeCommand::Dial(dial),
                });
            }
            Err(e) => {
                let why = format!("no media port for {}: {e}", callee.dial.destination.target);
                self.callee_failed(leg, &why, 503);
            }
        }
    }

    /// The INVITE of a dialled leg is out, or could not be sent.
    pub(in crate::call::core) fn dialed(&mut self, leg: LegId, result: Result<CallRef, DialError>) {
        match result {
            Ok(dialog) => {
                if let Some(callee) = self.connect.as_mut().and_then(|c| c.leg_mut(leg)) {
                    callee.dialog = Some(dialog);
                }
            }
            Err(e) => {
                let last = self
                    .connect
                    .as_mut()
                    .and_then(|c| c.leg_mut(leg))
                    .and_then(|l| l.refused);
                let status = match e {
                    DialError::NoRoute(_) => 404,
                    DialError::Refused(_) => 403,
                    DialError::Unsupported(_) => 488,
                    DialError::Sip(_) | DialError::Limit(_) => 503,
                    // The last carrier's own answer says most.
                    DialError::Exhausted(_) => last.unwrap_or(503),
                };
                self.callee_failed(leg, &e.to_string(), status);
            }
        }
    }

    /// A dialled leg failed before its INVITE went out: its row says why, an
    /// `activeflow_action_failed` names the cause, and the connect goes on with
    /// the others.
    pub(super) fn callee_failed(&mut self, leg: LegId, why: &str, status: u16) {
        self.action_failed(&format!("connect: {why}"));
        if let Some(callee) = self.connect.as_mut().and_then(|c| c.leg_mut(leg)) {
            callee.refused = Some(status);
            callee.end(HangupReason::Failed, HangupBy::Local);
            callee.state = CalleeState::Ended;
            self.close_callee(leg);
        }
        self.connect_settle();
    }
}
