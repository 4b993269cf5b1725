//! The `detbal` binary end to end: devices, exit codes, error messages, outputs.

mod common;

use common::{detbal, report, text};
use std::path::{Path, PathBuf};

fn sample() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data/sample.parquet")
        .display()
        .to_string()
}

fn potentials(dir: &Path) -> Vec<Option<f64>> {
    let file = std::fs::File::open(dir.join("potentials.parquet")).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let column = batch.column_by_name("potential").unwrap();
        let values = column
            .as_any()
            .downcast_ref::<arrow::array::Float64Array>()
            .unwrap();
        out.extend(values.iter());
    }
    out
}

#[test]
fn gpu_and_cpu_give_the_same_analysis() {
    let dir = tempfile::tempdir().unwrap();
    let (gpu_dir, cpu_dir) = (dir.path().join("gpu"), dir.path().join("cpu"));
    let gpu = detbal(
        &[
            "analyze",
            &sample(),
            "-o",
            gpu_dir.to_str().unwrap(),
            "--device",
            "gpu",
            "--verify",
        ],
        &[],
    );
    if !gpu.status.success() && text(&gpu.stderr).contains("no GPU adapter") {
        assert_ne!(
            std::env::var("REQUIRE_GPU").as_deref(),
            Ok("1"),
            "REQUIRE_GPU=1 but: {}",
            text(&gpu.stderr)
        );
        eprintln!("SKIP gpu_and_cpu_give_the_same_analysis: no GPU adapter");
        return;
    }
    assert!(gpu.status.success(), "{}", text(&gpu.stderr));
    assert!(
        text(&gpu.stdout).contains("gather_gradient"),
        "the --verify table is printed"
    );
    let cpu = detbal(
        &[
            "analyze",
            &sample(),
            "-o",
            cpu_dir.to_str().unwrap(),
            "--device",
            "cpu",
        ],
        &[],
    );
    assert!(cpu.status.success(), "{}", text(&cpu.stderr));

    // Identifiable potentials within 1e-4 (both centred per component).
    let (vg, vc) = (potentials(&gpu_dir), potentials(&cpu_dir));
    assert_eq!(vg.len(), vc.len());
    for (i, (a, b)) in vg.iter().zip(&vc).enumerate() {
        assert_eq!(
            a.is_some(),
            b.is_some(),
            "state {i}: identifiability differs"
        );
        if let (Some(a), Some(b)) = (a, b) {
            assert!((a - b).abs() <= 1e-4, "state {i}: gpu {a} vs cpu {b}");
        }
    }
    // Statistics to 1e-6 relative; counts and everything else identical.
    let (rg, rc) = (report(&gpu_dir), report(&cpu_dir));
    assert_eq!(rg["device"]["backend"], "gpu");
    assert_eq!(rc["device"]["backend"], "cpu");
    for section in ["graph", "pairs", "cycles", "entropy_production"] {
        compare(&rg[section], &rc[section], section);
    }
    for key in [
        "estimator",
        "converged",
        "identifiable_states",
        "components",
        "kept_states",
        "fitted_edges",
    ] {
        assert_eq!(rg["fit"][key], rc["fit"][key], "fit.{key}");
    }
    compare(&rg["fit"]["action"], &rc["fit"]["action"], "fit.action");
    assert_eq!(rg["verdict"], rc["verdict"]);
}

/// Equal JSON, numbers to 1e-6 relative.
fn compare(a: &serde_json::Value, b: &serde_json::Value, path: &str) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(
                x.keys().collect::<Vec<_>>(),
                y.keys().collect::<Vec<_>>(),
                "{path}"
            );
            for (k, v) in x {
                compare(v, &y[k], &format!("{path}.{k}"));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}");
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                compare(u, v, &format!("{path}[{i}]"));
            }
        }
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-6 * x.abs().max(y.abs()).max(1e-300),
                "{path}: {x} vs {y}"
            );
        }
        _ => assert_eq!(a, b, "{path}"),
    }
}

#[test]
fn without_any_adapter_auto_says_the_cpu_is_used_and_why() {
    let dir = tempfile::tempdir().unwrap();
    // This build has no OpenGL backend: pointing wgpu at it leaves no adapter at all.
    let out = detbal(
        &["analyze", &sample(), "-o", dir.path().to_str().unwrap()],
        &[("WGPU_BACKEND", "gl")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let device: Vec<&str> = stdout.lines().filter(|l| l.starts_with("Device")).collect();
    assert_eq!(device.len(), 1, "{stdout}");
    assert!(
        device[0].contains("cpu") && device[0].contains("no GPU adapter found"),
        "{}",
        device[0]
    );
    assert_eq!(report(dir.path())["device"]["backend"], "cpu");
    // --device gpu is an error there, exit code 1, with the reason.
    let out = detbal(
        &[
            "analyze",
            &sample(),
            "-o",
            dir.path().to_str().unwrap(),
            "--device",
            "gpu",
        ],
        &[("WGPU_BACKEND", "gl")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no GPU adapter"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bad_input_exits_1_with_a_message_naming_the_file_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("log.csv");
    std::fs::write(&bad, "from,to\na,b\n").unwrap();
    let out_dir = dir.path().join("out");
    let out = detbal(
        &[
            "analyze",
            bad.to_str().unwrap(),
            "-o",
            out_dir.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: ") && stderr.contains("log.csv") && stderr.contains("source"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"));
    assert!(!out_dir.exists(), "no output for a failed run");
}

#[test]
fn invalid_settings_and_usage_errors_have_their_exit_codes() {
    let out = detbal(&["analyze", &sample(), "--exposure", "uniform"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--attempts"),
        "{}",
        text(&out.stderr)
    );
    let out = detbal(&["analyze", &sample(), "--no-such-flag"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn paper_mode_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/paper_parity/parity_driven.json");
    let out = detbal(
        &[
            "analyze",
            fixture.to_str().unwrap(),
            "--paper",
            "--device",
            "cpu",
            "-o",
            dir.path().to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r = report(dir.path());
    assert_eq!(r["pairs"]["n"], 591);
    assert_eq!(r["cycles"]["n"], 103);
}

#[test]
fn a_fit_that_does_not_converge_exits_4_with_its_status_and_writes_the_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let out = detbal(
        &[
            "analyze",
            &sample(),
            "-o",
            out_dir.to_str().unwrap(),
            "--device",
            "cpu",
            "--max-iterations",
            "2",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("did not converge") && stderr.contains("iteration limit (2)"),
        "{stderr}"
    );
    assert!(text(&out.stdout).contains("NOT CONVERGED"));
    let r = report(&out_dir);
    assert_eq!(r["fit"]["converged"], false);
    assert_eq!(r["fit"]["iterations"], 2);
    assert!(r["fit"]["grad_norm"].as_f64().unwrap() > r["fit"]["grad_tolerance"].as_f64().unwrap());
}
