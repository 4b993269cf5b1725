//! The output directory through the `detbal` binary: replaced as a whole (no temporary left
//! behind), never replaced by a failed run, never taken over when it holds anything its
//! `.detbal-manifest.json` does not list unchanged (unless `--force`), never when it is or holds
//! an input (not even with `--force`), a clear error naming the path when it cannot be written,
//! and `--json` into a closed pipe ends quietly.
//!
//! A write failing half-way (a full disk) cannot be provoked from here as root; the unit tests of
//! `report::atomic` cover that case with a failing writer.

use crate::support::{
    self, Tree, assert_error, command, detbal, names, report, sample, text, tree,
    with_stdout_closed,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

/// `detbal analyze INPUT --device cpu -q -o OUT EXTRA`.
fn analyze(input: &Path, out: &Path, extra: &[&str]) -> Output {
    support::analyze(
        &[input],
        out,
        &[&["--device", "cpu", "-q"][..], extra].concat(),
    )
}

fn succeeds(out: Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What `analyze` writes with its default settings (resampling on: `nulls.parquet`).
const OUTPUTS: [&str; 10] = [
    ".detbal-manifest.json",
    "cycles.parquet",
    "figures",
    "fundamental_cycles.parquet",
    "nulls.parquet",
    "pairs.parquet",
    "potentials.parquet",
    "report.html",
    "report.json",
    "splits.parquet",
];

#[test]
fn a_new_run_replaces_a_previous_output_whole() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    succeeds(analyze(&sample(), &out, &["--permutations", "0"]));
    let without_nulls: Vec<&str> = OUTPUTS
        .into_iter()
        .filter(|&n| n != "nulls.parquet")
        .collect();
    assert_eq!(names(&out), without_nulls);
    succeeds(analyze(&sample(), &out, &["--min-count", "7"]));
    assert_eq!(names(&out), OUTPUTS);
    // A run that writes no nulls.parquet removes the previous one: the new outputs only, and
    // no temporary or old copy beside them.
    succeeds(analyze(&sample(), &out, &["--permutations", "0"]));
    assert_eq!(names(&out), without_nulls);
    assert_eq!(names(root.path()), ["out"]);
    // A previous output missing some of its listed files holds nothing foreign: replaced too.
    std::fs::remove_file(out.join("pairs.parquet")).unwrap();
    std::fs::remove_dir_all(out.join("figures")).unwrap();
    succeeds(analyze(&sample(), &out, &["--min-count", "7"]));
    assert_eq!(names(&out), OUTPUTS);
    assert_eq!(report(&out)["settings"]["pairs"]["min_count"], 7);
}

/// The manifest lists every other file of the output with its size and BLAKE3 hash.
#[test]
fn the_manifest_lists_every_file_written() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    succeeds(analyze(&sample(), &out, &[]));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join(".detbal-manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["detbal_version"], env!("CARGO_PKG_VERSION"));
    let listed: BTreeMap<String, (u64, String)> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let path = f["path"].as_str().unwrap().to_string();
            let size = f["size"].as_u64().unwrap();
            (path, (size, f["blake3"].as_str().unwrap().to_string()))
        })
        .collect();
    let written: BTreeMap<String, (u64, String)> = tree(&out)
        .into_iter()
        .filter(|(name, _)| name != ".detbal-manifest.json")
        .filter_map(|(name, bytes)| {
            let bytes = bytes?;
            let hash = blake3::hash(&bytes).to_hex().to_string();
            Some((name, (bytes.len() as u64, hash)))
        })
        .collect();
    assert!(written.contains_key("figures/potential_hist.svg") || written.len() > 10);
    assert_eq!(listed, written);
}

/// Runs `detbal ARGS` and checks that it is refused with one error line holding every part of
/// `expected`, and that `root` holds `out` alone, every byte of which is as `before`.
fn refused(args: &[&str], expected: &[&str], root: &Path, before: &Tree) {
    let stderr = assert_error(&detbal(args, &[]), expected);
    assert_eq!(stderr.lines().count(), 1, "one error line: {stderr}");
    assert_eq!(names(root), ["out"], "{args:?}");
    assert_eq!(&tree(&root.join("out")), before, "{args:?}");
}

/// An output directory that is or holds an input (a file, a directory, a glob, the config file)
/// is refused before anything runs, with or without --force, and every byte stays.
#[test]
fn an_output_directory_holding_an_input_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let log = out.join("log.parquet");
    std::fs::copy(sample(), &log).unwrap();
    let before = tree(&out);
    let out_arg = out.to_str().unwrap();
    let log_arg = log.to_str().unwrap();
    let glob = format!("{out_arg}/*.parquet");
    // The same directory spelt another way: compared canonicalised.
    let other_spelling = format!("{out_arg}/../out/.");
    let parent = root.path().to_str().unwrap();
    for force in [&[][..], &["--force"]] {
        // (input, output, the input named in the error: a glob's match)
        for (input, output, named) in [
            (log_arg, out_arg, log_arg),
            (log_arg, other_spelling.as_str(), log_arg),
            (out_arg, out_arg, out_arg),
            (glob.as_str(), out_arg, log_arg),
            (log_arg, parent, log_arg),
        ] {
            let mut args = vec!["analyze", input, "--device", "cpu", "-q", "-o", output];
            args.extend_from_slice(force);
            let output = format!("cannot write {output}");
            let input = format!("the input {named}");
            refused(&args, &[&output, &input], root.path(), &before);
        }
    }
    // A config file kept in the output directory: `output = "."` is its own folder.
    let config = out.join("job.toml");
    let job = |input: &str| {
        format!("inputs = [{input:?}]\noutput = \".\"\ndevice = \"cpu\"\nquiet = true\n")
    };
    std::fs::write(&config, job("log.parquet")).unwrap();
    let before = tree(&out);
    let config_arg = config.to_str().unwrap();
    for force in [&[][..], &["--force"]] {
        let mut args = vec!["analyze", "--config", config_arg];
        args.extend_from_slice(force);
        refused(
            &args,
            &["cannot write", "log.parquet"],
            root.path(),
            &before,
        );
    }
    // The config alone is an input too, with the log elsewhere.
    let elsewhere = root.path().join("log.parquet");
    std::fs::rename(&log, &elsewhere).unwrap();
    std::fs::write(&config, job(elsewhere.to_str().unwrap())).unwrap();
    let before = tree(&out);
    let stderr = assert_error(
        &detbal(&["analyze", "--config", config_arg, "--force"], &[]),
        &["cannot write", "the input", "job.toml"],
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(tree(&out), before);
    // An output beside the inputs is fine.
    let beside = root.path().join("beside");
    succeeds(analyze(&elsewhere, &beside, &["--permutations", "0"]));
}

/// A directory with a report.json that has a `schema_version` but no manifest is not taken
/// over: every byte of it stays, and the error names it and its first foreign entry.
#[test]
fn a_foreign_directory_with_a_schema_version_is_left_alone() {
    let root = tempfile::tempdir().unwrap();
    let p = root.path().join("p");
    std::fs::create_dir_all(p.join("src")).unwrap();
    std::fs::write(p.join("src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(p.join("report.json"), r#"{"schema_version":"2.1"}"#).unwrap();
    let before = tree(&p);
    let stderr = assert_error(
        &analyze(&sample(), &p, &[]),
        &[
            &format!("cannot write {}", p.display()),
            "not a detbal output",
            "no .detbal-manifest.json",
            "`report.json`",
            "earlier have no manifest",
            "--force",
        ],
    );
    assert!(!stderr.contains("panicked"));
    assert_eq!(tree(&p), before);
    assert_eq!(names(root.path()), ["p"]);
    // --force replaces it, as documented.
    succeeds(analyze(&sample(), &p, &["--force"]));
    assert_eq!(names(&p), OUTPUTS);
}

/// A detbal output to which something was added, or in which an output was edited, or whose
/// manifest is gone (an output of an earlier version) is foreign: refused, naming the entry.
#[test]
fn a_detbal_output_with_foreign_or_changed_files_is_left_alone() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    // (case, how the previous output is changed, what the error says)
    type Case = (&'static str, fn(&Path), &'static str);
    let cases: [Case; 4] = [
        (
            "added file",
            |d| std::fs::write(d.join("notes.txt"), "mine").unwrap(),
            "`notes.txt` is not listed",
        ),
        (
            "added folder",
            |d| {
                std::fs::create_dir(d.join("figures/drafts")).unwrap();
                std::fs::write(d.join("figures/drafts/a.svg"), "<svg/>").unwrap();
            },
            "`figures/drafts/` is not listed",
        ),
        (
            "edited output",
            |d| {
                let mut bytes = std::fs::read(d.join("report.json")).unwrap();
                bytes.push(b' ');
                std::fs::write(d.join("report.json"), bytes).unwrap();
            },
            "`report.json` was changed",
        ),
        (
            "no manifest",
            |d| std::fs::remove_file(d.join(".detbal-manifest.json")).unwrap(),
            "no .detbal-manifest.json",
        ),
    ];
    for (case, change, expected) in cases {
        let _ = std::fs::remove_dir_all(&out);
        succeeds(analyze(&sample(), &out, &["--permutations", "0"]));
        change(&out);
        let before = tree(&out);
        assert_error(
            &analyze(&sample(), &out, &["--permutations", "0"]),
            &[
                &format!("cannot write {}", out.display()),
                expected,
                "--force",
            ],
        );
        assert_eq!(tree(&out), before, "{case}");
        assert_eq!(names(root.path()), ["out"], "{case}");
    }
}

#[test]
fn a_failed_run_leaves_the_previous_output_intact() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    succeeds(analyze(&sample(), &out, &[]));
    let before = std::fs::read(out.join("report.json")).unwrap();
    let bad = root.path().join("bad.csv");
    std::fs::write(&bad, "source,target\na,\n").unwrap();
    assert_error(
        &analyze(&bad, &out, &[]),
        &["bad.csv", "null source or target"],
    );
    assert_eq!(std::fs::read(out.join("report.json")).unwrap(), before);
    assert_eq!(names(&out), OUTPUTS);
    assert_eq!(names(root.path()), ["bad.csv", "out"]);
}

#[test]
fn another_directory_is_replaced_only_with_force() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("thesis");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("chapter1.tex"), "precious").unwrap();
    // A report.json without a schema_version is not a detbal output.
    std::fs::write(out.join("report.json"), "{}").unwrap();
    let stderr = assert_error(
        &analyze(&sample(), &out, &[]),
        &["thesis", "not a detbal output", "hint: ", "--force"],
    );
    assert!(
        stderr.contains(&format!("cannot write {}", out.display())),
        "{stderr}"
    );
    assert!(stderr.contains("`chapter1.tex`"), "{stderr}");
    assert_eq!(names(&out), ["chapter1.tex", "report.json"]);
    assert_eq!(names(root.path()), ["thesis"]);
    succeeds(analyze(&sample(), &out, &["--force"]));
    assert_eq!(names(&out), OUTPUTS);
    // An empty directory needs no --force.
    let empty = root.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    succeeds(analyze(&sample(), &empty, &[]));
    assert_eq!(names(&empty), OUTPUTS);
}

/// Tests run as root, which writes through read-only permissions: an unwritable location is a
/// path whose parent is a regular file, or an output "directory" that is a file.
#[test]
fn an_unwritable_location_is_an_error_naming_it() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("notes.txt");
    std::fs::write(&file, "keep me").unwrap();
    let under_file = file.join("out");
    assert_error(
        &analyze(&sample(), &under_file, &[]),
        &[
            &format!("cannot write {}", under_file.display()),
            "Not a directory",
        ],
    );
    for extra in [&[][..], &["--force"]] {
        assert_error(
            &analyze(&sample(), &file, extra),
            &[
                &format!("cannot write {}", file.display()),
                "exists and is not a directory",
            ],
        );
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    assert_eq!(names(root.path()), ["notes.txt"]);
}

#[test]
fn an_unwritable_location_keeps_the_previous_report() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    succeeds(analyze(&sample(), &out, &[]));
    let before = std::fs::read(out.join("report.json")).unwrap();
    // An output path under the previous report file, which is not a directory.
    let inside = out.join("report.json").join("deeper");
    assert_error(
        &analyze(&sample(), &inside, &[]),
        &[&format!("cannot write {}", inside.display())],
    );
    assert_eq!(std::fs::read(out.join("report.json")).unwrap(), before);
    assert_eq!(names(&out), OUTPUTS);
}

/// `analyze --json` into a pipe closed before it writes (`| head -c1`): no panic message, and
/// the exit code of the run (0), its outputs written.
#[test]
fn json_into_a_closed_pipe_ends_quietly() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    // The reading end closes before the analysis is done.
    let run = with_stdout_closed(
        command(&[
            "analyze",
            sample().to_str().unwrap(),
            "--device",
            "cpu",
            "--json",
        ])
        .args(["--permutations", "0", "-o", out.to_str().unwrap()]),
    );
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    assert!(out.join("report.json").is_file());
}
