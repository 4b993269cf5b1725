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

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Input files, directories or glob patterns (together one dataset).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output directory, replaced as a whole once every file is written.
    #[arg(short, long, default_value = "detbal-out")]
    pub output: PathBuf,
    /// Replace the output directory even when it is not empty and not a detbal output.
    #[arg(long)]
    pub force: bool,
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    pub format: FormatArg,
    #[arg(long, default_value = "source")]
    pub source_column: String,
    #[arg(long, default_value = "target")]
    pub target_column: String,
    /// Pre-aggregated transition counts (optional column).
    #[arg(long, default_value = "count")]
    pub count_column: String,
    #[arg(long, default_value = "run")]
    pub run_column: String,
    #[arg(long, default_value = "step")]
    pub step_column: String,
    #[arg(long, default_value = "state")]
    pub state_column: String,
    /// Skip rows with a null state (counted and reported) instead of failing.
    #[arg(long)]
    pub drop_null_states: bool,
    /// Also fit and test each group of this column (or Hive `key=value` folder), e.g. model or
    /// prompt template, and correlate the groups' potentials.
    #[arg(long, value_name = "COLUMN")]
    pub group_by: Option<String>,

    /// Estimator of the potential.
    #[arg(long, value_enum, default_value_t = Estimator::LeastAction)]
    pub estimator: Estimator,
    /// Exposure N0(f) of the least-action weights w = min(1, n(f→g)/N0(f)).
    #[arg(long, value_enum, default_value_t = Exposure::Observed)]
    pub exposure: Exposure,
    /// Number of agent attempts, for --exposure uniform (N0 = attempts / states).
    #[arg(long)]
    pub attempts: Option<u64>,
    /// Drop states with N0 ≤ threshold (observed exposure).
    #[arg(long, default_value_t = 1.0)]
    pub threshold: f64,
    /// Ridge λ: a finite MAP potential for every kept state.
    #[arg(long, default_value_t = 0.0)]
    pub l2: f64,
    /// Relative gradient tolerance of the fit.
    #[arg(long, default_value_t = 1e-8)]
    pub grad_tol: f64,
    #[arg(long, default_value_t = 20_000)]
    pub max_iterations: usize,

    /// Smallest count in either direction for the descriptive pair and cycle statistics
    /// (default 1: no selection on the outcome; the verdict's test never selects).
    #[arg(long, default_value_t = 1)]
    pub min_count: u64,
    /// False-discovery rate for per-cycle flags.
    #[arg(long, default_value_t = 0.05)]
    pub fdr: f64,
    /// Longest cycles examined: 3 (reciprocal triangles) or 4 (also count chordless 4-cycles).
    #[arg(long, default_value_t = 3)]
    pub max_cycle_len: u32,
    /// Rows of the per-cycle table (cycles.parquet): every triangle, or, when there are more,
    /// the most significant this many. Every statistic still covers all triangles.
    #[arg(long, default_value_t = crate::stats::cycles::DEFAULT_MAX_CYCLES)]
    pub max_cycles: usize,
    /// Most reciprocal triangles the cycle test enumerates (a complete graph of n states has
    /// n(n−1)(n−2)/6); more is an error before any is enumerated. Time grows with them, memory
    /// does not.
    #[arg(long, default_value_t = crate::stats::cycles::DEFAULT_MAX_TRIANGLES)]
    pub max_triangles: u64,
    /// Significance level of the verdict.
    #[arg(long, default_value_t = 0.01)]
    pub alpha: f64,
    /// Reproduce the reference code: observed exposure, its threshold, its filters.
    #[arg(long)]
    pub paper: bool,

    /// Where kernels run.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    /// Also run every kernel on the CPU and fail when the GPU deviates beyond tolerance.
    #[arg(long)]
    pub verify: bool,
    /// Resamples of the explanatory-power test (V fitted on a random half of the records,
    /// permuted over states, tested on the other half), at most 1,000,000; 0 turns it off.
    #[arg(long, default_value_t = 999)]
    pub permutations: u32,
    /// Pairs of states enter the verdict's test when they have at least this many transitions
    /// between them, either way (fewer only when none of those close a cycle).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub verdict_min_transitions: u64,
    /// Most parametric-bootstrap refits calibrating the verdict's p-value (sequential stopping
    /// ends most runs after a few dozen); 0 uses the asymptotic χ² instead.
    #[arg(long, default_value_t = 999)]
    pub verdict_resamples: usize,
    /// Bootstrap refits for the 90 % percentile intervals of V (each costs a fit; e.g. 200);
    /// 0, the default, turns them off.
    #[arg(long, default_value_t = 0)]
    pub bootstrap: u32,
    /// Seed of every resampling draw (the same on CPU and GPU).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also fit V on a random half of the records and test detailed balance on the other half.
    #[arg(long)]
    pub holdout: bool,
    /// Print the report as JSON on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// Print nothing on success.
    #[arg(short, long)]
    pub quiet: bool,
    /// Exit with code 3 when detailed balance is rejected at this level (outputs are written).
    #[arg(long, value_name = "ALPHA")]
    pub fail_on_violation: Option<f64>,
    /// Read flags from a TOML file (keys: long flag names, and `inputs`); flags given here win.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
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
    /// Output Parquet file.
    #[arg(short, long)]
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
