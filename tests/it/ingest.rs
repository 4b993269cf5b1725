//! Streaming ingestion: the parallel read of Parquet row groups gives exactly the graph of a
//! sequential read (states in the same order, the same counts, the same summary), and
//! `--group-by` builds each group's graph from a column or from Hive-style `key=value` folders.

use arrow::array::{ArrayRef, StringArray, UInt64Array};
use detbal::graph::TransitionGraph;
use detbal::io::{LoadOptions, LoadedLog, load};
use parquet::file::properties::WriterProperties;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::support::{assert_same_graph, write_parquet};

/// Rows of the multi-row-group files: above the size below which chunks are read on one thread.
const ROWS: usize = 400_000;

/// `rows` transitions of a walk over 5,000 states with long self-transition runs, in runs of 20
/// rows, each row in group `a` or `b` (fixed seed).
fn columns(rows: usize, seed: u64) -> Vec<(&'static str, ArrayRef)> {
    let mut x = seed;
    let mut next = |m: u64| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) % m
    };
    let (mut source, mut target, mut run, mut group) = (vec![], vec![], vec![], vec![]);
    let mut state = 0u64;
    for i in 0..rows {
        let next_state = match next(4) {
            0 => state,
            _ => (state + next(7)).min(4_999) * (next(50) > 0) as u64,
        };
        source.push(format!("s{state}"));
        target.push(format!("s{next_state}"));
        run.push((i / 20) as u64);
        group.push(if next(3) == 0 { "a" } else { "b" });
        state = next_state;
    }
    vec![
        ("run", Arc::new(UInt64Array::from(run)) as ArrayRef),
        ("source", Arc::new(StringArray::from(source))),
        ("target", Arc::new(StringArray::from(target))),
        ("model", Arc::new(StringArray::from(group))),
    ]
}

fn write(path: &Path, columns: Vec<(&str, ArrayRef)>, row_group_rows: usize) {
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(row_group_rows))
        .build();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    write_parquet(path, columns, Some(props));
}

fn load_on(threads: usize, inputs: &[PathBuf], opts: &LoadOptions) -> LoadedLog {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| load(inputs, opts).unwrap())
}

fn group_by(column: &str) -> LoadOptions {
    LoadOptions {
        group_column: Some(column.into()),
        ..LoadOptions::default()
    }
}

#[test]
fn parallel_read_of_row_groups_equals_a_sequential_read() {
    let dir = tempfile::tempdir().unwrap();
    // Two files of uneven row groups, then one of a single row group.
    let files = [
        (dir.path().join("1.parquet"), ROWS, 65_536, 1),
        (dir.path().join("2.parquet"), ROWS / 2, 30_000, 2),
        (dir.path().join("3.parquet"), 1_000, 1_000, 3),
    ];
    for (path, rows, group_rows, seed) in &files {
        write(path, columns(*rows, *seed), *group_rows);
    }
    let inputs = vec![dir.path().to_owned()];
    let opts = group_by("model");
    let sequential = load_on(1, &inputs, &opts);
    for threads in [2, 3, 8] {
        let parallel = load_on(threads, &inputs, &opts);
        assert_same_graph(&sequential.graph, &parallel.graph);
        assert_eq!(sequential.summary, parallel.summary);
        assert_eq!(parallel.groups.len(), 2);
        for ((name_s, s), (name_p, p)) in sequential.groups.iter().zip(&parallel.groups) {
            assert_eq!(name_s, name_p);
            assert_same_graph(s, p);
        }
    }
    let s = &sequential.summary;
    assert_eq!(s.rows, (ROWS + ROWS / 2 + 1_000) as u64);
    assert_eq!(s.transitions, s.rows);
    // Runs 0..ROWS/20 in file 1 include those of the smaller files.
    assert_eq!(s.runs, Some((ROWS / 20) as u64));
}

#[test]
fn a_single_row_group_read_in_pieces_equals_a_sequential_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.parquet");
    write(&path, columns(ROWS, 4), ROWS);
    let inputs = vec![path.clone()];
    let opts = group_by("model");
    let sequential = load_on(1, &inputs, &opts);
    for threads in [2, 3] {
        let parallel = load_on(threads, &inputs, &opts);
        assert_same_graph(&sequential.graph, &parallel.graph);
        assert_eq!(sequential.summary, parallel.summary);
        for ((name_s, s), (name_p, p)) in sequential.groups.iter().zip(&parallel.groups) {
            assert_eq!(name_s, name_p);
            assert_same_graph(s, p);
        }
    }
    assert_eq!(sequential.summary.rows, ROWS as u64);
    assert_eq!(sequential.summary.runs, Some((ROWS / 20) as u64));

    // A bad row in the last piece is named by its row in the file, as a sequential read does.
    let bad = ROWS - 7;
    let mut columns = columns(ROWS, 4);
    let source: Vec<Option<String>> = (0..ROWS)
        .map(|i| (i != bad).then(|| format!("s{}", i % 100)))
        .collect();
    columns[1].1 = Arc::new(StringArray::from(source));
    let broken = dir.path().join("broken.parquet");
    write(&broken, columns, ROWS);
    let error_on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let inputs = vec![broken.clone()];
        pool.install(|| {
            load(&inputs, &LoadOptions::default())
                .unwrap_err()
                .to_string()
        })
    };
    let message = error_on(2);
    assert_eq!(message, error_on(1));
    assert!(message.contains(&format!("row {bad}")), "{message}");
}

#[test]
fn groups_split_the_pooled_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.parquet");
    write(&path, columns(50_000, 9), 8_192);
    let log = load(&[path], &group_by("model")).unwrap();
    let names: Vec<&str> = log.groups.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    // Every pooled edge count is the sum of the groups' counts of the same named pair.
    let count = |g: &TransitionGraph, f: &str, t: &str| -> u64 {
        let (Some(f), Some(t)) = (
            g.names.iter().position(|n| n == f),
            g.names.iter().position(|n| n == t),
        ) else {
            return 0;
        };
        g.find_edge(f as u32, t as u32).map_or(0, |e| g.count[e])
    };
    let pooled = &log.graph;
    for e in 0..pooled.n_edges() {
        let (f, t) = (
            &pooled.names[pooled.src[e] as usize],
            &pooled.names[pooled.dst[e] as usize],
        );
        let split: u64 = log.groups.iter().map(|(_, g)| count(g, f, t)).sum();
        assert_eq!(split, pooled.count[e], "{f} → {t}");
    }
    let group_transitions: u64 = log.groups.iter().map(|(_, g)| g.transitions()).sum();
    assert_eq!(group_transitions, pooled.transitions());
}

#[test]
fn hive_partition_folders_give_the_group_of_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = columns(3_000, 4);
    a.pop(); // no `model` column: the folder names the group
    let mut b = columns(2_000, 5);
    b.pop();
    write(&dir.path().join("model=claude/part-0.parquet"), a, 1_000);
    write(&dir.path().join("model=gpt%2F4o/part-0.parquet"), b, 1_000);
    let log = load(&[dir.path().to_owned()], &group_by("model")).unwrap();
    let names: Vec<&str> = log.groups.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["claude", "gpt/4o"], "percent-escapes decoded");
    assert_eq!(log.groups[0].1.rows, 3_000);
    assert_eq!(log.groups[1].1.rows, 2_000);

    // A key that is neither a column nor a folder is an error naming both ways.
    let error = load(&[dir.path().to_owned()], &group_by("template"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("missing column `template`"), "{error}");
    assert!(error.contains("`template=VALUE` folder"), "{error}");
}
