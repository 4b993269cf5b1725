//! What the resampling stage's two parts share: their settings and the record-level recounts
//! (`TransitionGraph::recount`) behind the random halves ([`super::permutation`]) and the bootstrap resamples
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

/// One of the two random halves of the records (see the module docs). The draws are
/// counter-based, so either half is built without the other: the resampling stage holds one at a
/// time.
pub fn split_half(graph: &TransitionGraph, seed: u64, which: Half) -> TransitionGraph {
    let stream = Stream::new(seed, Purpose::Split);
    let half = |item: u32, n: u64| binomial(&stream, n, 0.5, item, 0);
    match which {
        Half::A => graph.recount(half),
        Half::B => graph.recount(|item, n| n - half(item, n)),
    }
}

/// Which half of the records [`split_half`] builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Half {
    A,
    B,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::GraphBuilder;
    use std::sync::Arc;

    /// The two halves, built one at a time, split every count of the graph between them, and
    /// share its names instead of copying them.
    #[test]
    fn the_halves_split_every_count_and_share_the_names() {
        let mut b = GraphBuilder::default();
        let ids: Vec<u32> = ["a", "b", "c"].iter().map(|n| b.intern(n)).collect();
        for (row, (f, g, n)) in [(0, 1, 40), (1, 0, 21), (1, 2, 7), (2, 0, 1), (2, 2, 30)]
            .into_iter()
            .enumerate()
        {
            b.add(ids[f], ids[g], n, row as u64).unwrap();
        }
        let graph = b.finish();
        let [a, b] = [Half::A, Half::B].map(|which| split_half(&graph, 7, which));
        assert!(Arc::ptr_eq(&a.names, &graph.names) && Arc::ptr_eq(&b.names, &graph.names));
        let count = |h: &TransitionGraph, f: u32, g: u32| {
            (0..h.n_edges())
                .find(|&e| (h.src[e], h.dst[e]) == (f, g))
                .map_or(0, |e| h.count[e])
        };
        for e in 0..graph.n_edges() {
            let (f, g) = (graph.src[e], graph.dst[e]);
            assert_eq!(count(&a, f, g) + count(&b, f, g), graph.count[e]);
        }
        for f in 0..graph.n_states() {
            assert_eq!(a.self_count[f] + b.self_count[f], graph.self_count[f]);
        }
        // Binomial(40, ½) and Binomial(30, ½) are not all on one side.
        assert!((1..40).contains(&count(&a, 0, 1)));
        assert!((1..30).contains(&a.self_count[2]));
        // The same seed draws the same half.
        assert_eq!(split_half(&graph, 7, Half::A).count, a.count);
    }
}
