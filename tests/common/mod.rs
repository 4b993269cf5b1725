//! Running the `detbal` binary from the integration tests (`mod common;` in each CLI test file).
// Each test crate compiles its own copy and uses only part of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

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
