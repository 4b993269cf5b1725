//! Helpers of the integration tests (`mod common;` in each test file that needs them): running
//! the `detbal` binary, writing Parquet inputs, comparing graphs, opening the GPU.
// Each test crate compiles its own copy and uses only part of it.
#![allow(dead_code)]

use arrow::array::ArrayRef;
use arrow::record_batch::RecordBatch;
use detbal::backend::DeviceChoice;
use detbal::backend::gpu::{GpuBackend, GpuOptions};
use detbal::graph::TransitionGraph;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Writes `columns` as one record batch to a Parquet file at `path`.
pub fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>, props: Option<WriterProperties>) {
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), props).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

/// Same states in the same order, the same counts and rows.
pub fn assert_same_graph(a: &TransitionGraph, b: &TransitionGraph) {
    assert_eq!(a.names, b.names, "state order");
    assert_eq!((&a.src, &a.dst, &a.count), (&b.src, &b.dst, &b.count));
    assert_eq!(a.out_count, b.out_count);
    assert_eq!(a.self_count, b.self_count);
    assert_eq!(a.rows, b.rows);
}

/// Runs `detbal ARGS` with the extra environment `env`.
pub fn detbal(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_detbal"));
    command
        .args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir());
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("detbal runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `DIR/report.json`, parsed.
pub fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap()
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

/// The GPU backend opened once with `options` and kept in `cell`; `None` after a SKIP line for
/// `test` when there is no usable adapter, a failure instead when `REQUIRE_GPU=1` (as in CI).
pub fn shared_gpu(
    cell: &'static OnceLock<Result<GpuBackend, String>>,
    options: GpuOptions,
    label: &str,
    test: &str,
) -> Option<&'static GpuBackend> {
    let backend = cell.get_or_init(|| {
        GpuBackend::with_options(DeviceChoice::Gpu, options).map_err(|e| e.to_string())
    });
    match backend {
        Ok(b) => Some(b),
        Err(why) if std::env::var("REQUIRE_GPU").as_deref() == Ok("1") => {
            panic!("REQUIRE_GPU=1 but the {label} GPU backend is unusable: {why}")
        }
        Err(why) => {
            eprintln!("SKIP {test} ({label}): {why}");
            None
        }
    }
}
