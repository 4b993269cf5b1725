//! The shared-potential test of `--group-by` (docs/METHOD.md §7): calibrated on pairs of groups
//! simulated from one potential, and rejecting two independent ones, in the shape of a word-agent
//! log of a small LLM (300 states, 5,000 transitions per group, most states seen once or twice).
//! The larger study is `examples/groups.rs`, results in BENCHMARKS.md ("Groups").

use detbal::graph::TransitionGraph;
use detbal::groups::shared::shared_potential_test;
use detbal::io::{self, LoadOptions};
use detbal::simulate::{SimMode, SimParams, simulate};
use detbal::stats::ks_uniform;
use detbal::stats::quasi_symmetry::VerdictSettings;
use std::path::Path;

/// The two groups' graphs of the llm-like log of `seed`, written in `dir`.
fn groups(seed: u64, shared: bool, dir: &Path) -> Vec<TransitionGraph> {
    let (log, truth) = (dir.join("l.parquet"), dir.join("l.json"));
    let params = SimParams {
        rows: 10_000,
        states: 300,
        seed,
        groups: 2,
        shared_potential: shared,
        ..SimParams::new(SimMode::LlmLike)
    };
    simulate(&params, &log, &truth).unwrap();
    let opts = LoadOptions {
        group_column: Some("group".into()),
        ..LoadOptions::default()
    };
    let loaded = io::load(std::slice::from_ref(&log), &opts).unwrap();
    loaded
        .groups
        .into_iter()
        .map(|(_, g)| g.canonical())
        .collect()
}

/// The test's p-value on each seed's log.
fn p_values(shared: bool, seeds: std::ops::RangeInclusive<u64>) -> Vec<f64> {
    let dir = tempfile::tempdir().unwrap();
    seeds
        .map(|seed| {
            let graphs = groups(seed, shared, dir.path());
            let settings = VerdictSettings {
                seed,
                ..VerdictSettings::default()
            };
            let graphs: Vec<&TransitionGraph> = graphs.iter().collect();
            let test = shared_potential_test(&graphs, &settings).unwrap();
            test.expect("the groups share states with potential differences")
                .p_value
        })
        .collect()
}

/// The size is at most the level (the test is conservative on trajectories, METHOD.md §7: the
/// p-values lean to 1, so the mean is bounded below, not pinned at 1/2).
#[test]
fn groups_of_one_potential_are_rejected_at_most_at_the_level() {
    let p = p_values(true, 1..=30);
    let ks = ks_uniform(&p);
    let rejected = p.iter().filter(|&&p| p < 0.05).count();
    let mean = p.iter().sum::<f64>() / p.len() as f64;
    println!(
        "one potential: KS p = {ks:.3}, mean p {mean:.3}, {rejected}/30 below 0.05, p = {p:?}"
    );
    // 30 logs at α = 0.05: 1.5 expected; 6 or more has probability < 0.5 %.
    assert!(rejected <= 5, "{rejected}/30 rejected at 0.05");
    assert!(mean > 0.4, "liberal: mean p {mean}, p-values {p:?}");
    assert!(ks > 0.01, "KS p = {ks}, p-values {p:?}");
}

#[test]
fn two_independent_potentials_are_rejected() {
    let p = p_values(false, 1..=10);
    println!("two potentials: p = {p:?}");
    assert!(p.iter().all(|&p| p < 0.01), "{p:?}");
}
