//! Action ids: any non-empty string, normally a UUID. The nil UUID means "none".

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The nil UUID: in `next_id` or a jump target it means "no target" (seed 003 writes it
/// everywhere); as a current action it is the original's "empty" action.
pub const NIL: &str = "00000000-0000-0000-0000-000000000000";
/// The original's reserved "start" action id (reference section 2.1).
pub const START: &str = "00000000-0000-0000-0000-000000000001";
/// The original's reserved "finish" action id.
pub const FINISH: &str = "00000000-0000-0000-0000-000000000002";

/// A target written in an option, trimmed: empty or the nil UUID means none.
pub fn target_str(raw: &str) -> Option<&str> {
    let raw = raw.trim();
    if raw.is_empty() || raw == NIL {
        None
    } else {
        Some(raw)
    }
}

/// The id of one action in a flow. User-given ids may be any non-empty string
/// (seed 001 uses `human_path`); missing ids get a fresh UUID. Cloning one is cheap
/// (a shared string), so events can carry it per step.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ActionId(Arc<str>);

impl ActionId {
    /// Wraps an id as given.
    pub fn new(id: impl Into<String>) -> Self {
        Self(Arc::from(id.into()))
    }

    /// A fresh random (v4) UUID id.
    pub fn random() -> Self {
        let mut buf = uuid::Uuid::encode_buffer();
        Self(Arc::from(
            &*uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf),
        ))
    }

    /// Reads a target written in an option: empty or the nil UUID means none.
    pub fn target(raw: &str) -> Option<Self> {
        target_str(raw).map(|t| Self(Arc::from(t)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ActionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
