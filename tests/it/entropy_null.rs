//! The entropy production's null on a log where no pair is seen both ways: `σ̂` is 0 over no
//! reciprocal pair, but the resamples drawn from the fitted reversible model see pairs both
//! ways, and their stationary solves (a driven ring whose `π` spans many orders of magnitude)
//! must converge: the null is a finite, positive mean and spread, and `σ̂` lies below it.

use crate::support::{analyze, report};
use crate::trajectory_spill::trajectory;
use std::fmt::Write;

#[test]
fn a_log_without_reciprocal_pairs_has_a_finite_null() {
    let dir = tempfile::tempdir().unwrap();
    // A walk that only moves forward on a ring of 300 states: 6,168 rows, no pair both ways.
    let csv = (trajectory(300, 8).iter()).fold("run,step,state\n".to_owned(), |mut csv, r| {
        writeln!(csv, "{},{},{}", r.0, r.1, r.2.as_deref().unwrap()).unwrap();
        csv
    });
    let log = dir.path().join("drift.csv");
    std::fs::write(&log, csv).unwrap();
    let out = dir.path().join("out");
    let run = analyze(
        &[&log],
        &out,
        &["--permutations", "0", "--bootstrap", "0", "-q"],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report = report(&out);
    let entropy = &report["entropy_production"];
    assert_eq!(entropy["reciprocal_pairs"], 0, "{entropy}");
    assert_eq!(
        entropy["nats_per_transition"].as_f64(),
        Some(0.0),
        "{entropy}"
    );
    assert_eq!(entropy["null_resamples"], 40, "{entropy}");
    let number = |key: &str| {
        (entropy[key].as_f64()).unwrap_or_else(|| panic!("{key} is not a number: {entropy}"))
    };
    let (mean, sd) = (number("null_mean"), number("null_sd"));
    assert!(mean > 0.0 && sd > 0.0, "{entropy}");
    assert_eq!(number("excess"), -mean, "{entropy}");
    assert!(
        (number("excess_z") - -mean / sd).abs() <= 1e-12 * mean / sd,
        "{entropy}"
    );
}
