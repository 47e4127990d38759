//! Session timers (RFC 4028): the interval and refresher agreed in an INVITE's 2xx,
//! the refresh the refresher sends at half the interval, and the end of a session
//! nobody refreshed.

use std::time::{Duration, Instant};

use crate::msg::params::Params;
use crate::msg::{HeaderName, Message};

/// The smallest interval RFC 4028 allows (section 4).
pub const MIN_SE: u32 = 90;

/// Who refreshes the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    /// The side that sent the INVITE.
    Uac,
    /// The side that answered it.
    Uas,
}

/// `Session-Expires: delta[;refresher=uac|uas]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionExpires {
    /// The interval in seconds.
    pub delta: u32,
    /// The refresher, when named.
    pub refresher: Option<Refresher>,
}

impl SessionExpires {
    /// Reads the header of `msg` (long or compact `x`).
    pub fn of(msg: &Message) -> Option<Self> {
        let value = msg.header(HeaderName::SessionExpires)?;
        let (delta, params) = value.split_once(';').unwrap_or((value, ""));
        let refresher = match Params(params).value("refresher") {
            Some(r) if r.eq_ignore_ascii_case("uac") => Some(Refresher::Uac),
            Some(r) if r.eq_ignore_ascii_case("uas") => Some(Refresher::Uas),
            _ => None,
        };
        Some(Self {
            delta: delta.trim().parse().ok()?,
            refresher,
        })
    }
}

impl std::fmt::Display for SessionExpires {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.delta)?;
        match self.refresher {
            Some(Refresher::Uac) => f.write_str(";refresher=uac"),
            Some(Refresher::Uas) => f.write_str(";refresher=uas"),
            None => Ok(()),
        }
    }
}

/// What a UAS does with an INVITE's session timer request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UasDecision {
    /// No session timer.
    None,
    /// Put this Session-Expires in the 2xx (and `Require: timer` when the UAC
    /// supports it).
    Use(SessionExpires),
    /// Refuse with 422 and this Min-SE (section 9: the interval is too short).
    TooSmall(u32),
}

/// Decides the session timer for an INVITE at a UAS that wants at least `min_se`
/// seconds (section 9). Without a Session-Expires nothing is asked; when the UAC
/// named no refresher, the UAS refreshes if the UAC does not support timers, else the
/// UAC does.
pub fn uas_decide(invite: &Message, min_se: u32) -> UasDecision {
    let Some(se) = SessionExpires::of(invite) else {
        return UasDecision::None;
    };
    let min_se = min_se.max(MIN_SE);
    if se.delta < min_se {
        return UasDecision::TooSmall(min_se);
    }
    let uac_supports = invite
        .list(HeaderName::Supported)
        .any(|t| t.eq_ignore_ascii_case("timer"));
    let refresher = se.refresher.unwrap_or(if uac_supports {
        Refresher::Uac
    } else {
        Refresher::Uas
    });
    UasDecision::Use(SessionExpires {
        delta: se.delta,
        refresher: Some(refresher),
    })
}

/// What the session timer asks for when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionTimerAction {
    /// We are the refresher: send a re-INVITE or UPDATE now.
    Refresh,
    /// Nobody refreshed in time: end the session (BYE, reason failed).
    Expire,
}

/// A running session timer.
#[derive(Debug, Clone, Copy)]
pub struct SessionTimer {
    interval: Duration,
    we_refresh: bool,
    last_refresh: Instant,
}

impl SessionTimer {
    /// A timer of `interval` seconds started (or refreshed) at `now`; `we_refresh`
    /// when we are the refresher.
    pub fn new(now: Instant, interval_secs: u32, we_refresh: bool) -> Self {
        Self {
            interval: Duration::from_secs(u64::from(interval_secs)),
            we_refresh,
            last_refresh: now,
        }
    }

    /// When the timer fires next: the refresher at half the interval; the other side
    /// at the interval less a third of it, at most 32 s (section 10).
    pub fn poll_timeout(&self) -> Instant {
        if self.we_refresh {
            self.last_refresh + self.interval / 2
        } else {
            self.last_refresh + self.interval - (self.interval / 3).min(Duration::from_secs(32))
        }
    }

    /// Runs the timer at `now`.
    pub fn on_timeout(&mut self, now: Instant) -> Option<SessionTimerAction> {
        if now < self.poll_timeout() {
            return None;
        }
        if self.we_refresh {
            self.last_refresh = now;
            Some(SessionTimerAction::Refresh)
        } else {
            Some(SessionTimerAction::Expire)
        }
    }

    /// The session interval in seconds.
    pub fn interval_secs(&self) -> u32 {
        u32::try_from(self.interval.as_secs()).unwrap_or(u32::MAX)
    }

    /// A refresh went through (a 2xx to a re-INVITE or UPDATE, either way).
    pub fn on_refresh(&mut self, now: Instant) {
        self.last_refresh = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn invite(extra: &str) -> Message {
        let text = format!(
            "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\n\
Call-ID: c\r\nCSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        crate::msg::parse_datagram(Bytes::from(text)).expect("valid")
    }

    #[test]
    fn uas_negotiation() {
        assert_eq!(uas_decide(&invite(""), 90), UasDecision::None);
        assert_eq!(
            uas_decide(&invite("Session-Expires: 60\r\n"), 90),
            UasDecision::TooSmall(90)
        );
        assert_eq!(
            uas_decide(&invite("Supported: timer\r\nx: 1800\r\n"), 90),
            UasDecision::Use(SessionExpires {
                delta: 1800,
                refresher: Some(Refresher::Uac)
            })
        );
        assert_eq!(
            uas_decide(&invite("Session-Expires: 1800\r\n"), 90),
            UasDecision::Use(SessionExpires {
                delta: 1800,
                refresher: Some(Refresher::Uas)
            }),
            "a UAC without timer support cannot refresh"
        );
        assert_eq!(
            SessionExpires {
                delta: 1800,
                refresher: Some(Refresher::Uas)
            }
            .to_string(),
            "1800;refresher=uas"
        );
    }

    #[test]
    fn refresher_refreshes_at_half_and_the_other_side_expires() {
        let t0 = Instant::now();
        let mut ours = SessionTimer::new(t0, 1800, true);
        assert_eq!(ours.poll_timeout(), t0 + Duration::from_secs(900));
        assert_eq!(ours.on_timeout(t0 + Duration::from_secs(899)), None);
        assert_eq!(
            ours.on_timeout(t0 + Duration::from_secs(900)),
            Some(SessionTimerAction::Refresh)
        );
        assert_eq!(ours.poll_timeout(), t0 + Duration::from_secs(1800));

        let mut theirs = SessionTimer::new(t0, 1800, false);
        assert_eq!(theirs.poll_timeout(), t0 + Duration::from_secs(1800 - 32));
        theirs.on_refresh(t0 + Duration::from_secs(900));
        assert_eq!(
            theirs.on_timeout(t0 + Duration::from_secs(1768)),
            None,
            "refreshed in time"
        );
        assert_eq!(
            theirs.on_timeout(t0 + Duration::from_secs(900 + 1768)),
            Some(SessionTimerAction::Expire)
        );
        let short = SessionTimer::new(t0, 90, false);
        assert_eq!(
            short.poll_timeout(),
            t0 + Duration::from_secs(60),
            "a third of 90 s"
        );
    }
}
