//! The resampling stage: the explanatory-power test of V on random halves, the held-out check
//! and the bootstrap intervals of V (`--permutations`, `--holdout`, `--bootstrap`), each
//! computed by [`crate::stats::permutation`] and [`crate::stats::bootstrap`] from the one
//! settings borrow this stage takes.

use super::AnalyzeSettings;
use crate::backend::Backend;
use crate::error::Result;
use crate::fit::{self, Potential};
use crate::graph::TransitionGraph;
use crate::stats::bootstrap;
use crate::stats::permutation::{self, Half, Resampling, split_half};

/// Everything the stage computed; `None` when `--permutations 0 --bootstrap 0` and no
/// `--holdout`.
pub(super) fn run(
    graph: &TransitionGraph,
    potential: &Potential,
    backend: &dyn Backend,
    settings: &AnalyzeSettings,
) -> Result<Option<Resampling>> {
    let r = &settings.resampling;
    if r.permutations == 0 && r.bootstrap == 0 && !r.holdout {
        return Ok(None);
    }
    let mut tests = Vec::new();
    let mut holdout = None;
    if r.permutations > 0 || r.holdout {
        // V fitted on half A, for the test and the held-out check on half B. Half B is built
        // after the fit, and half A kept only for the held-out check: one half less beside the
        // fit's working set (the resampling stage sets the 1e8-row default run's peak).
        let half_a = split_half(graph, r.seed, Half::A);
        let (v_a, report_a) = fit::fit(&half_a, &settings.fit, backend)?;
        let half_a = r.holdout.then_some(half_a);
        let half_b = split_half(graph, r.seed, Half::B);
        if r.permutations > 0 {
            let min_count = settings.pairs.min_count;
            tests.extend(permutation::explanatory_power(
                &half_b, &v_a, backend, min_count, r,
            )?);
        }
        if let Some(half_a) = &half_a {
            holdout = Some(permutation::holdout(
                half_a,
                &half_b,
                &v_a,
                report_a.identifiable_states,
                &settings.pairs,
                &settings.cycles,
            )?);
        }
    }
    let bootstrap = (r.bootstrap > 0)
        .then(|| bootstrap::bootstrap(graph, potential, backend, &settings.fit, r))
        .transpose()?;
    tracing::info!(
        stage = "resampling",
        permutations = r.permutations,
        bootstrap = r.bootstrap,
        holdout = r.holdout,
    );
    Ok(Some(Resampling {
        settings: r.clone(),
        tests,
        bootstrap,
        holdout,
    }))
}
