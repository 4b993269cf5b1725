//! Snapshots (insta) of what people read: `--help` texts, error messages of bad input and bad
//! settings, the terminal summary of the bundled sample and a `compare` report. A change to any
//! of them fails this test until the snapshot in `tests/it/snapshots/` is reviewed and updated:
//!
//! ```sh
//! INSTA_UPDATE=always cargo test --release --test it snapshots::   # then review `git diff tests/it/snapshots`
//! ```
//!
//! `.ci/run` sets `INSTA_UPDATE=no CI=true`, so CI never writes or accepts a snapshot. Commands run
//! in a temporary directory with relative paths, so no path differs between machines; the CPU
//! thread count and the fit's last gradient norm (floating-point noise at the optimum) are
//! redacted.

use crate::support::{command, sample};
use std::path::Path;

/// `detbal ARGS` run in `dir`: exit code, stdout and stderr as one text.
fn run(dir: &Path, args: &[&str]) -> String {
    let out = command(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        // Help wraps to at most 80 columns when stdout is not a terminal, as here.
        .env("COLUMNS", "80")
        .output()
        .expect("detbal runs");
    let mut text = format!("exit code: {:?}\n", out.status.code());
    for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        if !bytes.is_empty() {
            text.push_str(&format!("--- {name}\n{}", String::from_utf8_lossy(bytes)));
        }
    }
    text
}

/// Snapshots `value` under `name` with the machine-dependent parts redacted.
fn snapshot(name: &str, value: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\d+ CPU threads?", "[N] CPU threads");
    settings.add_filter(r"\|∇\|∞ = [0-9.e+-]+", "|∇|∞ = [gradient norm]");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!(name, value));
}

#[test]
fn help_texts() {
    let dir = tempfile::tempdir().unwrap();
    snapshot("help", &run(dir.path(), &["--help"]));
    snapshot("analyze_help", &run(dir.path(), &["analyze", "--help"]));
    snapshot("compare_help", &run(dir.path(), &["compare", "--help"]));
    snapshot("simulate_help", &run(dir.path(), &["simulate", "--help"]));
}

#[test]
fn error_messages() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("null.csv", "source,target\na,b\nb,\n");
    write("columns.csv", "from,to\na,b\n");
    write("selfish.csv", "source,target\na,a\na,a\n");
    write("log.txt", "a b\n");
    write("detbal.toml", "inputs = \"null.csv\"\nmin_count = 3\n");
    let cases: [(&str, &[&str]); 9] = [
        (
            "error_null_target",
            &["analyze", "null.csv", "--device", "cpu"],
        ),
        (
            "error_missing_columns",
            &["analyze", "columns.csv", "--device", "cpu"],
        ),
        (
            "error_only_self_transitions",
            &["analyze", "selfish.csv", "--device", "cpu"],
        ),
        (
            "error_unknown_extension",
            &["analyze", "log.txt", "--device", "cpu"],
        ),
        (
            "error_missing_file",
            &["analyze", "missing.parquet", "--device", "cpu"],
        ),
        (
            "error_bad_setting",
            &["analyze", "null.csv", "--alpha", "2"],
        ),
        (
            "error_config_unknown_key",
            &["analyze", "--config", "detbal.toml"],
        ),
        ("error_compare_missing_dir", &["compare", "old", "new"]),
        ("error_usage", &["analyze"]),
    ];
    for (name, args) in cases {
        snapshot(name, &run(dir.path(), args));
    }
}

#[test]
fn summary_of_the_bundled_sample_and_a_comparison() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(sample(), dir.path().join("sample.parquet")).unwrap();
    let analyze = ["analyze", "sample.parquet", "--device", "cpu", "-o"];
    let summary = run(dir.path(), &[&analyze[..], &["a"]].concat());
    // The summary wraps to COLUMNS (80 here): no line is wider.
    for line in summary.lines() {
        assert!(
            line.chars().count() <= 80,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    assert!(summary.ends_with("\nOutputs    a\n"), "{summary}");
    snapshot("summary_sample", &summary);
    let fewer = [
        "--min-count",
        "20",
        "--permutations",
        "0",
        "--bootstrap",
        "0",
    ];
    let b = run(
        dir.path(),
        &[&analyze[..], &["b", "-q"], &fewer[..]].concat(),
    );
    assert_eq!(b, "exit code: Some(0)\n");
    snapshot(
        "compare_sample",
        &run(dir.path(), &["compare", "a", "b", "--top", "3"]),
    );
}

/// The README's quick start shows the summary the bundled sample gives at 100 columns, block by
/// block, except the device's (it names the machine's adapter) and the fit's last gradient norm
/// (rounding noise at the optimum).
#[test]
fn the_readme_shows_the_samples_summary() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md is readable");
    let shown: Vec<&str> = (readme.lines())
        .skip_while(|line| !line.starts_with("    Input  "))
        .take_while(|line| !line.is_empty())
        .map(|line| &line[4..])
        .collect();
    assert!(shown.len() > 10, "the README shows no summary");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(sample(), dir.path().join("sample.parquet")).unwrap();
    let out = command(&[
        "analyze",
        "sample.parquet",
        "--device",
        "cpu",
        "-o",
        "detbal-out",
    ])
    .current_dir(dir.path())
    .env_remove("RUST_LOG")
    .env("COLUMNS", "100")
    .output()
    .expect("detbal runs");
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    // Each line with the block it belongs to; the device's block is left out.
    let blocks = |lines: Vec<&str>| -> Vec<String> {
        let mut block = String::new();
        (lines.into_iter())
            .filter_map(|line| {
                if !line.starts_with(' ') {
                    block = line.split_whitespace().next().unwrap_or("").to_owned();
                }
                let line = line.split("|∇|∞ = ").next().unwrap_or(line);
                (block != "Device").then(|| line.trim_end().to_owned())
            })
            .collect()
    };
    assert_eq!(blocks(printed.lines().collect()), blocks(shown));
}
