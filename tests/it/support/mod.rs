//! Helpers of the integration tests, each kept once for every module: paths into the repository,
//! running the `detbal` binary, reading and writing Parquet and directory trees, simulated logs,
//! the shared GPU backends ([`gpu`]) and the JSON Schemas of the outputs ([`schema`]).

mod gpu;
mod schema;

pub use gpu::{Gpu, gpu, private_gpu};
pub use schema::{Schema, assert_valid, key_tree};

use arrow::array::ArrayRef;
use arrow::record_batch::RecordBatch;
use detbal::analyze::{Analysis, AnalyzeSettings, analyze_graph};
use detbal::backend::Backend;
use detbal::graph::TransitionGraph;
use detbal::io::{InputSummary, LoadOptions, load};
use detbal::simulate::{SimParams, SimSummary, Truth, read_truth, simulate};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::properties::WriterProperties;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

// ---------------------------------------------------------------------------------------------
// Paths

/// `path` inside the repository.
pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The bundled sample, `data/sample.parquet`.
pub fn sample() -> PathBuf {
    repo("data/sample.parquet")
}

/// `tests/data/PATH`: the fixtures (each folder's README says where they come from).
pub fn fixture(path: &str) -> PathBuf {
    repo("tests/data").join(path)
}

// ---------------------------------------------------------------------------------------------
// The binary

/// `detbal ARGS`, with `XDG_RUNTIME_DIR` set (without it, Mesa's Vulkan layer prints a harmless
/// libwayland error on a headless machine).
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_detbal"));
    command
        .args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir());
    command
}

/// Runs `detbal ARGS` with the extra environment `env`.
pub fn detbal(args: &[&str], env: &[(&str, &str)]) -> Output {
    command(args)
        .envs(env.iter().copied())
        .output()
        .expect("detbal runs")
}

/// Runs `detbal ARGS` in `dir` (for relative paths), with the extra environment `env`.
pub fn detbal_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    command(args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .output()
        .expect("detbal runs")
}

/// Runs `command` with its standard output a pipe whose reading end is closed at once (as in
/// `detbal … --json | head -c1`); returns its exit status and stderr.
pub fn with_stdout_closed(command: &mut Command) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("detbal runs");
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

/// Runs `detbal analyze INPUTS -o OUT EXTRA`.
pub fn analyze(inputs: &[&Path], out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["analyze"];
    args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
    args.extend(["-o", out.to_str().unwrap()]);
    args.extend_from_slice(extra);
    detbal(&args, &[])
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Checks a failed run: exit code 1, stderr starting with `error: `, containing every part of
/// `expected` and no panic. Returns stderr.
pub fn assert_error(out: &Output, expected: &[&str]) -> String {
    let stderr = text(&out.stderr);
    println!("{stderr}");
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for part in expected {
        assert!(stderr.contains(part), "{part:?} missing from:\n{stderr}");
    }
    stderr
}

/// `DIR/report.json`, parsed, after checking it against `schema/report.schema.json`: every
/// report a test reads is a check of the schema.
pub fn report(dir: &Path) -> serde_json::Value {
    let path = dir.join("report.json");
    let report = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_valid(Schema::Report, &report, &path.display().to_string());
    let mut signed = Vec::new();
    negative_zeros(&report, "", &mut signed);
    assert!(signed.is_empty(), "{}: -0.0 at {signed:?}", path.display());
    report
}

/// The paths of `value`'s numbers written `-0.0`.
fn negative_zeros(value: &serde_json::Value, path: &str, found: &mut Vec<String>) {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.as_f64().is_some_and(|x| x == 0.0 && x.is_sign_negative()) => {
            found.push(path.to_string())
        }
        Value::Array(items) => (items.iter().enumerate())
            .for_each(|(i, v)| negative_zeros(v, &format!("{path}/{i}"), found)),
        Value::Object(fields) => {
            (fields.iter()).for_each(|(k, v)| negative_zeros(v, &format!("{path}/{k}"), found))
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Files

/// Names in `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every file below a directory (relative path → bytes), and every folder (→ `None`).
pub type Tree = BTreeMap<String, Option<Vec<u8>>>;

pub fn tree(dir: &Path) -> Tree {
    let mut found = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let name = path
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if path.is_dir() {
                found.insert(name, None);
                pending.push(path);
            } else {
                found.insert(name, Some(std::fs::read(&path).unwrap()));
            }
        }
    }
    found
}

// ---------------------------------------------------------------------------------------------
// Parquet and graphs

/// Writes `columns` as one record batch to a Parquet file at `path`.
pub fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>, props: Option<WriterProperties>) {
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), props).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

/// The whole Parquet file at `path` as one record batch.
pub fn read_parquet(path: &Path) -> RecordBatch {
    let file = std::fs::File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let schema = reader.schema().clone();
    let batches: Vec<RecordBatch> = reader.build().unwrap().map(Result::unwrap).collect();
    arrow::compute::concat_batches(&schema, &batches).unwrap()
}

/// The column `name` of `batch`.
pub fn column<'a>(batch: &'a RecordBatch, name: &str) -> &'a ArrayRef {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

/// The analysis of `graph` on `backend` with `settings`, as of a log with no input summary.
pub fn analysis_of(
    graph: TransitionGraph,
    backend: &dyn Backend,
    settings: &AnalyzeSettings,
) -> Analysis {
    let start = std::time::Instant::now();
    analyze_graph(
        graph,
        InputSummary::default(),
        backend,
        settings,
        0.0,
        start,
    )
    .unwrap()
}

/// Same states in the same order, the same counts and rows.
pub fn assert_same_graph(a: &TransitionGraph, b: &TransitionGraph) {
    assert_eq!(a.names, b.names, "state order");
    assert_eq!((&a.src, &a.dst, &a.count), (&b.src, &b.dst, &b.count));
    assert_eq!(a.out_count, b.out_count);
    assert_eq!(a.self_count, b.self_count);
    assert_eq!(a.rows, b.rows);
}

// ---------------------------------------------------------------------------------------------
// Simulated logs

/// A log simulated into a temporary directory (removed when this is dropped), with its truth.
pub struct Simulated {
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
    pub truth_file: PathBuf,
    pub summary: SimSummary,
}

/// Simulates `params` into `log.parquet` and `log.truth.json` of a new temporary directory.
pub fn simulated(params: &SimParams) -> Simulated {
    let dir = tempfile::tempdir().unwrap();
    let (log, truth_file) = (
        dir.path().join("log.parquet"),
        dir.path().join("log.truth.json"),
    );
    let summary = simulate(params, &log, &truth_file).unwrap();
    Simulated {
        dir,
        log,
        truth_file,
        summary,
    }
}

impl Simulated {
    pub fn truth(&self) -> Truth {
        read_truth(&self.truth_file).unwrap()
    }

    /// The log, loaded.
    pub fn graph(&self) -> TransitionGraph {
        load(std::slice::from_ref(&self.log), &LoadOptions::default())
            .unwrap()
            .graph
    }
}

/// proptest's settings with `cases` random cases; a failing case is saved beside the test's
/// source (`MODULE.regressions`) and tried first on the next run.
pub fn proptest_config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    }
}
