//! The calibration study of the resampling stage (BENCHMARKS.md, "Resampling tests"), on the CPU
//! (the GPU's draws are bit-identical: tests/it/resampling.rs):
//! - reversible simulations (default 200 states, V ~ N(0, 1), 1e5 rows): the explanatory-power
//!   test must reject (its alternative: V is not flat);
//! - flat potentials (`vscale` 0): the explanatory-power p-values must be uniform
//!   (Kolmogorov–Smirnov p > 0.01);
//! - bootstrap: the 90 % intervals of V on the first reversible simulations must cover the
//!   planted potential on 85–95 % of states.
//!
//! The sign-flip and parametric detailed-balance tests this study also calibrated were retired
//! (src/stats/permutation.rs); the verdict's test has its own study,
//! examples/verdict_calibration.rs.
//!
//! `cargo run --release --example calibration -- [SIMS] [RESAMPLES] [BOOTSTRAP_SIMS]`
//! (defaults 100, 2000, 10); prints a Markdown table and writes `target/calibration.json`.

use detbal::analyze::{Analysis, AnalyzeSettings, analyze_graph};
use detbal::backend::cpu::CpuBackend;
use detbal::io::{self, InputSummary, LoadOptions};
use detbal::simulate::{SimMode, SimParams, read_truth, simulate};
use detbal::stats::bootstrap::coverage;
use detbal::stats::ks_uniform;
use detbal::stats::permutation::ResamplingSettings;
use std::collections::HashMap;
use std::time::Instant;

fn run(params: &SimParams, resampling: ResamplingSettings) -> (Analysis, Vec<f64>) {
    let dir = tempfile::tempdir().unwrap();
    let (log, truth) = (
        dir.path().join("l.parquet"),
        dir.path().join("l.truth.json"),
    );
    simulate(params, &log, &truth).unwrap();
    let graph = io::load(&[log], &LoadOptions::default()).unwrap().graph;
    let truth = read_truth(&truth).unwrap();
    let planted = truth
        .potential_of(&graph.names)
        .expect("every state is planted");
    let settings = AnalyzeSettings {
        resampling,
        ..AnalyzeSettings::default()
    };
    let cpu = CpuBackend::new("calibration");
    let a = analyze_graph(
        graph,
        InputSummary::default(),
        &cpu,
        &settings,
        0.0,
        Instant::now(),
    );
    (a.unwrap(), planted)
}

fn p(a: &Analysis, test: &str) -> f64 {
    let tests = &a.resampling.as_ref().unwrap().tests;
    tests
        .iter()
        .find(|t| t.test == test)
        .map_or(f64::NAN, |t| t.p_value)
}

fn main() {
    let arg = |i: usize, default: u32| {
        std::env::args()
            .nth(i)
            .map_or(default, |a| a.parse().expect("a count"))
    };
    let (sims, resamples, bootstrap_sims) = (arg(1, 100), arg(2, 2_000), arg(3, 10));
    let tests = |seed| ResamplingSettings {
        permutations: resamples,
        bootstrap: 0,
        seed,
        holdout: false,
        level: 0.9,
    };
    let sim = |mode, vscale, seed| SimParams {
        rows: 100_000,
        vscale,
        seed,
        ..SimParams::new(mode)
    };
    let start = Instant::now();
    let mut p_values: HashMap<&str, Vec<f64>> = HashMap::new();
    for i in 0..sims {
        let seed = u64::from(i);
        let (a, _) = run(&sim(SimMode::Reversible, 1.0, 1_000 + seed), tests(seed));
        p_values
            .entry("non-flat explanatory_power")
            .or_default()
            .push(p(&a, "explanatory_power"));
        let (a, _) = run(&sim(SimMode::Reversible, 0.0, 3_000 + seed), tests(seed));
        p_values
            .entry("flat explanatory_power")
            .or_default()
            .push(p(&a, "explanatory_power"));
        eprintln!(
            "simulation {} of {sims}: {:.0} s",
            i + 1,
            start.elapsed().as_secs_f64()
        );
    }
    let mut coverages = Vec::new();
    for i in 0..bootstrap_sims {
        let seed = u64::from(i);
        let settings = ResamplingSettings {
            permutations: 0,
            bootstrap: 200,
            ..tests(seed)
        };
        let (a, planted) = run(&sim(SimMode::Reversible, 1.0, 1_000 + seed), settings);
        let b = a.resampling.as_ref().unwrap().bootstrap.as_ref().unwrap();
        coverages.push(coverage(b, &a.potential, &planted));
    }

    println!("| simulations | test | null? | KS p (uniform) | runs with p < 0.001 |");
    println!("|---|---|---|---|---|");
    let mut keys: Vec<_> = p_values.keys().copied().collect();
    keys.sort_unstable();
    let mut json = serde_json::Map::new();
    for key in keys {
        let ps = &p_values[key];
        let null = key.starts_with("flat");
        let (sims_label, test) = key.split_once(' ').unwrap();
        let rejected = ps.iter().filter(|&&p| p < 1e-3).count() as f64 / ps.len() as f64;
        let ks = ks_uniform(ps);
        println!(
            "| {} × {sims_label} | {test} | {} | {ks:.3} | {:.1} % |",
            ps.len(),
            if null { "yes" } else { "no" },
            100.0 * rejected
        );
        json.insert(
            key.to_string(),
            serde_json::json!({"ks_p": ks, "rejected_at_1e-3": rejected, "p_values": ps}),
        );
    }
    let mean = coverages.iter().sum::<f64>() / coverages.len().max(1) as f64;
    println!(
        "\nBootstrap (200 refits, 90 % percentile intervals of V) on {} reversible simulations: \
         coverage {:.1} % (per simulation {:.1?})",
        coverages.len(),
        100.0 * mean,
        coverages.iter().map(|c| 100.0 * c).collect::<Vec<_>>()
    );
    json.insert("coverage".into(), serde_json::json!(coverages));
    json.insert("resamples".into(), serde_json::json!(resamples));
    json.insert(
        "seconds".into(),
        serde_json::json!(start.elapsed().as_secs_f64()),
    );
    let out = concat!(env!("CARGO_MANIFEST_DIR"), "/target/calibration.json");
    std::fs::write(out, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    eprintln!("wrote {out}");
}
