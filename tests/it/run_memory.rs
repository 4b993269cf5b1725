//! Whether a log's runs remember more than their current state (`detbal::io::memory`): Markov
//! logs are not said to, a walk that keeps its direction is, in every form its rows come in,
//! and the summary then cautions against the verdict.

use crate::support::{analyze, report, simulated, text, write_parquet};
use arrow::array::{ArrayRef, Int64Array, StringArray, UInt64Array};
use detbal::io::{self, LoadOptions, memory::RunMemory};
use detbal::simulate::{SimMode, SimParams};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::path::Path;
use std::sync::Arc;

/// Runs of `length` moves of a walk on a ring of `states` with as many random chords that, with
/// probability `momentum`, does not step back to where it came from (else a uniform
/// neighbour), each started on a uniform arc: reversible, with every arc's flux equal, and
/// Markov only at `momentum = 0`. Rows `(run, source, target)`.
fn walk(
    states: usize,
    runs: u64,
    length: usize,
    momentum: f64,
    seed: u64,
) -> Vec<(u64, usize, usize)> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut neighbours: Vec<Vec<usize>> = (0..states)
        .map(|f| vec![(f + 1) % states, (f + states - 1) % states])
        .collect();
    for _ in 0..states {
        let (f, g) = (rng.random_range(0..states), rng.random_range(0..states));
        if f != g && !neighbours[f].contains(&g) {
            neighbours[f].push(g);
            neighbours[g].push(f);
        }
    }
    let arcs: Vec<(usize, usize)> = (0..states)
        .flat_map(|f| neighbours[f].iter().map(move |&g| (f, g)))
        .collect();
    let mut rows = Vec::new();
    for run in 0..runs {
        let (mut back, mut f) = arcs[rng.random_range(0..arcs.len())];
        for _ in 0..length {
            let onward: Vec<usize> = match rng.random_bool(momentum) {
                true => neighbours[f]
                    .iter()
                    .copied()
                    .filter(|&g| g != back)
                    .collect(),
                false => neighbours[f].clone(),
            };
            let g = onward[rng.random_range(0..onward.len())];
            rows.push((run, f, g));
            (back, f) = (f, g);
        }
    }
    rows
}

fn names(ids: impl Iterator<Item = usize>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(ids.map(|f| format!("s{f}"))))
}

/// `rows` as a transition log (`run, source, target`).
fn write_transitions(path: &Path, rows: &[(u64, usize, usize)]) {
    write_parquet(
        path,
        vec![
            (
                "run",
                Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.0))),
            ),
            ("source", names(rows.iter().map(|r| r.1))),
            ("target", names(rows.iter().map(|r| r.2))),
        ],
        None,
    );
}

/// `rows` as a trajectory (`run, step, state`), the runs in reverse order.
fn write_trajectory(path: &Path, rows: &[(u64, usize, usize)], length: usize) {
    let mut steps = Vec::new();
    for run in rows.chunks(length).rev() {
        steps.push((run[0].0, 0, run[0].1));
        steps.extend(
            run.iter()
                .enumerate()
                .map(|(i, r)| (r.0, i as i64 + 1, r.2)),
        );
    }
    write_parquet(
        path,
        vec![
            (
                "run",
                Arc::new(UInt64Array::from_iter_values(steps.iter().map(|s| s.0))),
            ),
            (
                "step",
                Arc::new(Int64Array::from_iter_values(steps.iter().map(|s| s.1))),
            ),
            ("state", names(steps.iter().map(|s| s.2))),
        ],
        None,
    );
}

fn memory_of(path: &Path) -> Option<RunMemory> {
    let loaded = io::load(&[path.to_path_buf()], &LoadOptions::default()).unwrap();
    loaded.summary.run_memory
}

#[test]
fn markov_logs_are_not_said_to_remember() {
    for (mode, seed) in [
        (SimMode::LlmLike, 1),
        (SimMode::LlmHard, 2),
        (SimMode::Reversible, 3),
    ] {
        let log = simulated(&SimParams {
            rows: 200_000,
            seed,
            ..SimParams::new(mode)
        });
        let m = memory_of(&log.log).expect("busy states");
        assert!(!m.remembers && m.z.abs() < 4.0, "{mode:?}: {m:?}");
        assert!(m.busy_states > 0 && m.paths > 1000, "{mode:?}: {m:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("markov.parquet");
    write_transitions(&log, &walk(80, 5_000, 20, 0.0, 4));
    let m = memory_of(&log).unwrap();
    assert!(!m.remembers && m.z.abs() < 4.0, "{m:?}");
}

#[test]
fn a_walk_that_keeps_its_direction_is_said_to_remember() {
    let dir = tempfile::tempdir().unwrap();
    let (transitions, trajectory) = (dir.path().join("t.parquet"), dir.path().join("r.parquet"));
    let rows = walk(400, 15_000, 20, 0.5, 5);
    write_transitions(&transitions, &rows);
    write_trajectory(&trajectory, &rows, 20);
    let m = memory_of(&transitions).unwrap();
    // Half the back-steps of a uniform neighbour's choice.
    assert!(
        m.remembers && (0.4..0.6).contains(&m.ratio) && m.z < -20.0,
        "{m:?}"
    );
    // The same rows handed over in small batches (as the Python package does), against the
    // file read in two parts (300,000 rows): the same bits.
    let file = std::fs::File::open(&transitions).unwrap();
    let batches = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .with_batch_size(7_777)
        .build()
        .unwrap();
    let streamed = io::load_stream(batches, "<table>", &LoadOptions::default()).unwrap();
    assert_eq!(streamed.summary.run_memory.as_ref(), Some(&m));
    // The trajectory's runs come in another order, and some chain into the next run.
    let t = memory_of(&trajectory).unwrap();
    assert!(
        t.remembers && (t.ratio - m.ratio).abs() < 0.02,
        "{t:?} against {m:?}"
    );
    // Shuffled, the rows no longer follow the runs: no path is found.
    let mut shuffled = rows.clone();
    shuffled.sort_by_key(|&(run, f, g)| (f, g, run));
    let shuffled_log = dir.path().join("s.parquet");
    write_transitions(&shuffled_log, &shuffled);
    assert!(memory_of(&shuffled_log).is_none_or(|s| s.paths < m.paths / 10));

    let out = dir.path().join("out");
    let run = analyze(
        &[&transitions],
        &out,
        &["--permutations", "0", "--bootstrap", "0"],
    );
    assert!(run.status.success(), "{}", text(&run.stderr));
    let json = report(&out)["input"]["run_memory"].clone();
    assert_eq!(json["remembers"], true);
    assert_eq!(json["back"], m.back);
    let summary = text(&run.stdout);
    assert!(
        summary.contains("caution") && summary.contains("keep their direction"),
        "{summary}"
    );
}
