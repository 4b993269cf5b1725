//! `detbal._detbal`, the extension module behind the `detbal` Python package: `analyze`,
//! `simulate` and `compare` over the same engine as the `detbal` binary.
//!
//! - Options go through the CLI's parser and settings ([`options`]), so they are validated by
//!   the same code and fail with the same messages.
//! - Tables come in and go out through the Arrow C stream interface ([`arrow`]).
//! - The engine runs with the GIL released and Rust panics caught ([`detached`]); a detbal
//!   error is a `DetbalError` (a `ValueError`) with the CLI's message.
//! - Ctrl-C: the analysis asks Python for pending signals between its stages ([`analyze`]) and
//!   stops with Python's `KeyboardInterrupt` after the stage that was running.

mod analysis;
mod arrow;
mod options;

use analysis::{Analysis, Comparison};
use arrow::Source;
use detbal::analyze::Interrupt;
use detbal::backend::DeviceChoice;
use detbal::cli::Command;
use detbal::compare::{Run, Thresholds, compare_runs};
use detbal::error::Error;
use detbal::{pipeline, settings};
use pyo3::exceptions::{PyKeyboardInterrupt, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pyo3::create_exception!(
    detbal,
    DetbalError,
    PyValueError,
    "An error of detbal: bad input, a bad option, an unusable device, an unwritable output. \
     The message is the one the command line prints."
);

/// A detbal error as a `DetbalError`.
fn error(e: Error) -> PyErr {
    DetbalError::new_err(e.to_string())
}

/// Runs `job` with the GIL released; a detbal error becomes a `DetbalError`, and a panic (a bug)
/// one too, instead of reaching Python as one.
fn detached<T: Send>(py: Python<'_>, job: impl FnOnce() -> Result<T, Error> + Send) -> PyResult<T> {
    unwound(py, job)?.map_err(error)
}

/// Runs `job` with the GIL released, a panic caught as a `DetbalError`.
fn unwound<T: Send>(py: Python<'_>, job: impl FnOnce() -> T + Send) -> PyResult<T> {
    py.detach(|| std::panic::catch_unwind(AssertUnwindSafe(job)))
        .map_err(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("no message");
            DetbalError::new_err(format!(
                "internal error: {message} (a bug in detbal; please report it)"
            ))
        })
}

/// Analyses a transition log, as `detbal analyze` does.
///
/// `source` is a path, a list of paths, a directory or a glob pattern (together one dataset), or
/// a table in memory: a pyarrow.Table or RecordBatchReader, a pandas or polars DataFrame, any
/// object with `__arrow_c_stream__` (read without a copy where the producer allows). None takes
/// the `inputs` of the `config` file.
///
/// `options` are the long flags of `detbal analyze` in snake_case (`min_count=10`,
/// `device="cpu"`, `group_by="model"`, `seed=7`, `config="detbal.toml"`), checked by the command
/// line's own parser; a switch takes True or False. `output`, `force`, `json`, `quiet` and
/// `fail_on_violation` concern the terminal and the output directory and are not options here.
///
/// Nothing is printed. The GIL is released while the engine runs; Ctrl-C stops the analysis
/// after the stage that is running (KeyboardInterrupt, with a note naming the stage).
///
/// Raises DetbalError with the command line's message on bad input or a bad option.
#[pyfunction]
#[pyo3(signature = (source=None, **options))]
fn analyze(
    py: Python<'_>,
    source: Option<Bound<'_, PyAny>>,
    options: Option<Bound<'_, PyDict>>,
) -> PyResult<Analysis> {
    let source = Source::of(source.as_ref())?;
    let has_config = options
        .as_ref()
        .is_some_and(|o| o.contains("config").unwrap_or(false));
    if matches!(&source, Source::Paths(p) if p.is_empty()) && !has_config {
        return Err(error(Error::settings("no input given").hint(
            "pass a path, a list of paths, a table or a data frame, or config= a file that names \
             `inputs`",
        )));
    }
    let mut tail = vec!["--".into()];
    tail.extend(source.positionals());
    let cli = options::parse("analyze", options.as_ref(), tail)?;
    let Command::Analyze(args) = cli.command else {
        unreachable!("parsed as analyze")
    };
    let mut settings = settings::analyze_settings(&args)
        .map_err(|e| error(detbal::config::attribute(e, &args)))?;
    if settings.device != DeviceChoice::Cpu {
        quiet_vulkan(py)?;
    }
    let (interrupt, raised) = signal_check();
    settings.interrupt = interrupt;
    let result = unwound(py, || {
        let run = match source {
            Source::Paths(_) => pipeline::analyze(&args.inputs, &settings),
            Source::Stream { reader, name } => pipeline::analyze_stream(reader, &name, &settings),
        };
        run.map(Analysis::new)
    })?;
    match result {
        Ok(analysis) => Ok(analysis),
        Err(e @ Error::Interrupted(_)) => {
            let raised = raised.lock().unwrap_or_else(|p| p.into_inner()).take();
            let raised = raised.unwrap_or_else(|| PyKeyboardInterrupt::new_err(()));
            note(py, &raised, &format!("detbal: {e}"))?;
            Err(raised)
        }
        Err(e) => Err(error(e)),
    }
}

/// An [`Interrupt`] that asks Python for pending signals (Ctrl-C): signals are Python's to
/// handle, on its main thread, with the GIL. The exception the handler raised (a
/// KeyboardInterrupt) is kept for the caller to raise once the engine has stopped.
fn signal_check() -> (Interrupt, Arc<Mutex<Option<PyErr>>>) {
    let raised: Arc<Mutex<Option<PyErr>>> = Arc::default();
    let caught = raised.clone();
    let interrupt = Interrupt::new(move || {
        let Some(e) = Python::attach(|py| py.check_signals().err()) else {
            return false;
        };
        *caught.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        true
    });
    (interrupt, raised)
}

/// Adds `text` to the exception's notes (shown under its traceback from Python 3.11 on).
fn note(py: Python<'_>, e: &PyErr, text: &str) -> PyResult<()> {
    let value = e.value(py);
    if value.hasattr("add_note")? {
        value.call_method1("add_note", (text,))?;
    }
    Ok(())
}

/// Simulates a transition log with a planted potential, as `detbal simulate` does.
///
/// `options` are the long flags of `detbal simulate` in snake_case (`mode="driven"`,
/// `rows=100_000`, `states=300`, `seed=1`, `groups=1`, `shared_potential=False`).
///
/// Returns the log as a pyarrow.Table (`run`, `source`, `target`, and `group` with groups) and
/// its truth (the planted potential `V` of each state, the drive, the attractors) as a dict.
#[pyfunction]
#[pyo3(signature = (**options))]
fn simulate<'py>(
    py: Python<'py>,
    options: Option<Bound<'py, PyDict>>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let dir = tempfile::tempdir()?;
    let (log, truth) = (
        dir.path().join("log.parquet"),
        dir.path().join("log.truth.json"),
    );
    let mut output = std::ffi::OsString::from("--output=");
    output.push(&log);
    let cli = options::parse("simulate", options.as_ref(), vec![output])?;
    let Command::Simulate(args) = cli.command else {
        unreachable!("parsed as simulate")
    };
    let params = settings::sim_params(&args).map_err(error)?;
    detached(py, || detbal::simulate::simulate(&params, &log, &truth))?;
    let table = py
        .import("pyarrow.parquet")?
        .call_method1("read_table", (&log,))?;
    let truth = std::fs::read_to_string(&truth)?;
    let truth = py.import("json")?.call_method1("loads", (truth,))?;
    Ok((table, truth))
}

/// Compares two analyses, as `detbal compare` does: the drift of the potential (the gauge
/// removed per component), the states that moved most, and the tests' statistics old → new.
///
/// `old` and `new` are each an Analysis or an output directory of `detbal analyze` (or of
/// `.write`). `options` are the long flags of `detbal compare` in snake_case (`top=10`,
/// `max_potential_drift=0.2`, `max_state_drift`, `max_r_drop`); a threshold exceeded is listed
/// in the result's `report["exceeded"]`, one whose drift cannot be measured in `unmeasured`.
#[pyfunction]
#[pyo3(signature = (old, new, **options))]
fn compare(
    py: Python<'_>,
    old: Bound<'_, PyAny>,
    new: Bound<'_, PyAny>,
    options: Option<Bound<'_, PyDict>>,
) -> PyResult<Comparison> {
    let (old, new) = (side(&old, "<old analysis>")?, side(&new, "<new analysis>")?);
    let tail = vec!["--".into(), old.label().into(), new.label().into()];
    let cli = options::parse("compare", options.as_ref(), tail)?;
    let Command::Compare(args) = cli.command else {
        unreachable!("parsed as compare")
    };
    let limits = Thresholds {
        rms: args.max_potential_drift,
        max: args.max_state_drift,
        r_drop: args.max_r_drop,
    };
    let (old, new) = (old.run()?, new.run()?);
    let comparison = detached(py, || compare_runs(old, new, args.top, limits))?;
    Ok(Comparison(comparison))
}

/// One side of `compare`: an analysis in memory or an output directory.
enum Side<'py> {
    Memory(Bound<'py, Analysis>, &'static str),
    Dir(PathBuf),
}

fn side<'py>(object: &Bound<'py, PyAny>, label: &'static str) -> PyResult<Side<'py>> {
    match object.cast::<Analysis>() {
        Ok(analysis) => Ok(Side::Memory(analysis.clone(), label)),
        Err(_) => Ok(Side::Dir(object.extract()?)),
    }
}

impl Side<'_> {
    fn label(&self) -> &Path {
        match self {
            Side::Memory(_, label) => Path::new(label),
            Side::Dir(dir) => dir,
        }
    }

    fn run(&self) -> PyResult<Run> {
        match self {
            Side::Memory(analysis, label) => Ok(Run::of(&analysis.get().run, label)),
            Side::Dir(dir) => Run::read(dir).map_err(error),
        }
    }
}

/// Keeps the GPU's adapter enumeration quiet on a headless Linux machine without
/// `XDG_RUNTIME_DIR`: Mesa's device-select layer asks libwayland for a display, which prints
/// `error: XDG_RUNTIME_DIR is invalid or not set` on stderr although nothing failed (the binary
/// does the same in `main`). Sets the variable, for this process, to an empty private directory
/// removed at exit; through `os.environ`, so Python sees it too. Elsewhere it does nothing.
fn quiet_vulkan(py: Python<'_>) -> PyResult<()> {
    if !cfg!(all(unix, not(target_os = "macos"))) {
        return Ok(());
    }
    let environ = py.import("os")?.getattr("environ")?;
    let current: Option<PathBuf> = environ
        .call_method1("get", ("XDG_RUNTIME_DIR",))?
        .extract()?;
    if current.is_some_and(|d| d.is_absolute()) {
        return Ok(());
    }
    // Mode 0700, as libwayland requires.
    let dir = tempfile::Builder::new()
        .prefix("detbal-runtime-")
        .tempdir()?
        .keep()
        .into_os_string();
    environ.set_item("XDG_RUNTIME_DIR", &dir)?;
    let rmtree = py.import("shutil")?.getattr("rmtree")?;
    py.import("atexit")?
        .call_method1("register", (rmtree, dir, true))?;
    Ok(())
}

#[pymodule]
fn _detbal(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(analyze, m)?)?;
    m.add_function(wrap_pyfunction!(simulate, m)?)?;
    m.add_function(wrap_pyfunction!(compare, m)?)?;
    m.add_class::<Analysis>()?;
    m.add_class::<Comparison>()?;
    m.add("DetbalError", m.py().get_type::<DetbalError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
