//! Command-line interface (clap derive). Doc comments are the help text.

use crate::backend::DeviceChoice;
use crate::bench::{BenchDevice, BenchSuite, parse_count};
use crate::fit::{Estimator, Exposure};
use crate::simulate::SimMode;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// detbal: is an LLM agent's dynamics in detailed balance, and with what potential?
///
/// Reads transition logs (Parquet, CSV, the reference JSON database), fits a potential V over
/// states by least action (or another estimator), and tests detailed balance pairwise and on
/// cycles, on the GPU (wgpu) or the CPU.
#[derive(Debug, Parser)]
#[command(name = "detbal", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fit the potential and test detailed balance; writes report.json and Parquet tables.
    Analyze(AnalyzeArgs),
    /// Write a synthetic transition log with a planted potential and a truth sidecar.
    Simulate(SimulateArgs),
    /// Print the drift between two analyze output directories; exit 5 beyond a threshold.
    Compare(CompareArgs),
    /// Measure the kernels and the analysis stages per backend and size; prints a table.
    Bench(BenchArgs),
    /// Print a shell completion script on stdout (e.g. `detbal completions bash > detbal.bash`).
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell the script is for.
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Decide from the file extension and columns.
    Auto,
    /// One row per transition: source, target[, count][, run].
    Transitions,
    /// One row per step: run, step, state.
    Trajectory,
    /// The reference code's JSON database.
    ReferenceJson,
}

/// Headings of `analyze --help`.
const INPUT: &str = "Input";
const FIT: &str = "Fit";
const VERDICT: &str = "Verdict and tests";
const RESAMPLING: &str = "Resampling";
const OUTPUT: &str = "Output";
const DEVICE: &str = "Device";

#[derive(Debug, Args)]
#[command(
    after_help = "Every switch --X above has a --no-X that turns it off again (one set in a --config \
                  file, say); the last of the two on the command line wins."
)]
pub struct AnalyzeArgs {
    /// Input files, directories or glob patterns (together one dataset).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = FormatArg::Auto, help_heading = INPUT)]
    pub format: FormatArg,
    /// Column of the state shown to the agent (transitions).
    #[arg(long, default_value = "source", help_heading = INPUT)]
    pub source_column: String,
    /// Column of the state the agent produced (transitions).
    #[arg(long, default_value = "target", help_heading = INPUT)]
    pub target_column: String,
    /// Pre-aggregated transition counts (optional column).
    #[arg(long, default_value = "count", help_heading = INPUT)]
    pub count_column: String,
    /// Column of the run (optional for transitions).
    #[arg(long, default_value = "run", help_heading = INPUT)]
    pub run_column: String,
    /// Column ordering a run's steps (trajectory).
    #[arg(long, default_value = "step", help_heading = INPUT)]
    pub step_column: String,
    /// Column of the state at each step (trajectory).
    #[arg(long, default_value = "state", help_heading = INPUT)]
    pub state_column: String,
    /// Skip rows with a null state (counted and reported) instead of failing.
    #[arg(long, overrides_with = "no_drop_null_states", help_heading = INPUT)]
    pub drop_null_states: bool,
    #[arg(long, overrides_with = "drop_null_states", hide = true)]
    pub no_drop_null_states: bool,
    /// Also fit and test each group of this column (or Hive `key=value` folder), e.g. model or
    /// prompt template, and correlate the groups' potentials.
    #[arg(long, value_name = "COLUMN", help_heading = INPUT)]
    pub group_by: Option<String>,
    /// Trajectory steps held in memory when the rows are not sorted by (run, step), about 100
    /// bytes each; more are spilled to unnamed temporary files in TMPDIR (gone on exit).
    #[arg(
        long,
        value_name = "STEPS",
        default_value_t = crate::io::TRAJECTORY_BUFFER_ROWS as u64,
        value_parser = clap::value_parser!(u64).range(1..),
        help_heading = INPUT
    )]
    pub trajectory_buffer: u64,
    /// Read flags from a TOML file (keys: long flag names, and `inputs`); flags given here win.
    #[arg(long, value_name = "FILE", help_heading = INPUT)]
    pub config: Option<PathBuf>,

    /// Estimator of the potential [default: reversible-mle; least-action under --paper, the
    /// paper's].
    #[arg(long, value_enum, help_heading = FIT)]
    pub estimator: Option<Estimator>,
    /// Exposure N0(f) of the least-action weights w = min(1, n(f→g)/N0(f)).
    #[arg(long, value_enum, default_value_t = Exposure::Observed, help_heading = FIT)]
    pub exposure: Exposure,
    /// Number of agent attempts, for --exposure uniform (N0 = attempts / states).
    #[arg(long, help_heading = FIT)]
    pub attempts: Option<u64>,
    /// Drop states with N0 ≤ threshold (observed exposure).
    #[arg(long, default_value_t = 1.0, help_heading = FIT)]
    pub threshold: f64,
    /// Ridge λ, the precision of a Gaussian prior on every V: a number ≥ 0, or `auto` to choose
    /// it by 5-fold cross-validation (docs/METHOD.md §2.5) [default: auto; 0 under --paper].
    #[arg(long, value_name = "LAMBDA|auto", value_parser = parse_l2, help_heading = FIT)]
    pub l2: Option<L2Arg>,
    /// Relative gradient tolerance of the fit.
    #[arg(long, default_value_t = 1e-8, help_heading = FIT)]
    pub grad_tol: f64,
    /// Iterations of the optimiser before the fit counts as not converged (exit code 4).
    #[arg(long, default_value_t = 20_000, help_heading = FIT)]
    pub max_iterations: usize,
    /// Reproduce the reference code: observed exposure, its threshold, its filters.
    #[arg(long, overrides_with = "no_paper", help_heading = FIT)]
    pub paper: bool,
    #[arg(long, overrides_with = "paper", hide = true)]
    pub no_paper: bool,

    /// Significance level of the verdict.
    #[arg(long, default_value_t = 0.01, help_heading = VERDICT)]
    pub alpha: f64,
    /// Exit with code 3 when detailed balance is rejected at this level, 7 when the verdict
    /// cannot decide (outputs are written).
    #[arg(long, value_name = "ALPHA", help_heading = VERDICT)]
    pub fail_on_violation: Option<f64>,
    /// Pairs of states enter the verdict's test when they have at least this many transitions
    /// between them, either way (fewer only when none of those close a cycle; lowered to 1, the
    /// verdict gives an approximate p-value and does not decide).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..),
          help_heading = VERDICT)]
    pub verdict_min_transitions: u64,
    /// Most parametric-bootstrap refits calibrating the verdict's p-value (sequential stopping
    /// ends most runs after a few dozen); 0 uses the asymptotic χ² instead.
    #[arg(long, default_value_t = 999, help_heading = VERDICT)]
    pub verdict_resamples: usize,
    /// Smallest count in either direction for the descriptive pair and cycle statistics
    /// (default 1: no selection on the outcome; the verdict's test never selects).
    #[arg(long, default_value_t = 1, help_heading = VERDICT)]
    pub min_count: u64,
    /// False-discovery rate for per-cycle flags.
    #[arg(long, default_value_t = 0.05, help_heading = VERDICT)]
    pub fdr: f64,
    /// Longest cycles examined: 3 (reciprocal triangles) or 4 (also count chordless 4-cycles).
    #[arg(long, default_value_t = 3, help_heading = VERDICT)]
    pub max_cycle_len: u32,
    /// Rows of the per-cycle table (cycles.parquet): every triangle, or, when there are more,
    /// the most significant this many. Every statistic still covers all triangles.
    #[arg(long, default_value_t = crate::stats::cycles::DEFAULT_MAX_CYCLES, help_heading = VERDICT)]
    pub max_cycles: usize,
    /// Most reciprocal triangles the cycle test enumerates (a complete graph of n states has
    /// n(n−1)(n−2)/6); more is an error before any is enumerated. Time grows with them, memory
    /// does not.
    #[arg(long, default_value_t = crate::stats::cycles::DEFAULT_MAX_TRIANGLES, help_heading = VERDICT)]
    pub max_triangles: u64,

    /// Resamples of the explanatory-power test (V fitted on a random half of the records,
    /// permuted over states, tested on the other half), at most 1,000,000; 0 turns it off.
    #[arg(long, default_value_t = 999, help_heading = RESAMPLING)]
    pub permutations: u32,
    /// Bootstrap refits for the 90 % percentile intervals of V (each costs a fit; e.g. 200), at
    /// most 100,000; 0, the default, turns them off.
    #[arg(long, default_value_t = 0, help_heading = RESAMPLING)]
    pub bootstrap: u32,
    /// Seed of every resampling draw (the same on CPU and GPU).
    #[arg(long, default_value_t = 0, help_heading = RESAMPLING)]
    pub seed: u64,
    /// Also fit V on a random half of the records and test detailed balance on the other half.
    #[arg(long, overrides_with = "no_holdout", help_heading = RESAMPLING)]
    pub holdout: bool,
    #[arg(long, overrides_with = "holdout", hide = true)]
    pub no_holdout: bool,

    /// Output directory, replaced as a whole once every file is written.
    #[arg(short, long, default_value = "detbal-out", value_name = "DIR", help_heading = OUTPUT)]
    pub output: PathBuf,
    /// Replace the output directory even when it is not empty and not a detbal output.
    #[arg(long, overrides_with = "no_force", help_heading = OUTPUT)]
    pub force: bool,
    #[arg(long, overrides_with = "force", hide = true)]
    pub no_force: bool,
    /// A CSV or Parquet file with columns `state` and `score`: the landscape figure's horizontal
    /// axis (the paper used log10 of an expression's error); without it, log10 visits.
    #[arg(long, value_name = "FILE", help_heading = OUTPUT)]
    pub state_score: Option<PathBuf>,
    /// Print the report as JSON on stdout instead of the summary.
    #[arg(long, overrides_with = "no_json", help_heading = OUTPUT)]
    pub json: bool,
    #[arg(long, overrides_with = "json", hide = true)]
    pub no_json: bool,
    /// Print nothing on success.
    #[arg(short, long, overrides_with = "no_quiet", help_heading = OUTPUT)]
    pub quiet: bool,
    #[arg(long, overrides_with = "quiet", hide = true)]
    pub no_quiet: bool,

    /// Where kernels run.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto, help_heading = DEVICE)]
    pub device: DeviceChoice,
    /// Also run every kernel on the CPU and fail when the GPU deviates beyond tolerance.
    #[arg(long, overrides_with = "no_verify", help_heading = DEVICE)]
    pub verify: bool,
    #[arg(long, overrides_with = "verify", hide = true)]
    pub no_verify: bool,

    /// Keys whose values came from the `--config` file (set by `config::parse_args`).
    #[arg(skip)]
    pub from_config: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Output directory of the earlier run.
    pub old: PathBuf,
    /// Output directory of the later run.
    pub new: PathBuf,
    /// States listed among those whose potential moved most.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Exit 5 when the RMS potential drift over shared states exceeds this.
    #[arg(long, value_name = "X")]
    pub max_potential_drift: Option<f64>,
    /// Exit 5 when the largest potential drift of one shared state exceeds this.
    #[arg(long, value_name = "X")]
    pub max_state_drift: Option<f64>,
    /// Exit 5 when the pairwise correlation r drops by more than this.
    #[arg(long, value_name = "X")]
    pub max_r_drop: Option<f64>,
    /// Print the comparison as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    #[arg(long, value_enum, default_value_t = SimMode::Reversible)]
    pub mode: SimMode,
    /// Transitions (rows) to write.
    #[arg(long, default_value_t = 100_000)]
    pub rows: u64,
    /// Number of states (the mode's default when absent).
    #[arg(long)]
    pub states: Option<u32>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Groups (a `group` column g0, g1, …): the rows split evenly, each group with its own
    /// potential on the same graph.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub groups: u32,
    /// With --groups: every group shares one planted potential.
    #[arg(long, requires = "groups")]
    pub shared_potential: bool,
    /// Output Parquet file (its name must end in `.parquet`).
    #[arg(short, long, value_name = "LOG.parquet")]
    pub output: PathBuf,
    /// Truth sidecar (JSON); defaults to the output with `.truth.json`.
    #[arg(long)]
    pub truth: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Backends to measure; `all` is the CPU plus the GPU when an adapter exists (software ones
    /// included).
    #[arg(long, value_enum, default_value_t = BenchDevice::All)]
    pub device: BenchDevice,
    /// Which suites to run.
    #[arg(long, value_enum, default_value_t = BenchSuite::All)]
    pub suite: BenchSuite,
    /// Edges of the kernel suite's synthetic problems, comma-separated [default: 1e4,1e5,1e6,1e7;
    /// with --quick: 1e3,1e4].
    #[arg(long, value_delimiter = ',', value_parser = parse_count)]
    pub sizes: Option<Vec<u64>>,
    /// Rows of the stage suite's simulated llm-like logs (rows/20 states), comma-separated
    /// [default: 1e5,1e6,1e7; with --quick: 1e4].
    #[arg(long, value_delimiter = ',', value_parser = parse_count)]
    pub rows: Option<Vec<u64>>,
    /// States of the dense suite's complete graphs, comma-separated [default: 400,600,2000].
    #[arg(long, value_delimiter = ',', value_parser = parse_count)]
    pub dense_states: Option<Vec<u64>>,
    /// Also run the stage suite on 1e8 rows.
    #[arg(long)]
    pub large: bool,
    /// Runs per measurement, of which the median is reported (fewer once they take 10 s).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Also write the rows as a JSON array to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Small sizes, for a smoke run of a few seconds.
    #[arg(long)]
    pub quick: bool,
}

/// `--l2`: a fixed ridge or `auto`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum L2Arg {
    Fixed(f64),
    Auto,
}

/// The largest `--l2`: a prior sd of 1e-50 already pins every `V` at the prior's centre, and near
/// `f64::MAX` the solver's products overflow (1e308 gave a NaN objective).
const MAX_L2: f64 = 1e100;

fn parse_l2(text: &str) -> Result<L2Arg, String> {
    if text == "auto" {
        return Ok(L2Arg::Auto);
    }
    match text.parse::<f64>() {
        Ok(l2) if (0.0..=MAX_L2).contains(&l2) => Ok(L2Arg::Fixed(l2)),
        _ => Err(format!(
            "expected `auto` or a number from 0 to {MAX_L2:e}, got `{text}`"
        )),
    }
}
