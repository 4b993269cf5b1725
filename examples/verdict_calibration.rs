//! Calibration and power of the verdict's test (BENCHMARKS.md, "The verdict's test"), on the
//! CPU: many simulated logs per (mode, size), the verdict's p-value of each.
//!
//! - Null (`reversible`, `llm-like`, `llm-hard`: detailed balance holds exactly): the p-values of
//!   the logs where the verdict decides (`decides`; the others are counted as undecided) must be
//!   uniform: the share at or below each level of [`AT_MOST`] within its binomial error of the
//!   level (the Kolmogorov–Smirnov p, also printed, only on a few dozen logs: see [`AT_MOST`]).
//! - Power (`driven`, the simulator's default drive): the rejection rate at α = 0.01.
//! - Entropy production: the largest relative gap between its edge and cycle sums, and the
//!   excess over its null expectation in null standard deviations (mean and spread).
//! - The run-memory check (`io::memory`): on these Markov logs it must not say "remembers";
//!   its largest |z| and the range of its ratio.
//!
//! `cargo run --release --example verdict_calibration -- MODE ROWS LOGS [MAX_RESAMPLES]
//! [MIN_TRANSITIONS] [RUN_LEN]` (defaults 999, 10 and the mode's mean run length; a run length
//! of 1 makes every transition start afresh from a uniform state, without trajectories)
//! (e.g. `reversible 20000 200`); prints one Markdown row and appends it as JSON to
//! `target/verdict_calibration.jsonl`. Seeds are `1..=LOGS`.

use detbal::backend::cpu::CpuBackend;
use detbal::io::{self, LoadOptions};
use detbal::simulate::{SimMode, SimParams, simulate};
use detbal::stats::entropy::entropy_production;
use detbal::stats::ks_uniform;
use detbal::stats::quasi_symmetry::{Calibration, NullModel, VerdictSettings, quasi_symmetry_test};
use std::io::Write;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage =
        "usage: verdict_calibration MODE ROWS LOGS [MAX_RESAMPLES] [MIN_TRANSITIONS] [RUN_LEN]";
    let mode = match args.first().map(String::as_str) {
        Some("reversible") => SimMode::Reversible,
        Some("llm-like") => SimMode::LlmLike,
        Some("llm-hard") => SimMode::LlmHard,
        Some("driven") => SimMode::Driven,
        _ => panic!("{usage}"),
    };
    let rows: u64 = args.get(1).and_then(|s| s.parse().ok()).expect(usage);
    let logs: u64 = args.get(2).and_then(|s| s.parse().ok()).expect(usage);
    let max_resamples: usize = args.get(3).map_or(999, |s| s.parse().expect(usage));
    let min_transitions: u64 = args.get(4).map_or(10, |s| s.parse().expect(usage));
    let run_len: f64 = args
        .get(5)
        .map_or(SimParams::new(mode).run_len, |s| s.parse().expect(usage));
    let dir = tempfile::tempdir().unwrap();
    let cpu = CpuBackend::new("verdict_calibration");
    let (log, truth) = (
        dir.path().join("l.parquet"),
        dir.path().join("l.truth.json"),
    );
    let start = Instant::now();
    let (mut p_values, mut untestable, mut resamples) = (Vec::new(), 0, 0usize);
    let mut undecided = 0;
    let (mut asymptotic, mut pairs, mut ndf, mut sparse) = (Vec::new(), 0usize, 0i64, 0usize);
    let mut methods = std::collections::BTreeMap::<String, usize>::new();
    let (mut identity_gap, mut absolute_gap, mut excess_z) = (0f64, 0f64, Vec::new());
    // (seed, threshold used, p-value) of every tested log.
    let mut per_log: Vec<(u64, u64, f64)> = Vec::new();
    // The run-memory check of each log (`io::memory`): z, ratio, and whether it said "remembers".
    let mut memory: Vec<(f64, f64, bool)> = Vec::new();
    for seed in 1..=logs {
        let params = SimParams {
            rows,
            seed,
            run_len,
            ..SimParams::new(mode)
        };
        simulate(&params, &log, &truth).unwrap();
        let loaded = io::load(std::slice::from_ref(&log), &LoadOptions::default()).unwrap();
        if let Some(m) = loaded.summary.run_memory {
            memory.push((m.z, m.ratio, m.remembers));
        }
        let graph = loaded.graph.canonical();
        let settings = VerdictSettings {
            max_resamples,
            min_transitions,
            seed,
            ..VerdictSettings::default()
        };
        let (test, _, fitted) = quasi_symmetry_test(&graph, &settings, 0.05, &cpu).unwrap();
        let null = (!fitted.pairs.is_empty()).then(|| NullModel::new(&fitted));
        let (entropy, _) = entropy_production(&graph, null.as_ref(), &cpu, seed).unwrap();
        let gap = (entropy.nats_per_transition - entropy.cycle_sum_nats_per_transition).abs();
        identity_gap = identity_gap.max(gap / entropy.nats_per_transition.abs().max(1e-300));
        absolute_gap = absolute_gap.max(gap);
        excess_z.extend(entropy.excess_z);
        match test.p_value {
            // Not a decision (a threshold lowered to single transitions): counted apart.
            Some(_) if !test.decides => undecided += 1,
            Some(p) => {
                p_values.push(p);
                per_log.push((seed, test.min_transitions, p));
                asymptotic.push(test.p_value_asymptotic.unwrap());
                resamples += test.resamples;
                pairs += test.pairs;
                ndf += test.ndf;
                sparse += test.sparse_pairs;
                let method = test.calibration.unwrap_or(Calibration::Asymptotic);
                *methods.entry(format!("{method:?}")).or_default() += 1;
            }
            None => untestable += 1,
        }
    }
    let n = p_values.len().max(1) as f64;
    let rate = |ps: &[f64], alpha: f64| ps.iter().filter(|&&p| p < alpha).count() as f64 / n;
    let z_sd = {
        let k = excess_z.len().max(2) as f64;
        let m = excess_z.iter().sum::<f64>() / excess_z.len().max(1) as f64;
        (excess_z.iter().map(|z| (z - m).powi(2)).sum::<f64>() / (k - 1.0)).sqrt()
    };
    let row = serde_json::json!({
        "mode": format!("{mode:?}"),
        "rows": rows,
        "logs": logs,
        "tested": p_values.len(),
        "untestable": untestable,
        "undecided": undecided,
        "max_resamples": max_resamples,
        "min_transitions": min_transitions,
        "run_len": run_len,
        "mean_pairs": pairs as f64 / n,
        "mean_ndf": ndf as f64 / n,
        "mean_sparse_pairs": sparse as f64 / n,
        "mean_p": p_values.iter().sum::<f64>() / n,
        "ks_p": ks_uniform(&p_values),
        "reject_0_05": rate(&p_values, 0.05),
        "reject_0_01": rate(&p_values, 0.01),
        "asymptotic_ks_p": ks_uniform(&asymptotic),
        "asymptotic_reject_0_05": rate(&asymptotic, 0.05),
        "asymptotic_reject_0_01": rate(&asymptotic, 0.01),
        // `P(p ≤ a)`: at most `a` for a valid test at the sequential p-values' support points.
        "at_most": AT_MOST.map(|a| (a, at_most(&p_values, a))),
        "mean_resamples": resamples as f64 / n,
        "calibrations": methods,
        "entropy_identity_max_relative_gap": identity_gap,
        "entropy_identity_max_absolute_gap": absolute_gap,
        "entropy_excess_z_mean": excess_z.iter().sum::<f64>() / excess_z.len().max(1) as f64,
        "entropy_excess_z_sd": z_sd,
        "run_memory_measured": memory.len(),
        "run_memory_remembers": memory.iter().filter(|m| m.2).count(),
        "run_memory_max_abs_z": memory.iter().map(|m| m.0.abs()).fold(0.0, f64::max),
        "run_memory_ratio_range": memory.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), m| (lo.min(m.1), hi.max(m.1))),
        "seconds": start.elapsed().as_secs_f64(),
        "per_log": per_log,
    });
    // NaN where no log was tested (the statistic is then a JSON null).
    let number = |key: &str| row[key].as_f64().unwrap_or(f64::NAN);
    println!(
        "| {mode:?} | {rows} | {} of {logs} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.0} | {:.0} s |",
        p_values.len(),
        number("mean_pairs"),
        number("ks_p"),
        number("reject_0_05"),
        number("reject_0_01"),
        number("asymptotic_ks_p"),
        number("asymptotic_reject_0_05"),
        number("asymptotic_reject_0_01"),
        number("mean_resamples"),
        number("seconds"),
    );
    let shares: Vec<String> = (AT_MOST.iter())
        .map(|&a| format!("p ≤ {a}: {:.3}", at_most(&p_values, a)))
        .collect();
    println!("  {}", shares.join(", "));
    println!(
        "  run memory: measured on {}, said to remember on {}, max |z| {:.2}, ratio {:?}",
        row["run_memory_measured"],
        row["run_memory_remembers"],
        row["run_memory_max_abs_z"],
        row["run_memory_ratio_range"]
    );
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(target.join("verdict_calibration.jsonl"))
        .unwrap();
    writeln!(out, "{row}").unwrap();
}

/// Levels at which the share of p-values at or below them is reported. Each is a support point
/// of the sequential p-value (`10/L` for `L` = 200, 100, 50, 20; `(1 + G)/1000` at the cap of
/// 999 resamples), where a valid test has `P(p ≤ a) = a` exactly. The Kolmogorov–Smirnov p is no check of these p-values on a few
/// hundred logs: they are discrete (`p = 1` with probability 1/11, nothing in (10/11, 1)), which
/// alone puts the empirical distribution 0.09 from the uniform's, beyond KS's 5 % critical
/// distance from about 230 logs on.
const AT_MOST: [f64; 5] = [0.01, 0.05, 0.1, 0.2, 0.5];

/// The share of `p_values` at most `a`.
fn at_most(p_values: &[f64], a: f64) -> f64 {
    let n = p_values.len().max(1) as f64;
    p_values.iter().filter(|&&p| p <= a).count() as f64 / n
}
