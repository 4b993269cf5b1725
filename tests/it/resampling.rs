//! The resampling stage (src/stats/permutation.rs, src/stats/bootstrap.rs, kernel `resample`):
//! the GPU's Philox stream equals the CPU's bit for bit, the explanatory-power test's null
//! statistics and p-values agree, and a small calibration on simulations (the full study:
//! examples/calibration.rs).

use crate::support::{
    Gpu, analysis_of, column, detbal, gpu, read_parquet, report, sample, simulated, text,
};
use arrow::array::AsArray;
use detbal::analyze::{Analysis, AnalyzeSettings};
use detbal::backend::cpu::CpuBackend;
use detbal::backend::gpu::{Draws, Precision};
use detbal::backend::jobs::synthetic_job;
use detbal::backend::{Backend, tolerance};
use detbal::rng::{Permutation, Purpose, Stream};
use detbal::simulate::{SimMode, SimParams};
use detbal::stats::bootstrap::coverage;
use detbal::stats::ks_uniform;
use detbal::stats::permutation::ResamplingSettings;

fn analysis(
    graph: &detbal::graph::TransitionGraph,
    backend: &dyn Backend,
    resampling: ResamplingSettings,
) -> Analysis {
    let settings = AnalyzeSettings {
        resampling,
        ..AnalyzeSettings::default()
    };
    analysis_of(graph.clone(), backend, &settings)
}

fn p_value(a: &Analysis, test: &str) -> f64 {
    let r = a.resampling.as_ref().unwrap();
    r.tests
        .iter()
        .find(|t| t.test == test)
        .unwrap_or_else(|| panic!("no {test} test"))
        .p_value
}

#[test]
fn gpu_philox_stream_is_bit_identical_to_the_cpu() {
    let Some(gpu) = gpu(Gpu::Auto, "gpu_philox_stream_is_bit_identical_to_the_cpu") else {
        return;
    };
    // Random123 kat_vectors: philox4x32 10, zero counter and key.
    let zero = Stream { key: [0, 0] };
    let kat = gpu.philox_draws(Draws::Blocks, &zero, 0, 1).unwrap();
    assert_eq!(kat, [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);

    let stream = Stream::new(0x1234_5678_9abc, Purpose::Bootstrap);
    let n = 70_000; // 274 workgroups
    let blocks = gpu.philox_draws(Draws::Blocks, &stream, 17, n).unwrap();
    let cpu: Vec<u32> = (0..n).flat_map(|i| stream.block(i, 17, 0)).collect();
    assert_eq!(blocks, cpu);

    let stream = Stream::new(99, Purpose::Permutation);
    for states in [1u32, 2, 1000, 4097, 100_000] {
        let images = gpu
            .philox_draws(Draws::Permutation(states), &stream, 3, states)
            .unwrap();
        let perm = Permutation::new(states);
        let cpu: Vec<u32> = (0..states).map(|x| perm.apply(&stream, 3, x)).collect();
        assert_eq!(images, cpu, "{states} states");
    }
}

#[test]
fn null_statistics_agree_on_cpu_and_gpu_within_tolerance() {
    let cpu = CpuBackend::new("reference");
    let stream = Stream::new(11, Purpose::Permutation);
    for (gpu, precision) in [
        (
            gpu(Gpu::Auto, "null_statistics_agree (f64)"),
            Precision::F64,
        ),
        (gpu(Gpu::F32, "null_statistics_agree (f32)"), Precision::F32),
    ] {
        let Some(gpu) = gpu else { continue };
        assert_eq!(gpu.precision(), precision);
        // 40,000 items: three chunks of 16,384 (the last one partial).
        let job = synthetic_job(40_000);
        let (c, g) = (
            cpu.resample(&job, &stream, 100..164).unwrap(),
            gpu.resample(&job, &stream, 100..164).unwrap(),
        );
        let tol = tolerance::resample_statistic(precision);
        let mut worst = 0f64;
        for (c, g) in c.iter().zip(&g) {
            let scale = job.scale(*c);
            for k in 0..2 {
                let error = (c[k] - g[k]).abs() / scale[k].max(f64::MIN_POSITIVE);
                worst = worst.max(error);
            }
        }
        println!("{precision:?} permutations: worst relative error {worst:.2e}");
        assert!(worst <= tol, "{worst:e} > {tol:e}");
        // The statistics vary over resamples (the draws are not constant).
        assert!(c.windows(2).any(|w| w[0][0] != w[1][0]));
    }
}

#[test]
fn batches_of_resamples_give_the_same_statistics() {
    // 128 KiB bindings: the permuted potentials of 2,002 states (16 KiB per resample) take 8
    // resamples per batch, so 64 resamples run in 8 batches.
    let test = "batches_of_resamples_give_the_same_statistics";
    let (Some(small), Some(gpu)) = (gpu(Gpu::Binding128K, test), gpu(Gpu::Auto, test)) else {
        return;
    };
    let stream = Stream::new(12, Purpose::Permutation);
    let job = synthetic_job(6_000);
    let whole = gpu.resample(&job, &stream, 0..64).unwrap();
    assert_eq!(small.resample(&job, &stream, 0..64).unwrap(), whole);
    // Items above one binding: a GPU error (the CPU takes over under --device auto).
    let err = small
        .resample(&synthetic_job(40_000), &stream, 0..4)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("above the device's 128.0 KiB storage-binding limit"),
        "{err}"
    );
}

#[test]
fn same_seed_same_p_values_and_intervals_on_cpu_and_gpu() {
    let Some(gpu) = gpu(
        Gpu::Auto,
        "same_seed_same_p_values_and_intervals_on_cpu_and_gpu",
    ) else {
        return;
    };
    let params = SimParams {
        rows: 100_000,
        seed: 3,
        ..SimParams::new(SimMode::Driven)
    };
    let graph = simulated(&params).graph();
    let settings = ResamplingSettings {
        permutations: 2_000,
        bootstrap: 20,
        seed: 42,
        holdout: true,
        level: 0.9,
    };
    let c = analysis(&graph, &CpuBackend::new("reference"), settings.clone());
    let g = analysis(&graph, gpu, settings);
    assert_eq!(g.device.backend, detbal::backend::BackendKind::Gpu);
    let (rc, rg) = (c.resampling.unwrap(), g.resampling.unwrap());
    assert_eq!(rc.tests.len(), 1);
    for (tc, tg) in rc.tests.iter().zip(&rg.tests) {
        assert_eq!(tc.test, tg.test);
        assert_eq!(tc.items, tg.items);
        assert!((tc.observed - tg.observed).abs() <= 1e-9 * tc.observed.abs());
        assert_eq!(tc.p_value, tg.p_value, "{}", tc.test);
        for (x, y) in tc.null.iter().zip(&tg.null) {
            assert!(
                (x - y).abs() <= 1e-9 * x.abs().max(1.0),
                "{}: {x} vs {y}",
                tc.test
            );
        }
        // A planted potential: V_A explains half B's directions.
        assert!(tc.p_value < 1e-3, "{}: p = {}", tc.test, tc.p_value);
    }
    let (bc, bg) = (rc.bootstrap.unwrap(), rg.bootstrap.unwrap());
    let tol = tolerance::potential(Precision::F64);
    for (ic, ig) in bc.potential.iter().zip(&bg.potential) {
        let (ic, ig) = (ic.unwrap(), ig.unwrap());
        assert_eq!(ic.resamples, ig.resamples);
        let diff = (ic.low - ig.low).abs().max((ic.high - ig.high).abs());
        assert!(
            diff <= tol,
            "bootstrap interval: CPU and GPU differ by {diff:e}"
        );
    }
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * a.abs().max(1.0);
    let (hc, hg) = (rc.holdout.unwrap(), rg.holdout.unwrap());
    assert!(close(hc.pair_chi2, hg.pair_chi2) && close(hc.cycle_chi2, hg.cycle_chi2));
}

/// Calibration in CI (CPU; the backends agree by the tests above): the explanatory-power test's
/// p-values are uniform on 24 small simulations with a flat potential (KS p > 0.01: with 24
/// draws from U(0,1) this fails 1 % of the time by chance, but the seeds are fixed), and on
/// simulations with a planted potential and 1e5 rows it gives p < 0.001.
#[test]
fn small_calibration_uniform_under_the_null_and_rejecting_otherwise() {
    let cpu = CpuBackend::new("calibration");
    let settings = |seed| ResamplingSettings {
        permutations: 400,
        bootstrap: 0,
        seed,
        holdout: false,
        level: 0.9,
    };
    let small = |seed| SimParams {
        rows: 30_000,
        states: 60,
        vscale: 0.0,
        seed,
        ..SimParams::new(SimMode::Reversible)
    };
    let flat: Vec<f64> = (0..24)
        .map(|seed| {
            let g = simulated(&small(200 + seed)).graph();
            p_value(&analysis(&g, &cpu, settings(seed)), "explanatory_power")
        })
        .collect();
    let ks = ks_uniform(&flat);
    println!("explanatory power (flat V): KS p = {ks:.3}, p-values {flat:.3?}");
    assert!(ks > 0.01, "explanatory power (flat V): KS p = {ks}");
    for seed in 0..3 {
        let params = SimParams {
            rows: 100_000,
            seed: 400 + seed,
            ..SimParams::new(SimMode::Reversible)
        };
        let g = simulated(&params).graph();
        let a = analysis(
            &g,
            &cpu,
            ResamplingSettings {
                permutations: 1_000,
                ..settings(seed)
            },
        );
        assert!(
            p_value(&a, "explanatory_power") < 1e-3,
            "non-flat seed {seed}"
        );
    }
}

#[test]
fn bootstrap_intervals_cover_the_planted_potential_at_their_level() {
    let params = SimParams {
        rows: 200_000,
        seed: 21,
        ..SimParams::new(SimMode::Reversible)
    };
    let sim = simulated(&params);
    let (graph, truth) = (sim.graph(), sim.truth());
    let settings = ResamplingSettings {
        permutations: 0,
        bootstrap: 200,
        seed: 1,
        holdout: false,
        level: 0.9,
    };
    let a = analysis(&graph, &CpuBackend::new("coverage"), settings);
    let b = a.resampling.as_ref().unwrap().bootstrap.as_ref().unwrap();
    let c = coverage(
        b,
        &a.potential,
        &truth.potential_of(&a.graph.names).unwrap(),
    );
    println!(
        "90 % intervals cover the planted V on {:.1} % of states",
        100.0 * c
    );
    // 200 states: the binomial standard error of the fraction is ~2 %.
    assert!((0.85..=0.95).contains(&c), "coverage {c}");
}

#[test]
fn analyze_writes_the_nulls_the_permutation_section_and_the_summary_lines() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let sample = sample();
    let sample = sample.to_str().unwrap();
    let args = [
        "analyze",
        sample,
        "--device",
        "cpu",
        "--permutations",
        "300",
        "--bootstrap",
        "5",
        "--seed",
        "7",
        "--holdout",
        "-o",
        out.to_str().unwrap(),
    ];
    let run = detbal(&args, &[]);
    let stdout = text(&run.stdout);
    assert!(run.status.success(), "{}", text(&run.stderr));
    for line in [
        "Resampled  300 resamples, seed 7: explanatory power p ",
        "Bootstrap  5 refits, 90 % intervals of V on ",
        "Held out   V fitted on ",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }
    let r = report(&out);
    let section = &r["permutation"];
    assert_eq!(section["seed"], 7);
    let tests = section["tests"].as_array().unwrap();
    let names: Vec<&str> = tests.iter().map(|t| t["test"].as_str().unwrap()).collect();
    assert_eq!(names, ["explanatory_power"]);
    for t in tests {
        let (exceed, p) = (
            t["exceed"].as_u64().unwrap(),
            t["p_value"].as_f64().unwrap(),
        );
        assert_eq!(p, (1 + exceed) as f64 / 301.0);
    }
    assert!(section.get("parametric_fit_dof").is_none());
    let bootstrap = &section["bootstrap"];
    assert_eq!(bootstrap["resamples"], 5);
    // Only V has intervals: those of the χ² statistics and of r were retired.
    for retired in ["pearson_r", "pair_chi2", "cycle_chi2"] {
        assert!(bootstrap.get(retired).is_none(), "{retired}");
    }
    assert_eq!(
        section["bootstrap"]["potential"].as_array().unwrap().len(),
        300
    );
    assert!(section["holdout"]["transitions_fit"].as_u64().unwrap() > 90_000);
    assert!(r["timings"]["resampling"].as_f64().unwrap() > 0.0);

    // nulls.parquet: 300 rows, with the observed value repeated.
    let nulls = read_parquet(&out.join("nulls.parquet"));
    let rows = nulls.num_rows();
    let names: Vec<String> = column(&nulls, "test")
        .as_string::<i32>()
        .iter()
        .map(|t| t.unwrap().to_string())
        .collect();
    for column in ["resample", "statistic", "observed"] {
        assert!(nulls.column_by_name(column).is_some(), "{column}");
    }
    assert_eq!(rows, 300);
    assert!(names.iter().all(|n| n == "explanatory_power"));

    // Off: no nulls.parquet, no section.
    let off = dir.path().join("off");
    let run = detbal(
        &[
            "analyze",
            sample,
            "--device",
            "cpu",
            "--permutations",
            "0",
            "--bootstrap",
            "0",
            "-q",
            "-o",
            off.to_str().unwrap(),
        ],
        &[],
    );
    assert!(run.status.success());
    assert!(!off.join("nulls.parquet").exists());
    assert!(report(&off)["permutation"].is_null());

    let bad = detbal(&["analyze", sample, "--permutations", "many"], &[]);
    assert_eq!(
        bad.status.code(),
        Some(1),
        "a bad value: exit 1, as the README says"
    );
    assert!(text(&bad.stderr).contains("--permutations"));
}
