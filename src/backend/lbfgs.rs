//! Limited-memory BFGS written against [`VectorSpace`], so that the same optimiser runs with its
//! vectors in host memory (CPU backend) or in device buffers (GPU backend), reading back only
//! scalars (dot products, norms, objective values) per iteration.
//!
//! Two-loop recursion with a diagonal preconditioner `P` as the initial inverse Hessian, scaled by
//! `s·y / (y·P y)` (Nocedal & Wright §7.2); for the action, `P` is the inverse of each state's
//! total incident weight, which removes most of the ill-conditioning that hubs cause. Armijo
//! backtracking with safeguarded
//! quadratic interpolation, and a stop on the gradient's infinity norm. The objectives here are
//! convex (weighted Bradley–Terry), where this plain scheme converges reliably; pairs with
//! `s·y ≤ 0` (flat gauge directions, rounding) are skipped rather than stored.
//!
//! Written here rather than taken from an optimisation crate because the vectors must stay on the
//! device: the crates' L-BFGS implementations allocate host vectors per operation.

use crate::error::{Error, Result};
use crate::progress::{self, Unit};
use std::collections::VecDeque;

/// Vector storage and the operations L-BFGS needs.
pub trait VectorSpace {
    type Vector;
    fn upload(&mut self, x: &[f64]) -> Result<Self::Vector>;
    fn download(&mut self, x: &Self::Vector) -> Result<Vec<f64>>;
    fn zeros(&mut self) -> Result<Self::Vector>;
    /// The objective at `x`; writes its gradient into `grad`.
    fn value_grad(&mut self, x: &Self::Vector, grad: &mut Self::Vector) -> Result<f64>;
    fn dot(&mut self, a: &Self::Vector, b: &Self::Vector) -> Result<f64>;
    fn norm_inf(&mut self, a: &Self::Vector) -> Result<f64>;
    /// `y ← y + α x`.
    fn axpy(&mut self, alpha: f64, x: &Self::Vector, y: &mut Self::Vector) -> Result<()>;
    /// `x ← α x`.
    fn scale(&mut self, alpha: f64, x: &mut Self::Vector) -> Result<()>;
    /// `dst ← src`.
    fn assign(&mut self, src: &Self::Vector, dst: &mut Self::Vector) -> Result<()>;
    /// `x ← P x` with the diagonal preconditioner `P` (an approximate inverse Hessian diagonal).
    fn precondition(&mut self, x: &mut Self::Vector) -> Result<()>;
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LbfgsOptions {
    /// Number of stored correction pairs.
    pub memory: usize,
    pub max_iterations: usize,
    /// Converged when `‖∇S‖_∞ ≤ grad_tol`.
    pub grad_tol: f64,
}

impl Default for LbfgsOptions {
    fn default() -> Self {
        LbfgsOptions {
            memory: 10,
            max_iterations: 20_000,
            grad_tol: 1e-8,
        }
    }
}

#[derive(Debug, Clone)]
pub struct LbfgsOutcome {
    pub x: Vec<f64>,
    pub value: f64,
    pub grad_norm: f64,
    pub iterations: usize,
    pub evaluations: usize,
    pub converged: bool,
    /// Why the optimiser stopped, in words.
    pub status: String,
}

struct Correction<V> {
    s: V,
    y: V,
    rho: f64,
}

/// Minimises the space's objective from `x0`.
pub fn minimize<S: VectorSpace>(
    space: &mut S,
    x0: &[f64],
    opts: &LbfgsOptions,
) -> Result<LbfgsOutcome> {
    const ARMIJO: f64 = 1e-4;
    const CURVATURE: f64 = 0.9;
    /// Relative rounding error of an objective value (backends sum it with compensation).
    const ROUNDING: f64 = 1e-14;
    const MAX_BACKTRACKS: usize = 50;
    /// Largest change of one coordinate in one step: keeps a badly scaled direction (a state of
    /// almost no curvature) from wasting evaluations on backtracking.
    const MAX_STEP: f64 = 10.0;
    /// Iterations in which neither the objective decreases beyond its rounding error nor the
    /// gradient norm reaches a new low by 10 %, after which the run stops as stalled (reported
    /// as not converged).
    const MAX_STALLED: usize = 30;
    let mut x = space.upload(x0)?;
    let mut g = space.zeros()?;
    let mut f = space.value_grad(&x, &mut g)?;
    check_finite(f, 0)?;
    let mut evaluations = 1;
    let mut grad_norm = space.norm_inf(&g)?;
    let (mut d, mut x_new, mut g_new, mut scratch) = (
        space.zeros()?,
        space.zeros()?,
        space.zeros()?,
        space.zeros()?,
    );
    // Newest correction last; `spare` keeps discarded ones so their vectors are reused.
    let mut history: VecDeque<Correction<S::Vector>> = VecDeque::with_capacity(opts.memory);
    let mut spare: Vec<Correction<S::Vector>> = Vec::new();
    let mut alphas = vec![0.0; opts.memory];
    let mut gamma = 1.0;
    let mut iterations = 0;
    let (mut stalled, mut best_grad_norm) = (0, grad_norm);
    let bar = progress::bar("fit", opts.max_iterations as u64, Unit::Iterations);
    let status = loop {
        if grad_norm <= opts.grad_tol {
            break "gradient norm below tolerance".to_string();
        }
        if iterations >= opts.max_iterations {
            break format!("iteration limit ({}) reached", opts.max_iterations);
        }
        // d = −H g by the two-loop recursion, newest correction first.
        space.assign(&g, &mut d)?;
        for (c, alpha) in history.iter().rev().zip(alphas.iter_mut()) {
            *alpha = c.rho * space.dot(&c.s, &d)?;
            space.axpy(-*alpha, &c.y, &mut d)?;
        }
        space.precondition(&mut d)?;
        if history.is_empty() {
            // First step: move the largest coordinate by at most one unit.
            gamma = 1.0 / space.norm_inf(&d)?.max(1.0);
        }
        space.scale(gamma, &mut d)?;
        for (c, alpha) in history.iter().zip(alphas[..history.len()].iter().rev()) {
            let beta = c.rho * space.dot(&c.y, &d)?;
            space.axpy(alpha - beta, &c.s, &mut d)?;
        }
        space.scale(-1.0, &mut d)?;
        let mut slope = space.dot(&g, &d)?;
        if slope >= 0.0 {
            // Not a descent direction (stale curvature): restart from steepest descent.
            spare.extend(history.drain(..));
            space.assign(&g, &mut d)?;
            space.precondition(&mut d)?;
            let norm = space.norm_inf(&d)?;
            space.scale(-1.0 / norm.max(1.0), &mut d)?;
            slope = space.dot(&g, &d)?;
        }
        // Armijo backtracking from the unit step. Near the optimum the decrease falls below the
        // rounding error of `f`; there the approximate Wolfe test of Hager & Zhang (2005), which
        // reads the directional derivative instead, decides.
        let mut t = (MAX_STEP / space.norm_inf(&d)?).min(1.0);
        let mut accepted = None;
        let rounding = ROUNDING * (f.abs() + 1.0);
        for _ in 0..MAX_BACKTRACKS {
            space.assign(&x, &mut x_new)?;
            space.axpy(t, &d, &mut x_new)?;
            let f_trial = space.value_grad(&x_new, &mut g_new)?;
            evaluations += 1;
            if f_trial.is_finite() && f_trial <= f + ARMIJO * t * slope {
                accepted = Some(f_trial);
                break;
            }
            if f_trial.is_finite() && f_trial <= f + rounding {
                let slope_trial = space.dot(&g_new, &d)?;
                if CURVATURE * slope <= slope_trial && slope_trial <= (2.0 * ARMIJO - 1.0) * slope {
                    accepted = Some(f_trial);
                    break;
                }
            }
            let curvature = f_trial - f - slope * t;
            let t_quad = if f_trial.is_finite() && curvature > 0.0 {
                -slope * t * t / (2.0 * curvature)
            } else {
                0.1 * t
            };
            t = t_quad.clamp(0.1 * t, 0.5 * t);
        }
        let Some(f_new) = accepted else {
            break format!("line search made no progress (gradient norm {grad_norm:.3e})");
        };
        iterations += 1;
        bar.set(iterations as u64);
        // New correction pair s = t d, y = g_new − g, reusing the oldest pair's vectors when full.
        let mut c = match (history.len() >= opts.memory, spare.pop()) {
            (true, spare_one) => {
                spare.extend(spare_one);
                history.pop_front().expect("history is full")
            }
            (false, Some(c)) => c,
            (false, None) => Correction {
                s: space.zeros()?,
                y: space.zeros()?,
                rho: 0.0,
            },
        };
        space.assign(&d, &mut c.s)?;
        space.scale(t, &mut c.s)?;
        space.assign(&g_new, &mut c.y)?;
        space.axpy(-1.0, &g, &mut c.y)?;
        let sy = space.dot(&c.s, &c.y)?;
        space.assign(&c.y, &mut scratch)?;
        space.precondition(&mut scratch)?;
        let ypy = space.dot(&c.y, &scratch)?;
        if sy > f64::EPSILON * ypy && ypy > 0.0 {
            c.rho = 1.0 / sy;
            gamma = sy / ypy;
            history.push_back(c);
        } else {
            spare.push(c);
        }
        std::mem::swap(&mut x, &mut x_new);
        std::mem::swap(&mut g, &mut g_new);
        check_finite(f_new, iterations)?;
        grad_norm = space.norm_inf(&g)?;
        stalled = if f - f_new > rounding || grad_norm < 0.9 * best_grad_norm {
            0
        } else {
            stalled + 1
        };
        best_grad_norm = best_grad_norm.min(grad_norm);
        f = f_new;
        if stalled >= MAX_STALLED {
            break format!("no progress in {MAX_STALLED} iterations (floating-point limit)");
        }
    };
    Ok(LbfgsOutcome {
        x: space.download(&x)?,
        value: f,
        grad_norm,
        iterations,
        evaluations,
        converged: grad_norm <= opts.grad_tol,
        status,
    })
}

fn check_finite(f: f64, iteration: usize) -> Result<()> {
    if f.is_finite() {
        Ok(())
    } else {
        Err(Error::Numerical(format!(
            "objective is {f} at iteration {iteration}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ill-conditioned quadratic `½ Σ c_i (x_i − 1)²` on host vectors, with the exact
    /// diagonal preconditioner or none.
    struct Quadratic(Vec<f64>, bool);

    impl VectorSpace for Quadratic {
        type Vector = Vec<f64>;
        fn upload(&mut self, x: &[f64]) -> Result<Vec<f64>> {
            Ok(x.to_vec())
        }
        fn download(&mut self, x: &Vec<f64>) -> Result<Vec<f64>> {
            Ok(x.clone())
        }
        fn zeros(&mut self) -> Result<Vec<f64>> {
            Ok(vec![0.0; self.0.len()])
        }
        fn value_grad(&mut self, x: &Vec<f64>, g: &mut Vec<f64>) -> Result<f64> {
            let mut f = 0.0;
            for i in 0..x.len() {
                g[i] = self.0[i] * (x[i] - 1.0);
                f += 0.5 * self.0[i] * (x[i] - 1.0).powi(2);
            }
            Ok(f)
        }
        fn dot(&mut self, a: &Vec<f64>, b: &Vec<f64>) -> Result<f64> {
            Ok(a.iter().zip(b).map(|(a, b)| a * b).sum())
        }
        fn norm_inf(&mut self, a: &Vec<f64>) -> Result<f64> {
            Ok(a.iter().fold(0.0, |m, v| m.max(v.abs())))
        }
        fn axpy(&mut self, alpha: f64, x: &Vec<f64>, y: &mut Vec<f64>) -> Result<()> {
            y.iter_mut().zip(x).for_each(|(y, x)| *y += alpha * x);
            Ok(())
        }
        fn scale(&mut self, alpha: f64, x: &mut Vec<f64>) -> Result<()> {
            x.iter_mut().for_each(|v| *v *= alpha);
            Ok(())
        }
        fn assign(&mut self, src: &Vec<f64>, dst: &mut Vec<f64>) -> Result<()> {
            dst.copy_from_slice(src);
            Ok(())
        }
        fn precondition(&mut self, x: &mut Vec<f64>) -> Result<()> {
            if self.1 {
                x.iter_mut().zip(&self.0).for_each(|(x, c)| *x /= c);
            }
            Ok(())
        }
    }

    #[test]
    fn converges_on_an_ill_conditioned_quadratic() {
        let c: Vec<f64> = (0..200).map(|i| 10f64.powf(i as f64 / 70.0)).collect();
        let opts = LbfgsOptions {
            grad_tol: 1e-9,
            ..Default::default()
        };
        let out = minimize(&mut Quadratic(c, false), &vec![0.0; 200], &opts).unwrap();
        assert!(out.converged, "{}", out.status);
        assert!(out.x.iter().all(|x| (x - 1.0).abs() < 1e-9));
        assert!(out.iterations < 600, "{} iterations", out.iterations);
    }

    #[test]
    fn the_exact_diagonal_preconditioner_solves_a_diagonal_quadratic_at_once() {
        let c: Vec<f64> = (0..200).map(|i| 10f64.powf(i as f64 / 20.0)).collect();
        let opts = LbfgsOptions {
            grad_tol: 1e-9,
            ..Default::default()
        };
        let out = minimize(&mut Quadratic(c, true), &vec![0.0; 200], &opts).unwrap();
        assert!(out.converged, "{}", out.status);
        assert!(out.iterations <= 3, "{} iterations", out.iterations);
    }

    #[test]
    fn reports_the_iteration_limit() {
        let opts = LbfgsOptions {
            max_iterations: 2,
            grad_tol: 1e-12,
            ..Default::default()
        };
        let c: Vec<f64> = (0..50).map(|i| 1.0 + i as f64).collect();
        let out = minimize(&mut Quadratic(c, false), &vec![0.0; 50], &opts).unwrap();
        assert!(!out.converged);
        assert_eq!(out.iterations, 2);
        assert!(out.status.contains("iteration limit"));
    }
}
