//! Webhook signatures.
//!
//! - `X-VoIPBIN-Signature: sha256=<hex HMAC-SHA256(secret, body)>`, as the original
//!   sends it;
//! - `X-VoIPBIN-Timestamp: <unix seconds>`;
//! - `X-VoIPBIN-Signature-Timestamped: sha256=<hex HMAC-SHA256(secret, "<ts>.<body>")>`,
//!   so a receiver can refuse replays (beyond VoIPBIN).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The body signature header.
pub const SIGNATURE: &str = "X-VoIPBIN-Signature";
/// The send time header.
pub const TIMESTAMP: &str = "X-VoIPBIN-Timestamp";
/// The signature over `"<timestamp>.<body>"`.
pub const SIGNATURE_TIMESTAMPED: &str = "X-VoIPBIN-Signature-Timestamped";

/// `sha256=<hex HMAC-SHA256(secret, message)>`.
pub fn sign(secret: &str, message: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC-SHA256 takes a key of any length");
    mac.update(message);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The three headers for a delivery of `body` at `unix_seconds`.
pub fn headers(secret: &str, body: &str, unix_seconds: i64) -> [(&'static str, String); 3] {
    let ts = unix_seconds.to_string();
    let stamped = format!("{ts}.{body}");
    [
        (TIMESTAMP, ts),
        (SIGNATURE, sign(secret, body.as_bytes())),
        (SIGNATURE_TIMESTAMPED, sign(secret, stamped.as_bytes())),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2.
    #[test]
    fn matches_rfc4231_vector() {
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
