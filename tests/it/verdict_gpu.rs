//! The verdict's parametric bootstrap on the GPU (docs/METHOD.md §4.0): the observed fit and the
//! batched refits through `Backend::minimize_action` on lavapipe against the CPU twin, in both
//! precisions, on a reversible, a driven and a sparse llm-like log. The resampled statistics
//! agree within `tolerance::verdict_statistic`; the p-value, its calibration and the number of
//! resamples are identical (no resample lies within tolerance of the observed statistic here).

use crate::support::{Gpu, gpu, private_gpu, simulated};
use detbal::backend::cpu::CpuBackend;
use detbal::backend::{Backend, tolerance};
use detbal::graph::{GraphBuilder, TransitionGraph};
use detbal::simulate::{SimMode, SimParams};
use detbal::stats::quasi_symmetry::{
    Calibration, FittedSplits, QuasiSymmetryTest, VerdictSettings, quasi_symmetry_test,
    verify_refits,
};

/// The canonical graph of a small simulated log.
fn simulated_graph(mode: SimMode, rows: u64, states: u32, seed: u64) -> TransitionGraph {
    let params = SimParams {
        rows,
        states,
        seed,
        ..SimParams::new(mode)
    };
    simulated(&params).graph().canonical()
}

fn logs() -> Vec<(&'static str, TransitionGraph)> {
    vec![
        (
            "reversible",
            simulated_graph(SimMode::Reversible, 5_000, 60, 1),
        ),
        ("driven", simulated_graph(SimMode::Driven, 5_000, 60, 2)),
        (
            "sparse llm-like",
            simulated_graph(SimMode::LlmLike, 5_000, 20_000, 3),
        ),
    ]
}

fn settings() -> VerdictSettings {
    VerdictSettings {
        max_resamples: 120,
        seed: 7,
        ..VerdictSettings::default()
    }
}

fn verdict(graph: &TransitionGraph, backend: &dyn Backend) -> (QuasiSymmetryTest, FittedSplits) {
    let (test, _, fitted) = quasi_symmetry_test(graph, &settings(), 0.05, backend).unwrap();
    (test, fitted)
}

#[test]
fn gpu_and_cpu_give_the_same_verdict_in_every_precision() {
    let cpu = CpuBackend::new("reference");
    for which in [Gpu::F64, Gpu::F32] {
        let Some(gpu) = gpu(which, "verdict on the GPU") else {
            return;
        };
        let tol = tolerance::verdict_statistic(gpu.info().precision);
        for (name, graph) in logs() {
            let (expected, fitted) = verdict(&graph, &cpu);
            let (found, _) = verdict(&graph, gpu);
            assert!(expected.ndf > 0, "{name}: {expected:?}");
            let observed = (found.statistic - expected.statistic).abs() / fitted.statistic_scale();
            let refits = verify_refits(&fitted, gpu, &cpu, 7).unwrap();
            println!(
                "{which:?} {name}: X² {:.6} vs {:.6} ({observed:.1e} of its scale), refits \
                 {:.1e} (tolerance {tol:.0e}), p {:?} after {} resamples ({:?})",
                found.statistic,
                expected.statistic,
                refits.max_rel,
                found.p_value,
                found.resamples,
                found.calibration
            );
            assert!(
                observed <= tol,
                "{which:?} {name}: observed X² off by {observed}"
            );
            assert!(refits.ok, "{which:?} {name}: {refits:?}");
            assert_eq!(
                (found.calibration, found.resamples, found.exceedances),
                (
                    expected.calibration,
                    expected.resamples,
                    expected.exceedances
                ),
                "{which:?} {name}"
            );
            let (p, q) = (found.p_value.unwrap(), expected.p_value.unwrap());
            if found.calibration == Some(Calibration::MomentMatchedTail) {
                // A smooth function of the resamples' mean and sd, which agree to `tol`: the
                // χ² tail's log changes by ~ its derivative times that.
                let gap = (p.ln() - q.ln()).abs();
                assert!(gap <= 1e-3 * q.ln().abs(), "{which:?} {name}: p {p} vs {q}");
            } else {
                assert_eq!(p, q, "{which:?} {name}");
            }
            let mean = (found.null_mean.unwrap() - expected.null_mean.unwrap()).abs();
            assert!(
                mean <= tol * fitted.statistic_scale(),
                "{which:?} {name}: {mean}"
            );
        }
    }
}

#[test]
fn the_verdict_runs_on_the_gpu_when_the_analysis_does() {
    let Some(gpu) = private_gpu(Gpu::Auto, "verdict on the GPU") else {
        return;
    };
    let graph = simulated_graph(SimMode::Driven, 5_000, 60, 2);
    let before = gpu.counters();
    let (test, _) = verdict(&graph, &gpu);
    let work = gpu.counters().since(before);
    println!("{test:?}\n{work:?}");
    // The observed fit and at least one batch of refits, each many dispatches and read-backs.
    assert!(test.resamples > 0);
    assert!(work.dispatches > 100 && work.readbacks > 20, "{work:?}");
}

/// `--verify`'s refit row compares the statistic as the test uses it on both sides: the CPU's
/// side was the raw `X²`, the device's the one moved onto the observed degrees of freedom, so a
/// resample with a separated pair failed `--verify` (a one-way triangle seen three times each
/// way round: NaN, no cycle left, against 0); a resample without a statistic on both is agreement.
#[test]
fn verify_passes_where_resamples_separate_pairs() {
    let mut b = GraphBuilder::default();
    let ids: Vec<u32> = ["a", "b", "c"].iter().map(|s| b.intern(s)).collect();
    for (row, k) in (0..9u64).zip((0..3).cycle()) {
        b.add(ids[k], ids[(k + 1) % 3], 1, row).unwrap();
    }
    let graph = b.finish().canonical();
    let cpu = CpuBackend::new("reference");
    for which in [Gpu::F64, Gpu::F32] {
        let Some(gpu) = gpu(which, "verify on separated pairs") else {
            return;
        };
        let (_, fitted) = verdict(&graph, &cpu);
        let refits = verify_refits(&fitted, gpu, &cpu, 7).unwrap();
        assert!(refits.ok, "{which:?}: {refits:?}");
    }
}
