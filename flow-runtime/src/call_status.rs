//! A call's status as VoIPBIN names it (`voipbin.call.status`, the call row's
//! `status`): `dialing -> ringing -> progressing -> terminating -> hangup`, with
//! `canceling` for a call given up before its answer.

use serde::{Deserialize, Serialize};

/// Where a call is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallStatus {
    /// An outgoing call whose INVITE is on its way.
    Dialing,
    /// Ringing: not answered yet.
    Ringing,
    /// Answered: media flows.
    Progressing,
    /// Our BYE is on its way.
    Terminating,
    /// Given up before the answer (CANCEL).
    Canceling,
    /// Over.
    Hangup,
}

impl CallStatus {
    /// The name in rows, events and `voipbin.call.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Dialing => "dialing",
            CallStatus::Ringing => "ringing",
            CallStatus::Progressing => "progressing",
            CallStatus::Terminating => "terminating",
            CallStatus::Canceling => "canceling",
            CallStatus::Hangup => "hangup",
        }
    }
}

impl std::fmt::Display for CallStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_serde() {
        for s in [
            CallStatus::Dialing,
            CallStatus::Ringing,
            CallStatus::Progressing,
            CallStatus::Terminating,
            CallStatus::Canceling,
            CallStatus::Hangup,
        ] {
            assert_eq!(
                serde_json::to_value(s).ok(),
                Some(serde_json::Value::String(s.as_str().into()))
            );
        }
    }
}
