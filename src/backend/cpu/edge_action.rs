//! CPU twin of `shaders/edge_action.wgsl` and `shaders/gather_gradient.wgsl`: per-edge action
//! terms and derivatives, then the gradient as a reduction over each node's incidence list.

use crate::fit::problem::{ActionProblem, sigmoid_neg, softplus_neg};
use rayon::prelude::*;

/// Edges (or nodes) per parallel task; fixed so that sums do not depend on the thread count.
const CHUNK: usize = 1 << 14;

/// Returns the action at `v` and writes its gradient; `deriv` (one per edge) is scratch space
/// that ends up holding `w_e K'(d_e)`.
pub fn edge_action(problem: &ActionProblem, v: &[f64], deriv: &mut [f64], grad: &mut [f64]) -> f64 {
    let partial: Vec<f64> = deriv
        .par_chunks_mut(CHUNK)
        .enumerate()
        .map(|(chunk, out)| {
            let base = chunk * CHUNK;
            let mut sum = 0.0;
            for (i, slot) in out.iter_mut().enumerate() {
                let e = base + i;
                let d = v[problem.src[e] as usize] - v[problem.dst[e] as usize];
                let w = problem.weight[e];
                sum += w * softplus_neg(d);
                *slot = -w * sigmoid_neg(d);
            }
            sum
        })
        .collect();
    let deriv = &*deriv;
    grad.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(chunk, out)| {
            let base = chunk * CHUNK;
            for (i, slot) in out.iter_mut().enumerate() {
                let f = base + i;
                let range =
                    problem.incidence_ptr[f] as usize..problem.incidence_ptr[f + 1] as usize;
                let mut g = problem.l2 * v[f];
                for &entry in &problem.incidence[range] {
                    let d = deriv[(entry >> 1) as usize];
                    g += if entry & 1 == 0 { d } else { -d };
                }
                *slot = g;
            }
        });
    let ridge = 0.5 * problem.l2 * v.iter().map(|x| x * x).sum::<f64>();
    partial.iter().sum::<f64>() + ridge
}
