//! `detbal bench` end to end: a quick run writes rows of both suites, a missing GPU is an error
//! that says why, and (with `REQUIRE_GPU=1`, or whenever an adapter exists) the GPU rows name
//! their adapter. Times are only checked to be measured (positive), never compared.

use crate::support::{detbal, text};
use serde_json::Value;
use std::path::Path;

/// The JSON rows, after checking that both suites are there with measured times.
fn rows(path: &Path, backend: &str) -> Vec<Value> {
    let rows: Vec<Value> = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    for (suite, names) in [
        ("kernel", &["edge_action", "fit_iteration"][..]),
        ("stage", &["load", "fit", "pairs", "cycles", "total"][..]),
    ] {
        for name in names {
            let found: Vec<&Value> = rows
                .iter()
                .filter(|r| r["suite"] == suite && r["name"] == *name)
                .collect();
            assert!(!found.is_empty(), "no {suite} row {name}: {rows:#?}");
            for r in found {
                assert_eq!(r["backend"], backend, "{r}");
                assert!(r["time"].as_f64().unwrap() > 0.0, "{r}");
                assert!(r["throughput"].as_f64().unwrap() > 0.0, "{r}");
                assert!(r["runs"].as_u64().unwrap() >= 1, "{r}");
                let unit = if suite == "kernel" {
                    "edges/s"
                } else {
                    "rows/s"
                };
                assert_eq!(r["unit"], unit, "{r}");
            }
        }
    }
    let fit = rows.iter().find(|r| r["name"] == "fit").unwrap();
    assert!(fit["iterations"].as_u64().unwrap() > 0, "{fit}");
    assert!(fit["action"].as_f64().unwrap().is_finite(), "{fit}");
    rows
}

#[test]
fn quick_cpu_run_writes_both_suites() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let out = detbal(
        &[
            "bench",
            "--quick",
            "--device",
            "cpu",
            "--json",
            json.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    rows(&json, "cpu");
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("suite"), "{stdout}");
    assert!(
        stdout.contains("edge_action") && stdout.contains("total"),
        "{stdout}"
    );
}

#[test]
fn device_gpu_without_an_adapter_is_an_error_that_says_why() {
    // This build has no OpenGL backend: pointing wgpu at it leaves no adapter at all.
    let out = detbal(
        &["bench", "--quick", "--device", "gpu"],
        &[("WGPU_BACKEND", "gl")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("no GPU adapter"), "{stderr}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
}

#[test]
fn quick_gpu_run_names_the_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let out = detbal(
        &[
            "bench",
            "--quick",
            "--device",
            "gpu",
            "--json",
            json.to_str().unwrap(),
        ],
        &[],
    );
    if !out.status.success() {
        let why = text(&out.stderr);
        assert!(
            std::env::var("REQUIRE_GPU").as_deref() != Ok("1"),
            "REQUIRE_GPU=1 but: {why}"
        );
        eprintln!("SKIP quick_gpu_run_names_the_adapter: {why}");
        return;
    }
    let rows = rows(&json, "gpu");
    let adapter = rows[0]["adapter"].as_str().unwrap();
    assert!(!adapter.is_empty() && !adapter.contains("CPU thread"));
    assert!(rows.iter().all(|r| r["adapter"] == adapter));
    assert!(text(&out.stdout).contains(adapter));
    assert!(text(&out.stderr).contains(&format!("gpu on {adapter}")));
}
