//! The least-action problem as the kernels see it: edges, weights and a symmetric incidence
//! list, built once on the CPU and shared by every backend.
//!
//! Objective (docs/METHOD.md §2.1, without the paper's constant `1/M`):
//!
//! ```text
//! S(V) = Σ_e w_e K(V[src_e] − V[dst_e]) + (λ/2) Σ_f (V_f − m_f)²,   K(x) = log(1 + e^(−x))
//! ∂S/∂V_f = Σ_{e: src_e = f} w_e K'(d_e) − Σ_{e: dst_e = f} w_e K'(d_e) + λ (V_f − m_f),   K'(x) = −σ(−x)
//! ```
//!
//! The ridge is a Gaussian prior `V_f ~ N(m_f, 1/λ)`; its mean `m` is 0 unless set with
//! [`ActionProblem::with_prior_mean`] (the reversible MLE's prior on `V` in its variable
//! `u = V + log c` is centred at `log c`). The mean moves neither the Hessian nor the kernels'
//! Hessian products, only the value and the gradient.
//!
//! The gradient is a sum over each node's incident edges. The incidence list holds every edge
//! twice, once under its source (entry `2e`) and once under its target (entry `2e + 1`), sorted by
//! node, so a gradient is a segmented reduction of per-edge derivatives: no atomics, deterministic.

use crate::error::{Error, Result};

/// Relative floor of the Hessian diagonal, see [`ActionProblem::curvature_floor`]: only a guard
/// against a diagonal that underflowed. A floor far above the true curvature (L-BFGS used 1e-3)
/// misleads Newton–CG's preconditioner on weakly coupled states (docs/METHOD.md §2.3).
const CURVATURE_FLOOR: f64 = 1e-12;

#[derive(Debug, Clone)]
pub struct ActionProblem {
    pub n_states: usize,
    pub src: Vec<u32>,
    pub dst: Vec<u32>,
    pub weight: Vec<f64>,
    /// Ridge `λ ≥ 0`.
    pub l2: f64,
    /// The ridge's centre `m` per state; empty for `m = 0`.
    pub prior_mean: Vec<f64>,
    /// CSR over nodes into [`ActionProblem::incidence`]; length `n_states + 1`.
    pub incidence_ptr: Vec<u32>,
    /// `2e` when the node is the source of edge `e`, `2e + 1` when it is the target.
    pub incidence: Vec<u32>,
    /// Connected component of each state in the edges (ignoring direction); states without
    /// edges are components of their own. Without a ridge the action is flat along each
    /// component's constant: [`ActionProblem::gauge_free_max`] removes it.
    pub component: Vec<u32>,
    pub n_components: usize,
    /// Whether the states are numbered breadth first already ([`super::renumber`]): the CPU
    /// backend then fits the problem as it is instead of a renumbered copy.
    pub breadth_first: bool,
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
        let mut problem = ActionProblem {
            n_states,
            src,
            dst,
            weight,
            l2,
            prior_mean: Vec::new(),
            incidence_ptr,
            incidence,
            component: Vec::new(),
            n_components: 0,
            breadth_first: false,
        };
        (problem.component, problem.n_components) = problem.components();
        Ok(problem)
    }

    /// This problem with the ridge centred at `mean` (one value per state) instead of 0.
    pub fn with_prior_mean(mut self, mean: Vec<f64>) -> Self {
        assert_eq!(mean.len(), self.n_states, "one prior mean per state");
        self.prior_mean = mean;
        self
    }

    /// `x_f − m_f`: the ridge's gradient per unit of `λ` at state `f`.
    pub fn from_prior_mean(&self, f: usize, x: f64) -> f64 {
        offset_from(&self.prior_mean, f, x)
    }

    /// The ridge's value `(λ/2) Σ (x_f − m_f)²`.
    pub fn ridge_value(&self, x: &[f64]) -> f64 {
        let squares: f64 = (x.iter().enumerate())
            .map(|(f, &v)| self.from_prior_mean(f, v).powi(2))
            .sum();
        0.5 * self.l2 * squares
    }

    /// The incidence entries of state `f` ([`Self::incidence`]).
    pub fn incident(&self, f: usize) -> &[u32] {
        &self.incidence[self.incidence_ptr[f] as usize..self.incidence_ptr[f + 1] as usize]
    }

    /// The state at the other end of incidence entry `entry` from the state it is listed under.
    pub fn other_end(&self, entry: u32) -> usize {
        let e = (entry >> 1) as usize;
        (if entry & 1 == 0 {
            self.dst[e]
        } else {
            self.src[e]
        }) as usize
    }

    /// Connected components by breadth-first search over the incidence list.
    fn components(&self) -> (Vec<u32>, usize) {
        let mut component = vec![u32::MAX; self.n_states];
        let mut queue = Vec::new();
        let mut count = 0u32;
        for root in 0..self.n_states {
            if component[root] != u32::MAX {
                continue;
            }
            component[root] = count;
            queue.push(root);
            while let Some(f) = queue.pop() {
                for &entry in self.incident(f) {
                    let g = self.other_end(entry);
                    if component[g] == u32::MAX {
                        component[g] = count;
                        queue.push(g);
                    }
                }
            }
            count += 1;
        }
        (component, count as usize)
    }

    /// `max_f |x_f − mean_{C(f)} x|` over components `C` without a ridge (the change `x` makes to
    /// potentials centred per component), `max |x_f|` with one.
    pub fn gauge_free_max(&self, x: &[f64]) -> f64 {
        if self.l2 > 0.0 {
            return x.iter().fold(0.0, |m, v| m.max(v.abs()));
        }
        let mut sum = vec![0.0; self.n_components];
        let mut size = vec![0usize; self.n_components];
        for (&c, &v) in self.component.iter().zip(x) {
            sum[c as usize] += v;
            size[c as usize] += 1;
        }
        self.component
            .iter()
            .zip(x)
            .map(|(&c, &v)| (v - sum[c as usize] / size[c as usize] as f64).abs())
            .fold(0.0, f64::max)
    }

    pub fn n_edges(&self) -> usize {
        self.src.len()
    }

    /// The smallest Hessian diagonal entry the preconditioner uses, per state:
    /// `CURVATURE_FLOOR · Σ_incident w + λ` (1 where that is zero). The Hessian is the graph
    /// Laplacian with edge weights `w σ(d) σ(−d)`; far from the optimum's curvature (an edge with
    /// a large `d`) the floor keeps the preconditioner finite.
    pub fn curvature_floor(&self) -> Vec<f64> {
        let mut incident = vec![0.0; self.n_states];
        for e in 0..self.n_edges() {
            incident[self.src[e] as usize] += self.weight[e];
            incident[self.dst[e] as usize] += self.weight[e];
        }
        incident
            .into_iter()
            .map(|w| {
                if w > 0.0 {
                    CURVATURE_FLOOR * w + self.l2
                } else {
                    1.0
                }
            })
            .collect()
    }
}

/// `x − mean[f]`, or `x` when `mean` is empty (a ridge centred at 0).
pub fn offset_from(mean: &[f64], f: usize, x: f64) -> f64 {
    mean.get(f).map_or(x, |m| x - m)
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

/// `(K(x), σ(−x))` from one exponential: the per-edge terms of the action and its derivative.
pub fn action_terms(x: f64) -> (f64, f64) {
    let e = (-x.abs()).exp();
    let k = (-x).max(0.0) + e.ln_1p();
    let s = if x >= 0.0 {
        e / (1.0 + e)
    } else {
        1.0 / (1.0 + e)
    };
    (k, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_functions_match_naive_ones_where_naive_is_safe() {
        for &x in &[-30.0f64, -2.5, -1e-3, 0.0, 1e-3, 3.0, 30.0] {
            let naive_k = (1.0 + (-x).exp()).ln();
            assert!(
                (softplus_neg(x) - naive_k).abs() < 1e-14 * naive_k.max(1.0),
                "K({x})"
            );
            let naive_s = 1.0 / (1.0 + x.exp());
            assert!((sigmoid_neg(x) - naive_s).abs() < 1e-15, "σ(−{x})");
        }
        for &x in &[-40.0, -1.5, 0.0, 0.7, 40.0] {
            assert_eq!(action_terms(x), (softplus_neg(x), sigmoid_neg(x)));
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
