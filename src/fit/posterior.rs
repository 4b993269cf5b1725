//! Posterior standard deviations of a ridge fit (docs/METHOD.md §2.5): the Laplace approximation
//! `V ~ N(V̂, H⁻¹)` at the MAP, `H` the Hessian of the penalised objective — the graph Laplacian
//! with edge weights `w_e σ(d_e) σ(−d_e)` plus `λI` — so `sd_f = √(H⁻¹)_ff`.
//!
//! Up to [`EXACT_STATES`] fitted states the diagonal is exact (dense Cholesky). Above, it is
//! Hutchinson's estimator `diag H⁻¹ ≈ (1/s) Σ_k z_k ⊙ H⁻¹ z_k` with [`PROBES`] Rademacher
//! vectors, each solve by conjugate gradients preconditioned by the fit's spanning forest to a
//! relative residual of 1e-8; its error on entry `f` has standard deviation
//! `√(Σ_{g≠f} (H⁻¹)_fg² / s)`, and an estimate
//! is never taken below `1/H_ff`, which bounds `(H⁻¹)_ff` from below for any positive definite `H`.
//!
//! A state is `prior-dominated` when its posterior variance is more than half the prior's
//! (`sd² > 1/(2λ)`): in one dimension that is data precision below the prior's, `V` set more by
//! the prior than by the transitions.

use crate::backend::cpu::{Laplacian, TreePreconditioner};
use crate::backend::problem::ActionProblem;
use crate::fit::problem::sigmoid_neg;
use crate::rng::{Purpose, Stream};
use rayon::prelude::*;

/// Largest number of fitted states whose posterior variances are computed exactly.
pub const EXACT_STATES: usize = 1_500;
/// Rademacher probes of the estimator above [`EXACT_STATES`].
pub const PROBES: usize = 128;

/// The Hessian at the MAP over the states with a value, numbered compactly.
pub(super) struct Curvature {
    /// Edges between fitted states and their curvature `w σ(d) σ(−d)`.
    pub edges: Vec<(u32, u32, f64)>,
    pub l2: f64,
    pub n: usize,
}

impl Curvature {
    /// From the fitted edges `(src, dst, weight)` and the fitted variable `x` (one per fitted
    /// state, numbered like the edges).
    pub fn new(edges: impl Iterator<Item = (u32, u32, f64)>, x: &[f64], l2: f64) -> Self {
        let edges = edges
            .map(|(s, d, w)| {
                let dx = x[s as usize] - x[d as usize];
                (s, d, w * sigmoid_neg(dx) * sigmoid_neg(-dx))
            })
            .collect();
        Curvature {
            edges,
            l2,
            n: x.len(),
        }
    }

    fn diagonal(&self) -> Vec<f64> {
        let mut d = vec![self.l2; self.n];
        for &(s, t, c) in &self.edges {
            d[s as usize] += c;
            d[t as usize] += c;
        }
        d
    }

    fn product(&self, v: &[f64], out: &mut [f64]) {
        for (o, x) in out.iter_mut().zip(v) {
            *o = self.l2 * x;
        }
        for &(s, t, c) in &self.edges {
            let flow = c * (v[s as usize] - v[t as usize]);
            out[s as usize] += flow;
            out[t as usize] -= flow;
        }
    }

    /// `√(H⁻¹)_ff` for every fitted state.
    pub fn posterior_sd(&self) -> Vec<f64> {
        let variance = if self.n <= EXACT_STATES {
            self.exact_variances()
        } else {
            self.estimated_variances()
        };
        variance.into_iter().map(f64::sqrt).collect()
    }

    /// `diag H⁻¹` from the Cholesky factor `H = L Lᵀ`: `(H⁻¹)_ff = Σ_k (L⁻¹)_kf²`.
    fn exact_variances(&self) -> Vec<f64> {
        let n = self.n;
        let mut h = vec![0.0; n * n];
        for (f, d) in self.diagonal().into_iter().enumerate() {
            h[f * n + f] = d;
        }
        for &(s, t, c) in &self.edges {
            let (s, t) = (s as usize, t as usize);
            h[s * n + t] -= c;
            h[t * n + s] -= c;
        }
        // In-place Cholesky, lower triangle (H is positive definite: λ > 0).
        for j in 0..n {
            let pivot = (h[j * n + j] - (0..j).map(|k| h[j * n + k].powi(2)).sum::<f64>()).sqrt();
            h[j * n + j] = pivot;
            for i in j + 1..n {
                let dot: f64 = (0..j).map(|k| h[i * n + k] * h[j * n + k]).sum();
                h[i * n + j] = (h[i * n + j] - dot) / pivot;
            }
        }
        // Column f of L⁻¹ by forward substitution from e_f; its squared norm is (H⁻¹)_ff.
        (0..n)
            .into_par_iter()
            .map(|f| {
                let mut y = vec![0.0; n];
                let mut sum = 0.0;
                for i in f..n {
                    let rhs = if i == f { 1.0 } else { 0.0 };
                    let dot: f64 = (f..i).map(|k| h[i * n + k] * y[k]).sum();
                    y[i] = (rhs - dot) / h[i * n + i];
                    sum += y[i] * y[i];
                }
                sum
            })
            .collect()
    }

    /// Hutchinson's estimate of `diag H⁻¹`, floored at `1/H_ff`.
    fn estimated_variances(&self) -> Vec<f64> {
        let diagonal = self.diagonal();
        let tree = self.tree_preconditioner(&diagonal);
        let stream = Stream::new(0, Purpose::Probe);
        // Summed in probe order, a batch at a time (the same sums whatever the batch size; not one
        // vector per probe).
        let probe = |k: usize| -> Vec<f64> {
            let z: Vec<f64> = (0..self.n)
                .map(|f| {
                    if stream.word(f as u32, 1 + k as u32, 0) & 1 == 0 {
                        1.0
                    } else {
                        -1.0
                    }
                })
                .collect();
            let mut work = vec![0.0; self.n];
            let x = self.solve(&z, &mut |r| tree.solve_with(r, &mut work));
            z.iter().zip(&x).map(|(a, b)| a * b).collect()
        };
        let mut sum = vec![0.0; self.n];
        // As many at once as threads: more would only hold more vectors.
        let batch_size = rayon::current_num_threads().clamp(1, PROBES);
        for batch in (0..PROBES).step_by(batch_size) {
            let estimates: Vec<Vec<f64>> = (batch..(batch + batch_size).min(PROBES))
                .into_par_iter()
                .map(probe)
                .collect();
            for e in estimates {
                sum.iter_mut().zip(&e).for_each(|(s, x)| *s += x);
            }
        }
        sum.iter()
            .zip(&diagonal)
            .map(|(s, d)| (s / PROBES as f64).max(1.0 / d))
            .collect()
    }

    /// The fit's spanning-forest preconditioner (`backend::cpu::TreePreconditioner`) of `H`,
    /// whose diagonal is `diagonal`: on llm-10M the posterior took 11 s with it against 19.5 s
    /// with the diagonal alone (BENCHMARKS.md "The new default estimator's cost").
    fn tree_preconditioner(&self, diagonal: &[f64]) -> TreePreconditioner {
        let positive = self.edges.iter().filter(|e| e.2 > 0.0);
        let (src, dst): (Vec<u32>, Vec<u32>) = positive.clone().map(|e| (e.0, e.1)).unzip();
        let weight: Vec<f64> = positive.map(|e| e.2).collect();
        let problem = ActionProblem::new(self.n, src, dst, weight, self.l2)
            .expect("curvatures are finite and positive");
        let mut laplacian = Laplacian::new(&problem);
        laplacian.set_weights(&problem.weight);
        let mut tree = TreePreconditioner::new(&problem, &laplacian);
        tree.factor(&laplacian, diagonal);
        tree
    }

    /// `H⁻¹ b` by conjugate gradients preconditioned by `precondition` (`r ← M⁻¹ r`).
    fn solve(&self, b: &[f64], precondition: &mut dyn FnMut(&mut [f64])) -> Vec<f64> {
        let n = self.n;
        let dot = |a: &[f64], c: &[f64]| a.iter().zip(c).map(|(x, y)| x * y).sum::<f64>();
        let mut x = vec![0.0; n];
        let mut r = b.to_vec();
        let mut z = r.clone();
        precondition(&mut z);
        let mut p = z.clone();
        let mut hp = vec![0.0; n];
        let mut rz = dot(&r, &z);
        let stop = 1e-16 * dot(b, b);
        for _ in 0..10 * n {
            if dot(&r, &r) <= stop {
                break;
            }
            self.product(&p, &mut hp);
            let alpha = rz / dot(&p, &hp);
            for i in 0..n {
                x[i] += alpha * p[i];
                r[i] -= alpha * hp[i];
            }
            z.copy_from_slice(&r);
            precondition(&mut z);
            let next = dot(&r, &z);
            for i in 0..n {
                p[i] = z[i] + next / rz * p[i];
            }
            rz = next;
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ring of 40 states with a chord and uneven weights.
    fn ring(n: usize) -> Curvature {
        let mut edges: Vec<(u32, u32, f64)> = (0..n)
            .map(|f| (f as u32, ((f + 1) % n) as u32, 1.0 + (f % 7) as f64))
            .collect();
        edges.push((0, (n / 2) as u32, 3.0));
        let x: Vec<f64> = (0..n).map(|f| (f as f64 * 0.37).sin()).collect();
        Curvature::new(edges.into_iter(), &x, 0.2)
    }

    #[test]
    fn exact_variances_invert_the_hessian() {
        let h = ring(12);
        let var = h.exact_variances();
        let diagonal = h.diagonal();
        for f in 0..h.n {
            let mut e = vec![0.0; h.n];
            e[f] = 1.0;
            let col = h.solve(&e, &mut |r| {
                r.iter_mut().zip(&diagonal).for_each(|(r, d)| *r /= d)
            });
            assert!(
                (col[f] - var[f]).abs() < 1e-10,
                "{f}: {} vs {}",
                col[f],
                var[f]
            );
            // The posterior is narrower than the prior, wider than the conditional.
            assert!(var[f] < 1.0 / h.l2 && var[f] > 1.0 / diagonal[f]);
        }
    }

    #[test]
    fn hutchinson_is_close_to_the_exact_diagonal() {
        let h = ring(400);
        let (exact, estimated) = (h.exact_variances(), h.estimated_variances());
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let relative: Vec<f64> = exact
            .iter()
            .zip(&estimated)
            .map(|(a, b)| (a - b).abs() / a)
            .collect();
        // Per entry the estimate is noisy (its sd is half as noisy), on average unbiased.
        assert!(
            mean(&relative) < 0.15,
            "mean relative error {}",
            mean(&relative)
        );
        assert!(relative.iter().all(|&r| r < 0.8), "{relative:?}");
        assert!((mean(&exact) - mean(&estimated)).abs() / mean(&exact) < 0.05);
    }
}
