//! GPU faults, injected with `DETBAL_GPU_FAULT` (src/backend/gpu/fault.rs), through the `detbal`
//! binary on data/sample.parquet: under `--device auto` one warning naming the fault and the
//! analysis on the CPU (exit 0, report.json's `device` says so); under `--device gpu` exit 1 with
//! a message naming the fault, never a panic. `DETBAL_ALLOW_SOFTWARE_GPU=1` lets `--device auto`
//! open lavapipe, so that the faults after the adapter's choice happen under it too.
//!
//! Without a GPU adapter the tests print a SKIP line and pass, unless `REQUIRE_GPU=1`:
//! `XDG_RUNTIME_DIR=/tmp WGPU_BACKEND=vulkan REQUIRE_GPU=1 cargo test --release --test it gpu_faults::`.

use crate::support::{Gpu, detbal, gpu, report, sample};
use std::path::Path;
use std::process::Output;

/// Whether a GPU adapter can be opened; `false` after a SKIP line (a failure when
/// `REQUIRE_GPU=1`).
fn have_gpu(test: &str) -> bool {
    gpu(Gpu::Auto, test).is_some()
}

/// `detbal analyze data/sample.parquet -o out --device device --quiet` with `fault` injected.
fn analyze(out: &Path, device: &str, fault: &str) -> Output {
    let sample = sample();
    detbal(
        &[
            "analyze",
            sample.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--device",
            device,
            "--quiet",
        ],
        &[
            ("WGPU_BACKEND", "vulkan"),
            ("DETBAL_ALLOW_SOFTWARE_GPU", "1"),
            ("DETBAL_GPU_FAULT", fault),
        ],
    )
}

fn report_device(out: &Path) -> serde_json::Value {
    report(out)["device"].clone()
}

/// `--device auto`: exit 0, exactly one warning, naming the fault (`says`), and the CPU in the
/// report with the fault in `device.fault` and a reason that does not repeat it.
fn auto_falls_back(fault: &str, says: &str) {
    if !have_gpu(&format!("{fault} under auto")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = analyze(dir.path(), "auto", fault);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    let injected = format!("DETBAL_GPU_FAULT={fault}");
    assert!(
        warnings[0].contains(says) && warnings[0].contains(&injected),
        "{}",
        warnings[0]
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let device = report_device(dir.path());
    assert_eq!(device["backend"], "cpu", "{device}");
    // The fault is named in full in the warning and in `device.fault`; the reason (the summary's
    // Device line) says what happened without repeating it.
    let reason = device["reason"].as_str().unwrap();
    assert!(
        reason.contains("--device auto") && !reason.contains(says),
        "{reason}"
    );
    let fault_text = device["fault"].as_str().unwrap();
    assert!(
        fault_text.contains(says) && fault_text.contains(&injected),
        "{fault_text}"
    );
}

/// `--device gpu`: exit 1 with an error naming the fault (`says`), no panic.
fn gpu_fails(fault: &str, says: &str) {
    if !have_gpu(&format!("{fault} under gpu")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = analyze(dir.path(), "gpu", fault);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("error: GPU backend: "), "{stderr}");
    assert!(
        stderr.contains(says) && stderr.contains(&format!("DETBAL_GPU_FAULT={fault}")),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

const NO_ADAPTER: &str = "no GPU adapter found";
const MISSING_FEATURE: &str = "lacks a feature every kernel needs: compute shaders";
const DEVICE_LOST: &str = "the GPU device was lost";
const ALLOCATION: &str = "buffer allocation failed";
const SHADER: &str = "cannot compile kernel edge_action";

#[test]
fn no_adapter_under_auto_falls_back() {
    auto_falls_back("no-adapter", NO_ADAPTER);
}

#[test]
fn no_adapter_under_gpu_is_an_error() {
    gpu_fails("no-adapter", NO_ADAPTER);
}

#[test]
fn missing_feature_under_auto_falls_back() {
    auto_falls_back("missing-feature", MISSING_FEATURE);
}

#[test]
fn missing_feature_under_gpu_is_an_error() {
    gpu_fails("missing-feature", MISSING_FEATURE);
}

#[test]
fn device_lost_under_auto_falls_back() {
    auto_falls_back("device-lost", DEVICE_LOST);
}

#[test]
fn device_lost_under_gpu_is_an_error() {
    gpu_fails("device-lost", DEVICE_LOST);
}

#[test]
fn allocation_under_auto_falls_back() {
    auto_falls_back("allocation", ALLOCATION);
}

#[test]
fn allocation_under_gpu_is_an_error() {
    gpu_fails("allocation", ALLOCATION);
}

#[test]
fn shader_under_auto_falls_back() {
    auto_falls_back("shader", SHADER);
}

#[test]
fn shader_under_gpu_is_an_error() {
    gpu_fails("shader", SHADER);
}

#[test]
fn without_a_fault_auto_runs_on_the_gpu_without_a_warning() {
    if !have_gpu("no fault under auto") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = analyze(dir.path(), "auto", "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("warning:"), "{stderr}");
    assert_eq!(report_device(dir.path())["backend"], "gpu");
}

#[test]
fn an_unknown_fault_is_a_settings_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = analyze(dir.path(), "auto", "meteor");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("DETBAL_GPU_FAULT is \"meteor\""),
        "{stderr}"
    );
}
