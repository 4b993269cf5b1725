//! `detbal compare` through the binary: two runs of the same log drift by exactly zero and exit
//! 0; a log with extra transitions into three states names those three as the top movers and
//! exits 5 beyond `--max-potential-drift`; new and vanished states are counted, `--max-state-drift`
//! and `--max-r-drop` exit 5 beyond their limits; a threshold that cannot be measured (no shared
//! state, a NaN potential, no r) exits 6; a missing directory, a corrupt potentials table or an
//! incomplete report.json is an error naming the file (and key), never a panic; `--json` into a
//! closed pipe ends quietly.

use crate::support::{
    self, Schema, assert_error, assert_valid, column, command, detbal, fixture, read_parquet, text,
    with_stdout_closed, write_parquet,
};
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
    let o = support::analyze(&[log], out, &["--device", "cpu", "-q"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
}

fn compare(old: &Path, new: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["compare", old.to_str().unwrap(), new.to_str().unwrap()];
    args.extend_from_slice(extra);
    detbal(&args, &[])
}

/// The `--json` output, after checking it against `schema/compare.schema.json`.
fn json(out: &std::process::Output) -> serde_json::Value {
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
    assert_valid(Schema::Compare, &json, "compare --json");
    json
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
    let sample = support::sample();
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

/// Two outputs of `write_log` (a, b: the same log) in `root`.
fn two_outputs(root: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let log = root.join("log.csv");
    write_log(&log, &[]);
    let (a, b) = (root.join("a"), root.join("b"));
    analyze(&log, &a);
    analyze(&log, &b);
    (a, b)
}

/// Rewrites `dir/potentials.parquet` with `edit` applied to its `potential` column.
fn edit_potentials(dir: &Path, edit: impl Fn(usize, Option<f64>) -> Option<f64>) {
    use arrow::array::{ArrayRef, AsArray};
    use arrow::datatypes::Float64Type;
    let path = dir.join("potentials.parquet");
    let table = read_parquet(&path);
    let edited: arrow::array::Float64Array = column(&table, "potential")
        .as_primitive::<Float64Type>()
        .iter()
        .enumerate()
        .map(|(i, v)| edit(i, v))
        .collect();
    let schema = table.schema();
    let columns: Vec<(&str, ArrayRef)> = schema
        .fields()
        .iter()
        .zip(table.columns())
        .map(|(field, column)| {
            let column = if field.name() == "potential" {
                std::sync::Arc::new(edited.clone()) as ArrayRef
            } else {
                column.clone()
            };
            (field.name().as_str(), column)
        })
        .collect();
    write_parquet(&path, columns, None);
}

/// A gate that cannot measure its drift fails: exit 6, naming the threshold and why, on
/// stderr and in the output; it never reads "within thresholds".
#[test]
fn a_threshold_that_cannot_be_measured_fails_with_exit_6() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = two_outputs(root.path());
    let unmeasured = |out: &std::process::Output, flag: &str, why: &str| {
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(6), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        for part in [flag, "could not be measured", why] {
            assert!(stderr.contains(part), "{part:?} missing from {stderr}");
        }
    };

    // No shared state: the same log with every state renamed.
    let renamed = root.path().join("renamed.csv");
    let log = std::fs::read_to_string(root.path().join("log.csv")).unwrap();
    std::fs::write(
        &renamed,
        log.replace('s', "t")
            .replace("tource,target", "source,target"),
    )
    .unwrap();
    let other = root.path().join("other");
    analyze(&renamed, &other);
    for flag in ["--max-potential-drift", "--max-state-drift"] {
        let out = compare(&a, &other, &[flag, "0.1"]);
        unmeasured(&out, flag, "share no state");
        let printed = text(&out.stdout);
        assert!(printed.contains("Drift      NOT MEASURED"), "{printed}");
        assert!(!printed.contains("within thresholds"), "{printed}");
        let out = compare(&a, &other, &[flag, "0.1", "--json"]);
        unmeasured(&out, flag, "share no state");
        let c = json(&out);
        assert_eq!(c["shared_states"], 0);
        assert!(c["rms_drift"].is_null() && c["max_drift"].is_null(), "{c}");
        assert!(
            c["unmeasured"][0].as_str().unwrap().starts_with(flag),
            "{c}"
        );
    }
    // Each run has its r, but runs without a common state are not comparable: the r gate
    // fails too. Without thresholds compare only reports.
    let out = compare(&a, &other, &["--max-r-drop", "0.1"]);
    unmeasured(&out, "--max-r-drop", "share no state");
    assert_eq!(compare(&a, &other, &[]).status.code(), Some(0));

    // A NaN potential in the new run.
    edit_potentials(&b, |i, v| if i == 3 { Some(f64::NAN) } else { v });
    let out = compare(&a, &b, &["--max-potential-drift", "0.1"]);
    unmeasured(&out, "--max-potential-drift", "non-finite potential");
    assert!(text(&out.stderr).contains("b/potentials.parquet"));
    let out = compare(&a, &b, &["--max-state-drift", "0.1", "--json"]);
    unmeasured(&out, "--max-state-drift", "non-finite potential");
    // Every potential NaN, in the old run this time.
    edit_potentials(&a, |_, _| Some(f64::NAN));
    let out = compare(
        &a,
        &b,
        &["--max-potential-drift", "1e9", "--max-state-drift", "1e9"],
    );
    unmeasured(&out, "--max-state-drift", "a/potentials.parquet");

    // No r in one report: the r gate cannot be checked; another gate's excess still exits 5.
    let (c, d) = (root.path().join("c"), root.path().join("d"));
    analyze(&root.path().join("log.csv"), &c);
    analyze(&root.path().join("log.csv"), &d);
    let path = d.join("report.json");
    let mut report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    report["pairs"]["pearson_r"] = serde_json::Value::Null;
    std::fs::write(&path, serde_json::to_vec(&report).unwrap()).unwrap();
    let out = compare(&c, &d, &["--max-r-drop", "0.05"]);
    unmeasured(&out, "--max-r-drop", "pearson_r is null");
    edit_potentials(&d, |i, v| v.map(|v| if i == 0 { v + 5.0 } else { v }));
    let out = compare(&c, &d, &["--max-r-drop", "0.05", "--max-state-drift", "1"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(
        printed.contains("EXCEEDED: largest potential drift"),
        "{printed}"
    );
    assert!(printed.contains("NOT MEASURED: --max-r-drop"), "{printed}");
}

/// Corrupt potentials tables (the fuzz regressions, a text file) and broken report.json files
/// are errors naming the file (and the key), exit 1, never a panic.
#[test]
fn a_corrupt_potentials_table_or_report_is_an_error() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = two_outputs(root.path());
    let potentials = b.join("potentials.parquet");
    let original = std::fs::read(&potentials).unwrap();
    let fuzz = fixture("fuzz");
    let mut corrupt: Vec<_> = std::fs::read_dir(&fuzz)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    corrupt.sort();
    assert!(corrupt.len() >= 3, "{corrupt:?}");
    for file in &corrupt {
        std::fs::copy(file, &potentials).unwrap();
        for args in [&[][..], &["--json"]] {
            assert_error(
                &compare(&a, &b, args),
                &["b/potentials.parquet", "not a readable Parquet file"],
            );
        }
    }
    std::fs::write(&potentials, "state,potential\ns0,1.0\n").unwrap();
    assert_error(
        &compare(&a, &b, &[]),
        &[
            "b/potentials.parquet",
            "not a readable Parquet file",
            "PAR1",
        ],
    );
    std::fs::write(&potentials, &original).unwrap();
    assert_eq!(compare(&a, &b, &[]).status.code(), Some(0));

    let report_path = b.join("report.json");
    let report = std::fs::read(&report_path).unwrap();
    std::fs::write(&report_path, "{\"schema_version\": 1, ").unwrap();
    assert_error(&compare(&a, &b, &[]), &["b/report.json", "not valid JSON"]);
    let full: serde_json::Value = serde_json::from_slice(&report).unwrap();
    for (section, key) in [
        ("pairs", "pearson_r"),
        ("verdict", "p_value"),
        ("cycles", "p_value"),
        ("entropy_production", "nats_per_transition"),
    ] {
        let mut partial = full.clone();
        partial[section].as_object_mut().unwrap().remove(key);
        std::fs::write(&report_path, serde_json::to_vec(&partial).unwrap()).unwrap();
        let named = format!("key `{section}.{key}` is missing");
        assert_error(&compare(&a, &b, &[]), &["b/report.json", &named]);
    }
    let mut partial = full.clone();
    partial["pairs"]["chi2"] = serde_json::json!("large");
    std::fs::write(&report_path, serde_json::to_vec(&partial).unwrap()).unwrap();
    assert_error(
        &compare(&a, &b, &[]),
        &["b/report.json", "key `pairs.chi2` is not a number or null"],
    );
    let mut partial = full.clone();
    partial.as_object_mut().unwrap().remove("attractors");
    std::fs::write(&report_path, serde_json::to_vec(&partial).unwrap()).unwrap();
    assert_error(
        &compare(&a, &b, &[]),
        &["b/report.json", "attractors.listed"],
    );
}

/// `compare --json | true`: the reader is gone before compare writes; no panic message, and
/// the exit code is still the comparison's.
#[test]
fn json_into_a_closed_pipe_ends_quietly() {
    let root = tempfile::tempdir().unwrap();
    let (log, perturbed) = (root.path().join("log.csv"), root.path().join("moved.csv"));
    write_log(&log, &[]);
    write_log(&perturbed, &MOVED);
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    analyze(&log, &a);
    analyze(&perturbed, &b);
    for (extra, code) in [(&[][..], 0), (&["--max-state-drift=0.01"][..], 5)] {
        let out = with_stdout_closed(
            command(&[
                "compare",
                a.to_str().unwrap(),
                b.to_str().unwrap(),
                "--json",
            ])
            .args(extra),
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{stderr}");
        assert!(stderr.is_empty(), "{stderr}");
    }
}

/// A threshold that is not a number ≥ 0 is refused: NaN passed every drift, a negative one
/// failed every comparison.
#[test]
fn a_threshold_must_be_a_number_at_least_0() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = two_outputs(root.path());
    for (flag, value) in [
        ("--max-potential-drift", "nan"),
        ("--max-state-drift", "-1"),
        ("--max-r-drop", "-0.5"),
    ] {
        let out = compare(&a, &b, &[&format!("{flag}={value}")]);
        let says = format!("invalid setting: {flag} must be a number ≥ 0, got ");
        assert_error(&out, &[&says]);
    }
    let out = compare(&a, &b, &["--max-r-drop=inf", "--max-state-drift=0"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
