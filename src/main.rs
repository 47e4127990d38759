//! The `voipbin` server binary: parses the command line and runs the command.

use std::process::ExitCode;

use clap::Parser;

use voipbin::cli::{Cli, Command, FlowCommand, LogFormat};

/// mimalloc instead of glibc's malloc: the call-load profile spent about a fifth of
/// its samples in glibc's malloc and free (`benches/call-load.sh`, the issue note
/// has both profiles).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use voipbin::{config, flow_cmd, serve};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            init_logging(args.log_format.unwrap_or_default());
            let result = config::Config::resolve(*args).and_then(|config| {
                tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .on_thread_start(voipbin::overload::yield_to_signalling)
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

/// Logs to stderr, filtered by `RUST_LOG` (default `info`): lines for people, or
/// one JSON object per line (with the call's span fields) for log shippers.
fn init_logging(format: LogFormat) {
    // One TLS crypto provider for the whole process (reqwest and, later, SIP TLS).
    // It fails only when one is installed already, which is as good.
    if rustls::crypto::ring::default_provider()
        .install_default()
        .is_err()
    {
        eprintln!("voipbin: a TLS crypto provider was installed already");
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}
