//! How a call ends: the reason kept for its row, the SIP answer or BYE that says
//! it, closing the leg, and the last row (with the leg's statistics) once the
//! leg's `Closed` came or 2 s passed.

use std::time::Duration;

use flow_runtime::CallStatus;
use media_engine::engine::SessionStats;
use sip_stack::dialog::reason::Reason;

use api::call_store::{Verb, Write};
use api::store::calls::RtpStats;

use super::super::reason::{HangupBy, HangupReason};
use super::{CallCore, MediaCommand, Output, Phase, SipCommand};

/// How long a closing leg's statistics are waited for.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

impl CallCore {
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
    pub(super) fn hang_up_for(&mut self, reason: HangupReason) {
        self.end(reason, HangupBy::Local);
        // Answered: a BYE. Not yet (its session may be open for a connect's early
        // media): the final status.
        if self.status == CallStatus::Progressing {
            return self.hangup(reason);
        }
        self.refuse(reason.sip_status(), reason.as_str(), &[]);
    }

    /// Answers the INVITE with a final error status and a Reason saying why; once.
    pub(super) fn refuse(
        &mut self,
        status: u16,
        text: &str,
        headers: &'static [(&'static str, &'static str)],
    ) {
        if !self.up {
            return;
        }
        if self.outgoing.is_some() {
            // Our own INVITE: it is cancelled, with the reason.
            self.up = false;
            self.outputs.push_back(Output::Sip(SipCommand::Hangup {
                reason: Reason::sip(status, text),
            }));
            return;
        }
        self.up = false;
        self.outputs.push_back(Output::Sip(SipCommand::Reject {
            status,
            reason: Reason::sip(status, text),
            headers,
        }));
    }

    /// Ends the call on the SIP side once: a BYE (status terminating until it is
    /// gone), or, before the answer, what the user agent sends for a hangup.
    pub(super) fn hangup(&mut self, why: HangupReason) {
        if !self.up {
            return;
        }
        self.up = false;
        if self.status == CallStatus::Progressing {
            // Our BYE is on its way: terminating until the call is gone.
            self.set_status(CallStatus::Terminating, Verb::Terminating, |_, _| {});
        }
        self.outputs.push_back(Output::Sip(SipCommand::Hangup {
            reason: why.bye_reason(),
        }));
    }

    /// After the activeflow (and any it chains to): the call and the leg end; the
    /// last row waits for the leg's statistics.
    pub(super) fn close(&mut self) {
        if matches!(self.phase, Phase::Closing(_) | Phase::Finished) {
            return;
        }
        self.end(HangupReason::Normal, HangupBy::Local);
        self.hangup(HangupReason::Normal);
        self.connect_caller_gone();
        if !self.chained.is_empty() {
            // seed 003, `call` with `chained`: the calls it placed end with this one.
            let calls = std::mem::take(&mut self.chained);
            self.outputs.push_back(Output::HangupCalls(calls));
        }
        let Some(leg) = self.leg.media else {
            self.caller_closed = true;
            self.phase = Phase::Closing(self.now + CLOSE_WAIT);
            return self.closing_progress();
        };
        if self.recording.is_some() {
            self.outputs
                .push_back(Output::Media(MediaCommand::RecordStop(leg.id)));
        }
        self.outputs
            .push_back(Output::Media(MediaCommand::Close(leg.id)));
        self.phase = Phase::Closing(self.now + CLOSE_WAIT);
    }

    /// The leg's last statistics: they go on the row, and the call is over.
    pub(super) fn leg_closed(&mut self, stats: SessionStats) {
        if stats.packets_refused > 0 {
            tracing::warn!(
                refused = stats.packets_refused,
                "RTP from hosts that are neither the SDP's nor the caller's was dropped"
            );
        }
        self.row.rtp_stats = Some(RtpStats {
            packets_sent: stats.packets_sent,
            packets_received: stats.packets_received,
            packets_lost: stats.lost,
            jitter_ms: stats.jitter_ms,
            rtt_ms: stats.rtt_ms,
        });
        self.packets_refused = stats.packets_refused;
        self.caller_closed = true;
        self.closing_progress();
    }

    /// While closing: the call is over once the caller's session and every dialled
    /// leg have reported their end.
    pub(super) fn closing_progress(&mut self) {
        if matches!(self.phase, Phase::Closing(_))
            && self.caller_closed
            && self.connect.as_ref().is_none_or(|c| c.all_done())
        {
            self.finished();
        }
    }

    /// The last row: hangup, with its time and how it ended.
    pub(super) fn finished(&mut self) {
        if self.phase == Phase::Finished {
            return;
        }
        if self.recording.is_some() {
            // Its file was not confirmed before the leg closed: the row says ended.
            self.recording_ended();
        }
        // Dialled legs whose media did not report in time: their rows go now.
        self.connect_flush();
        self.phase = Phase::Finished;
        let now = self.stamps.now();
        self.status = CallStatus::Hangup;
        self.row.status = CallStatus::Hangup.as_str().into();
        self.row.tm_hangup = Some(now.clone());
        self.row.tm_update = Some(now);
        self.outputs.push_back(Output::LastWrite(Write::call(
            &self.row,
            false,
            &[Verb::Hungup],
        )));
    }

    /// RTP packets from strangers the leg dropped (for the operators' counter).
    pub fn packets_refused(&self) -> u64 {
        self.packets_refused
    }
}
