//! DTMF carried in SIP INFO (RFC 6086 packages as deployed):
//! `application/dtmf-relay` (`Signal=5` and `Duration=160` lines) and
//! `application/dtmf` (the key alone).

/// A key press read from an INFO body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InfoDigit {
    /// 0-9, *, #, A-D.
    pub digit: char,
    /// How long it was held, when the body says.
    pub duration_ms: Option<u32>,
}

fn key(text: &str) -> Option<char> {
    let t = text.trim();
    let mut chars = t.chars();
    let c = chars.next()?.to_ascii_uppercase();
    if chars.next().is_some() {
        // RFC 4733 event numbers 10 and 11 are * and #.
        return match t {
            "10" => Some('*'),
            "11" => Some('#'),
            _ => None,
        };
    }
    (c.is_ascii_digit() || "*#ABCD".contains(c)).then_some(c)
}

/// Reads the digit of an INFO body of `content_type`; `None` when the body is not DTMF
/// or names no valid key.
pub fn parse(content_type: &str, body: &str) -> Option<InfoDigit> {
    let ct = content_type.split(';').next().unwrap_or("").trim();
    if ct.eq_ignore_ascii_case("application/dtmf") {
        return key(body).map(|digit| InfoDigit {
            digit,
            duration_ms: None,
        });
    }
    if !ct.eq_ignore_ascii_case("application/dtmf-relay") {
        return None;
    }
    let mut digit = None;
    let mut duration_ms = None;
    for line in body.lines() {
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "signal" => digit = key(value),
            "duration" => duration_ms = value.trim().parse().ok(),
            _ => {}
        }
    }
    digit.map(|digit| InfoDigit { digit, duration_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtmf_relay_and_plain_bodies() {
        assert_eq!(
            parse("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n"),
            Some(InfoDigit {
                digit: '5',
                duration_ms: Some(160)
            })
        );
        assert_eq!(
            parse("Application/DTMF-Relay", "signal= #\r\n").map(|d| d.digit),
            Some('#')
        );
        assert_eq!(
            parse("application/dtmf-relay", "Signal=11\r\n").map(|d| d.digit),
            Some('#')
        );
        assert_eq!(parse("application/dtmf", "7").map(|d| d.digit), Some('7'));
        assert_eq!(parse("application/dtmf", "x"), None);
        assert_eq!(parse("application/sdp", "Signal=1"), None);
        assert_eq!(parse("application/dtmf-relay", "Duration=100"), None);
    }
}
