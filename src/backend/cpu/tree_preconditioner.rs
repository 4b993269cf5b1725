//! The CPU's preconditioner for Newton–CG: a maximum-weight spanning forest of the Hessian's
//! graph, solved exactly (Vaidya's idea, with the diagonal kept whole).
//!
//! The Hessian is a graph Laplacian whose edge weights `c = w σ(d) σ(−d)` span many orders of
//! magnitude on agent logs (rare transitions, lopsided pairs near the optimum), which the
//! diagonal (Jacobi) preconditioner does not see: conjugate gradients then need hundreds of
//! iterations per Newton step. Here `M = (1 + ε) D − A_T`, `D` the Hessian's (floored) diagonal
//! and `A_T` the weights of a maximum-weight spanning forest of the undirected pairs (Kruskal,
//! rebuilt at every evaluated point): the strong connections are inverted exactly, the rest
//! stays on the diagonal. `M` is symmetric and diagonally dominant; `ε = 1e-6` makes it strictly
//! so (positive definite) also on components without a ridge, whose Hessian is singular along
//! their constant. A forest has no fill-in: `M` is factored by eliminating leaves first (pivots
//! `d'_p = (1 + ε) D_p − Σ_children c²/d'_child`) and solved in two sweeps, O(states) each.
//! Sequential by nature, so the GPU keeps the diagonal (docs/GPU.md §3.4). The fit's
//! least-squares start (`fit/start.rs`) solves its pairs' Laplacian with it too, on the host.

use crate::backend::problem::ActionProblem;

/// Relative excess of the diagonal over the forest's weights (see the module docs).
const EPSILON: f64 = 1e-6;

pub struct TreePreconditioner {
    /// States of each undirected pair (the two arcs of a reciprocal pair share one), and the
    /// pair of each edge.
    pair_ends: Vec<(u32, u32)>,
    pair_of_edge: Vec<u32>,
    pair_weight: Vec<f64>,
    /// States in breadth-first order of the forest, parents before children.
    order: Vec<u32>,
    /// Parent in the forest (`u32::MAX` for a root) and the weight of the link to it.
    parent: Vec<u32>,
    link: Vec<f64>,
    pivot: Vec<f64>,
}

impl TreePreconditioner {
    pub fn new(problem: &ActionProblem) -> Self {
        let key = |e: usize| {
            let (s, d) = (problem.src[e], problem.dst[e]);
            (s.min(d), s.max(d))
        };
        let mut edges: Vec<u32> = (0..problem.n_edges() as u32).collect();
        edges.sort_unstable_by_key(|&e| key(e as usize));
        let mut pair_ends: Vec<(u32, u32)> = Vec::new();
        let mut pair_of_edge = vec![0u32; problem.n_edges()];
        for &e in &edges {
            let k = key(e as usize);
            if pair_ends.last() != Some(&k) {
                pair_ends.push(k);
            }
            pair_of_edge[e as usize] = pair_ends.len() as u32 - 1;
        }
        let n = problem.n_states;
        TreePreconditioner {
            pair_weight: vec![0.0; pair_ends.len()],
            pair_ends,
            pair_of_edge,
            order: Vec::with_capacity(n),
            parent: vec![u32::MAX; n],
            link: vec![0.0; n],
            pivot: vec![0.0; n],
        }
    }

    /// Builds the forest from the per-edge Hessian weights `curvature` and factors `M` with the
    /// diagonal `diagonal`.
    pub fn factor(&mut self, curvature: &[f64], diagonal: &[f64]) {
        self.pair_weight.iter_mut().for_each(|w| *w = 0.0);
        for (&p, &c) in self.pair_of_edge.iter().zip(curvature) {
            self.pair_weight[p as usize] += c;
        }
        let adjacency = self.spanning_forest(diagonal.len());
        self.breadth_first(&adjacency);
        for (p, d) in self.pivot.iter_mut().zip(diagonal) {
            *p = (1.0 + EPSILON) * d;
        }
        for &f in self.order.iter().rev() {
            let p = self.parent[f as usize];
            if p != u32::MAX {
                let c = self.link[f as usize];
                self.pivot[p as usize] -= c * c / self.pivot[f as usize];
            }
        }
    }

    /// Kruskal: pairs by decreasing weight, joined while they connect two trees. Returns the
    /// forest as adjacency lists `(ptr, (neighbour, weight))`.
    fn spanning_forest(&self, n: usize) -> (Vec<usize>, Vec<(u32, f64)>) {
        let mut by_weight: Vec<u32> = (0..self.pair_ends.len() as u32).collect();
        by_weight.sort_unstable_by(|&a, &b| {
            self.pair_weight[b as usize].total_cmp(&self.pair_weight[a as usize])
        });
        let mut root: Vec<u32> = (0..n as u32).collect();
        let find = |root: &mut Vec<u32>, mut x: u32| {
            while root[x as usize] != x {
                root[x as usize] = root[root[x as usize] as usize];
                x = root[x as usize];
            }
            x
        };
        let mut chosen = Vec::with_capacity(n);
        for p in by_weight {
            let (a, b) = self.pair_ends[p as usize];
            let (ra, rb) = (find(&mut root, a), find(&mut root, b));
            if ra != rb {
                root[ra as usize] = rb;
                chosen.push(p);
            }
        }
        let mut ptr = vec![0usize; n + 1];
        for &p in &chosen {
            let (a, b) = self.pair_ends[p as usize];
            ptr[a as usize + 1] += 1;
            ptr[b as usize + 1] += 1;
        }
        for i in 0..n {
            ptr[i + 1] += ptr[i];
        }
        let mut fill = ptr.clone();
        let mut next = vec![(0u32, 0.0); ptr[n]];
        for &p in &chosen {
            let (a, b) = self.pair_ends[p as usize];
            let w = self.pair_weight[p as usize];
            next[fill[a as usize]] = (b, w);
            fill[a as usize] += 1;
            next[fill[b as usize]] = (a, w);
            fill[b as usize] += 1;
        }
        (ptr, next)
    }

    /// Parents, link weights and a parents-first order of every state.
    fn breadth_first(&mut self, (ptr, next): &(Vec<usize>, Vec<(u32, f64)>)) {
        let n = self.parent.len();
        self.order.clear();
        self.parent.iter_mut().for_each(|p| *p = u32::MAX);
        let mut seen = vec![false; n];
        for root in 0..n {
            if seen[root] {
                continue;
            }
            seen[root] = true;
            let start = self.order.len();
            self.order.push(root as u32);
            let mut head = start;
            while head < self.order.len() {
                let f = self.order[head] as usize;
                head += 1;
                for &(g, w) in &next[ptr[f]..ptr[f + 1]] {
                    if !seen[g as usize] {
                        seen[g as usize] = true;
                        self.parent[g as usize] = f as u32;
                        self.link[g as usize] = w;
                        self.order.push(g);
                    }
                }
            }
        }
    }

    /// `x ← M⁻¹ x`: eliminate leaves first, then substitute from the roots.
    pub fn solve(&self, x: &mut [f64]) {
        for &f in self.order.iter().rev() {
            let p = self.parent[f as usize];
            if p != u32::MAX {
                x[p as usize] += self.link[f as usize] / self.pivot[f as usize] * x[f as usize];
            }
        }
        for &f in &self.order {
            let f = f as usize;
            let p = self.parent[f];
            let from_parent = if p == u32::MAX {
                0.0
            } else {
                self.link[f] * x[p as usize]
            };
            x[f] = (x[f] + from_parent) / self.pivot[f];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a graph that is a tree the preconditioner is the Hessian itself (up to ε): one
    /// application solves the system.
    #[test]
    fn inverts_a_tree_exactly() {
        // A path 0–1–2–3 with a reciprocal pair 1⇄2 (two arcs, one pair).
        let p =
            ActionProblem::new(4, vec![0, 1, 2, 2], vec![1, 2, 1, 3], vec![1.0; 4], 0.0).unwrap();
        let curvature = [0.5, 0.25, 0.75, 2.0];
        let diagonal = [0.5, 1.5, 3.0, 2.0];
        let mut tree = TreePreconditioner::new(&p);
        tree.factor(&curvature, &diagonal);
        let z = [0.3, -1.0, 0.2, 0.7];
        // M z with M = (1 + ε) D − A_T.
        let a = [(0, 1, 0.5), (1, 2, 1.0), (2, 3, 2.0)];
        let mut x: Vec<f64> = z
            .iter()
            .zip(&diagonal)
            .map(|(z, d)| (1.0 + EPSILON) * d * z)
            .collect();
        for (i, j, w) in a {
            x[i] -= w * z[j];
            x[j] -= w * z[i];
        }
        tree.solve(&mut x);
        for (x, z) in x.iter().zip(z) {
            assert!((x - z).abs() < 1e-9, "{x} vs {z}");
        }
    }
}
