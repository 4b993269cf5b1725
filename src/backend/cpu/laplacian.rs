//! The action's Hessian for the CPU fit, `λ I + L_c`, `L_c` the graph Laplacian with arc weights
//! `c_e = w_e K''(d_e)`, held as a symmetric CSR over the undirected pairs: per state its
//! neighbours in increasing order, the two arcs of a reciprocal pair merged into one entry whose
//! weight is their sum, self-loops left out (they do not enter the Hessian).
//!
//! A Hessian–vector product is then one node-parallel pass that reads each state's entries in
//! sequence, `out_f = λ v_f + Σ_g c_fg (v_f − v_g)`: no per-arc flows written and gathered back,
//! and half the entries where the pairs are reciprocal. The pairs' weights are summed from the
//! arcs' once per evaluation ([`Laplacian::set_weights`]); the spanning-forest preconditioner
//! reads them too. The upper entries (`f < g`) in CSR order are the pairs in `(lo, hi)` order.
//!
//! The product is not compensated (the gradient is, see `edge_action`): conjugate gradients only
//! need it to a few digits. It is summed per pair, not per arc as the GPU's `hessian_edge` +
//! `gather_gradient` are; the two agree within `tolerance::hessian_product` (`--verify`).

use crate::backend::problem::ActionProblem;
use rayon::prelude::*;

/// States per parallel task when building and multiplying (results do not depend on it).
const CHUNK: usize = 1 << 12;
/// Entries per parallel task when summing the pairs' weights.
const ENTRY_CHUNK: usize = 1 << 14;
/// Why weights cannot be set after [`Laplacian::forget_arcs`].
const FORGOTTEN: &str = "the Laplacian's arcs were forgotten: its weights are final";

pub struct Laplacian {
    l2: f64,
    /// CSR over states into the entries: `ptr[f]..ptr[f + 1]`.
    ptr: Vec<u32>,
    neighbour: Vec<u32>,
    /// Per entry its arcs, `arcs[arc_ptr[k]..arc_ptr[k + 1]]`, in increasing order.
    arc_ptr: Vec<u32>,
    arcs: Vec<u32>,
    /// Per entry the pair's weight, `Σ_arcs c_e` at the last [`Laplacian::set_weights`].
    weight: Vec<f64>,
}

/// One chunk of states' entries while building.
#[derive(Default)]
struct Part {
    degree: Vec<u32>,
    neighbour: Vec<u32>,
    arc_count: Vec<u32>,
    arcs: Vec<u32>,
}

impl Laplacian {
    /// The pairs of `problem`'s edges; weights 0 until [`Laplacian::set_weights`].
    pub fn new(problem: &ActionProblem) -> Self {
        let n = problem.n_states;
        let parts: Vec<Part> = (0..n.div_ceil(CHUNK))
            .into_par_iter()
            .map(|chunk| {
                let mut part = Part::default();
                let mut list: Vec<(u32, u32)> = Vec::new();
                for f in chunk * CHUNK..((chunk + 1) * CHUNK).min(n) {
                    list.clear();
                    list.extend(
                        (problem.incident(f).iter())
                            .map(|&entry| (problem.other_end(entry) as u32, entry >> 1))
                            .filter(|&(g, _)| g as usize != f),
                    );
                    list.sort_unstable();
                    let before = part.neighbour.len();
                    for (i, &(g, e)) in list.iter().enumerate() {
                        if i == 0 || list[i - 1].0 != g {
                            part.neighbour.push(g);
                            part.arc_count.push(0);
                        }
                        *part.arc_count.last_mut().expect("pushed") += 1;
                        part.arcs.push(e);
                    }
                    part.degree.push((part.neighbour.len() - before) as u32);
                }
                part
            })
            .collect();
        let prefix = |counts: &mut dyn Iterator<Item = u32>| {
            let mut sums = vec![0u32];
            for c in counts {
                sums.push(sums.last().expect("non-empty") + c);
            }
            sums
        };
        let ptr = prefix(&mut parts.iter().flat_map(|p| p.degree.iter().copied()));
        let arc_ptr = prefix(&mut parts.iter().flat_map(|p| p.arc_count.iter().copied()));
        let concat = |field: fn(&Part) -> &Vec<u32>| -> Vec<u32> {
            parts
                .iter()
                .flat_map(|p| field(p).iter().copied())
                .collect()
        };
        let neighbour = concat(|p| &p.neighbour);
        let arcs = concat(|p| &p.arcs);
        Laplacian {
            l2: problem.l2,
            weight: vec![0.0; neighbour.len()],
            ptr,
            neighbour,
            arc_ptr,
            arcs,
        }
    }

    /// Sets each pair's weight to the sum of its arcs' `arc_weight` (in arc order).
    pub fn set_weights(&mut self, arc_weight: &[f64]) {
        assert!(self.arc_ptr.len() == self.weight.len() + 1, "{FORGOTTEN}");
        let (arc_ptr, arcs) = (&self.arc_ptr, &self.arcs);
        (self.weight.par_chunks_mut(ENTRY_CHUNK).enumerate()).for_each(|(chunk, weight)| {
            for (i, w) in weight.iter_mut().enumerate() {
                let k = chunk * ENTRY_CHUNK + i;
                let range = arc_ptr[k] as usize..arc_ptr[k + 1] as usize;
                *w = arcs[range]
                    .iter()
                    .fold(0.0, |s, &e| s + arc_weight[e as usize]);
            }
        });
    }

    /// Sets the weight of each entry of each state `f` to `weight(f, neighbour, arcs)`, in
    /// sequence; `weight` must be symmetric in `f` and its neighbour.
    pub fn set_weights_by(&mut self, mut weight: impl FnMut(usize, usize, &[u32]) -> f64) {
        assert!(self.arc_ptr.len() == self.weight.len() + 1, "{FORGOTTEN}");
        for f in 0..self.ptr.len() - 1 {
            for k in self.ptr[f] as usize..self.ptr[f + 1] as usize {
                let arcs = &self.arcs[self.arc_ptr[k] as usize..self.arc_ptr[k + 1] as usize];
                self.weight[k] = weight(f, self.neighbour[k] as usize, arcs);
            }
        }
    }

    /// Frees the entries' arc lists, which only setting the weights reads, for a Laplacian whose
    /// weights are final (the posterior's probes: 57 MB off llm-hard-10M's peak).
    pub fn forget_arcs(&mut self) {
        self.arc_ptr = Vec::new();
        self.arcs = Vec::new();
    }

    /// This Laplacian with its states renumbered, state `i` being `order[i]` here, each state's
    /// neighbours in increasing new numbers; the weights are final ([`Self::forget_arcs`]).
    pub fn permuted(&self, order: &[u32]) -> Laplacian {
        let mut new_number = vec![0u32; order.len()];
        for (i, &f) in order.iter().enumerate() {
            new_number[f as usize] = i as u32;
        }
        let mut ptr = Vec::with_capacity(order.len() + 1);
        ptr.push(0u32);
        let (mut neighbour, mut weight) = (Vec::new(), Vec::new());
        let mut row: Vec<(u32, f64)> = Vec::new();
        for &f in order {
            row.clear();
            row.extend((self.entries(f as usize)).map(|(_, g, c)| (new_number[g], c)));
            row.sort_unstable_by_key(|e| e.0);
            neighbour.extend(row.iter().map(|e| e.0));
            weight.extend(row.iter().map(|e| e.1));
            ptr.push(neighbour.len() as u32);
        }
        Laplacian {
            l2: self.l2,
            ptr,
            neighbour,
            arc_ptr: Vec::new(),
            arcs: Vec::new(),
            weight,
        }
    }

    /// The entries of state `f` with their weights: `(entry, neighbour, weight)`, neighbours
    /// increasing.
    pub fn entries(&self, f: usize) -> impl Iterator<Item = (usize, usize, f64)> + '_ {
        (self.ptr[f] as usize..self.ptr[f + 1] as usize)
            .map(move |k| (k, self.neighbour[k] as usize, self.weight[k]))
    }

    /// `out ← (λ I + L_c) v` with the weights set last.
    pub fn product(&self, v: &[f64], out: &mut [f64]) {
        self.product_many::<1>(bytemuck::cast_slice(v), bytemuck::cast_slice_mut(out));
    }

    /// [`Self::product`] on `B` vectors at once, stored state by state (`v[f][j]`: vector `j` at
    /// state `f`): each entry and each neighbour's cache line is read once for all `B`. Each
    /// vector's sums are formed in the same order as by [`Self::product`], so the results are
    /// the same to the bit.
    pub fn product_many<const B: usize>(&self, v: &[[f64; B]], out: &mut [[f64; B]]) {
        out.par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(chunk, out)| {
                for (i, o) in out.iter_mut().enumerate() {
                    let f = chunk * CHUNK + i;
                    let range = self.ptr[f] as usize..self.ptr[f + 1] as usize;
                    let vf = v[f];
                    let mut sum = vf.map(|x| self.l2 * x);
                    for (&g, &c) in self.neighbour[range.clone()]
                        .iter()
                        .zip(&self.weight[range])
                    {
                        let vg = &v[g as usize];
                        for j in 0..B {
                            sum[j] += c * (vf[j] - vg[j]);
                        }
                    }
                    *o = sum;
                }
            });
    }

    /// The pairs `(lo, hi, entry)` in increasing `(lo, hi)`: the upper entries in CSR order.
    pub fn pairs(&self) -> impl Iterator<Item = (u32, u32, u32)> + '_ {
        (0..self.ptr.len() - 1).flat_map(move |f| {
            let range = self.ptr[f] as usize..self.ptr[f + 1] as usize;
            (range.filter(move |&k| self.neighbour[k] as usize > f))
                .map(move |k| (f as u32, self.neighbour[k], k as u32))
        })
    }

    pub fn n_entries(&self) -> usize {
        self.neighbour.len()
    }
    /// The weight of entry `k` ([`Laplacian::set_weights`]).
    pub fn weight(&self, k: u32) -> f64 {
        self.weight[k as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The product equals the dense `λ I + L_c` on a graph with a reciprocal pair, one-way arcs,
    /// a self-loop and an isolated state; the pairs come in `(lo, hi)` order with summed weights.
    #[test]
    fn matches_the_dense_laplacian() {
        // 0 ⇄ 1 (arcs 0 and 2), 1 → 2, 3 → 0, 2 → 2 (self-loop); state 4 isolated.
        let src = vec![0, 1, 1, 3, 2];
        let dst = vec![1, 2, 0, 0, 2];
        let p = ActionProblem::new(5, src.clone(), dst.clone(), vec![1.0; 5], 0.3).unwrap();
        let c = [0.5, 2.0, 0.25, 1.5, 7.0];
        let mut lap = Laplacian::new(&p);
        lap.set_weights(&c);
        let mut dense = [[0.0f64; 5]; 5];
        for f in 0..5 {
            dense[f][f] = 0.3;
        }
        for e in 0..5 {
            let (s, d) = (src[e] as usize, dst[e] as usize);
            dense[s][s] += c[e];
            dense[d][d] += c[e];
            dense[s][d] -= c[e];
            dense[d][s] -= c[e];
        }
        let v = [0.7, -1.2, 3.0, 0.1, -0.4];
        let mut out = [0.0; 5];
        lap.product(&v, &mut out);
        for f in 0..5 {
            let expected: f64 = (0..5).map(|g| dense[f][g] * v[g]).sum();
            assert!(
                (out[f] - expected).abs() < 1e-14,
                "{f}: {} vs {expected}",
                out[f]
            );
        }
        let pairs: Vec<_> = lap.pairs().map(|(a, b, k)| (a, b, lap.weight(k))).collect();
        assert_eq!(pairs, [(0, 1, 0.75), (0, 3, 1.5), (1, 2, 2.0)]);
        // Without its arcs the product is the same.
        lap.forget_arcs();
        let mut again = [0.0; 5];
        lap.product(&v, &mut again);
        assert_eq!(again, out);
        // Renumbered (state i is old state order[i]), the product is the old one renumbered.
        let order = [2u32, 0, 4, 1, 3];
        let permuted = lap.permuted(&order);
        let v_new: Vec<f64> = order.iter().map(|&f| v[f as usize]).collect();
        let mut out_new = [0.0; 5];
        permuted.product(&v_new, &mut out_new);
        for (i, &f) in order.iter().enumerate() {
            assert!((out_new[i] - out[f as usize]).abs() < 1e-14, "{i}");
            let neighbours: Vec<usize> = permuted.entries(i).map(|(_, g, _)| g).collect();
            assert!(neighbours.windows(2).all(|w| w[0] < w[1]), "{neighbours:?}");
        }
    }

    #[test]
    #[should_panic(expected = "forgotten")]
    fn weights_cannot_be_set_after_the_arcs_are_forgotten() {
        let p = ActionProblem::new(2, vec![0, 1], vec![1, 0], vec![1.0; 2], 0.0).unwrap();
        let mut lap = Laplacian::new(&p);
        lap.forget_arcs();
        lap.set_weights(&[1.0, 2.0]);
    }
}
