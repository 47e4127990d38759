//! Matching messages to transactions (RFC 3261 sections 17.1.3 and 17.2.3).

use crate::msg::{Message, Method, ParseError};

/// The RFC 3261 branch prefix ("magic cookie").
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// What identifies a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TxKey {
    /// The top Via's branch (or, for RFC 2543 peers, a key built from the dialog
    /// identifiers).
    pub branch: String,
    /// The sent-by of the top Via, for server transactions.
    pub sent_by: String,
    /// The method, with ACK counted as INVITE (an ACK for a non-2xx belongs to the
    /// INVITE's transaction).
    pub method: String,
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
        Ok(Self {
            branch,
            sent_by,
            method: method_key(method),
        })
    }

    /// The client transaction a response belongs to (section 17.1.3).
    pub fn for_response(msg: &Message) -> Result<Self, ParseError> {
        let via = msg.via()?;
        let branch = via
            .branch()
            .ok_or_else(|| ParseError::BadHeader("Via", "no branch".to_owned()))?;
        Ok(Self {
            branch: branch.to_owned(),
            sent_by: String::new(),
            method: method_key(msg.cseq()?.method),
        })
    }
}
