//! Why a call ended (`hangup_reason`, `hangup_by`), and the one place a reason
//! becomes what the wire says: the final status refusing an unanswered INVITE, or
//! the Q.850 cause in a BYE's Reason header (RFC 3326).

use sip_stack::dialog::reason::Reason;

/// Why a call ended, as VoIPBIN's `hangup_reason` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangupReason {
    /// Someone hung up.
    Normal,
    /// Something failed: no media, no media port, a dialog that broke.
    Failed,
    /// The callee was busy.
    Busy,
    /// The caller gave up before the answer (CANCEL).
    Cancel,
    /// A timer ran out (no answer to our request).
    Timeout,
    /// No one answered.
    NoAnswer,
    /// The outgoing call could not be placed.
    Dialout,
    /// Answering-machine detection ended the call.
    Amd,
}

impl HangupReason {
    /// The reason a flow's `hangup` names; an unknown or empty one is `normal`
    /// (seed 003: the reason is optional).
    pub fn from_flow(text: &str) -> Self {
        match text {
            "failed" => Self::Failed,
            "busy" => Self::Busy,
            "cancel" => Self::Cancel,
            "timeout" => Self::Timeout,
            "noanswer" => Self::NoAnswer,
            "dialout" => Self::Dialout,
            "amd" => Self::Amd,
            _ => Self::Normal,
        }
    }

    /// The name in rows and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Failed => "failed",
            Self::Busy => "busy",
            Self::Cancel => "cancel",
            Self::Timeout => "timeout",
            Self::NoAnswer => "noanswer",
            Self::Dialout => "dialout",
            Self::Amd => "amd",
        }
    }

    /// The final status refusing an INVITE not answered yet (RFC 3261 section 21):
    /// busy 486, timeout 408, failed 503 (a carrier then tries its next route),
    /// anything else 480.
    pub fn sip_status(self) -> u16 {
        match self {
            Self::Busy => 486,
            Self::Timeout => 408,
            Self::Failed => 503,
            _ => 480,
        }
    }

    /// The Q.850 cause and its text for a BYE's Reason header (RFC 3326 section 2;
    /// ITU-T Q.850 table 1).
    pub fn q850(self) -> (u16, &'static str) {
        match self {
            Self::Busy => (17, "User busy"),
            Self::NoAnswer => (19, "No answer from user"),
            Self::Failed => (41, "Temporary failure"),
            _ => (16, "Normal call clearing"),
        }
    }

    /// The Reason header a BYE for this reason carries.
    pub fn bye_reason(self) -> Reason {
        let (cause, text) = self.q850();
        Reason::q850(cause, text)
    }
}

/// Which side ended a call (`hangup_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangupBy {
    /// We did (the flow, the API, a timer).
    Local,
    /// The peer did (BYE, CANCEL).
    Remote,
}

impl HangupBy {
    /// The name in rows and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Remote => "remote",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [HangupReason; 8] = [
        HangupReason::Normal,
        HangupReason::Failed,
        HangupReason::Busy,
        HangupReason::Cancel,
        HangupReason::Timeout,
        HangupReason::NoAnswer,
        HangupReason::Dialout,
        HangupReason::Amd,
    ];

    #[test]
    fn every_reason_reads_back_from_its_name() {
        for r in ALL {
            assert_eq!(HangupReason::from_flow(r.as_str()), r);
        }
        assert_eq!(HangupReason::from_flow(""), HangupReason::Normal);
        assert_eq!(HangupReason::from_flow("bogus"), HangupReason::Normal);
    }

    #[test]
    fn each_reason_has_its_status_and_cause() {
        let table: Vec<(&str, u16, u16)> = ALL
            .iter()
            .map(|r| (r.as_str(), r.sip_status(), r.q850().0))
            .collect();
        assert_eq!(
            table,
            [
                ("normal", 480, 16),
                ("failed", 503, 41),
                ("busy", 486, 17),
                ("cancel", 480, 16),
                ("timeout", 408, 16),
                ("noanswer", 480, 19),
                ("dialout", 480, 16),
                ("amd", 480, 16),
            ]
        );
    }
}
