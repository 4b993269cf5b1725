//! The output directory through the `detbal` binary: replaced as a whole (no temporary left
//! behind), never replaced by a failed run, never taken over when it holds something else
//! (unless `--force`), and a clear error naming the path when it cannot be written.
//!
//! A write failing half-way (a full disk) cannot be provoked from here as root; the unit tests of
//! `report::atomic` cover that case with a failing writer.

mod common;

use common::{assert_error, detbal, report};
use std::path::{Path, PathBuf};
use std::process::Output;

fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/sample.parquet")
}

/// `detbal analyze INPUT --device cpu -q -o OUT EXTRA`.
fn analyze(input: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "analyze",
        input.to_str().unwrap(),
        "--device",
        "cpu",
        "-q",
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    detbal(&args, &[])
}

fn succeeds(out: Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// What `analyze` writes with its default settings (resampling on: `nulls.parquet`).
const OUTPUTS: [&str; 8] = [
    "cycles.parquet",
    "figures",
    "fundamental_cycles.parquet",
    "nulls.parquet",
    "pairs.parquet",
    "potentials.parquet",
    "report.html",
    "report.json",
];

#[test]
fn a_new_run_replaces_a_previous_output_whole() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    succeeds(analyze(&sample(), &out, &[]));
    assert_eq!(names(&out), OUTPUTS);
    std::fs::write(out.join("stale.parquet"), "from an older version").unwrap();
    succeeds(analyze(&sample(), &out, &["--min-count", "7"]));
    // The new outputs only, and no temporary or old copy beside them.
    assert_eq!(names(&out), OUTPUTS);
    assert_eq!(names(root.path()), ["out"]);
    assert_eq!(report(&out)["settings"]["pairs"]["min_count"], 7);
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
