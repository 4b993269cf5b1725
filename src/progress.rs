//! Progress bars on stderr for the stages that can take more than a second (loading by bytes,
//! fitting by iteration, cycles, resamples): a thin facade over `indicatif`.
//!
//! Bars are off unless the binary turns them on once with [`enable`] (`detbal analyze` does,
//! unless `--quiet` or `--json`), and even then only when stderr is a terminal: piped or
//! redirected stderr, the library, tests and benchmarks stay silent. A disabled [`Progress`] is
//! an empty handle; its methods cost a branch. A bar is removed from the terminal when it is
//! finished or dropped, so the summary on stdout is never interleaved with stale bars. Every bar
//! draws through one process-wide `MultiProgress`: stages that run at once (the fit beside the
//! verdict and the cycles, `analyze::both_paths`) get a line each instead of overwriting each
//! other's.
//!
//! ```
//! use detbal::progress::{self, Unit};
//! let bar = progress::bar("load", 1 << 20, Unit::Bytes);
//! bar.inc(4096);
//! bar.finish();
//! ```

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle};
use std::io::IsTerminal;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// The terminal's bars, drawn together (created with the first bar).
fn terminal() -> &'static MultiProgress {
    static BARS: OnceLock<MultiProgress> = OnceLock::new();
    BARS.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)))
}

/// Turns bars on (when stderr is a terminal) or off for the rest of the process.
pub fn enable(on: bool) {
    ENABLED.store(on && std::io::stderr().is_terminal(), Ordering::Relaxed);
}

/// Whether [`bar`] draws anything.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// What a bar counts; decides how positions are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Bytes read (shown as KiB, MiB, … with a rate).
    Bytes,
    /// Iterations of an optimiser (the total is an upper bound).
    Iterations,
    /// Anything else counted one by one: cycles, resamples, files.
    Items,
}

/// One stage's bar; cheap to clone (clones share the bar), no-op when disabled.
#[derive(Debug, Clone)]
pub struct Progress(Option<ProgressBar>);

/// A bar for `stage` running to `total` (`0`: unknown, a ticking spinner with a count).
pub fn bar(stage: &str, total: u64, unit: Unit) -> Progress {
    if !enabled() {
        return Progress(None);
    }
    let template = match (unit, total) {
        // The total of an optimiser is only its iteration limit: a count, not a bar.
        (Unit::Iterations, _) => {
            "{spinner} {prefix:>8} {elapsed:>3} {pos} iterations (limit {len})"
        }
        (Unit::Bytes, 0) => "{spinner} {prefix:>8} {elapsed:>3} {bytes} {bytes_per_sec}",
        (Unit::Items, 0) => "{spinner} {prefix:>8} {elapsed:>3} {human_pos} {per_sec}",
        (Unit::Bytes, _) => {
            "{prefix:>10} [{bar:25}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
        }
        (Unit::Items, _) => "{prefix:>10} [{bar:25}] {human_pos}/{human_len} {per_sec} eta {eta}",
    };
    let style = ProgressStyle::with_template(template)
        .expect("progress templates are valid")
        .progress_chars("=> ");
    let bar = terminal().add(
        ProgressBar::new(total)
            .with_style(style)
            .with_prefix(stage.to_string())
            .with_finish(ProgressFinish::AndClear),
    );
    if total == 0 {
        // Nothing reports positions during one long call: the spinner and clock tick alone.
        bar.unset_length();
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
    }
    Progress(Some(bar))
}

impl Progress {
    /// A handle that draws nothing, whatever [`enable`] said.
    pub fn hidden() -> Progress {
        Progress(None)
    }

    /// Advances by `delta`.
    pub fn inc(&self, delta: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(delta);
        }
    }

    /// Moves to `position`.
    pub fn set(&self, position: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(position);
        }
    }

    /// Removes the bar from the terminal (also done when the last clone is dropped).
    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
            terminal().remove(bar);
        }
    }
}
