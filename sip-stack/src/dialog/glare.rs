//! Re-INVITE glare (RFC 3261 section 14): while our own re-INVITE is pending, a
//! re-INVITE from the peer gets 491 Request Pending, and a 491 to ours is retried
//! after a random wait whose range depends on who owns the Call-ID.

use std::time::Duration;

/// The wait before retrying a re-INVITE that got 491 (section 14.1): 2.1 to 4 s when
/// we generated the dialog's Call-ID (we sent the first INVITE), else 0 to 2 s, in
/// units of 10 ms. `random` is any random number.
pub fn retry_after_491(we_own_call_id: bool, random: u32) -> Duration {
    let tens_of_ms = if we_own_call_id {
        210 + random % 191
    } else {
        random % 201
    };
    Duration::from_millis(u64::from(tens_of_ms) * 10)
}

/// Whether a re-INVITE from the peer must get 491: we have an INVITE of our own
/// outstanding in the dialog (section 14.2).
pub fn must_refuse(our_invite_pending: bool) -> bool {
    our_invite_pending
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_ranges() {
        for r in [0, 1, 190, 191, 5000, u32::MAX] {
            let owner = retry_after_491(true, r);
            assert!(
                (Duration::from_millis(2100)..=Duration::from_millis(4000)).contains(&owner),
                "{owner:?}"
            );
            let other = retry_after_491(false, r);
            assert!(other <= Duration::from_millis(2000), "{other:?}");
        }
        assert!(must_refuse(true) && !must_refuse(false));
    }
}
