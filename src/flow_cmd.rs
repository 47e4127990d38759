//! `voipbin flow validate` and `voipbin flow simulate`: flow files without a server.

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

/// Runs a flow against a scripted call and prints the trace; exit 1 when the flow
/// does not load.
pub fn simulate(args: &crate::cli::SimulateArgs) -> anyhow::Result<ExitCode> {
    use flow_runtime::interpreter::ReferenceType;
    use flow_runtime::simulate::{Options, Script, render_json, render_text, run};

    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let flow: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON", args.file.display()))?;
    let script = match &args.events {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Script::parse(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?
        }
        None => Script::default(),
    };
    let reference_type: ReferenceType =
        serde_json::from_value(Value::String(args.reference_type.clone())).map_err(|_| {
            anyhow!("--reference-type must be call, api, message, campaign or conversation")
        })?;
    let options = Options {
        media_ms: args.media_ms,
        reference_type,
        ..Options::default()
    };
    match run(&flow, &script, &options) {
        Ok(trace) => {
            print!(
                "{}",
                if args.json {
                    render_json(&trace)
                } else {
                    render_text(&trace)
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(findings) => {
            eprintln!(
                "{}: the flow does not load:\n{findings}",
                args.file.display()
            );
            Ok(ExitCode::from(1))
        }
    }
}
