//! `--l2 auto`: the ridge's strength chosen from the data (docs/METHOD.md §2.5).
//!
//! The ridge `(λ/2) Σ V²` is a Gaussian prior `V_f ~ N(0, 1/λ)` on every state (for
//! `reversible-mle` on its fitted variable `u = V + log c`, see [`super::reversible`]), and the
//! fit is the MAP. λ is chosen by K-fold cross-validation over the records: every transition
//! goes to one of [`FOLDS`] folds at random (a multinomial split of each arc's count), the
//! estimator is fitted on the other folds and scored by its own unpenalised objective on the held-out
//! fold — `Σ w_test(f→g) K(x_f − x_g)`, with the estimator's weights computed from the held-out
//! counts alone, over the held-out arcs whose two states the training fit gives a value — and the
//! λ with the least total held-out loss wins. When no held-out arc joins two fitted states (a
//! log of a few transitions), the data cannot choose λ: the fit runs without a ridge and
//! [`L2Choice::method`] says so ([`NOT_CHOSEN`]), as does the summary.
//!
//! A log of more than [`CV_MAX_TRANSITIONS`] transitions is thinned to about that many first
//! ([`thin`]): the final fit uses every transition, the choice of λ a bounded sample.
//!
//! Candidates (each fit warm-started from the previous λ's): the decades from `10⁰`, upwards
//! while the held-out loss falls, else downwards while it falls, within `10⁻⁴ … 10²`; then the
//! vertex of the parabola in `log λ` through the best decade and its two neighbours (within half
//! a decade of it), and the least loss of all wins. The loss is a smooth, in practice unimodal,
//! function of `log λ`: on llm-hard-1M four candidates instead of the nine of a downward scan
//! with half- and quarter-decade refinement (BENCHMARKS.md "The default's cost, second pass").
//!
//! Why cross-validation and not the evidence (the Laplace approximation's `log det H`): the
//! least-action objective weighs transitions by `T = n/N`, a pseudo-likelihood whose evidence has
//! no probabilistic meaning, and the cross-validated loss treats every estimator alike.

use super::{Estimator, FitSettings, fit_from};
use crate::backend::{Backend, BackendKind};
use crate::error::Result;
use crate::fit::problem::softplus_neg;
use crate::graph::TransitionGraph;
use crate::rng::{Purpose, Stream, binomial};
use rayon::prelude::*;

/// The trial fits stop when a Newton step moves no potential by more than this: the held-out
/// loss then carries a relative error of about this size, far below the differences between
/// candidates (on llm-hard-1M ≥ 2.8e-3 relative between the two best), at a fraction of the
/// passes the final fit's [`super::POTENTIAL_TOL`] costs.
pub const CV_POTENTIAL_TOL: f64 = 1e-5;

/// Above this many transitions the cross-validation runs on the log thinned to about this many
/// (a binomial draw per count): its cost is then bounded, whatever the log's size. λ is the
/// precision of the prior on `V`, a property of the states' potentials rather than of the
/// amount of data, and the thinned log keeps every state's share of the visits (measured on
/// the 10⁶-row logs of the recovery suite: BENCHMARKS.md "Recovery").
pub const CV_MAX_TRANSITIONS: u64 = 250_000;
/// The draw index of the thinning in the fold stream (the folds use 0 to `FOLDS − 2`).
const THINNING_DRAW: u32 = FOLDS as u32;

/// The decades `10^d` the candidates range over.
const LEAST_DECADE: i32 = -4;
const GREATEST_DECADE: i32 = 2;

/// Folds of the cross-validation.
pub const FOLDS: usize = 5;
/// Seed of the fold split: λ does not depend on `--seed`, so a report's potentials do not either.
const FOLD_SEED: u64 = 0x6c32_6175_746f;

/// [`L2Choice::method`] when no held-out transition joins two states the training folds fit.
pub const NOT_CHOSEN: &str =
    "not chosen: no held-out transition joins two states the training folds fit; no ridge";

/// How λ was chosen: every candidate tried and its held-out loss.
#[derive(Debug, Clone, serde::Serialize)]
pub struct L2Choice {
    /// The λ chosen.
    pub l2: f64,
    pub method: &'static str,
    pub folds: usize,
    /// Transitions of the log the folds split: all of them, or about [`CV_MAX_TRANSITIONS`] of
    /// a larger log.
    pub transitions: u64,
    /// Candidates in the order tried.
    pub candidates: Vec<L2Candidate>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct L2Candidate {
    pub l2: f64,
    /// Held-out loss per unit of held-out weight, summed over the folds.
    pub loss: f64,
}

/// Chooses λ for `settings`' estimator on `graph` (see the module docs).
pub(super) fn choose(
    graph: &TransitionGraph,
    settings: &FitSettings,
    backend: &dyn Backend,
) -> Result<L2Choice> {
    let thinned = thin(graph);
    let graph = thinned.as_ref().unwrap_or(graph);
    let transitions = graph.out_count.iter().sum();
    // Each fold's training fit at the last λ tried: the next λ's warm start.
    let mut folds: Vec<Vec<Option<f64>>> = vec![vec![None; graph.n_states()]; FOLDS];
    let mut candidates: Vec<L2Candidate> = Vec::new();
    let mut try_l2 = |l2: f64, candidates: &mut Vec<L2Candidate>| -> Result<f64> {
        let loss = held_out_loss(graph, &mut folds, settings, backend, l2)?;
        candidates.push(L2Candidate { l2, loss });
        Ok(loss)
    };
    // Decades from 10⁰: upwards while the loss falls, else downwards while it falls.
    let mut top = (0, try_l2(1.0, &mut candidates)?);
    for direction in [1, -1] {
        let mut decade = top.0 + direction;
        while (LEAST_DECADE..=GREATEST_DECADE).contains(&decade) {
            let loss = try_l2(10f64.powi(decade), &mut candidates)?;
            if !(loss < top.1) {
                break;
            }
            top = (decade, loss);
            decade += direction;
        }
        if top.0 != 0 {
            break;
        }
    }
    // The parabola in log λ through the best decade and its two neighbours: its vertex, within
    // half a decade of the best.
    let loss_at = |decade: i32| {
        let l2 = 10f64.powi(decade);
        candidates.iter().find(|c| c.l2 == l2).map(|c| c.loss)
    };
    if let (Some(below), Some(above)) = (loss_at(top.0 - 1), loss_at(top.0 + 1)) {
        let curvature = above + below - 2.0 * top.1;
        if curvature > 0.0 {
            let offset = (0.5 * (below - above) / curvature).clamp(-0.5, 0.5);
            if offset.abs() >= 0.05 {
                try_l2(10f64.powf(top.0 as f64 + offset), &mut candidates)?;
            }
        }
    }
    // Too few transitions for any held-out arc between two fitted states: the data cannot
    // choose λ, and the fit runs without a ridge, as the report and the summary say.
    if candidates.iter().all(|c| c.loss.is_nan()) {
        return Ok(L2Choice {
            l2: 0.0,
            method: NOT_CHOSEN,
            folds: FOLDS,
            transitions,
            candidates,
        });
    }
    Ok(L2Choice {
        l2: best(&candidates).l2,
        method: "5-fold cross-validation of the estimator's held-out loss",
        folds: FOLDS,
        transitions,
        candidates,
    })
}

/// A log of more than [`CV_MAX_TRANSITIONS`] transitions thinned to about that many (each
/// arc's and each self-transition's count a binomial draw) and cut to the states the sample
/// visits (the folds' graphs and fits are then the sample's size), or `None` when it is smaller.
fn thin(graph: &TransitionGraph) -> Option<TransitionGraph> {
    let total: u64 = graph.out_count.iter().sum();
    (total > CV_MAX_TRANSITIONS).then(|| {
        let keep = CV_MAX_TRANSITIONS as f64 / total as f64;
        let stream = Stream::new(FOLD_SEED, Purpose::Fold);
        graph
            .recount(|item, n| {
                if n > EVEN_SPLIT_ABOVE {
                    (n as f64 * keep).round() as u64
                } else {
                    binomial(&stream, n, keep, item, THINNING_DRAW)
                }
            })
            .without_unvisited()
    })
}

/// The candidate of least loss (the first of equals).
fn best(candidates: &[L2Candidate]) -> &L2Candidate {
    candidates
        .iter()
        .reduce(|b, c| if c.loss < b.loss { c } else { b })
        .expect("at least one candidate")
}

/// Counts above this are split evenly instead of drawn: the multinomial's relative spread is
/// below 2e-5 there, and the binomial sampler's cost grows with `n`.
const EVEN_SPLIT_ABOVE: u64 = 1 << 32;

/// How many of an item's `n` records fall in each fold: a multinomial draw with equal
/// probabilities, as successive binomials (an even split above [`EVEN_SPLIT_ABOVE`]).
fn fold_counts(item: u32, n: u64) -> [u64; FOLDS] {
    let stream = Stream::new(FOLD_SEED, Purpose::Fold);
    let mut counts = [0; FOLDS];
    let mut left = n;
    for (k, c) in counts.iter_mut().enumerate().take(FOLDS - 1) {
        let share = 1.0 / (FOLDS - k) as f64;
        *c = if left > EVEN_SPLIT_ABOVE {
            left / (FOLDS - k) as u64
        } else {
            binomial(&stream, left, share, item, k as u32)
        };
        left -= *c;
    }
    counts[FOLDS - 1] = left;
    counts
}

/// The held-out loss at `l2` over all folds, per unit of held-out weight (NaN when no held-out
/// arc joins two fitted states), warm-started from and updating each fold's last fit `starts`.
/// A fold's graphs are built when it is fitted, not kept. On the CPU the folds are fitted side by
/// side: a fit of the thinned log leaves a core idle in its sequential parts (the forest, the
/// tree solves); the losses are summed in fold order, so the result does not depend on the
/// threads. On a GPU, one after the other: the fits would share one device.
fn held_out_loss(
    graph: &TransitionGraph,
    starts: &mut [Vec<Option<f64>>],
    settings: &FitSettings,
    backend: &dyn Backend,
    l2: f64,
) -> Result<f64> {
    let fixed = FitSettings {
        l2,
        l2_auto: false,
        potential_tol: CV_POTENTIAL_TOL,
        ..settings.clone()
    };
    let fold = |(k, start): (usize, &mut Vec<Option<f64>>)| -> Result<(f64, f64)> {
        let train = graph.recount(|item, n| n - fold_counts(item, n)[k]);
        let (v, _) = fit_from(&train, &fixed, backend, Some(start))?;
        let test = graph.recount(|item, n| fold_counts(item, n)[k]);
        let loss = fold_loss(&train, &test, &fixed, &v.value)?;
        *start = v.value;
        Ok(loss)
    };
    // An error is the first fold's in order; on a GPU no fold runs after it (the device may
    // be lost).
    let folds: Vec<(f64, f64)> = match backend.info().backend {
        BackendKind::Cpu => {
            let folds: Vec<Result<_>> = starts.par_iter_mut().enumerate().map(fold).collect();
            folds.into_iter().collect::<Result<_>>()?
        }
        BackendKind::Gpu => starts
            .iter_mut()
            .enumerate()
            .map(fold)
            .collect::<Result<_>>()?,
    };
    let (mut loss, mut weight) = (0.0, 0.0);
    for (l, w) in folds {
        loss += l;
        weight += w;
    }
    tracing::debug!(l2, loss, weight, "held-out loss");
    Ok(if weight > 0.0 {
        loss / weight
    } else {
        f64::NAN
    })
}

/// The estimator's unpenalised objective on the held-out counts at the training fit `value`,
/// and the weight it covers.
fn fold_loss(
    train: &TransitionGraph,
    test: &TransitionGraph,
    settings: &FitSettings,
    value: &[Option<f64>],
) -> Result<(f64, f64)> {
    // The variable the estimator's objective is written in.
    let x: Vec<Option<f64>> = match settings.estimator {
        Estimator::ReversibleMle => value
            .iter()
            .zip(&train.out_count)
            .map(|(v, &c)| v.map(|v| v + (c as f64).ln()))
            .collect(),
        Estimator::LeastAction | Estimator::Counts => value.to_vec(),
    };
    let weights = super::estimator_weights(test, settings)?.0;
    let (mut loss, mut weight) = (0.0, 0.0);
    for (e, w) in weights.iter().enumerate() {
        let (f, g) = (test.src[e] as usize, test.dst[e] as usize);
        if let (Some(w), Some(xf), Some(xg)) = (w, x[f], x[g]) {
            loss += w * softplus_neg(xf - xg);
            weight += w;
        }
    }
    Ok((loss, weight))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_partition_every_count_evenly() {
        let mut total = [0u64; FOLDS];
        for item in 0..2_000 {
            let c = fold_counts(item, 10);
            assert_eq!(c.iter().sum::<u64>(), 10);
            for k in 0..FOLDS {
                total[k] += c[k];
            }
        }
        // 20,000 records, 4,000 expected per fold, sd 57.
        assert!(total.iter().all(|&t| t.abs_diff(4_000) < 300), "{total:?}");
    }

    /// The folds fitted side by side give the bits of one after the other.
    #[test]
    fn the_choice_does_not_depend_on_the_threads() {
        let names: Vec<String> = (0..40).map(|i| format!("s{i:02}")).collect();
        let mut edges = Vec::new();
        for i in 0..40usize {
            for step in [1, 3] {
                let j = (i + step) % 40;
                edges.push((
                    names[i].as_str(),
                    names[j].as_str(),
                    2 + (7 * i + j) as u64 % 9,
                ));
                edges.push((names[j].as_str(), names[i].as_str(), 1 + (5 * i) as u64 % 7));
            }
        }
        let graph = crate::graph::graph_of(&edges);
        let settings = FitSettings {
            estimator: Estimator::ReversibleMle,
            l2_auto: true,
            ..FitSettings::default()
        };
        let backend = crate::backend::cpu::CpuBackend::new("test");
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let choice = pool
                .install(|| choose(&graph, &settings, &backend))
                .unwrap();
            let finite = choice.candidates.iter().all(|c| c.loss.is_finite());
            assert!(finite && choice.candidates.len() >= 3, "{choice:?}");
            format!("{:?} {:?}", choice.l2, choice.candidates)
        };
        let one = on(1);
        assert_eq!(on(2), one);
        assert_eq!(on(5), one);
    }

    #[test]
    fn a_huge_count_is_split_at_once() {
        let c = fold_counts(7, u64::MAX);
        assert_eq!(c.iter().sum::<u64>(), u64::MAX);
        assert!(c.iter().all(|&k| k.abs_diff(u64::MAX / 5) <= 1), "{c:?}");
    }
}
