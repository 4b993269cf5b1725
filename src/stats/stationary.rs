//! The stationary distribution `π̂` of the estimated kernel on the reciprocal pairs
//! (docs/METHOD.md §5), which the entropy production and its null resamples need.
//!
//! The kernel is `T(f→g) = n(f→g)/N(f)` on the pairs seen both ways (`N` = the out-count, self-
//! and one-way transitions included, so they stay with `f`). On each connected component of
//! those pairs `π̂` solves the balance `π_f r_f = Σ_g π_g T(g→f)`, `r_f = Σ_g T(f→g)`, and sums to
//! the component's share of the transitions.
//!
//! Why not Gauss–Seidel sweeps (the first implementation): they converge at the chain's mixing
//! rate. On agent logs whose reciprocal graph is a long, nearly tree-like web around hubs that is
//! thousands of sweeps (1,632 on a 1e5-row `llm-hard` log; on its 1e6-row twin 7,955 sweeps left
//! an imbalance of 4e-8 after a minute), and the entropy null solves it 40 times more.
//!
//! Here: one state per component (the most visited, its `π` pinned to 1) makes the system
//! `A x = b` non-singular (an M-matrix with the other states' balance rows), solved by GMRES(12)
//! preconditioned with the same system on a maximum-weight spanning forest (weight: the pair's
//! transitions both ways) with the whole diagonal. A forest has no fill-in, so the
//! preconditioner is factored once by eliminating leaves first and applied in two passes,
//! O(states). It is exact on a tree-shaped component (one iteration), and a component with `k`
//! chords differs from it by rank ≤ 2k, so GMRES needs few iterations where a few chords carry
//! the flow. The pivots stay positive: a state's pivot is at least its rate to its parent.

use super::schnakenberg::{Adjacency, PairCounts};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// The solver stops when the relative imbalance of `π̂` is below this (the entropy null's
/// resamples: [`NULL_TOL`])…
pub const STATIONARY_TOL: f64 = 1e-14;
/// The imbalance at which a resample of the entropy null stops, far below what moves its `σ`
/// against the null's spread. On llm-hard-1M against 1e-10: the null mean moves by 1.4e-9
/// relative and `excess_z` in its 7th digit, and the flux stage takes 6.6 s instead of 8.6 s
/// (1e-6 would move `excess_z` in its 5th digit, 4.9 s).
pub const NULL_TOL: f64 = 1e-8;
/// …or when a restart cycle no longer lowers it by a tenth (rounding), or after this many
/// cycles.
const MAX_CYCLES: usize = 200;
/// Krylov vectors per restart cycle: orthogonalising against them costs more than the products
/// themselves, so shorter cycles win (llm-hard-1M flux stage: 14.4 s with 30, 9.3–9.9 s with 12,
/// 10.8–11.1 s with 6).
const RESTART: usize = 12;

/// The estimated kernel restricted to the reciprocal pairs.
pub(super) struct Kernel {
    /// The pairs seen both ways.
    pub pairs: Vec<PairCounts>,
    pub adjacency: Adjacency,
    /// `T(u→v)` and `T(v→u)` of each pair.
    pub rates: Vec<(f64, f64)>,
}

impl Kernel {
    pub fn new(out_count: &[u64], pairs: &[PairCounts]) -> Self {
        let pairs: Vec<PairCounts> = pairs
            .iter()
            .copied()
            .filter(|p| p.2 > 0 && p.3 > 0)
            .collect();
        let ends: Vec<(u32, u32)> = pairs.iter().map(|p| (p.0, p.1)).collect();
        let rates = pairs
            .iter()
            .map(|&(u, v, a, b)| {
                (
                    a as f64 / out_count[u as usize] as f64,
                    b as f64 / out_count[v as usize] as f64,
                )
            })
            .collect();
        Kernel {
            adjacency: Adjacency::new(out_count.len(), &ends),
            pairs,
            rates,
        }
    }

    /// `T(f→g)` and `T(g→f)` of `pair`, seen from its state `f`.
    fn rates_from(&self, f: u32, pair: u32) -> (f64, f64) {
        let (u, (t_uv, t_vu)) = (self.pairs[pair as usize].0, self.rates[pair as usize]);
        if u == f { (t_uv, t_vu) } else { (t_vu, t_uv) }
    }

    /// `Σ_f |inflow(f) − outflow(f)| / Σ_f outflow(f)` under `pi`; 0 without flow.
    pub fn imbalance(&self, pi: &[f64]) -> f64 {
        let (mut imbalance, mut flow) = (0.0, 0.0);
        for f in 0..pi.len() as u32 {
            let (mut inflow, mut outflow) = (0.0, 0.0);
            for &(g, pair) in self.adjacency.of(f) {
                let (out_rate, in_rate) = self.rates_from(f, pair);
                outflow += pi[f as usize] * out_rate;
                inflow += pi[g as usize] * in_rate;
            }
            imbalance += (inflow - outflow).abs();
            flow += outflow;
        }
        if flow > 0.0 { imbalance / flow } else { 0.0 }
    }
}

/// `π̂` and how the solver left it.
pub(super) struct Solution {
    pub pi: Vec<f64>,
    /// [`Kernel::imbalance`] of `pi`.
    pub residual: f64,
    /// Products with the balance matrix (each with one preconditioner solve).
    pub iterations: usize,
}

/// `π̂` of `kernel` on each component of its pairs, summing to the component's share of
/// `out_count`; 0 on states without a reciprocal pair. Iterates from `start` (a distribution
/// of a nearby kernel: the entropy null's resamples start from the observed `π̂`) where it is
/// positive, else from the visits, until the imbalance is at most `tolerance`.
pub(super) fn solve(
    kernel: &Kernel,
    out_count: &[u64],
    start: Option<&[f64]>,
    tolerance: f64,
) -> Solution {
    let chain = Chain::new(kernel, out_count);
    let m = chain.states.len();
    let mut b = vec![0.0; m];
    chain.roots.iter().for_each(|&root| b[root as usize] = 1.0);
    // The visits are stationary already for a balanced log. Roots are pinned to 1.
    let guess = |i: usize| {
        let f = chain.states[i] as usize;
        match start {
            Some(pi) if pi[f] > 0.0 => pi[f],
            _ => out_count[f] as f64,
        }
    };
    let mut x: Vec<f64> = (0..m)
        .map(|i| guess(i) / guess(chain.roots[chain.component[i] as usize] as usize))
        .collect();
    let mut pi = chain.distribution(&x, out_count.len());
    let mut residual = kernel.imbalance(&pi);
    let mut iterations = 0;
    for _ in 0..MAX_CYCLES {
        if residual <= tolerance {
            break;
        }
        iterations += chain.gmres_cycle(&b, &mut x);
        let previous = residual;
        pi = chain.distribution(&x, out_count.len());
        residual = kernel.imbalance(&pi);
        if residual > 0.9 * previous {
            break;
        }
    }
    Solution {
        residual,
        pi,
        iterations,
    }
}

/// The balance system `A x = b` over the states on reciprocal pairs, numbered in the order
/// Prim's algorithm reached them (each component's root first, parents before children): a
/// root's row is `x_f = b_f`, any other `r_f x_f − Σ_g T(g→f) x_g = 0`; with its forest
/// preconditioner.
struct Chain {
    /// The state of each local number.
    states: Vec<u32>,
    /// Per local state, its neighbours `(g, T(g→f))` (`inflow[ptr[f]..ptr[f + 1]]`) and
    /// `r_f = Σ_g T(f→g)`.
    ptr: Vec<usize>,
    inflow: Vec<(u32, f64)>,
    out_rate: Vec<f64>,
    component: Vec<u32>,
    /// The root of each component, and its share of the transitions.
    roots: Vec<u32>,
    shares: Vec<f64>,
    /// The forest: each state's parent ([`ROOT`] for roots), `T(f→p)` and `T(p→f)`.
    parent: Vec<u32>,
    to_parent: Vec<f64>,
    from_parent: Vec<f64>,
    /// Pivots of the forest system after eliminating every state's subtree.
    pivot: Vec<f64>,
}

/// The parent of a component's root.
const ROOT: u32 = u32::MAX;

/// A pair on Prim's frontier: its weight, then its states, for a deterministic order.
#[derive(PartialEq)]
struct Frontier(f64, u32, u32, u32);

impl Eq for Frontier {}

impl Ord for Frontier {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .total_cmp(&other.0)
            .then_with(|| (other.1, other.2).cmp(&(self.1, self.2)))
    }
}

impl PartialOrd for Frontier {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Chain {
    fn new(kernel: &Kernel, out_count: &[u64]) -> Self {
        let n = out_count.len();
        let mut chain = Chain {
            states: Vec::new(),
            ptr: vec![0],
            inflow: Vec::new(),
            out_rate: Vec::new(),
            component: Vec::new(),
            roots: Vec::new(),
            shares: Vec::new(),
            parent: Vec::new(),
            to_parent: Vec::new(),
            from_parent: Vec::new(),
            pivot: Vec::new(),
        };
        let mut local = vec![ROOT; n];
        // Roots by decreasing visits, so each component is rooted at its most visited state.
        let mut by_visits: Vec<u32> = (0..n as u32)
            .filter(|&f| !kernel.adjacency.of(f).is_empty())
            .collect();
        by_visits.sort_by_key(|&f| (std::cmp::Reverse(out_count[f as usize]), f));
        for root in by_visits {
            if local[root as usize] == ROOT {
                chain.grow(kernel, root, out_count, &mut local);
            }
        }
        for (f, &state) in chain.states.iter().enumerate() {
            for &(g, pair) in kernel.adjacency.of(state) {
                let (out, into) = kernel.rates_from(state, pair);
                chain.inflow.push((local[g as usize], into));
                chain.out_rate[f] += out;
            }
            chain.ptr.push(chain.inflow.len());
        }
        let all: f64 = chain.shares.iter().sum();
        chain
            .shares
            .iter_mut()
            .for_each(|s| *s /= all.max(f64::MIN_POSITIVE));
        chain.factor();
        chain
    }

    /// Prim's maximum-weight spanning tree of `root`'s component, numbering its states.
    fn grow(&mut self, kernel: &Kernel, root: u32, out_count: &[u64], local: &mut [u32]) {
        let c = self.roots.len() as u32;
        self.roots.push(self.states.len() as u32);
        let mut total = 0.0;
        let mut heap = BinaryHeap::new();
        let mut next = Some((root, ROOT, (0.0, 0.0)));
        while let Some((f, parent, (to_parent, from_parent))) = next.take() {
            local[f as usize] = self.states.len() as u32;
            self.states.push(f);
            self.component.push(c);
            self.parent.push(parent);
            self.to_parent.push(to_parent);
            self.from_parent.push(from_parent);
            self.out_rate.push(0.0);
            total += out_count[f as usize] as f64;
            for &(g, pair) in kernel.adjacency.of(f) {
                if local[g as usize] == ROOT {
                    let (_, _, a, b) = kernel.pairs[pair as usize];
                    heap.push(Frontier((a + b) as f64, f, g, pair));
                }
            }
            while let Some(Frontier(_, p, g, pair)) = heap.pop() {
                if local[g as usize] == ROOT {
                    next = Some((g, local[p as usize], kernel.rates_from(g, pair)));
                    break;
                }
            }
        }
        self.shares.push(total);
    }

    /// Eliminates leaves first: a child `f` of a non-root `p` lowers `p`'s pivot by
    /// `T(f→p) T(p→f) / pivot_f`.
    fn factor(&mut self) {
        self.pivot = (0..self.states.len())
            .map(|f| {
                if self.parent[f] == ROOT {
                    1.0
                } else {
                    self.out_rate[f]
                }
            })
            .collect();
        for f in (0..self.states.len()).rev() {
            let p = self.parent[f];
            if p != ROOT && self.parent[p as usize] != ROOT {
                self.pivot[p as usize] -= self.to_parent[f] * self.from_parent[f] / self.pivot[f];
            }
        }
    }

    /// `A x`.
    fn apply(&self, x: &[f64], y: &mut [f64]) {
        for (f, y_f) in y.iter_mut().enumerate() {
            *y_f = if self.parent[f] == ROOT {
                x[f]
            } else {
                let entries = &self.inflow[self.ptr[f]..self.ptr[f + 1]];
                let inflow: f64 = entries.iter().map(|&(g, t)| x[g as usize] * t).sum();
                self.out_rate[f] * x[f] - inflow
            };
        }
    }

    /// `z = M⁻¹ y` for the forest system `M`, in place.
    fn precondition(&self, z: &mut [f64]) {
        for f in (0..z.len()).rev() {
            let p = self.parent[f];
            if p != ROOT && self.parent[p as usize] != ROOT {
                z[p as usize] += self.to_parent[f] / self.pivot[f] * z[f];
            }
        }
        for f in 0..z.len() {
            let p = self.parent[f];
            let from_parent = if p == ROOT {
                0.0
            } else {
                self.from_parent[f] * z[p as usize]
            };
            z[f] = (z[f] + from_parent) / self.pivot[f];
        }
    }

    /// `x` scaled so that each component sums to its share, on all `n` states (0 on states on
    /// no pair).
    fn distribution(&self, x: &[f64], n: usize) -> Vec<f64> {
        let mut sums = vec![0.0; self.shares.len()];
        for (x, &c) in x.iter().zip(&self.component) {
            sums[c as usize] += x;
        }
        let mut pi = vec![0.0; n];
        for ((x, &c), &f) in x.iter().zip(&self.component).zip(&self.states) {
            pi[f as usize] = x * self.shares[c as usize] / sums[c as usize];
        }
        pi
    }

    /// One restart cycle of right-preconditioned GMRES (Saad, Iterative Methods for Sparse
    /// Linear Systems, §9.3.2) from `x`; returns the products with `A` it took.
    fn gmres_cycle(&self, b: &[f64], x: &mut [f64]) -> usize {
        let n = x.len();
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(a, b)| a * b).sum::<f64>();
        let mut r = vec![0.0; n];
        self.apply(x, &mut r);
        r.iter_mut().zip(b).for_each(|(r, b)| *r = b - *r);
        let beta = dot(&r, &r).sqrt();
        if beta == 0.0 {
            return 1;
        }
        let floor = 1e-15 * beta;
        let mut basis = vec![r.iter().map(|r| r / beta).collect::<Vec<f64>>()];
        // Hessenberg columns, already rotated; the rotations; the rotated right-hand side.
        let mut h: Vec<Vec<f64>> = Vec::new();
        let mut rotations: Vec<(f64, f64)> = Vec::new();
        let mut g = vec![beta];
        let mut w = vec![0.0; n];
        for j in 0..RESTART {
            let mut z = basis[j].clone();
            self.precondition(&mut z);
            self.apply(&z, &mut w);
            let mut column = Vec::with_capacity(j + 2);
            for v in &basis {
                let c = dot(&w, v);
                w.iter_mut().zip(v).for_each(|(w, v)| *w -= c * v);
                column.push(c);
            }
            let norm = dot(&w, &w).sqrt();
            column.push(norm);
            for (i, &(c, s)) in rotations.iter().enumerate() {
                let (a, b) = (column[i], column[i + 1]);
                column[i] = c * a + s * b;
                column[i + 1] = c * b - s * a;
            }
            let (a, b) = (column[j], column[j + 1]);
            let radius = a.hypot(b);
            let (c, s) = if radius > 0.0 {
                (a / radius, b / radius)
            } else {
                (1.0, 0.0)
            };
            column[j] = radius;
            column[j + 1] = 0.0;
            rotations.push((c, s));
            g.push(-s * g[j]);
            g[j] *= c;
            h.push(column);
            if g[j + 1].abs() <= floor || norm == 0.0 {
                break;
            }
            basis.push(w.iter().map(|w| w / norm).collect());
        }
        // y = H⁻¹ g (upper triangular), then x += M⁻¹ (V y).
        let k = h.len();
        let mut y = vec![0.0; k];
        for i in (0..k).rev() {
            let tail: f64 = (i + 1..k).map(|l| h[l][i] * y[l]).sum();
            y[i] = (g[i] - tail) / h[i][i];
        }
        let mut update = vec![0.0; n];
        for (v, y) in basis.iter().zip(&y) {
            update.iter_mut().zip(v).for_each(|(u, v)| *u += y * v);
        }
        self.precondition(&mut update);
        x.iter_mut().zip(&update).for_each(|(x, u)| *x += u);
        k + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts `(u, v, n(u→v), n(v→u))` with `out_count` = the transitions out of each state.
    fn chain(n: usize, pairs: &[PairCounts]) -> (Vec<u64>, Kernel) {
        let mut out_count = vec![0u64; n];
        for &(u, v, a, b) in pairs {
            out_count[u as usize] += a;
            out_count[v as usize] += b;
        }
        let kernel = Kernel::new(&out_count, pairs);
        (out_count, kernel)
    }

    /// A path is a tree: the forest system is the balance system, so one Krylov step solves it.
    #[test]
    fn a_tree_is_solved_by_its_preconditioner_in_one_step() {
        let pairs: Vec<PairCounts> = (0..50u32)
            .map(|i| (i, i + 1, 3 + u64::from(i % 7), 2 + u64::from(i % 5)))
            .collect();
        let (out_count, kernel) = chain(51, &pairs);
        let s = solve(&kernel, &out_count, None, STATIONARY_TOL);
        assert!(s.residual <= STATIONARY_TOL, "{}", s.residual);
        assert!(
            s.iterations <= 3,
            "{} products, residual {:e}",
            s.iterations,
            s.residual
        );
        // On a tree the stationary chain is reversible: π_u T(u→v) = π_v T(v→u) on every pair,
        // to the tolerance of the whole flow.
        let flux = |(&(u, v, _, _), &(t_uv, t_vu)): (&PairCounts, &(f64, f64))| {
            (s.pi[u as usize] * t_uv, s.pi[v as usize] * t_vu)
        };
        let flow: f64 = kernel
            .pairs
            .iter()
            .zip(&kernel.rates)
            .map(|p| flux(p).0)
            .sum();
        for pair in kernel.pairs.iter().zip(&kernel.rates) {
            let (forward, backward) = flux(pair);
            assert!(
                (forward - backward).abs() <= STATIONARY_TOL * flow,
                "{pair:?}"
            );
        }
    }

    /// Components (a driven cycle with chords, a hub with spokes, a lone pair) and states on no
    /// pair: balanced to the tolerance, positive, each component summing to its share.
    #[test]
    fn components_are_balanced_and_weighted_by_their_transitions() {
        let mut pairs: Vec<PairCounts> = (0..40u32)
            .map(|i| (i, (i + 1) % 40, 9 + u64::from(i % 4), 1 + u64::from(i % 3)))
            .collect();
        pairs.extend((0..40u32).step_by(7).map(|i| (i, (i + 13) % 40, 4, 5)));
        pairs.extend((41..90u32).map(|i| (40, i, 2 + u64::from(i % 9), 1 + u64::from(i % 2))));
        pairs.push((90, 91, 5, 3));
        pairs.push((92, 93, 7, 0)); // one-way: no pair of the kernel
        let (out_count, kernel) = chain(94, &pairs);
        let s = solve(&kernel, &out_count, None, STATIONARY_TOL);
        assert!(s.residual <= STATIONARY_TOL, "{}", s.residual);
        let total: u64 = out_count[..92].iter().sum();
        for states in [0..40, 40..90, 90..92] {
            let share = out_count[states.clone()].iter().sum::<u64>() as f64 / total as f64;
            let mass: f64 = s.pi[states.clone()].iter().sum();
            assert!(
                (mass - share).abs() <= 1e-14,
                "{states:?}: {mass} vs {share}"
            );
            assert!(s.pi[states].iter().all(|&p| p > 0.0));
        }
        assert_eq!(&s.pi[92..], &[0.0, 0.0]);
    }
}
