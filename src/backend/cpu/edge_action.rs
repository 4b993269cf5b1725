//! CPU twin of `shaders/edge_action.wgsl` and `shaders/gather_gradient.wgsl`: per-edge action
//! terms and derivatives, then the gradient as a reduction over each node's incidence list.

use crate::fit::problem::{ActionProblem, action_terms};
use rayon::prelude::*;

/// Edges (or nodes) per parallel task; fixed so that sums do not depend on the thread count.
const CHUNK: usize = 1 << 14;

/// Per-edge scratch space: `w_e K'(d_e)` and `w_e K''(d_e)`.
#[derive(Default)]
pub struct EdgeScratch {
    deriv: Vec<f64>,
    curvature: Vec<f64>,
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
    gather(problem, &scratch.deriv, true, v, grad);
    if let Some(diagonal) = hessian_diagonal {
        gather(problem, &scratch.curvature, false, v, diagonal);
    }
    let mut total = Neumaier::default();
    partial.into_iter().for_each(|p| total.add(p.value()));
    total.add(0.5 * problem.l2 * v.iter().map(|x| x * x).sum::<f64>());
    total.value()
}

/// Per node: `λ v_f + Σ ±per_edge` over its incidence list (signed: + as source, − as target)
/// for the gradient, or `λ + Σ per_edge` (unsigned) for the Hessian diagonal.
fn gather(problem: &ActionProblem, per_edge: &[f64], signed: bool, v: &[f64], out: &mut [f64]) {
    out.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(chunk, out)| {
            let base = chunk * CHUNK;
            for (i, slot) in out.iter_mut().enumerate() {
                let f = base + i;
                let range =
                    problem.incidence_ptr[f] as usize..problem.incidence_ptr[f + 1] as usize;
                let mut acc = if signed {
                    problem.l2 * v[f]
                } else {
                    problem.l2
                };
                for &entry in &problem.incidence[range] {
                    let x = per_edge[(entry >> 1) as usize];
                    acc += if signed && entry & 1 == 1 { -x } else { x };
                }
                *slot = acc;
            }
        });
}

/// Neumaier's compensated sum: the action is a sum of up to millions of positive terms whose
/// rounding would otherwise hide the last decreases the optimiser makes.
#[derive(Default, Clone, Copy)]
struct Neumaier {
    sum: f64,
    compensation: f64,
}

impl Neumaier {
    fn add(&mut self, x: f64) {
        let t = self.sum + x;
        self.compensation += if self.sum.abs() >= x.abs() {
            (self.sum - t) + x
        } else {
            (x - t) + self.sum
        };
        self.sum = t;
    }

    fn value(self) -> f64 {
        self.sum + self.compensation
    }
}
