//! Matching messages to transactions (RFC 3261 sections 17.1.3 and 17.2.3).

use crate::msg::{Message, Method, ParseError};

/// The RFC 3261 branch prefix ("magic cookie").
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// What identifies a transaction: the top Via's branch (or, for RFC 2543 peers, a
/// key built from the dialog identifiers), the sent-by of the top Via for server
/// transactions, and the method with ACK counted as INVITE (an ACK for a non-2xx
/// belongs to the INVITE's transaction). Kept as one string, one allocation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TxKey(Box<str>);

impl TxKey {
    fn new(branch: &str, sent_by: &str, method: &str) -> Self {
        Self(format!("{branch}\n{sent_by}\n{method}").into_boxed_str())
    }

    /// The same transaction key for another method (a CANCEL's INVITE).
    pub fn with_method(&self, method: &str) -> Self {
        let prefix = self.0.rsplit_once('\n').map_or("", |(p, _)| p);
        Self(format!("{prefix}\n{method}").into_boxed_str())
    }
}

fn method_key(method: &str) -> String {
    if method == "ACK" {
        "INVITE".to_owned()
    } else {
        method.to_owned()
    }
}

impl TxKey {
    /// The server transaction a request belongs to (section 17.2.3).
    pub fn for_request(msg: &Message) -> Result<Self, ParseError> {
        let via = msg.via()?;
        let method = msg.method().map(Method::as_str).unwrap_or_default();
        let sent_by = match via.port {
            Some(p) => format!("{}:{p}", via.host),
            None => via.host.to_string(),
        };
        let branch = match via.branch() {
            Some(b) if b.starts_with(MAGIC_COOKIE) => b.to_owned(),
            // RFC 2543 peer: the Request-URI, To tag, From tag, Call-ID and CSeq
            // number identify it (section 17.2.3, second half).
            _ => {
                let cseq = msg.cseq()?;
                format!(
                    "rfc2543|{}|{}|{}|{}|{}",
                    msg.request_uri().unwrap_or_default(),
                    msg.to()?.tag().unwrap_or_default(),
                    msg.from()?.tag().unwrap_or_default(),
                    msg.call_id()?,
                    cseq.seq
                )
            }
        };
        Ok(Self::new(&branch, &sent_by, &method_key(method)))
    }

    /// The client transaction a response belongs to (section 17.1.3).
    pub fn for_response(msg: &Message) -> Result<Self, ParseError> {
        let via = msg.via()?;
        let branch = via
            .branch()
            .ok_or_else(|| ParseError::BadHeader("Via", "no branch".to_owned()))?;
        Ok(Self::new(branch, "", &method_key(msg.cseq()?.method)))
    }
}
