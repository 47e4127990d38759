//! The Reason header (RFC 3326): why a call ended, as a Q.850 cause or a SIP status,
//! read from a BYE or CANCEL and written into ours.

use crate::msg::grammar::{split_list, unquote};
use crate::msg::params::Params;

/// One Reason element: `Q.850;cause=16;text="Normal call clearing"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// `Q.850` or `SIP`.
    pub protocol: String,
    /// The cause or status code.
    pub cause: u16,
    /// The text, if any.
    pub text: Option<String>,
}

impl Reason {
    /// A Q.850 cause.
    pub fn q850(cause: u16, text: &str) -> Self {
        Self {
            protocol: "Q.850".into(),
            cause,
            text: Some(text.to_owned()).filter(|t| !t.is_empty()),
        }
    }

    /// A SIP status as the reason (RFC 3326 section 2: `SIP;cause=503;text="..."`).
    pub fn sip(status: u16, text: impl Into<String>) -> Self {
        Self {
            protocol: "SIP".into(),
            cause: status,
            text: Some(text.into()),
        }
    }

    /// Reads every element of a Reason header value.
    pub fn parse_all(value: &str) -> Vec<Self> {
        split_list(value)
            .filter_map(|element| {
                let (protocol, params) = element.split_once(';')?;
                let params = Params(params);
                let cause = params.value("cause")?.parse().ok()?;
                let text = params.value("text").map(|t| unquote(t).into_owned());
                Some(Self {
                    protocol: protocol.trim().to_owned(),
                    cause,
                    text,
                })
            })
            .collect()
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{};cause={}", self.protocol, self.cause)?;
        if let Some(t) = &self.text {
            let escaped = t.replace('\\', "\\\\").replace('"', "\\\"");
            write!(f, ";text=\"{escaped}\"")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_writes() {
        let all = Reason::parse_all(
            r#"SIP ;cause=200 ;text="Call completed elsewhere", Q.850;cause=16;text="Normal call clearing""#,
        );
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].protocol.as_str(), all[0].cause), ("SIP", 200));
        assert_eq!(all[1], Reason::q850(16, "Normal call clearing"));
        assert_eq!(
            all[1].to_string(),
            r#"Q.850;cause=16;text="Normal call clearing""#
        );
        assert!(Reason::parse_all("garbage").is_empty());
    }
}
