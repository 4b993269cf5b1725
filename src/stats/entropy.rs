//! Entropy production (docs/METHOD.md §5) of the estimated kernel, with its expectation under
//! detailed balance at this sample size.
//!
//! ```text
//! σ = ½ Σ_{f≠g} (π̂_f T(f→g) − π̂_g T(g→f)) log(π̂_f T(f→g) / (π̂_g T(g→f)))   nats per transition
//! ```
//!
//! with `T(f→g) = n(f→g)/N(f)` on the pairs seen both ways (a one-way arc would make it
//! infinite; the share of transitions on one-way arcs is reported beside it) and `π̂` its
//! stationary distribution on each component of those pairs, weighted by the component's share
//! of the transitions ([`super::schnakenberg::stationary`]). The flux of `π̂` is divergence-free,
//! so `σ` equals Schnakenberg's sum over fundamental cycles `Σ_c J_c A_c` exactly (to the
//! solver's residual, reported).
//!
//! An estimate from finite counts is positive even under detailed balance (every pair's
//! log-ratio has sampling noise, and `σ` is a sum of squares to second order). Its expectation
//! under detailed balance at this sample size comes from the verdict's parametric null
//! ([`super::quasi_symmetry::NullModel`]): the tested pairs' splits redrawn from the fitted
//! reversible model `Û` (the other pairs kept, and a tested bridge too: its `p̂` is its own
//! observed split, so a draw from it would carry the pair's noise twice), `σ*` recomputed on
//! [`NULL_RESAMPLES`] resamples.
//! `Û` is a maximum-likelihood fit, so its odds are more extreme than the truth's and `σ*`
//! overstates `E₀σ` (by 8 % on 2e4-row reversible logs, docs/METHOD.md §5); the bootstrap's
//! bias correction removes that: each resample is refitted (`Û*`), one resample `σ**` drawn
//! from each refit, and `E₀σ ≈ 2 mean σ* − mean σ**`. The refits run in batches of the verdict's
//! size cap, each solved before the next, and only the resamples' `σ` are kept: the stage's
//! memory is one batch's, not 40 copies of the pair graph; the resamples the verdict already
//! refitted (the same draws, in the same batches) are not refitted again
//! ([`NullModel::refits`]). The excess `σ − E₀σ` in units of the
//! standard deviation of `σ*` says whether the drive is more than noise.

use super::quasi_symmetry::{NullModel, mean_sd};
use super::schnakenberg::{self, PairCounts, Stationary};
use super::stationary::{self, CoreSystem, NullSolution};
use crate::backend::Backend;
use crate::error::Result;
use crate::graph::{NO_EDGE, TransitionGraph};
use rayon::prelude::*;

/// Resamples of the parametric null for the expected entropy production.
pub const NULL_RESAMPLES: u64 = 40;

#[derive(Debug, Clone, serde::Serialize)]
pub struct EntropyProduction {
    pub nats_per_transition: f64,
    pub reciprocal_pairs: usize,
    /// Transitions on arcs whose reverse was never seen, over all transitions between states.
    pub one_way_fraction: f64,
    /// `Σ_c J_c A_c` over the fundamental cycles of the reciprocal graph, nats per transition.
    pub cycle_sum_nats_per_transition: f64,
    /// Number of fundamental cycles (chords of a spanning forest of the reciprocal graph).
    pub fundamental_cycles: usize,
    /// Relative imbalance of `π̂` (how far from stationary the solver left it).
    pub stationary_residual: f64,
    /// The bias-corrected expectation of `σ` under the fitted detailed-balance model and the
    /// standard deviation of its resamples; `None` without tested pairs.
    pub null_mean: Option<f64>,
    pub null_sd: Option<f64>,
    pub null_resamples: u64,
    /// `σ − null_mean`, and the same in null standard deviations.
    pub excess: Option<f64>,
    pub excess_z: Option<f64>,
}

/// `σ` of `graph`, its decomposition, and its null expectation from `null` (the verdict's
/// fitted model; `None` when the verdict had no pairs), refitted on `backend`.
pub fn entropy_production(
    graph: &TransitionGraph,
    null: Option<&NullModel>,
    backend: &dyn Backend,
    seed: u64,
) -> Result<(EntropyProduction, Stationary)> {
    let pairs = schnakenberg::pair_counts(graph);
    let observed = schnakenberg::stationary(&graph.out_count, &pairs);
    let between: u64 = graph.count.iter().sum();
    let one_way: u64 = (0..graph.n_edges())
        .filter(|&e| graph.reverse[e] == NO_EDGE)
        .map(|e| graph.count[e])
        .sum();
    let d = &observed.decomposition;
    let sigma = d.edge_sum;
    let nulls = null
        .map(|model| null_productions(graph, &pairs, &observed.pi, model, backend, seed))
        .transpose()?;
    let (null_mean, null_sd) = match &nulls {
        Some((drawn, refitted)) if drawn.len() > 1 && !refitted.is_empty() => {
            let (mean, sd) = mean_sd(drawn);
            // The bootstrap's bias correction: E₀σ ≈ 2 E_Û σ* − E_Û* σ**.
            (Some(2.0 * mean - mean_sd(refitted).0), Some(sd))
        }
        _ => (None, None),
    };
    let excess = null_mean.map(|m| sigma - m);
    let entropy = EntropyProduction {
        nats_per_transition: sigma,
        reciprocal_pairs: graph.reciprocal_pairs().count(),
        one_way_fraction: if between > 0 {
            one_way as f64 / between as f64
        } else {
            0.0
        },
        cycle_sum_nats_per_transition: d.cycle_sum,
        fundamental_cycles: d.cycles.len(),
        stationary_residual: observed.residual,
        null_mean,
        null_sd,
        null_resamples: nulls.map_or(0, |(drawn, _)| drawn.len() as u64),
        excess,
        excess_z: excess
            .zip(null_sd)
            .and_then(|(e, sd)| (sd > 0.0).then(|| e / sd)),
    };
    Ok((entropy, observed))
}

/// `σ*` of the [`NULL_RESAMPLES`] resamples drawn from `model` (`Û`), and `σ**` of one
/// resample drawn from each resample's refit `Û*`; each solved on the core of [`CoreSystem`],
/// from the observed `π̂`. The refits run on `backend` in batches of at most
/// [`NullModel::batch_limit`] resamples (the verdict's cap), and a batch's refits are dropped
/// once its resamples are solved: one batch of 40 copies of the pair graph set the whole run's
/// peak memory at 1e8 rows (BENCHMARKS.md, "1e8 rows").
fn null_productions(
    graph: &TransitionGraph,
    pairs: &[PairCounts],
    pi: &[f64],
    model: &NullModel,
    backend: &dyn Backend,
    seed: u64,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let system = CoreSystem::new(&graph.out_count, pairs, &model.redrawn_pairs(), pi);
    let production =
        |model: &NullModel, r: u64| system.production(&model.draw(r, seed), stationary::NULL_TOL);
    let (mut drawn, mut refitted) = (Vec::new(), Vec::new());
    let (mut products, mut new_shapes, mut max_residual) = (0, 0, 0.0f64);
    let batch = model.batch_limit() as u64;
    for from in (0..NULL_RESAMPLES).step_by(batch as usize) {
        let resamples = from..(from + batch).min(NULL_RESAMPLES);
        let refits = model.refits(backend, resamples, seed)?;
        let solved: Vec<(NullSolution, NullSolution)> = (refits.par_iter())
            .enumerate()
            .map(|(i, fitted)| {
                let r = from + i as u64;
                // A stream of its own: resamples NULL_RESAMPLES.. of the refitted model.
                let refitted = production(&NullModel::new(fitted), NULL_RESAMPLES + r);
                (production(model, r), refitted)
            })
            .collect();
        for (d, r) in solved {
            products += d.products + r.products;
            new_shapes += usize::from(d.new_shape) + usize::from(r.new_shape);
            max_residual = max_residual.max(d.residual).max(r.residual);
            drawn.push(d.sigma);
            refitted.push(r.sigma);
        }
    }
    tracing::debug!(
        stage = "entropy",
        solves = drawn.len() + refitted.len(),
        batch,
        core_states = system.core_states(),
        new_shapes,
        products,
        max_residual,
        "null stationary solves"
    );
    Ok((drawn, refitted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::graph_of;
    use crate::stats::quasi_symmetry::DRIVEN_TRIANGLE;

    #[test]
    fn edge_and_cycle_sums_agree_and_a_balanced_log_produces_nothing() {
        let extra = [("a", "a", 7), ("c", "d", 3), ("d", "c", 5)];
        let driven = graph_of(&[&DRIVEN_TRIANGLE[..], &extra].concat());
        let cpu = crate::backend::cpu::CpuBackend::new("test");
        let (e, _) = entropy_production(&driven, None, &cpu, 0).unwrap();
        assert!(e.nats_per_transition > 0.1, "{e:?}");
        let gap = (e.nats_per_transition - e.cycle_sum_nats_per_transition).abs();
        assert!(gap <= 1e-12 * e.nats_per_transition, "{e:?}");
        let balanced = graph_of(&[("a", "b", 4), ("b", "a", 2), ("b", "c", 3), ("c", "b", 9)]);
        let (e, _) = entropy_production(&balanced, None, &cpu, 0).unwrap();
        assert!(e.nats_per_transition.abs() < 1e-14, "{e:?}");
    }

    #[test]
    fn the_null_reuses_the_verdicts_refits_and_gets_the_same_numbers() {
        use crate::stats::quasi_symmetry::{VerdictSettings, quasi_symmetry_test};
        let g = graph_of(&[
            ("a", "b", 40),
            ("b", "c", 31),
            ("c", "a", 22),
            ("b", "a", 12),
            ("c", "b", 17),
            ("a", "c", 25),
            ("c", "d", 14),
            ("d", "c", 11),
            ("d", "a", 13),
            ("a", "d", 19),
        ]);
        let cpu = crate::backend::cpu::CpuBackend::new("test");
        let settings = VerdictSettings {
            seed: 3,
            ..VerdictSettings::default()
        };
        let (test, _, mut fitted) = quasi_symmetry_test(&g, &settings, 0.05, &cpu).unwrap();
        assert!(test.resamples > 0, "{test:?}");
        let (reused, _) = entropy_production(&g, Some(&NullModel::new(&fitted)), &cpu, 3).unwrap();
        fitted.release_refits();
        let (refitted, _) =
            entropy_production(&g, Some(&NullModel::new(&fitted)), &cpu, 3).unwrap();
        assert!(reused.null_mean.is_some_and(f64::is_finite), "{reused:?}");
        assert_eq!(
            (reused.null_mean, reused.null_sd, reused.excess_z),
            (refitted.null_mean, refitted.null_sd, refitted.excess_z)
        );
    }
}
