//! CPU–GPU agreement of every kernel. One test body per kernel, run on each GPU precision
//! (f64, and f32 forced, so both shader variants are tested on lavapipe); each body collects
//! every mismatch over all its cases and reports them together as one table, and saves the
//! failing inputs as JSON under `target/tmp/gpu_agreement/`. Tolerances come from
//! `detbal::backend::tolerance`.
//!
//! Without a GPU adapter the tests print a SKIP line and pass, unless `REQUIRE_GPU=1` (CI sets
//! it, with lavapipe installed: `REQUIRE_GPU=1 WGPU_BACKEND=vulkan cargo test --release --test it
//! gpu_agreement::`).

use crate::support::{Gpu, gpu, proptest_config};
use detbal::backend::cpu::{CpuBackend, EdgeScratch, edge_action};
use detbal::backend::gpu::GpuBackend;
use detbal::backend::{Backend, DeviceChoice, DeviceInfo, select, tolerance, verify};
use detbal::fit::newton::{NewtonOptions, VectorSpace};
use detbal::fit::problem::ActionProblem;
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::fmt::Write;

// ---------------------------------------------------------------------------------------------
// Cases

struct Case {
    name: String,
    problem: ActionProblem,
    v: Vec<f64>,
}

fn case(name: &str, n: usize, edges: &[(u32, u32, f64)], l2: f64, v: &[f64]) -> Case {
    Case {
        name: name.into(),
        problem: ActionProblem::new(
            n,
            edges.iter().map(|e| e.0).collect(),
            edges.iter().map(|e| e.1).collect(),
            edges.iter().map(|e| e.2).collect(),
            l2,
        )
        .unwrap(),
        v: v.to_vec(),
    }
}

fn hand_made() -> Vec<Case> {
    vec![
        case(
            "two-cycle",
            2,
            &[(0, 1, 3.0), (1, 0, 1.0)],
            0.0,
            &[0.7, -0.4],
        ),
        case(
            "triangle with ridge",
            3,
            &[(0, 1, 1.0), (1, 2, 0.25), (2, 0, 0.5), (1, 0, 2.0)],
            0.5,
            &[1.0, -2.0, 0.5],
        ),
        case(
            "empty states between used ones",
            7,
            &[(1, 3, 1.0), (3, 4, 2.0), (4, 1, 0.5), (6, 4, 1.5)],
            0.0,
            &[9.0, 0.1, -3.0, 0.2, -0.3, 4.0, 1.1],
        ),
        case(
            "self-loop and parallel edges",
            2,
            &[(0, 0, 1.0), (0, 1, 2.0), (0, 1, 0.5), (1, 0, 1.0)],
            0.0,
            &[0.3, 0.2],
        ),
        case(
            "large differences (exp underflow)",
            4,
            &[
                (0, 1, 1.0),
                (1, 0, 1.0),
                (2, 3, 1.0),
                (3, 2, 1.0),
                (0, 2, 1.0),
            ],
            0.0,
            &[40.0, -40.0, 800.0, -800.0],
        ),
        case("no edges, ridge only", 3, &[], 1.0, &[1.0, -2.0, 3.0]),
        case("no states", 0, &[], 0.0, &[]),
    ]
}

/// A star: hub 0 with `leaves` leaves and `repeats` edges each way per leaf. The hub has
/// 2 × `leaves` × `repeats` incident entries: one invocation walking them would pass
/// lavapipe's silent 65,535-iteration limit (the canary of docs/GPU.md §1.1).
fn star(leaves: u32, repeats: u32) -> Case {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
    let mut edges = Vec::new();
    for leaf in 1..=leaves {
        for _ in 0..repeats {
            edges.push((0, leaf, rng.random_range(0.1..10.0)));
            edges.push((leaf, 0, rng.random_range(0.1..10.0)));
        }
    }
    let v: Vec<f64> = (0..=leaves).map(|_| rng.random_range(-4.0..4.0)).collect();
    let name = format!("star, hub degree {}", 2 * leaves * repeats);
    case(&name, leaves as usize + 1, &edges, 0.0, &v)
}

/// A random graph: `n` states, `m` edges, weights in (0.01, 100), V in ±`spread`.
fn random_case(seed: u64, n: usize, m: usize, l2: f64, spread: f64) -> Case {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let edges: Vec<(u32, u32, f64)> = (0..m)
        .map(|_| {
            (
                rng.random_range(0..n as u32),
                rng.random_range(0..n as u32),
                10f64.powf(rng.random_range(-2.0..2.0)),
            )
        })
        .collect();
    let v: Vec<f64> = (0..n).map(|_| rng.random_range(-spread..spread)).collect();
    let mut c = case(
        &format!("random seed={seed} n={n} m={m} l2={l2}"),
        n,
        &edges,
        l2,
        &v,
    );
    // A ridge centred away from 0 (the reversible MLE's prior on V): value and gradient move.
    if l2 > 0.0 && seed % 2 == 1 {
        let mean = (0..n).map(|_| rng.random_range(-spread..spread)).collect();
        c.problem = c.problem.with_prior_mean(mean);
        c.name.push_str(" centred");
    }
    c
}

// ---------------------------------------------------------------------------------------------
// Mismatch tables

struct Mismatch {
    case: String,
    kernel: &'static str,
    index: Option<usize>,
    gpu: f64,
    cpu: f64,
    rel: f64,
    tol: f64,
}

#[derive(Default)]
struct Report {
    mismatches: Vec<Mismatch>,
    saved: Vec<String>,
}

impl Report {
    /// Records a comparison; `rel` is the error in the tolerance's unit.
    #[allow(clippy::too_many_arguments)]
    fn compare(
        &mut self,
        case: &Case,
        kernel: &'static str,
        index: Option<usize>,
        gpu: f64,
        cpu: f64,
        scale: f64,
        tol: f64,
    ) {
        let rel = (gpu - cpu).abs() / scale.max(f64::MIN_POSITIVE);
        if rel.is_nan() || rel > tol {
            self.mismatches.push(Mismatch {
                case: case.name.clone(),
                kernel,
                index,
                gpu,
                cpu,
                rel,
                tol,
            });
            self.save(case);
        }
    }

    fn save(&mut self, case: &Case) {
        if self.saved.contains(&case.name) {
            return;
        }
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("gpu_agreement");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!(
            "{}.json",
            case.name.replace(|c: char| !c.is_alphanumeric(), "_")
        ));
        let p = &case.problem;
        let json = serde_json::json!({
            "n_states": p.n_states, "src": p.src, "dst": p.dst, "weight": p.weight, "l2": p.l2, "v": case.v,
        });
        std::fs::write(&file, json.to_string()).unwrap();
        self.saved.push(case.name.clone());
    }

    /// Panics with every mismatch as one table.
    fn finish(self, what: &str) {
        if self.mismatches.is_empty() {
            return;
        }
        let mut table = format!(
            "{what}: {} mismatches (inputs saved in target/tmp/gpu_agreement/)\n{:<44} {:<16} {:>8} {:>24} {:>24} {:>10} {:>10}\n",
            self.mismatches.len(),
            "case",
            "kernel",
            "index",
            "gpu",
            "cpu",
            "error",
            "tolerance"
        );
        for m in self.mismatches.iter().take(60) {
            let index = m.index.map_or("-".into(), |i| i.to_string());
            writeln!(
                table,
                "{:<44} {:<16} {:>8} {:>24.16e} {:>24.16e} {:>10.2e} {:>10.2e}",
                m.case, m.kernel, index, m.gpu, m.cpu, m.rel, m.tol
            )
            .unwrap();
        }
        panic!("{table}");
    }
}

// ---------------------------------------------------------------------------------------------
// Kernel bodies

/// edge_action (the value) and gather_gradient (every gradient entry, and every entry of the
/// Hessian diagonal behind the preconditioner) against the CPU twin.
fn check_edge_action(gpu: &GpuBackend, cases: &[Case], report: &mut Report) {
    let precision = gpu.precision();
    for c in cases {
        let p = &c.problem;
        let mut space = gpu.space(p).unwrap();
        let x = space.upload(&c.v).unwrap();
        let mut g = space.zeros().unwrap();
        let value = space.value_grad(&x, &mut g).unwrap();
        let (gradient, preconditioner) =
            (space.download(&g).unwrap(), space.preconditioner().unwrap());
        let (mut cpu_gradient, mut diagonal) = (vec![0.0; p.n_states], vec![0.0; p.n_states]);
        let mut scratch = EdgeScratch::default();
        let cpu_value = edge_action(
            p,
            &c.v,
            &mut scratch,
            &mut cpu_gradient,
            Some(&mut diagonal),
        );

        let scale = tolerance::value_scale(p, &c.v);
        report.compare(
            c,
            "edge_action",
            None,
            value,
            cpu_value,
            scale,
            tolerance::action_value(precision),
        );
        let scales = tolerance::gradient_scale(p, &c.v);
        let tol = tolerance::gradient(precision);
        for (f, ((g, r), s)) in gradient.iter().zip(&cpu_gradient).zip(&scales).enumerate() {
            report.compare(c, "gather_gradient", Some(f), *g, *r, *s, tol);
        }
        // The GPU keeps 1 / max(diagonal, floor); compare max(diagonal, floor).
        let floor = p.curvature_floor();
        for f in 0..p.n_states {
            let (gpu_d, cpu_d) = (1.0 / preconditioner[f], diagonal[f].max(floor[f]));
            report.compare(c, "hessian_diagonal", Some(f), gpu_d, cpu_d, scales[f], tol);
        }
    }
}

fn edge_action_body(which: Gpu, test: &str) {
    let Some(gpu) = gpu(which, test) else { return };
    let mut cases = hand_made();
    cases.push(star(200_000, 1));
    cases.push(random_case(1, 3000, 20_000, 0.0, 30.0));
    // An odd seed with a ridge: centred away from 0.
    cases.push(random_case(3, 300, 3000, 0.5, 4.0));
    // A small potential and a large prior mean, on states without edges: in f32 the ridge's
    // gradient `λ (V − μ)` is a difference of two rounded numbers, so its error scales with
    // `|V| + |μ|`, not `|V|` (random seeds found this: 2.6e-5 of a scale `λ |V|`).
    let v = [0.4, -0.7, 1.3e-3, -2.1e-3];
    let mut near = case("small V, large prior mean", 4, &[(0, 1, 2.0)], 0.3, &v);
    near.problem = near.problem.with_prior_mean(vec![0.1, -0.2, 19.7, -23.9]);
    cases.push(near);
    let mut report = Report::default();
    check_edge_action(gpu, &cases, &mut report);
    report.finish(test);
}

#[test]
fn edge_action_f64() {
    edge_action_body(Gpu::F64, "edge_action_f64");
}

#[test]
fn edge_action_f32() {
    edge_action_body(Gpu::F32, "edge_action_f32");
}

/// Batches and 2-D grids: 64 KiB bindings (8,192 states at most) split 20,000 edges into 3 edge
/// batches and 3 entry batches, and the star's hub (40,000 entries) over 3 entry batches.
#[test]
fn edge_action_batched() {
    let Some(gpu) = gpu(Gpu::F64Batched, "edge_action_batched") else {
        return;
    };
    let mut cases = hand_made();
    cases.push(random_case(2, 500, 20_000, 0.1, 5.0));
    cases.push(star(2000, 10));
    let mut report = Report::default();
    check_edge_action(gpu, &cases, &mut report);
    report.finish("edge_action_batched");
}

proptest! {
    #![proptest_config(ProptestConfig {
        max_shrink_iters: 16,
        ..proptest_config(6)
    })]

    #[test]
    fn edge_action_random(seed in any::<u64>(), n in 1usize..400, m in 0usize..3000, ridge in any::<bool>(), spread in 0.0f64..25.0) {
        let l2 = if ridge { 0.3 } else { 0.0 };
        let cases = [random_case(seed, n, m, l2, spread)];
        for which in [Gpu::F64, Gpu::F32] {
            let Some(gpu) = gpu(which, "edge_action_random") else { return Ok(()) };
            let mut report = Report::default();
            check_edge_action(gpu, &cases, &mut report);
            report.finish(&format!("edge_action_random ({which:?})"));
        }
    }
}

/// reduce and reduce_vector (dot, max-abs) through the optimiser's vector space, including a
/// sum that plain f32 gets wrong (2^25 + 1 + … + 1 − 2^25): the compensated f32 path must
/// return it exactly, which also shows the driver keeps the two-sum's operations in order.
fn reduce_body(which: Gpu, test: &str, sizes: &[usize]) {
    let Some(gpu) = gpu(which, test) else { return };
    let mut report = Report::default();
    for (&n, seed) in sizes.iter().zip(1..) {
        let c = random_case(seed, n, 1, 0.0, 1.0);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let a: Vec<f64> = (0..n).map(|_| rng.random_range(-10.0..10.0)).collect();
        let b: Vec<f64> = (0..n).map(|_| rng.random_range(-10.0..10.0)).collect();
        let mut space = gpu.space(&c.problem).unwrap();
        let (ga, gb) = (space.upload(&a).unwrap(), space.upload(&b).unwrap());
        // The device holds a and b in its precision; compare with the CPU on those values.
        let (a, b) = (space.download(&ga).unwrap(), space.download(&gb).unwrap());
        let dot: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        let scale: f64 = a.iter().zip(&b).map(|(x, y)| (x * y).abs()).sum();
        let tol = tolerance::action_value(gpu.precision());
        report.compare(
            &c,
            "reduce(dot)",
            None,
            space.dot(&ga, &gb).unwrap(),
            dot,
            scale,
            tol,
        );
        let max = a.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        report.compare(
            &c,
            "reduce(max)",
            None,
            space.norm_inf(&ga).unwrap(),
            max,
            1.0,
            0.0,
        );
    }
    let n = 5000;
    let c = random_case(5, n, 1, 0.0, 1.0);
    let mut space = gpu.space(&c.problem).unwrap();
    let mut a = vec![1.0; n];
    (a[0], a[n - 1]) = (33_554_432.0, -33_554_432.0);
    let (ga, ones) = (
        space.upload(&a).unwrap(),
        space.upload(&vec![1.0; n]).unwrap(),
    );
    report.compare(
        &c,
        "reduce(dot)",
        None,
        space.dot(&ga, &ones).unwrap(),
        (n - 2) as f64,
        1.0,
        0.0,
    );
    report.finish(test);
}

#[test]
fn reduce_f64() {
    reduce_body(Gpu::F64, "reduce_f64", &[1, 1000, 70_000, 1_100_000]);
}

#[test]
fn reduce_f32() {
    reduce_body(Gpu::F32, "reduce_f32", &[1, 1000, 70_000, 1_100_000]);
}

/// Reductions over 2-D grids (8 workgroups on a 3-wide grid, then one).
#[test]
fn reduce_batched() {
    reduce_body(Gpu::F64Batched, "reduce_batched", &[1, 8000]);
}

/// A strongly connected graph with count-like weights: a ring plus random chords.
fn fit_case(seed: u64, n: u32, chords: usize) -> Case {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let truth: Vec<f64> = (0..n).map(|_| rng.random_range(-3.0..3.0)).collect();
    let mut edges = Vec::new();
    let mut add = |f: u32, g: u32, rng: &mut Xoshiro256PlusPlus| {
        let n = rng.random_range(5.0..50.0);
        let p = 1.0 / (1.0 + (truth[g as usize] - truth[f as usize]).exp());
        edges.push((f, g, (n * p).max(0.5)));
    };
    for f in 0..n {
        add(f, (f + 1) % n, &mut rng);
        add((f + 1) % n, f, &mut rng);
    }
    for _ in 0..chords {
        let (f, g) = (rng.random_range(0..n), rng.random_range(0..n));
        if f != g {
            add(f, g, &mut rng);
        }
    }
    case(
        &format!("fit seed={seed} n={n}"),
        n as usize,
        &edges,
        0.0,
        &vec![0.0; n as usize],
    )
}

fn centred(mut v: Vec<f64>) -> Vec<f64> {
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    v.iter_mut().for_each(|x| *x -= mean);
    v
}

/// minimize_action: the full Newton–CG fit with vectors on the GPU gives the CPU's potential.
fn minimize_body(which: Gpu, test: &str) {
    let Some(gpu) = gpu(which, test) else { return };
    let cpu = CpuBackend::new("reference");
    let mut report = Report::default();
    for c in [fit_case(11, 300, 900), fit_case(12, 40, 30)] {
        let max_weight = tolerance::gradient_scale(&c.problem, &c.v)
            .into_iter()
            .fold(0.0, f64::max);
        let opts = NewtonOptions {
            grad_tol: 1e-9 * max_weight,
            ..Default::default()
        };
        let start = std::time::Instant::now();
        let a = gpu.minimize_action(&c.problem, &c.v, &opts).unwrap();
        let seconds = start.elapsed().as_secs_f64();
        let b = cpu.minimize_action(&c.problem, &c.v, &opts).unwrap();
        eprintln!(
            "{test} {}: GPU {} iterations in {seconds:.2} s ({:.1} ms each), ‖g‖∞ {:.1e}, {}; CPU {} iterations, {}",
            c.name,
            a.iterations,
            1e3 * seconds / a.iterations.max(1) as f64,
            a.grad_norm,
            a.status,
            b.iterations,
            b.status
        );
        let tol = tolerance::potential(gpu.precision());
        for (f, (x, y)) in centred(a.x).into_iter().zip(centred(b.x)).enumerate() {
            report.compare(&c, "minimize_action", Some(f), x, y, 1.0, tol);
        }
    }
    report.finish(test);
}

#[test]
fn minimize_action_f64() {
    minimize_body(Gpu::F64, "minimize_action_f64");
}

#[test]
fn minimize_action_f32() {
    minimize_body(Gpu::F32, "minimize_action_f32");
}

/// `--verify`'s report: every kernel within tolerance on a random graph.
#[test]
fn verify_passes_on_agreeing_backends() {
    let Some(gpu) = gpu(Gpu::F64, "verify_passes_on_agreeing_backends") else {
        return;
    };
    let c = random_case(21, 200, 1500, 0.2, 6.0);
    let deviations = verify::verify(gpu, &CpuBackend::new("reference"), &c.problem, &c.v).unwrap();
    let kernels: Vec<_> = deviations.iter().map(|d| d.kernel).collect();
    assert_eq!(kernels, ["edge_action", "gather_gradient", "hessian_edge"]);
    verify::check(&deviations).unwrap();
}

/// `select(Auto)` never fails; when it picks the CPU, the reason says why.
#[test]
fn auto_says_why_it_chose_its_backend() {
    let backend = select(DeviceChoice::Auto).unwrap();
    let DeviceInfo {
        backend: kind,
        adapter,
        reason,
        fault,
        ..
    } = backend.info();
    eprintln!("auto: {kind} on {adapter}: {reason}");
    if *kind == detbal::backend::BackendKind::Cpu {
        assert!(
            reason.contains("no hardware GPU adapter")
                || fault
                    .as_deref()
                    .is_some_and(|f| f.contains("no GPU adapter")),
            "{reason} {fault:?}"
        );
    } else {
        assert!(
            reason.starts_with("--device auto found a hardware GPU"),
            "{reason}"
        );
    }
}
