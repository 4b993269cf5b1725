//! Trajectories in bounded memory: with a small buffer the steps are spilled to temporary files
//! partitioned by run (and partitions split again), and the graph is the in-memory path's,
//! count for count, on shuffled logs whose runs are split across row groups and files; logs
//! sorted by (run, step) are read as they come, and one that leaves that order late is read
//! again. Duplicate steps and nulls are errors naming the file, the row and the column, in every
//! path, and no spill file outlives a run.

use arrow::array::{ArrayRef, Int64Array, StringArray};
use detbal::io::{LoadOptions, LoadedLog, load};
use parquet::file::properties::WriterProperties;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::support::{self, assert_error, assert_same_graph, detbal, write_parquet};

/// One row: run, step, state (`None`: null).
pub(crate) type Row = (u64, i64, Option<String>);

/// A fixed-seed generator of small numbers.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, m: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % m
    }
}

/// `runs` runs of 1 to 40 steps (steps numbered from a run-dependent start, with gaps), a walk
/// over 300 states that often stays put; rows sorted by (run, step).
pub(crate) fn trajectory(runs: u64, seed: u64) -> Vec<Row> {
    let mut rng = Lcg(seed);
    let mut rows = Vec::new();
    for run in 0..runs {
        let (mut state, mut step) = (rng.next(300), rng.next(1000) as i64 - 500);
        for _ in 0..1 + rng.next(40) {
            rows.push((run, step, Some(format!("s{state}"))));
            if rng.next(3) > 0 {
                state = (state + rng.next(5)) % 300;
            }
            step += 1 + rng.next(3) as i64;
        }
    }
    rows
}

fn shuffled(mut rows: Vec<Row>, seed: u64) -> Vec<Row> {
    let mut rng = Lcg(seed);
    for i in (1..rows.len()).rev() {
        rows.swap(i, rng.next(i as u64 + 1) as usize);
    }
    rows
}

/// Writes `rows` into `files` Parquet files in `dir` (named `part-K.parquet`), row groups of
/// `row_group` rows; runs as integers or as text (`run-N`).
fn write(dir: &Path, rows: &[Row], files: usize, row_group: usize, text_runs: bool) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let props = || {
        WriterProperties::builder()
            .set_max_row_group_row_count(Some(row_group))
            .build()
    };
    for (k, part) in rows.chunks(rows.len().div_ceil(files)).enumerate() {
        let run: ArrayRef = match text_runs {
            true => Arc::new(StringArray::from_iter_values(
                part.iter().map(|r| format!("run-{}", r.0)),
            )),
            false => Arc::new(Int64Array::from_iter_values(
                part.iter().map(|r| r.0 as i64),
            )),
        };
        let columns = vec![
            ("run", run),
            (
                "step",
                Arc::new(Int64Array::from_iter_values(part.iter().map(|r| r.1))) as ArrayRef,
            ),
            (
                "state",
                Arc::new(StringArray::from_iter(part.iter().map(|r| r.2.clone()))),
            ),
        ];
        write_parquet(
            &dir.join(format!("part-{k}.parquet")),
            columns,
            Some(props()),
        );
    }
    dir.to_owned()
}

fn read(dir: &Path, buffer: usize, drop_null_states: bool) -> detbal::error::Result<LoadedLog> {
    let opts = LoadOptions {
        trajectory_buffer_rows: buffer,
        drop_null_states,
        ..LoadOptions::default()
    };
    load(&[dir.to_owned()], &opts)
}

/// Same graph (states in the same order), same rows, transitions and runs: two reads of the
/// same files.
fn assert_same_log(a: &LoadedLog, b: &LoadedLog) {
    assert_same_graph(&a.graph, &b.graph);
    let counts = |l: &LoadedLog| (l.summary.rows, l.summary.transitions, l.summary.runs);
    assert_eq!(counts(a), counts(b));
}

/// The same counts between the same states, from files holding the same rows in another order
/// (which orders the states otherwise: compared in name order).
fn assert_same_counts(a: &LoadedLog, b: &LoadedLog) {
    assert_same_graph(&a.graph.clone().canonical(), &b.graph.clone().canonical());
    let counts = |l: &LoadedLog| (l.summary.rows, l.summary.transitions, l.summary.runs);
    assert_eq!(counts(a), counts(b));
}

#[test]
fn the_spill_path_gives_the_graph_of_the_in_memory_path() {
    let dir = tempfile::tempdir().unwrap();
    let rows = trajectory(2_000, 1);
    let n = rows.len();
    for text_runs in [false, true] {
        let base = dir.path().join(format!("text-{text_runs}"));
        let sorted = write(&base.join("sorted"), &rows, 2, 1_000, text_runs);
        let mixed = write(
            &base.join("shuffled"),
            &shuffled(rows.clone(), 7),
            3,
            700,
            text_runs,
        );
        // Everything in memory at once: the reference.
        let memory = read(&mixed, n + 1, false).unwrap();
        assert_eq!(memory.summary.runs, Some(2_000));
        assert_eq!(memory.summary.format, "parquet/trajectory");
        // Spilled in 64 partitions of about n/64 > 300 steps, each split again.
        assert_same_log(&memory, &read(&mixed, 300, false).unwrap());
        // Spilled in 64 partitions sorted whole.
        assert_same_log(&memory, &read(&mixed, 5_000, false).unwrap());
        // Sorted by (run, step): read as it comes, whatever the buffer.
        assert_same_counts(&memory, &read(&sorted, 1, false).unwrap());
    }
}

#[test]
fn a_log_that_leaves_run_order_late_is_read_again_to_the_same_graph() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = trajectory(500, 2);
    // Steps of early runs moved to the end of the last file: the first runs were added already
    // when these rows come.
    let late: Vec<Row> = [3, 10, 50].iter().map(|&i| rows.remove(i)).collect();
    rows.extend(late);
    let log = write(&dir.path().join("late"), &rows, 2, 500, false);
    let mixed = write(
        &dir.path().join("mixed"),
        &shuffled(rows.clone(), 3),
        2,
        500,
        false,
    );
    let reference = read(&log, rows.len() + 1, false).unwrap();
    assert_same_log(&reference, &read(&log, 100, false).unwrap());
    assert_same_counts(&reference, &read(&mixed, rows.len() + 1, false).unwrap());
}

#[test]
fn duplicate_steps_and_nulls_are_errors_in_every_path() {
    let dir = tempfile::tempdir().unwrap();
    let rows = trajectory(300, 4);
    // Run 5's second step again, with another state, at the end of the last file.
    let second = rows.iter().filter(|r| r.0 == 5).nth(1).unwrap().clone();
    let mut twice = rows.clone();
    twice.push((5, second.1, Some("elsewhere".into())));
    let step = format!("run 5 has step {} twice", second.1);
    let sorted = write(&dir.path().join("sorted"), &twice, 1, 400, false);
    let mixed = write(
        &dir.path().join("mixed"),
        &shuffled(twice, 5),
        2,
        400,
        false,
    );
    for (log, buffer) in [(&sorted, 100), (&mixed, 100_000), (&mixed, 100)] {
        let message = read(log, buffer, false).unwrap_err().to_string();
        for part in [step.as_str(), "part-", "column `step`", "row group"] {
            assert!(message.contains(part), "{part:?} missing from {message}");
        }
    }

    // A null state: an error at its row, or a gap with --drop-null-states (the same graph in
    // every path); a null run: always an error.
    let mut gaps = rows.clone();
    for i in (0..gaps.len()).step_by(17) {
        gaps[i].2 = None;
    }
    let sorted = write(&dir.path().join("gaps-sorted"), &gaps, 2, 400, false);
    let mixed = write(
        &dir.path().join("gaps-mixed"),
        &shuffled(gaps.clone(), 6),
        2,
        400,
        false,
    );
    for log in [&sorted, &mixed] {
        let message = read(log, 100, false).unwrap_err().to_string();
        assert!(message.contains("null state") && message.contains("column `state`"));
    }
    let memory = read(&mixed, 100_000, true).unwrap();
    assert_eq!(memory.summary.dropped_rows, gaps.len().div_ceil(17) as u64);
    assert_same_log(&memory, &read(&mixed, 100, true).unwrap());
    assert_same_counts(&memory, &read(&sorted, 100, true).unwrap());
    let no_run = dir.path().join("no-run.csv");
    std::fs::write(&no_run, "run,step,state\n1,0,a\n,1,b\n1,2,c\n").unwrap();
    let message = load(&[no_run], &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(message.contains("null run") && message.contains("line 3, column `run`"));
}

#[test]
fn spill_files_are_gone_after_every_run_and_a_failed_spill_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let rows = trajectory(300, 8);
    let mixed = write(
        &dir.path().join("mixed"),
        &shuffled(rows.clone(), 9),
        2,
        400,
        false,
    );
    let mut twice = rows.clone();
    twice.push(rows[0].clone());
    let broken = write(
        &dir.path().join("twice"),
        &shuffled(twice, 9),
        2,
        400,
        false,
    );
    let spill = dir.path().join("spill");
    std::fs::create_dir(&spill).unwrap();
    let out = dir.path().join("out");
    let analyze = |input: &Path, tmp: &Path| {
        let args = [
            "analyze",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--trajectory-buffer",
            "100",
            "--permutations",
            "0",
            "--bootstrap",
            "0",
        ];
        detbal(&args, &[("TMPDIR", tmp.to_str().unwrap())])
    };
    let run = analyze(&mixed, &spill);
    assert!(run.status.success(), "{}", support::text(&run.stderr));
    assert_eq!(support::report(&out)["input"]["rows"], rows.len());
    assert_error(&analyze(&broken, &spill), &["twice", "column `step`"]);
    assert_eq!(
        std::fs::read_dir(&spill).unwrap().count(),
        0,
        "spill files left"
    );
    // No room for the spill: an error naming the directory and the input being read.
    let missing = dir.path().join("missing");
    assert_error(
        &analyze(&mixed, &missing),
        &["cannot spill", "missing", "part-0.parquet", "TMPDIR"],
    );
}
