//! Every input form `detbal::io::load` accepts, each checked against a known graph: the
//! reference fixtures (JSON and Parquet), every Arrow string type and integer states, counts,
//! trajectories, CSV, directories and glob patterns.

use arrow::array::{
    ArrayRef, DictionaryArray, Int32Array, Int64Array, LargeStringArray, StringArray,
    StringViewArray, UInt8Array,
};
use arrow::datatypes::{Int8Type, UInt32Type};
use detbal::io::{InputFormat, LoadOptions, LoadedLog, load};
use parquet::file::properties::WriterProperties;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::support::{self, assert_same_graph, fixture, write_parquet};

fn load_one(path: &Path) -> LoadedLog {
    load(&[path.to_owned()], &LoadOptions::default()).unwrap()
}

/// 300 transitions among 40 states named by numbers, with some self-transitions (fixed seed).
fn numbered_transitions() -> (Vec<i64>, Vec<i64>) {
    let mut x = 12345u64;
    let mut next = || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((x >> 33) % 40) as i64
    };
    (0..300).map(|_| (next(), next())).unzip()
}

fn text(values: &[i64]) -> Vec<String> {
    values.iter().map(|v| v.to_string()).collect()
}

#[test]
fn reference_json_and_parquet_fixtures_give_the_same_graph() {
    let started = std::time::Instant::now();
    let json = load_one(&fixture("paper_parity/parity_driven.json"));
    let json_time = started.elapsed();
    let parquet = load_one(&fixture("paper_parity/parity_driven.parquet"));
    assert_same_graph(&json.graph, &parquet.graph);
    assert_eq!(json.graph.n_states(), 200);
    assert_eq!(
        (json.summary.transitions, parquet.summary.transitions),
        (20_000, 20_000)
    );
    assert_eq!(json.summary.format, "json/reference");
    assert_eq!(parquet.summary.format, "parquet/transitions");
    assert_eq!(json.summary.content_hash.len(), 64);
    assert!(
        json_time.as_secs_f64() < 1.0,
        "the 1.5 MB JSON fixture took {json_time:?}"
    );
}

#[test]
fn every_string_type_and_integer_states_give_the_same_graph() {
    let dir = tempfile::tempdir().unwrap();
    let (sources, targets) = numbered_transitions();
    let (s, t) = (text(&sources), text(&targets));
    // Small row groups and pages, so that batches and dictionaries change within the file.
    let small = || {
        WriterProperties::builder()
            .set_max_row_group_row_count(Some(70))
            .set_data_page_row_count_limit(20)
            .set_write_batch_size(20)
    };
    let plain = small().set_dictionary_enabled(false).build();
    fn strs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let forms: Vec<(&str, ArrayRef, ArrayRef, Option<WriterProperties>)> = vec![
        (
            "utf8",
            Arc::new(StringArray::from(strs(&s))),
            Arc::new(StringArray::from(strs(&t))),
            Some(small().build()),
        ),
        (
            "plain",
            Arc::new(StringArray::from(strs(&s))),
            Arc::new(StringArray::from(strs(&t))),
            Some(plain),
        ),
        (
            "large",
            Arc::new(LargeStringArray::from(strs(&s))),
            Arc::new(LargeStringArray::from(strs(&t))),
            None,
        ),
        (
            "view",
            Arc::new(StringViewArray::from(strs(&s))),
            Arc::new(StringViewArray::from(strs(&t))),
            None,
        ),
        (
            "dict8",
            Arc::new(strs(&s).into_iter().collect::<DictionaryArray<Int8Type>>()),
            Arc::new(strs(&t).into_iter().collect::<DictionaryArray<Int8Type>>()),
            None,
        ),
        (
            "dict_large",
            Arc::new(DictionaryArray::<UInt32Type>::new(
                (0..300).map(|i| i as u32).collect(),
                Arc::new(LargeStringArray::from(strs(&s))),
            )),
            Arc::new(DictionaryArray::<UInt32Type>::new(
                (0..300).map(|i| i as u32).collect(),
                Arc::new(LargeStringArray::from(strs(&t))),
            )),
            None,
        ),
        (
            "int64",
            Arc::new(Int64Array::from(sources.clone())),
            Arc::new(Int64Array::from(targets.clone())),
            None,
        ),
        (
            "uint8",
            Arc::new(UInt8Array::from(
                sources.iter().map(|&v| v as u8).collect::<Vec<_>>(),
            )),
            Arc::new(UInt8Array::from(
                targets.iter().map(|&v| v as u8).collect::<Vec<_>>(),
            )),
            None,
        ),
    ];
    let mut graphs = Vec::new();
    for (name, source, target, props) in forms {
        let path = dir.path().join(format!("{name}.parquet"));
        write_parquet(&path, vec![("source", source), ("target", target)], props);
        graphs.push((name, load_one(&path).graph));
    }
    let (_, reference) = &graphs[0];
    assert_eq!(reference.transitions(), 300);
    assert!(reference.self_transitions() > 0);
    for (name, graph) in &graphs[1..] {
        println!("{name}");
        assert_same_graph(reference, graph);
    }
}

#[test]
fn count_column_weights_each_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("counts.parquet");
    write_parquet(
        &path,
        vec![
            (
                "source",
                Arc::new(StringArray::from(vec!["a", "b", "a", "a"])) as ArrayRef,
            ),
            (
                "target",
                Arc::new(StringArray::from(vec!["b", "a", "b", "a"])),
            ),
            ("count", Arc::new(Int32Array::from(vec![3, 2, 4, 5]))),
            ("run", Arc::new(Int32Array::from(vec![1, 1, 2, 7]))),
        ],
        None,
    );
    let log = load_one(&path);
    let g = &log.graph;
    assert_eq!(*g.names, ["a", "b"]);
    assert_eq!(g.count[g.find_edge(0, 1).unwrap()], 7);
    assert_eq!(g.count[g.find_edge(1, 0).unwrap()], 2);
    assert_eq!(g.out_count, [12, 2]);
    assert_eq!(g.self_count, [5, 0]);
    assert_eq!((log.summary.rows, log.summary.transitions), (4, 14));
    assert_eq!(log.summary.runs, Some(3));
}

#[test]
fn trajectory_pairs_consecutive_steps_within_each_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("steps.parquet");
    // Run "r1": steps 0..3 are x, y, y, x (written out of order); run "r2": z then x.
    write_parquet(
        &path,
        vec![
            (
                "run",
                Arc::new(StringArray::from(vec!["r1", "r2", "r1", "r1", "r2", "r1"])) as ArrayRef,
            ),
            ("step", Arc::new(Int32Array::from(vec![2, 10, 0, 3, 11, 1]))),
            (
                "state",
                Arc::new(StringArray::from(vec!["y", "z", "x", "x", "x", "y"])),
            ),
        ],
        None,
    );
    let log = load_one(&path);
    let g = &log.graph;
    assert_eq!(log.summary.format, "parquet/trajectory");
    assert_eq!(
        (log.summary.rows, log.summary.transitions, log.summary.runs),
        (6, 4, Some(2))
    );
    // x→y (row 5), y→y (row 0), y→x (row 3), z→x (row 4): first non-self pair is y→x at row 3.
    assert_eq!(*g.names, ["y", "x", "z"]);
    let (y, x, z) = (0, 1, 2);
    for (f, t) in [(x, y), (y, x), (z, x)] {
        assert_eq!(g.count[g.find_edge(f, t).unwrap()], 1);
    }
    assert_eq!(g.self_count, [1, 0, 0]);

    // The same log as CSV reads to the same graph; the form can also be forced.
    let csv = dir.path().join("steps.csv");
    std::fs::write(
        &csv,
        "run,step,state\nr1,2,y\nr2,10,z\nr1,0,x\nr1,3,x\nr2,11,x\nr1,1,y\n",
    )
    .unwrap();
    let opts = LoadOptions {
        format: InputFormat::Trajectory,
        ..LoadOptions::default()
    };
    assert_same_graph(g, &load(&[csv], &opts).unwrap().graph);
}

#[test]
fn csv_reads_like_parquet_and_keeps_numeric_looking_names() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("log.csv");
    std::fs::write(
        &csv,
        "model,source,target,count\nm,007,7,2\nm,7,007,1\nm,\"a,b\",007,3\n",
    )
    .unwrap();
    let parquet = dir.path().join("log.parquet");
    write_parquet(
        &parquet,
        vec![
            (
                "source",
                Arc::new(StringArray::from(vec!["007", "7", "a,b"])) as ArrayRef,
            ),
            (
                "target",
                Arc::new(StringArray::from(vec!["7", "007", "007"])),
            ),
            ("count", Arc::new(Int64Array::from(vec![2, 1, 3]))),
        ],
        None,
    );
    let from_csv = load_one(&csv);
    assert_eq!(*from_csv.graph.names, ["007", "7", "a,b"]);
    assert_eq!(from_csv.summary.transitions, 6);
    assert_eq!(from_csv.summary.format, "csv/transitions");
    assert_same_graph(&from_csv.graph, &load_one(&parquet).graph);
}

/// Rows of part `k`: (`k`, `k+1`) and (`k+1`, `k`) as decimal names.
fn write_part(path: &Path, k: i64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    write_parquet(
        path,
        vec![
            (
                "source",
                Arc::new(Int64Array::from(vec![k, k + 1])) as ArrayRef,
            ),
            ("target", Arc::new(Int64Array::from(vec![k + 1, k]))),
        ],
        None,
    );
}

#[test]
fn a_directory_is_one_dataset_in_path_order() {
    let dir = tempfile::tempdir().unwrap();
    // Hive-style folders; the later part is written first to show that paths, not times, order.
    write_part(&dir.path().join("day=2/part-0.parquet"), 5);
    write_part(&dir.path().join("day=1/part-0.parquet"), 1);
    std::fs::write(dir.path().join("_SUCCESS"), "").unwrap();
    std::fs::write(dir.path().join("day=1/.part-0.parquet.crc"), "x").unwrap();
    let log = load_one(dir.path());
    assert_eq!(log.summary.files, 2);
    assert!(
        log.summary.paths[0].ends_with("part-0.parquet") && log.summary.paths[0].contains("day=1")
    );
    assert_eq!(log.summary.rows, 4);
    assert_eq!(*log.graph.names, ["1", "2", "5", "6"]);

    // The hash covers the bytes: the same files give the same hash, another order another one.
    let again = load_one(dir.path());
    assert_eq!(again.summary.content_hash, log.summary.content_hash);
    let reversed: Vec<PathBuf> = log.summary.paths.iter().rev().map(PathBuf::from).collect();
    let reversed = load(&reversed, &LoadOptions::default()).unwrap();
    assert_ne!(reversed.summary.content_hash, log.summary.content_hash);
    assert_eq!(*reversed.graph.names, ["5", "6", "1", "2"]);
}

#[test]
fn a_glob_pattern_selects_files() {
    let dir = tempfile::tempdir().unwrap();
    for k in [3, 1] {
        std::fs::write(
            dir.path().join(format!("log{k}.csv")),
            format!("source,target\n{k},x\n"),
        )
        .unwrap();
    }
    write_part(&dir.path().join("other.parquet"), 9);
    let pattern = dir.path().join("log*.csv");
    let log = load(&[pattern], &LoadOptions::default()).unwrap();
    assert_eq!(log.summary.files, 2);
    assert_eq!(*log.graph.names, ["1", "x", "3"]);
}

#[test]
fn dictionary_encoded_integer_counts_steps_states_and_runs() {
    use arrow::datatypes::{Int32Type, UInt16Type};
    let dir = tempfile::tempdir().unwrap();
    let (plain, encoded) = (
        dir.path().join("plain.parquet"),
        dir.path().join("dict.parquet"),
    );
    // Dictionary(Int32, Int64) and Dictionary(UInt16, UInt64) counts, as pandas/pyarrow write
    // categoricals; each value of a dictionary is used by several rows.
    let sources = ["a", "b", "b", "c", "c", "a", "a"];
    let targets = ["b", "a", "c", "b", "a", "c", "b"];
    let counts = [5i64, 3, 4, 2, 6, 1, 5];
    let strs = |v: &[&str]| Arc::new(StringArray::from(v.to_vec())) as ArrayRef;
    write_parquet(
        &plain,
        vec![
            ("source", strs(&sources)),
            ("target", strs(&targets)),
            ("count", Arc::new(Int64Array::from(counts.to_vec()))),
        ],
        None,
    );
    let keys = |v: &[i64], dictionary: &[i64]| -> Vec<i32> {
        v.iter()
            .map(|x| dictionary.iter().position(|d| d == x).unwrap() as i32)
            .collect()
    };
    let values = [5i64, 3, 4, 2, 6, 1];
    let signed = DictionaryArray::<Int32Type>::new(
        Int32Array::from(keys(&counts, &values)),
        Arc::new(Int64Array::from(values.to_vec())),
    );
    let unsigned = DictionaryArray::<UInt16Type>::new(
        arrow::array::UInt16Array::from(
            keys(&counts, &values)
                .iter()
                .map(|&k| k as u16)
                .collect::<Vec<_>>(),
        ),
        Arc::new(arrow::array::UInt64Array::from(
            values.iter().map(|&v| v as u64).collect::<Vec<_>>(),
        )),
    );
    for count in [Arc::new(signed) as ArrayRef, Arc::new(unsigned)] {
        write_parquet(
            &encoded,
            vec![
                ("source", strs(&sources)),
                ("target", strs(&targets)),
                ("count", count),
            ],
            None,
        );
        assert_same_graph(&load_one(&plain).graph, &load_one(&encoded).graph);
        // Through the binary: analysed, not blamed on the file.
        let out = dir.path().join("out");
        let run = support::detbal(
            &[
                "analyze",
                encoded.to_str().unwrap(),
                "--device",
                "cpu",
                "-o",
                out.to_str().unwrap(),
            ],
            &[],
        );
        assert!(run.status.success(), "{}", support::text(&run.stderr));
        assert_eq!(support::report(&out)["graph"]["transitions"], 26);
        std::fs::remove_dir_all(&out).unwrap();
    }

    // A trajectory whose run, step and integer state columns are all dictionary-encoded.
    let (plain, encoded) = (
        dir.path().join("steps.parquet"),
        dir.path().join("dsteps.parquet"),
    );
    let runs = [7i64, 7, 7, 7, 9, 9, 9];
    let steps = [0i64, 1, 2, 3, 0, 1, 2];
    let states = [10i64, 20, 30, 10, 20, 10, 30];
    let dictionary = |v: &[i64]| {
        let mut distinct = v.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        Arc::new(DictionaryArray::<Int32Type>::new(
            Int32Array::from(keys(v, &distinct)),
            Arc::new(Int64Array::from(distinct)),
        )) as ArrayRef
    };
    let ints = |v: &[i64]| Arc::new(Int64Array::from(v.to_vec())) as ArrayRef;
    write_parquet(
        &plain,
        vec![
            ("run", ints(&runs)),
            ("step", ints(&steps)),
            ("state", ints(&states)),
        ],
        None,
    );
    write_parquet(
        &encoded,
        vec![
            ("run", dictionary(&runs)),
            ("step", dictionary(&steps)),
            ("state", dictionary(&states)),
        ],
        None,
    );
    let (a, b) = (load_one(&plain), load_one(&encoded));
    assert_same_graph(&a.graph, &b.graph);
    assert_eq!((b.summary.transitions, b.summary.runs), (5, Some(2)));
}
