//! Nightly-batch guarantees through the binary: a run killed (SIGKILL) at any moment of writing
//! leaves the output directory whole, old or new; two runs give identical outputs except the
//! wall-clock seconds (report.json's `timings` and `fit.seconds`, report.html's timings rows);
//! `--fail-on-violation ALPHA` exits 3 exactly when detailed balance is rejected; stderr stays
//! silent (no bars when it is not a terminal) unless `RUST_LOG` asks for the stage events.

use crate::support::{command, detbal, names, sample, text, tree};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// `analyze INPUT --device cpu -q -o OUT` without the resampling tests (seconds, and no part of
/// what is checked here) and with `extra`.
fn analyze_args<'a>(input: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "analyze",
        input.to_str().unwrap(),
        "--device",
        "cpu",
        "-q",
        "--permutations",
        "0",
        "--bootstrap",
        "0",
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args
}

fn analyze(input: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    detbal(&analyze_args(input, out, extra), &[])
}

/// Every file under `dir` by relative path; report.json without `timings` and `fit.seconds`,
/// report.html without its `timings` rows: wall-clock seconds, the only fields that differ
/// between two runs. `.detbal-manifest.json` is left out: it lists the hashes of those two files,
/// and every file it lists is compared itself.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for (name, bytes) in tree(dir) {
        // Folders have no bytes; every file in them is compared.
        let Some(mut bytes) = bytes else { continue };
        if name == ".detbal-manifest.json" {
            continue;
        }
        if name == "report.json" {
            let mut report: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            report.as_object_mut().unwrap().remove("timings");
            report["fit"].as_object_mut().unwrap().remove("seconds");
            bytes = serde_json::to_vec(&report).unwrap();
        } else if name == "report.html" {
            bytes = without_timings(&String::from_utf8(bytes).unwrap()).into_bytes();
        }
        files.insert(name, bytes);
    }
    files
}

/// report.html with the values of its `timings.*` rows blanked.
fn without_timings(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(at) = rest.find("<th>timings.") {
        let cell = at + rest[at..].find("<td>").unwrap() + "<td>".len();
        let end = cell + rest[cell..].find("</td>").unwrap();
        out.push_str(&rest[..cell]);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// A log whose outputs take a moment to write (44,000 states).
fn big_log(root: &Path) -> PathBuf {
    let log = root.join("big.parquet");
    let out = detbal(
        &[
            "simulate",
            "--mode",
            "llm-like",
            "--rows",
            "2000000",
            "--seed",
            "3",
            "-o",
            log.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    log
}

#[test]
fn a_run_killed_while_writing_leaves_the_old_or_the_new_output_whole() {
    let root = tempfile::tempdir().unwrap();
    let log = big_log(root.path());
    // The two possible complete states of the output directory.
    let (old_ref, new_ref) = (root.path().join("old-ref"), root.path().join("new-ref"));
    assert!(
        analyze(&log, &old_ref, &["--min-count", "7"])
            .status
            .success()
    );
    let start = Instant::now();
    assert!(analyze(&log, &new_ref, &[]).status.success());
    let full_run = start.elapsed().as_micros() as u64;
    let (old, new) = (contents(&old_ref), contents(&new_ref));
    assert_ne!(old, new);

    let jobs = root.path().join("jobs");
    std::fs::create_dir(&jobs).unwrap();
    let out = jobs.join("out");
    // Kills that left the staging directory behind: they landed while the outputs were written.
    let (mut saw_old, mut saw_new, mut mid_write) = (0, 0, 0);
    // Kill at fixed delays after the staging directory `out.tmp-PID` appears (the write has
    // begun), and at delays from the start of the process.
    let after_staging = [0, 0, 100, 300, 1_000, 3_000, 10_000, 20_000, 40_000, 80_000];
    let from_start = [60, 70, 80, 85, 90, 95, 100, 105, 110, 120].map(|pc| full_run * pc / 100);
    for (i, &(micros, wait_for_staging)) in after_staging
        .iter()
        .map(|&d| (d, true))
        .chain(from_start.iter().map(|&d| (d, false)))
        .collect::<Vec<_>>()
        .iter()
        .enumerate()
    {
        // The previous output: the old one on even rounds, whatever the last round left on odd.
        if i % 2 == 0 || !out.exists() {
            let _ = std::fs::remove_dir_all(&out);
            assert!(analyze(&log, &out, &["--min-count", "7"]).status.success());
        }
        let mut child = command(&analyze_args(&log, &out, &[]))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        if wait_for_staging {
            let staging = format!("out.tmp-{}", child.id());
            while !jobs.join(&staging).exists() && child.try_wait().unwrap().is_none() {
                assert!(start.elapsed() < Duration::from_secs(60));
            }
        }
        std::thread::sleep(Duration::from_micros(micros));
        let _ = child.kill();
        let status = child.wait().unwrap();
        if jobs.join(format!("out.tmp-{}", child.id())).exists() {
            mid_write += 1;
        }
        let after = contents(&out);
        if after == old {
            saw_old += 1;
        } else if after == new {
            saw_new += 1;
        } else {
            let differing = |reference: &BTreeMap<String, Vec<u8>>| -> Vec<String> {
                let mut names: Vec<String> =
                    reference.keys().chain(after.keys()).cloned().collect();
                names.sort();
                names.dedup();
                names.retain(|n| reference.get(n) != after.get(n));
                names
            };
            panic!(
                "round {i} ({micros} µs, exited: {status}): the output is neither the old one \
                 (differs in {:?}) nor the new one (differs in {:?})",
                differing(&old),
                differing(&new)
            );
        }
    }
    println!(
        "killed runs left the old output {saw_old} times, the new one {saw_new} times; \
         {mid_write} kills landed while writing (a full run: {full_run} µs)"
    );
    assert!(
        mid_write > 0,
        "no kill landed while the outputs were written"
    );
    // A later run clears what killed runs left beside the output.
    assert!(analyze(&log, &out, &[]).status.success());
    assert_eq!(names(&jobs), ["out"]);
    assert!(
        contents(&out) == new,
        "a complete run differs from the reference run"
    );
}

#[test]
fn two_runs_give_identical_outputs_except_timings() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    // With the resampling tests, drawn from the seed.
    let run = |out: &Path| {
        let args = [
            "analyze",
            sample().to_str().unwrap(),
            "--device",
            "cpu",
            "-q",
            "--permutations",
            "2000",
            "--bootstrap",
            "50",
            "--seed",
            "7",
            "-o",
            out.to_str().unwrap(),
        ]
        .map(str::to_string);
        let out = detbal(&args.each_ref().map(String::as_str), &[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    };
    run(&a);
    run(&b);
    let (a, b) = (contents(&a), contents(&b));
    for name in [
        "potentials.parquet",
        "nulls.parquet",
        "report.json",
        "report.html",
    ] {
        assert!(a.contains_key(name), "{name} missing");
    }
    // Byte for byte, every file (report.json less its timings).
    for (name, bytes) in &a {
        assert!(
            b.get(name) == Some(bytes),
            "{name} differs between two runs"
        );
    }
    assert_eq!(a.len(), b.len());
}

#[test]
fn fail_on_violation_exits_3_only_when_detailed_balance_is_rejected() {
    let root = tempfile::tempdir().unwrap();
    // The bundled sample is driven: rejected at any usual level; outputs are still written.
    let out = root.path().join("driven");
    let run = analyze(&sample(), &out, &["--fail-on-violation", "0.01"]);
    assert_eq!(run.status.code(), Some(3), "{}", text(&run.stderr));
    assert!(text(&run.stderr).contains("Detailed balance is rejected at α = 0.01"));
    assert!(out.join("report.json").exists());
    // A reversible log is not rejected.
    let log = root.path().join("reversible.parquet");
    let sim = detbal(
        &[
            "simulate",
            "--rows",
            "100000",
            "--seed",
            "5",
            "-o",
            log.to_str().unwrap(),
        ],
        &[],
    );
    assert!(sim.status.success(), "{}", text(&sim.stderr));
    let run = analyze(
        &log,
        &root.path().join("rev"),
        &["--fail-on-violation", "0.001"],
    );
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    // The level is checked like --alpha.
    let run = analyze(&log, &root.path().join("x"), &["--fail-on-violation", "3"]);
    assert_eq!(run.status.code(), Some(1));
    assert!(text(&run.stderr).contains("--fail-on-violation must lie strictly between 0 and 1"));
}

#[test]
fn stderr_is_silent_unless_rust_log_asks_for_stage_events() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    // Not quiet, but stderr is a pipe: no progress bars, no log lines.
    let sample = sample();
    let mut args = analyze_args(&sample, &out, &[]);
    args.retain(|&a| a != "-q");
    let run = detbal(&args, &[("RUST_LOG", "")]);
    assert!(run.status.success());
    assert!(run.stderr.is_empty(), "{}", text(&run.stderr));
    assert!(text(&run.stdout).starts_with("Input "));
    // RUST_LOG=detbal=info: one structured event per stage, with its numbers.
    let run = detbal(&args, &[("RUST_LOG", "detbal=info")]);
    assert!(run.status.success());
    let log = text(&run.stderr);
    for stage in ["load", "fit", "cycles", "write"] {
        assert!(
            log.contains(&format!("stage=\"{stage}\"")),
            "{stage}: {log}"
        );
    }
    assert!(log.contains("rows=200000 states=300 edges=2986"), "{log}");
    assert!(log.contains("iterations=7 converged=true"), "{log}");
}
