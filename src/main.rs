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
                let mut runtime = tokio::runtime::Builder::new_multi_thread();
                if let Some(n) = runtime_workers() {
                    runtime.worker_threads(n);
                }
                runtime
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

/// How many threads the async runtime gets: one fewer than the machine's cores
/// (at least one), unless `TOKIO_WORKER_THREADS` says otherwise (`None`: tokio reads
/// it). The SIP transport and the media workers run on threads of their own and keep
/// a core's worth busy under load; a runtime thread per core beside them made its
/// idle workers wake and steal for every message a call actor got. On two cores, one
/// runtime thread cut the B2BUA's runtime CPU per call by a quarter
/// (`benches/b2bua-load.sh 500 20`, 2.3 s to 1.7 s over 10 s of `perf stat`) and kept
/// the API's throughput (`benches/api-wrk.sh`, 20,400 and 20,900 requests a second).
fn runtime_workers() -> Option<usize> {
    if std::env::var_os("TOKIO_WORKER_THREADS").is_some() {
        return None;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Some(cores.saturating_sub(1).max(1))
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
