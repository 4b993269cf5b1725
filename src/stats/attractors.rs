//! Attractors: the local minima of the fitted potential.
//!
//! With `log T(f→g)/T(g→f) = V(f) − V(g)` the dynamics flows downhill in `V`. An *attractor* is
//! an identifiable state `f` with no downhill way out: every observed out-neighbour `g ≠ f`
//! whose potential is comparable (identifiable, same component, as `V` is defined up to a
//! constant per component) has `V(g) ≥ V(f)`, and it has at least one such neighbour. Its
//! *depth* is the smallest rise `min V(g) − V(f)` over those neighbours: the barrier the agent
//! climbs to leave. Attractors are ranked by visits (transitions into the state), then by
//! depth, then by name, so the ranking is deterministic.

use crate::fit::Potential;
use crate::graph::TransitionGraph;

/// Attractors listed in report.json.
pub const LISTED: usize = 20;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Attractor {
    pub name: String,
    /// `βV` of the state (centred per component).
    pub potential: f64,
    /// Transitions into the state (self-transitions excluded).
    pub visits: u64,
    /// Smallest rise of `V` to an observed out-neighbour.
    pub depth: f64,
    pub component: u32,
}

/// All attractors of `potential` over `graph`, ranked (see the module docs).
pub fn attractors(graph: &TransitionGraph, potential: &Potential) -> Vec<Attractor> {
    let mut found: Vec<Attractor> = (0..graph.n_states())
        .filter_map(|f| {
            let v = potential.value[f]?;
            let component = potential.component[f];
            let rises = (graph.out_ptr[f]..graph.out_ptr[f + 1]).filter_map(|e| {
                let g = graph.dst[e] as usize;
                let comparable = g != f && potential.component[g] == component;
                potential.value[g].filter(|_| comparable).map(|vg| vg - v)
            });
            let depth = rises.fold(f64::INFINITY, f64::min);
            (depth.is_finite() && depth >= 0.0).then(|| Attractor {
                name: graph.names[f].clone(),
                potential: v,
                visits: graph.in_count[f],
                depth,
                component,
            })
        })
        .collect();
    found.sort_by(|a, b| {
        b.visits
            .cmp(&a.visits)
            .then(b.depth.total_cmp(&a.depth))
            .then_with(|| a.name.cmp(&b.name))
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::Identifiability;
    use crate::graph::GraphBuilder;

    #[test]
    fn local_minima_over_out_neighbours_ranked_by_visits() {
        // a ⇄ b ⇄ c ⇄ d, with V = (0, 1, -1, 2): minima a (rise 1) and c (rise 2).
        let mut b = GraphBuilder::default();
        let s: Vec<u32> = ["a", "b", "c", "d"].iter().map(|n| b.intern(n)).collect();
        let arcs = [
            (0, 1, 3),
            (1, 0, 9),
            (1, 2, 9),
            (2, 1, 2),
            (2, 3, 1),
            (3, 2, 7),
        ];
        for (row, &(f, g, n)) in arcs.iter().enumerate() {
            b.add(s[f], s[g], n, row as u64).unwrap();
        }
        let graph = b.finish();
        let potential = Potential {
            value: vec![Some(0.0), Some(1.0), Some(-1.0), Some(2.0)],
            status: vec![Identifiability::Identifiable; 4],
            component: vec![0; 4],
            posterior_sd: vec![None; 4],
        };
        let found = attractors(&graph, &potential);
        let names: Vec<&str> = found.iter().map(|a| a.name.as_str()).collect();
        // c is entered 9 + 7 = 16 times, a 9 times.
        assert_eq!(names, ["c", "a"]);
        assert_eq!((found[0].visits, found[0].depth), (16, 2.0));
        assert_eq!((found[1].visits, found[1].depth), (9, 1.0));
    }
}
