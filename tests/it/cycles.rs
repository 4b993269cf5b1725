//! Cycles: kernel `reciprocal_triangles` (GPU = CPU exactly, ids and order; CPU = brute force),
//! the cycle test on simulations with planted drive, and the Schnakenberg decomposition.
//!
//! GPU tests print a SKIP line and pass without an adapter, unless `REQUIRE_GPU=1` (with lavapipe:
//! `REQUIRE_GPU=1 WGPU_BACKEND=vulkan cargo test --release --test it cycles::`).

use crate::support::{
    self, Gpu, Simulated, analysis_of, column, fixture, gpu, proptest_config, read_parquet,
    simulated,
};
use arrow::array::AsArray;
use arrow::datatypes::{Float64Type, UInt64Type};
use detbal::analyze::{Analysis, AnalyzeSettings};
use detbal::backend::cpu::CpuBackend;
use detbal::backend::{Backend, DeviceChoice, TRIANGLE_CHUNK, triangle_list};
use detbal::graph::{GraphBuilder, TransitionGraph};
use detbal::io::{LoadOptions, load};
use detbal::pipeline::{Analyses, analyze};
use detbal::report::{report_json, write_outputs};
use detbal::simulate::{SimMode, SimParams, Truth};
use detbal::stats::cycles::{
    CycleScan, CycleSettings, CycleTest, LISTED_SQUARES, Triangle, chordless_squares,
    cycle_space_pairs, cycle_test, cycle_test_in_chunks,
};
use detbal::stats::schnakenberg;
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::collections::HashMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------------
// Graphs

/// A graph over states `s0 … s{n-1}` from `(source, target, count)` arcs.
fn graph(n: u32, arcs: &[(u32, u32, u64)]) -> TransitionGraph {
    let mut b = GraphBuilder::default();
    let ids: Vec<u32> = (0..n).map(|i| b.intern(&format!("s{i}"))).collect();
    for (row, &(f, g, count)) in arcs.iter().enumerate() {
        b.add(ids[f as usize], ids[g as usize], count, row as u64)
            .unwrap();
    }
    b.finish()
}

/// `pairs` random pairs on `n` states; each is seen both ways with probability `reciprocal`.
fn random_graph(seed: u64, n: u32, pairs: usize, reciprocal: f64) -> TransitionGraph {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut arcs = Vec::new();
    for _ in 0..pairs {
        let (f, g) = (rng.random_range(0..n), rng.random_range(0..n));
        arcs.push((f, g, rng.random_range(1..20)));
        if rng.random_bool(reciprocal) {
            arcs.push((g, f, rng.random_range(1..20)));
        }
    }
    graph(n, &arcs)
}

/// Every pair of `n` states seen both ways: `n (n−1) (n−2) / 6` triangles.
fn clique(n: u32) -> TransitionGraph {
    let arcs: Vec<_> = (0..n)
        .flat_map(|f| (0..n).filter(move |&g| g != f).map(move |g| (f, g, 1)))
        .collect();
    graph(n, &arcs)
}

/// Two hubs joined to every one of `leaves` leaves (and to each other when `joined`), the leaves
/// in a ring, all both ways: `3 · leaves` triangles when joined, and hub out-lists of `leaves`
/// entries if the orientation ignored degrees, far beyond lavapipe's silent 65,535-iteration
/// limit.
fn hubs(leaves: u32, joined: bool) -> TransitionGraph {
    let mut arcs = if joined {
        vec![(0, 1, 5), (1, 0, 7)]
    } else {
        Vec::new()
    };
    for leaf in 2..leaves + 2 {
        let next = if leaf == leaves + 1 { 2 } else { leaf + 1 };
        for (f, g) in [(0, leaf), (1, leaf), (leaf, next)] {
            arcs.push((f, g, 3));
            arcs.push((g, f, 2));
        }
    }
    graph(leaves + 2, &arcs)
}

fn parity_fixture() -> TransitionGraph {
    let path = fixture("paper_parity/parity_driven.parquet");
    load(&[path], &LoadOptions::default()).unwrap().graph
}

/// Every reciprocal triangle by checking all `n³/6` triples, sorted.
fn brute_force(g: &TransitionGraph) -> Vec<[u32; 3]> {
    let n = g.n_states() as u32;
    let both = |a: u32, b: u32| g.find_edge(a, b).is_some() && g.find_edge(b, a).is_some();
    let mut out = Vec::new();
    for a in 0..n {
        for b in a + 1..n {
            if !both(a, b) {
                continue;
            }
            for c in b + 1..n {
                if both(b, c) && both(a, c) {
                    out.push([a, b, c]);
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Devices

/// Compares the GPU's triangle list with the CPU's, position by position, and records every
/// difference; the input graph is saved under `target/tmp/cycles/` when they differ.
#[derive(Default)]
struct Report {
    failures: String,
}

impl Report {
    fn compare(&mut self, name: &str, g: &TransitionGraph, gpu: &[[u32; 3]], cpu: &[[u32; 3]]) {
        let differ: Vec<usize> = (0..gpu.len().max(cpu.len()))
            .filter(|&i| gpu.get(i) != cpu.get(i))
            .collect();
        if differ.is_empty() {
            return;
        }
        let saved = save(name, g);
        writeln!(
            self.failures,
            "{name}: GPU {} triangles, CPU {}; {} positions differ (graph saved in {})",
            gpu.len(),
            cpu.len(),
            differ.len(),
            saved.display()
        )
        .unwrap();
        for &i in differ.iter().take(10) {
            writeln!(
                self.failures,
                "  {i:>8}  gpu {:?}  cpu {:?}",
                gpu.get(i),
                cpu.get(i)
            )
            .unwrap();
        }
    }

    fn finish(self) {
        assert!(self.failures.is_empty(), "{}", self.failures);
    }
}

/// Saves the arcs of `g` as JSON; returns the path.
fn save(name: &str, g: &TransitionGraph) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cycles");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!(
        "{}.json",
        name.replace(|c: char| !c.is_alphanumeric(), "_")
    ));
    let json = serde_json::json!({
        "n_states": g.n_states(), "src": g.src, "dst": g.dst, "count": g.count,
    });
    std::fs::write(&path, json.to_string()).unwrap();
    path
}

/// Every triangle of `g` enumerated by `backend` in chunks of `chunk`, as sorted vertices.
fn triangles(backend: &dyn Backend, g: &TransitionGraph, chunk: usize) -> Vec<[u32; 3]> {
    triangle_list(backend, g, chunk).unwrap()
}

/// The GPU's triangle sequence equals the CPU's, position by position, in large chunks and in
/// chunks of 100 triangles (many write dispatches and read-backs, cut at other edges than the
/// CPU's).
fn agree(which: Gpu, test: &str, cases: &[(String, TransitionGraph)]) {
    let Some(gpu) = gpu(which, test) else { return };
    let cpu = CpuBackend::new("reference");
    let mut report = Report::default();
    for (name, g) in cases {
        let b = triangles(&cpu, g, TRIANGLE_CHUNK);
        for chunk in [TRIANGLE_CHUNK, 100] {
            let a = triangles(gpu, g, chunk);
            report.compare(&format!("{name}, chunks of {chunk}"), g, &a, &b);
        }
    }
    report.finish();
}

// ---------------------------------------------------------------------------------------------
// reciprocal_triangles

#[test]
fn reciprocal_triangles_gpu_equals_cpu_on_the_parity_fixture_hubs_and_cliques() {
    let g = parity_fixture();
    assert!(
        brute_force(&g).len() > 50,
        "the fixture has reciprocal triangles"
    );
    let hub = hubs(100_000, true);
    let cases = vec![
        ("parity_driven.parquet".to_string(), g),
        ("hubs, 100,000 leaves".to_string(), hub),
        ("clique of 60".to_string(), clique(60)),
        (
            "random dense".to_string(),
            random_graph(5, 400, 40_000, 0.8),
        ),
        ("no arcs".to_string(), graph(4, &[])),
        (
            "one-way only".to_string(),
            graph(3, &[(0, 1, 1), (1, 2, 1), (2, 0, 1)]),
        ),
    ];
    agree(Gpu::Auto, "reciprocal_triangles_gpu_equals_cpu", &cases);
    let Some(gpu) = gpu(Gpu::Auto, "hub count") else {
        return;
    };
    let found = triangles(gpu, &cases[1].1, TRIANGLE_CHUNK);
    assert_eq!(found.len(), 300_000);
}

/// Output batches (34,220 triangles in 7 reads of ≤ 5,461) and 2-D grids with spare workgroups.
#[test]
fn reciprocal_triangles_gpu_equals_cpu_in_batches() {
    let cases = vec![
        ("clique of 60, batched".to_string(), clique(60)),
        (
            "random, batched".to_string(),
            random_graph(9, 300, 6_000, 0.7),
        ),
        ("parity, batched".to_string(), parity_fixture()),
    ];
    agree(Gpu::F64Batched, "reciprocal_triangles_batched", &cases);
}

proptest! {
    #![proptest_config(ProptestConfig {
        max_shrink_iters: 32,
        ..proptest_config(24)
    })]

    #[test]
    fn reciprocal_triangles_gpu_equals_cpu_on_random_graphs(
        seed in any::<u64>(), n in 3u32..300, pairs in 0usize..4000, reciprocal in 0.0f64..1.0,
    ) {
        let g = random_graph(seed, n, pairs, reciprocal);
        agree(Gpu::Auto, "reciprocal_triangles_random", &[(format!("random seed={seed} n={n} pairs={pairs}"), g)]);
    }

    /// The enumeration finds every triangle exactly once, vertices ascending (no GPU needed).
    #[test]
    fn reciprocal_triangles_equal_brute_force(
        seed in any::<u64>(), n in 3u32..60, pairs in 0usize..600, reciprocal in 0.0f64..1.0,
    ) {
        let g = random_graph(seed, n, pairs, reciprocal);
        let cpu = CpuBackend::new("test");
        let mut found = triangles(&cpu, &g, TRIANGLE_CHUNK);
        prop_assert!(found.iter().all(|t| t[0] < t[1] && t[1] < t[2]));
        // Chunks of any size give the same sequence.
        prop_assert_eq!(&triangles(&cpu, &g, 7), &found);
        found.sort_unstable();
        prop_assert_eq!(found, brute_force(&g));
    }
}

// ---------------------------------------------------------------------------------------------
// The streamed cycle test: bounded rows, counts and sums over every triangle

/// Every pair of `n` states seen both ways with counts from `seed`: `n (n−1) (n−2) / 6`
/// triangles. `spread` 0 makes every pair balanced up to ±1 (few flags), larger values drive
/// most triangles.
fn dense(n: u32, seed: u64, spread: u64) -> TransitionGraph {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut arcs = Vec::new();
    for f in 0..n {
        for g in f + 1..n {
            let base = rng.random_range(20..40);
            arcs.push((f, g, base + rng.random_range(0..=spread + 1)));
            arcs.push((g, f, base + rng.random_range(0..=spread + 1)));
        }
    }
    graph(n, &arcs)
}

fn settings_with(max_cycles: usize, min_count: u64) -> CycleSettings {
    CycleSettings {
        max_cycles,
        min_count,
        ..CycleSettings::default()
    }
}

/// The statistics of two scans of the same graph are identical: counts exactly, sums bit for bit,
/// the listed rows (states and every value) and the packing.
fn assert_same_scan(a: &CycleScan, b: &CycleScan, what: &str) {
    let (s, t) = (&a.test, &b.test);
    let counts = |x: &CycleTest| {
        (
            x.n,
            x.triangles,
            x.n_corrected,
            x.ndf,
            x.flagged,
            x.flagged_at_most,
            x.flagged_exact,
            x.flags_fit_listed,
            x.p_at_most_fdr,
            x.listed,
            x.limit_reached,
        )
    };
    assert_eq!(counts(s), counts(t), "{what}");
    let bits = |x: Option<f64>| x.map(f64::to_bits);
    assert_eq!(
        bits(s.chi2_ndf_reference),
        bits(t.chi2_ndf_reference),
        "{what}"
    );
    assert_eq!(s.chi2.to_bits(), t.chi2.to_bits(), "{what}");
    assert_eq!(a.triangles.len(), b.triangles.len(), "{what}");
    for (x, y) in a.triangles.iter().zip(&b.triangles) {
        assert_eq!(x.states, y.states, "{what}");
        assert_eq!(x.counts, y.counts, "{what}");
        assert_eq!(x.z.to_bits(), y.z.to_bits(), "{what}");
        assert_eq!(x.p_value.to_bits(), y.p_value.to_bits(), "{what}");
        assert_eq!(
            x.q_value.map(f64::to_bits),
            y.q_value.map(f64::to_bits),
            "{what}"
        );
    }
}

/// A bounded scan against the unbounded one: the same statistics over all triangles, the
/// `limit` most significant rows with the same values, q-values that bound the true ones from
/// above (equal at or below the FDR when the flags are exact), and flag bounds around the truth.
fn assert_bounded_matches(full: &CycleScan, bounded: &CycleScan, limit: usize, what: &str) {
    let (f, b) = (&full.test, &bounded.test);
    assert!(
        !f.limit_reached && f.flags_fit_listed && f.listed == f.triangles,
        "{what}"
    );
    assert_eq!(
        (f.n, f.triangles, f.n_corrected, f.ndf, f.p_at_most_fdr),
        (b.n, b.triangles, b.n_corrected, b.ndf, b.p_at_most_fdr),
        "{what}"
    );
    assert_eq!(
        f.chi2_ndf_reference.map(f64::to_bits),
        b.chi2_ndf_reference.map(f64::to_bits)
    );
    assert_eq!(f.chi2.to_bits(), b.chi2.to_bits(), "{what}");
    assert_eq!(b.listed, limit.min(f.triangles), "{what}");
    assert_eq!(b.limit_reached, limit < f.triangles, "{what}");
    // The most significant rows: corrected first, larger |z|, canonical order.
    let mut order: Vec<usize> = (0..full.triangles.len()).collect();
    order.sort_by(|&i, &j| {
        let (s, t) = (&full.triangles[i], &full.triangles[j]);
        (!s.corrected)
            .cmp(&!t.corrected)
            .then(t.z.abs().total_cmp(&s.z.abs()))
            .then(i.cmp(&j))
    });
    let mut top: Vec<usize> = order.into_iter().take(limit).collect();
    top.sort_unstable();
    assert_eq!(top.len(), bounded.triangles.len(), "{what}");
    for (&i, row) in top.iter().zip(&bounded.triangles) {
        let truth = &full.triangles[i];
        assert_eq!(truth.states, row.states, "{what}");
        assert_eq!(truth.z.to_bits(), row.z.to_bits(), "{what}");
        assert_eq!(truth.p_value.to_bits(), row.p_value.to_bits(), "{what}");
        assert_eq!(truth.affinity.to_bits(), row.affinity.to_bits(), "{what}");
        match (truth.q_value, row.q_value) {
            (Some(q), Some(bound)) => {
                assert!(
                    bound >= q * (1.0 - 1e-12),
                    "{what}: q {bound} below the true {q}"
                );
                if b.flags_fit_listed && bound <= b.fdr {
                    assert!((bound - q).abs() <= 1e-12 * q, "{what}: {bound} vs {q}");
                }
            }
            (None, None) => {}
            other => panic!("{what}: q-values {other:?}"),
        }
    }
    assert!(
        b.flagged <= f.flagged && f.flagged <= b.flagged_at_most,
        "{what}: {b:?} vs {f:?}"
    );
    if b.flagged_exact {
        assert_eq!(b.flagged, f.flagged, "{what}");
    }
}

/// Chunks of 1, 37 and all triangles give identical statistics (sums folded in the canonical
/// order); a bound on the rows keeps every statistic and lists the most significant ones.
#[test]
fn the_streamed_cycle_test_is_chunk_invariant_and_bounded_rows_keep_every_statistic() {
    let cpu = CpuBackend::new("test");
    for (label, g, min_count) in [
        ("driven clique of 40", dense(40, 1, 30), 1),
        ("balanced clique of 40", dense(40, 2, 0), 1),
        ("driven clique, min count 40", dense(40, 3, 30), 40),
        ("parity fixture", parity_fixture(), 1),
        ("random", random_graph(4, 200, 12_000, 0.9), 3),
    ] {
        let full = cycle_test_in_chunks(
            &g,
            &cpu,
            &settings_with(usize::MAX, min_count),
            TRIANGLE_CHUNK,
        )
        .unwrap();
        let reference = cycle_test(&g, &cpu, &settings_with(usize::MAX, min_count)).unwrap();
        assert_same_scan(&full, &reference, label);
        for limit in [0, 1, 50, 700] {
            let bounded =
                cycle_test_in_chunks(&g, &cpu, &settings_with(limit, min_count), 1000).unwrap();
            assert_bounded_matches(&full, &bounded, limit, &format!("{label}, limit {limit}"));
            for chunk in [1, 37] {
                let other = cycle_test_in_chunks(&g, &cpu, &settings_with(limit, min_count), chunk)
                    .unwrap();
                assert_same_scan(
                    &bounded,
                    &other,
                    &format!("{label}, limit {limit}, chunk {chunk}"),
                );
            }
        }
    }
    // A balanced clique flags few triangles: they fit 700 rows and the flags are exact.
    let g = dense(40, 2, 0);
    let bounded = cycle_test(&g, &cpu, &settings_with(700, 1)).unwrap().test;
    assert!(
        bounded.limit_reached && bounded.flags_fit_listed,
        "{bounded:?}"
    );
    // A driven one flags thousands: 50 rows cannot hold them, and the bounds say so.
    let g = dense(40, 1, 30);
    let bounded = cycle_test(&g, &cpu, &settings_with(50, 1)).unwrap().test;
    assert!(
        bounded.flagged > 50 && bounded.flagged_at_most >= bounded.flagged,
        "{bounded:?}"
    );
}

/// The cycle-space pairs found without listing triangles are those of the corrected triangles.
#[test]
fn cycle_space_pairs_are_the_pairs_of_corrected_triangles() {
    for seed in 0..20 {
        let g = random_graph(seed, 40, 400, 0.8);
        for min_count in [1, 5, 12] {
            let mut pairs: Vec<(u32, u32)> = brute_force(&g)
                .into_iter()
                .filter(|&[a, b, c]| {
                    [(a, b), (b, a), (b, c), (c, b), (a, c), (c, a)]
                        .iter()
                        .all(|&(u, v)| g.count[g.find_edge(u, v).unwrap()] >= min_count)
                })
                .flat_map(|[a, b, c]| [(a, b), (b, c), (a, c)])
                .collect();
            pairs.sort_unstable();
            pairs.dedup();
            assert_eq!(
                cycle_space_pairs(&g, min_count),
                pairs,
                "seed {seed}, {min_count}"
            );
        }
    }
}

/// GPU and CPU streams fold into the same statistics and rows, exactly, in the default and
/// the batched configuration (64 KiB bindings: chunks of at most 5,461 triangles, 2-D grids),
/// with GPU chunks of 100 cut elsewhere than the CPU's.
#[test]
fn the_streamed_cycle_test_gpu_equals_cpu() {
    let cpu = CpuBackend::new("reference");
    for which in [Gpu::Auto, Gpu::F64Batched] {
        let Some(gpu) = gpu(which, "the_streamed_cycle_test_gpu_equals_cpu") else {
            return;
        };
        for (label, g, min_count) in [
            ("driven clique of 60", dense(60, 5, 30), 1),
            ("balanced clique of 60", dense(60, 6, 0), 1),
            ("parity fixture", parity_fixture(), 1),
            ("random, min count 3", random_graph(8, 300, 20_000, 0.9), 3),
        ] {
            for limit in [0, 200, usize::MAX] {
                let settings = settings_with(limit, min_count);
                let expected = cycle_test(&g, &cpu, &settings).unwrap();
                for chunk in [TRIANGLE_CHUNK, 100] {
                    let found = cycle_test_in_chunks(&g, gpu, &settings, chunk).unwrap();
                    assert_same_scan(
                        &found,
                        &expected,
                        &format!("{which:?}: {label}, limit {limit}, chunk {chunk}"),
                    );
                }
            }
        }
    }
}

/// `--max-triangles`: a clique of 30 has 4,060 triangles; a limit below is an error naming the
/// flag, before anything is enumerated.
#[test]
fn more_triangles_than_the_limit_is_an_error_naming_the_flag() {
    let g = clique(30);
    let settings = |max_triangles| CycleSettings {
        max_triangles,
        ..CycleSettings::default()
    };
    let cpu = CpuBackend::new("test");
    assert_eq!(
        cycle_test(&g, &cpu, &settings(4_060))
            .unwrap()
            .test
            .triangles,
        4_060
    );
    let message = cycle_test(&g, &cpu, &settings(4_059))
        .unwrap_err()
        .to_string();
    assert!(message.contains("--max-triangles"), "{message}");
}

// ---------------------------------------------------------------------------------------------
// Chordless 4-cycles (--max-cycle-len 4)

/// Every chordless reciprocal 4-cycle from all quadruples, each as its smallest rotation or
/// reflection, sorted.
fn brute_force_squares(g: &TransitionGraph) -> Vec<[u32; 4]> {
    let n = g.n_states() as u32;
    let both = |a: u32, b: u32| g.find_edge(a, b).is_some() && g.find_edge(b, a).is_some();
    let mut out = Vec::new();
    for a in 0..n {
        for b in a + 1..n {
            for c in b + 1..n {
                for d in c + 1..n {
                    for [p, q, r, s] in [[a, b, c, d], [a, b, d, c], [a, c, b, d]] {
                        let sides = both(p, q) && both(q, r) && both(r, s) && both(s, p);
                        if sides && !both(p, r) && !both(q, s) {
                            out.push(canonical([p, q, r, s]));
                        }
                    }
                }
            }
        }
    }
    out.sort_unstable();
    out
}

/// The smallest of the eight rotations and reflections of a 4-cycle.
fn canonical(c: [u32; 4]) -> [u32; 4] {
    (0..4)
        .flat_map(|k| {
            let r = [c[k], c[(k + 1) % 4], c[(k + 2) % 4], c[(k + 3) % 4]];
            [r, [r[0], r[3], r[2], r[1]]]
        })
        .min()
        .unwrap()
}

#[test]
fn chordless_squares_of_hubs_are_counted_without_listing_them_all() {
    // Two hubs share 3,000 leaves in a ring: a square per pair of leaves, less the 3,000
    // adjacent pairs (a chord); no other square is chordless. Joined hubs are a chord of all.
    let leaves = 3_000u64;
    let s = chordless_squares(&hubs(leaves as u32, false), 10);
    assert_eq!(s.count, leaves * (leaves - 1) / 2 - leaves);
    assert_eq!(s.listed.len(), 10);
    assert_eq!(chordless_squares(&hubs(leaves as u32, true), 10).count, 0);
    for joined in [false, true] {
        let small = hubs(12, joined);
        let count = chordless_squares(&small, 0).count as usize;
        assert_eq!(count, brute_force_squares(&small).len());
    }
}

proptest! {
    #![proptest_config(proptest_config(32))]

    /// Count and list equal the brute force; affinities are the counts' log-ratios around.
    #[test]
    fn chordless_squares_equal_brute_force(
        seed in any::<u64>(), n in 4u32..24, pairs in 0usize..200, reciprocal in 0.3f64..1.0,
    ) {
        let g = random_graph(seed, n, pairs, reciprocal);
        let expected = brute_force_squares(&g);
        let s = chordless_squares(&g, usize::MAX);
        prop_assert_eq!(s.count as usize, expected.len());
        let mut listed: Vec<[u32; 4]> = s.listed.iter().map(|q| canonical(q.states)).collect();
        listed.sort_unstable();
        prop_assert_eq!(&listed, &expected);
        for q in &s.listed {
            let log_ratio = |i: usize| {
                let (u, v) = (q.states[i], q.states[(i + 1) % 4]);
                let n = |a, b| g.count[g.find_edge(a, b).unwrap()] as f64;
                (n(u, v) / n(v, u)).ln()
            };
            let affinity: f64 = (0..4).map(log_ratio).sum();
            prop_assert!((affinity - q.affinity).abs() < 1e-12);
        }
        let few = chordless_squares(&g, 3);
        prop_assert_eq!(few.count, s.count);
        prop_assert_eq!(
            few.listed.iter().map(|q| q.states).collect::<Vec<_>>(),
            s.listed.iter().take(3).map(|q| q.states).collect::<Vec<_>>()
        );
    }
}

#[test]
fn max_cycle_len_is_validated_and_lists_squares_in_the_report() {
    use clap::Parser;
    let parse = |len: &str| {
        let cli = detbal::cli::Cli::try_parse_from([
            "detbal",
            "analyze",
            "x.parquet",
            "--max-cycle-len",
            len,
        ])
        .unwrap();
        let detbal::cli::Command::Analyze(args) = cli.command else {
            unreachable!()
        };
        detbal::settings::analyze_settings(&args)
    };
    assert_eq!(parse("4").unwrap().cycles.max_len, 4);
    let message = parse("5").err().unwrap().to_string();
    assert!(
        message.contains("--max-cycle-len must be 3 or 4, got 5"),
        "{message}"
    );

    let g = parity_fixture();
    let mut settings = AnalyzeSettings {
        device: DeviceChoice::Cpu,
        ..AnalyzeSettings::default()
    };
    settings.cycles.max_len = 4;
    let run = Analyses::from(analysis_of(g, &CpuBackend::new("test"), &settings));
    let report = report_json(&run);
    let squares = &report["cycles"]["chordless_4_cycles"];
    let count = squares["count"].as_u64().unwrap();
    assert_eq!(count as usize, brute_force_squares(&run.pooled.graph).len());
    assert!(count > 0);
    let listed = squares["listed"].as_array().unwrap();
    assert_eq!(listed.len(), (count as usize).min(LISTED_SQUARES));
    assert_eq!(listed[0]["cycle"].as_array().unwrap().len(), 4);
    settings.cycles.max_len = 3;
    let a = analysis_of(run.pooled.graph, &CpuBackend::new("test"), &settings);
    let report = report_json(&a.into());
    assert!(report["cycles"]["chordless_4_cycles"].is_null());
}

// ---------------------------------------------------------------------------------------------
// The cycle test on simulations with a known truth

/// The planted affinity `D(a,b) + D(b,c) + D(c,a)` of each triangle `a → b → c → a` (graph ids).
fn planted_affinities(g: &TransitionGraph, truth: &Truth, triangles: &[Triangle]) -> Vec<f64> {
    let id = ids(g);
    let mut drive: HashMap<(u32, u32), f64> = HashMap::new();
    for (f, h, d) in &truth.drive.edges {
        let (f, h) = (id[f.as_str()], id[h.as_str()]);
        drive.insert((f, h), *d);
        drive.insert((h, f), -d);
    }
    triangles
        .iter()
        .map(|t| {
            let [a, b, c] = t.states;
            [(a, b), (b, c), (c, a)]
                .iter()
                .map(|k| drive.get(k).copied().unwrap_or(0.0))
                .sum()
        })
        .collect()
}

fn ids(g: &TransitionGraph) -> HashMap<&str, u32> {
    (0..g.n_states() as u32)
        .map(|i| (g.names[i as usize].as_str(), i))
        .collect()
}

/// What the per-cycle flags and affinities say about the planted drive, pooled over seeds.
#[derive(Default, Debug)]
struct DriveRecovery {
    planted: usize,
    /// Planted driven triangles enumerated (all six arcs observed).
    found: usize,
    /// Found with the sign of the planted affinity.
    right_sign: usize,
    /// Σ measured / planted affinity over the found ones.
    ratio_sum: f64,
    flagged: usize,
    /// Triangles whose planted affinity is exactly 0, and those of them flagged.
    null: usize,
    null_flagged: usize,
}

impl DriveRecovery {
    fn add(&mut self, g: &TransitionGraph, truth: &Truth, triangles: &[Triangle], fdr: f64) {
        let planted = planted_affinities(g, truth, triangles);
        let position: HashMap<[u32; 3], usize> = triangles
            .iter()
            .enumerate()
            .map(|(i, t)| (t.states, i))
            .collect();
        let id = ids(g);
        let flagged = |t: &Triangle| t.q_value.is_some_and(|q| q <= fdr);
        for cycle in &truth.drive.triangles {
            self.planted += 1;
            let mut states = cycle.cycle.clone().map(|s| id[s.as_str()]);
            states.sort_unstable();
            let Some(&i) = position.get(&states) else {
                continue;
            };
            let (t, a) = (&triangles[i], planted[i]);
            assert!((a.abs() - cycle.affinity).abs() < 1e-9, "{a} vs {cycle:?}");
            self.found += 1;
            self.right_sign += usize::from(t.affinity * a > 0.0);
            self.ratio_sum += t.affinity / a;
            self.flagged += usize::from(flagged(t));
        }
        for (t, &a) in triangles.iter().zip(&planted) {
            if a == 0.0 {
                self.null += 1;
                self.null_flagged += usize::from(flagged(t));
            }
        }
    }
}

/// Planted drive `0.5` per edge (affinity 1.5) on 10 % of the planted triangles, 300 states,
/// 10⁶ rows, pooled over three seeds: a driven triangle's |z| is ~6 (as low as 2), so the
/// flags are a real test of power, and 92 % of the triangles are undriven, so BH at FDR 5 %
/// should leave ≲ 0.5 % of them flagged.
#[test]
fn driven_triangles_are_found_with_their_sign_and_size_and_flagged() {
    let settings = CycleSettings::default();
    let mut r = DriveRecovery::default();
    for seed in 1..=3 {
        let params = SimParams {
            rows: 1_000_000,
            states: 300,
            seed,
            drive: 0.5,
            drive_fraction: 0.1,
            ..SimParams::new(SimMode::Driven)
        };
        let sim = simulated(&params);
        let (g, truth) = (sim.graph(), sim.truth());
        let scan = cycle_test(&g, &CpuBackend::new("test"), &settings).unwrap();
        assert!(!scan.test.limit_reached);
        r.add(&g, &truth, &scan.triangles, settings.fdr);
    }
    eprintln!("{r:?}");
    assert!(r.planted == 90 && r.found >= 88, "{r:?}");
    assert!(r.right_sign as f64 >= 0.97 * r.found as f64, "{r:?}");
    let ratio = r.ratio_sum / r.found as f64;
    assert!((ratio - 1.0).abs() < 0.1, "mean measured/planted {ratio}");
    assert!(r.flagged as f64 >= 0.9 * r.planted as f64, "{r:?}");
    assert!(
        r.null > 1000 && (r.null_flagged as f64) < 0.01 * r.null as f64,
        "{r:?}"
    );
}

#[test]
fn the_corrected_cycle_test_rejects_drive_at_1e5_rows_and_not_a_reversible_chain() {
    let settings = CycleSettings::default();
    let run = |params: SimParams| {
        let g = simulated(&params).graph();
        cycle_test(&g, &CpuBackend::new("test"), &settings)
            .unwrap()
            .test
    };
    // Drive 1.5 per edge on 20 % of 200 planted triangles.
    let driven = run(SimParams {
        rows: 100_000,
        ..SimParams::new(SimMode::Driven)
    });
    let p = driven.p_value.unwrap();
    assert!(p < 1e-6, "driven chain: p = {p}, {driven:?}");
    let reversible = run(SimParams {
        rows: 1_000_000,
        states: 300,
        ..SimParams::new(SimMode::Reversible)
    });
    let p = reversible.p_value.unwrap();
    assert!(
        p > 0.01 && reversible.n_corrected > 400,
        "reversible chain: p = {p}, {reversible:?}"
    );
    assert_eq!(reversible.flagged, 0, "{reversible:?}");
}

// ---------------------------------------------------------------------------------------------
// Schnakenberg decomposition on data

/// Simulates `params`, analyses the log on the CPU and writes the outputs into `out` beside it.
fn analyzed(params: &SimParams) -> (Simulated, Analysis) {
    let sim = simulated(params);
    let settings = AnalyzeSettings {
        device: DeviceChoice::Cpu,
        ..AnalyzeSettings::default()
    };
    let run = analyze(std::slice::from_ref(&sim.log), &settings).unwrap();
    write_outputs(&run, &sim.dir.path().join("out"), false).unwrap();
    (sim, run.pooled)
}

/// `fundamental_cycles.parquet` as (states, length, affinity, flux) rows.
fn read_fundamental_cycles(path: &Path) -> Vec<(Vec<String>, u64, f64, f64)> {
    let table = read_parquet(path);
    let cycle = column(&table, "cycle").as_list::<i32>();
    let length = column(&table, "length").as_primitive::<UInt64Type>();
    let affinity = column(&table, "affinity").as_primitive::<Float64Type>();
    let flux = column(&table, "flux").as_primitive::<Float64Type>();
    (0..table.num_rows())
        .map(|i| {
            let states = cycle.value(i);
            let states = states
                .as_string::<i32>()
                .iter()
                .map(|s| s.unwrap().to_string());
            (
                states.collect(),
                length.value(i),
                affinity.value(i),
                flux.value(i),
            )
        })
        .collect()
}

/// One cycle per chord of a spanning forest of the reciprocal graph, walking reciprocal pairs,
/// with the affinity the counts give (the π̂ and N terms cancel around a cycle) and a
/// non-negative flux; the report carries the keys.
#[test]
fn fundamental_cycles_are_written_and_reported() {
    let (sim, a) = analyzed(&SimParams {
        rows: 300_000,
        ..SimParams::new(SimMode::Driven)
    });
    let out = sim.dir.path().join("out");
    let g = &a.graph;
    let rows = read_fundamental_cycles(&out.join("fundamental_cycles.parquet"));
    let pairs: Vec<(u32, u32)> = g.reciprocal_pairs().map(|e| (g.src[e], g.dst[e])).collect();
    let mut touched: Vec<u32> = pairs.iter().flat_map(|&(u, v)| [u, v]).collect();
    touched.sort_unstable();
    touched.dedup();
    // The simulated graph is connected: one component.
    assert_eq!(rows.len(), pairs.len() - touched.len() + 1);
    let id = ids(g);
    for (states, length, affinity, flux) in &rows {
        assert_eq!(*length as usize, states.len());
        let s: Vec<u32> = states.iter().map(|n| id[n.as_str()]).collect();
        let mut a_sum = 0.0;
        for i in 0..s.len() {
            let (f, h) = (s[i], s[(i + 1) % s.len()]);
            let (forward, backward) = (g.find_edge(f, h), g.find_edge(h, f));
            let (Some(forward), Some(backward)) = (forward, backward) else {
                panic!("{states:?} leaves the reciprocal graph at {f} → {h}");
            };
            let (nf, nb) = (g.count[forward] as f64, g.count[backward] as f64);
            a_sum += (nf / nb).ln();
        }
        assert!(
            *flux >= 0.0 && (a_sum - affinity).abs() < 1e-9,
            "{states:?}"
        );
    }

    let report = support::report(&out);
    let (entropy, cycles) = (&report["entropy_production"], &report["cycles"]);
    for key in [
        "nats_per_transition",
        "cycle_sum_nats_per_transition",
        "null_mean",
    ] {
        assert!(entropy[key].as_f64().unwrap() > 0.0, "{key}: {entropy}");
    }
    assert_eq!(entropy["fundamental_cycles"], rows.len());
    assert_eq!(cycles["fundamental_cycles"]["count"], rows.len());
    assert_eq!(
        cycles["fundamental_cycles"]["largest_production"]
            .as_array()
            .unwrap()
            .len(),
        20
    );
    assert!(
        cycles["triangles"].as_u64().unwrap() > 0,
        "existing keys stay: {cycles}"
    );
}

/// Runs start uniformly, not from π, so the empirical flux `n/transitions` of short runs has
/// sources and sinks; the stationary flux of the estimated kernel has none, so its edge and
/// cycle sums agree to rounding for long and short runs alike.
#[test]
fn edge_and_cycle_sums_agree_for_long_and_short_runs() {
    for run_len in [1e6, 5.0] {
        let params = SimParams {
            rows: 1_000_000,
            run_len,
            ..SimParams::new(SimMode::Driven)
        };
        let g = simulated(&params).graph();
        let s = schnakenberg::stationary(&g.out_count, &schnakenberg::pair_counts(&g));
        let d = &s.decomposition;
        eprintln!(
            "runs of {run_len}: σ edges {:.9}, cycles {:.9}, divergence {:.1e}, residual {:.1e} after {} iterations",
            d.edge_sum, d.cycle_sum, d.divergence, s.residual, s.iterations
        );
        assert!(d.edge_sum > 0.01, "a driven log produces entropy");
        assert!(
            (d.edge_sum - d.cycle_sum).abs() <= 1e-12 * d.edge_sum,
            "{} vs {}",
            d.edge_sum,
            d.cycle_sum
        );
        assert!(d.divergence < 1e-10, "{}", d.divergence);
    }
}

// ---------------------------------------------------------------------------------------------
// A dense graph through the binary: bounded memory and rows

/// Runs the `detbal` binary with `args`; returns its exit status, stdout, stderr and peak RSS in
/// bytes (`wait4`'s `ru_maxrss` of that child alone).
#[allow(clippy::zombie_processes)] // reaped by wait4, which also gives its rusage
fn run_measured(args: &[&str]) -> (i32, String, String, u64) {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let child = support::command(args)
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid out-parameter; `pid` is this test's own child, reaped
    // here once (the `Child` is never waited on).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(got, pid, "wait4: {}", std::io::Error::last_os_error());
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (
        code,
        std::fs::read_to_string(out).unwrap(),
        std::fs::read_to_string(err).unwrap(),
        usage.ru_maxrss as u64 * 1024,
    )
}

/// The complete graph of 400 states (159,600 edges, 10,586,800 reciprocal triangles) used to
/// take 3.2 GB and write a 557 MB cycles.parquet; now it is analysed (resampling on, so the
/// sign-flip packing and the bootstrap's cycle-space χ² are exercised) in well under 1 GiB, and
/// the table holds `--max-cycles` rows while report.json counts every triangle.
#[test]
fn a_complete_graph_of_400_states_is_analysed_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("dense.parquet");
    detbal::bench::write_dense_log(400, 7, &log).unwrap();
    let out = dir.path().join("out");
    let (code, stdout, stderr, peak) = run_measured(&[
        "analyze",
        log.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--device",
        "cpu",
        "--max-cycles",
        "5000",
        "--permutations",
        "100",
        "--bootstrap",
        "2",
    ]);
    assert_eq!(code, 0, "{stderr}");
    eprintln!("peak RSS {} MiB\n{stdout}", peak >> 20);
    assert!(peak < 1 << 30, "peak RSS {} MiB", peak >> 20);
    let report = support::report(&out);
    let cycles = &report["cycles"];
    assert_eq!(cycles["triangles"], 400 * 399 * 398 / 6, "{cycles}");
    assert_eq!(cycles["listed"], 5000, "{cycles}");
    assert_eq!(cycles["limit_reached"], true, "{cycles}");
    let file = std::fs::File::open(out.join("cycles.parquet")).unwrap();
    let rows = parquet::file::reader::SerializedFileReader::new(file)
        .map(|r| {
            parquet::file::reader::FileReader::metadata(&r)
                .file_metadata()
                .num_rows()
        })
        .unwrap();
    assert_eq!(rows, 5000);
    // The summary wraps to the width: read it as one line.
    let line = stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(line.contains("10,586,800 reciprocal triangles"), "{stdout}");
    assert!(
        line.contains("5,000 most significant listed (--max-cycles)"),
        "{stdout}"
    );
}
