//! The `voipbin` server binary: parses the command line and runs the command.

use std::process::ExitCode;

use clap::Parser;

mod admission;
mod call;
mod cli;
mod config;
mod flow_cmd;
mod routing;
mod serve;
mod sip;

use cli::{Cli, Command, FlowCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            init_logging();
            let result = config::Config::resolve(*args).and_then(|config| {
                tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()
                    .map_err(anyhow::Error::from)?
                    .block_on(serve::run(config))
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("voipbin: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Flow(command) => {
            let result = match &command {
                FlowCommand::Validate { file } => flow_cmd::validate(file),
                FlowCommand::Simulate(args) => flow_cmd::simulate(args),
            };
            result.unwrap_or_else(|e| {
                eprintln!("voipbin: {e:#}");
                ExitCode::from(2)
            })
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
fn init_logging() {
    // One TLS crypto provider for the whole process (reqwest and, later, SIP TLS).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}
