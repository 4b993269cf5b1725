//! The least-action problem as the kernels see it: edges, weights and a symmetric incidence
//! list, built once on the CPU and shared by every backend.
//!
//! Objective (METHOD.md §3, without the paper's constant `1/M`):
//!
//! ```text
//! S(V) = Σ_e w_e K(V[src_e] − V[dst_e]) + (λ/2) Σ_f V_f²,   K(x) = log(1 + e^(−x))
//! ∂S/∂V_f = Σ_{e: src_e = f} w_e K'(d_e) − Σ_{e: dst_e = f} w_e K'(d_e) + λ V_f,   K'(x) = −σ(−x)
//! ```
//!
//! The gradient is a sum over each node's incident edges. The incidence list holds every edge
//! twice, once under its source (entry `2e`) and once under its target (entry `2e + 1`), sorted by
//! node, so a gradient is a segmented reduction of per-edge derivatives: no atomics, deterministic.

use crate::error::{Error, Result};

/// Curvature factor of a one-way edge in [`ActionProblem::preconditioner`].
const ONE_WAY_CURVATURE: f64 = 0.01;

#[derive(Debug, Clone)]
pub struct ActionProblem {
    pub n_states: usize,
    pub src: Vec<u32>,
    pub dst: Vec<u32>,
    pub weight: Vec<f64>,
    /// Ridge `λ ≥ 0`.
    pub l2: f64,
    /// CSR over nodes into [`ActionProblem::incidence`]; length `n_states + 1`.
    pub incidence_ptr: Vec<u32>,
    /// `2e` when the node is the source of edge `e`, `2e + 1` when it is the target.
    pub incidence: Vec<u32>,
}

impl ActionProblem {
    /// Builds the problem; weights must be finite and positive.
    pub fn new(
        n_states: usize,
        src: Vec<u32>,
        dst: Vec<u32>,
        weight: Vec<f64>,
        l2: f64,
    ) -> Result<Self> {
        let m = src.len();
        assert!(
            dst.len() == m && weight.len() == m,
            "edge arrays of unequal length"
        );
        if 2 * m as u64 >= u64::from(u32::MAX) {
            return Err(Error::Numerical(format!(
                "{m} edges exceed the 2^31 limit of one problem"
            )));
        }
        if let Some(w) = weight.iter().find(|w| !(w.is_finite() && **w > 0.0)) {
            return Err(Error::Numerical(format!(
                "edge weight {w} is not finite and positive"
            )));
        }
        let mut incidence_ptr = vec![0u32; n_states + 1];
        for (&s, &d) in src.iter().zip(&dst) {
            incidence_ptr[s as usize + 1] += 1;
            incidence_ptr[d as usize + 1] += 1;
        }
        for i in 0..n_states {
            incidence_ptr[i + 1] += incidence_ptr[i];
        }
        let mut fill: Vec<u32> = incidence_ptr[..n_states].to_vec();
        let mut incidence = vec![0u32; 2 * m];
        for (e, (&s, &d)) in src.iter().zip(&dst).enumerate() {
            incidence[fill[s as usize] as usize] = 2 * e as u32;
            fill[s as usize] += 1;
            incidence[fill[d as usize] as usize] = 2 * e as u32 + 1;
            fill[d as usize] += 1;
        }
        Ok(ActionProblem {
            n_states,
            src,
            dst,
            weight,
            l2,
            incidence_ptr,
            incidence,
        })
    }

    pub fn n_edges(&self) -> usize {
        self.src.len()
    }

    /// The optimiser's diagonal preconditioner: the inverse of an estimate of the Hessian
    /// diagonal at the optimum, `1 / (Σ_incident c_e + λ)` (1 where that is zero).
    ///
    /// The Hessian is the graph Laplacian with edge weights `w_e σ(d_e) σ(−d_e)`. For a
    /// reciprocal pair the pairwise optimum `e^d = w_fg / w_gg` gives the pair a curvature of
    /// `w_fg w_gf / (w_fg + w_gf)`; a one-way edge has no such estimate and counts `w/4` (its
    /// curvature at `d = 0`). Total incident weight alone would overstate the curvature of states
    /// hanging off an attractor (`w(f→A) ≈ 1`, `w(A→f) ≈ 1e-5`) by orders of magnitude.
    pub fn preconditioner(&self) -> Vec<f64> {
        let mut curvature = vec![self.l2; self.n_states];
        let mut pair: rustc_hash::FxHashMap<(u32, u32), f64> = Default::default();
        for e in 0..self.n_edges() {
            pair.insert((self.src[e], self.dst[e]), self.weight[e]);
        }
        for e in 0..self.n_edges() {
            let (s, d, w) = (self.src[e], self.dst[e], self.weight[e]);
            let c = match pair.get(&(d, s)) {
                Some(&back) if s < d => w * back / (w + back),
                Some(_) => continue,
                None => ONE_WAY_CURVATURE * w,
            };
            curvature[s as usize] += c;
            curvature[d as usize] += c;
        }
        curvature
            .into_iter()
            .map(|c| if c > 0.0 { 1.0 / c } else { 1.0 })
            .collect()
    }
}

/// `K(x) = log(1 + e^(−x))`, stable for any `x`.
pub fn softplus_neg(x: f64) -> f64 {
    (-x).max(0.0) + (-x.abs()).exp().ln_1p()
}

/// `σ(−x) = 1 / (1 + e^x)`, stable for any `x`; `K'(x) = −σ(−x)`.
pub fn sigmoid_neg(x: f64) -> f64 {
    if x >= 0.0 {
        let e = (-x).exp();
        e / (1.0 + e)
    } else {
        1.0 / (1.0 + x.exp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_functions_match_naive_ones_where_naive_is_safe() {
        for &x in &[-30.0, -2.5, -1e-3, 0.0, 1e-3, 3.0, 30.0] {
            let naive_k = (1.0 + (-x as f64).exp()).ln();
            assert!(
                (softplus_neg(x) - naive_k).abs() < 1e-14 * naive_k.max(1.0),
                "K({x})"
            );
            let naive_s = 1.0 / (1.0 + (x as f64).exp());
            assert!((sigmoid_neg(x) - naive_s).abs() < 1e-15, "σ(−{x})");
        }
        assert_eq!(softplus_neg(1000.0), 0.0);
        assert_eq!(softplus_neg(-1000.0), 1000.0);
    }

    #[test]
    fn incidence_lists_every_edge_under_both_ends() {
        let p = ActionProblem::new(3, vec![0, 1, 2], vec![1, 2, 0], vec![1.0; 3], 0.0).unwrap();
        assert_eq!(p.incidence_ptr, [0, 2, 4, 6]);
        assert_eq!(p.incidence, [0, 5, 1, 2, 3, 4]);
    }
}
