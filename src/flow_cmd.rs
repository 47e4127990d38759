//! `voipbin flow validate`: checks a flow file without a server.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use serde_json::Value;

/// Reads a flow file: a flow object with `actions`, or a bare array of actions.
pub fn read_actions(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    match value {
        Value::Array(_) => Ok(value),
        Value::Object(mut obj) => obj.remove("actions").ok_or_else(|| {
            anyhow!(
                "{}: a flow object needs an \"actions\" array",
                path.display()
            )
        }),
        _ => Err(anyhow!(
            "{}: expected a flow object or an array of actions",
            path.display()
        )),
    }
}

/// Prints one line per finding; exit 1 on any error.
pub fn validate(path: &Path) -> anyhow::Result<ExitCode> {
    let actions = read_actions(path)?;
    let findings = match flow_runtime::parse_flow(&actions) {
        Ok(parsed) => parsed.warnings,
        Err(findings) => findings,
    };
    for finding in &findings {
        println!("{finding}");
    }
    let errors = findings
        .iter()
        .filter(|f| f.severity == flow_runtime::Severity::Error)
        .count();
    Ok(if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
