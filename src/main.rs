//! `detbal` binary: parse (command line merged with `--config`) → run → exit code.
//!
//! Exit codes (README "Exit codes"): 0 success; 1 error (bad input, bad setting or config file,
//! unusable device, unwritable output); 2 usage error (clap); 3 `--fail-on-violation ALPHA` and
//! detailed balance is rejected at ALPHA (outputs written); 4 the fit did not converge (outputs
//! written and say so); 5 `detbal compare` found drift beyond a threshold; 6 `detbal compare`
//! could not measure the drift of a threshold given (and none is exceeded).
//!
//! Logs: `tracing` events go to stderr, filtered by `RUST_LOG` (e.g. `RUST_LOG=detbal=info`);
//! without it only warnings and errors are shown, and detbal emits none of those through
//! tracing, so a default run prints nothing extra.

use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::builder()
                .with_default_directive(tracing::level_filters::LevelFilter::WARN.into())
                .from_env_lossy(),
        )
        .init();
    let cli = match detbal::config::parse_args(std::env::args_os()) {
        Ok(cli) => cli,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(1);
        }
    };
    match detbal::run::run(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(1)
        }
    }
}
