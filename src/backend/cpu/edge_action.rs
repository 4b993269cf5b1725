//! CPU twin of `shaders/edge_action.wgsl` and `shaders/gather_gradient.wgsl`: per-edge action
//! terms and derivatives, then the gradient as a reduction over each node's incidence list.

use crate::fit::problem::{ActionProblem, sigmoid_neg, softplus_neg};
use rayon::prelude::*;

/// Edges (or nodes) per parallel task; fixed so that sums do not depend on the thread count.
const CHUNK: usize = 1 << 14;

/// Returns the action at `v` and writes its gradient; `deriv` (one per edge) is scratch space
/// that ends up holding `w_e K'(d_e)`.
pub fn edge_action(problem: &ActionProblem, v: &[f64], deriv: &mut [f64], grad: &mut [f64]) -> f64 {
    let partial: Vec<Neumaier> = deriv
        .par_chunks_mut(CHUNK)
        .enumerate()
        .map(|(chunk, out)| {
            let base = chunk * CHUNK;
            let mut sum = Neumaier::default();
            for (i, slot) in out.iter_mut().enumerate() {
                let e = base + i;
                let d = v[problem.src[e] as usize] - v[problem.dst[e] as usize];
                let w = problem.weight[e];
                sum.add(w * softplus_neg(d));
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
    let mut total = Neumaier::default();
    partial.into_iter().for_each(|p| total.add(p.value()));
    total.add(0.5 * problem.l2 * v.iter().map(|x| x * x).sum::<f64>());
    total.value()
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
