//! How a call ends: the reason kept for its row, the SIP answer or BYE that says it,
//! and the last writes (statistics, the final row and its `call_hungup`).

use std::time::Duration;

use media_engine::engine::MediaEvent;
use sip_stack::dialog::reason::Reason;

use api::store::calls::RtpStats;

use flow_runtime::interpreter::Event;

use flow_runtime::CallStatus;

use super::reason::{HangupBy, HangupReason};
use super::{Actor, now_ms};

impl Actor {
    /// Notes why the call ends (the first reason found wins).
    pub(super) fn end(&mut self, reason: HangupReason, by: HangupBy) {
        if self.row.hangup_reason.is_empty() {
            self.row.hangup_reason = reason.as_str().to_owned();
            self.row.hangup_by = by.as_str().to_owned();
        }
    }

    /// Ends the call for a flow's `hangup` reason: before the answer, the INVITE
    /// gets the status that says it; after it, a BYE with the Q.850 cause
    /// ([`HangupReason::sip_status`], [`HangupReason::q850`]).
    pub(super) async fn hang_up_for(&mut self, reason: HangupReason) {
        self.end(reason, HangupBy::Local);
        if self.leg.is_some() {
            return self.hangup(reason).await;
        }
        self.refuse(reason.sip_status(), reason.as_str(), &[]).await;
    }

    /// The answer failed (no free media port, or the dialog is gone): a call that
    /// cannot carry media ends as failed, and the flow hears the hangup rather than
    /// running on without a caller. Before the answer the INVITE gets 503 with
    /// Retry-After (RFC 3261 section 21.5.4), so a carrier tries its next route, and a
    /// Reason naming the problem (RFC 3326).
    pub(super) async fn answer_failed(&mut self, problem: &str) {
        self.end(HangupReason::Failed, HangupBy::Local);
        if self.leg.is_some() {
            self.hangup(HangupReason::Failed).await;
        } else {
            self.refuse(503, problem, &[("Retry-After", "5")]).await;
        }
        self.flow.handle(Event::Hangup, now_ms());
    }

    /// Answers the INVITE with a final error status and a Reason saying why; once.
    async fn refuse(
        &mut self,
        status: u16,
        text: &str,
        headers: &'static [(&'static str, &'static str)],
    ) {
        if !self.up {
            return;
        }
        self.up = false;
        let why = Reason {
            protocol: "SIP".into(),
            cause: status,
            text: Some(text.to_owned()),
        };
        let call = self.call;
        super::tell_ua(&self.services.ua, "reject", move |ua, now| {
            ua.reject(now, call, status, Some(&why), headers)
        });
    }

    /// Ends the call on the SIP side once: a BYE (status terminating until it is gone),
    /// or, before the answer, what the user agent sends for a hangup.
    pub(super) async fn hangup(&mut self, why: HangupReason) {
        if !self.up {
            return;
        }
        self.up = false;
        if self.status == CallStatus::Progressing {
            // Our BYE is on its way: terminating until the call is gone.
            self.set_status(CallStatus::Terminating, "terminating", |_, _| {})
                .await;
        }
        let reason = Some(why.bye_reason());
        let call = self.call;
        super::tell_ua(&self.services.ua, "hangup", move |ua, now| {
            ua.hangup(now, call, reason.as_ref())
        });
    }

    /// After the activeflow: the call and the media leg end, and the row says how.
    pub(super) async fn finish(mut self) {
        self.end(HangupReason::Normal, HangupBy::Local);
        self.hangup(HangupReason::Normal).await;
        if let Some(leg) = self.leg {
            if self.recording {
                super::media_done("record_stop", self.services.media.record_stop(leg.id));
            }
            super::media_done("close", self.services.media.close(leg.id));
            // The leg's last statistics come with its Closed event.
            let deadline = tokio::time::sleep(Duration::from_secs(2));
            tokio::pin!(deadline);
            while let Some(rx) = self.media_rx.as_mut() {
                tokio::select! {
                    event = rx.recv() => match event {
                        Some(MediaEvent::RecordingFinished { .. }) => self.recording_ended().await,
                        Some(MediaEvent::Closed { stats, .. }) => {
                            if stats.packets_refused > 0 {
                                tracing::warn!(
                                    refused = stats.packets_refused,
                                    "RTP from hosts that are neither the SDP's nor the caller's was dropped"
                                );
                                metrics::counter!("voipbin_rtp_packets_refused_total")
                                    .increment(stats.packets_refused);
                            }
                            self.row.rtp_stats = Some(RtpStats {
                                packets_sent: stats.packets_sent,
                                packets_received: stats.packets_received,
                                packets_lost: stats.lost,
                                jitter_ms: stats.jitter_ms,
                                rtt_ms: stats.rtt_ms,
                            });
                            break;
                        }
                        Some(_) => {}
                        None => break,
                    },
                    () = &mut deadline => break,
                }
            }
        }
        // The last write is waited for: the call is over once all its rows are in.
        let now = self.services.stamps.now();
        self.status = CallStatus::Hangup;
        self.row.status = CallStatus::Hangup.as_str().into();
        self.row.tm_hangup = Some(now.clone());
        self.row.tm_update = Some(now);
        self.services
            .writer
            .write(vec![api::call_store::Write::call(
                &self.row,
                false,
                &["hungup"],
            )])
            .await;
        // For operators: calls ended, by reason and side, and whether answered.
        metrics::counter!(
            "voipbin_calls_total",
            "hangup_reason" => self.row.hangup_reason.clone(),
            "hangup_by" => self.row.hangup_by.clone(),
            "answered" => if self.row.tm_progressing.is_some() { "true" } else { "false" },
        )
        .increment(1);
        self.services
            .registry
            .remove(&[&self.row.id, &self.flow_row.id]);
    }
}
