//! Bad inputs through the `detbal` binary, one test per kind: each gives exit code 1 and one
//! `error: ` message (never a panic) that names the file, where in it the problem is (row group,
//! row, line, column or record) and what was expected; no output directory is created. Inputs
//! that look odd but are valid (huge counts, megabyte state names, dropped null states) are
//! analysed, and every dropped row is counted.

use crate::support::{self, assert_error, detbal, report, text, write_parquet};
use arrow::array::{
    ArrayRef, BinaryArray, Float64Array, Int32Array, Int64Array, StringArray, UInt64Array,
};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::file::properties::WriterProperties;
use std::path::Path;
use std::sync::Arc;

fn strings(values: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(values.to_vec()))
}

/// A transition log `a → b`, `b → a` with extra columns.
fn log_with(path: &Path, extra: Vec<(&str, ArrayRef)>) {
    let mut columns = vec![
        ("source", strings(&[Some("a"), Some("b")])),
        ("target", strings(&[Some("b"), Some("a")])),
    ];
    columns.extend(extra);
    write_parquet(path, columns, None);
}

/// Runs `detbal analyze INPUTS --device cpu -o OUT EXTRA`.
fn analyze(inputs: &[&Path], out: &Path, extra: &[&str]) -> std::process::Output {
    support::analyze(inputs, out, &[&["--device", "cpu"], extra].concat())
}

/// Analyses `inputs`, which must fail as [`assert_error`] says, with a message naming each of
/// `expected`, and leave no output (nor any temporary) behind. Returns the message.
fn rejected(inputs: &[&Path], extra: &[&str], expected: &[&str]) -> String {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    let stderr = assert_error(&analyze(inputs, &out, extra), expected);
    let left: Vec<_> = std::fs::read_dir(root.path()).unwrap().collect();
    assert!(left.is_empty(), "a failed run wrote {left:?}");
    stderr
}

/// Analyses `inputs`, which must succeed; returns the report and the summary.
fn accepted(inputs: &[&Path], extra: &[&str]) -> (serde_json::Value, String) {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    let run = analyze(inputs, &out, extra);
    assert!(run.status.success(), "{}", text(&run.stderr));
    (report(&out), text(&run.stdout))
}

/// A valid two-row log, returned as bytes, for the corruption tests.
fn valid_parquet_bytes(path: &Path) -> Vec<u8> {
    log_with(path, vec![]);
    std::fs::read(path).unwrap()
}

#[test]
fn truncated_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.parquet");
    let bytes = valid_parquet_bytes(&path);
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    rejected(
        &[&path],
        &[],
        &["log.parquet", "not a readable Parquet file"],
    );
}

#[test]
fn bad_magic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.parquet");
    let mut bytes = valid_parquet_bytes(&path);
    let end = bytes.len();
    bytes[end - 4..].copy_from_slice(b"XXXX");
    std::fs::write(&path, &bytes).unwrap();
    rejected(
        &[&path],
        &[],
        &["log.parquet", "not a readable Parquet file"],
    );
    // The leading magic too, with a valid footer.
    let mut bytes = valid_parquet_bytes(&path);
    bytes[..4].copy_from_slice(b"XXXX");
    std::fs::write(&path, &bytes).unwrap();
    rejected(
        &[&path],
        &[],
        &[
            "log.parquet",
            "starts with \"XXXX\", not the magic bytes \"PAR1\"",
        ],
    );
    // Another format under a Parquet name.
    std::fs::write(&path, "source,target\na,b\n").unwrap();
    rejected(
        &[&path],
        &[],
        &["log.parquet", "not a readable Parquet file"],
    );
}

#[test]
fn bad_footer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.parquet");
    let mut bytes = valid_parquet_bytes(&path);
    let end = bytes.len();
    let footer_len = u32::from_le_bytes(bytes[end - 8..end - 4].try_into().unwrap()) as usize;
    // Garbage metadata of the right length.
    bytes[end - 8 - footer_len..end - 8].fill(0xff);
    std::fs::write(&path, &bytes).unwrap();
    rejected(
        &[&path],
        &[],
        &["log.parquet", "not a readable Parquet file"],
    );
    // A footer length past the start of the file.
    let mut bytes = valid_parquet_bytes(&path);
    bytes[end - 8..end - 4].copy_from_slice(&u32::MAX.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    rejected(
        &[&path],
        &[],
        &["log.parquet", "not a readable Parquet file"],
    );
}

#[test]
fn corrupt_page() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.parquet");
    let names: Vec<String> = (0..1000).map(|i| format!("state-{}", i % 37)).collect();
    let names: Vec<Option<&str>> = names.iter().map(|s| Some(s.as_str())).collect();
    // Plain encoding, so that the bytes of the data page are the values themselves.
    let props = WriterProperties::builder()
        .set_dictionary_enabled(false)
        .build();
    write_parquet(
        &path,
        vec![
            ("source", strings(&names)),
            (
                "target",
                strings(
                    &names[1..]
                        .iter()
                        .chain(&names[..1])
                        .copied()
                        .collect::<Vec<_>>(),
                ),
            ),
        ],
        Some(props),
    );
    let file = std::fs::File::open(&path).unwrap();
    let metadata = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).unwrap();
    let chunk = metadata.metadata().row_group(0).column(0);
    let (start, len) = chunk.byte_range();
    let (start, len) = (start as usize, len as usize);
    assert_eq!(
        chunk.data_page_offset() as usize,
        start,
        "no dictionary page"
    );
    // Flip the second half of the `source` data page: past its header, inside the values.
    let mut bytes = std::fs::read(&path).unwrap();
    for b in &mut bytes[start + len / 2..start + len] {
        *b = !*b;
    }
    std::fs::write(&path, &bytes).unwrap();
    rejected(
        &[&path],
        &[],
        &[
            "log.parquet",
            "row group 0",
            "cannot decode the Parquet data",
        ],
    );
}

#[test]
fn wrong_column_types() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.parquet");
    write_parquet(
        &path,
        vec![
            (
                "source",
                Arc::new(Float64Array::from(vec![1.5])) as ArrayRef,
            ),
            ("target", strings(&[Some("b")])),
        ],
        None,
    );
    rejected(
        &[&path],
        &[],
        &[
            "log.parquet",
            "column `source`",
            "expected a string or integer column, found Float64",
            "hint: counts, steps and integer names are whole numbers",
        ],
    );
    // Names stored as bytes without a text type, as some writers do: the hint says how to fix it.
    write_parquet(
        &path,
        vec![
            (
                "source",
                Arc::new(BinaryArray::from(vec![&b"a"[..]])) as ArrayRef,
            ),
            ("target", strings(&[Some("b")])),
        ],
        None,
    );
    rejected(
        &[&path],
        &[],
        &[
            "column `source`",
            "expected a string or integer column, found Binary",
            "hint: the column holds bytes with no text type",
        ],
    );
    log_with(&path, vec![("count", strings(&[Some("1"), Some("2")]))]);
    rejected(
        &[&path],
        &[],
        &[
            "log.parquet",
            "column `count`",
            "expected an integer column, found Utf8",
        ],
    );
}

#[test]
fn missing_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.parquet");
    write_parquet(
        &path,
        vec![
            ("source", strings(&[Some("a")])),
            ("dst", strings(&[Some("b")])),
        ],
        None,
    );
    rejected(
        &[&path],
        &[],
        &[
            "log.parquet",
            "missing column `target`",
            "`source`, `dst`",
            "hint: ",
        ],
    );
}

#[test]
fn a_column_named_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.parquet");
    write_parquet(
        &path,
        vec![
            ("source", strings(&[Some("a"), Some("b")])),
            ("target", strings(&[Some("b"), Some("a")])),
            ("source", strings(&[Some("x"), Some("y")])),
        ],
        None,
    );
    rejected(
        &[&path],
        &[],
        &[
            "log.parquet",
            "column `source`",
            "expected one column `source`, found 2 (columns 1, 3)",
            "hint: ",
        ],
    );
    let csv = dir.path().join("log.csv");
    std::fs::write(&csv, "source,target,count,count\na,b,1,2\nb,a,3,4\n").unwrap();
    rejected(
        &[&csv],
        &[],
        &[
            "log.csv",
            "expected one column `count`, found 2 (columns 3, 4)",
        ],
    );
}

#[test]
fn null_states() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.parquet");
    write_parquet(
        &path,
        vec![
            (
                "source",
                strings(&[Some("a"), None, Some("b"), Some("a"), Some("c")]),
            ),
            (
                "target",
                strings(&[Some("b"), Some("a"), None, Some("c"), Some("a")]),
            ),
        ],
        None,
    );
    rejected(
        &[&path],
        &[],
        &[
            "log.parquet",
            "null source or target",
            "row group 0, row 1, column `source`",
            "--drop-null-states",
        ],
    );
    let (report, summary) = accepted(&[&path], &["--drop-null-states"]);
    assert_eq!(report["input"]["rows"], 5);
    assert_eq!(report["input"]["dropped_rows"], 2);
    assert_eq!(
        report["input"]["dropped_reasons"],
        serde_json::json!([{"reason": "null source or target", "rows": 2}])
    );
    assert_eq!(report["graph"]["transitions"], 3);
    let joined = summary.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        joined.contains("; 2 rows dropped (2: null source or target)"),
        "{summary}"
    );
}

/// A transition between two different of 40 states, from a random `draw`.
fn row_states(draw: u64) -> (String, String) {
    let (f, g) = (draw % 40, (draw / 40) % 40);
    let g = if g == f { (g + 1) % 40 } else { g };
    (format!("s{f}"), format!("s{g}"))
}

#[test]
fn a_million_rows_with_planted_nulls_are_all_accounted_for() {
    use rand::{RngExt, SeedableRng};
    const ROWS: u64 = 1_000_000;
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(8);
    let (mut sources, mut targets) = (Vec::new(), Vec::new());
    let mut planted = 0u64;
    for _ in 0..ROWS {
        let (f, g) = row_states(rng.random());
        // 1 % of rows lose their source or their target.
        let (f, g) = match rng.random_range(0..200u32) {
            0 => (None, Some(g)),
            1 => (Some(f), None),
            _ => (Some(f), Some(g)),
        };
        planted += u64::from(f.is_none() || g.is_none());
        sources.push(f);
        targets.push(g);
    }
    assert!((9_000..11_000).contains(&planted), "{planted}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.parquet");
    write_parquet(
        &path,
        vec![
            ("source", Arc::new(StringArray::from(sources)) as ArrayRef),
            ("target", Arc::new(StringArray::from(targets))),
        ],
        None,
    );
    rejected(&[&path], &[], &["big.parquet", "--drop-null-states"]);
    let (report, summary) = accepted(&[&path], &["--drop-null-states"]);
    let input = &report["input"];
    assert_eq!(input["rows"], ROWS);
    assert_eq!(input["dropped_rows"], planted);
    assert_eq!(
        input["dropped_reasons"],
        serde_json::json!([{"reason": "null source or target", "rows": planted}])
    );
    // Every row not dropped is a transition: nothing else went missing.
    assert_eq!(report["graph"]["transitions"], ROWS - planted);
    // The summary's input block ends with e.g. `; 10,023 rows dropped (10,023: null source or
    // target)`, wrapped to the width: read it as one line.
    let expected = format!("{planted}: null source or target)");
    let joined = summary.split_whitespace().collect::<Vec<_>>().join(" ");
    let dropped = joined
        .split_once(" rows dropped (")
        .and_then(|(count, reasons)| {
            Some((
                count.rsplit(' ').next()?.replace(',', ""),
                reasons.split_once(')')?.0.replace(',', "") + ")",
            ))
        })
        .unwrap_or_else(|| panic!("no dropped rows in the summary:\n{summary}"));
    assert_eq!(dropped, (planted.to_string(), expected), "{summary}");
}

#[test]
fn empty_file_and_zero_rows() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["log.parquet", "log.csv", "db.json"] {
        let path = dir.path().join(name);
        std::fs::write(&path, "").unwrap();
        rejected(
            &[&path],
            &[],
            &[name, "the file is empty (0 bytes)", "expected a"],
        );
    }
    let path = dir.path().join("none.parquet");
    write_parquet(
        &path,
        vec![("source", strings(&[])), ("target", strings(&[]))],
        None,
    );
    rejected(
        &[&path],
        &[],
        &[
            "none.parquet",
            "nothing to analyse",
            "no transitions (0 rows read)",
        ],
    );
}

#[test]
fn a_file_with_one_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.csv");
    std::fs::write(&path, "source,target\na,a\na,a\n").unwrap();
    rejected(
        &[&path],
        &[],
        &[
            "log.csv",
            "expected transitions between different states",
            "only self-transitions (2 of them, over 1 state)",
        ],
    );
}

#[test]
fn only_self_transitions() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
    std::fs::write(&first, "source,target\na,a\nb,b\n").unwrap();
    std::fs::write(&second, "source,target\nc,c\n").unwrap();
    rejected(
        &[dir.path()],
        &[],
        &[
            "a.csv (and the 1 other files of the dataset)",
            "nothing to analyse",
            "only self-transitions (3 of them, over 3 states)",
            "hint: detailed balance compares",
        ],
    );
}

#[test]
fn negative_nan_and_zero_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.parquet");
    log_with(
        &path,
        vec![("count", Arc::new(Int32Array::from(vec![-2, 1])))],
    );
    rejected(
        &[&path],
        &[],
        &[
            "log.parquet",
            "row group 0, row 0, column `count`",
            "expected a count ≥ 1, found -2",
        ],
    );
    log_with(
        &path,
        vec![("count", Arc::new(Int64Array::from(vec![1, 0])))],
    );
    rejected(
        &[&path],
        &[],
        &[
            "row group 0, row 1, column `count`",
            "expected a count ≥ 1, found 0",
        ],
    );
    log_with(
        &path,
        vec![("count", Arc::new(Int32Array::from(vec![Some(3), None])))],
    );
    rejected(&[&path], &[], &["row 1, column `count`", "found null"]);
    log_with(
        &path,
        vec![("count", Arc::new(Float64Array::from(vec![f64::NAN, 1.0])))],
    );
    rejected(
        &[&path],
        &[],
        &[
            "column `count`",
            "expected an integer column, found Float64",
        ],
    );
    let csv = dir.path().join("log.csv");
    std::fs::write(&csv, "source,target,count\na,b,1\nb,a,NaN\n").unwrap();
    rejected(
        &[&csv],
        &[],
        &[
            "log.csv",
            "line 3, column `count`",
            "expected an integer, found \"NaN\"",
        ],
    );
}

#[test]
fn counts_past_u32_are_fine_and_sums_past_u64_name_the_pair() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.parquet");
    let big = u64::from(u32::MAX) + 10;
    log_with(
        &path,
        vec![("count", Arc::new(UInt64Array::from(vec![big, 3])))],
    );
    let (report, _) = accepted(&[&path], &[]);
    assert_eq!(report["graph"]["transitions"], big + 3);
    let sources = strings(&[Some("a"), Some("b"), Some("a")]);
    let targets = strings(&[Some("b"), Some("a"), Some("c")]);
    let counts = Arc::new(UInt64Array::from(vec![u64::MAX - 5, 1, 5]));
    write_parquet(
        &path,
        vec![("source", sources), ("target", targets), ("count", counts)],
        None,
    );
    rejected(
        &[&path],
        &[],
        &[
            "log.parquet",
            "row group 0, row 2",
            "adding 5 transitions a → c takes the total count past 2^64 − 1",
        ],
    );
}

#[test]
fn a_state_name_of_four_megabytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.parquet");
    let huge = "x".repeat(4 << 20);
    write_parquet(
        &path,
        vec![
            (
                "source",
                strings(&[Some(&huge), Some("b"), Some(&huge), Some("b")]),
            ),
            (
                "target",
                strings(&[Some("b"), Some(&huge), Some("b"), Some(&huge)]),
            ),
        ],
        None,
    );
    let (report, _) = accepted(&[&path], &[]);
    assert_eq!(report["graph"]["states"], 2);
    assert_eq!(report["graph"]["edges"], 2);
}

#[test]
fn invalid_utf8_in_csv() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.csv");
    std::fs::write(&path, b"source,target\na,b\nb,\xff\xfe\n").unwrap();
    rejected(&[&path], &[], &["log.csv", "invalid UTF-8", "line 3"]);
}

#[test]
fn mixed_schemas_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("a.parquet"), dir.path().join("b.parquet"));
    log_with(
        &first,
        vec![("count", Arc::new(Int32Array::from(vec![1, 2])))],
    );
    log_with(&second, vec![]);
    rejected(
        &[dir.path()],
        &[],
        &[
            "a.parquet",
            "b.parquet",
            "differs from that of",
            "count (integer)",
            "hint: all inputs form one dataset",
        ],
    );
}

#[test]
fn a_directory_with_no_data_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not data").unwrap();
    let name = dir.path().file_name().unwrap().to_str().unwrap().to_owned();
    rejected(
        &[dir.path()],
        &[],
        &[
            &name,
            "no .parquet, .pq, .csv or .json files in this directory",
        ],
    );
    let pattern = dir.path().join("*.parquet");
    rejected(&[&pattern], &[], &["*.parquet", "matching this pattern"]);
}

/// Tests run as root, where `chmod 000` does not stop reads: an unreadable path is a dangling
/// symbolic link, or a directory where a file is expected.
#[test]
fn unreadable_paths() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("log.parquet");
    std::os::unix::fs::symlink(dir.path().join("gone.parquet"), &link).unwrap();
    rejected(
        &[&link],
        &[],
        &[
            "log.parquet",
            "symbolic link to",
            "gone.parquet",
            "does not exist",
        ],
    );
    let folder = dir.path().join("data.csv");
    std::fs::create_dir(&folder).unwrap();
    std::fs::remove_file(&link).unwrap();
    rejected(
        &[&folder],
        &[],
        &[
            "data.csv",
            "no .parquet, .pq, .csv or .json files in this directory",
        ],
    );
    let missing = dir.path().join("missing.parquet");
    rejected(
        &[&missing],
        &[],
        &["cannot read", "missing.parquet", "no such file"],
    );
}

#[test]
fn json_of_the_wrong_shape() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.json");
    std::fs::write(
        &path,
        r#"[{"target_expression": "a", "source_expressions": [{"expression": "b"}]},
            {"target_expression": 3, "source_expressions": []}]"#,
    )
    .unwrap();
    rejected(
        &[&path],
        &[],
        &[
            "db.json",
            "record 1",
            "invalid type",
            "a record must look like",
        ],
    );
    std::fs::write(&path, r#"{"records": []}"#).unwrap();
    rejected(
        &[&path],
        &[],
        &["db.json", "top level", "expected a JSON array of records"],
    );
    std::fs::write(&path, r#"[{"target_expression": "a"}]"#).unwrap();
    rejected(
        &[&path],
        &[],
        &["db.json", "record 0", "missing field `source_expressions`"],
    );
}

#[test]
fn csv_count_that_is_not_an_integer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.csv");
    std::fs::write(&path, "source,target,count\na,b,1\nb,a,1.5\n").unwrap();
    rejected(
        &[&path],
        &[],
        &[
            "log.csv",
            "line 3, column `count`",
            "expected an integer, found \"1.5\"",
        ],
    );
}

#[test]
fn unknown_extension() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.txt");
    std::fs::write(&path, "source,target\na,b\n").unwrap();
    rejected(&[&path], &[], &["log.txt", "unknown file type", "hint: "]);
}

/// A CSV transition log over three states, both ways round a triangle: analysable.
const TRIANGLE_CSV: &str = "source,target\na,b\nb,a\nb,c\nc,b\nc,a\na,c\n";

#[test]
fn symlink_loops_are_not_followed_and_each_file_is_read_once() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("a.csv"), TRIANGLE_CSV).unwrap();
    std::fs::write(data.join("sub/b.csv"), TRIANGLE_CSV).unwrap();
    // Two loops (each alone read a file 41 times; together they hung), a link from below back
    // to the top, a second name of a file and of a directory.
    symlink(".", data.join("self")).unwrap();
    symlink(".", data.join("again")).unwrap();
    symlink(&data, data.join("sub/up")).unwrap();
    symlink("a.csv", data.join("link.csv")).unwrap();
    symlink("sub", data.join("sub2")).unwrap();
    for input in [data.clone(), data.join("**/*.csv")] {
        let (report, _) = accepted(&[&input], &[]);
        assert_eq!(report["input"]["files"], 2, "{input:?}");
        assert_eq!(report["input"]["rows"], 12, "{input:?}");
        assert_eq!(report["graph"]["transitions"], 12, "{input:?}");
    }
    // One file named twice, by two names, or by a directory and a pattern: an error naming both.
    let a = data.join("a.csv");
    for (first, second) in [
        (a.clone(), a.clone()),
        (a.clone(), data.join("link.csv")),
        (data.clone(), data.join("*.csv")),
        (data.join("sub"), data.join("sub2/b.csv")),
    ] {
        rejected(
            &[&first, &second],
            &[],
            &[
                "this file is named by two inputs",
                first.file_name().unwrap().to_str().unwrap(),
                second.file_name().unwrap().to_str().unwrap(),
                "hint: each file is read once",
            ],
        );
    }
}

#[test]
fn thirty_thousand_small_files_load_in_seconds() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..30_000 {
        let row = ["a,b", "b,c", "c,a", "b,a", "c,b", "a,c"][i % 6];
        std::fs::write(
            dir.path().join(format!("f{i:05}.csv")),
            format!("source,target\n{row}\n"),
        )
        .unwrap();
    }
    let start = std::time::Instant::now();
    let (report, _) = accepted(&[dir.path()], &["--permutations", "0", "--bootstrap", "0"]);
    let took = start.elapsed();
    assert_eq!(report["input"]["files"], 30_000);
    assert_eq!(report["graph"]["transitions"], 30_000);
    // Quadratic duplicate checks took about a minute here.
    assert!(took.as_secs() < 30, "{took:?}");
}

/// The byte range of the Thrift compact varint after a field header at `at`, and its value.
fn varint_at(bytes: &[u8], at: usize) -> (std::ops::Range<usize>, u64) {
    let (mut value, mut end) = (0u64, at);
    loop {
        let b = bytes[end];
        value |= u64::from(b & 0x7f) << (7 * (end - at));
        end += 1;
        if b & 0x80 == 0 {
            return (at..end, value);
        }
    }
}

/// A zigzag varint of exactly five bytes (non-minimal for small values, valid Thrift compact).
fn varint5(value: i32) -> [u8; 5] {
    let mut v = ((value << 1) ^ (value >> 31)) as u32;
    let mut out = [0u8; 5];
    for (i, b) in out.iter_mut().enumerate() {
        *b = (v & 0x7f) as u8 | if i < 4 { 0x80 } else { 0 };
        v >>= 7;
    }
    out
}

/// A valid Parquet log (plain encoding, no dictionary page) whose first page header, that of
/// column `source` in row group 0, gets the sizes `uncompressed` and `compressed` (`None`: kept).
/// The header grows (five-byte varints) and the page body loses as many bytes at its end, so the
/// file keeps its length and the footer's offsets stay right.
fn with_page_sizes(path: &Path, uncompressed: Option<i32>, compressed: Option<i32>) {
    let props = WriterProperties::builder()
        .set_dictionary_enabled(false)
        .set_compression(parquet::basic::Compression::UNCOMPRESSED)
        .build();
    let names: Vec<String> = (0..100).map(|i| format!("s{}", i % 7)).collect();
    let sources: Vec<Option<&str>> = names.iter().map(|s| Some(s.as_str())).collect();
    let targets: Vec<Option<&str>> = names.iter().rev().map(|s| Some(s.as_str())).collect();
    write_parquet(
        path,
        vec![("source", strings(&sources)), ("target", strings(&targets))],
        Some(props),
    );
    let file = std::fs::File::open(path).unwrap();
    let metadata = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).unwrap();
    let chunk = metadata.metadata().row_group(0).column(0);
    let start = chunk.data_page_offset() as usize;
    assert_eq!(chunk.byte_range().0 as usize, start, "no dictionary page");
    let bytes = std::fs::read(path).unwrap();
    // PageHeader: field 1 (type, i32: 0x15), 2 (uncompressed size: 0x15), 3 (compressed: 0x15).
    assert_eq!(bytes[start], 0x15);
    let (kind, _) = varint_at(&bytes, start + 1);
    assert_eq!(bytes[kind.end], 0x15);
    let (old_uncompressed, _) = varint_at(&bytes, kind.end + 1);
    assert_eq!(bytes[old_uncompressed.end], 0x15);
    let (old_compressed, c) = varint_at(&bytes, old_uncompressed.end + 1);
    let unzigzag = |v: u64| ((v >> 1) as i64 ^ -((v & 1) as i64)) as i32;
    let body = old_compressed.end;
    let growth = (old_uncompressed.start - start) + 11 - (body - start);
    // A size kept is what the shortened body holds (uncompressed: equal, no codec).
    let kept = unzigzag(c) - growth as i32;
    let mut header = bytes[start..old_uncompressed.start].to_vec();
    header.extend(varint5(uncompressed.unwrap_or(kept)));
    header.push(0x15);
    header.extend(varint5(compressed.unwrap_or(kept)));
    let page_end = body + unzigzag(c) as usize;
    let mut patched = bytes[..start].to_vec();
    patched.extend(&header);
    patched.extend(&bytes[body..page_end - growth]);
    patched.extend(&bytes[page_end..]);
    assert_eq!(patched.len(), bytes.len());
    std::fs::write(path, &patched).unwrap();
}

#[test]
fn page_headers_claiming_gigabytes_are_rejected_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.parquet");
    let expected = ["log.parquet", "row group 0, column `source`"];
    // 2^31 − 1 bytes, compressed and uncompressed (a 1.4 KB file took 2–6 GB to reject).
    with_page_sizes(&path, Some(i32::MAX), Some(i32::MAX));
    rejected(
        &[&path],
        &[],
        &[
            &expected[..],
            &[
                "not a readable Parquet file",
                "claims 2147483647 bytes, but its column chunk has",
            ],
        ]
        .concat(),
    );
    with_page_sizes(&path, Some(i32::MAX), None);
    rejected(
        &[&path],
        &[],
        &[&expected[..], &["claims 2147483647 bytes uncompressed"]].concat(),
    );
    with_page_sizes(&path, Some(-1), None);
    rejected(&[&path], &[], &[&expected[..], &["negative size"]].concat());
}

/// Replaces, in the footer of the Parquet file at `path`, the Thrift i64 that `get` reads from
/// the metadata (value `old`, a field of type i64 whose header byte is `0x16`) with `new`: tries
/// each occurrence and keeps the one the metadata then reads as `new`. The footer grows; its
/// length is rewritten.
fn patch_footer_i64(
    path: &Path,
    old: i64,
    new: i64,
    get: impl Fn(&parquet::file::metadata::ParquetMetaData) -> i64,
) {
    let bytes = std::fs::read(path).unwrap();
    let end = bytes.len();
    let footer_len = u32::from_le_bytes(bytes[end - 8..end - 4].try_into().unwrap()) as usize;
    let footer = end - 8 - footer_len..end - 8;
    let zigzag = |v: i64| ((v << 1) ^ (v >> 63)) as u64;
    let varint = |mut v: u64| {
        let mut out = Vec::new();
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return out;
            }
            out.push(b | 0x80);
        }
    };
    let (old_bytes, new_bytes) = (varint(zigzag(old)), varint(zigzag(new)));
    for at in footer.clone() {
        if bytes[at] & 0x0f != 6 || !bytes[at + 1..].starts_with(&old_bytes) {
            continue;
        }
        let mut patched = bytes[..at + 1].to_vec();
        patched.extend(&new_bytes);
        patched.extend(&bytes[at + 1 + old_bytes.len()..end - 8]);
        let grown = footer_len + new_bytes.len() - old_bytes.len();
        patched.extend((grown as u32).to_le_bytes());
        patched.extend(b"PAR1");
        let reread = parquet::file::metadata::ParquetMetaDataReader::new()
            .parse_and_finish(&bytes::Bytes::from(patched.clone()));
        if reread.is_ok_and(|m| get(&m) == new) {
            std::fs::write(path, patched).unwrap();
            return;
        }
    }
    panic!("no i64 {old} in the footer reads back as the field");
}

#[test]
fn a_footer_with_an_absurd_row_count_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.parquet");
    const ABSURD: i64 = 1_000_000_000_000_000_000;
    // The row group's count and the file's, so that they agree with each other.
    log_with(&path, vec![]);
    patch_footer_i64(&path, 2, ABSURD, |m| m.row_group(0).num_rows());
    patch_footer_i64(&path, 2, ABSURD, |m| m.file_metadata().num_rows());
    rejected(
        &[&path],
        &[],
        &[
            "log.parquet",
            "row group 0, column `source`",
            "the footer gives the row group 1000000000000000000 rows, but the column 2 values",
        ],
    );
    // The file's count alone.
    log_with(&path, vec![]);
    patch_footer_i64(&path, 2, ABSURD, |m| m.file_metadata().num_rows());
    rejected(
        &[&path],
        &[],
        &[
            "log.parquet",
            "the footer claims 1000000000000000000 rows, but its row groups hold 2",
        ],
    );
}

#[test]
fn a_null_state_breaks_a_trajectory_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("steps.parquet");
    // Run 1: a, null, b (no a → b); run 2: b, a, c, a.
    write_parquet(
        &path,
        vec![
            (
                "run",
                Arc::new(Int64Array::from(vec![1, 1, 1, 2, 2, 2, 2])) as ArrayRef,
            ),
            (
                "step",
                Arc::new(Int64Array::from(vec![0, 1, 2, 0, 1, 2, 3])),
            ),
            (
                "state",
                strings(&[
                    Some("a"),
                    None,
                    Some("b"),
                    Some("b"),
                    Some("a"),
                    Some("c"),
                    Some("a"),
                ]),
            ),
        ],
        None,
    );
    rejected(
        &[&path],
        &[],
        &["steps.parquet", "null state", "row group 0, row 1"],
    );
    let (report, _) = accepted(&[&path], &["--drop-null-states"]);
    assert_eq!(report["input"]["rows"], 7);
    assert_eq!(report["input"]["dropped_rows"], 1);
    // b → a, a → c, c → a: nothing made up across the gap.
    assert_eq!(report["graph"]["transitions"], 3);
    assert_eq!(report["graph"]["edges"], 3);
}

#[test]
fn a_file_replaced_while_read_is_read_as_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.csv");
    // Two logs of different sizes and contents, swapped in by rename again and again.
    let log = |rows: usize, extra: &str| {
        let mut text = String::from("source,target\n");
        for i in 0..rows {
            text.push_str(["a,b\n", "b,a\n", "b,c\n", "c,b\n", "c,a\n", "a,c\n"][i % 6]);
        }
        text.push_str(extra);
        text
    };
    let versions = [log(300_000, ""), log(120_000, "a,d\nd,a\n")];
    let expected: Vec<(u64, String)> = versions
        .iter()
        .map(|v| {
            let rows = v.lines().count() as u64 - 1;
            (rows, blake3::hash(v.as_bytes()).to_hex().to_string())
        })
        .collect();
    std::fs::write(&path, &versions[0]).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (stop, path, dir) = (stop.clone(), path.clone(), dir.path().to_owned());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let next = dir.join(format!("next{}", i % 2));
                std::fs::write(&next, &versions[i % 2]).unwrap();
                std::fs::rename(&next, &path).unwrap();
            }
        })
    };
    for _ in 0..6 {
        let (report, _) = accepted(&[&path], &["--permutations", "0", "--bootstrap", "0"]);
        let got = (
            report["input"]["rows"].as_u64().unwrap(),
            report["input"]["hash"].as_str().unwrap().to_owned(),
        );
        assert!(expected.contains(&got), "{got:?} is neither file");
        assert_eq!(report["graph"]["transitions"], got.0);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().unwrap();
}

#[test]
fn csv_errors_name_the_physical_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.csv");
    // Record 2 starts on line 4: record 1's quoted name holds a line break.
    std::fs::write(&path, "source,target,count\n\"a\nx\",b,1\nb,a,oops\n").unwrap();
    rejected(
        &[&path],
        &[],
        &["log.csv", "line 4, column `count`", "found \"oops\""],
    );
    std::fs::write(
        &path,
        "source,target,count\n\"a\n\nx\",b,1\n\nb,a,2\nb,c,0\n",
    )
    .unwrap();
    rejected(
        &[&path],
        &[],
        &["line 7, column `count`", "expected a count ≥ 1, found 0"],
    );
}

#[test]
fn csv_counts_take_the_whole_u64_range() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.csv");
    let big = 10_000_000_000_000_000_000u64;
    std::fs::write(
        &path,
        format!("source,target,count\na,b,{big}\nb,a,3\nb,c,1\nc,b,1\nc,a,1\na,c,1\n"),
    )
    .unwrap();
    // Resampling such counts is another matter than reading them.
    let (report, _) = accepted(&[&path], &["--permutations", "0", "--bootstrap", "0"]);
    assert_eq!(report["graph"]["transitions"], big + 7);
    // Past u64, or negative beside one past i64: still an error at the value.
    std::fs::write(
        &path,
        "source,target,count\na,b,1\nb,a,18446744073709551616\n",
    )
    .unwrap();
    rejected(
        &[&path],
        &[],
        &["line 3, column `count`", "expected an integer"],
    );
}

#[test]
fn a_json_database_with_a_byte_order_mark() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.json");
    let records = r#"[{"target_expression": "a", "source_expressions": [{"expression": "b"}, {"expression": "c"}]},
        {"target_expression": "b", "source_expressions": [{"expression": "a"}, {"expression": "c"}]},
        {"target_expression": "c", "source_expressions": [{"expression": "a"}, {"expression": "b"}]}]"#;
    std::fs::write(&path, format!("\u{feff}{records}")).unwrap();
    let (report, _) = accepted(&[&path], &[]);
    assert_eq!(report["graph"]["transitions"], 6);
}

#[test]
fn a_simulated_folder_is_analysable_with_its_truth_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("sim/log.parquet");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let run = detbal(
        &["simulate", "--rows", "5000", "-o", log.to_str().unwrap()],
        &[],
    );
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert!(dir.path().join("sim/log.truth.json").exists());
    let folder = dir.path().join("sim");
    let (report, _) = accepted(&[&folder], &["--permutations", "0", "--bootstrap", "0"]);
    assert_eq!(report["input"]["files"], 1);
    assert_eq!(report["input"]["format"], "parquet/transitions");
    assert_eq!(report["input"]["rows"], 5000);
}

#[test]
fn two_states_say_zero_degrees_of_freedom() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.csv");
    // With and without self-transitions (without, each pair's variance is zero).
    for log in [
        "source,target,count\na,b,30\nb,a,20\na,a,5\nb,b,5\n",
        "source,target,count\na,b,30\nb,a,20\n",
    ] {
        std::fs::write(&path, log).unwrap();
        let (report, summary) = accepted(&[&path], &[]);
        let verdict = report["verdict"]["sentence"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        for text in [&verdict, &summary] {
            assert!(text.contains("zero degrees of freedom"), "{text}");
            assert!(!text.contains("enough counts"), "{text}");
        }
    }
}

/// `--permutations` keeps every null sample (nulls.parquet, figures), so it is bounded: a value
/// past 1,000,000 (it used to abort allocating 64 GiB at 4294967295) is a settings error naming
/// the flag and the maximum, and the maximum itself runs.
#[test]
fn permutations_beyond_the_maximum_are_refused_and_the_maximum_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.csv");
    std::fs::write(
        &path,
        "source,target,count\na,b,5\nb,a,3\nb,c,4\nc,b,6\nc,a,2\na,c,7\n",
    )
    .unwrap();
    for too_many in ["4294967295", "1000001"] {
        rejected(
            &[&path],
            &["--permutations", too_many],
            &["--permutations must be at most 1000000", too_many],
        );
    }
    let (report, _) = accepted(&[&path], &["--permutations", "1000000", "--bootstrap", "0"]);
    let tests = report["permutation"]["tests"].as_array().unwrap();
    assert!(!tests.is_empty(), "{report}");
    for t in tests {
        assert_eq!(t["resamples"], 1_000_000, "{t}");
    }
}

/// State names are data: an ANSI escape sequence in one must not reach the terminal raw (it could
/// recolour or rewrite the screen). The summary shows it escaped; report.json keeps it exact.
#[test]
fn control_characters_in_state_names_are_escaped_on_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.csv");
    let red = "\u{1b}[31mred\u{1b}[0m";
    let mut log = String::from("source,target,count\n");
    for (f, g, n) in [
        ("a", red, 40),
        (red, "a", 10),
        (red, "b", 30),
        ("b", red, 20),
        ("b", "a", 5),
        ("a", "b", 25),
    ] {
        log.push_str(&format!("{f},{g},{n}\n"));
    }
    std::fs::write(&path, log).unwrap();
    let (report, summary) = accepted(&[&path], &["--permutations", "0"]);
    assert!(!summary.contains('\u{1b}'), "{summary:?}");
    assert!(summary.contains("\\u{1b}[31mred"), "{summary}");
    let names = report["attractors"]["listed"].to_string() + &report.to_string();
    assert!(
        names.contains("\\u001b[31mred"),
        "report.json keeps the exact name"
    );
}
