//! The address object VoIPBIN uses for sources and destinations
//! (`bin-common-handler/models/address`).

use serde::{Deserialize, Serialize};

/// A source or destination: a phone number, a SIP URI, an agent, a conference, ...
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// `tel`, `sip`, `agent`, `conference`, `extension`, `email`, `line`, ... or "".
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The endpoint: a number for `tel`, a URI for `sip`, an id for `agent`, ...
    #[serde(default)]
    pub target: String,
    /// A display name for the target.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target_name: String,
    /// An optional label.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Optional notes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}
