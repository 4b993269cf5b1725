//! Kernel benchmarks per backend and size: `edge_action/{cpu,gpu}/n_edges=1e4|1e5|1e6` (the
//! action's value, gradient and Hessian diagonal at one point: one solver evaluation),
//! `hessian_product/{cpu,gpu}/n_edges=1e4|1e5|1e6` (one Hessian–vector product at the evaluated
//! point: one conjugate-gradient iteration's pass over the edges) and
//! `minimize_action/{cpu,gpu}/n_edges=1e5` (the whole Newton–CG fit from V = 0). Problems from `detbal::bench::synthetic_problem` (shared with
//! `detbal bench`), fixed seeds; data, device buffers and vectors are built outside the timed
//! closures.
//!
//! GPU rows measure what an optimiser evaluation pays: problem and V resident on the device,
//! edge_action + gather_gradient (twice) + the value's reduction in one submit, one scalar read
//! back, gradient and preconditioner left on the device. Without a GPU adapter they are skipped with a note;
//! `WGPU_BACKEND=vulkan` with lavapipe installed gives the software-GPU numbers.
//!
//! `reciprocal_triangles/{cpu,gpu}/n_edges=1e4|1e5|1e6`: the 3-cycle enumeration on synthetic
//! graphs with hubs (about half the pairs reciprocal).
//!
//! `resample/{cpu,gpu}/permutations/items=1e5`: 100 resamples of the explanatory-power test per
//! iteration (throughput in resamples/s).
//!
//! `ingest/{plain_pages,trajectory_shuffled,trajectory_sorted}/rows=1e6`: `detbal::io::load`
//! of logs written outside the timed closures: transitions over 300,000 long state names
//! (their dictionaries overflow into plain pages, as on high-cardinality logs), and the same
//! walk as a trajectory (`run, step, state`), shuffled (steps spilled to temporary files with a
//! 100,000-step buffer) or sorted (pairs added as rows come).
//!
//! `cargo bench --bench kernels`; CI runs `cargo bench --no-run` so that it keeps compiling.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use detbal::backend::cpu::{CpuBackend, EdgeScratch, Laplacian, edge_action};
use detbal::backend::gpu::GpuBackend;
use detbal::backend::jobs::synthetic_job;
use detbal::backend::{Backend, DeviceChoice};
use detbal::bench::{synthetic_graph, synthetic_problem};
use detbal::fit::newton::{NewtonOptions, VectorSpace};

fn gpu() -> Option<GpuBackend> {
    match GpuBackend::new(DeviceChoice::Gpu) {
        Ok(gpu) => {
            eprintln!("GPU rows on {}", gpu.info().adapter);
            Some(gpu)
        }
        Err(e) => {
            eprintln!("GPU rows skipped: {e}");
            None
        }
    }
}

fn edge_action_bench(c: &mut Criterion) {
    let gpu = gpu();
    let mut group = c.benchmark_group("edge_action");
    group.sample_size(10);
    for (label, n_edges) in [("1e4", 10_000), ("1e5", 100_000), ("1e6", 1_000_000)] {
        let (p, v) = synthetic_problem(n_edges, 42);
        group.throughput(Throughput::Elements(n_edges as u64));
        let mut scratch = EdgeScratch::default();
        let (mut grad, mut diagonal) = (vec![0.0; p.n_states], vec![0.0; p.n_states]);
        edge_action(&p, &v, &mut scratch, &mut grad, Some(&mut diagonal));
        let id = BenchmarkId::new("cpu", format!("n_edges={label}"));
        group.bench_function(id, |b| {
            b.iter(|| edge_action(&p, &v, &mut scratch, &mut grad, Some(&mut diagonal)))
        });
        if let Some(gpu) = &gpu {
            let mut space = gpu.space(&p).unwrap();
            let x = space.upload(&v).unwrap();
            let mut g = space.zeros().unwrap();
            let id = BenchmarkId::new("gpu", format!("n_edges={label}"));
            group.bench_function(id, |b| b.iter(|| space.value_grad(&x, &mut g).unwrap()));
        }
    }
    group.finish();
}

fn minimize_action_bench(c: &mut Criterion) {
    let gpu = gpu();
    let mut group = c.benchmark_group("minimize_action");
    group.sample_size(10);
    let (p, _) = synthetic_problem(100_000, 43);
    let v0 = vec![0.0; p.n_states];
    let opts = NewtonOptions::default();
    let cpu = CpuBackend::new("bench");
    let id = BenchmarkId::new("cpu", "n_edges=1e5");
    group.bench_function(id, |b| {
        b.iter(|| cpu.minimize_action(&p, &v0, &opts).unwrap())
    });
    if let Some(gpu) = &gpu {
        let id = BenchmarkId::new("gpu", "n_edges=1e5");
        group.bench_function(id, |b| {
            b.iter(|| gpu.minimize_action(&p, &v0, &opts).unwrap())
        });
    }
    group.finish();
}

/// Kernel `hessian_edge` with its sums: `H x` at the evaluated point, problem and vectors
/// resident.
fn hessian_product_bench(c: &mut Criterion) {
    let gpu = gpu();
    let mut group = c.benchmark_group("hessian_product");
    group.sample_size(10);
    for (label, n_edges) in [("1e4", 10_000), ("1e5", 100_000), ("1e6", 1_000_000)] {
        let (p, v) = synthetic_problem(n_edges, 42);
        group.throughput(Throughput::Elements(n_edges as u64));
        let mut scratch = EdgeScratch::default();
        let (mut out, mut diagonal) = (vec![0.0; p.n_states], vec![0.0; p.n_states]);
        edge_action(&p, &v, &mut scratch, &mut out, Some(&mut diagonal));
        let mut laplacian = Laplacian::new(&p);
        laplacian.set_weights(scratch.curvature());
        let id = BenchmarkId::new("cpu", format!("n_edges={label}"));
        group.bench_function(id, |b| b.iter(|| laplacian.product(&diagonal, &mut out)));
        if let Some(gpu) = &gpu {
            let mut space = gpu.space(&p).unwrap();
            let (x, y) = (space.upload(&v).unwrap(), space.upload(&diagonal).unwrap());
            let mut g = space.zeros().unwrap();
            space.value_grad(&x, &mut g).unwrap();
            let id = BenchmarkId::new("gpu", format!("n_edges={label}"));
            // The products are only recorded: the dot product submits and waits.
            group.bench_function(id, |b| {
                b.iter(|| {
                    space.hessian_product(&y, &mut g).unwrap();
                    space.dot(&g, &g).unwrap()
                })
            });
        }
    }
    group.finish();
}

/// Kernel `reciprocal_triangles` (count, scan, write on the GPU; the CPU twin) on
/// [`synthetic_graph`]s of 1e4, 1e5 and 1e6 arcs.
fn reciprocal_triangles_bench(c: &mut Criterion) {
    let gpu = gpu();
    let cpu = CpuBackend::new("bench");
    let mut group = c.benchmark_group("reciprocal_triangles");
    group.sample_size(10);
    for (label, n_edges) in [("1e4", 10_000), ("1e5", 100_000), ("1e6", 1_000_000)] {
        let graph = synthetic_graph(n_edges, 44);
        group.throughput(Throughput::Elements(graph.n_edges() as u64));
        let backends: [(&str, Option<&dyn Backend>); 2] = [
            ("cpu", Some(&cpu)),
            ("gpu", gpu.as_ref().map(|g| g as &dyn Backend)),
        ];
        for (name, backend) in backends {
            let Some(backend) = backend else { continue };
            let id = BenchmarkId::new(name, format!("n_edges={label}"));
            group.bench_function(id, |b| {
                b.iter(|| {
                    detbal::backend::triangle_list(backend, &graph, detbal::backend::TRIANGLE_CHUNK)
                        .unwrap()
                })
            });
        }
    }
    group.finish();
}

/// Kernel `resample`: `RESAMPLES` resamples of the explanatory-power test on 1e5 pairs per
/// iteration; the throughput is resamples/s (BENCHMARKS.md compares it with
/// `scipy.stats.permutation_test`, benches/scipy_permutation.py).
fn resample_bench(c: &mut Criterion) {
    const RESAMPLES: u32 = 100;
    let gpu = gpu();
    let cpu = CpuBackend::new("bench");
    let stream = detbal::rng::Stream::new(1, detbal::rng::Purpose::Permutation);
    let mut group = c.benchmark_group("resample");
    group.sample_size(10);
    group.measurement_time(std::time::Duration::from_secs(3));
    group.throughput(Throughput::Elements(u64::from(RESAMPLES)));
    let job = synthetic_job(100_000);
    let backends: [(&str, Option<&dyn Backend>); 2] = [
        ("cpu", Some(&cpu)),
        ("gpu", gpu.as_ref().map(|g| g as &dyn Backend)),
    ];
    for (label, backend) in backends {
        let Some(backend) = backend else { continue };
        let id = BenchmarkId::new(label, "permutations/items=1e5");
        group.bench_function(id, |b| {
            b.iter(|| backend.resample(&job, &stream, 0..RESAMPLES).unwrap())
        });
    }
    group.finish();
}

/// Writes a random walk of `rows` transitions (runs of 20, each row's source the previous
/// target) over 300,000 states with long names, as transitions (`source`, `target`) and as a
/// trajectory (`run`, `step`, `state`), shuffled and sorted, to `dir`.
fn write_ingest_logs(dir: &std::path::Path, rows: usize) {
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use arrow::record_batch::RecordBatch;
    use parquet::arrow::ArrowWriter;
    let name = |s: u64| format!("simplify (({s} * x^2 + 7) / (sin(y) + 2)) for state s{s}");
    let mut x = 7u64;
    let mut next = |m: u64| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) % m
    };
    let (mut sources, mut targets, mut steps) = (vec![], vec![], vec![]);
    let mut state = 0;
    for row in 0..rows as u64 {
        if row % 20 == 0 {
            state = next(300_000);
            steps.push((row / 20, 0, state));
        }
        let target = (state + next(1_000)) % 300_000;
        sources.push(name(state));
        targets.push(name(target));
        steps.push((row / 20, row % 20 + 1, target));
        state = target;
    }
    let write = |file: &str, columns: Vec<(&str, ArrayRef)>| {
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let out = std::fs::File::create(dir.join(file)).unwrap();
        let mut writer = ArrowWriter::try_new(out, batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    };
    write(
        "plain_pages.parquet",
        vec![
            ("source", std::sync::Arc::new(StringArray::from(sources))),
            ("target", std::sync::Arc::new(StringArray::from(targets))),
        ],
    );
    let trajectory = |steps: &[(u64, u64, u64)]| -> Vec<(&str, ArrayRef)> {
        vec![
            (
                "run",
                std::sync::Arc::new(Int64Array::from_iter_values(
                    steps.iter().map(|s| s.0 as i64),
                )),
            ),
            (
                "step",
                std::sync::Arc::new(Int64Array::from_iter_values(
                    steps.iter().map(|s| s.1 as i64),
                )),
            ),
            (
                "state",
                std::sync::Arc::new(StringArray::from_iter_values(
                    steps.iter().map(|s| format!("s{}", s.2)),
                )),
            ),
        ]
    };
    write("trajectory_sorted.parquet", trajectory(&steps));
    for i in (1..steps.len()).rev() {
        steps.swap(i, next(i as u64 + 1) as usize);
    }
    write("trajectory_shuffled.parquet", trajectory(&steps));
}

fn ingest_bench(c: &mut Criterion) {
    use detbal::io::{LoadOptions, load};
    let dir = tempfile::tempdir().unwrap();
    let rows = 1_000_000;
    write_ingest_logs(dir.path(), rows);
    let mut group = c.benchmark_group("ingest");
    group.sample_size(10);
    group.throughput(Throughput::Elements(rows as u64));
    let opts = LoadOptions {
        trajectory_buffer_rows: 100_000,
        ..LoadOptions::default()
    };
    for name in ["plain_pages", "trajectory_shuffled", "trajectory_sorted"] {
        let input = [dir.path().join(format!("{name}.parquet"))];
        group.bench_function(BenchmarkId::new(name, "rows=1e6"), |b| {
            b.iter(|| load(&input, &opts).unwrap())
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    edge_action_bench,
    hessian_product_bench,
    minimize_action_bench,
    reciprocal_triangles_bench,
    resample_bench,
    ingest_bench
);
criterion_main!(benches);
