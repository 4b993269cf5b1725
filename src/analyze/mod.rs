//! The analysis of one transition graph, one direction: graph → fit → tests → [`Analysis`].
//! Settings arrive validated; nothing here reads flags or files. Loading the inputs, choosing
//! the backend and the per-group analyses are [`crate::pipeline`]'s.
//!
//! Each stage is one function below; the resampling stage, `--verify` and the finiteness check
//! of every reported number are submodules. The stages that need the potential (fit, pairs) and
//! those that do not (verdict, cycles, fluxes) run on two threads at once on the CPU backend
//! ([`both_paths`]), so their [`Timings`] overlap: each is the stage's own wall-clock time.

mod finite;
mod interrupt;
mod resampling;
mod verify;

pub use interrupt::Interrupt;

use crate::backend::verify::KernelDeviation;
use crate::backend::{Backend, BackendKind, DeviceChoice, DeviceInfo};
use crate::error::Result;
use crate::fit::{self, FitReport, FitSettings, Potential};
use crate::graph::{ComponentSummary, StateOrder, TransitionGraph, strongly_connected_components};
use crate::io::{InputSummary, LoadOptions};
use crate::progress;
use crate::stats::attractors::{self, Attractor};
use crate::stats::cycles::{self, CycleScan, CycleSettings, CycleTest, Squares, Triangle};
use crate::stats::detailed_balance::{self, Pair, PairSettings, PairTest};
use crate::stats::distribution::{self, PotentialDistribution};
use crate::stats::entropy::{self, EntropyProduction};
use crate::stats::permutation::{Resampling, ResamplingSettings};
use crate::stats::quasi_symmetry::{self, QuasiSymmetryTest, SplitResidual, VerdictSettings};
use crate::stats::schnakenberg::FundamentalCycle;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::Instant;

#[derive(Debug, Clone, serde::Serialize)]
pub struct AnalyzeSettings {
    #[serde(skip)]
    pub load: LoadOptions,
    pub fit: FitSettings,
    pub pairs: PairSettings,
    pub cycles: CycleSettings,
    pub device: DeviceChoice,
    /// Significance level of the verdict.
    pub alpha: f64,
    /// Calibration of the verdict's test (parametric bootstrap with sequential stopping).
    pub verdict: VerdictSettings,
    /// Reproduce the reference code's choices.
    pub paper: bool,
    /// Run the kernels on the CPU too and compare (`--verify`).
    pub verify: bool,
    /// `--state-score`: per-state scores for the landscape (read by [`crate::pipeline`]).
    pub state_score: Option<std::path::PathBuf>,
    /// Monte Carlo tests, bootstrap and held-out check; the default runs none (the CLI's
    /// defaults are `--permutations 10000 --bootstrap 200`).
    pub resampling: ResamplingSettings,
    /// Asked after each stage whether to stop (the Python package's Ctrl-C); never by default.
    #[serde(skip)]
    pub interrupt: Interrupt,
}

impl AnalyzeSettings {
    /// The load's settings with the states numbered as the analysis runs on them: by name,
    /// or by first appearance under `--paper` ([`analyze_graph`]).
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            state_order: match self.paper {
                true => StateOrder::FirstAppearance,
                false => StateOrder::Name,
            },
            ..self.load.clone()
        }
    }
}

impl Default for AnalyzeSettings {
    fn default() -> Self {
        AnalyzeSettings {
            load: LoadOptions::default(),
            fit: FitSettings::default(),
            pairs: PairSettings::default(),
            cycles: CycleSettings::default(),
            device: DeviceChoice::Auto,
            alpha: 0.01,
            verdict: VerdictSettings::default(),
            paper: false,
            verify: false,
            state_score: None,
            resampling: ResamplingSettings {
                permutations: 0,
                bootstrap: 0,
                ..ResamplingSettings::default()
            },
            interrupt: Interrupt::default(),
        }
    }
}

/// Wall-clock seconds per stage, each the stage's own. On the CPU backend fit and pairs run
/// beside verdict, cycles and fluxes, so these overlap and need not add up to `total`, the
/// whole run's.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Timings {
    pub load: f64,
    pub fit: f64,
    pub pairs: f64,
    /// The verdict's test and its calibration.
    pub verdict: f64,
    /// Cycle enumeration and tests.
    pub cycles: f64,
    /// Schnakenberg decomposition and entropy production.
    pub fluxes: f64,
    /// Resampling tests, bootstrap and held-out check.
    pub resampling: f64,
    /// The per-group analyses of `--group-by` (each group's stages are in its own timings).
    pub groups: f64,
    pub total: f64,
}

/// Everything one analysis computed.
pub struct Analysis {
    pub settings: AnalyzeSettings,
    pub input: InputSummary,
    pub graph: TransitionGraph,
    /// The graph's strongly connected components, counted.
    pub strong_components: ComponentSummary,
    pub device: DeviceInfo,
    pub potential: Potential,
    pub fit: FitReport,
    /// The histogram of V and its Gaussian fits (the paper's figure as numbers).
    pub potential_distribution: Option<PotentialDistribution>,
    pub pairs: Vec<Pair>,
    pub pair_test: PairTest,
    /// The verdict's test: quasi-symmetry of the pair splits, calibrated.
    pub verdict_test: QuasiSymmetryTest,
    /// Each tested pair's fitted split and standardised residual.
    pub splits: Vec<SplitResidual>,
    /// The per-cycle table: every reciprocal triangle, or the `--max-cycles` most significant
    /// (see [`cycles::cycle_test`]).
    pub triangles: Vec<Triangle>,
    pub cycle_test: CycleTest,
    /// Chordless reciprocal 4-cycles, with `--max-cycle-len 4`.
    pub squares: Option<Squares>,
    pub entropy: EntropyProduction,
    /// Schnakenberg's fundamental cycles of the stationary flux of the estimated kernel.
    pub fundamental_cycles: Vec<FundamentalCycle>,
    /// Local minima of the potential, ranked (see [`attractors`]).
    pub attractors: Vec<Attractor>,
    /// GPU–CPU deviations per kernel, with `--verify`.
    pub verification: Option<Vec<KernelDeviation>>,
    /// Monte Carlo tests (with their null samples), bootstrap and held-out check; `None` when
    /// all are off.
    pub resampling: Option<Resampling>,
    /// Each state's `--state-score` (`None` for states without one); attached by
    /// [`crate::pipeline`], nothing is computed from it.
    pub state_score: Option<Vec<Option<f64>>>,
    pub timings: Timings,
}

/// The verdict's test, its per-pair residuals and the fitted splits the entropy's null uses.
struct VerdictStage {
    test: QuasiSymmetryTest,
    splits: Vec<SplitResidual>,
    fitted: quasi_symmetry::FittedSplits,
}

/// The analysis of an already loaded graph on a given backend.
pub fn analyze_graph(
    graph: TransitionGraph,
    input: InputSummary,
    backend: &dyn Backend,
    settings: &AnalyzeSettings,
    load_seconds: f64,
    start: Instant,
) -> Result<Analysis> {
    let mut timings = Timings {
        load: load_seconds,
        ..Default::default()
    };
    // Results must not depend on the order of the rows: states in name order (as loaded with
    // [`AnalyzeSettings::load_options`], or renumbered here), except that `--paper` keeps the
    // reference's first-appearance order (its `r` depends on it).
    let graph = if settings.paper {
        graph
    } else {
        graph.canonical()
    };
    // A graph too dense for the cycle test is said before any stage runs.
    cycles::check_triangle_limit(&graph, &settings.cycles)?;
    let (potential_path, free_path) = both_paths(&graph, backend, settings, &mut timings)?;
    let PotentialPath {
        potential,
        fit,
        pairs,
        pair_test,
    } = potential_path;
    let FreePath {
        strong_components,
        verdict,
        scan,
        squares,
        entropy,
        fundamental_cycles,
    } = free_path;
    let stop = &settings.interrupt;
    let attractors = attractors::attractors(&graph, &potential);
    let potential_distribution = distribution::potential_distribution(&graph, &potential);
    // Refits use the ridge the fit chose.
    let resolved = &AnalyzeSettings {
        fit: settings.fit.with_l2(fit.l2),
        ..settings.clone()
    };
    let resampling = timed(stop, "resampling", &mut timings.resampling, || {
        resampling::run(&graph, &potential, backend, resolved)
    })?;
    let verification = settings
        .verify
        .then(|| verify::kernels(&graph, &potential, &verdict.fitted, backend, resolved))
        .transpose()?;
    timings.total = start.elapsed().as_secs_f64();
    let analysis = Analysis {
        settings: settings.clone(),
        input,
        graph,
        strong_components,
        device: backend.info().clone(),
        potential,
        fit,
        potential_distribution,
        pairs,
        pair_test,
        verdict_test: verdict.test,
        splits: verdict.splits,
        triangles: scan.triangles,
        cycle_test: scan.test,
        squares,
        entropy,
        fundamental_cycles,
        attractors,
        verification,
        resampling,
        state_score: None,
        timings,
    };
    finite::check(&analysis)?;
    Ok(analysis)
}

/// Runs one stage, storing its wall-clock seconds in `seconds` and saying them in a `tracing`
/// event (the stage's own event carries its numbers); then asks `stop` whether to go on.
fn timed<T>(
    stop: &Interrupt,
    stage: &str,
    seconds: &mut f64,
    run: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let t = Instant::now();
    let out = run();
    *seconds = t.elapsed().as_secs_f64();
    tracing::info!(stage, seconds = *seconds, "done");
    let out = out?;
    stop.check(stage)?;
    Ok(out)
}

/// What the stages that need the potential computed: the fit and the pair test.
struct PotentialPath {
    potential: Potential,
    fit: FitReport,
    pairs: Vec<Pair>,
    pair_test: PairTest,
}

/// What the stages that do not need it computed: the graph's components, the verdict, the cycle
/// test and the fluxes (which reuse the verdict's fitted splits; their kept refits are released
/// afterwards).
struct FreePath {
    strong_components: ComponentSummary,
    verdict: VerdictStage,
    scan: CycleScan,
    squares: Option<Squares>,
    entropy: EntropyProduction,
    fundamental_cycles: Vec<FundamentalCycle>,
}

/// Runs the potential path (fit → pairs) and the potential-free path (verdict → cycles →
/// fluxes) on two threads when the backend is the CPU, rayon has two or more threads and the graph
/// has at most [`OVERLAP_MAX_EDGES`] edges; else one after the other. With one thread there is no
/// core to gain and the two working sets would only be held at once. On a GPU the kernels of both
/// paths would share one device: a device lost under one path's read-back panics inside wgpu
/// while the other creates a buffer (seen with `DETBAL_GPU_FAULT=device-lost`), and the device
/// would hold both working sets.
///
/// The results are the same bits either way: no stage reads the other path's output, and each is
/// deterministic on its own. An error is the one of the first failing stage in the sequential
/// order fit, pairs, verdict, cycles, fluxes: the potential path's wins. Each path stops after a
/// stage when `settings.interrupt` asked to (asked on the calling thread only: after each of its
/// stages and while it waits); a failed potential path also stops the other at its next stage,
/// as its result would be discarded.
///
/// The potential path's parallel loops run in a pool of their own (as many threads as the
/// global one; the paths run one after the other if it cannot be started): in the shared pool
/// a fit's loop waited behind whole batches of the fluxes' null solves.
///
/// The free path runs on the calling thread and the potential path on a new one: the verdict's
/// working set is the larger, and on the loading thread it reuses the heap the load freed. The
/// other way round, the 1e8-row llm-like log with the least-action fit (then overlapped) peaked
/// at 875 MiB, this way at 811–818 MiB.
fn both_paths(
    graph: &TransitionGraph,
    backend: &dyn Backend,
    settings: &AnalyzeSettings,
    timings: &mut Timings,
) -> Result<(PotentialPath, FreePath)> {
    let stop = &settings.interrupt;
    let concurrent = rayon::current_num_threads() >= 2
        && backend.info().backend == BackendKind::Cpu
        && graph.n_edges() <= OVERLAP_MAX_EDGES;
    // In the shared pool the fit once waited 0.25 s behind the null solves (llm-hard-1M).
    let potential_pool = concurrent
        .then(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(rayon::current_num_threads())
                .thread_name(|i| format!("detbal-fit-{i}"))
                .build()
                .ok()
        })
        .flatten();
    let Some(potential_pool) = potential_pool else {
        let potential = potential_path(graph, backend, settings, stop, timings)?;
        let free = free_path(graph, backend, settings, stop, timings)?;
        return Ok((potential, free));
    };
    // Only this thread asks `stop` (the Python package sees Ctrl-C nowhere else), also while it
    // waits for the potential path, and relays a request there.
    let (here, there) = stop.relay();
    let failed = Arc::new(AtomicBool::new(false));
    let free_stop = here.or({
        let failed = failed.clone();
        move || failed.load(Ordering::Relaxed)
    });
    let mut free_timings = Timings::default();
    // Says the potential path is done (or, disconnected, that it panicked). A park woken by the
    // thread before it had finished waited out a whole `ASK_EVERY`: 50 ms of a 0.9 s run.
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let (potential, free) = std::thread::scope(|scope| {
        let potential = scope.spawn(|| {
            let done = done;
            let potential = potential_pool
                .install(|| potential_path(graph, backend, settings, &there, timings));
            failed.store(potential.is_err(), Ordering::Relaxed);
            // The receiver lives until the join below.
            let _ = done.send(());
            potential
        });
        let free = free_path(graph, backend, settings, &free_stop, &mut free_timings);
        while let Err(RecvTimeoutError::Timeout) = finished.recv_timeout(ASK_EVERY) {
            here.requested();
        }
        let potential = (potential.join()).unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (potential, free)
    });
    timings.verdict = free_timings.verdict;
    timings.cycles = free_timings.cycles;
    timings.fluxes = free_timings.fluxes;
    let (potential, free) = (potential?, free?);
    // A request seen while waiting, after the potential path had made its last check (between
    // that check and its return), stops the analysis here: Python answers a Ctrl-C once, and
    // the stages after these would not see it again.
    here.check("fluxes")?;
    Ok((potential, free))
}

/// The most edges of a graph whose two paths run at once. Above it both working sets, held
/// together, outgrow the load's peak: on llm-hard-10M (3.3 M edges) the run peaked at 1,268 MiB
/// against 928 MiB one path after the other, for 11 % less wall time; on the 1e8-row llm-like
/// log (1.88 M edges), whose default fit has a ridge and so solves over all 995,545 states, the
/// heap held 552 MiB for the fit beside 413 MiB for the verdict's split fits (BENCHMARKS.md, "The
/// default run at 1e8 rows: memory").
const OVERLAP_MAX_EDGES: usize = 1 << 20;

/// How often the calling thread asks the interrupt while it waits for the potential path.
const ASK_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// The fit and the pair test, timed into `timings.fit` and `timings.pairs`.
fn potential_path(
    graph: &TransitionGraph,
    backend: &dyn Backend,
    settings: &AnalyzeSettings,
    stop: &Interrupt,
    timings: &mut Timings,
) -> Result<PotentialPath> {
    let (potential, fit) = timed(stop, "fit", &mut timings.fit, || {
        fit_stage(graph, settings, backend)
    })?;
    let (pairs, pair_test) = timed(stop, "pairs", &mut timings.pairs, || {
        Ok(detailed_balance::pair_test(
            graph,
            &potential,
            &settings.pairs,
        ))
    })?;
    Ok(PotentialPath {
        potential,
        fit,
        pairs,
        pair_test,
    })
}

/// The graph's components (here beside the fit, not on the report's path: 10 ms on
/// llm-hard-1M), the verdict, the cycle test and the fluxes, timed into `timings.verdict`,
/// `.cycles` and `.fluxes`.
fn free_path(
    graph: &TransitionGraph,
    backend: &dyn Backend,
    settings: &AnalyzeSettings,
    stop: &Interrupt,
    timings: &mut Timings,
) -> Result<FreePath> {
    let strong_components = strongly_connected_components(graph, |_| true).summary();
    let mut verdict = timed(stop, "verdict", &mut timings.verdict, || {
        verdict_stage(graph, settings, backend)
    })?;
    let (scan, squares) = timed(stop, "cycles", &mut timings.cycles, || {
        cycle_stage(graph, backend, settings)
    })?;
    let (entropy, fundamental_cycles) = timed(stop, "fluxes", &mut timings.fluxes, || {
        flux_stage(graph, &verdict.fitted, settings, backend)
    })?;
    verdict.fitted.release_refits();
    Ok(FreePath {
        strong_components,
        verdict,
        scan,
        squares,
        entropy,
        fundamental_cycles,
    })
}

fn fit_stage(
    graph: &TransitionGraph,
    settings: &AnalyzeSettings,
    backend: &dyn Backend,
) -> Result<(Potential, FitReport)> {
    let (mut potential, mut fit) = fit::fit(graph, &settings.fit, backend)?;
    fit::attach_posterior(graph, &settings.fit, &mut potential, &mut fit)?;
    tracing::info!(
        stage = "fit",
        iterations = fit.iterations,
        converged = fit.converged,
        identifiable = fit.identifiable_states,
    );
    Ok((potential, fit))
}

fn verdict_stage(
    graph: &TransitionGraph,
    settings: &AnalyzeSettings,
    backend: &dyn Backend,
) -> Result<VerdictStage> {
    let (test, splits, fitted) = quasi_symmetry::quasi_symmetry_test(
        graph,
        &settings.verdict,
        settings.cycles.fdr,
        backend,
    )?;
    tracing::info!(
        stage = "verdict",
        pairs = test.pairs,
        ndf = test.ndf,
        resamples = test.resamples,
    );
    Ok(VerdictStage {
        test,
        splits,
        fitted,
    })
}

/// The reciprocal triangles and their test, and with `--max-cycle-len 4` the chordless squares.
fn cycle_stage(
    graph: &TransitionGraph,
    backend: &dyn Backend,
    settings: &AnalyzeSettings,
) -> Result<(CycleScan, Option<Squares>)> {
    let spinner = progress::bar("cycles", 0, progress::Unit::Items);
    let scan = cycles::cycle_test(graph, backend, &settings.cycles)?;
    let squares = (settings.cycles.max_len >= 4)
        .then(|| cycles::chordless_squares(graph, cycles::LISTED_SQUARES));
    spinner.finish();
    tracing::info!(
        stage = "cycles",
        triangles = scan.test.triangles,
        squares = squares.as_ref().map(|s| s.count),
    );
    Ok((scan, squares))
}

/// Entropy production from the stationary flux of the estimated kernel, with its null
/// expectation from the verdict's fitted model (refitted on `backend`), and the flux's
/// fundamental cycles.
fn flux_stage(
    graph: &TransitionGraph,
    fitted: &quasi_symmetry::FittedSplits,
    settings: &AnalyzeSettings,
    backend: &dyn Backend,
) -> Result<(EntropyProduction, Vec<FundamentalCycle>)> {
    let null = (!fitted.pairs.is_empty()).then(|| quasi_symmetry::NullModel::new(fitted));
    let (entropy, stationary) =
        entropy::entropy_production(graph, null.as_ref(), backend, settings.verdict.seed)?;
    Ok((entropy, stationary.decomposition.cycles))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::CpuBackend;
    use crate::graph::GraphBuilder;

    /// 60 states on a ring with chords 1, 2 and 7 ahead, every arc seen both ways with uneven
    /// counts: reciprocal pairs, triangles and a potential worth fitting.
    fn ring_graph() -> TransitionGraph {
        let mut b = GraphBuilder::default();
        let s: Vec<u32> = (0..60).map(|i| b.intern(&format!("s{i:02}"))).collect();
        let mut row = 0;
        for i in 0..60usize {
            for step in [1, 2, 7] {
                let j = (i + step) % 60;
                for (f, g, count) in [(i, j, 1 + (7 * i + 3 * j) % 9), (j, i, 1 + (5 * i + j) % 7)]
                {
                    b.add(s[f], s[g], count as u64, row).unwrap();
                    row += 1;
                }
            }
        }
        b.finish()
    }

    /// Everything `analyze_graph` computed but its clocks, as text (`{:?}` prints every f64 in
    /// full, so equal texts are equal bits).
    fn results(threads: usize) -> String {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let settings = AnalyzeSettings::default();
        let backend = CpuBackend::new("test");
        let start = Instant::now();
        let run = || {
            analyze_graph(
                ring_graph(),
                InputSummary::default(),
                &backend,
                &settings,
                0.0,
                start,
            )
        };
        let mut a = pool.install(run).expect("the analysis runs");
        // Every stage of both paths had something to compute.
        assert!(a.fit.converged && !a.pairs.is_empty() && !a.splits.is_empty());
        assert!(!a.triangles.is_empty() && !a.fundamental_cycles.is_empty());
        a.fit.seconds = 0.0;
        format!(
            "{:?}",
            (
                (&a.potential, &a.fit, &a.pairs, &a.pair_test),
                (&a.verdict_test, &a.splits, &a.triangles, &a.cycle_test),
                (&a.squares, &a.entropy, &a.fundamental_cycles, &a.attractors),
            )
        )
    }

    #[test]
    fn the_two_paths_at_once_give_the_sequential_results() {
        let sequential = results(1);
        assert_eq!(results(2), sequential);
        assert_eq!(results(3), sequential);
    }
}
