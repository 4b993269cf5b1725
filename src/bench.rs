//! `detbal bench`: measured speeds of the kernels and of the analysis stages, per backend and
//! size, as one table (and optionally JSON).
//!
//! Why: what a fit costs depends on the machine (CPU threads, GPU or software GPU, memory
//! bandwidth); this measures it on the machine at hand, with the same code paths the analysis
//! takes, so the numbers can be set against the physical limits in `docs/GPU.md` §1. Every number
//! printed is measured in the run that prints it.
//!
//! # Suites
//! - **kernel**, on [`synthetic_problem`] (fixed seed, heavy-tailed targets), built outside the
//!   timed region, per backend × number of edges:
//!   - `edge_action`: one optimiser evaluation (value, gradient and Hessian diagonal) with the
//!     problem and `V` resident, which is what the fit pays per evaluation: on the GPU
//!     [`GpuSpace`](crate::backend::gpu::GpuSpace)'s `value_grad` (one submit, one scalar read
//!     back); on the CPU [`edge_action`], which the CPU's vector space calls (it then inverts
//!     the diagonal, O(states), not timed here). One untimed call first (warm-up).
//!   - `fit_iteration`: [`Backend::minimize_action`] from `V = 0` with at most
//!     [`FIT_ITERATIONS`] iterations and gradient tolerance 0, so only a failed line search
//!     stops it early; the time is that of the whole call (on the GPU the problem upload
//!     included, as in a fit) per iteration made.
//!   - `reciprocal_triangles_hubs` and `reciprocal_triangles_uniform`: every reciprocal
//!     triangle enumerated by [`Backend::reciprocal_triangles`] (chunks counted, not kept) on
//!     [`hub_graph`] (a dense core and a periphery) and on [`uniform_graph`], each of about as
//!     many arcs as the size; the oriented graph is built outside the timed region. The notes
//!     give the triangles found and the longest oriented out-list.
//!
//!   Each kernel row also carries the device work per call ([`Work`]: per evaluation, per
//!   Newton step, per enumeration; `fit_iteration` also per conjugate-gradient iteration, the
//!   fits' whole work divided by their Hessian products): on the GPU the difference of
//!   [`GpuCounters`](crate::backend::gpu::GpuCounters) around the calls (read-backs, submits,
//!   dispatches, bind groups, bytes up and down, estimated device-memory bytes per edge); on the
//!   CPU no read-back or dispatch, and for `edge_action` the bytes of the arrays the CPU twin
//!   streams ([`cpu_evaluation_bytes`]).
//! - **stage**, end to end: an llm-like log from [`crate::simulate`] with `rows / 20` states,
//!   written to a temporary directory (not timed), then [`analyze`] with default settings per
//!   backend; each stage's time is the one [`Analysis::timings`](crate::analyze::Analysis)
//!   reports (load, fit, pairs, cycles, and total: the whole call, opening the device and the
//!   entropy production included). The fit row also carries the iterations and the final
//!   action.
//! - **hard** (`--suite hard`, not part of `all`): the stage suite on `simulate --mode llm-hard`
//!   logs of `--rows` (default 1e6) with `0.3 × rows` states: one giant strongly connected
//!   component with heavy-tailed degrees, the fit's hard case. Its fit row carries the passes over
//!   the edges (evaluations + Hessian products).
//! - **dense** (`--suite dense`, not part of `all`): complete directed graphs of
//!   `--dense-states` states (default 400, 600, 2,000; `n (n−1)` edges, `n (n−1) (n−2) / 6`
//!   reciprocal triangles, counts uniform in 1..=100 from a fixed seed), written to a temporary
//!   directory (not timed), then `detbal analyze --permutations 0 --bootstrap 0` run as a child
//!   process of this executable: its wall time and peak RSS (`wait4`), the triangles it
//!   enumerated and the rows it listed, or the error it stopped with. One run per size. Each
//!   should finish, or stop naming a limit, within [`DENSE_BUDGET`] and
//!   [`DENSE_MEMORY_BUDGET`]; a run over either is marked.
//!
//! # Statistics
//! A measurement runs `repeat` times, or fewer once its runs together have taken
//! [`RUN_BUDGET`] (at least once); the time is the median of the runs made (per stage for the
//! stage suite), the throughput is size / time, and the table says how many runs there were.
//! Nothing is asserted about times.
//!
//! ```no_run
//! use detbal::bench::{BenchDevice, BenchSettings, run, table};
//! let settings = BenchSettings {
//!     device: BenchDevice::Cpu,
//!     sizes: vec![10_000],
//!     rows: vec![10_000],
//!     dense: vec![],
//!     hard: vec![],
//!     repeat: 3,
//! };
//! print!("{}", table(&run(&settings).unwrap()));
//! ```

use crate::analyze::{AnalyzeSettings, Timings};
use crate::backend::cpu::reciprocal_triangles::OrientedReciprocal;
use crate::backend::cpu::{CpuBackend, EdgeScratch, edge_action};
use crate::backend::gpu::{GpuBackend, GpuCounters};
use crate::backend::{Backend, DeviceChoice, TRIANGLE_CHUNK};
use crate::error::{Error, Result};
use crate::fit::newton::{NewtonOptions, VectorSpace};
use crate::fit::problem::ActionProblem;
use crate::graph::{GraphBuilder, TransitionGraph};
use crate::pipeline::analyze;
use crate::simulate::{SimMode, SimParams, simulate};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Newton steps per `fit_iteration` run.
pub const FIT_ITERATIONS: usize = 20;
/// A measurement stops repeating once its runs together have taken this long.
pub const RUN_BUDGET: Duration = Duration::from_secs(10);
/// Seed of the kernel suite's problems and the stage suite's logs.
const SEED: u64 = 42;
/// Kernel sizes (edges) and stage sizes (rows): default, `--quick`, and what `--large` adds.
pub(crate) const SIZES: [u64; 4] = [10_000, 100_000, 1_000_000, 10_000_000];
pub(crate) const ROWS: [u64; 3] = [100_000, 1_000_000, 10_000_000];
pub(crate) const QUICK_SIZES: [u64; 2] = [1_000, 10_000];
pub(crate) const QUICK_ROWS: [u64; 1] = [10_000];
pub(crate) const LARGE_ROWS: u64 = 100_000_000;
/// Rows of the hard suite's log (default).
pub(crate) const HARD_ROWS: [u64; 1] = [1_000_000];
/// States of the dense suite's complete graphs (default).
pub(crate) const DENSE_STATES: [u64; 3] = [400, 600, 2_000];
/// Most states of a dense-suite graph (`n (n − 1)` rows are written).
const MAX_DENSE_STATES: u64 = 20_000;
/// What a dense-suite analysis must stay within (reported, not enforced; the child is stopped
/// at [`DENSE_KILL`]).
pub const DENSE_BUDGET: Duration = Duration::from_secs(60);
pub const DENSE_MEMORY_BUDGET: u64 = 4 << 30;
const DENSE_KILL: Duration = Duration::from_secs(180);
/// Most edges of one kernel problem ([`ActionProblem`] numbers incidence entries in `u32`).
const MAX_EDGES: u64 = 1_000_000_000;

/// Which backends `detbal bench` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchDevice {
    /// The CPU, plus the GPU when an adapter exists (software ones included).
    All,
    /// What `analyze --device auto` would use: a hardware GPU, else the CPU.
    Auto,
    /// The CPU only.
    Cpu,
    /// Any GPU adapter, software ones included; an error when there is none.
    Gpu,
}

/// Which suites `detbal bench` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchSuite {
    /// Both.
    All,
    /// Kernels on synthetic problems (`--sizes`).
    Kernel,
    /// Analysis stages on simulated logs (`--rows`).
    Stage,
    /// Complete directed graphs (`--dense-states`) through `detbal analyze` in a child process:
    /// wall time and peak memory (not part of `all`).
    Dense,
    /// The stage suite on hard llm-like logs (`simulate --mode llm-hard`, `rows × 0.3` states;
    /// `--rows`, default 1e6): a giant strongly connected component, the fit's hard case (not
    /// part of `all`).
    Hard,
}

/// Validated settings of a benchmark run.
#[derive(Debug, Clone)]
pub struct BenchSettings {
    pub device: BenchDevice,
    /// Edges of the kernel suite's problems (none: no kernel suite).
    pub sizes: Vec<u64>,
    /// Rows of the stage suite's logs (none: no stage suite).
    pub rows: Vec<u64>,
    /// States of the dense suite's complete graphs (none: no dense suite).
    pub dense: Vec<u64>,
    /// Rows of the hard suite's logs (none: no hard suite).
    pub hard: Vec<u64>,
    /// Runs per measurement (at most).
    pub repeat: usize,
}

impl BenchSettings {
    /// Checks sizes and rows before anything is measured.
    pub fn validate(&self) -> Result<()> {
        if let Some(&n) = self
            .dense
            .iter()
            .find(|&&n| !(3..=MAX_DENSE_STATES).contains(&n))
        {
            return Err(Error::settings(format!(
                "--dense-states must lie in [3, {MAX_DENSE_STATES}], got {n}"
            )));
        }
        if self.repeat == 0 {
            return Err(Error::settings("--repeat must be at least 1"));
        }
        if let Some(&n) = self.sizes.iter().find(|&&n| n > MAX_EDGES) {
            return Err(Error::settings(format!(
                "--sizes: {n} edges exceed the {MAX_EDGES} of one problem"
            )));
        }
        for &rows in &self.hard {
            hard_log(rows)?.validate().map_err(|e| {
                Error::settings(format!("--rows {rows}: no llm-hard log ({e})"))
                    .hint("use more rows")
            })?;
        }
        for &rows in &self.rows {
            stage_log(rows)?.validate().map_err(|e| {
                let why = match e {
                    Error::Settings { message, .. } => message,
                    other => other.to_string(),
                };
                Error::settings(format!(
                    "--rows {rows}: no llm-like log of rows/20 states ({why})"
                ))
                .hint("use more rows")
            })?;
        }
        Ok(())
    }
}

/// The stage suite's log: llm-like defaults with `rows / 20` states.
fn stage_log(rows: u64) -> Result<SimParams> {
    let states = u32::try_from(rows / 20)
        .map_err(|_| Error::settings(format!("--rows {rows}: more than 2^32 states")))?;
    Ok(SimParams {
        rows,
        states,
        seed: SEED,
        ..SimParams::new(SimMode::LlmLike)
    })
}

/// The hard suite's log: llm-hard defaults with `0.3 × rows` states.
fn hard_log(rows: u64) -> Result<SimParams> {
    let states = u32::try_from(rows * 3 / 10)
        .map_err(|_| Error::settings(format!("--rows {rows}: more than 2^32 states")))?;
    Ok(SimParams {
        rows,
        states,
        seed: 1,
        ..SimParams::new(SimMode::LlmHard)
    })
}

/// Parses a positive whole count written plainly or in e-notation (`250000`, `1e6`, `2.5e6`).
pub fn parse_count(text: &str) -> std::result::Result<u64, String> {
    let bad = || format!("{text:?} is not a positive whole count such as 250000 or 1e6");
    if let Ok(n) = text.parse::<u64>() {
        return if n > 0 { Ok(n) } else { Err(bad()) };
    }
    let x: f64 = text.parse().map_err(|_| bad())?;
    if x >= 1.0 && x <= 2f64.powi(53) && x.fract() == 0.0 {
        Ok(x as u64)
    } else {
        Err(bad())
    }
}

/// A random action problem with `n_edges` edges on `n_edges / 10` states (at least 2), and a
/// point `V` uniform in ±5. Sources are uniform; targets are `⌊n u³⌋` with `u` uniform, so the
/// in-degree falls off as rank^(−2/3) and state 0 alone receives a fraction `n^(−1/3)` of all
/// edges: the attractor hubs of agent logs. Weights are uniform in (0.01, 1). Edges are sorted
/// by (source, target), the order of [`TransitionGraph`](crate::graph::TransitionGraph)'s edges
/// that the fit keeps, so memory access follows a real fit's.
pub fn synthetic_problem(n_edges: usize, seed: u64) -> (ActionProblem, Vec<f64>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let n = (n_edges / 10).max(2);
    let mut edges: Vec<(u32, u32, f64)> = (0..n_edges)
        .map(|_| {
            let source = rng.random_range(0..n as u32);
            let u: f64 = rng.random_range(0.0..1.0);
            let target = ((n as f64) * u * u * u) as u32;
            (source, target, rng.random_range(0.01..1.0))
        })
        .collect();
    edges.sort_unstable_by_key(|&(s, d, _)| (s, d));
    let v = (0..n).map(|_| rng.random_range(-5.0..5.0)).collect();
    let (src, dst) = edges.iter().map(|&(s, d, _)| (s, d)).unzip();
    let weight = edges.iter().map(|e| e.2).collect();
    let problem = ActionProblem::new(n, src, dst, weight, 0.0).expect("valid synthetic problem");
    (problem, v)
}

/// A transition graph for the cycle kernel: the arcs of [`synthetic_problem`] (hubs included),
/// each with a count of 1–4, and the reverse of every second one, so that about half the pairs
/// are reciprocal and the hubs close many triangles.
pub fn synthetic_graph(n_edges: usize, seed: u64) -> TransitionGraph {
    let (problem, _) = synthetic_problem(n_edges, seed);
    let arcs = problem.src.iter().zip(&problem.dst).map(|(&s, &d)| (s, d));
    graph_of(problem.n_states, arcs, |e| e % 2 == 0)
}

/// A hub-heavy reciprocal graph of about `n_edges` arcs, all seen both ways: a core of
/// `k = ⌊√n_edges / 8⌋` states (at least 8, at most 300) joined pairwise, and peripheral states
/// each joined to 4 core states drawn uniformly, so every core state is a hub of degree about
/// `k + 4 · periphery / k`. Under the degree orientation the core's out-lists run from 0 to
/// `k − 1` entries and a peripheral state's has 4, so the intersections of the oriented edges
/// from the periphery into the core are lopsided and those inside the core long: what a log
/// whose attractors all lead to one another looks like to the triangle kernel.
/// `k (k−1)(k−2)/6` triangles in the core, up to 6 per peripheral state.
pub fn hub_graph(n_edges: usize, seed: u64) -> TransitionGraph {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let k = ((n_edges as f64).sqrt() / 8.0).clamp(8.0, 300.0) as u32;
    let periphery = (n_edges.saturating_sub((k * (k - 1)) as usize) / 8) as u32;
    let mut arcs: Vec<(u32, u32)> = (0..k)
        .flat_map(|a| (a + 1..k).map(move |b| (a, b)))
        .collect();
    for p in k..k + periphery {
        for _ in 0..4 {
            arcs.push((p, rng.random_range(0..k)));
        }
    }
    graph_of((k + periphery) as usize, arcs.into_iter(), |_| true)
}

/// Like [`synthetic_graph`] without hubs: `n_edges` arcs between uniformly drawn states, on
/// `n_edges / 10` states (at least 2), the reverse of every second one added.
pub fn uniform_graph(n_edges: usize, seed: u64) -> TransitionGraph {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let n = (n_edges / 10).max(2) as u32;
    let arcs: Vec<(u32, u32)> = (0..n_edges)
        .map(|_| (rng.random_range(0..n), rng.random_range(0..n)))
        .collect();
    graph_of(n as usize, arcs.into_iter(), |e| e % 2 == 0)
}

/// A graph on states `s0 … s{n−1}` with arc `e` of `arcs` seen once with a count of 1–4 and,
/// when `reverse(e)`, its reverse too (an arc from a state to itself is a self-transition).
fn graph_of(
    n: usize,
    arcs: impl Iterator<Item = (u32, u32)>,
    reverse: impl Fn(usize) -> bool,
) -> TransitionGraph {
    let mut builder = GraphBuilder::default();
    let ids: Vec<u32> = (0..n).map(|s| builder.intern(&format!("s{s}"))).collect();
    for (e, (s, d)) in arcs.enumerate() {
        let (s, d) = (ids[s as usize], ids[d as usize]);
        let count = 1 + (e % 4) as u64;
        let row = 2 * e as u64;
        builder.add(s, d, count, row).expect("small counts");
        if reverse(e) {
            builder.add(d, s, count, row + 1).expect("small counts");
        }
    }
    builder.finish()
}

/// One measured row of the table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    /// `"kernel"` or `"stage"`.
    pub suite: &'static str,
    /// Kernel (`edge_action`, `fit_iteration`) or stage (`load`, `fit`, `pairs`, `cycles`, `total`).
    pub name: &'static str,
    /// `"cpu"` or `"gpu"`.
    pub backend: &'static str,
    pub adapter: String,
    /// Edges (kernel suite) or rows (stage suite).
    pub size: u64,
    /// Median seconds per call (per iteration for `fit_iteration`).
    pub time: f64,
    /// `size / time`, in [`Row::unit`].
    pub throughput: f64,
    /// `"edges/s"` or `"rows/s"`.
    pub unit: &'static str,
    /// Runs the median is taken over.
    pub runs: usize,
    /// Newton steps per run (`fit_iteration`, and the fit stage).
    pub iterations: Option<usize>,
    /// Evaluations of value, gradient and Hessian weights per run (same rows).
    pub evaluations: Option<usize>,
    /// Hessian–vector products per run (same rows): with the evaluations, the passes over the
    /// edges.
    pub hessian_products: Option<usize>,
    /// Final action of the fit stage.
    pub action: Option<f64>,
    /// Whether the fit stage converged.
    pub converged: Option<bool>,
    /// Peak resident memory of the analysis (dense suite: the child's `ru_maxrss`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
    /// How a dense-suite analysis ended: its triangles and listed rows, or its error line
    /// (reciprocal_triangles rows: the triangles found).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Device work per call (kernel rows; `fit_iteration`: per Newton step).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work: Option<Work>,
    /// `fit_iteration`: the fits' whole device work divided by their conjugate-gradient
    /// iterations (Hessian products), the Newton steps' own work included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work_per_cg_iteration: Option<Work>,
    /// The GPU's driver as wgpu reports it (GPU kernel rows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
}

/// What one call of a kernel row asked of the device, on average over the measured calls: per
/// evaluation (`edge_action`), per iteration (`fit_iteration`), per enumeration
/// (`reciprocal_triangles`). See [`crate::backend::gpu::GpuCounters`] for what each counts.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Work {
    pub readbacks: f64,
    pub submits: f64,
    pub dispatches: f64,
    pub bind_groups: f64,
    pub bytes_uploaded: f64,
    pub bytes_downloaded: f64,
    /// Estimated device-memory traffic per edge of the row's size (GPU: the bytes bound by the
    /// dispatches; CPU: [`cpu_evaluation_bytes`] per evaluation, `None` for other kernels).
    pub bytes_per_edge: Option<f64>,
}

impl Work {
    /// The GPU's work between two counter snapshots, over `calls` calls on `edges` edges.
    fn gpu(work: GpuCounters, calls: usize, edges: u64) -> Work {
        let per = |x: u64| x as f64 / calls as f64;
        Work {
            readbacks: per(work.readbacks),
            submits: per(work.submits),
            dispatches: per(work.dispatches),
            bind_groups: per(work.bind_groups),
            bytes_uploaded: per(work.bytes_uploaded),
            bytes_downloaded: per(work.bytes_downloaded),
            bytes_per_edge: Some(per(work.bytes_bound) / edges.max(1) as f64),
        }
    }

    /// The CPU: no device, `bytes` of memory traffic per call when known.
    fn cpu(bytes: Option<f64>, edges: u64) -> Work {
        Work {
            readbacks: 0.0,
            submits: 0.0,
            dispatches: 0.0,
            bind_groups: 0.0,
            bytes_uploaded: 0.0,
            bytes_downloaded: 0.0,
            bytes_per_edge: bytes.map(|b| b / edges.max(1) as f64),
        }
    }
}

/// Bytes the CPU twin of `edge_action` (with the Hessian diagonal) reads and writes per
/// evaluation, counting each array element once as the GPU's estimate does: per edge `src`,
/// `dst` (4 B each), `weight` (8 B), `V` at both ends (2 × 8 B), `w K'` and `w K''` written
/// (2 × 8 B); per incidence entry (two per edge) the entry (4 B) and both per-edge terms read
/// back (2 × 8 B); per state the incidence pointer (4 B), `V`, the gradient and the diagonal
/// (3 × 8 B).
pub fn cpu_evaluation_bytes(problem: &ActionProblem) -> f64 {
    let per_edge = 4 + 4 + 8 + 2 * 8 + 2 * 8 + 2 * (4 + 2 * 8);
    let per_state = 4 + 3 * 8;
    (per_edge * problem.n_edges() + per_state * problem.n_states) as f64
}

/// A backend under test: concrete, because the kernel suite needs the GPU's vector space.
enum Device {
    Cpu(CpuBackend),
    Gpu(Box<GpuBackend>),
}

struct Target {
    device: Device,
    /// What [`analyze`] is given for the stage suite.
    choice: DeviceChoice,
}

impl Target {
    fn backend(&self) -> &dyn Backend {
        match &self.device {
            Device::Cpu(cpu) => cpu,
            Device::Gpu(gpu) => gpu.as_ref(),
        }
    }

    /// The GPU's counters (zero on the CPU).
    fn counters(&self) -> GpuCounters {
        match &self.device {
            Device::Cpu(_) => GpuCounters::default(),
            Device::Gpu(gpu) => gpu.counters(),
        }
    }

    fn driver(&self) -> Option<String> {
        match &self.device {
            Device::Cpu(_) => None,
            Device::Gpu(gpu) => Some(gpu.driver()),
        }
    }
}

/// The backends for `device`; says on stderr which adapter is measured, or why no GPU is.
fn targets(device: BenchDevice) -> Result<Vec<Target>> {
    let cpu = |why: &str| Target {
        device: Device::Cpu(CpuBackend::new(why)),
        choice: DeviceChoice::Cpu,
    };
    let gpu = |choice| {
        GpuBackend::new(choice).map(|gpu| Target {
            device: Device::Gpu(Box::new(gpu)),
            choice,
        })
    };
    let targets = match device {
        BenchDevice::Cpu => vec![cpu("--device cpu was asked for")],
        BenchDevice::Gpu => vec![gpu(DeviceChoice::Gpu)?],
        BenchDevice::All => match gpu(DeviceChoice::Gpu) {
            Ok(g) => vec![cpu("--device all"), g],
            Err(Error::Gpu(why)) => {
                eprintln!("bench: no GPU rows: {why}");
                vec![cpu("--device all")]
            }
            Err(e) => return Err(e),
        },
        BenchDevice::Auto => match gpu(DeviceChoice::Auto) {
            Ok(g) => vec![g],
            Err(Error::Gpu(why)) => {
                eprintln!("bench: --device auto measures the CPU: {why}");
                vec![Target {
                    choice: DeviceChoice::Auto,
                    ..cpu(&why)
                }]
            }
            Err(e) => return Err(e),
        },
    };
    for t in &targets {
        let info = t.backend().info();
        eprintln!("bench: {} on {}", info.backend, info.adapter);
    }
    Ok(targets)
}

/// Runs both suites; rows in the order measured.
pub fn run(settings: &BenchSettings) -> Result<Vec<Row>> {
    let targets = targets(settings.device)?;
    let mut rows = Vec::new();
    for &size in &settings.sizes {
        let (problem, v) = synthetic_problem(size as usize, SEED);
        for target in &targets {
            rows.extend(kernel_rows(target, &problem, &v, settings.repeat)?);
        }
        for (name, graph) in [
            ("reciprocal_triangles_hubs", hub_graph(size as usize, SEED)),
            (
                "reciprocal_triangles_uniform",
                uniform_graph(size as usize, SEED),
            ),
        ] {
            let oriented = OrientedReciprocal::new(&graph);
            for target in &targets {
                rows.push(triangle_row(
                    target,
                    name,
                    &oriented,
                    size,
                    settings.repeat,
                )?);
            }
        }
    }
    if !settings.dense.is_empty() {
        rows.extend(dense_rows(&targets, &settings.dense)?);
    }
    if settings.rows.is_empty() && settings.hard.is_empty() {
        return Ok(rows);
    }
    let dir = ScratchDir::new()?;
    let logs = (settings.rows.iter().map(|&n| ("stage", n)))
        .chain(settings.hard.iter().map(|&n| ("hard", n)));
    for (suite, n_rows) in logs {
        let (log, truth) = (dir.0.join("log.parquet"), dir.0.join("truth.json"));
        eprintln!(
            "bench: simulating {} {suite} rows (not timed)",
            count_text(n_rows)
        );
        let params = if suite == "hard" {
            hard_log(n_rows)?
        } else {
            stage_log(n_rows)?
        };
        simulate(&params, &log, &truth)?;
        for target in &targets {
            let measured = stage_rows(target.choice, &log, n_rows, settings.repeat)?;
            rows.extend(measured.into_iter().map(|r| Row { suite, ..r }));
        }
    }
    Ok(rows)
}

/// `edge_action` and `fit_iteration` on one backend, with the device work per call.
fn kernel_rows(
    target: &Target,
    problem: &ActionProblem,
    v: &[f64],
    repeat: usize,
) -> Result<[Row; 2]> {
    let info = target.backend().info();
    let edges = problem.n_edges() as u64;
    eprintln!(
        "bench: kernels on {} edges, {}",
        count_text(edges),
        info.backend
    );
    let (evaluation, evaluation_work) = evaluations(target, problem, v, repeat)?;
    let opts = NewtonOptions {
        max_iterations: FIT_ITERATIONS,
        step_tol: 0.0,
        ..NewtonOptions::default()
    };
    let v0 = vec![0.0; problem.n_states];
    let before = target.counters();
    let fits = repeated(repeat, || {
        let start = Instant::now();
        let outcome = target.backend().minimize_action(problem, &v0, &opts)?;
        let seconds = start.elapsed().as_secs_f64();
        if outcome.iterations == 0 {
            return Err(Error::Numerical(format!(
                "bench fit_iteration made no iteration: {}",
                outcome.status
            )));
        }
        Ok((
            seconds / outcome.iterations as f64,
            outcome.iterations,
            outcome.evaluations,
            outcome.hessian_products,
        ))
    })?;
    let all_iterations = fits.iter().map(|f| f.1).sum();
    let all_products = fits.iter().map(|f| f.3).sum();
    let (fit_work, cg_work) = match target.device {
        Device::Cpu(_) => (Work::cpu(None, edges), Work::cpu(None, edges)),
        Device::Gpu(_) => {
            let work = target.counters().since(before);
            (
                Work::gpu(work, all_iterations, edges),
                Work::gpu(work, all_products, edges),
            )
        }
    };
    let &(_, iterations, evaluations, products) = fits.last().expect("at least one run");
    Ok([
        Row {
            work: Some(evaluation_work),
            ..kernel_row(target, "edge_action", edges, evaluation)
        },
        Row {
            iterations: Some(iterations),
            evaluations: Some(evaluations),
            hessian_products: Some(products),
            work: Some(fit_work),
            work_per_cg_iteration: Some(cg_work),
            ..kernel_row(
                target,
                "fit_iteration",
                edges,
                fits.iter().map(|f| f.0).collect(),
            )
        },
    ])
}

/// Times one evaluation (value, gradient, Hessian diagonal) with the problem and `V` resident,
/// after one untimed call; the device work per timed evaluation.
fn evaluations(
    target: &Target,
    problem: &ActionProblem,
    v: &[f64],
    repeat: usize,
) -> Result<(Vec<f64>, Work)> {
    let edges = problem.n_edges() as u64;
    match &target.device {
        Device::Cpu(_) => {
            let mut scratch = EdgeScratch::default();
            let mut grad = vec![0.0; problem.n_states];
            let mut diagonal = vec![0.0; problem.n_states];
            let mut once = || -> Result<()> {
                edge_action(problem, v, &mut scratch, &mut grad, Some(&mut diagonal));
                Ok(())
            };
            once()?;
            let times = repeated(repeat, || timed(&mut once))?;
            let bytes = cpu_evaluation_bytes(problem);
            Ok((times, Work::cpu(Some(bytes), edges)))
        }
        Device::Gpu(gpu) => {
            let mut space = gpu.space(problem)?;
            let x = space.upload(v)?;
            let mut grad = space.zeros()?;
            let mut once = || space.value_grad(&x, &mut grad).map(drop);
            once()?;
            let before = gpu.counters();
            let times = repeated(repeat, || timed(&mut once))?;
            let work = Work::gpu(gpu.counters().since(before), times.len(), edges);
            Ok((times, work))
        }
    }
}

/// Kernel `reciprocal_triangles` on the oriented graph `r` of a graph of `arcs` arcs: the time of
/// one whole enumeration (chunks counted, not kept) and the device work per enumeration.
fn triangle_row(
    target: &Target,
    name: &'static str,
    r: &OrientedReciprocal,
    arcs: u64,
    repeat: usize,
) -> Result<Row> {
    eprintln!(
        "bench: {name} on {} arcs, {}",
        count_text(arcs),
        target.backend().info().backend
    );
    let mut found = 0u64;
    let mut once = || {
        found = 0;
        target
            .backend()
            .reciprocal_triangles(r, TRIANGLE_CHUNK, &mut |chunk| {
                found += chunk.len() as u64;
                Ok(())
            })
    };
    once()?;
    let before = target.counters();
    let times = repeated(repeat, || timed(&mut once))?;
    let work = match target.device {
        Device::Cpu(_) => Work::cpu(None, arcs),
        Device::Gpu(_) => Work::gpu(target.counters().since(before), times.len(), arcs),
    };
    Ok(Row {
        outcome: Some(format!(
            "{found} triangles, longest oriented out-list {}",
            r.max_out_degree()
        )),
        work: Some(work),
        ..kernel_row(target, name, arcs, times)
    })
}

/// A kernel-suite row of `size` edges from the times of its runs.
fn kernel_row(target: &Target, name: &'static str, size: u64, times: Vec<f64>) -> Row {
    let info = target.backend().info();
    let runs = times.len();
    let time = median(times);
    Row {
        suite: "kernel",
        name,
        backend: info.backend.as_str(),
        adapter: info.adapter.clone(),
        size,
        time,
        throughput: size as f64 / time,
        unit: "edges/s",
        runs,
        iterations: None,
        evaluations: None,
        hessian_products: None,
        action: None,
        converged: None,
        peak_rss_bytes: None,
        outcome: None,
        work: None,
        work_per_cg_iteration: None,
        driver: target.driver(),
    }
}

/// The stages of [`analyze`] on the log at `log`, on the backend `choice` selects.
fn stage_rows(choice: DeviceChoice, log: &Path, n_rows: u64, repeat: usize) -> Result<Vec<Row>> {
    let settings = AnalyzeSettings {
        device: choice,
        ..AnalyzeSettings::default()
    };
    let inputs = [log.to_path_buf()];
    eprintln!(
        "bench: analyze {} rows, --device {}",
        count_text(n_rows),
        format!("{choice:?}").to_lowercase()
    );
    let analyses = repeated(repeat, || {
        let a = analyze(&inputs, &settings)?.pooled;
        Ok((a.timings, a.device, a.fit))
    })?;
    let (_, device, fit) = analyses.last().expect("at least one run");
    let seconds = |t: &Timings| [t.load, t.fit, t.pairs, t.cycles, t.total];
    Ok(["load", "fit", "pairs", "cycles", "total"]
        .into_iter()
        .enumerate()
        .map(|(i, name)| {
            let time = median(analyses.iter().map(|a| seconds(&a.0)[i]).collect());
            let is_fit = name == "fit";
            Row {
                suite: "stage",
                name,
                backend: device.backend.as_str(),
                adapter: device.adapter.clone(),
                size: n_rows,
                time,
                throughput: n_rows as f64 / time,
                unit: "rows/s",
                runs: analyses.len(),
                iterations: is_fit.then_some(fit.iterations),
                evaluations: is_fit.then_some(fit.evaluations),
                hessian_products: is_fit.then_some(fit.hessian_products),
                action: is_fit.then_some(fit.action),
                converged: is_fit.then_some(fit.converged),
                peak_rss_bytes: None,
                outcome: None,
                work: None,
                work_per_cg_iteration: None,
                driver: None,
            }
        })
        .collect())
}

/// Runs `once` up to `repeat` times, fewer once the runs together have taken [`RUN_BUDGET`].
fn repeated<T>(repeat: usize, mut once: impl FnMut() -> Result<T>) -> Result<Vec<T>> {
    let start = Instant::now();
    let mut results = Vec::with_capacity(repeat);
    while results.len() < repeat && (results.is_empty() || start.elapsed() < RUN_BUDGET) {
        results.push(once()?);
    }
    Ok(results)
}

/// Seconds one call of `f` takes.
fn timed(f: &mut impl FnMut() -> Result<()>) -> Result<f64> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed().as_secs_f64())
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    if xs.len() % 2 == 1 {
        xs[mid]
    } else {
        0.5 * (xs[mid - 1] + xs[mid])
    }
}

/// Writes the complete directed graph on `states` states (`s0 … s{n−1}`, every ordered pair once,
/// no self-transitions) with counts uniform in 1..=100 from a fixed-seed RNG, as a transitions
/// Parquet file (`source`, `target`, `count`).
pub fn write_dense_log(states: u64, seed: u64, path: &Path) -> Result<()> {
    use arrow::array::{ArrayRef, StringArray, UInt64Array};
    use arrow::record_batch::RecordBatch;
    use parquet::arrow::ArrowWriter;
    let write_err = |e: &dyn std::fmt::Display| Error::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let names: Vec<String> = (0..states).map(|i| format!("s{i}")).collect();
    let file = std::fs::File::create(path).map_err(|e| write_err(&e))?;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut writer: Option<ArrowWriter<std::fs::File>> = None;
    let mut file = Some(file);
    // One row group per block of sources (about a million rows).
    let per_batch = (1_000_000 / states).max(1);
    for first in (0..states).step_by(per_batch as usize) {
        let last = (first + per_batch).min(states);
        let (mut source, mut target, mut count) = (Vec::new(), Vec::new(), Vec::new());
        for f in first..last {
            for g in (0..states).filter(|&g| g != f) {
                source.push(names[f as usize].as_str());
                target.push(names[g as usize].as_str());
                count.push(rng.random_range(1..=100u64));
            }
        }
        let batch = RecordBatch::try_from_iter([
            (
                "source",
                std::sync::Arc::new(StringArray::from(source)) as ArrayRef,
            ),
            (
                "target",
                std::sync::Arc::new(StringArray::from(target)) as ArrayRef,
            ),
            (
                "count",
                std::sync::Arc::new(UInt64Array::from(count)) as ArrayRef,
            ),
        ])
        .map_err(|e| write_err(&e))?;
        if writer.is_none() {
            let f = file.take().expect("opened once");
            writer =
                Some(ArrowWriter::try_new(f, batch.schema(), None).map_err(|e| write_err(&e))?);
        }
        let w = writer.as_mut().expect("created");
        w.write(&batch).map_err(|e| write_err(&e))?;
        w.flush().map_err(|e| write_err(&e))?;
    }
    writer
        .expect("at least one batch")
        .close()
        .map_err(|e| write_err(&e))?;
    Ok(())
}

/// The dense suite: per size, the complete graph written (not timed), then `detbal analyze` on
/// it in a child process (this executable) with resampling off, as in the stage suite; its wall
/// time and peak RSS (`wait4`'s `ru_maxrss`), and the cycles it enumerated and listed from its
/// report.json, or the error line it stopped with.
fn dense_rows(targets: &[Target], states: &[u64]) -> Result<Vec<Row>> {
    let dir = ScratchDir::new()?;
    let exe = std::env::current_exe().map_err(|e| Error::settings(e.to_string()))?;
    let mut rows = Vec::new();
    for &n in states {
        let log = dir.0.join(format!("dense-{n}.parquet"));
        eprintln!("bench: writing the complete graph of {n} states (not timed)");
        write_dense_log(n, SEED, &log)?;
        for target in targets {
            let device = format!("{:?}", target.choice).to_lowercase();
            let out = dir.0.join(format!("out-{n}-{device}"));
            eprintln!("bench: analyze the complete graph of {n} states, --device {device}");
            let run = run_child(
                &exe,
                &[
                    "analyze".as_ref(),
                    log.as_os_str(),
                    "-o".as_ref(),
                    out.as_os_str(),
                    "--device".as_ref(),
                    device.as_ref(),
                    "--permutations".as_ref(),
                    "0".as_ref(),
                    "--bootstrap".as_ref(),
                    "0".as_ref(),
                ],
                &dir.0.join(format!("stderr-{n}-{device}")),
            )?;
            let outcome = if run.success {
                let report: serde_json::Value = std::fs::read(out.join("report.json"))
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or_default();
                let cycles = &report["cycles"];
                let stage = |name: &str| report["timings"][name].as_f64().unwrap_or(f64::NAN);
                format!(
                    "{} triangles, {} listed; stages: cycles {:.2} s, fit {:.2} s, verdict {:.2} s",
                    cycles["triangles"],
                    cycles["listed"],
                    stage("cycles"),
                    stage("fit"),
                    stage("verdict")
                )
            } else {
                format!("stopped: {}", run.error_line)
            };
            let mut outcome = outcome;
            if run.seconds > DENSE_BUDGET.as_secs_f64() || run.peak_rss > DENSE_MEMORY_BUDGET {
                outcome.push_str(" (over the 60 s / 4 GiB budget)");
            }
            let edges = n * (n - 1);
            let backend = report_backend(&out).unwrap_or(target.backend().info().backend.as_str());
            rows.push(Row {
                suite: "dense",
                name: "analyze",
                backend,
                adapter: target.backend().info().adapter.clone(),
                size: edges,
                time: run.seconds,
                throughput: edges as f64 / run.seconds,
                unit: "edges/s",
                runs: 1,
                iterations: None,
                evaluations: None,
                hessian_products: None,
                action: None,
                converged: None,
                peak_rss_bytes: Some(run.peak_rss),
                outcome: Some(outcome),
                work: None,
                work_per_cg_iteration: None,
                driver: None,
            });
        }
    }
    Ok(rows)
}

fn report_backend(out: &Path) -> Option<&'static str> {
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).ok()?).ok()?;
    match report["device"]["backend"].as_str()? {
        "gpu" => Some("gpu"),
        _ => Some("cpu"),
    }
}

/// A finished child: wall seconds, peak RSS (bytes), success, and its last `error:` line.
struct ChildRun {
    seconds: f64,
    peak_rss: u64,
    success: bool,
    error_line: String,
}

/// Runs `exe args` with stderr to `stderr`, reaps it with `wait4` for its own peak RSS, and
/// kills it after [`DENSE_KILL`].
fn run_child(exe: &Path, args: &[&std::ffi::OsStr], stderr: &Path) -> Result<ChildRun> {
    let io = |e: std::io::Error| Error::Write {
        path: stderr.to_path_buf(),
        message: e.to_string(),
    };
    let log = std::fs::File::create(stderr).map_err(io)?;
    let start = Instant::now();
    let child = std::process::Command::new(exe)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(io)?;
    let pid = child.id() as libc::pid_t;
    let mut killed = false;
    let (status, usage) = loop {
        let mut status = 0;
        // SAFETY: a zeroed rusage is a valid out-parameter; pid is our own child.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let got = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if got == pid {
            break (status, usage);
        }
        if got < 0 {
            return Err(io(std::io::Error::last_os_error()));
        }
        if !killed && start.elapsed() > DENSE_KILL {
            // SAFETY: signalling our own, not yet reaped, child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let seconds = start.elapsed().as_secs_f64();
    let success = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    let text = std::fs::read_to_string(stderr).unwrap_or_default();
    let error_line = if killed {
        format!("killed after {} s", DENSE_KILL.as_secs())
    } else {
        text.lines()
            .rfind(|l| l.starts_with("error:"))
            .unwrap_or("no error line")
            .to_string()
    };
    Ok(ChildRun {
        seconds,
        peak_rss: usage.ru_maxrss as u64 * 1024,
        success,
        error_line,
    })
}

/// A fresh directory under the system's temporary directory, removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> Result<Self> {
        let path = std::env::temp_dir().join(format!("detbal-bench-{}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|e| Error::Write {
            path: path.clone(),
            message: e.to_string(),
        })?;
        Ok(ScratchDir(path))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The rows as an aligned text table, one line per row.
pub fn table(rows: &[Row]) -> String {
    let header = [
        "suite",
        "kernel/stage",
        "backend",
        "adapter",
        "size",
        "time",
        "throughput",
        "runs",
        "notes",
    ];
    // Right-aligned: size, time, throughput, runs.
    let right = [false, false, false, false, true, true, true, true, false];
    let cells: Vec<[String; 9]> = rows
        .iter()
        .map(|r| {
            [
                r.suite.to_string(),
                r.name.to_string(),
                r.backend.to_string(),
                r.adapter.clone(),
                format!("{} {}", count_text(r.size), r.unit.trim_end_matches("/s")),
                time_text(r.time),
                format!("{:.2e} {}", r.throughput, r.unit),
                r.runs.to_string(),
                notes(r),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for line in &cells {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in std::iter::once(header.map(String::from)).chain(cells) {
        let mut text = String::new();
        for (i, cell) in line.iter().enumerate() {
            let pad = " ".repeat(widths[i] - cell.chars().count());
            let cell = if right[i] {
                format!("{pad}{cell}")
            } else {
                format!("{cell}{pad}")
            };
            text.push_str(&cell);
            text.push_str("  ");
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// The notes column: iterations and evaluations per run, the fit's action.
fn notes(r: &Row) -> String {
    let mut parts = Vec::new();
    if let (Some(i), Some(e), Some(h)) = (r.iterations, r.evaluations, r.hessian_products) {
        parts.push(format!(
            "{i} Newton steps, {} passes ({e} evaluations + {h} Hessian products)",
            e + h
        ));
    }
    if let Some(action) = r.action {
        parts.push(format!("action {action:.6e}"));
    }
    if r.converged == Some(false) {
        parts.push("not converged".into());
    }
    if let Some(bytes) = r.peak_rss_bytes {
        parts.push(format!(
            "peak RSS {:.0} MiB",
            bytes as f64 / (1u64 << 20) as f64
        ));
    }
    if let Some(outcome) = &r.outcome {
        parts.push(outcome.clone());
    }
    match (&r.work, &r.work_per_cg_iteration) {
        (Some(w), Some(cg)) => parts.push(format!(
            "{} per Newton step, {} per CG iteration",
            work_text(w),
            work_text(cg)
        )),
        (Some(w), None) => parts.push(format!("{} per call", work_text(w))),
        _ => {}
    }
    parts.join(", ")
}

/// Device work per call: read-backs, dispatches and estimated bytes per edge.
fn work_text(w: &Work) -> String {
    let bytes = w
        .bytes_per_edge
        .map_or(String::new(), |b| format!(", {b:.0} B/edge"));
    format!(
        "{:.2} read-backs, {:.1} dispatches{bytes}",
        w.readbacks, w.dispatches
    )
}

/// `1e6`, `2.5e6` for counts from 1,000 on; plain below.
fn count_text(n: u64) -> String {
    if n < 1000 {
        n.to_string()
    } else {
        format!("{:e}", n as f64)
    }
}

/// Seconds with three significant digits in s, ms or µs.
fn time_text(seconds: f64) -> String {
    let (value, unit) = if seconds >= 1.0 {
        (seconds, "s")
    } else if seconds >= 1e-3 {
        (seconds * 1e3, "ms")
    } else {
        (seconds * 1e6, "µs")
    };
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.decimals$} {unit}")
}

/// Writes the rows as a JSON array to `path`, through a temporary file and a rename.
pub fn write_json(rows: &[Row], path: &Path) -> Result<()> {
    let json = serde_json::to_vec_pretty(rows).expect("rows serialise");
    crate::report::atomic::write_atomic(path, |mut f| {
        std::io::Write::write_all(&mut f, &json).map_err(|e| e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_parse_plainly_and_in_e_notation() {
        assert_eq!(parse_count("250000"), Ok(250_000));
        assert_eq!(parse_count("1e6"), Ok(1_000_000));
        assert_eq!(parse_count("2.5e3"), Ok(2_500));
        for bad in ["0", "-1", "1.5", "1e-3", "x", "1e30"] {
            assert!(parse_count(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn medians_and_texts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(count_text(10_000_000), "1e7");
        assert_eq!(count_text(25_000), "2.5e4");
        assert_eq!(count_text(500), "500");
        assert_eq!(time_text(0.0123), "12.3 ms");
        assert_eq!(time_text(2.5e-6), "2.50 µs");
        assert_eq!(time_text(123.4), "123 s");
    }

    #[test]
    fn the_synthetic_problem_is_reproducible_and_hub_heavy() {
        let (a, v) = synthetic_problem(10_000, 7);
        let (b, _) = synthetic_problem(10_000, 7);
        assert_eq!((a.src.clone(), a.dst.clone()), (b.src, b.dst));
        assert_eq!((a.n_states, v.len()), (1_000, 1_000));
        // State 0 receives about n^(−1/3) = 10 % of all targets.
        let to_zero = a.dst.iter().filter(|&&d| d == 0).count();
        assert!((800..1200).contains(&to_zero), "{to_zero}");
    }
}
