//! Bad inputs: each gives an error (never a panic) whose message names the file and where in it
//! the problem is (column, row group, line or record).

use arrow::array::{ArrayRef, Float64Array, Int32Array, StringArray};
use arrow::record_batch::RecordBatch;
use detbal::io::{LoadOptions, load};
use parquet::arrow::ArrowWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let mut writer =
        ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

fn strings(values: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(values.to_vec()))
}

/// A two-row transition log `a → b`, `b → a` with extra columns.
fn log_with(path: &Path, extra: Vec<(&str, ArrayRef)>) {
    let mut columns = vec![
        ("source", strings(&[Some("a"), Some("b")])),
        ("target", strings(&[Some("b"), Some("a")])),
    ];
    columns.extend(extra);
    write_parquet(path, columns);
}

/// The message of loading `inputs` with `opts`, which must fail; it must name every `expected`.
fn error_with(inputs: &[PathBuf], opts: &LoadOptions, expected: &[&str]) -> String {
    let message = load(inputs, opts)
        .map(|_| ())
        .expect_err("the input should be rejected")
        .to_string();
    println!("{message}\n");
    for part in expected {
        assert!(
            message.contains(part),
            "{part:?} missing from the message:\n{message}"
        );
    }
    message
}

fn error(path: &Path, expected: &[&str]) -> String {
    let name = path.file_name().unwrap().to_str().unwrap();
    let mut all = vec![name];
    all.extend_from_slice(expected);
    error_with(&[path.to_owned()], &LoadOptions::default(), &all)
}

#[test]
fn missing_column_names_the_column_and_those_present() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.parquet");
    write_parquet(
        &path,
        vec![
            ("source", strings(&[Some("a")])),
            ("dst", strings(&[Some("b")])),
        ],
    );
    error(&path, &["missing column `target`", "`source`, `dst`"]);
}

#[test]
fn float_count_says_an_integer_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.parquet");
    log_with(
        &path,
        vec![("count", Arc::new(Float64Array::from(vec![1.0, 2.0])))],
    );
    error(
        &path,
        &[
            "column `count`",
            "expected an integer column, found Float64",
        ],
    );
}

#[test]
fn float_states_are_rejected() {
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
    );
    error(
        &path,
        &[
            "column `source`",
            "expected a string or integer column, found Float64",
        ],
    );
}

#[test]
fn null_state_is_an_error_that_names_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.parquet");
    write_parquet(
        &path,
        vec![
            ("source", strings(&[Some("a"), Some("b"), Some("c")])),
            ("target", strings(&[Some("b"), None, Some("a")])),
        ],
    );
    error(
        &path,
        &[
            "null source or target",
            "row group 0, row 1, column `target`",
            "--drop-null-states",
        ],
    );
}

#[test]
fn null_states_are_dropped_and_counted_with_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.parquet");
    write_parquet(
        &path,
        vec![
            ("source", strings(&[Some("a"), None, Some("c"), Some("a")])),
            ("target", strings(&[Some("b"), Some("a"), None, Some("c")])),
        ],
    );
    let opts = LoadOptions {
        drop_null_states: true,
        ..LoadOptions::default()
    };
    let log = load(&[path], &opts).unwrap();
    assert_eq!(
        (
            log.summary.rows,
            log.summary.transitions,
            log.summary.dropped_rows
        ),
        (4, 2, 2)
    );
    assert_eq!(
        log.summary.dropped_reasons,
        [("null source or target".to_owned(), 2)]
    );
    assert_eq!(log.graph.names, ["a", "b", "c"]);
}

#[test]
fn zero_count_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.parquet");
    log_with(
        &path,
        vec![("count", Arc::new(Int32Array::from(vec![1, 0])))],
    );
    error(
        &path,
        &[
            "row group 0, row 1, column `count`",
            "expected a count ≥ 1, found 0",
        ],
    );
}

#[test]
fn negative_and_null_counts_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.parquet");
    log_with(
        &path,
        vec![("count", Arc::new(Int32Array::from(vec![-2, 1])))],
    );
    error(&path, &["row group 0, row 0, column `count`", "found -2"]);
    log_with(
        &path,
        vec![("count", Arc::new(Int32Array::from(vec![Some(3), None])))],
    );
    error(&path, &["row 1, column `count`", "found null"]);
}

#[test]
fn truncated_parquet_is_not_readable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.parquet");
    log_with(&path, vec![]);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    error(&path, &["not a readable Parquet file"]);
}

#[test]
fn other_bytes_are_not_a_parquet_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.parquet");
    std::fs::write(&path, "source,target\na,b\n").unwrap();
    error(&path, &["not a readable Parquet file"]);
}

#[test]
fn json_of_the_wrong_shape_names_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.json");
    std::fs::write(
        &path,
        r#"[{"target_expression": "a", "source_expressions": [{"expression": "b"}]},
            {"target_expression": 3, "source_expressions": []}]"#,
    )
    .unwrap();
    error(
        &path,
        &[
            "record 1",
            "target_expression",
            "source_expressions",
            "invalid type",
        ],
    );
    std::fs::write(&path, r#"{"records": []}"#).unwrap();
    error(&path, &["top level", "expected a JSON array of records"]);
    std::fs::write(&path, r#"[{"target_expression": "a"}]"#).unwrap();
    error(&path, &["record 0", "missing field `source_expressions`"]);
}

#[test]
fn empty_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not data").unwrap();
    let name = dir.path().file_name().unwrap().to_str().unwrap().to_owned();
    error_with(
        &[dir.path().to_owned()],
        &LoadOptions::default(),
        &[&name, "no .parquet"],
    );
    let pattern = dir.path().join("*.parquet");
    error_with(
        &[pattern],
        &LoadOptions::default(),
        &["*.parquet", "matching this pattern"],
    );
}

#[test]
fn nonexistent_path_is_an_error() {
    let path = PathBuf::from("/nonexistent/detbal/log.parquet");
    error_with(
        &[path],
        &LoadOptions::default(),
        &["cannot read /nonexistent/detbal/log.parquet"],
    );
}

#[test]
fn invalid_utf8_csv_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.csv");
    std::fs::write(&path, b"source,target\na,b\nb,\xff\xfe\n").unwrap();
    error(&path, &["invalid UTF-8", "line 3"]);
}

#[test]
fn csv_count_that_is_not_an_integer_names_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.csv");
    std::fs::write(&path, "source,target,count\na,b,1\nb,a,1.5\n").unwrap();
    error(
        &path,
        &[
            "line 3, column `count`",
            "expected an integer, found \"1.5\"",
        ],
    );
}

#[test]
fn mixed_schemas_name_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("a.parquet"), dir.path().join("b.parquet"));
    log_with(
        &first,
        vec![("count", Arc::new(Int32Array::from(vec![1, 2])))],
    );
    log_with(&second, vec![]);
    error_with(
        &[dir.path().to_owned()],
        &LoadOptions::default(),
        &[
            "a.parquet",
            "b.parquet",
            "differs from that of",
            "count (integer)",
        ],
    );
}

#[test]
fn unknown_extension_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.txt");
    std::fs::write(&path, "source,target\na,b\n").unwrap();
    error(&path, &["unknown file type"]);
}
