//! `detbal` binary: parse (command line merged with `--config`) → run → exit code.
//!
//! Exit codes (README "Exit codes"): 0 success; 1 error (bad input, a bad setting, whether clap
//! or detbal rejects the value, a bad config file, unusable device, unwritable output); 2 usage
//! error (unknown flag, missing argument); 3 `--fail-on-violation ALPHA` and detailed balance is
//! rejected at ALPHA (outputs written); 4 the fit did not converge (outputs written and say so);
//! 5 `detbal compare` found drift beyond a threshold; 6 `detbal compare` could not measure the
//! drift of a threshold given (and none is exceeded); 7 `--fail-on-violation ALPHA` and the
//! verdict cannot decide (no independent cycle; outputs written).
//!
//! Logs: `tracing` events go to stderr, filtered by `RUST_LOG` (e.g. `RUST_LOG=detbal=info`);
//! without it only warnings and errors are shown, and detbal emits none of those through
//! tracing, so a default run prints nothing extra.

use detbal::backend::DeviceChoice;
use detbal::bench::BenchDevice;
use detbal::cli::Command;
use std::path::PathBuf;
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
    let may_open_gpu = match &cli.command {
        Command::Analyze(args) => args.device != DeviceChoice::Cpu,
        Command::Bench(args) => args.device != BenchDevice::Cpu,
        Command::Simulate(_) | Command::Compare(_) | Command::Completions(_) => false,
    };
    // Still single-threaded here: rayon's pool and wgpu start inside `run`.
    let _runtime_dir = may_open_gpu.then(PrivateRuntimeDir::when_unset).flatten();
    match detbal::run::run(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(1)
        }
    }
}

/// An empty private directory (mode 0700) that `XDG_RUNTIME_DIR` names while detbal runs, set
/// only when the variable is unset (or not an absolute path, which libwayland rejects too).
///
/// Why: enumerating Vulkan adapters loads Mesa's device-select layer and drivers, which ask
/// libwayland for a display; without `XDG_RUNTIME_DIR` libwayland prints `error:
/// XDG_RUNTIME_DIR is invalid or not set in the environment.` on stderr (twice, even under
/// `--quiet`) although nothing failed, and nightly log scanners flag it. Pointed at an empty
/// directory, libwayland finds no display socket and says nothing. Nothing else in detbal reads
/// the variable and detbal starts no other process, so the change is not observable outside
/// this process, and the directory is removed when `main` returns (an `exit` that skips it
/// leaves an empty directory under the temporary directory).
///
/// `set_var` is sound only while no other thread reads the environment: it is called in `main`
/// after parsing the arguments and before anything spawns a thread (rayon's pool, wgpu,
/// indicatif), on Unix only (elsewhere there is no libwayland and the variable is not set).
struct PrivateRuntimeDir(PathBuf);

impl PrivateRuntimeDir {
    #[cfg(all(unix, not(target_os = "macos")))]
    fn when_unset() -> Option<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let usable =
            std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| PathBuf::from(d).is_absolute());
        if usable {
            return None;
        }
        let base = std::env::temp_dir();
        let dir = (0..100u32)
            .map(|i| base.join(format!("detbal-runtime-{}-{i}", std::process::id())))
            .find(|dir| std::fs::DirBuilder::new().mode(0o700).create(dir).is_ok())?;
        // SAFETY: single-threaded at this point (see the type's documentation).
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
        Some(PrivateRuntimeDir(dir))
    }

    #[cfg(not(all(unix, not(target_os = "macos"))))]
    fn when_unset() -> Option<Self> {
        None
    }
}

impl Drop for PrivateRuntimeDir {
    fn drop(&mut self) {
        // Empty unless something created a file in it; then it stays.
        let _ = std::fs::remove_dir(&self.0);
    }
}
