//! Planted potentials are recovered and detailed balance is judged right on simulations with a
//! known truth (`detbal simulate`).

use crate::support::simulated;
use detbal::analyze::{Analysis, AnalyzeSettings};
use detbal::fit::Estimator;
use detbal::pipeline::analyze;
use detbal::report::Verdict;
use detbal::simulate::{SimMode, SimParams, Truth};
use detbal::stats::pearson;

fn simulate_and_analyze(params: &SimParams, settings: &AnalyzeSettings) -> (Analysis, Truth) {
    let sim = simulated(params);
    let a = analyze(std::slice::from_ref(&sim.log), settings)
        .unwrap()
        .pooled;
    (a, sim.truth())
}

/// Pearson correlation of fitted and planted potentials over identifiable states with at least
/// `min_visits` transitions out.
fn recovery(a: &Analysis, truth: &Truth, min_visits: u64) -> (f64, usize) {
    let planted = truth.potential_by_name();
    let (mut fitted, mut true_v) = (Vec::new(), Vec::new());
    for (f, name) in a.graph.names.iter().enumerate() {
        if let Some(v) = a.potential.value[f]
            && a.graph.out_count[f] >= min_visits
        {
            fitted.push(v);
            true_v.push(planted[name.as_str()]);
        }
    }
    (pearson(&fitted, &true_v).unwrap(), fitted.len())
}

#[test]
fn reversible_simulation_recovers_the_potential_and_is_not_rejected() {
    let params = SimParams {
        rows: 1_000_000,
        states: 2_000,
        seed: 7,
        ..SimParams::new(SimMode::Reversible)
    };
    let (a, truth) = simulate_and_analyze(&params, &AnalyzeSettings::default());
    assert!(a.fit.converged, "{}", a.fit.status);
    let (r, states) = recovery(&a, &truth, 20);
    assert!(states > 1_500, "only {states} states with ≥ 20 visits");
    assert!(r >= 0.99, "Pearson(fitted, planted) = {r}");
    let (pairs, cycles) = (a.pair_test.p_value.unwrap(), a.cycle_test.p_value.unwrap());
    assert!(
        pairs > 0.01,
        "pairwise test rejects a reversible chain: p = {pairs}, {:?}",
        a.pair_test
    );
    assert!(
        cycles > 0.01,
        "cycle test rejects a reversible chain: p = {cycles}, {:?}",
        a.cycle_test
    );
    assert_eq!(
        Verdict::of(&a).rejected,
        Some(false),
        "{:?}",
        a.verdict_test
    );
}

#[test]
fn driven_simulation_is_rejected() {
    let params = SimParams {
        rows: 1_000_000,
        states: 2_000,
        seed: 11,
        ..SimParams::new(SimMode::Driven)
    };
    let (a, _) = simulate_and_analyze(&params, &AnalyzeSettings::default());
    let cycles = a.cycle_test.p_value.unwrap();
    assert!(
        cycles < 1e-6,
        "driven chain not rejected by the cycle test: p = {cycles}"
    );
    assert_eq!(Verdict::of(&a).rejected, Some(true), "{:?}", a.verdict_test);
}

#[test]
fn every_estimator_recovers_a_reversible_potential() {
    let params = SimParams {
        rows: 300_000,
        states: 500,
        seed: 3,
        ..SimParams::new(SimMode::Reversible)
    };
    for estimator in [Estimator::LeastAction, Estimator::ReversibleMle] {
        let mut settings = AnalyzeSettings::default();
        settings.fit.estimator = estimator;
        let (a, truth) = simulate_and_analyze(&params, &settings);
        assert!(a.fit.converged, "{estimator:?}: {}", a.fit.status);
        let (r, _) = recovery(&a, &truth, 20);
        assert!(r >= 0.99, "{estimator:?}: Pearson = {r}");
    }
}
