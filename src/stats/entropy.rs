//! Entropy production (docs/METHOD.md §5) from empirical fluxes `j(f→g) = n(f→g) / transitions`:
//!
//! ```text
//! σ = ½ Σ_{f≠g} (j(f→g) − j(g→f)) log(j(f→g) / j(g→f))   nats per transition
//! ```
//!
//! summed over reciprocal pairs (a one-way arc would make it infinite); the share of transitions
//! on one-way arcs is reported beside it. Zero exactly when every pair's fluxes balance.
//! Beside it, the same quantity as Schnakenberg's sum over fundamental cycles `Σ_c J_c A_c`
//! ([`super::schnakenberg`]), equal to `σ` when the net flux is divergence-free, and how far the
//! empirical flux is from that.

use super::schnakenberg::Decomposition;
use crate::graph::{NO_EDGE, TransitionGraph};

#[derive(Debug, Clone, serde::Serialize)]
pub struct EntropyProduction {
    pub nats_per_transition: f64,
    pub reciprocal_pairs: usize,
    /// Transitions on arcs whose reverse was never seen, over all transitions between states.
    pub one_way_fraction: f64,
    /// `Σ_c J_c A_c` over the fundamental cycles of the reciprocal graph, nats per transition.
    pub cycle_sum_nats_per_transition: f64,
    /// Number of fundamental cycles (chords of a spanning forest of the reciprocal graph).
    pub fundamental_cycles: usize,
    /// `Σ_f |Σ_g J_fg| / Σ_e |J_e|` of the empirical net flux on the reciprocal graph.
    pub flux_divergence: f64,
}

/// `σ` of `graph` from the decomposition of its empirical net flux ([`super::schnakenberg::empirical`]).
pub fn entropy_production(graph: &TransitionGraph, cycles: &Decomposition) -> EntropyProduction {
    let between: u64 = graph.count.iter().sum();
    let one_way: u64 = (0..graph.n_edges())
        .filter(|&e| graph.reverse[e] == NO_EDGE)
        .map(|e| graph.count[e])
        .sum();
    EntropyProduction {
        nats_per_transition: cycles.edge_sum,
        reciprocal_pairs: graph.reciprocal_pairs().count(),
        one_way_fraction: if between > 0 {
            one_way as f64 / between as f64
        } else {
            0.0
        },
        cycle_sum_nats_per_transition: cycles.cycle_sum,
        fundamental_cycles: cycles.cycles.len(),
        flux_divergence: cycles.divergence,
    }
}
