//! Findings: what flow validation reports, each naming the action's index, id and field.

use std::fmt;

use serde::Serialize;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The flow cannot be stored or run.
    Error,
    /// The flow runs, but probably not as meant.
    Warning,
}

/// One problem found in a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// The action's position in the list (0-based).
    pub index: usize,
    /// The action's id, when it has one.
    pub action_id: Option<String>,
    /// The field at fault, for example `type` or `option.target_id`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl Finding {
    /// An error at action `index`.
    pub fn error(index: usize, action_id: Option<&str>, field: &str, message: &str) -> Self {
        Self::new(Severity::Error, index, action_id, field, message)
    }

    /// A warning at action `index`.
    pub fn warning(index: usize, action_id: Option<&str>, field: &str, message: &str) -> Self {
        Self::new(Severity::Warning, index, action_id, field, message)
    }

    fn new(
        severity: Severity,
        index: usize,
        action_id: Option<&str>,
        field: &str,
        message: &str,
    ) -> Self {
        Self {
            severity,
            index,
            action_id: action_id.map(str::to_owned),
            field: field.to_owned(),
            message: message.to_owned(),
        }
    }
}

impl fmt::Display for Finding {
    /// `error|warning <index> <action id> <field>: <message>`, the line
    /// `voipbin flow validate` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let id = self.action_id.as_deref().unwrap_or("-");
        write!(
            f,
            "{severity} {} {id} {}: {}",
            self.index, self.field, self.message
        )
    }
}
