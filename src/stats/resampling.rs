//! What the resampling stage's two parts share: their settings and the record-level recount
//! behind the random halves ([`super::permutation`]) and the bootstrap resamples
//! ([`super::bootstrap`]). Neither of those imports the other's internals through here.

use crate::graph::TransitionGraph;
use crate::rng::{Purpose, Stream, binomial};

#[derive(Debug, Clone, serde::Serialize)]
pub struct ResamplingSettings {
    /// Resamples of the explanatory-power test (`--permutations`); 0 turns it off.
    pub permutations: u32,
    /// Bootstrap resamples (`--bootstrap`); 0 turns the bootstrap off.
    pub bootstrap: u32,
    pub seed: u64,
    /// Also run the held-out check.
    pub holdout: bool,
    /// Coverage of the bootstrap intervals.
    pub level: f64,
}

impl Default for ResamplingSettings {
    fn default() -> Self {
        ResamplingSettings {
            permutations: 10_000,
            bootstrap: 200,
            seed: 0,
            holdout: false,
            level: 0.9,
        }
    }
}

/// `graph` with every count replaced by `count(item)` (arc `e`: item `e`; self-transitions of
/// `f`: item `edges + f`); arcs whose count becomes 0 are dropped.
pub(crate) fn recount(graph: &TransitionGraph, count: impl Fn(u32, u64) -> u64) -> TransitionGraph {
    let m = graph.n_edges();
    let n = graph.n_states();
    let self_count: Vec<u64> = (0..n)
        .map(|f| count((m + f) as u32, graph.self_count[f]))
        .collect();
    let mut out_count = self_count.clone();
    let mut edges = Vec::with_capacity(m);
    for e in 0..m {
        let c = count(e as u32, graph.count[e]);
        if c > 0 {
            out_count[graph.src[e] as usize] += c;
            edges.push((graph.src[e], graph.dst[e], c));
        }
    }
    let rows = out_count.iter().sum();
    TransitionGraph::from_sorted_edges(graph.names.clone(), out_count, self_count, edges, rows)
}

/// The two random halves of the records (see the module docs).
pub fn split_halves(graph: &TransitionGraph, seed: u64) -> [TransitionGraph; 2] {
    let stream = Stream::new(seed, Purpose::Split);
    let half = |item: u32, n: u64| binomial(&stream, n, 0.5, item, 0);
    let a = recount(graph, half);
    let b = recount(graph, |item, n| n - half(item, n));
    [a, b]
}
