//! Synthetic transition logs with a planted potential, for testing recovery with a known answer.
//!
//! Why: the analysis estimates a potential `V` and tests detailed balance; on real agent logs
//! the answer is unknown. Here the Markov kernel `T` is built explicitly, so the planted `V`, the
//! planted drive `D` and every cycle affinity are exact, and the truth sidecar says what a perfect
//! analysis would recover.
//!
//! # Model
//! States `s0 … s{n-1}` live on a connected sparse undirected graph with popularity `p(f)`:
//! a spanning tree (in order of decreasing `p`, each state attaches to an earlier one drawn ∝ `p`),
//! `triangles · n` planted triangles (a uniform state and two drawn ∝ `p`, so that 3-cycles exist),
//! then extra edges (a uniform state and one drawn ∝ `p`) until the mean degree reaches
//! `mean_degree`. With `p ≡ 1` every endpoint is uniform; with heavy-tailed `p`, hubs appear.
//! The walk is Metropolis–Hastings: propose a neighbour `g` of `f` with `q(f→g) = p(g) / W(f)`,
//! `W(f) = Σ_{h ~ f} p(h)`, accept with
//!
//! ```text
//! a(f→g) = min(1, exp(V(f) − V(g) + D(f,g)) · q(g→f) / q(f→g)),   q(g→f)/q(f→g) = p(f) W(f) / (p(g) W(g))
//! ```
//!
//! and stay on rejection (a self-transition). Hence, exactly,
//!
//! ```text
//! log T(f→g) / T(g→f) = V(f) − V(g) + D(f,g),        π(f) ∝ exp(−V(f)) when D = 0,
//! ```
//!
//! and the affinity of the cycle `a→b→c→a` is `D(a,b) + D(b,c) + D(c,a)`. The kernel rows
//! (`T(f→g)` for each neighbour, `T(f→f) = 1 − Σ_g T(f→g)`) are tabulated and sampled with one
//! alias table per state.
//!
//! # Modes
//! - [`SimMode::Reversible`]: `p ≡ 1` (uniform proposal, acceptance `min(1, e^{V(f)−V(g)} deg f / deg g)`),
//!   `V ~ N(0, vscale²)`, `D = 0`.
//! - [`SimMode::Driven`]: as reversible, plus `D = +drive` on each edge along a random orientation of
//!   a fraction `drive_fraction` of the planted triangles (chosen edge-disjoint), so each driven
//!   triangle has affinity `3 · drive`; all other edges have `D = 0`.
//! - [`SimMode::LlmLike`]: heavy-tailed popularity `p ~ Pareto(pareto)` (proposal ∝ `p`, hubs
//!   through the popularity-weighted edges), `V = vscale · z − coupling · ln p`, `z ~ N(0, 1)`, so
//!   `π ∝ p^coupling · e^{−vscale z}`; the `attractors` most popular states are lowered further by
//!   `attractor_depth · vscale` (long self-transition runs there). With `coupling` above `pareto`
//!   the mass sits on a few hubs and a walk leaves a rare state at once; runs start uniformly over
//!   all states, so many states are seen only once or twice. Still reversible: detailed balance
//!   holds exactly.
//! - [`SimMode::LlmHard`]: llm-like with `coupling = 1` (the proposal ∝ `p` nearly matches the
//!   target ∝ `p`, so few proposals are rejected and walks roam), Pareto 2 popularity (heavy-tailed
//!   degrees, popular states revisited from many places), `vscale` 0.5, 300,000 states and runs of
//!   mean length 50: at 10⁶ rows about 172,000 states, 354,000 edges and one strongly connected
//!   component of about 152,000 states (seed 1). The fit's hard case: BENCHMARKS.md.
//!
//! `V` is mean-centred over all states. Runs (trajectories) have geometric length with mean `run_len`
//! and start from a uniform random state; one row = one step `source → target`.
//!
//! # Output
//! Parquet (snappy, written in record batches) with columns `run` (UInt64), `source`, `target`
//! (Utf8) and, when `groups > 1`, `group` (Utf8 `g0`, `g1`, …). Groups share the graph, the
//! popularity, the attractors and the drive, and split the rows evenly; each draws its own `z`
//! unless `shared_potential`. The JSON truth sidecar is described at [`Truth`].
//!
//! Determinism: the output depends only on the parameters (the seed included), not on the thread
//! count: each batch of whole runs has its own random stream derived from the seed.
//!
//! ```
//! use detbal::simulate::{read_truth, simulate, SimMode, SimParams};
//! let dir = tempfile::tempdir().unwrap();
//! let (log, truth) = (dir.path().join("log.parquet"), dir.path().join("truth.json"));
//! let mut params = SimParams::new(SimMode::Driven);
//! params.rows = 5_000;
//! params.states = 40;
//! let summary = simulate(&params, &log, &truth).unwrap();
//! assert_eq!(summary.rows, 5_000);
//! let truth = read_truth(&truth).unwrap();
//! assert!(truth.drive.triangles.iter().all(|t| (t.affinity - 3.0 * params.drive).abs() < 1e-12));
//! ```

mod model;
mod output;
mod truth;

pub use truth::{Drive, GraphInfo, PlantedCycle, Truth, TruthStats, read_truth};

use crate::error::{Error, Result};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// Which planted model to simulate (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SimMode {
    /// Detailed balance holds exactly; uniform proposal over neighbours.
    Reversible,
    /// Reversible plus a non-conservative drive on some planted triangles.
    Driven,
    /// Reversible, with heavy-tailed popularity, deep attractors and a long tail of rare states.
    LlmLike,
    /// llm-like with walks that roam: a giant strongly connected component with heavy-tailed
    /// degrees (the fit's hard case).
    LlmHard,
}

/// Parameters of a simulation; [`SimParams::new`] gives the defaults of a mode.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SimParams {
    pub mode: SimMode,
    /// Total number of rows (transitions), split evenly over the groups.
    pub rows: u64,
    /// Number of states `n`.
    pub states: u32,
    pub seed: u64,
    /// Mean run length in rows (geometric, at least 1).
    pub run_len: f64,
    /// Scale of the random part of `V`: `vscale · z`, `z ~ N(0, 1)`.
    pub vscale: f64,
    /// Target mean degree of the undirected graph (the tree and triangles may exceed it).
    pub mean_degree: f64,
    /// Planted triangles per state.
    pub triangles: f64,
    /// `D` per edge along a driven triangle; its affinity is `3 · drive` (driven mode only).
    pub drive: f64,
    /// Fraction of the planted triangles that are driven (driven mode only).
    pub drive_fraction: f64,
    /// Number of attractors: the most popular states (ties broken at random).
    pub attractors: u32,
    /// Attractors have `V` lowered by `attractor_depth · vscale`.
    pub attractor_depth: f64,
    /// Pareto exponent of the popularity `p`; 0 means `p ≡ 1` (uniform proposal).
    pub pareto: f64,
    /// `V` gets `− coupling · ln p`: popular states are also low-potential states.
    pub coupling: f64,
    /// Number of groups; above 1 a `group` column is written.
    pub groups: u32,
    /// All groups share one potential instead of drawing their own.
    pub shared_potential: bool,
}

impl SimParams {
    /// The defaults of `mode`: 10⁶ rows, runs of mean length 20, `vscale` 1; reversible and
    /// driven: 200 states, mean degree 10, one triangle per state, uniform popularity (driven:
    /// `drive` 1.5 on 20 % of the triangles); llm-like: 50,000 states, mean degree 8, 0.5
    /// triangles per state, Pareto 1.3 popularity with coupling 2, 5 attractors of depth 4;
    /// llm-hard: as llm-like with 300,000 states, Pareto 2 with coupling 1, `vscale` 0.5 and runs
    /// of mean length 50.
    pub fn new(mode: SimMode) -> Self {
        let base = SimParams {
            mode,
            rows: 1_000_000,
            states: 200,
            seed: 1,
            run_len: 20.0,
            vscale: 1.0,
            mean_degree: 10.0,
            triangles: 1.0,
            drive: 0.0,
            drive_fraction: 0.0,
            attractors: 0,
            attractor_depth: 4.0,
            pareto: 0.0,
            coupling: 0.0,
            groups: 1,
            shared_potential: false,
        };
        match mode {
            SimMode::Reversible => base,
            SimMode::Driven => SimParams {
                drive: 1.5,
                drive_fraction: 0.2,
                ..base
            },
            SimMode::LlmLike => SimParams {
                states: 50_000,
                mean_degree: 8.0,
                triangles: 0.5,
                attractors: 5,
                pareto: 1.3,
                coupling: 2.0,
                ..base
            },
            SimMode::LlmHard => SimParams {
                states: 300_000,
                mean_degree: 8.0,
                triangles: 0.5,
                attractors: 5,
                pareto: 2.0,
                coupling: 1.0,
                vscale: 0.5,
                run_len: 50.0,
                ..base
            },
        }
    }

    /// Checks every parameter; the error names the parameter and the accepted range.
    pub fn validate(&self) -> Result<()> {
        let n = f64::from(self.states);
        if self.rows == 0 {
            return out_of_range("rows", &self.rows, "at least 1");
        }
        if self.states < 3 {
            return out_of_range("states", &self.states, "at least 3");
        }
        if !(self.run_len >= 1.0 && self.run_len <= 1e6) {
            return out_of_range("run_len", &self.run_len, "a mean run length in [1, 1e6]");
        }
        if !(self.vscale.is_finite() && self.vscale >= 0.0) {
            return out_of_range("vscale", &self.vscale, "a finite value ≥ 0");
        }
        if !(self.mean_degree >= 0.0 && self.mean_degree <= n - 1.0) {
            let range = format!("a value in [0, states − 1] = [0, {}]", self.states - 1);
            let fewest = self.mean_degree.ceil() + 1.0;
            return out_of_range("mean_degree", &self.mean_degree, &range).map_err(|error| {
                match fewest.is_finite() && fewest <= f64::from(u32::MAX) {
                    true => error.hint(format!(
                        "each state has {} neighbours on average in this mode: --states {fewest} \
                         or more has room for them",
                        self.mean_degree
                    )),
                    false => error,
                }
            });
        }
        if !(self.triangles >= 0.0 && self.triangles <= 100.0) {
            return out_of_range(
                "triangles",
                &self.triangles,
                "triangles per state in [0, 100]",
            );
        }
        self.check_drive()?;
        if self.attractors > self.states {
            return out_of_range(
                "attractors",
                &self.attractors,
                "at most the number of states",
            );
        }
        if !(self.attractor_depth.is_finite() && self.attractor_depth >= 0.0) {
            return out_of_range(
                "attractor_depth",
                &self.attractor_depth,
                "a finite value ≥ 0",
            );
        }
        if !(self.pareto.is_finite() && self.pareto >= 0.0) {
            return out_of_range(
                "pareto",
                &self.pareto,
                "an exponent > 0, or 0 for uniform popularity",
            );
        }
        if !self.coupling.is_finite() {
            return out_of_range("coupling", &self.coupling, "a finite value");
        }
        if self.groups == 0 || u64::from(self.groups) > self.rows {
            return out_of_range("groups", &self.groups, "between 1 and the number of rows");
        }
        Ok(())
    }

    /// The drive's parameters, and the rule that there is a drive exactly in driven mode.
    fn check_drive(&self) -> Result<()> {
        if !(self.drive.is_finite() && self.drive >= 0.0) {
            return out_of_range("drive", &self.drive, "a finite value ≥ 0");
        }
        if !(0.0..=1.0).contains(&self.drive_fraction) {
            return out_of_range(
                "drive_fraction",
                &self.drive_fraction,
                "a fraction in [0, 1]",
            );
        }
        let driving = self.drive > 0.0 && self.drive_fraction > 0.0;
        if self.mode == SimMode::Driven && !(driving && self.triangles > 0.0) {
            return Err(Error::settings(
                "simulate: driven mode needs drive > 0, drive_fraction > 0 and triangles > 0",
            )
            .hint("use --mode reversible for a log without drive"));
        }
        if self.mode != SimMode::Driven && driving {
            return Err(Error::settings(format!(
                "simulate: drive is only used in driven mode, not in {:?}",
                self.mode
            ))
            .hint("use --mode driven, or set drive or drive_fraction to 0"));
        }
        Ok(())
    }

    /// About the bytes of the model (graph, kernel rows, alias tables), from the states and the
    /// mean degree: the peak was 322–328 B per state at mean degree 10 and 273–283 B at 8 (1e6
    /// and 4e6 states).
    fn model_bytes(&self) -> f64 {
        f64::from(self.states) * (32.0 + 30.0 * self.mean_degree)
    }
}

/// The error of the parameter `name` out of its range.
fn out_of_range(name: &str, value: &dyn std::fmt::Display, expected: &str) -> Result<()> {
    Err(Error::settings(format!(
        "simulate: {name} = {value}, expected {expected}"
    )))
}

/// What [`simulate`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct SimSummary {
    pub rows: u64,
    pub runs: u64,
    /// States that appear in at least one row (as source or target).
    pub states_seen: u64,
    /// Rows with `source == target`.
    pub self_rows: u64,
    /// Wall-clock time of the whole simulation, writing included.
    pub seconds: f64,
}

/// Simulates `params` (validated first), writes the log to `parquet_out` and the truth sidecar
/// (JSON) to `truth_out`.
pub fn simulate(params: &SimParams, parquet_out: &Path, truth_out: &Path) -> Result<SimSummary> {
    let start = Instant::now();
    params.validate()?;
    let (needed, available) = (params.model_bytes(), crate::system::available_memory());
    if let Some(available) = available.filter(|&a| needed > a) {
        return Err(Error::settings(format!(
            "simulate: states = {} need about {:.1} GiB for the kernel's tables, more than the \
             {:.1} GiB of memory available",
            params.states,
            crate::system::gib(needed),
            crate::system::gib(available),
        )));
    }
    let model = model::Model::build(params);
    let stats = output::write_log(params, &model, parquet_out)?;
    truth::write(&truth::Truth::new(params, &model, stats.clone()), truth_out)?;
    Ok(SimSummary {
        rows: stats.rows,
        runs: stats.runs,
        states_seen: stats.states_seen,
        self_rows: stats.self_rows,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Independent random streams, one per purpose, all derived from the seed.
#[derive(Clone, Copy)]
enum Stream {
    Graph,
    Drive,
    Potential(u32),
    Layout(u32),
    Batch(u32, u64),
}

fn rng(seed: u64, stream: Stream) -> Xoshiro256PlusPlus {
    let parts = match stream {
        Stream::Graph => [1, 0, 0],
        Stream::Drive => [2, 0, 0],
        Stream::Potential(group) => [3, u64::from(group), 0],
        Stream::Layout(group) => [4, u64::from(group), 0],
        Stream::Batch(group, batch) => [5, u64::from(group), batch],
    };
    let key = parts.iter().fold(seed, |h, &x| splitmix64(h ^ x));
    Xoshiro256PlusPlus::seed_from_u64(key)
}

/// The SplitMix64 output function: a bijective 64-bit mixer.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
