//! Entropy production (METHOD.md §6) from the empirical fluxes `j(f→g) = n(f→g) / transitions`:
//!
//! ```text
//! σ = ½ Σ_{f≠g} (j(f→g) − j(g→f)) log(j(f→g) / j(g→f))   nats per transition
//! ```
//!
//! summed over reciprocal pairs (a one-way arc would make it infinite); the share of transitions
//! on one-way arcs is reported beside it. Zero exactly when every pair's fluxes balance.

use crate::graph::{NO_EDGE, TransitionGraph};

#[derive(Debug, Clone, serde::Serialize)]
pub struct EntropyProduction {
    pub nats_per_transition: f64,
    pub reciprocal_pairs: usize,
    /// Transitions on arcs whose reverse was never seen, over all transitions between states.
    pub one_way_fraction: f64,
}

pub fn entropy_production(graph: &TransitionGraph) -> EntropyProduction {
    let total = graph.transitions().max(1) as f64;
    let mut sigma = 0.0;
    let mut pairs = 0;
    for e in graph.reciprocal_pairs() {
        let (a, b) = (
            graph.count[e] as f64,
            graph.count[graph.reverse[e] as usize] as f64,
        );
        sigma += (a - b) / total * (a / b).ln();
        pairs += 1;
    }
    let between: u64 = graph.count.iter().sum();
    let one_way: u64 = (0..graph.n_edges())
        .filter(|&e| graph.reverse[e] == NO_EDGE)
        .map(|e| graph.count[e])
        .sum();
    EntropyProduction {
        nats_per_transition: sigma,
        reciprocal_pairs: pairs,
        one_way_fraction: if between > 0 {
            one_way as f64 / between as f64
        } else {
            0.0
        },
    }
}
