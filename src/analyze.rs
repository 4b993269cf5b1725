//! The analysis pipeline, one direction: load → graph → fit → tests → [`Analysis`].
//! Settings arrive validated; nothing here reads flags or files other than the inputs.

use crate::backend::cpu::CpuBackend;
use crate::backend::cpu::reciprocal_triangles::OrientedReciprocal;
use crate::backend::verify::{self, KernelDeviation};
use crate::backend::{self, Backend, BackendKind, DeviceChoice, DeviceInfo};
use crate::error::{Error, Result};
use crate::fit::{self, FitReport, FitSettings, Potential};
use crate::graph::TransitionGraph;
use crate::groups::{self, GroupAnalyses};
use crate::io::{self, InputSummary, LoadOptions};
use crate::progress;
use crate::stats::attractors::{self, Attractor};
use crate::stats::cycles::{self, CycleScan, CycleSettings, CycleTest, Squares, Triangle};
use crate::stats::detailed_balance::{self, Pair, PairSettings, PairTest};
use crate::stats::entropy::{self, EntropyProduction};
use crate::stats::permutation::{self, Resampling, ResamplingSettings};
use crate::stats::quasi_symmetry::{self, QuasiSymmetryTest, SplitResidual, VerdictSettings};
use crate::stats::schnakenberg::FundamentalCycle;
use std::path::PathBuf;
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
    /// Monte Carlo tests, bootstrap and held-out check; the default runs none (the CLI's
    /// defaults are `--permutations 10000 --bootstrap 200`).
    pub resampling: ResamplingSettings,
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
            resampling: ResamplingSettings {
                permutations: 0,
                bootstrap: 0,
                ..ResamplingSettings::default()
            },
        }
    }
}

/// Wall-clock seconds per stage.
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
    pub device: DeviceInfo,
    pub potential: Potential,
    pub fit: FitReport,
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
    /// Per-group analyses and their comparison, with `--group-by`.
    pub groups: Option<GroupAnalyses>,
    pub timings: Timings,
}

/// Runs the whole analysis on `inputs`.
pub fn analyze(inputs: &[PathBuf], settings: &AnalyzeSettings) -> Result<Analysis> {
    let start = Instant::now();
    let loaded = io::load(inputs, &settings.load)?;
    let load = start.elapsed().as_secs_f64();
    tracing::info!(
        stage = "load",
        files = loaded.summary.files,
        rows = loaded.summary.rows,
        states = loaded.graph.n_states(),
        edges = loaded.graph.n_edges(),
        seconds = load
    );
    let backend: Box<dyn Backend> = backend::select(settings.device)?;
    let mut analysis = analyze_graph(
        loaded.graph,
        loaded.summary,
        backend.as_ref(),
        settings,
        load,
        start,
    )?;
    if let Some(column) = &settings.load.group_column {
        let t = Instant::now();
        let groups = groups::analyze_groups(
            column,
            loaded.groups,
            &analysis.input,
            backend.as_ref(),
            settings,
        )?;
        analysis.groups = Some(groups);
        analysis.timings.groups = t.elapsed().as_secs_f64();
        analysis.timings.total = start.elapsed().as_secs_f64();
    }
    Ok(analysis)
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
    // Results must not depend on the order of the rows: states in name order, except that
    // `--paper` keeps the reference's first-appearance order (its `r` depends on it).
    let graph = if settings.paper {
        graph
    } else {
        graph.canonical()
    };
    // A graph too dense for the cycle test is said before any stage runs.
    cycles::check_triangle_limit(&graph, &settings.cycles)?;
    let t = Instant::now();
    let (potential, fit) = fit::fit(&graph, &settings.fit, backend)?;
    timings.fit = t.elapsed().as_secs_f64();
    tracing::info!(
        stage = "fit",
        iterations = fit.iterations,
        converged = fit.converged,
        identifiable = fit.identifiable_states,
        seconds = timings.fit
    );
    let t = Instant::now();
    let (pairs, pair_test) = detailed_balance::pair_test(&graph, &potential, &settings.pairs);
    timings.pairs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (verdict_test, splits, fitted_splits) =
        quasi_symmetry::quasi_symmetry_test(&graph, &settings.verdict, settings.cycles.fdr)?;
    timings.verdict = t.elapsed().as_secs_f64();
    tracing::info!(
        stage = "verdict",
        pairs = verdict_test.pairs,
        ndf = verdict_test.ndf,
        resamples = verdict_test.resamples,
        seconds = timings.verdict
    );
    let t = Instant::now();
    let spinner = progress::bar("cycles", 0, progress::Unit::Items);
    let CycleScan {
        triangles,
        test: cycle_test,
    } = cycles::cycle_test(&graph, backend, &settings.cycles)?;
    let squares = (settings.cycles.max_len >= 4)
        .then(|| cycles::chordless_squares(&graph, cycles::LISTED_SQUARES));
    timings.cycles = t.elapsed().as_secs_f64();
    spinner.finish();
    tracing::info!(
        stage = "cycles",
        triangles = cycle_test.triangles,
        squares = squares.as_ref().map(|s| s.count),
        seconds = timings.cycles
    );
    let t = Instant::now();
    let null =
        (!fitted_splits.pairs.is_empty()).then(|| quasi_symmetry::NullModel::new(&fitted_splits));
    let (entropy, stationary) =
        entropy::entropy_production(&graph, null.as_ref(), settings.verdict.seed);
    drop(null);
    timings.fluxes = t.elapsed().as_secs_f64();
    let attractors = attractors::attractors(&graph, &potential);
    let t = Instant::now();
    let r = &settings.resampling;
    let resampling = if r.permutations > 0 || r.bootstrap > 0 || r.holdout {
        Some(permutation::resampling(
            &graph,
            &potential,
            backend,
            &settings.fit,
            &settings.pairs,
            &settings.cycles,
            r,
        )?)
    } else {
        None
    };
    timings.resampling = t.elapsed().as_secs_f64();
    tracing::info!(
        stage = "resampling",
        permutations = r.permutations,
        bootstrap = r.bootstrap,
        holdout = r.holdout,
        seconds = timings.resampling
    );
    let verification = if settings.verify {
        Some(verify_kernels(&graph, &potential, backend, settings)?)
    } else {
        None
    };
    timings.total = start.elapsed().as_secs_f64();
    let analysis = Analysis {
        settings: settings.clone(),
        input,
        graph,
        device: backend.info().clone(),
        potential,
        fit,
        pairs,
        pair_test,
        verdict_test,
        splits,
        triangles,
        cycle_test,
        squares,
        entropy,
        fundamental_cycles: stationary.decomposition.cycles,
        attractors,
        verification,
        resampling,
        groups: None,
        timings,
    };
    check_finite(&analysis)?;
    Ok(analysis)
}

/// Every number that reaches a report must be finite: a NaN or infinity is an error naming the
/// quantity, never a silent `null` in report.json or a NaN in a table.
fn check_finite(a: &Analysis) -> Result<()> {
    let optional = |x: Option<f64>| x.unwrap_or(0.0);
    let mut scalars: Vec<(&str, f64)> = vec![
        ("fit.action", a.fit.action),
        ("fit.grad_norm", a.fit.grad_norm),
        ("pairs.pearson_r", optional(a.pair_test.pearson_r)),
        (
            "pairs.chi2_ndf_reference",
            optional(a.pair_test.chi2_ndf_reference),
        ),
        ("pairs.chi2", a.pair_test.chi2),
        ("verdict.statistic", a.verdict_test.statistic),
        ("verdict.p_value", optional(a.verdict_test.p_value)),
        ("pairs.p_value", optional(a.pair_test.p_value)),
        ("pairs.slope", optional(a.pair_test.slope)),
        (
            "cycles.chi2_ndf_reference",
            optional(a.cycle_test.chi2_ndf_reference),
        ),
        ("cycles.chi2", a.cycle_test.chi2),
        ("cycles.p_value", optional(a.cycle_test.p_value)),
        (
            "entropy_production.nats_per_transition",
            a.entropy.nats_per_transition,
        ),
        (
            "entropy_production.cycle_sum_nats_per_transition",
            a.entropy.cycle_sum_nats_per_transition,
        ),
        (
            "entropy_production.stationary_residual",
            a.entropy.stationary_residual,
        ),
    ];
    scalars.extend(
        a.pair_test
            .slope_ci
            .iter()
            .flatten()
            .map(|&x| ("pairs.slope_ci", x)),
    );
    if let Some(r) = &a.resampling {
        for t in &r.tests {
            scalars.push(("permutation.observed", t.observed));
            scalars.extend(t.null.iter().map(|&x| ("nulls.parquet: statistic", x)));
        }
    }
    let potentials = a
        .potential
        .value
        .iter()
        .flatten()
        .map(|&x| ("potentials.parquet: potential", x));
    let pairs = a.pairs.iter().flat_map(|p| {
        [
            ("pairs.parquet: log_ratio", p.x),
            ("pairs.parquet: potential_difference", p.y),
            ("pairs.parquet: sigma", p.sigma),
        ]
    });
    let triangles = a.triangles.iter().flat_map(|t| {
        [
            ("cycles.parquet: affinity", t.affinity),
            ("cycles.parquet: z", t.z),
            ("cycles.parquet: p_value", t.p_value),
        ]
    });
    let fluxes = a.fundamental_cycles.iter().flat_map(|c| {
        [
            ("fundamental_cycles.parquet: affinity", c.affinity),
            ("fundamental_cycles.parquet: flux", c.flux),
        ]
    });
    match scalars
        .into_iter()
        .chain(potentials)
        .chain(pairs)
        .chain(triangles)
        .chain(fluxes)
        .find(|(_, x)| !x.is_finite())
    {
        Some((name, x)) => Err(Error::Numerical(format!(
            "{name} is {x}; no report is written"
        ))),
        None => Ok(()),
    }
}

/// `--verify`: every kernel on the analysis' backend (a GPU) and on the CPU, at the fitted point;
/// the triangles the GPU enumerates must equal the CPU's, in number and in order (compared by a
/// digest of the streamed sequences, so that no list of triangles is held).
fn verify_kernels(
    graph: &TransitionGraph,
    potential: &Potential,
    backend: &dyn Backend,
    settings: &AnalyzeSettings,
) -> Result<Vec<KernelDeviation>> {
    if backend.info().backend != BackendKind::Gpu {
        return Err(Error::settings(format!(
            "--verify compares the GPU with the CPU, but the analysis ran on the CPU ({})",
            backend.info().reason
        ))
        .hint("pass --device gpu"));
    }
    let problem = fit::action_problem(graph, &settings.fit)?;
    let v: Vec<f64> = potential.value.iter().map(|v| v.unwrap_or(0.0)).collect();
    let cpu = CpuBackend::new("reference for --verify");
    let mut deviations = verify::verify(backend, &cpu, &problem, &v)?;
    let r = OrientedReciprocal::new(graph);
    let digest = |b: &dyn Backend| -> Result<(u64, blake3::Hash)> {
        let (mut n, mut hash) = (0u64, blake3::Hasher::new());
        b.reciprocal_triangles(&r, backend::TRIANGLE_CHUNK, &mut |ts| {
            n += ts.len() as u64;
            for t in ts {
                for x in t {
                    hash.update(&x.to_le_bytes());
                }
            }
            Ok(())
        })?;
        Ok((n, hash.finalize()))
    };
    let (found, reference) = (digest(backend)?, digest(&cpu)?);
    let differ = if found == reference {
        0.0
    } else {
        found.0.abs_diff(reference.0).max(1) as f64
    };
    deviations.push(KernelDeviation {
        kernel: "reciprocal_triangles",
        max_abs: differ,
        max_rel: differ / reference.0.max(1) as f64,
        tolerance: backend::tolerance::EXACT,
        ok: differ == 0.0,
    });
    deviations.extend(verify::resample(backend)?);
    Ok(deviations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::GraphBuilder;

    #[test]
    fn a_non_finite_number_is_an_error_naming_it() {
        let mut b = GraphBuilder::default();
        let s: Vec<u32> = ["a", "b", "c"].iter().map(|n| b.intern(n)).collect();
        for (row, &(f, g, n)) in [
            (0, 1, 4),
            (1, 0, 2),
            (1, 2, 3),
            (2, 1, 3),
            (2, 0, 5),
            (0, 2, 1),
        ]
        .iter()
        .enumerate()
        {
            b.add(s[f], s[g], n, row as u64).unwrap();
        }
        let cpu = CpuBackend::new("test");
        let settings = AnalyzeSettings::default();
        let mut a = analyze_graph(
            b.finish(),
            InputSummary::default(),
            &cpu,
            &settings,
            0.0,
            Instant::now(),
        )
        .unwrap();
        assert!(check_finite(&a).is_ok());
        a.triangles[0].z = f64::NAN;
        let err = check_finite(&a).unwrap_err().to_string();
        assert!(err.contains("cycles.parquet: z is NaN"), "{err}");
    }
}
