//! The CPU's preconditioner for Newton–CG: a maximum-weight spanning forest of the Hessian's
//! graph, solved exactly (Vaidya's idea, with the diagonal kept whole).
//!
//! The Hessian is a graph Laplacian whose edge weights `c = w σ(d) σ(−d)` span many orders of
//! magnitude on agent logs (rare transitions, lopsided pairs near the optimum), which the
//! diagonal (Jacobi) preconditioner does not see: conjugate gradients then need hundreds of
//! iterations per Newton step. Here `M = (1 + ε) D − A_T`, `D` the Hessian's (floored) diagonal
//! and `A_T` the weights of a maximum-weight spanning forest of the undirected pairs (Kruskal,
//! rebuilt as the weights change; the pairs and their weights are the [`Laplacian`]'s entries): the strong connections are inverted exactly, the rest
//! stays on the diagonal. `M` is symmetric and diagonally dominant; `ε = 1e-6` makes it strictly
//! so (positive definite) also on components without a ridge, whose Hessian is singular along
//! their constant. A forest has no fill-in: `M` is factored by eliminating leaves first (pivots
//! `d'_p = (1 + ε) D_p − Σ_children c²/d'_child`) and solved in two sweeps, O(states) each.
//! Sequential by nature, so the GPU keeps the diagonal (docs/GPU.md §3.4). The fit's
//! least-squares start (`fit/start.rs`) solves its pairs' Laplacian with it too, on the host.
//!
//! The forest is kept from one evaluated point to the next while no pair's weight has changed by
//! more than a factor [`REUSE`] since it was built; only the pivots are recomputed, O(states).
//! The conjugate gradients hardly notice a forest that is no longer the maximum one: on llm-hard-1M
//! the fit's products stay at 83 for any factor from 1.25 to 256 (106 with the first forest kept
//! throughout), while each rebuild costs about two products.
//!
//! Linear in the edges on large graphs, where the states' arrays outgrow the caches (measured:
//! BENCHMARKS.md, "Fitting the hard log"): Kruskal's order is a counting sort on the weights'
//! exponent and leading mantissa bits ([`KEY_SHIFT`]: the forest is a maximum spanning forest
//! for weights rounded to 0.4 %) that carries the pairs' ends, so the scan reads them in
//! sequence, and it stops once the forest is complete (union by rank; a rebuild reuses its work
//! space and clears only the buckets between the least and greatest key); the factor is stored by forest position
//! (breadth first), so the sweeps read it in sequence and a solve gathers `x` into that order
//! once and scatters it back once.

use super::laplacian::Laplacian;
use crate::backend::problem::ActionProblem;
use crate::graph::DisjointSets;

/// Relative excess of the diagonal over the forest's weights (see the module docs).
const EPSILON: f64 = 1e-6;

/// Kruskal's sort key of a weight `c ≥ 0`: its bits above `KEY_SHIFT` (exponent and 8 mantissa
/// bits), `2^19` keys for the non-negative doubles.
const KEY_SHIFT: u32 = 44;
const KEYS: usize = 1 << (63 - KEY_SHIFT);

/// The largest change of a pair's weight, as a factor, for which the forest is kept (measured:
/// BENCHMARKS.md, "Keeping the forest longer").
const REUSE: f64 = 16.0;

pub struct TreePreconditioner {
    /// States of each undirected pair in `(lo, hi)` order, its entry in the Laplacian and its
    /// weight there.
    pair_ends: Vec<(u32, u32)>,
    pair_entry: Vec<u32>,
    pair_weight: Vec<f64>,
    /// The pairs' weights when the forest was built (empty before the first build).
    built_weight: Vec<f64>,
    /// Links of a spanning forest of the pairs: states less connected components.
    links: usize,
    /// Counting-sort buckets and the pairs `(ends, pair)` in decreasing order of key.
    bucket: Vec<u32>,
    by_weight: Vec<(u32, u32, u32)>,
    /// The state at each forest position: breadth first, parents before children.
    order: Vec<u32>,
    /// By position: the parent's position (its own for a root), the pair linking them
    /// (`u32::MAX` for a root), `link/pivot` (0 for a root) and `1/pivot`.
    parent: Vec<u32>,
    link_pair: Vec<u32>,
    ratio: Vec<f64>,
    inverse_pivot: Vec<f64>,
    /// `x` in forest positions, during a solve.
    work: Vec<f64>,
    rebuild: Rebuild,
}

/// A rebuild's work space, kept from one rebuild to the next.
#[derive(Default)]
struct Rebuild {
    /// Union–find over the states.
    sets: DisjointSets,
    /// Each state's next slot in `next` while the adjacency lists are filled.
    fill: Vec<u32>,
    /// The links `(a, b, pair)` in the order Kruskal chose them.
    chosen: Vec<(u32, u32, u32)>,
    /// The forest's adjacency lists: CSR over states of `(neighbour, pair)`.
    ptr: Vec<u32>,
    next: Vec<(u32, u32)>,
    /// States reached by the breadth-first walk.
    seen: Vec<bool>,
}

impl TreePreconditioner {
    /// The preconditioner over the pairs of `laplacian`, the Hessian's graph of `problem`.
    pub fn new(problem: &ActionProblem, laplacian: &Laplacian) -> Self {
        let (pair_ends, pair_entry): (Vec<(u32, u32)>, Vec<u32>) =
            laplacian.pairs().map(|(a, b, k)| ((a, b), k)).unzip();
        let n = problem.n_states;
        TreePreconditioner {
            pair_weight: vec![0.0; pair_ends.len()],
            built_weight: Vec::new(),
            links: n - problem.n_components,
            bucket: vec![0; KEYS + 1],
            by_weight: vec![(0, 0, 0); pair_ends.len()],
            pair_ends,
            pair_entry,
            order: Vec::with_capacity(n),
            parent: vec![0; n],
            link_pair: vec![u32::MAX; n],
            ratio: vec![0.0; n],
            inverse_pivot: vec![0.0; n],
            work: vec![0.0; n],
            rebuild: Rebuild::default(),
        }
    }

    /// Builds the forest from the pairs' weights in `laplacian` and factors `M` with the
    /// diagonal `diagonal`.
    pub fn factor(&mut self, laplacian: &Laplacian, diagonal: &[f64]) {
        for (w, &k) in self.pair_weight.iter_mut().zip(&self.pair_entry) {
            *w = laplacian.weight(k);
        }
        if !self.forest_holds() {
            self.sort_pairs();
            self.spanning_forest();
            self.breadth_first();
            self.built_weight.clone_from(&self.pair_weight);
        }
        // Each position's link weight, then `link/pivot` once the pivots are known.
        for (r, &p) in self.ratio.iter_mut().zip(&self.link_pair) {
            *r = if p == u32::MAX {
                0.0
            } else {
                self.pair_weight[p as usize]
            };
        }
        let pivot = &mut self.inverse_pivot;
        for (p, &f) in pivot.iter_mut().zip(&self.order) {
            *p = (1.0 + EPSILON) * diagonal[f as usize];
        }
        for i in (0..pivot.len()).rev() {
            let (p, c) = (self.parent[i] as usize, self.ratio[i]);
            if p != i {
                pivot[p] -= c * c / pivot[i];
            }
        }
        for (r, p) in self.ratio.iter_mut().zip(pivot.iter_mut()) {
            *r /= *p;
            *p = 1.0 / *p;
        }
    }

    /// Whether the forest built last is kept ([`REUSE`]).
    fn forest_holds(&self) -> bool {
        self.built_weight.len() == self.pair_weight.len()
            && (self.pair_weight.iter().zip(&self.built_weight))
                .all(|(&c, &b)| c <= REUSE * b && b <= REUSE * c)
    }

    /// Counting sort of the pairs by decreasing key ([`KEY_SHIFT`]) into `by_weight`; pairs of
    /// one key stay in pair order. Only the buckets between the least and the greatest key
    /// present are cleared and summed.
    fn sort_pairs(&mut self) {
        let key = |w: f64| {
            let bits = if w > 0.0 { w.to_bits() >> KEY_SHIFT } else { 0 };
            KEYS - 1 - bits as usize
        };
        let (low, high) =
            (self.pair_weight.iter()).fold((KEYS, 0), |(l, h), &w| (l.min(key(w)), h.max(key(w))));
        if low > high {
            return;
        }
        let bucket = &mut self.bucket[low..=high + 1];
        bucket.iter_mut().for_each(|b| *b = 0);
        for &w in &self.pair_weight {
            bucket[key(w) - low + 1] += 1;
        }
        for k in 0..high - low {
            bucket[k + 1] += bucket[k];
        }
        let pairs = self.pair_ends.iter().zip(&self.pair_weight);
        for (p, (&(a, b), &w)) in pairs.enumerate() {
            let slot = &mut bucket[key(w) - low];
            self.by_weight[*slot as usize] = (a, b, p as u32);
            *slot += 1;
        }
    }

    /// Kruskal: pairs by decreasing key, joined while they connect two trees, until the forest
    /// has all its links; then the forest as adjacency lists (`rebuild.ptr`, `rebuild.next`:
    /// `(neighbour, pair)` in the order the links were chosen).
    fn spanning_forest(&mut self) {
        let Rebuild {
            sets,
            fill,
            chosen,
            ptr,
            next,
            ..
        } = &mut self.rebuild;
        let n = self.parent.len();
        sets.reset(n);
        chosen.clear();
        for &(a, b, p) in &self.by_weight {
            if chosen.len() == self.links {
                break;
            }
            if sets.union(a, b) {
                chosen.push((a, b, p));
            }
        }
        ptr.clear();
        ptr.resize(n + 1, 0);
        for &(a, b, _) in chosen.iter() {
            ptr[a as usize + 1] += 1;
            ptr[b as usize + 1] += 1;
        }
        for i in 0..n {
            ptr[i + 1] += ptr[i];
        }
        next.clear();
        next.resize(2 * chosen.len(), (0, 0));
        fill.clear();
        fill.extend_from_slice(&ptr[..n]);
        for &(a, b, p) in chosen.iter() {
            next[fill[a as usize] as usize] = (b, p);
            fill[a as usize] += 1;
            next[fill[b as usize] as usize] = (a, p);
            fill[b as usize] += 1;
        }
    }

    /// The positions: `order`, and each position's parent position and link.
    fn breadth_first(&mut self) {
        let Rebuild {
            ptr, next, seen, ..
        } = &mut self.rebuild;
        let n = self.parent.len();
        self.order.clear();
        seen.clear();
        seen.resize(n, false);
        for root in 0..n {
            if seen[root] {
                continue;
            }
            seen[root] = true;
            let mut head = self.order.len();
            self.parent[head] = head as u32;
            self.link_pair[head] = u32::MAX;
            self.order.push(root as u32);
            while head < self.order.len() {
                let f = self.order[head] as usize;
                for &(g, p) in &next[ptr[f] as usize..ptr[f + 1] as usize] {
                    if !seen[g as usize] {
                        seen[g as usize] = true;
                        let at = self.order.len();
                        self.parent[at] = head as u32;
                        self.link_pair[at] = p;
                        self.order.push(g);
                    }
                }
                head += 1;
            }
        }
    }

    /// `x ← M⁻¹ x`: eliminate leaves first, then substitute from the roots, in forest positions.
    pub fn solve(&mut self, x: &mut [f64]) {
        let mut work = std::mem::take(&mut self.work);
        self.solve_many::<1>(
            bytemuck::cast_slice_mut(x),
            bytemuck::cast_slice_mut(&mut work),
        );
        self.work = work;
    }

    /// The diagonal of `M⁻¹`, per state, in O(states): with `M = L Δ Lᵀ` eliminating leaves
    /// first, `(M⁻¹)_ii = 1/Δ_i + r_i² (M⁻¹)_pp` for a state `i` with parent `p` and link ratio
    /// `r_i` (Takahashi's recurrence on a forest), roots first.
    pub fn inverse_diagonal(&self) -> Vec<f64> {
        let mut by_position = vec![0.0; self.order.len()];
        for i in 0..by_position.len() {
            let p = self.parent[i] as usize;
            let from_parent = if p == i { 0.0 } else { by_position[p] };
            by_position[i] = self.inverse_pivot[i] + self.ratio[i].powi(2) * from_parent;
        }
        let mut diagonal = vec![0.0; by_position.len()];
        for (d, &f) in by_position.iter().zip(&self.order) {
            diagonal[f as usize] = *d;
        }
        diagonal
    }

    /// [`Self::solve`] on `B` vectors at once, stored state by state as in
    /// [`Laplacian::product_many`], with the caller's work space (one entry per state), so that
    /// several solves can share one factorisation. Each vector's result is the same to the bit
    /// as alone.
    pub fn solve_many<const B: usize>(&self, x: &mut [[f64; B]], y: &mut [[f64; B]]) {
        for (y, &f) in y.iter_mut().zip(&self.order) {
            *y = x[f as usize];
        }
        self.solve_in_positions(y);
        for (y, &f) in y.iter().zip(&self.order) {
            x[f as usize] = *y;
        }
    }

    /// The state at each forest position: a numbering in which [`Self::solve_in_positions`]
    /// needs no gather and whose tree neighbours are close (parents before children, siblings
    /// together).
    pub fn positions(&self) -> &[u32] {
        &self.order
    }

    /// `y ← M⁻¹ y` for `y` numbered by forest position ([`Self::positions`]): two sweeps.
    pub fn solve_in_positions<const B: usize>(&self, y: &mut [[f64; B]]) {
        for i in (0..y.len()).rev() {
            let (p, r, child) = (self.parent[i] as usize, self.ratio[i], y[i]);
            for (to, from) in y[p].iter_mut().zip(child) {
                *to += r * from;
            }
        }
        for i in 0..y.len() {
            let (r, pivot, parent) = (
                self.ratio[i],
                self.inverse_pivot[i],
                y[self.parent[i] as usize],
            );
            for (y, from) in y[i].iter_mut().zip(parent) {
                *y = *y * pivot + r * from;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preconditioner(p: &ActionProblem) -> (TreePreconditioner, Laplacian) {
        let lap = Laplacian::new(p);
        (TreePreconditioner::new(p, &lap), lap)
    }

    /// Factors with per-arc Hessian weights `curvature`.
    fn factor(tree: &mut TreePreconditioner, lap: &mut Laplacian, curvature: &[f64], d: &[f64]) {
        lap.set_weights(curvature);
        tree.factor(lap, d);
    }

    /// On a graph that is a tree the preconditioner is the Hessian itself (up to ε): one
    /// application solves the system.
    #[test]
    fn inverts_a_tree_exactly() {
        // A path 0–1–2–3 with a reciprocal pair 1⇄2 (two arcs, one pair).
        let p =
            ActionProblem::new(4, vec![0, 1, 2, 2], vec![1, 2, 1, 3], vec![1.0; 4], 0.0).unwrap();
        let curvature = [0.5, 0.25, 0.75, 2.0];
        let diagonal = [0.5, 1.5, 3.0, 2.0];
        let (mut tree, mut lap) = preconditioner(&p);
        factor(&mut tree, &mut lap, &curvature, &diagonal);
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

    /// Applies `M⁻¹` to `M z`, `M = (1 + ε) D − A` with `A` the given forest's links, and checks
    /// that `z` comes back.
    fn assert_inverts(tree: &mut TreePreconditioner, links: &[(usize, usize, f64)], d: &[f64]) {
        let z: Vec<f64> = (0..d.len()).map(|i| (i as f64 * 0.7).sin() + 0.1).collect();
        let mut x: Vec<f64> = z
            .iter()
            .zip(d)
            .map(|(z, d)| (1.0 + EPSILON) * d * z)
            .collect();
        for &(i, j, w) in links {
            x[i] -= w * z[j];
            x[j] -= w * z[i];
        }
        tree.solve(&mut x);
        for (x, z) in x.iter().zip(z) {
            assert!((x - z).abs() < 1e-12, "{x} vs {z}");
        }
    }

    /// The recurrence's diagonal is that of `M⁻¹`, column by column: on a triangle with a tail
    /// (the forest drops one pair) and a second component.
    #[test]
    fn inverse_diagonal_is_that_of_the_inverse() {
        let p = ActionProblem::new(
            6,
            vec![0, 1, 0, 2, 4],
            vec![1, 2, 2, 3, 5],
            vec![1.0; 5],
            0.0,
        )
        .unwrap();
        let diagonal = [4.0, 5.0, 6.0, 2.5, 8.0, 1.5];
        let (mut tree, mut lap) = preconditioner(&p);
        factor(&mut tree, &mut lap, &[1.0, 3.0, 2.0, 1.5, 0.7], &diagonal);
        let inverse = tree.inverse_diagonal();
        for f in 0..6 {
            let mut column = vec![0.0; 6];
            column[f] = 1.0;
            tree.solve(&mut column);
            assert!(
                (column[f] - inverse[f]).abs() < 1e-14 * column[f],
                "{f}: {} vs {}",
                column[f],
                inverse[f]
            );
        }
    }

    /// On a triangle the forest keeps the two strongest pairs (not the weakest, 0–1); a second
    /// component and an isolated state are trees of their own. The forest is kept while the
    /// weights change by less than `REUSE` (its links' new weights used), rebuilt after.
    #[test]
    fn keeps_the_strongest_pairs_of_a_cycle() {
        let p =
            ActionProblem::new(6, vec![0, 1, 0, 3], vec![1, 2, 2, 4], vec![1.0; 4], 0.0).unwrap();
        let diagonal = [4.0, 5.0, 6.0, 7.0, 8.0, 1.0];
        let (mut tree, mut lap) = preconditioner(&p);
        assert_eq!(tree.links, 3);
        factor(&mut tree, &mut lap, &[1.0, 3.0, 2.0, 5.0], &diagonal);
        assert_inverts(
            &mut tree,
            &[(1, 2, 3.0), (0, 2, 2.0), (3, 4, 5.0)],
            &diagonal,
        );
        // 0–1 now outweighs 0–2, but within REUSE of before: the same forest.
        factor(&mut tree, &mut lap, &[8.0, 3.3, 1.9, 5.0], &diagonal);
        assert_inverts(
            &mut tree,
            &[(1, 2, 3.3), (0, 2, 1.9), (3, 4, 5.0)],
            &diagonal,
        );
        // 0–1 has grown by more than REUSE: rebuilt.
        factor(&mut tree, &mut lap, &[20.0, 3.0, 2.0, 5.0], &diagonal);
        assert_inverts(
            &mut tree,
            &[(0, 1, 20.0), (1, 2, 3.0), (3, 4, 5.0)],
            &diagonal,
        );
    }
}
