//! `--verify`: every kernel on the analysis' backend (a GPU) and on the CPU twin, at the fitted
//! point and on the analysed graph (the comparisons themselves are [`crate::backend::verify`]'s),
//! and the verdict's batched refits ([`quasi_symmetry::verify_refits`]).

use super::AnalyzeSettings;
use crate::backend::cpu::CpuBackend;
use crate::backend::cpu::reciprocal_triangles::OrientedReciprocal;
use crate::backend::verify::{self, KernelDeviation};
use crate::backend::{Backend, BackendKind};
use crate::error::{Error, Result};
use crate::fit::{self, Potential};
use crate::graph::TransitionGraph;
use crate::stats::quasi_symmetry::{self, FittedSplits};

/// The deviation of every kernel; a settings error when the analysis did not run on a GPU.
pub(super) fn kernels(
    graph: &TransitionGraph,
    potential: &Potential,
    fitted: &FittedSplits,
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
    deviations.push(verify::reciprocal_triangles(backend, &cpu, &r)?);
    deviations.extend(verify::resample(backend)?);
    if !fitted.pairs.is_empty() {
        deviations.push(quasi_symmetry::verify_refits(
            fitted,
            backend,
            &cpu,
            settings.verdict.seed,
        )?);
    }
    Ok(deviations)
}
