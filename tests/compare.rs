//! `detbal compare` through the binary: two runs of the same log drift by exactly zero and exit
//! 0; a log with extra transitions into three states names those three as the top movers and
//! exits 5 beyond `--max-potential-drift`; new and vanished states are counted, `--max-state-drift`
//! and `--max-r-drop` exit 5 beyond their limits; a missing directory is an error naming the file.

mod common;

use common::{assert_error, detbal, text};
use std::fmt::Write;
use std::path::Path;

const STATES: usize = 40;
/// States whose incoming transitions the perturbed log triples.
const MOVED: [usize; 3] = [5, 17, 29];

/// A detailed-balance log as `source,target,count`: a ring with chords, planted potential
/// `V(i) = 1.5 sin i`, `n(f→g) = 200 e^{(V(f) − V(g))/2}`; incoming counts of `boosted` × 3.
fn write_log(path: &Path, boosted: &[usize]) {
    let v = |i: usize| 1.5 * (i as f64).sin();
    let mut csv = String::from("source,target,count\n");
    for f in 0..STATES {
        for g in [(f + 1) % STATES, (f + 7) % STATES] {
            for (a, b) in [(f, g), (g, f)] {
                let mut n = (200.0 * ((v(a) - v(b)) / 2.0).exp()).round() as u64;
                if boosted.contains(&b) {
                    n *= 3;
                }
                writeln!(csv, "s{a},s{b},{n}").unwrap();
            }
        }
    }
    std::fs::write(path, csv).unwrap();
}

fn analyze(log: &Path, out: &Path) {
    let o = detbal(
        &[
            "analyze",
            log.to_str().unwrap(),
            "--device",
            "cpu",
            "-q",
            "-o",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
}

fn compare(old: &Path, new: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["compare", old.to_str().unwrap(), new.to_str().unwrap()];
    args.extend_from_slice(extra);
    detbal(&args, &[])
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)))
}

#[test]
fn two_runs_of_the_same_log_have_zero_drift() {
    let root = tempfile::tempdir().unwrap();
    let log = root.path().join("log.csv");
    write_log(&log, &[]);
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    analyze(&log, &a);
    analyze(&log, &b);
    let out = compare(&a, &b, &["--json", "--max-potential-drift", "1e-12"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let c = json(&out);
    assert_eq!(c["shared_states"], STATES);
    assert_eq!(c["compared_states"], STATES);
    assert_eq!(
        (c["new_states"].as_u64(), c["vanished_states"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(c["rms_drift"].as_f64(), Some(0.0));
    assert_eq!(c["max_drift"].as_f64(), Some(0.0));
    assert_eq!(c["pearson_r"]["old"], c["pearson_r"]["new"]);
    assert!(c["pearson_r"]["old"].as_f64().unwrap() > 0.99, "{c}");
    assert_eq!(c["new_attractors"], serde_json::json!([]));
    assert_eq!(c["vanished_attractors"], serde_json::json!([]));
    assert!(c["exceeded"].as_array().unwrap().is_empty());
    // The text form says the same.
    let out = compare(&a, &b, &[]);
    assert_eq!(out.status.code(), Some(0));
    let printed = text(&out.stdout);
    assert!(
        printed.contains("RMS |ΔV| = 0.0000, max |ΔV| = 0.0000"),
        "{printed}"
    );
    assert!(
        printed.contains("Drift      within thresholds"),
        "{printed}"
    );
}

#[test]
fn a_perturbed_log_names_the_states_that_moved_and_exits_5() {
    let root = tempfile::tempdir().unwrap();
    let (log, perturbed) = (
        root.path().join("log.csv"),
        root.path().join("perturbed.csv"),
    );
    write_log(&log, &[]);
    write_log(&perturbed, &MOVED);
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    analyze(&log, &a);
    analyze(&perturbed, &b);
    let out = compare(
        &a,
        &b,
        &["--json", "--top", "5", "--max-potential-drift", "0.1"],
    );
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    let c = json(&out);
    let movers = c["top_movers"].as_array().unwrap();
    assert_eq!(movers.len(), 5);
    let mut top3: Vec<&str> = movers[..3]
        .iter()
        .map(|m| m["state"].as_str().unwrap())
        .collect();
    top3.sort_unstable();
    assert_eq!(top3, ["s17", "s29", "s5"], "{c}");
    // Tripling the arrivals into a state lowers its potential by about ln 3 against its
    // neighbours; the rest of the graph barely moves.
    for m in &movers[..3] {
        let delta = m["delta"].as_f64().unwrap();
        assert!((-1.3..-0.8).contains(&delta), "{m}");
        let (old, new) = (m["old"].as_f64().unwrap(), m["new"].as_f64().unwrap());
        assert!((new - old - delta).abs() < 1e-12, "{m}");
    }
    assert!(movers[3]["delta"].as_f64().unwrap().abs() < 0.5, "{c}");
    assert!(c["rms_drift"].as_f64().unwrap() > 0.1, "{c}");
    let exceeded = c["exceeded"][0].as_str().unwrap();
    assert!(exceeded.starts_with("RMS potential drift"), "{exceeded}");
    // Without thresholds compare only reports.
    let out = compare(&a, &b, &[]);
    assert_eq!(out.status.code(), Some(0));
    let printed = text(&out.stdout);
    assert!(
        printed.contains("  s5 ") || printed.contains("  s17 "),
        "{printed}"
    );
}

#[test]
fn a_missing_or_foreign_directory_is_an_error_naming_the_file() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("nowhere");
    let out = compare(&missing, &missing, &[]);
    assert_error(&out, &["cannot read", "nowhere/report.json"]);
    let foreign = root.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("report.json"), "{\"a\": 1}").unwrap();
    let out = compare(&foreign, &foreign, &[]);
    assert_error(&out, &["foreign/report.json", "not a detbal report"]);
}

#[test]
fn new_and_vanished_states_and_the_other_thresholds() {
    let root = tempfile::tempdir().unwrap();
    let (log, changed) = (root.path().join("log.csv"), root.path().join("changed.csv"));
    write_log(&log, &[]);
    // The same log without state s39 and with a new state n0 exchanging with s0 and s1.
    let original = std::fs::read_to_string(&log).unwrap();
    let mut kept: String = original
        .lines()
        .filter(|l| !l.split(',').take(2).any(|s| s == "s39"))
        .map(|l| format!("{l}\n"))
        .collect();
    kept.push_str("n0,s0,50\ns0,n0,50\nn0,s1,50\ns1,n0,50\n");
    std::fs::write(&changed, kept).unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    analyze(&log, &a);
    analyze(&changed, &b);
    let out = compare(&a, &b, &["--json", "--max-r-drop", "0.5"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let c = json(&out);
    let counts = [
        "shared_states",
        "new_states",
        "vanished_states",
        "compared_states",
    ]
    .map(|k| c[k].as_u64().unwrap());
    assert_eq!(counts, [39, 1, 1, 39], "{c}");
    // Removing a state moves its neighbours: a small drift, beyond a tight per-state limit.
    let max = c["max_drift"].as_f64().unwrap();
    assert!(max > 0.0 && max < 1.0, "{c}");
    let limit = format!("{}", max / 2.0);
    let out = compare(&a, &b, &["--json", "--max-state-drift", &limit]);
    assert_eq!(out.status.code(), Some(5));
    let exceeded = json(&out)["exceeded"][0].as_str().unwrap().to_string();
    assert!(
        exceeded.starts_with("largest potential drift"),
        "{exceeded}"
    );
}

#[test]
fn an_r_drop_beyond_its_limit_exits_5() {
    let root = tempfile::tempdir().unwrap();
    let log = root.path().join("log.csv");
    write_log(&log, &[]);
    let sample = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/sample.parquet");
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    analyze(&log, &a);
    analyze(&sample, &b);
    let out = compare(&a, &b, &["--json", "--max-r-drop", "0.05"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    let c = json(&out);
    // The sample's states are s0 … s299: the log's s0 … s39 are shared.
    let counts = ["shared_states", "new_states", "vanished_states"].map(|k| c[k].as_u64().unwrap());
    assert_eq!(counts, [40, 260, 0], "{c}");
    let (old, new) = (
        c["pearson_r"]["old"].as_f64().unwrap(),
        c["pearson_r"]["new"].as_f64().unwrap(),
    );
    assert!(old > 0.99 && new < 0.95, "{c}");
    let exceeded = c["exceeded"][0].as_str().unwrap();
    assert_eq!(exceeded, format!("r dropped by {:.4} > 0.05", old - new));
}
