//! `detbal analyze --config FILE`: the file's values apply (paths relative to the file), flags on
//! the command line win, and mistakes in the file are errors naming the file and the key.

use crate::support::{assert_error, detbal, report, sample, text};
use std::path::{Path, PathBuf};

/// Writes `detbal.toml` with `body` into `dir` and returns its path.
fn config(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("detbal.toml");
    std::fs::write(&path, body).unwrap();
    path
}

#[test]
fn file_values_apply_with_paths_relative_to_the_file_and_flags_win() {
    let root = tempfile::tempdir().unwrap();
    let jobs = root.path().join("jobs");
    std::fs::create_dir(&jobs).unwrap();
    std::fs::copy(sample(), jobs.join("log.parquet")).unwrap();
    let file = config(
        &jobs,
        r#"
inputs = ["log.parquet"]
output = "nightly"
device = "cpu"
quiet = true
min-count = 7
alpha = 0.001
max-iterations = 5000
max-cycle-len = 4
"#,
    );
    // Run from another directory: the paths are the file's.
    let out = detbal(&["analyze", "--config", file.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "quiet from the file");
    let r = report(&jobs.join("nightly"));
    assert_eq!(r["settings"]["pairs"]["min_count"], 7);
    assert_eq!(r["settings"]["alpha"], 0.001);
    assert_eq!(r["settings"]["fit"]["max_iterations"], 5000);
    assert_eq!(r["settings"]["cycles"]["max_len"], 4);
    assert_eq!(r["device"]["backend"], "cpu");

    // Flags win, inputs and output included; keys not given still come from the file.
    let elsewhere = root.path().join("elsewhere");
    let out = detbal(
        &[
            "analyze",
            sample().to_str().unwrap(),
            "--config",
            file.to_str().unwrap(),
            "--min-count",
            "9",
            "-o",
            elsewhere.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r = report(&elsewhere);
    assert_eq!(r["settings"]["pairs"]["min_count"], 9);
    assert_eq!(r["settings"]["alpha"], 0.001);
    assert_eq!(r["input"]["paths"][0], sample().to_str().unwrap());
}

#[test]
fn mistakes_in_the_file_name_the_file_and_the_key() {
    let root = tempfile::tempdir().unwrap();
    let sample = sample();
    let run = |body: &str| {
        let file = config(root.path(), body);
        let args = [
            "analyze",
            sample.to_str().unwrap(),
            "--device",
            "cpu",
            "-q",
            "--config",
            file.to_str().unwrap(),
        ];
        detbal(&args, &[])
    };
    let unknown = assert_error(
        &run("min_count = 3\n"),
        &["detbal.toml", "unknown key `min_count`"],
    );
    assert!(unknown.contains("did you mean `min-count`?"), "{unknown}");
    assert!(
        unknown.contains("valid keys: inputs, format, source-column"),
        "{unknown}"
    );
    assert!(!unknown.contains("no-quiet"), "{unknown}");
    assert_error(
        &run("alpha = \"small\"\n"),
        &[
            "detbal.toml",
            "key `alpha`: expected a number, found string",
        ],
    );
    assert_error(
        &run("max-iterations = 1.5\n"),
        &["key `max-iterations`: expected an integer, found float"],
    );
    assert_error(
        &run("quiet = \"yes\"\n"),
        &["key `quiet`: expected a boolean (true or false), found string"],
    );
    assert_error(
        &run("estimator = \"magic\"\n"),
        &["key `estimator`: invalid value 'magic'"],
    );
    // A float is passed on as written: 1e308 was spelt out in 309 digits.
    assert_error(
        &run("l2 = 1e308\n"),
        &["key `l2`: ", "a number from 0 to 1e100, got `1e308`"],
    );
    assert_error(
        &run("alpha = [\n"),
        &["detbal.toml (line 1)", "not a valid TOML file"],
    );
    // Range checks run on the merged arguments and name the file and key.
    assert_error(
        &run("alpha = 2.0\n"),
        &["detbal.toml sets `alpha`: --alpha must lie strictly between 0 and 1"],
    );
    // A consistency check names the key that came from the file, not the flag given.
    assert_error(
        &run("exposure = \"uniform\"\n"),
        &["detbal.toml sets `exposure`: --exposure uniform needs the number of agent attempts"],
    );
    let missing = root.path().join("absent.toml");
    let out = detbal(
        &[
            "analyze",
            "x.parquet",
            "--config",
            missing.to_str().unwrap(),
        ],
        &[],
    );
    assert_error(&out, &["cannot read", "absent.toml"]);
}

#[test]
fn without_inputs_anywhere_it_is_a_usage_error() {
    let root = tempfile::tempdir().unwrap();
    let file = config(root.path(), "device = \"cpu\"\n");
    let out = detbal(&["analyze", "--config", file.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("<INPUTS>"),
        "{}",
        text(&out.stderr)
    );
}

/// A switch set in the file (`quiet = true`, `holdout = true`, `paper = true`) is turned off on
/// the command line by its `--no-` flag: the file's value does not apply, and a settings error
/// does not blame the file for it.
#[test]
fn a_switch_set_in_the_file_is_turned_off_by_its_no_flag() {
    let root = tempfile::tempdir().unwrap();
    let file = config(
        root.path(),
        r#"
device = "cpu"
quiet = true
holdout = true
paper = true
permutations = 0
bootstrap = 0
verdict-resamples = 0
"#,
    );
    let sample = sample();
    let run = |out: &str, extra: &[&str]| {
        let out_dir = root.path().join(out);
        let mut args = vec![
            "analyze",
            sample.to_str().unwrap(),
            "--config",
            file.to_str().unwrap(),
            "-o",
        ];
        args.push(out_dir.to_str().unwrap());
        args.extend(extra);
        (detbal(&args, &[]), out_dir)
    };
    // The file alone: quiet, holdout and paper on.
    let (out, dir) = run("file", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "quiet from the file");
    let r = report(&dir);
    assert_eq!(r["settings"]["paper"], true);
    assert_eq!(r["settings"]["resampling"]["holdout"], true);

    // Each turned off on the command line.
    let (out, dir) = run("off", &["--no-quiet", "--no-holdout", "--no-paper"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("Verdict"),
        "{}",
        text(&out.stdout)
    );
    let r = report(&dir);
    assert_eq!(r["settings"]["paper"], false);
    assert_eq!(r["settings"]["resampling"]["holdout"], false);

    // Turned off, then on again: the last one wins.
    let (out, dir) = run("on", &["--no-paper", "--paper", "--no-quiet"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(report(&dir)["settings"]["paper"], true);

    // `--no-paper` frees `--estimator`: with the file's `paper = true` the two conflict.
    let (out, _) = run("conflict", &["--estimator", "counts"]);
    assert_error(&out, &["detbal.toml sets `paper`", "--paper"]);
    let (out, dir) = run("counts", &["--estimator", "counts", "--no-paper"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(report(&dir)["settings"]["fit"]["estimator"], "counts");
}

#[test]
fn no_flags_are_not_keys_of_the_file() {
    let root = tempfile::tempdir().unwrap();
    let file = config(root.path(), "no-quiet = true\n");
    let sample = sample();
    let out = detbal(
        &[
            "analyze",
            sample.to_str().unwrap(),
            "--config",
            file.to_str().unwrap(),
        ],
        &[],
    );
    let stderr = assert_error(
        &out,
        &[
            "unknown key `no-quiet`",
            "a command-line flag; in the file write `quiet = false`",
        ],
    );
    assert!(!stderr.contains("no-paper"), "{stderr}");
}
