//! The fit's work on a log, Newton–CG against Newman's fixed point: passes over the edges,
//! seconds, action and the distance of the last update (how far from converged). Newton–CG's
//! line also gives the fit's CPU seconds (all threads, from `/proc/self/stat`; Linux), the
//! measure per pass that holds when other work shares the cores.
//!
//! `cargo run --release --example fit_solvers -- LOG.parquet [NEWMAN_ITERATIONS]`
//! (`DETBAL_PRECONDITIONER=diagonal`: Newton–CG with the diagonal preconditioner, the GPU's.)
//! Newton–CG's passes include those of its least-squares start (`fit/start.rs`).
//!
//! Newman's iteration (JMLR 24:238, 2023, eq. 12) for the weighted Bradley–Terry action, with
//! strengths `π = e^V` and `w_fg` the weight of `f → g` (`f` beats `g` with probability
//! `π_f/(π_f + π_g)`): `π_f ← Σ_g w_fg π_g/(π_f + π_g) / Σ_g w_gf/(π_f + π_g)`, one pass over the
//! edges per iteration (Jacobi form), geometric mean fixed per component.

use detbal::backend::cpu::CpuBackend;
use detbal::fit::problem::{ActionProblem, softplus_neg};
use detbal::fit::{FitSettings, POTENTIAL_TOL, action_problem, fit};
use detbal::io::{LoadOptions, load};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: fit_solvers LOG.parquet [NEWMAN_ITERATIONS]");
    let cap: usize = args.next().map_or(2_000, |n| n.parse().expect("a count"));
    let log = load(&[path.into()], &LoadOptions::default()).expect("log loads");
    let graph = log.graph.canonical();
    let sccs = detbal::graph::strongly_connected_components(&graph, |_| true);
    println!(
        "{} states, {} edges, largest strongly connected component {}",
        graph.n_states(),
        graph.n_edges(),
        sccs.size.iter().max().unwrap_or(&0)
    );
    let settings = FitSettings::default();
    let cpu = cpu_seconds();
    let (v, r) = fit(&graph, &settings, &CpuBackend::new("example")).unwrap();
    let cpu = cpu_seconds() - cpu;
    println!(
        "newton-cg: {} steps, {} evaluations + {} Hessian products = {} passes, {:.3} s, \
         {cpu:.2} cpu s ({:.2e} cpu s a pass), action {:.12}, bound {:.2e}, {} ({} identifiable)",
        r.iterations,
        r.evaluations,
        r.hessian_products,
        r.passes,
        r.seconds,
        cpu / r.passes as f64,
        r.action,
        r.potential_error.unwrap_or(f64::NAN),
        r.status,
        v.identifiable()
    );
    let problem = action_problem(&graph, &settings).unwrap();
    let start = Instant::now();
    let (x, iterations, last) = newman(&problem, cap);
    let action: f64 = (0..problem.n_edges())
        .map(|e| {
            let d = x[problem.src[e] as usize] - x[problem.dst[e] as usize];
            problem.weight[e] * softplus_neg(d)
        })
        .sum();
    println!(
        "newman: {iterations} iterations = {iterations} passes, {:.3} s, action {:.12}, last \
         update {last:.2e}",
        start.elapsed().as_secs_f64(),
        action / r.kept_states as f64
    );
}

/// CPU seconds of this process so far, all threads: `utime + stime` of `/proc/self/stat`, in
/// ticks of 1/100 s (`USER_HZ`).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("Linux's /proc/self/stat");
    // Fields 14 and 15; the command name (field 2) ends with the last ')'.
    let after_name: Vec<&str> = stat.rsplit_once(") ").expect("stat").1.split(' ').collect();
    let ticks = |i: usize| after_name[i].parse::<f64>().expect("a tick count");
    (ticks(11) + ticks(12)) / 100.0
}

/// Newman's iteration until the update moves no potential by more than [`POTENTIAL_TOL`]
/// (gauge removed) or `cap` iterations; returns `V = log π`, the iterations and the last update.
fn newman(p: &ActionProblem, cap: usize) -> (Vec<f64>, usize, f64) {
    let n = p.n_states;
    let mut v = vec![0.0; n];
    let mut last = f64::INFINITY;
    for iteration in 1..=cap {
        let pi: Vec<f64> = v.iter().map(|x| f64::exp(*x)).collect();
        let (mut up, mut down) = (vec![0.0; n], vec![0.0; n]);
        for e in 0..p.n_edges() {
            let (f, g, w) = (p.src[e] as usize, p.dst[e] as usize, p.weight[e]);
            let sum = pi[f] + pi[g];
            up[f] += w * pi[g] / sum;
            down[g] += w / sum;
        }
        let step: Vec<f64> = (0..n)
            .map(|f| {
                if up[f] > 0.0 && down[f] > 0.0 {
                    (up[f] / down[f]).ln() - v[f]
                } else {
                    0.0
                }
            })
            .collect();
        v.iter_mut().zip(&step).for_each(|(v, s)| *v += s);
        // Keep the strengths in range: centre each component.
        let mut mean = vec![(0.0, 0usize); p.n_components];
        for (f, x) in v.iter().enumerate() {
            let c = &mut mean[p.component[f] as usize];
            (c.0, c.1) = (c.0 + x, c.1 + 1);
        }
        for (f, x) in v.iter_mut().enumerate() {
            let c = mean[p.component[f] as usize];
            *x -= c.0 / c.1 as f64;
        }
        last = p.gauge_free_max(&step);
        if last <= POTENTIAL_TOL {
            return (v, iteration, last);
        }
    }
    (v, cap, last)
}
