//! Dialogs (RFC 3261 section 12): the state a call's two ends share, built from the
//! INVITE and its response, and the rules for requests inside it: CSeq order, the
//! route set, the remote target and its refresh.

use crate::msg::{HeaderName, Message, MessageBuilder, Method, NameAddr, Uri};

pub mod glare;
pub mod info;
pub mod prack;
pub mod reason;
pub mod session_timer;

/// Which end of the dialog we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We sent the INVITE.
    Uac,
    /// We received it.
    Uas,
}

/// A dialog's state (section 12.1): early after a provisional response with a To tag,
/// confirmed after a 2xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Created by a 1xx with a To tag.
    Early,
    /// Created or confirmed by a 2xx.
    Confirmed,
    /// Ended by BYE (or a failure).
    Terminated,
}

/// What identifies a dialog (section 12): Call-ID, local tag, remote tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// The Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
}

impl DialogId {
    /// The dialog a request received belongs to: our tag is in its To, the peer's in
    /// its From (section 12.2.2).
    pub fn of_request(req: &Message) -> Option<Self> {
        Some(Self {
            call_id: req.call_id().ok()?.to_owned(),
            local_tag: req.to().ok()?.tag()?.to_owned(),
            remote_tag: req.from().ok()?.tag()?.to_owned(),
        })
    }
}

/// Why a request does not fit its dialog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialogError {
    /// The message lacks what a dialog is built from.
    #[error("cannot build a dialog: {0}")]
    Malformed(&'static str),
    /// A CSeq lower than one already seen (section 12.2.2: answered with 500).
    #[error("CSeq {got} is not above {last}")]
    OutOfOrder {
        /// The last CSeq seen.
        last: u32,
        /// This one.
        got: u32,
    },
}

/// One dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// Its identifier.
    pub id: DialogId,
    /// Which end we are.
    pub role: Role,
    /// Early, confirmed or terminated.
    pub state: DialogState,
    /// Our From (UAC) or To (UAS) value, without the tag parameter being changed.
    pub local_uri: String,
    /// The peer's.
    pub remote_uri: String,
    /// Our next CSeq is this plus one.
    pub local_seq: u32,
    /// The last CSeq the peer used, once it sent a request in the dialog.
    pub remote_seq: Option<u32>,
    /// Where in-dialog requests go: the peer's Contact URI.
    pub remote_target: String,
    /// The Record-Route set, in the order requests traverse it.
    pub route_set: Vec<String>,
}

/// The URI inside a Contact or Record-Route element.
fn uri_of(element: &str) -> Option<String> {
    NameAddr::parse(element).ok().map(|a| a.uri.to_owned())
}

/// The URI of the message's first Contact: the peer's target (section 12.1).
fn contact_of(msg: &Message) -> Result<String, DialogError> {
    msg.list(HeaderName::Contact)
        .next()
        .and_then(uri_of)
        .ok_or(DialogError::Malformed("Contact"))
}

fn call_id_of(msg: &Message) -> Result<String, DialogError> {
    Ok(msg
        .call_id()
        .map_err(|_| DialogError::Malformed("Call-ID"))?
        .to_owned())
}

fn cseq_of(msg: &Message) -> Result<u32, DialogError> {
    Ok(msg.cseq().map_err(|_| DialogError::Malformed("CSeq"))?.seq)
}

impl Dialog {
    /// The UAS side of a dialog, from the INVITE and our To tag (section 12.1.1):
    /// the route set is the Record-Route in order; the remote target is the Contact.
    pub fn uas(invite: &Message, local_tag: &str, state: DialogState) -> Result<Self, DialogError> {
        let from = invite.from().map_err(|_| DialogError::Malformed("From"))?;
        let to = invite.to().map_err(|_| DialogError::Malformed("To"))?;
        let remote_tag = from.tag().ok_or(DialogError::Malformed("From tag"))?;
        let contact = contact_of(invite)?;
        Ok(Self {
            id: DialogId {
                call_id: call_id_of(invite)?,
                local_tag: local_tag.to_owned(),
                remote_tag: remote_tag.to_owned(),
            },
            role: Role::Uas,
            state,
            local_uri: to.uri.to_owned(),
            remote_uri: from.uri.to_owned(),
            local_seq: 0,
            remote_seq: Some(cseq_of(invite)?),
            remote_target: contact,
            route_set: invite
                .list(HeaderName::RecordRoute)
                .map(str::to_owned)
                .collect(),
        })
    }

    /// The UAC side of a dialog, from the INVITE we sent and a response with a To tag
    /// (section 12.1.2): the route set is the response's Record-Route reversed.
    pub fn uac(invite: &Message, response: &Message) -> Result<Self, DialogError> {
        let from = invite.from().map_err(|_| DialogError::Malformed("From"))?;
        let to = response.to().map_err(|_| DialogError::Malformed("To"))?;
        let remote_tag = to.tag().ok_or(DialogError::Malformed("To tag"))?;
        let local_tag = from.tag().ok_or(DialogError::Malformed("From tag"))?;
        let contact = contact_of(response)?;
        let mut route_set: Vec<String> = response
            .list(HeaderName::RecordRoute)
            .map(str::to_owned)
            .collect();
        route_set.reverse();
        let state = if response.status().is_some_and(|s| (200..300).contains(&s)) {
            DialogState::Confirmed
        } else {
            DialogState::Early
        };
        Ok(Self {
            id: DialogId {
                call_id: call_id_of(invite)?,
                local_tag: local_tag.to_owned(),
                remote_tag: remote_tag.to_owned(),
            },
            role: Role::Uac,
            state,
            local_uri: from.uri.to_owned(),
            remote_uri: to.uri.to_owned(),
            local_seq: cseq_of(invite)?,
            remote_seq: None,
            remote_target: contact,
            route_set,
        })
    }

    /// Checks a request the peer sent in this dialog and updates the dialog
    /// (section 12.2.2): its CSeq must rise (an ACK or CANCEL repeats the INVITE's),
    /// and a target refresh (re-INVITE, UPDATE) replaces the remote target.
    pub fn on_request(&mut self, req: &Message) -> Result<(), DialogError> {
        let method = req
            .method()
            .cloned()
            .ok_or(DialogError::Malformed("method"))?;
        let seq = cseq_of(req)?;
        let repeats = matches!(method, Method::Ack | Method::Cancel);
        if let Some(last) = self.remote_seq
            && (seq < last || (seq == last && !repeats))
        {
            return Err(DialogError::OutOfOrder { last, got: seq });
        }
        self.remote_seq = Some(seq);
        if matches!(method, Method::Invite | Method::Update)
            && let Ok(target) = contact_of(req)
        {
            self.remote_target = target;
        }
        if method == Method::Bye {
            self.state = DialogState::Terminated;
        }
        Ok(())
    }

    /// A 2xx to a re-INVITE or UPDATE we sent refreshes the remote target too.
    pub fn on_refresh_response(&mut self, response: &Message) {
        if let Ok(target) = contact_of(response) {
            self.remote_target = target;
        }
    }

    /// Starts a request inside the dialog (section 12.2.1.1): the Request-URI and
    /// Route headers from the remote target and route set (loose routing when the
    /// first route has `lr`, strict routing otherwise), From/To with the tags,
    /// Call-ID, the next CSeq (the INVITE's for an ACK), and a Via with `branch`.
    /// The caller adds Contact, body and anything else.
    pub fn request(
        &mut self,
        method: &str,
        via_sent_by: &str,
        transport: &str,
        branch: &str,
    ) -> MessageBuilder {
        let seq = if method == "ACK" || method == "CANCEL" {
            self.local_seq
        } else {
            self.local_seq += 1;
            self.local_seq
        };
        self.request_with_seq(method, seq, via_sent_by, transport, branch)
    }

    /// As [`Dialog::request`] with a given CSeq number, leaving the dialog's own
    /// count alone: the ACK for a 2xx carries the INVITE's number even when PRACKs
    /// came between (section 13.2.2.4).
    pub fn request_with_seq(
        &self,
        method: &str,
        seq: u32,
        via_sent_by: &str,
        transport: &str,
        branch: &str,
    ) -> MessageBuilder {
        let loose = self
            .route_set
            .first()
            .and_then(|r| NameAddr::parse(r).ok())
            .and_then(|a| Uri::parse(a.uri).ok())
            .is_none_or(|u| u.params.has("lr"));
        let (ruri, routes): (String, Vec<String>) = if loose {
            (self.remote_target.clone(), self.route_set.clone())
        } else {
            // Strict routing (RFC 2543 peers): the first route becomes the
            // Request-URI and the remote target goes last.
            let first = uri_of(&self.route_set[0]).unwrap_or_else(|| self.remote_target.clone());
            let mut rest: Vec<String> = self.route_set[1..].to_vec();
            rest.push(format!("<{}>", self.remote_target));
            (first, rest)
        };
        let mut b = MessageBuilder::request(method, &ruri)
            .header(
                "Via",
                format_args!("SIP/2.0/{transport} {via_sent_by};branch={branch};rport"),
            )
            .header("Max-Forwards", 70)
            .header(
                "From",
                format_args!("<{}>;tag={}", self.local_uri, self.id.local_tag),
            )
            .header(
                "To",
                format_args!("<{}>;tag={}", self.remote_uri, self.id.remote_tag),
            )
            .header("Call-ID", &self.id.call_id)
            .header("CSeq", format_args!("{seq} {method}"));
        for r in routes {
            b = b.header("Route", r);
        }
        b
    }
}

#[cfg(test)]
mod tests;
