//! The analysis pipeline, one direction: load → graph → fit → tests → [`Analysis`].
//! Settings arrive validated; nothing here reads flags or files other than the inputs.

use crate::backend::cpu::CpuBackend;
use crate::backend::verify::{self, KernelDeviation};
use crate::backend::{self, Backend, DeviceChoice, DeviceInfo};
use crate::error::{Error, Result};
use crate::fit::{self, FitReport, FitSettings, Potential};
use crate::graph::TransitionGraph;
use crate::io::{self, InputSummary, LoadOptions};
use crate::stats::cycles::{self, CycleSettings, CycleTest, Squares, Triangle};
use crate::stats::detailed_balance::{self, Pair, PairSettings, PairTest};
use crate::stats::entropy::{self, EntropyProduction};
use crate::stats::schnakenberg::{self, FundamentalCycle};
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
    /// Reproduce the reference code's choices.
    pub paper: bool,
    /// Run the kernels on the CPU too and compare (`--verify`).
    pub verify: bool,
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
            paper: false,
            verify: false,
        }
    }
}

/// Wall-clock seconds per stage.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Timings {
    pub load: f64,
    pub fit: f64,
    pub pairs: f64,
    /// Cycle enumeration and tests.
    pub cycles: f64,
    /// Schnakenberg decomposition and entropy production.
    pub fluxes: f64,
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
    pub triangles: Vec<Triangle>,
    pub cycle_test: CycleTest,
    /// Chordless reciprocal 4-cycles, with `--max-cycle-len 4`.
    pub squares: Option<Squares>,
    pub entropy: EntropyProduction,
    /// Schnakenberg's fundamental cycles of the empirical net flux.
    pub fundamental_cycles: Vec<FundamentalCycle>,
    /// GPU–CPU deviations per kernel, with `--verify`.
    pub verification: Option<Vec<KernelDeviation>>,
    pub timings: Timings,
}

/// Runs the whole analysis on `inputs`.
pub fn analyze(inputs: &[PathBuf], settings: &AnalyzeSettings) -> Result<Analysis> {
    let start = Instant::now();
    let loaded = io::load(inputs, &settings.load)?;
    let load = start.elapsed().as_secs_f64();
    let backend: Box<dyn Backend> = backend::select(settings.device)?;
    analyze_graph(
        loaded.graph,
        loaded.summary,
        backend.as_ref(),
        settings,
        load,
        start,
    )
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
    let t = Instant::now();
    let (potential, fit) = fit::fit(&graph, &settings.fit, backend)?;
    timings.fit = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (pairs, pair_test) = detailed_balance::pair_test(&graph, &potential, &settings.pairs);
    timings.pairs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (triangles, cycle_test) = cycles::cycle_test(&graph, backend, &settings.cycles)?;
    let squares = (settings.cycles.max_len >= 4)
        .then(|| cycles::chordless_squares(&graph, cycles::LISTED_SQUARES));
    timings.cycles = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let decomposition = schnakenberg::empirical(&graph);
    timings.fluxes = t.elapsed().as_secs_f64();
    let entropy = entropy::entropy_production(&graph, &decomposition);
    let verification = if settings.verify {
        Some(verify_kernels(
            &graph, &potential, &triangles, backend, settings,
        )?)
    } else {
        None
    };
    timings.total = start.elapsed().as_secs_f64();
    Ok(Analysis {
        settings: settings.clone(),
        input,
        graph,
        device: backend.info().clone(),
        potential,
        fit,
        pairs,
        pair_test,
        triangles,
        cycle_test,
        squares,
        entropy,
        fundamental_cycles: decomposition.cycles,
        verification,
        timings,
    })
}

/// `--verify`: every kernel on the analysis' backend (a GPU) and on the CPU, at the fitted point;
/// the triangles the GPU listed must equal the CPU's, position by position.
fn verify_kernels(
    graph: &TransitionGraph,
    potential: &Potential,
    triangles: &[Triangle],
    backend: &dyn Backend,
    settings: &AnalyzeSettings,
) -> Result<Vec<KernelDeviation>> {
    if backend.info().backend != "gpu" {
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
    let reference = cpu.reciprocal_triangles(graph)?;
    let positions = triangles.len().max(reference.len());
    let differ = (0..positions)
        .filter(|&i| triangles.get(i).map(|t| t.states) != reference.get(i).copied())
        .count();
    deviations.push(KernelDeviation {
        kernel: "reciprocal_triangles",
        max_abs: differ as f64,
        max_rel: differ as f64 / positions.max(1) as f64,
        tolerance: backend::tolerance::EXACT,
        ok: differ == 0,
    });
    Ok(deviations)
}
