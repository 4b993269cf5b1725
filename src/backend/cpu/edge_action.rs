//! CPU twin of `shaders/edge_action.wgsl` and `shaders/gather_gradient.wgsl`: per-edge action
//! terms and derivatives, then the gradient as a reduction over each node's incidence list. The
//! Hessian–vector product (the twin of `shaders/hessian_edge.wgsl`) sums the per-edge weights
//! `w K''(d)` kept here over the undirected pairs instead (`laplacian`).

use crate::backend::problem::{ActionProblem, action_terms};
use rayon::prelude::*;

/// Edges (or nodes) per parallel task; fixed so that sums do not depend on the thread count.
const CHUNK: usize = 1 << 14;

/// Per-edge scratch space: `w_e K'(d_e)` and `w_e K''(d_e)` at the last evaluated point.
#[derive(Default)]
pub struct EdgeScratch {
    deriv: Vec<f64>,
    curvature: Vec<f64>,
}

impl EdgeScratch {
    /// The per-edge Hessian weights `w_e K''(d_e)` at the last evaluated point.
    pub fn curvature(&self) -> &[f64] {
        &self.curvature
    }
}

/// Returns the action at `v` and writes its gradient; with `hessian_diagonal` also writes the
/// diagonal of the Hessian, `λ + Σ_incident w_e σ(d_e) σ(−d_e)` (the optimiser's preconditioner).
pub fn edge_action(
    problem: &ActionProblem,
    v: &[f64],
    scratch: &mut EdgeScratch,
    grad: &mut [f64],
    hessian_diagonal: Option<&mut [f64]>,
) -> f64 {
    let m = problem.n_edges();
    scratch.deriv.resize(m, 0.0);
    scratch.curvature.resize(m, 0.0);
    let partial: Vec<Neumaier> = scratch
        .deriv
        .par_chunks_mut(CHUNK)
        .zip(scratch.curvature.par_chunks_mut(CHUNK))
        .enumerate()
        .map(|(chunk, (deriv, curvature))| {
            let base = chunk * CHUNK;
            let mut sum = Neumaier::default();
            for (i, slot) in deriv.iter_mut().enumerate() {
                let e = base + i;
                let d = v[problem.src[e] as usize] - v[problem.dst[e] as usize];
                let w = problem.weight[e];
                let (k, s) = action_terms(d);
                sum.add(w * k);
                *slot = -w * s;
                curvature[i] = w * s * (1.0 - s);
            }
            sum
        })
        .collect();
    gather(problem, scratch, v, grad, hessian_diagonal);
    let mut total = Neumaier::default();
    partial.into_iter().for_each(|p| total.add(p.value()));
    total.add(problem.ridge_value(v));
    total.value()
}

/// Per node, in one pass over its incidence list: the gradient `λ (v_f − m_f) + Σ ±w K'` (+ as
/// source, − as target) and, when asked, the Hessian diagonal `λ + Σ w K''`.
fn gather(
    problem: &ActionProblem,
    scratch: &EdgeScratch,
    v: &[f64],
    grad: &mut [f64],
    diagonal: Option<&mut [f64]>,
) {
    // The gradient with compensation: near the optimum a state's terms cancel, and a block of
    // strongly linked states weakly tied to the rest would otherwise see its summed rounding
    // errors amplified by the weak tie's tiny curvature in the Newton step.
    let node = |f: usize, with_diagonal: bool| {
        let (mut g, mut h) = (Neumaier::default(), problem.l2);
        g.add(problem.l2 * problem.from_prior_mean(f, v[f]));
        for &entry in problem.incident(f) {
            let e = (entry >> 1) as usize;
            let x = scratch.deriv[e];
            g.add(if entry & 1 == 1 { -x } else { x });
            if with_diagonal {
                h += scratch.curvature[e];
            }
        }
        (g.value(), h)
    };
    match diagonal {
        None => grad
            .par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(chunk, grad)| {
                for (i, slot) in grad.iter_mut().enumerate() {
                    *slot = node(chunk * CHUNK + i, false).0;
                }
            }),
        Some(diagonal) => grad
            .par_chunks_mut(CHUNK)
            .zip(diagonal.par_chunks_mut(CHUNK))
            .enumerate()
            .for_each(|(chunk, (grad, diagonal))| {
                for (i, (g, h)) in grad.iter_mut().zip(diagonal).enumerate() {
                    (*g, *h) = node(chunk * CHUNK + i, true);
                }
            }),
    }
}

/// A compensated sum (Neumaier's, with the rounding error of each addition formed by Knuth's
/// branch-free TwoSum, which is exact like Neumaier's branch and so gives the same sums): the
/// action is a sum of up to millions of positive terms whose rounding would otherwise hide the
/// last decreases the optimiser makes.
#[derive(Default, Clone, Copy)]
struct Neumaier {
    sum: f64,
    compensation: f64,
}

impl Neumaier {
    fn add(&mut self, x: f64) {
        let t = self.sum + x;
        let x_part = t - self.sum;
        self.compensation += (self.sum - (t - x_part)) + (x - x_part);
        self.sum = t;
    }

    fn value(self) -> f64 {
        self.sum + self.compensation
    }
}
