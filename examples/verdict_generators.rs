//! The verdict's two candidate null generators (docs/METHOD.md §4.0, issue 12), compared on logs
//! under exact detailed balance:
//!
//! - **splits** (what `detbal` ships): every tested pair's split redrawn given its `m` from the
//!   fitted Bradley–Terry odds, refitted; the p-value as `analyze` reports it.
//! - **rows**: every state's `N(f)` transitions redrawn from the fitted reversible chain (the
//!   reversible MLE, `T̂(f→g) = C_fg σ(u_f − u_g)/c_f`, `T̂(f→f) = c_ff/c_f`, `u = V + log c`),
//!   arcs the fit does not cover (one-way, across components, out of unidentifiable states)
//!   kept; the whole test recomputed on each resample, pairs reselected by `m`. The statistic is
//!   the asymptotic p-value (the number of tested pairs varies between resamples), and the
//!   p-value is its rank among the resamples', `(1 + #{p* ≤ p}) / (1 + R)`.
//!
//! `cargo run --release --example verdict_generators -- MODE ROWS LOGS RESAMPLES` (modes as
//! `verdict_calibration`; seeds `1..=LOGS`); prints one Markdown row per generator.

use detbal::backend::cpu::CpuBackend;
use detbal::fit::{Estimator, FitSettings, fit};
use detbal::graph::{GraphBuilder, NO_EDGE, TransitionGraph};
use detbal::io::{self, LoadOptions};
use detbal::simulate::{SimMode, SimParams, simulate};
use detbal::stats::ks_uniform;
use detbal::stats::quasi_symmetry::{VerdictSettings, quasi_symmetry_test};
use rand::SeedableRng;
use rand_distr::{Binomial, Distribution};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: verdict_generators MODE ROWS LOGS RESAMPLES";
    let mode = match args.first().map(String::as_str) {
        Some("reversible") => SimMode::Reversible,
        Some("llm-like") => SimMode::LlmLike,
        Some("llm-hard") => SimMode::LlmHard,
        _ => panic!("{usage}"),
    };
    let number = |i: usize| -> u64 { args.get(i).and_then(|s| s.parse().ok()).expect(usage) };
    let (rows, logs, resamples) = (number(1), number(2), number(3));
    let clock = Instant::now();
    let (mut splits, mut by_rows) = (Vec::new(), Vec::new());
    for seed in 1..=logs {
        let graph = simulated(mode, rows, seed);
        let settings = VerdictSettings {
            seed,
            ..VerdictSettings::default()
        };
        let (p_splits, p_rows) = p_values(&graph, &settings, resamples);
        if let Some(p) = p_splits {
            splits.push(p);
        }
        if let Some(p) = p_rows {
            by_rows.push(p);
        }
    }
    println!(
        "| generator | mode | rows | logs with a p-value | KS p | reject α=0.05 | reject α=0.01 |"
    );
    for (name, p) in [("splits", &splits), ("rows", &by_rows)] {
        let rate = |alpha: f64| p.iter().filter(|&&x| x <= alpha).count() as f64 / p.len() as f64;
        println!(
            "| {name} | {mode:?} | {rows} | {} of {logs} | {:.3} | {:.1} % | {:.1} % |",
            p.len(),
            ks_uniform(p),
            100.0 * rate(0.05),
            100.0 * rate(0.01)
        );
    }
    eprintln!("{:.0} s", clock.elapsed().as_secs_f64());
}

/// The canonical graph of the simulated log of `mode`, `rows` and `seed`.
fn simulated(mode: SimMode, rows: u64, seed: u64) -> TransitionGraph {
    let dir = tempfile::tempdir().unwrap();
    let (log, truth) = (dir.path().join("l.parquet"), dir.path().join("l.json"));
    let params = SimParams {
        rows,
        seed,
        ..SimParams::new(mode)
    };
    simulate(&params, &log, &truth).unwrap();
    io::load(&[log], &LoadOptions::default())
        .unwrap()
        .graph
        .canonical()
}

/// The p-value of the splits generator and of the rows generator (`resamples` redrawn logs);
/// `None` for a log without an independent cycle.
fn p_values(
    graph: &TransitionGraph,
    settings: &VerdictSettings,
    resamples: u64,
) -> (Option<f64>, Option<f64>) {
    let cpu = CpuBackend::new("verdict_generators");
    let (test, ..) = quasi_symmetry_test(graph, settings, 0.05, &cpu).unwrap();
    let Some(observed) = test.p_value_asymptotic.filter(|_| test.ndf > 0) else {
        return (None, None);
    };
    let asymptotic = VerdictSettings {
        max_resamples: 0,
        ..settings.clone()
    };
    let chain = ReversibleChain::fit(graph);
    let reached = (0..resamples)
        .filter(|&r| {
            let resample = chain.draw(graph, settings.seed, r);
            let (t, ..) = quasi_symmetry_test(&resample, &asymptotic, 0.05, &cpu).unwrap();
            // A resample without an independent cycle carries no evidence either way.
            t.ndf > 0 && t.p_value_asymptotic.is_some_and(|p| p <= observed)
        })
        .count();
    let p_rows = (1 + reached) as f64 / (1 + resamples) as f64;
    (test.p_value, Some(p_rows))
}

/// The fitted reversible kernel's weights per edge (0 for arcs the fit does not cover).
struct ReversibleChain {
    weight: Vec<f64>,
}

impl ReversibleChain {
    fn fit(graph: &TransitionGraph) -> ReversibleChain {
        let settings = FitSettings {
            estimator: Estimator::ReversibleMle,
            ..FitSettings::default()
        };
        let cpu = CpuBackend::new("verdict_generators");
        let (v, _) = fit(graph, &settings, &cpu).unwrap();
        let u: Vec<Option<f64>> = (0..graph.n_states())
            .map(|f| v.value[f].map(|v| v + (graph.out_count[f] as f64).ln()))
            .collect();
        let weight = (0..graph.n_edges())
            .map(|e| {
                let (f, g, back) = (
                    graph.src[e] as usize,
                    graph.dst[e] as usize,
                    graph.reverse[e],
                );
                match (u[f], u[g]) {
                    (Some(uf), Some(ug)) if back != NO_EDGE && v.component[f] == v.component[g] => {
                        let m = (graph.count[e] + graph.count[back as usize]) as f64;
                        m / (1.0 + (ug - uf).exp())
                    }
                    _ => 0.0,
                }
            })
            .collect();
        ReversibleChain { weight }
    }

    /// Resample `r`: each state's transitions on covered arcs and to itself redrawn
    /// multinomially (as successive binomials) from the fitted kernel, the rest kept.
    fn draw(&self, graph: &TransitionGraph, seed: u64, r: u64) -> TransitionGraph {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed.wrapping_mul(1_000_003) ^ r);
        let mut builder = GraphBuilder::default();
        for name in graph.names.iter() {
            builder.intern(name);
        }
        let mut add = |f: usize, g: usize, n: u64| {
            if n > 0 {
                builder.add(f as u32, g as u32, n, 0).unwrap();
            }
        };
        for f in 0..graph.n_states() {
            let edges = graph.out_ptr[f]..graph.out_ptr[f + 1];
            let covered: Vec<usize> = edges.clone().filter(|&e| self.weight[e] > 0.0).collect();
            if covered.is_empty() {
                edges.for_each(|e| add(f, graph.dst[e] as usize, graph.count[e]));
                add(f, f, graph.self_count[f]);
                continue;
            }
            edges
                .filter(|&e| self.weight[e] == 0.0)
                .for_each(|e| add(f, graph.dst[e] as usize, graph.count[e]));
            let mut left: u64 =
                covered.iter().map(|&e| graph.count[e]).sum::<u64>() + graph.self_count[f];
            let mut mass: f64 =
                covered.iter().map(|&e| self.weight[e]).sum::<f64>() + graph.self_count[f] as f64;
            for &e in &covered {
                let p = (self.weight[e] / mass).clamp(0.0, 1.0);
                let n = Binomial::new(left, p).unwrap().sample(&mut rng);
                add(f, graph.dst[e] as usize, n);
                (left, mass) = (left - n, mass - self.weight[e]);
            }
            add(f, f, left);
        }
        builder.finish().canonical()
    }
}
