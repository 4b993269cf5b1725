//! Attractors: the local minima of the fitted potential.
//!
//! With `log T(f→g)/T(g→f) = V(f) − V(g)` the dynamics flows downhill in `V`. An *attractor* is
//! an identifiable state `f` with no downhill way out: every observed out-neighbour `g ≠ f`
//! whose potential is comparable (identifiable, same component, as `V` is defined up to a
//! constant per component) has `V(g) ≥ V(f)`, and it has at least one such neighbour. Its
//! *depth* is the smallest rise `min V(g) − V(f)` over those neighbours: the barrier the agent
//! climbs to leave. Attractors are ranked by visits (transitions into the state), then by
//! depth, then by name, so the ranking is deterministic.
//!
//! Neighbours of equal potential (states tied by symmetry, e.g. two leaves hung from one state
//! by equal counts) do not lead downhill; a fitted tie comes out as a fall of rounding size,
//! whose sign depends on the solver's path, so rises and falls up to [`LEVEL`] count as level
//! ground (depth 0) and the count does not change with the solver or the device.

use crate::fit::{POTENTIAL_TOL, Potential};
use crate::graph::TransitionGraph;

/// The largest rise or fall of `V` to a neighbour read as level: ten times the fit's bound on
/// the error of each converged potential ([`POTENTIAL_TOL`]).
pub const LEVEL: f64 = 10.0 * POTENTIAL_TOL;

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
            (depth.is_finite() && depth >= -LEVEL).then(|| Attractor {
                name: graph.names[f].clone(),
                potential: v,
                visits: graph.in_count[f],
                depth: if depth <= LEVEL { 0.0 } else { depth },
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

    /// Two states tied up to rounding are both attractors, whichever way the rounding fell; a
    /// fall larger than [`LEVEL`] is downhill.
    #[test]
    fn a_tie_within_rounding_is_level_ground() {
        let mut b = GraphBuilder::default();
        let s: Vec<u32> = ["hub", "x", "y"].iter().map(|n| b.intern(n)).collect();
        for (row, &(f, g)) in [(0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1)]
            .iter()
            .enumerate()
        {
            b.add(s[f], s[g], 5, row as u64).unwrap();
        }
        let graph = b.finish();
        let found = |x: f64, y: f64| {
            let potential = Potential {
                value: vec![Some(1.0), Some(x), Some(y)],
                status: vec![Identifiability::Identifiable; 3],
                component: vec![0; 3],
                posterior_sd: vec![None; 3],
            };
            let mut names: Vec<(String, f64)> = attractors(&graph, &potential)
                .into_iter()
                .map(|a| (a.name, a.depth))
                .collect();
            names.sort_by(|a, b| a.0.cmp(&b.0));
            names
        };
        let both = vec![("x".to_string(), 0.0), ("y".to_string(), 0.0)];
        assert_eq!(found(-0.5, -0.5 + 3e-16), both);
        assert_eq!(found(-0.5 + 3e-16, -0.5), both);
        let (x, y) = (-0.5, -0.5 + 1e-6);
        assert_eq!(found(x, y), vec![("x".to_string(), y - x)]);
    }
}
