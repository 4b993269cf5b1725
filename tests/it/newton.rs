//! The Newton–CG fit (issue 13): kernel `hessian_edge` on the GPU against its CPU twin, the fit's
//! error bound and warm start, and CPU and GPU potentials on a hard llm-like log. GPU tests run on
//! any Vulkan adapter (lavapipe in CI) and say SKIP without one unless `REQUIRE_GPU=1`.

use crate::support::{Gpu, gpu};
use detbal::backend::cpu::CpuBackend;
use detbal::backend::{Backend, tolerance};
use detbal::bench::synthetic_problem;
use detbal::fit::problem::ActionProblem;
use detbal::fit::{FitSettings, Potential, fit, fit_from};
use detbal::graph::TransitionGraph;
use detbal::io::{LoadOptions, load};
use detbal::simulate::{SimMode, SimParams, simulate};

/// A hub of `leaves` states, each with arcs both ways: the hub's incidence list (4 × leaves
/// entries) exceeds 65,535 loop iterations if a kernel walked it in one invocation.
fn star(leaves: u32) -> ActionProblem {
    let (mut src, mut dst, mut w) = (Vec::new(), Vec::new(), Vec::new());
    for leaf in 1..=leaves {
        src.extend([0, leaf]);
        dst.extend([leaf, 0]);
        w.extend([
            0.5 + f64::from(leaf % 7) / 10.0,
            0.1 + f64::from(leaf % 5) / 10.0,
        ]);
    }
    ActionProblem::new(leaves as usize + 1, src, dst, w, 0.0).unwrap()
}

fn hessian_body(which: Gpu, test: &str) {
    let Some(gpu) = gpu(which, test) else {
        return;
    };
    let cpu = CpuBackend::new("reference");
    let (random, v_random) = synthetic_problem(20_000, 7);
    let hub = star(40_000);
    let v_hub: Vec<f64> = (0..hub.n_states)
        .map(|f| (f % 11) as f64 / 3.0 - 1.5)
        .collect();
    let mut ridge = synthetic_problem(3_000, 8);
    ridge.0.l2 = 0.3;
    for (name, problem, v) in [
        ("random", &random, &v_random),
        ("star", &hub, &v_hub),
        ("ridge", &ridge.0, &ridge.1),
    ] {
        let x: Vec<f64> = (0..v.len())
            .map(|f| ((f * 7919) % 13) as f64 - 6.0)
            .collect();
        let a = gpu.hessian_product(problem, v, &x).unwrap();
        let b = cpu.hessian_product(problem, v, &x).unwrap();
        let scale = tolerance::hessian_scale(problem, &x);
        let worst = a
            .iter()
            .zip(&b)
            .zip(&scale)
            .map(|((a, b), s)| (a - b).abs() / s.max(f64::MIN_POSITIVE))
            .fold(0.0, f64::max);
        let tol = tolerance::hessian_product(gpu.info().precision);
        eprintln!("{test} {name}: worst {worst:.2e} of the scale (tolerance {tol:.1e})");
        assert!(worst <= tol, "{name}: {worst:e} > {tol:e}");
        // Not vacuous: the product is far from zero.
        assert!(b.iter().any(|h| h.abs() > 1e-3), "{name}");
    }
}

#[test]
fn hessian_product_f64() {
    hessian_body(Gpu::F64, "hessian_product_f64");
}

#[test]
fn hessian_product_f32() {
    hessian_body(Gpu::F32, "hessian_product_f32");
}

/// A small hard llm-like log: one large strongly connected component, heavy-tailed degrees.
fn hard_graph(rows: u64) -> TransitionGraph {
    let dir = tempfile::tempdir().unwrap();
    let (log, truth) = (dir.path().join("log.parquet"), dir.path().join("t.json"));
    let params = SimParams {
        rows,
        states: (rows * 3 / 10) as u32,
        ..SimParams::new(SimMode::LlmHard)
    };
    simulate(&params, &log, &truth).unwrap();
    load(&[log], &LoadOptions::default())
        .unwrap()
        .graph
        .canonical()
}

fn max_difference(a: &Potential, b: &Potential) -> f64 {
    a.value
        .iter()
        .zip(&b.value)
        .map(|(x, y)| match (x, y) {
            (Some(x), Some(y)) => (x - y).abs(),
            (None, None) => 0.0,
            _ => f64::INFINITY,
        })
        .fold(0.0, f64::max)
}

#[test]
fn the_fit_bounds_its_error_and_a_warm_start_saves_work() {
    let graph = hard_graph(60_000);
    let cpu = CpuBackend::new("test");
    let settings = FitSettings::default();
    let (v, report) = fit(&graph, &settings, &cpu).unwrap();
    assert!(report.converged, "{}", report.status);
    let bound = report.potential_error.unwrap();
    assert!(bound <= 1e-9, "bound {bound:e}");
    assert_eq!(report.passes, report.evaluations + report.hessian_products);
    assert!(v.identifiable() > 1_000, "{}", v.identifiable());
    // The fit is the optimum: moving any one potential raises the action.
    // (Checked through the warm start: from a perturbed optimum the fit returns to it.)
    let start: Vec<Option<f64>> = v
        .value
        .iter()
        .enumerate()
        .map(|(f, x)| x.map(|x| x + 0.05 * ((f % 5) as f64 - 2.0)))
        .collect();
    let (w, warm) = fit_from(&graph, &settings, &cpu, Some(&start)).unwrap();
    assert!(warm.converged, "{}", warm.status);
    let diff = max_difference(&v, &w);
    assert!(diff <= 1e-8, "warm and cold fits differ by {diff:e}");
    assert!(
        warm.passes < report.passes,
        "warm {} passes, cold {}",
        warm.passes,
        report.passes
    );
    eprintln!(
        "cold: {} Newton steps, {} passes; warm: {} steps, {} passes",
        report.iterations, report.passes, warm.iterations, warm.passes
    );
    let wrong = fit_from(&graph, &settings, &cpu, Some(&start[1..]));
    assert!(wrong.is_err(), "a start of the wrong length is refused");
}

/// CPU and lavapipe potentials on a hard log: within 1e-6 on every identifiable state (the
/// issue's requirement; each fit's own bound is far below it).
#[test]
fn cpu_and_gpu_potentials_agree_on_a_hard_log() {
    let test = "cpu_and_gpu_potentials_agree_on_a_hard_log";
    let Some(gpu) = gpu(Gpu::F64, test) else {
        return;
    };
    let graph = hard_graph(30_000);
    let settings = FitSettings::default();
    let (a, ra) = fit(&graph, &settings, &CpuBackend::new("test")).unwrap();
    let (b, rb) = fit(&graph, &settings, gpu).unwrap();
    let diff = max_difference(&a, &b);
    eprintln!(
        "{test}: {} identifiable, max |ΔV| {diff:.2e}; CPU {} passes bound {:.1e}, GPU {} passes \
         bound {:.1e} ({})",
        a.identifiable(),
        ra.passes,
        ra.potential_error.unwrap(),
        rb.passes,
        rb.potential_error.unwrap(),
        rb.status
    );
    assert!(
        ra.converged && rb.converged,
        "{} / {}",
        ra.status,
        rb.status
    );
    assert!(diff <= 1e-6, "max |ΔV| {diff:e}");
    assert!(
        (ra.action - rb.action).abs() <= 1e-12 * ra.action.abs(),
        "{ra:?} {rb:?}"
    );
}
