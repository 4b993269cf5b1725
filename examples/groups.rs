//! The groups suite (BENCHMARKS.md, "Groups"): two groups simulated from one planted potential
//! and from two, in the shape of a word-agent log of a small LLM under two prompt templates (a few
//! hundred states, ≈ 5,000 transitions per group, most states seen once or twice). For each seed
//! and each estimator it runs `detbal analyze --group-by group` (the pipeline, on the CPU) and
//! prints the cross-group Pearson of the potentials and the shared-potential test's p-value;
//! then the means ± sd over seeds, and the test's rejection rates at 0.05 and 0.01.
//!
//! `cargo run --release --example groups -- DIR [SEEDS] [STATES] [ROWS]` (defaults 20, 300 and
//! 10,000 rows in all: `detbal simulate --mode llm-like --states 300 --rows 10000 --groups 2
//! [--shared-potential] --seed S` writes the same logs).

use detbal::analyze::AnalyzeSettings;
use detbal::backend::DeviceChoice;
use detbal::fit::{Estimator, FitSettings};
use detbal::io::LoadOptions;
use detbal::pipeline::analyze;
use detbal::simulate::{SimMode, SimParams, simulate};
use std::path::PathBuf;

/// The estimators compared: (name, estimator, `--l2 auto`).
const METHODS: [(&str, Estimator, bool); 5] = [
    ("least action (no ridge)", Estimator::LeastAction, false),
    ("least action + --l2 auto", Estimator::LeastAction, true),
    ("counts + --l2 auto", Estimator::Counts, true),
    ("reversible-mle (no ridge)", Estimator::ReversibleMle, false),
    ("reversible-mle + --l2 auto", Estimator::ReversibleMle, true),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = PathBuf::from(
        args.first()
            .expect("usage: groups DIR [SEEDS] [STATES] [ROWS]"),
    );
    let arg = |i: usize, default: u64| args.get(i).map_or(default, |s| s.parse().expect("number"));
    let (seeds, states, rows) = (arg(1, 20), arg(2, 300) as u32, arg(3, 10_000));
    std::fs::create_dir_all(&dir).unwrap();
    println!("| potentials | seed | method | shared states | Pearson | shared-potential p |");
    println!("|---|---|---|---|---|---|");
    // [shared?][method] → Pearson per seed; [shared?] → p per seed.
    let mut r = vec![vec![Vec::new(); METHODS.len()]; 2];
    let mut p = vec![Vec::new(); 2];
    for (kind, shared) in [(0, true), (1, false)] {
        for seed in 1..=seeds {
            let log = dir.join(format!("groups-{states}-{rows}-{seed}-{shared}.parquet"));
            let params = SimParams {
                rows,
                states,
                seed,
                groups: 2,
                shared_potential: shared,
                ..SimParams::new(SimMode::LlmLike)
            };
            simulate(&params, &log, &log.with_extension("truth.json")).unwrap();
            for (m, &(name, estimator, auto)) in METHODS.iter().enumerate() {
                let settings = AnalyzeSettings {
                    device: DeviceChoice::Cpu,
                    load: LoadOptions {
                        group_column: Some("group".into()),
                        ..LoadOptions::default()
                    },
                    fit: FitSettings {
                        estimator,
                        l2_auto: auto,
                        ..FitSettings::default()
                    },
                    ..AnalyzeSettings::default()
                };
                let groups = analyze(std::slice::from_ref(&log), &settings)
                    .unwrap()
                    .groups
                    .unwrap();
                let c = &groups.correlations[0];
                let test = groups.shared_potential.as_ref().map(|t| t.p_value);
                println!(
                    "| {} | {seed} | {name} | {} | {} | {} |",
                    if shared { "one" } else { "two" },
                    c.shared_states,
                    c.pearson.map_or("n/a".into(), |x| format!("{x:.3}")),
                    test.map_or("n/a".into(), |x| format!("{x:.3}")),
                );
                r[kind][m].push(c.pearson.unwrap_or(f64::NAN));
                if m == 0 {
                    p[kind].push(test.unwrap_or(f64::NAN));
                }
            }
        }
    }
    summary(&r, &p);
}

/// Means ± sd of the Pearson per method, the gain over the first method, and the test's
/// rejection rates.
fn summary(r: &[Vec<Vec<f64>>], p: &[Vec<f64>]) {
    println!(
        "\n| potentials | method | Pearson mean ± sd | gain over least action mean ± sd | seeds |"
    );
    println!("|---|---|---|---|---|");
    for (kind, label) in ["one", "two"].iter().enumerate() {
        for (m, (name, ..)) in METHODS.iter().enumerate() {
            let gain: Vec<f64> = (r[kind][m].iter().zip(&r[kind][0]))
                .map(|(x, y)| x - y)
                .collect();
            let (mr, sr) = mean_sd(&r[kind][m]);
            let (mg, sg) = mean_sd(&gain);
            println!(
                "| {label} | {name} | {mr:.3} ± {sr:.3} | {mg:+.3} ± {sg:.3} | {} |",
                r[kind][m].iter().filter(|x| x.is_finite()).count()
            );
        }
    }
    println!("\n| potentials | tests | rejected at 0.05 | at 0.01 | mean p |");
    println!("|---|---|---|---|---|");
    for (kind, label) in ["one", "two"].iter().enumerate() {
        let tested: Vec<f64> = p[kind].iter().copied().filter(|x| x.is_finite()).collect();
        let rate = |a: f64| tested.iter().filter(|&&x| x < a).count();
        println!(
            "| {label} | {} of {} | {} | {} | {:.3} |",
            tested.len(),
            p[kind].len(),
            rate(0.05),
            rate(0.01),
            mean_sd(&tested).0
        );
    }
}

/// Mean and sample sd of the finite values.
fn mean_sd(x: &[f64]) -> (f64, f64) {
    let x: Vec<f64> = x.iter().copied().filter(|v| v.is_finite()).collect();
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}
