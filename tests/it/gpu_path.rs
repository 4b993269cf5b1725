//! The GPU path of issue #19: the triangle kernel's work items on hub-heavy graphs (edges whose
//! intersections are split, lopsided ones searched) against the CPU twin, exactly; the device
//! counters on a kernel whose work is known; the precision chosen for the adapter at hand.
//!
//! GPU tests print a SKIP line and pass without an adapter, unless `REQUIRE_GPU=1` (with
//! lavapipe: `REQUIRE_GPU=1 WGPU_BACKEND=vulkan cargo test --release --test it gpu_path::`).

use crate::support::{Gpu, gpu, private_gpu};
use detbal::backend::cpu::CpuBackend;
use detbal::backend::cpu::reciprocal_triangles::OrientedReciprocal;
use detbal::backend::gpu::{GpuBackend, Precision};
use detbal::backend::{Backend, TRIANGLE_CHUNK};
use detbal::bench::{hub_graph, uniform_graph};
use detbal::graph::{GraphBuilder, TransitionGraph};

/// A graph over states `s0 … s{n-1}` with every pair of `pairs` seen both ways.
fn reciprocal(n: u32, pairs: impl Iterator<Item = (u32, u32)>) -> TransitionGraph {
    let mut b = GraphBuilder::default();
    let ids: Vec<u32> = (0..n).map(|i| b.intern(&format!("s{i}"))).collect();
    for (row, (f, g)) in pairs.enumerate() {
        let row = 2 * row as u64;
        b.add(ids[f as usize], ids[g as usize], 3, row).unwrap();
        b.add(ids[g as usize], ids[f as usize], 2, row + 1).unwrap();
    }
    b.finish()
}

/// A ring of `ring` states, each joined to all of `hubs` other states (`ring > hubs + 2`, so the
/// hubs rank highest): every ring edge's two oriented out-lists hold the `hubs` hubs and close
/// `hubs` triangles, an intersection far beyond one work item; `ring · hubs` triangles.
fn ring_of_hubs(ring: u32, hubs: u32) -> TransitionGraph {
    assert!(ring > hubs + 2);
    let edges = (0..ring).map(|u| (u, (u + 1) % ring));
    let spokes = (0..ring).flat_map(move |u| (ring..ring + hubs).map(move |h| (u, h)));
    reciprocal(ring + hubs, edges.chain(spokes))
}

fn clique(n: u32) -> TransitionGraph {
    reciprocal(n, (0..n).flat_map(move |a| (a + 1..n).map(move |b| (a, b))))
}

/// The oriented-edge triples `backend` streams, in chunks of `chunk`, and the number of chunks.
fn triples(backend: &dyn Backend, r: &OrientedReciprocal, chunk: usize) -> (Vec<[u32; 3]>, usize) {
    let (mut out, mut chunks) = (Vec::new(), 0);
    backend
        .reciprocal_triangles(r, chunk, &mut |ts| {
            out.extend_from_slice(ts);
            chunks += 1;
            Ok(())
        })
        .unwrap();
    (out, chunks)
}

/// GPU = CPU, triple by triple, on each graph and chunk size; returns the triangles found.
fn assert_gpu_equals_cpu(gpu: &GpuBackend, cases: &[(&str, TransitionGraph)], chunks: &[usize]) {
    let cpu = CpuBackend::new("reference");
    for (name, g) in cases {
        let r = OrientedReciprocal::new(g);
        let (expected, _) = triples(&cpu, &r, TRIANGLE_CHUNK);
        assert!(!expected.is_empty(), "{name} has triangles");
        for &chunk in chunks {
            let (found, _) = triples(gpu, &r, chunk);
            let first_difference = found.iter().zip(&expected).position(|(a, b)| a != b);
            assert!(
                found.len() == expected.len() && first_difference.is_none(),
                "{name}, chunks of {chunk}: GPU {} triangles, CPU {}, first difference at {:?}",
                found.len(),
                expected.len(),
                first_difference
            );
        }
    }
}

#[test]
fn split_and_searched_intersections_equal_the_cpu_twin_on_hub_heavy_graphs() {
    let Some(gpu) = gpu(Gpu::Auto, "hub-heavy triangles") else {
        return;
    };
    let cases = [
        // k = 104 core states all joined and 86,000 peripheral ones with 4 core links each.
        ("hub graph of 7e5 arcs", hub_graph(700_000, 3)),
        ("ring of 310 states on 300 hubs", ring_of_hubs(310, 300)),
        ("clique of 150", clique(150)),
    ];
    assert_gpu_equals_cpu(gpu, &cases, &[TRIANGLE_CHUNK, 5_000]);
    assert_eq!(
        triples(gpu, &OrientedReciprocal::new(&cases[1].1), TRIANGLE_CHUNK)
            .0
            .len(),
        310 * 300
    );
}

#[test]
fn split_intersections_equal_the_cpu_twin_in_batches_and_2d_grids() {
    let Some(gpu) = gpu(Gpu::F64Batched, "hub-heavy triangles, batched") else {
        return;
    };
    let cases = [
        ("ring of 120 states on 110 hubs", ring_of_hubs(120, 110)),
        ("clique of 40", clique(40)),
        ("hub graph of 2e4 arcs", hub_graph(20_000, 5)),
    ];
    assert_gpu_equals_cpu(gpu, &cases, &[TRIANGLE_CHUNK, 300]);
}

/// The split work items are uploaded only when some edge is split: a graph with a dense core
/// uploads 8 B per item beyond the graph's three arrays, a uniform one no list.
#[test]
fn work_items_are_listed_only_for_graphs_with_heavy_edges() {
    let Some(gpu) = &private_gpu(Gpu::Auto, "work items") else {
        return;
    };
    let uploaded_beyond_graph = |g: &TransitionGraph| {
        let r = OrientedReciprocal::new(g);
        let before = gpu.counters();
        triples(gpu, &r, TRIANGLE_CHUNK);
        let work = gpu.counters().since(before);
        let graph = 4 * (r.ptr.len() + r.adj.len() + r.src.len()) as u64;
        (work.bytes_uploaded - graph, r.n_edges() as u64)
    };
    let (extra, edges) = uploaded_beyond_graph(&ring_of_hubs(310, 300));
    assert!(
        extra > 8 * edges,
        "{extra} bytes beyond the graph for {edges} edges"
    );
    let (extra, edges) = uploaded_beyond_graph(&uniform_graph(20_000, 1));
    assert!(
        extra < 1024,
        "{extra} bytes beyond the graph for {edges} edges"
    );
}

/// One read-back of the offsets and one per chunk; bytes down: the offsets (4 B per item plus
/// the total) and 12 B per triangle; dispatches: count, one scan level (≤ 1,024 items), one
/// write per chunk.
#[test]
fn counters_count_the_triangle_kernels_round_trips_and_bytes() {
    let Some(gpu) = &private_gpu(Gpu::Auto, "counters") else {
        return;
    };
    let r = OrientedReciprocal::new(&clique(30));
    assert_eq!(r.n_edges(), 435);
    for chunk in [TRIANGLE_CHUNK, 500] {
        let before = gpu.counters();
        let (found, chunks) = triples(gpu, &r, chunk);
        let work = gpu.counters().since(before);
        assert_eq!(found.len(), 4_060);
        assert_eq!(chunks, if chunk == 500 { 9 } else { 1 });
        assert_eq!(work.readbacks, 1 + chunks as u64);
        assert_eq!(work.submits, work.readbacks);
        assert_eq!(work.dispatches, 2 + chunks as u64);
        assert_eq!(work.bytes_downloaded, 4 * 436 + 12 * 4_060);
        assert!(work.bytes_bound > work.bytes_downloaded, "{work:?}");
    }
    gpu.reset_counters();
    assert_eq!(gpu.counters().readbacks, 0);
}

/// lavapipe (a software renderer) keeps f64 and says why; any adapter's reason names its
/// precision.
#[test]
fn the_device_reason_says_which_precision_and_why() {
    let Some(gpu) = gpu(Gpu::Auto, "precision") else {
        return;
    };
    let info = gpu.info();
    println!("{}: {}", info.adapter, info.reason);
    assert!(
        info.reason.contains(gpu.precision().describe()),
        "{}",
        info.reason
    );
    if info.adapter.ends_with("Cpu)") && std::env::var("DETBAL_GPU_PRECISION").is_err() {
        assert_eq!(gpu.precision(), Precision::F64);
        assert!(
            info.reason.ends_with(
                "f64 vectors and sums (SHADER_F64): a software renderer, whose f64 runs on the \
                 CPU's own f64 units"
            ),
            "{}",
            info.reason
        );
    }
}
