//! `--l2 auto`: the ridge's strength chosen from the data (docs/METHOD.md §2.5).
//!
//! The ridge `(λ/2) Σ V²` is a Gaussian prior `V_f ~ N(0, 1/λ)` on every state (for
//! `reversible-mle` on its fitted variable `u = V + log c`, see [`super::reversible`]), and the
//! fit is the MAP. λ is chosen by K-fold cross-validation over the records: every transition
//! goes to one of [`FOLDS`] folds at random (a multinomial split of each arc's count), the
//! estimator is fitted on the other folds and scored by its own unpenalised objective on the held-out
//! fold — `Σ w_test(f→g) K(x_f − x_g)`, with the estimator's weights computed from the held-out
//! counts alone, over the held-out arcs whose two states the training fit gives a value — and the
//! λ with the least total held-out loss wins.
//!
//! Candidates: the decades `10², 10¹, …, 10⁻⁴`, tried downwards (each fit warm-started from the
//! previous λ's) until the loss has risen twice in a row, then the half and quarter decades either
//! side of the best. The loss is a smooth, in practice unimodal, function of `log λ`.
//!
//! Why cross-validation and not the evidence (the Laplace approximation's `log det H`): the
//! least-action objective weighs transitions by `T = n/N`, a pseudo-likelihood whose evidence has
//! no probabilistic meaning, and the cross-validated loss treats every estimator alike.

use super::{Estimator, FitSettings, fit_from};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::fit::problem::softplus_neg;
use crate::graph::TransitionGraph;
use crate::rng::{Purpose, Stream, binomial};

/// Folds of the cross-validation.
pub const FOLDS: usize = 5;
/// Seed of the fold split: λ does not depend on `--seed`, so a report's potentials do not either.
const FOLD_SEED: u64 = 0x6c32_6175_746f;

/// How λ was chosen: every candidate tried and its held-out loss.
#[derive(Debug, Clone, serde::Serialize)]
pub struct L2Choice {
    /// The λ chosen.
    pub l2: f64,
    pub method: &'static str,
    pub folds: usize,
    /// Candidates in the order tried.
    pub candidates: Vec<L2Candidate>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct L2Candidate {
    pub l2: f64,
    /// Held-out loss per unit of held-out weight, summed over the folds.
    pub loss: f64,
}

/// One fold: the graph without it (training) and the graph of its records alone (held out).
struct Fold {
    train: TransitionGraph,
    test: TransitionGraph,
    /// The training fit at the last λ tried (the next λ's warm start).
    start: Vec<Option<f64>>,
}

/// Chooses λ for `settings`' estimator on `graph` (see the module docs).
pub(super) fn choose(
    graph: &TransitionGraph,
    settings: &FitSettings,
    backend: &dyn Backend,
) -> Result<L2Choice> {
    let mut folds: Vec<Fold> = (0..FOLDS)
        .map(|k| Fold {
            train: graph.recount(|item, n| n - fold_counts(item, n)[k]),
            test: graph.recount(|item, n| fold_counts(item, n)[k]),
            start: vec![None; graph.n_states()],
        })
        .collect();
    let mut candidates: Vec<L2Candidate> = Vec::new();
    let mut rises = 0;
    for decade in (-4..=2).rev() {
        let l2 = 10f64.powi(decade);
        let loss = held_out_loss(&mut folds, settings, backend, l2)?;
        rises = if candidates.iter().any(|c| c.loss <= loss) {
            rises + 1
        } else {
            0
        };
        candidates.push(L2Candidate { l2, loss });
        if rises == 2 {
            break;
        }
    }
    for step in [0.5, 0.25] {
        let best = best(&candidates).l2;
        for l2 in [best * 10f64.powf(step), best / 10f64.powf(step)] {
            let loss = held_out_loss(&mut folds, settings, backend, l2)?;
            candidates.push(L2Candidate { l2, loss });
        }
    }
    if candidates.iter().all(|c| c.loss.is_nan()) {
        return Err(Error::settings(
            "--l2 auto found no held-out transitions between states the training folds fit",
        )
        .hint("pass a fixed --l2 NUMBER"));
    }
    Ok(L2Choice {
        l2: best(&candidates).l2,
        method: "5-fold cross-validation of the estimator's held-out loss",
        folds: FOLDS,
        candidates,
    })
}

/// The candidate of least loss (the first of equals).
fn best(candidates: &[L2Candidate]) -> &L2Candidate {
    candidates
        .iter()
        .reduce(|b, c| if c.loss < b.loss { c } else { b })
        .expect("at least one candidate")
}

/// How many of an item's `n` records fall in each fold: a multinomial draw with equal
/// probabilities, as successive binomials.
fn fold_counts(item: u32, n: u64) -> [u64; FOLDS] {
    let stream = Stream::new(FOLD_SEED, Purpose::Fold);
    let mut counts = [0; FOLDS];
    let mut left = n;
    for (k, c) in counts.iter_mut().enumerate().take(FOLDS - 1) {
        *c = binomial(&stream, left, 1.0 / (FOLDS - k) as f64, item, k as u32);
        left -= *c;
    }
    counts[FOLDS - 1] = left;
    counts
}

/// The held-out loss at `l2` over all folds, per unit of held-out weight (NaN when no held-out
/// arc joins two fitted states).
fn held_out_loss(
    folds: &mut [Fold],
    settings: &FitSettings,
    backend: &dyn Backend,
    l2: f64,
) -> Result<f64> {
    let fixed = FitSettings {
        l2,
        l2_auto: false,
        ..settings.clone()
    };
    let (mut loss, mut weight) = (0.0, 0.0);
    for fold in folds.iter_mut() {
        let (v, _) = fit_from(&fold.train, &fixed, backend, Some(&fold.start))?;
        let (l, w) = fold_loss(&fold.train, &fold.test, &fixed, &v.value)?;
        loss += l;
        weight += w;
        fold.start = v.value;
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
}
