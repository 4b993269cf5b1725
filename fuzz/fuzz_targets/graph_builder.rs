//! Feeds `GraphBuilder` operations decoded from the bytes: 1 to 64 names to intern,
//! then `(source, target, count)` additions (row = operation index), then `finish` and
//! `strongly_connected_components` over all edges and over reciprocal edges only.
//!
//! Asserts that `add` fails exactly when the total count would exceed `u64::MAX` (and stops
//! there, as the readers do), and that the finished graph's counts, CSR and components are
//! consistent with the additions; a panic (an overflow included) is a crash.

#![no_main]

use detbal::graph::{GraphBuilder, NO_EDGE, TransitionGraph, strongly_connected_components};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});

fn run(u: &mut Unstructured) -> Result<()> {
    let mut builder = GraphBuilder::default();
    // Names by original id; interning a name again gives its old id.
    let mut names: Vec<String> = Vec::new();
    for _ in 0..u.int_in_range(1..=64u8)? {
        let name = u.arbitrary::<&str>()?;
        if builder.intern(name) as usize == names.len() {
            names.push(name.to_owned());
        }
    }
    // Exact totals of what was added, by original id: all, per source, per target (off the
    // diagonal, as `in_count`).
    let n = names.len() as u32;
    let mut total = 0u128;
    let mut out_total = vec![0u128; names.len()];
    let mut in_total = vec![0u128; names.len()];
    let mut row = 0u64;
    while !u.is_empty() {
        let (source, target) = (u.int_in_range(0..=n - 1)?, u.int_in_range(0..=n - 1)?);
        // Mostly small counts, so that long sequences are built; sometimes any u64.
        let count = if u.ratio(1, 8)? {
            u.arbitrary::<u64>()?
        } else {
            u64::from(u.arbitrary::<u8>()?)
        };
        let fits = total + u128::from(count) <= u128::from(u64::MAX);
        let added = builder.add(source, target, count, row);
        assert_eq!(
            added.is_ok(),
            fits,
            "add gave {added:?} at a total of {total}"
        );
        if !fits {
            break;
        }
        total += u128::from(count);
        out_total[source as usize] += u128::from(count);
        if source != target {
            in_total[target as usize] += u128::from(count);
        }
        row += 1;
    }
    let graph = builder.finish();
    assert_eq!(u128::from(graph.transitions()), total);
    for (new, name) in graph.names.iter().enumerate() {
        let old = names
            .iter()
            .position(|n| n == name)
            .expect("a name that was not interned");
        assert_eq!(u128::from(graph.out_count[new]), out_total[old]);
        assert_eq!(u128::from(graph.in_count[new]), in_total[old]);
    }
    check_structure(&graph);
    Ok(())
}

/// Edges, CSR, reverse edges and components agree with one another.
fn check_structure(graph: &TransitionGraph) {
    for e in 0..graph.n_edges() {
        let (s, d) = (graph.src[e], graph.dst[e]);
        assert_ne!(s, d);
        assert_eq!(graph.find_edge(s, d), Some(e));
        let reverse = graph.find_edge(d, s).map_or(NO_EDGE, |r| r as u32);
        assert_eq!(graph.reverse[e], reverse);
    }
    let all = strongly_connected_components(graph, |_| true);
    let reciprocal = strongly_connected_components(graph, |e| graph.reverse[e] != NO_EDGE);
    for components in [&all, &reciprocal] {
        assert_eq!(components.id.len(), graph.n_states());
        assert!(
            components
                .id
                .iter()
                .all(|&c| (c as usize) < components.count())
        );
        let sizes: u64 = components.size.iter().map(|&s| u64::from(s)).sum();
        assert_eq!(sizes, graph.n_states() as u64);
    }
    // The two ends of a reciprocal pair lie on a 2-cycle: one component in both.
    for e in graph.reciprocal_pairs() {
        let (s, d) = (graph.src[e] as usize, graph.dst[e] as usize);
        assert_eq!(all.id[s], all.id[d]);
        assert_eq!(reciprocal.id[s], reciprocal.id[d]);
    }
}
