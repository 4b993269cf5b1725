//! The estimators against an external anchor: deeptime's reversible maximum-likelihood Markov
//! model on the same simulated llm-like log (BENCHMARKS.md, "Estimators").

use crate::support::simulated;
use detbal::analyze::AnalyzeSettings;
use detbal::fit::Estimator;
use detbal::graph::strongly_connected_components;
use detbal::pipeline::analyze;
use detbal::simulate::{SimMode, SimParams};
use detbal::stats::pearson;

/// Pearson correlation of deeptime's `V = −log π` (`MaximumLikelihoodMSM(reversible=True)`,
/// largest strongly connected set, 5,197 states) with the planted potential, on
/// `detbal simulate --mode llm-like --rows 1000000 --seed 1`; measured with
/// the workplace reference script `reference.py --methods deeptime --potentials-out` (see
/// BENCHMARKS.md) and `benches/recovery.py`.
const DEEPTIME_PEARSON: f64 = 0.775_994_971_371_312;
const DEEPTIME_STATES: usize = 5_197;

#[test]
fn reversible_mle_recovers_the_planted_potential_at_least_as_well_as_deeptime() {
    let sim = simulated(&SimParams {
        rows: 1_000_000,
        seed: 1,
        ..SimParams::new(SimMode::LlmLike)
    });
    let truth = sim.truth();
    let planted = truth.potential_by_name();

    let mut settings = AnalyzeSettings::default();
    settings.fit.estimator = Estimator::ReversibleMle;
    let a = analyze(std::slice::from_ref(&sim.log), &settings)
        .unwrap()
        .pooled;
    assert!(a.fit.converged, "{}", a.fit.status);
    // deeptime keeps the largest strongly connected set: compare on the same states.
    let sccs = strongly_connected_components(&a.graph, |_| true);
    let largest = (0..sccs.count()).max_by_key(|&c| sccs.size[c]).unwrap() as u32;
    let (mut fitted, mut true_v) = (Vec::new(), Vec::new());
    for f in (0..a.graph.n_states()).filter(|&f| sccs.id[f] == largest) {
        fitted.push(a.potential.value[f].unwrap());
        true_v.push(planted[a.graph.names[f].as_str()]);
    }
    assert_eq!(fitted.len(), DEEPTIME_STATES);
    let r = pearson(&fitted, &true_v).unwrap();
    // The same maximum-likelihood estimate, converged at least as tightly: equal to deeptime's
    // correlation up to deeptime's own stopping tolerance (maxerr 1e-8 on π).
    assert!(
        r >= DEEPTIME_PEARSON - 1e-5,
        "Pearson {r} < deeptime's {DEEPTIME_PEARSON}"
    );
}
