//! Schnakenberg's cycle decomposition (docs/METHOD.md §5): net flux on the reciprocal graph `R`
//! as a sum of fluxes around fundamental cycles, and the entropy production counted both ways.
//!
//! Why: detailed balance means zero net flux on every pair and zero affinity on every cycle. A
//! driven chain carries stationary currents around cycles; the fundamental cycles of a spanning
//! forest are an independent set of them (one per chord), and each gets a flux `J_c` and an
//! affinity `A_c` whose products add up to the entropy production.
//!
//! Per reciprocal pair `e = u → v` (the pairs seen both ways; a one-way arc has no finite
//! affinity), from the estimated kernel `T(u→v) = n_uv / N(u)` restricted to those pairs and its
//! stationary distribution `π̂` ([`stationary`]; the empirical flux `n/transitions` of short
//! runs that start away from stationarity is not divergence-free, and the identity below fails
//! for it):
//!
//! ```text
//! J_e = π̂_u T(u→v) − π̂_v T(v→u),   A_e = log(π̂_u T(u→v) / (π̂_v T(v→u)))
//! ```
//!
//! A BFS spanning forest of `R` (from the highest-degree state of each component, so cycles
//! are short on hub-heavy logs); each chord `u → v`, oriented so that `J_c = J_uv ≥ 0`, closes
//! the fundamental cycle `u → v ⇝ u` through the tree, with `A_c = Σ A` along it. Then
//!
//! ```text
//! σ_edges  = Σ_e J_e A_e  (= ½ Σ_{f≠g} J_fg A_fg),     σ_cycles = Σ_c J_c A_c
//! ```
//!
//! If `J` is divergence-free (`Σ_g J_fg = 0` at every `f`) it is the sum of its chord fluxes
//! around their fundamental cycles, `J = Σ_c J_c χ_c`, so `σ_edges = σ_cycles` exactly; the
//! stationary flux is, up to the solver's residual. [`Decomposition::divergence`] =
//! `Σ_f |Σ_g J_fg| / Σ_e |J_e|` says how far a flux is from that.
//!
//! ```
//! use detbal::stats::schnakenberg::{FluxEdge, decompose};
//! // A unit current around the triangle 0 → 1 → 2 → 0 with affinity 1 on each edge.
//! let e = |u, v| FluxEdge { u, v, flux: 1.0, affinity: 1.0 };
//! let d = decompose(3, &[e(0, 1), e(1, 2), e(2, 0)]);
//! assert_eq!(d.cycles.len(), 1);
//! assert_eq!((d.cycles[0].flux, d.cycles[0].affinity), (1.0, 3.0));
//! assert_eq!((d.edge_sum, d.cycle_sum, d.divergence), (3.0, 3.0, 0.0));
//! ```

use super::stationary::{self, Kernel};
use crate::graph::TransitionGraph;
use std::collections::VecDeque;

/// A pair of states with its net flux and its affinity along `u → v`.
#[derive(Debug, Clone, Copy)]
pub struct FluxEdge {
    pub u: u32,
    pub v: u32,
    pub flux: f64,
    pub affinity: f64,
}

/// The fundamental cycle of one chord: `states[0] → states[1]` is the chord, then the tree
/// path back to `states[0]`.
#[derive(Debug, Clone)]
pub struct FundamentalCycle {
    pub states: Vec<u32>,
    /// `Σ A` along the cycle.
    pub affinity: f64,
    /// The chord's net flux along the cycle, ≥ 0.
    pub flux: f64,
}

#[derive(Debug, Clone)]
pub struct Decomposition {
    pub cycles: Vec<FundamentalCycle>,
    /// `Σ_e J_e A_e`.
    pub edge_sum: f64,
    /// `Σ_c J_c A_c`.
    pub cycle_sum: f64,
    /// `Σ_f |Σ_g J_fg| / Σ_e |J_e|`; 0 without edges.
    pub divergence: f64,
}

/// Transition counts between two states, both ways: `(u, v, n(u→v), n(v→u))`.
pub type PairCounts = (u32, u32, u64, u64);

/// Every pair of states of `graph` with a transition either way, once.
pub fn pair_counts(graph: &TransitionGraph) -> Vec<PairCounts> {
    (0..graph.n_edges())
        .filter_map(|e| {
            let (f, g, r) = (graph.src[e], graph.dst[e], graph.reverse[e]);
            match r {
                crate::graph::NO_EDGE => Some((f, g, graph.count[e], 0)),
                r if f < g => Some((f, g, graph.count[e], graph.count[r as usize])),
                _ => None,
            }
        })
        .collect()
}

/// The stationary flux of the estimated kernel on the reciprocal arcs, and its decomposition.
pub struct Stationary {
    pub decomposition: Decomposition,
    /// `Σ_f |inflow(f) − outflow(f)| / Σ_f outflow(f)` at the solution: how far `π̂` is from
    /// stationary (the edge and cycle sums agree up to it).
    pub residual: f64,
    /// The solver's products with the balance matrix.
    pub iterations: usize,
    /// `π̂` of each state (0 on states on no reciprocal pair).
    pub pi: Vec<f64>,
}

/// The stationary flux `J(f→g) = π̂_f T(f→g) − π̂_g T(g→f)` of the kernel on the pairs seen
/// both ways ([`super::stationary`]), with `A(f→g) = log(π̂_f T(f→g) / (π̂_g T(g→f)))`, and its
/// decomposition. `J` is divergence-free, so the edge and the cycle sums are equal (to
/// [`Stationary::residual`]).
pub fn stationary(out_count: &[u64], pairs: &[PairCounts]) -> Stationary {
    let (kernel, solution) = stationary::solve(out_count, pairs, stationary::STATIONARY_TOL);
    Stationary {
        decomposition: decompose(out_count.len(), &stationary_flux(&kernel, &solution.pi)),
        residual: solution.residual,
        iterations: solution.iterations,
        pi: solution.pi,
    }
}

fn stationary_flux(kernel: &Kernel, pi: &[f64]) -> Vec<FluxEdge> {
    (kernel.pairs.iter().zip(&kernel.rates))
        .map(|(&(u, v, _, _), &(t_uv, t_vu))| {
            let (forward, backward) = (pi[u as usize] * t_uv, pi[v as usize] * t_vu);
            FluxEdge {
                u,
                v,
                flux: forward - backward,
                affinity: (forward / backward).ln(),
            }
        })
        .collect()
}

/// The decomposition of any flux on the graph of `edges` (at most one per pair of states).
pub fn decompose(n_states: usize, edges: &[FluxEdge]) -> Decomposition {
    let pairs: Vec<(u32, u32)> = edges.iter().map(|e| (e.u, e.v)).collect();
    let forest = Forest::new(n_states, &Adjacency::new(n_states, &pairs), edges.len());
    let cycles: Vec<FundamentalCycle> = edges
        .iter()
        .zip(&forest.in_tree)
        .filter(|(_, tree)| !**tree)
        .map(|(chord, _)| forest.cycle(edges, chord))
        .collect();
    let mut net = vec![0.0; n_states];
    for e in edges {
        net[e.u as usize] += e.flux;
        net[e.v as usize] -= e.flux;
    }
    let absolute: f64 = edges.iter().map(|e| e.flux.abs()).sum();
    let divergence = if absolute > 0.0 {
        net.iter().map(|x| x.abs()).sum::<f64>() / absolute
    } else {
        0.0
    };
    Decomposition {
        edge_sum: edges.iter().map(|e| e.flux * e.affinity).sum(),
        cycle_sum: cycles.iter().map(|c| c.flux * c.affinity).sum(),
        cycles,
        divergence,
    }
}

/// A BFS spanning forest, roots by decreasing degree.
struct Forest {
    /// The tree edge to each state's parent; [`Forest::NONE`] at a root.
    parent: Vec<usize>,
    /// Each state's depth below its root.
    depth: Vec<usize>,
    /// Whether each edge is a tree edge (else a chord).
    in_tree: Vec<bool>,
}

impl Forest {
    const NONE: usize = usize::MAX;

    /// The forest of `adjacency` on `n` states, whose pairs are `n_edges` edges.
    fn new(n: usize, adjacency: &Adjacency, n_edges: usize) -> Self {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&f| (std::cmp::Reverse(adjacency.of(f as u32).len()), f));
        let mut parent = vec![Self::NONE; n];
        let mut depth = vec![Self::NONE; n];
        let mut in_tree = vec![false; n_edges];
        let mut queue = VecDeque::new();
        for root in order {
            if depth[root] != Self::NONE {
                continue;
            }
            depth[root] = 0;
            queue.push_back(root);
            while let Some(f) = queue.pop_front() {
                for &(g, e) in adjacency.of(f as u32) {
                    if depth[g as usize] == Self::NONE {
                        depth[g as usize] = depth[f] + 1;
                        parent[g as usize] = e as usize;
                        in_tree[e as usize] = true;
                        queue.push_back(g as usize);
                    }
                }
            }
        }
        Forest {
            parent,
            depth,
            in_tree,
        }
    }

    /// The parent of non-root `x` and the affinity of the tree edge from `x` up to it.
    fn up(&self, edges: &[FluxEdge], x: u32) -> (u32, f64) {
        let e = &edges[self.parent[x as usize]];
        if e.u == x {
            (e.v, e.affinity)
        } else {
            (e.u, -e.affinity)
        }
    }

    /// The fundamental cycle of `chord`, oriented along its positive flux.
    fn cycle(&self, edges: &[FluxEdge], chord: &FluxEdge) -> FundamentalCycle {
        let c = chord;
        let (u, v, flux, mut affinity) = if c.flux >= 0.0 {
            (c.u, c.v, c.flux, c.affinity)
        } else {
            (c.v, c.u, -c.flux, -c.affinity)
        };
        // Climb from v and from u to their lowest common ancestor.
        let (mut x, mut y) = (v, u);
        let (mut from_v, mut from_u) = (Vec::new(), Vec::new());
        while x != y {
            if self.depth[x as usize] >= self.depth[y as usize] {
                from_v.push(x);
                let (p, a) = self.up(edges, x);
                affinity += a;
                x = p;
            } else {
                from_u.push(y);
                let (p, a) = self.up(edges, y);
                affinity -= a;
                y = p;
            }
        }
        // v ⇝ ancestor ⇝ u, which ends at u: the cycle starts there.
        let mut path = from_v;
        path.push(x);
        path.extend(from_u.into_iter().rev());
        path.rotate_right(1);
        FundamentalCycle {
            states: path,
            affinity,
            flux,
        }
    }
}

/// Pairs of states as a symmetric adjacency: the neighbours of `f` with the index of their
/// pair, ascending by neighbour.
pub struct Adjacency {
    ptr: Vec<usize>,
    entries: Vec<(u32, u32)>,
}

impl Adjacency {
    /// The adjacency of `pairs` (each once, in either orientation) on `n` states.
    pub fn new(n: usize, pairs: &[(u32, u32)]) -> Self {
        let mut ptr = vec![0usize; n + 1];
        for &(u, v) in pairs {
            ptr[u as usize + 1] += 1;
            ptr[v as usize + 1] += 1;
        }
        for f in 0..n {
            ptr[f + 1] += ptr[f];
        }
        let mut fill = ptr.clone();
        let mut entries = vec![(0, 0); ptr[n]];
        for (i, &(u, v)) in pairs.iter().enumerate() {
            for (a, b) in [(u, v), (v, u)] {
                entries[fill[a as usize]] = (b, i as u32);
                fill[a as usize] += 1;
            }
        }
        for f in 0..n {
            entries[ptr[f]..ptr[f + 1]].sort_unstable();
        }
        Adjacency { ptr, entries }
    }

    /// The number of states.
    pub fn states(&self) -> usize {
        self.ptr.len() - 1
    }

    /// `(neighbour, pair)` of `f`, ascending by neighbour.
    pub fn of(&self, f: u32) -> &[(u32, u32)] {
        &self.entries[self.ptr[f as usize]..self.ptr[f as usize + 1]]
    }

    pub fn adjacent(&self, f: u32, g: u32) -> bool {
        self.of(f).binary_search_by_key(&g, |&(h, _)| h).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An arc `(f, g, T(f→g))`.
    type Arc = (u32, u32, f64);

    const N: usize = 6;

    /// The planted drive: `+0.7` along the directed triangle 0→1→2→0, `+0.4` along 2→4→5→2,
    /// antisymmetric, 0 elsewhere.
    fn drive(f: u32, g: u32) -> f64 {
        let along = |(a, b): (u32, u32), d: f64| {
            if (a, b) == (f, g) {
                d
            } else if (a, b) == (g, f) {
                -d
            } else {
                0.0
            }
        };
        let first = [(0, 1), (1, 2), (2, 0)].map(|p| along(p, 0.7));
        let second = [(2, 4), (4, 5), (5, 2)].map(|p| along(p, 0.4));
        first.iter().chain(&second).sum()
    }

    /// A driven Metropolis kernel on `N` states (a square with one diagonal, plus a triangle
    /// hanging off state 2): `T(f→g) = min(1, e^(V_f − V_g + D_fg)) / 5`, the rest of each row on
    /// `f` itself.
    fn driven_kernel() -> Vec<Arc> {
        let v = [0.3, -0.5, 1.1, 0.0, -0.9, 0.6];
        let pairs = [
            (0, 1),
            (1, 2),
            (2, 0),
            (2, 3),
            (3, 0),
            (2, 4),
            (4, 5),
            (5, 2),
        ];
        pairs
            .iter()
            .flat_map(|&(a, b)| [(a, b), (b, a)])
            .map(|(f, g)| {
                let x = v[f as usize] - v[g as usize] + drive(f, g);
                (f, g, x.min(0.0).exp() / 5.0)
            })
            .collect()
    }

    /// The stationary distribution `π T = π`, `Σ π = 1`, by Gaussian elimination.
    fn stationary(n: usize, arcs: &[Arc]) -> Vec<f64> {
        // Rows: (Tᵀ − I) π = 0 with the last equation replaced by Σ π = 1.
        let mut a = vec![vec![0.0; n + 1]; n];
        for &(f, g, t) in arcs {
            a[g as usize][f as usize] += t;
            a[f as usize][f as usize] -= t;
        }
        a[n - 1] = vec![1.0; n + 1];
        for col in 0..n {
            let pivot = (col..n)
                .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
                .unwrap();
            a.swap(col, pivot);
            let pivot_row = a[col].clone();
            for (row, r) in a.iter_mut().enumerate() {
                if row != col {
                    let factor = r[col] / pivot_row[col];
                    for (x, p) in r[col..].iter_mut().zip(&pivot_row[col..]) {
                        *x -= factor * p;
                    }
                }
            }
        }
        (0..n).map(|i| a[i][n] / a[i][i]).collect()
    }

    /// `(u, v, π_u T_uv − π_v T_vu, log(π_u T_uv / π_v T_vu))` per pair `u < v`.
    fn stationary_flux(n: usize, arcs: &[Arc]) -> Vec<FluxEdge> {
        let pi = stationary(n, arcs);
        let t = |f: u32, g: u32| arcs.iter().find(|a| (a.0, a.1) == (f, g)).unwrap().2;
        arcs.iter()
            .filter(|a| a.0 < a.1)
            .map(|&(u, v, _)| {
                let (forward, backward) = (pi[u as usize] * t(u, v), pi[v as usize] * t(v, u));
                FluxEdge {
                    u,
                    v,
                    flux: forward - backward,
                    affinity: (forward / backward).ln(),
                }
            })
            .collect()
    }

    #[test]
    fn edge_and_cycle_sums_agree_for_the_exact_stationary_flux() {
        let edges = stationary_flux(N, &driven_kernel());
        let d = decompose(N, &edges);
        assert!(d.divergence < 1e-12, "stationary flux is divergence-free");
        // 8 pairs, 6 states, one component: 3 independent cycles.
        assert_eq!(d.cycles.len(), 3);
        assert!(
            d.edge_sum > 1e-3,
            "the drive produces entropy: {}",
            d.edge_sum
        );
        assert!(
            (d.edge_sum - d.cycle_sum).abs() < 1e-12,
            "{} vs {}",
            d.edge_sum,
            d.cycle_sum
        );
        for c in &d.cycles {
            // π cancels around a cycle: A_c is the planted drive along it.
            let k = c.states.len();
            let planted: f64 = (0..k)
                .map(|i| drive(c.states[i], c.states[(i + 1) % k]))
                .sum();
            assert!((c.affinity - planted).abs() < 1e-12, "{c:?} vs {planted}");
            assert!(c.flux >= 0.0);
            for i in 0..k {
                let (f, g) = (c.states[i], c.states[(i + 1) % k]);
                assert!(
                    edges
                        .iter()
                        .any(|e| (e.u, e.v) == (f, g) || (e.u, e.v) == (g, f)),
                    "{c:?} walks a pair of the graph"
                );
            }
        }
    }

    /// The identity needs a divergence-free flux: with a source and a sink it fails.
    #[test]
    fn a_flux_with_divergence_breaks_the_identity_and_says_so() {
        let mut edges = stationary_flux(N, &driven_kernel());
        edges[3].flux += 0.01;
        let d = decompose(N, &edges);
        assert!(d.divergence > 1e-3, "{}", d.divergence);
        assert!((d.edge_sum - d.cycle_sum).abs() > 1e-5);
    }

    #[test]
    fn chords_close_cycles_through_the_tree_from_the_hub() {
        // Hub 0 joined to 1..=4, plus the path 1-2-3-4: a BFS from the hub makes the path's
        // three edges the chords, each closing a triangle through the hub.
        let e = |u, v| FluxEdge {
            u,
            v,
            flux: -1.0,
            affinity: 2.0,
        };
        let edges = [
            e(0, 1),
            e(0, 2),
            e(0, 3),
            e(0, 4),
            e(1, 2),
            e(2, 3),
            e(3, 4),
        ];
        let d = decompose(5, &edges);
        let cycles: Vec<_> = d.cycles.iter().map(|c| c.states.clone()).collect();
        // Chords are oriented along their positive flux (v → u here).
        assert_eq!(cycles, [vec![2, 1, 0], vec![3, 2, 0], vec![4, 3, 0]]);
        for c in &d.cycles {
            // −2 on the chord, then up to the hub against 0→x (−2) and down along 0→y (+2).
            assert_eq!((c.flux, c.affinity), (1.0, -2.0));
        }
    }
}
