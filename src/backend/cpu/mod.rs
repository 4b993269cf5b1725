//! The CPU backend: f64 twins of the WGSL kernels, parallel over fixed-size chunks (rayon) so
//! that results do not depend on the number of threads.

mod edge_action;
mod laplacian;
pub mod reciprocal_triangles;
pub mod resample;
mod tree_preconditioner;

pub use edge_action::{EdgeScratch, edge_action};
pub use laplacian::Laplacian;
pub use tree_preconditioner::TreePreconditioner;

use super::{ActionEval, Backend, BackendKind, DeviceInfo, Precision};
use crate::backend::newton::{self, NewtonOptions, NewtonOutcome, VectorSpace};
use crate::backend::problem::ActionProblem;
use crate::backend::renumber::Renumbered;
use crate::error::Result;
use ndarray::Array1;

pub struct CpuBackend {
    info: DeviceInfo,
    /// Newton–CG preconditioned by a spanning forest (default) or by the diagonal
    /// (`DETBAL_PRECONDITIONER=diagonal`, the GPU's, for comparison).
    tree: bool,
}

impl CpuBackend {
    pub fn new(reason: &str) -> Self {
        let threads = rayon::current_num_threads();
        CpuBackend {
            info: DeviceInfo {
                backend: BackendKind::Cpu,
                precision: Precision::F64,
                adapter: format!(
                    "{threads} CPU thread{}",
                    if threads == 1 { "" } else { "s" }
                ),
                reason: reason.to_string(),
                fault: None,
            },
            tree: std::env::var("DETBAL_PRECONDITIONER").as_deref() != Ok("diagonal"),
        }
    }

    /// The CPU backend taking over from a GPU that failed with `fault`.
    pub fn after_fault(reason: &str, fault: String) -> Self {
        let mut cpu = CpuBackend::new(reason);
        cpu.info.fault = Some(fault);
        cpu
    }
}

impl Backend for CpuBackend {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn edge_action(&self, problem: &ActionProblem, v: &[f64]) -> Result<ActionEval> {
        let mut gradient = vec![0.0; problem.n_states];
        let value = edge_action(problem, v, &mut EdgeScratch::default(), &mut gradient, None);
        Ok(ActionEval { value, gradient })
    }

    fn hessian_product(&self, problem: &ActionProblem, v: &[f64], x: &[f64]) -> Result<Vec<f64>> {
        let mut scratch = EdgeScratch::default();
        let mut out = vec![0.0; problem.n_states];
        edge_action(problem, v, &mut scratch, &mut out, None);
        let mut laplacian = Laplacian::new(problem);
        laplacian.set_weights(scratch.curvature());
        laplacian.product(x, &mut out);
        Ok(out)
    }

    fn minimize_action(
        &self,
        problem: &ActionProblem,
        v0: &[f64],
        opts: &NewtonOptions,
    ) -> Result<NewtonOutcome> {
        // In breadth-first order: see `renumber`.
        if problem.breadth_first {
            return newton::minimize(&mut HostSpace::new(problem, self.tree), v0, opts);
        }
        let local = Renumbered::new(problem)?;
        let space = &mut HostSpace::new(&local.problem, self.tree);
        let mut outcome = newton::minimize(space, &local.to_new(v0), opts)?;
        outcome.x = local.to_old(&outcome.x);
        Ok(outcome)
    }

    fn reciprocal_triangles(
        &self,
        r: &reciprocal_triangles::OrientedReciprocal,
        chunk: usize,
        visit: &mut dyn FnMut(&[[u32; 3]]) -> Result<()>,
    ) -> Result<()> {
        reciprocal_triangles::enumerate(r, 0..r.n_edges(), chunk, visit)
    }

    fn resample(
        &self,
        job: &super::jobs::ResampleJob,
        stream: &crate::rng::Stream,
        resamples: std::ops::Range<u32>,
    ) -> Result<Vec<[f64; 2]>> {
        Ok(resample::resample(job, stream, resamples))
    }
}

/// Newton–CG vectors in host memory over one action problem.
pub struct HostSpace<'a> {
    problem: &'a ActionProblem,
    scratch: EdgeScratch,
    /// The Hessian's pairs, weighted at the last evaluated point: the products.
    laplacian: Laplacian,
    /// Inverse Hessian diagonal (floored) at the last evaluated point: the preconditioner.
    inverse_diagonal: Array1<f64>,
    /// Lower bounds of the Hessian diagonal, per state.
    floor: Vec<f64>,
    /// The spanning-forest preconditioner, or `None` for the diagonal one.
    tree: Option<TreePreconditioner>,
}

impl<'a> HostSpace<'a> {
    /// The space over `problem`, preconditioned by a spanning forest of the Hessian's graph
    /// (`tree`, the default) or by its diagonal.
    pub fn new(problem: &'a ActionProblem, tree: bool) -> Self {
        let laplacian = Laplacian::new(problem);
        HostSpace {
            problem,
            scratch: EdgeScratch::default(),
            inverse_diagonal: Array1::ones(problem.n_states),
            floor: problem.curvature_floor(),
            tree: tree.then(|| TreePreconditioner::new(problem, &laplacian)),
            laplacian,
        }
    }
}

impl VectorSpace for HostSpace<'_> {
    type Vector = Array1<f64>;

    fn upload(&mut self, x: &[f64]) -> Result<Array1<f64>> {
        Ok(Array1::from(x.to_vec()))
    }
    fn download(&mut self, x: &Array1<f64>) -> Result<Vec<f64>> {
        Ok(x.to_vec())
    }
    fn zeros(&mut self) -> Result<Array1<f64>> {
        Ok(Array1::zeros(self.problem.n_states))
    }
    fn value_grad(&mut self, x: &Array1<f64>, grad: &mut Array1<f64>) -> Result<f64> {
        let (x, grad) = (
            x.as_slice().expect("contiguous"),
            grad.as_slice_mut().expect("contiguous"),
        );
        let inverse = self.inverse_diagonal.as_slice_mut().expect("contiguous");
        let value = edge_action(self.problem, x, &mut self.scratch, grad, Some(inverse));
        for (p, floor) in inverse.iter_mut().zip(&self.floor) {
            *p = p.max(*floor);
        }
        self.laplacian.set_weights(self.scratch.curvature());
        if let Some(tree) = &mut self.tree {
            tree.factor(&self.laplacian, inverse);
        }
        inverse.iter_mut().for_each(|p| *p = 1.0 / *p);
        Ok(value)
    }
    fn hessian_product(&mut self, v: &Array1<f64>, out: &mut Array1<f64>) -> Result<()> {
        let (v, out) = (
            v.as_slice().expect("contiguous"),
            out.as_slice_mut().expect("contiguous"),
        );
        self.laplacian.product(v, out);
        Ok(())
    }
    fn damp(&mut self, mu: f64, v: &Array1<f64>, out: &mut Array1<f64>) -> Result<()> {
        out.iter_mut()
            .zip(v.iter().zip(&self.inverse_diagonal))
            .for_each(|(o, (v, p))| *o += mu * (1.0 / p + 1.0) * v);
        Ok(())
    }
    fn dot(&mut self, a: &Array1<f64>, b: &Array1<f64>) -> Result<f64> {
        Ok(a.dot(b))
    }
    fn norm_inf(&mut self, a: &Array1<f64>) -> Result<f64> {
        Ok(a.fold(0.0, |m, v| m.max(v.abs())))
    }
    fn step_norm(&mut self, delta: &Array1<f64>) -> Result<f64> {
        Ok(self
            .problem
            .gauge_free_max(delta.as_slice().expect("contiguous")))
    }
    fn axpy(&mut self, alpha: f64, x: &Array1<f64>, y: &mut Array1<f64>) -> Result<()> {
        y.scaled_add(alpha, x);
        Ok(())
    }
    fn scale(&mut self, alpha: f64, x: &mut Array1<f64>) -> Result<()> {
        *x *= alpha;
        Ok(())
    }
    fn assign(&mut self, src: &Array1<f64>, dst: &mut Array1<f64>) -> Result<()> {
        dst.assign(src);
        Ok(())
    }
    fn precondition(&mut self, x: &mut Array1<f64>) -> Result<()> {
        match &mut self.tree {
            Some(tree) => tree.solve(x.as_slice_mut().expect("contiguous")),
            None => *x *= &self.inverse_diagonal,
        }
        Ok(())
    }
}
