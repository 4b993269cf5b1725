//! `detbal` binary: parse → run → exit code. Exit codes: 0 success; 1 error (bad input, bad
//! setting, unusable device, unwritable output); 2 usage error; 4 the fit did not converge
//! (outputs are written and say so).

use clap::Parser;
use detbal::cli::Cli;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match detbal::run::run(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(1)
        }
    }
}
