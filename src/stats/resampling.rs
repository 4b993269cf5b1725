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

/// The two random halves of the records (see the module docs).
pub fn split_halves(graph: &TransitionGraph, seed: u64) -> [TransitionGraph; 2] {
    let stream = Stream::new(seed, Purpose::Split);
    let half = |item: u32, n: u64| binomial(&stream, n, 0.5, item, 0);
    let a = graph.recount(half);
    let b = graph.recount(|item, n| n - half(item, n));
    [a, b]
}
