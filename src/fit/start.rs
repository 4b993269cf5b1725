//! The fit's starting point: the weighted least-squares potential of the reciprocal pairs.
//!
//! A reciprocal pair `f ⇄ g` (weights `a = w(f→g)`, `b = w(g→f)`) enters the action as
//! `a K(d) + b K(−d)`, `d = V_f − V_g`, minimised at `d* = log(a/b)` with curvature
//! `ab/(a+b)` there. Replacing every pair's term by its quadratic model around its own optimum,
//! `ab/(a+b) (d − d*)²/2`, gives a weighted least-squares problem whose normal equations are one
//! graph-Laplacian solve. From `V = 0`, Newton's steps on states whose optimum lies far away are
//! bounded by a few units each (the curvature of their edges decays like `e^(−|d|)`); from here
//! most states start near their optimum. A one-way arc `f → g` inside a component has no finite
//! `d*`; it enters as if its reverse had been seen with `ONE_WAY` times its weight.
//!
//! The solve is Newton–CG's conjugate gradients ([`Cg`]) preconditioned by the spanning forest
//! of the pairs ([`TreePreconditioner`]), on the host; the potential it returns serves every
//! backend. Its work is counted in the fit's passes: its right-hand side and each Laplacian
//! product read every pair once, and there are no more pairs than edges.

use super::newton::{Cg, HostSpace};
use super::problem::{ActionProblem, offset_from};
use crate::backend::cpu::{Laplacian, TreePreconditioner};
use crate::error::Result;

/// The weight of the pseudo-reverse of a one-way arc, relative to the arc's (measured:
/// BENCHMARKS.md, "Fitting the hard log").
const ONE_WAY: f64 = 0.5;

/// The least-squares start for `problem`, one value per state, and the passes over the edges
/// it took. The solve is loose (the first forcing term of Newton–CG, 0.5: a few products): the
/// start only needs to put states within reach of Newton's fast phase.
pub(super) fn least_squares(problem: &ActionProblem) -> Result<(Vec<f64>, usize)> {
    let mut model = PairModel::new(problem)?;
    let mut gradient = vec![0.0; problem.n_states];
    model.evaluate(&vec![0.0; problem.n_states], &mut gradient)?;
    let mut cg = Cg::new(&mut model)?;
    cg.solve(&mut model, &gradient, (0.0, f64::INFINITY))?;
    // One Newton step on the quadratic from V = 0.
    let start = cg.x.iter().map(|d| -d).collect();
    Ok((start, 1 + cg.products))
}

/// The quadratic model `Σ_pairs c (V_f − V_g − t)²/2 + λ/2 ‖V − m‖²` of the action.
struct PairModel {
    l2: f64,
    /// The ridge's centre `m` ([`ActionProblem::prior_mean`]; empty for 0).
    prior_mean: Vec<f64>,
    /// The pairs' Laplacian with weights `c`.
    laplacian: Laplacian,
    /// Per Laplacian entry `(f, g)`: the target `t` of `V_f − V_g` (`t_gf = −t_fg`).
    target: Vec<f64>,
    diagonal: Vec<f64>,
    tree: TreePreconditioner,
}

impl PairModel {
    fn new(problem: &ActionProblem) -> Result<Self> {
        let mut laplacian = Laplacian::new(problem);
        let mut target = vec![0.0; laplacian.n_entries()];
        let mut k = 0;
        // Entries come in CSR order: entry `k` is the `k`-th call.
        laplacian.set_weights_by(|f, g, arcs| {
            // The weights of lo → hi and hi → lo.
            let lo = f.min(g) as u32;
            let (mut a, mut b) = (0.0, 0.0);
            for &e in arcs {
                if problem.src[e as usize] == lo {
                    a += problem.weight[e as usize];
                } else {
                    b += problem.weight[e as usize];
                }
            }
            // A one-way arc's missing reverse is seen with `ONE_WAY` times its weight.
            if a == 0.0 || b == 0.0 {
                (a, b) = (a.max(ONE_WAY * b), b.max(ONE_WAY * a));
            }
            let t = (a / b).ln();
            target[k] = if f < g { t } else { -t };
            k += 1;
            a * b / (a + b)
        });
        let mut diagonal = problem.curvature_floor();
        for (f, d) in diagonal.iter_mut().enumerate() {
            for (_, _, c) in laplacian.entries(f) {
                *d += c;
            }
        }
        let mut tree = TreePreconditioner::new(problem, &laplacian);
        tree.factor(&laplacian, &diagonal);
        Ok(PairModel {
            l2: problem.l2,
            prior_mean: problem.prior_mean.clone(),
            laplacian,
            target,
            diagonal,
            tree,
        })
    }
}

impl HostSpace for PairModel {
    fn dim(&self) -> usize {
        self.diagonal.len()
    }
    fn evaluate(&mut self, x: &[f64], grad: &mut [f64]) -> Result<f64> {
        let mut value = 0.0;
        for (f, g) in grad.iter_mut().enumerate() {
            let off = offset_from(&self.prior_mean, f, x[f]);
            *g = self.l2 * off;
            value += self.l2 * off * off / 2.0;
            for (k, h, c) in self.laplacian.entries(f) {
                let r = x[f] - x[h] - self.target[k];
                *g += c * r;
                // Each pair once.
                if f < h {
                    value += c * r * r / 2.0;
                }
            }
        }
        Ok(value)
    }
    fn hessian_times(&mut self, v: &[f64], out: &mut [f64]) -> Result<()> {
        self.laplacian.product(v, out);
        Ok(())
    }
    fn diagonal(&self) -> &[f64] {
        &self.diagonal
    }
    fn precondition(&mut self, x: &mut [f64]) {
        self.tree.solve(x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a path of reciprocal pairs the forest is the whole graph, so the loose solve is exact
    /// up to the forest's `ε = 1e-6`: each difference is its pair's `log(a/b)`.
    #[test]
    fn solves_a_path_of_pairs_exactly() {
        // 0 ⇄ 1 (3 : 1), 1 ⇄ 2 (1 : 4), 2 → 3 one-way with 3 → 2 in the pair's reverse (2 : 5).
        let p = ActionProblem::new(
            4,
            vec![0, 1, 1, 2, 2, 3],
            vec![1, 0, 2, 1, 3, 2],
            vec![3.0, 1.0, 1.0, 4.0, 2.0, 5.0],
            0.0,
        )
        .unwrap();
        let (v, passes) = least_squares(&p).unwrap();
        let expected = [3f64.ln(), 0.25f64.ln(), 0.4f64.ln()];
        for (i, e) in expected.iter().enumerate() {
            let d = v[i] - v[i + 1];
            assert!((d - e).abs() < 1e-5, "V{i} − V{} = {d}, not {e}", i + 1);
        }
        assert!((2..=3).contains(&passes), "{passes} passes");
    }

    /// A one-way arc inside a cycle pulls its ends `log(1/ONE_WAY)` apart in the model.
    #[test]
    fn a_one_way_arc_has_a_finite_target() {
        let p = ActionProblem::new(2, vec![0], vec![1], vec![2.0], 0.0).unwrap();
        let (v, _) = least_squares(&p).unwrap();
        assert!((v[0] - v[1] - 2f64.ln()).abs() < 1e-5, "{v:?}");
    }
}
