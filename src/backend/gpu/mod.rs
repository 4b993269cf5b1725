//! The GPU backend: the kernels of [`Backend`] as WGSL compute shaders run through wgpu, each
//! checked against its CPU twin (tests/it/gpu_agreement.rs, `--verify`).
//!
//! Data flow: the problem is uploaded once ([`buffers::ProblemBuffers`]); an evaluation of the
//! action records edge_action (per-edge `w K'(d)`, `w K''(d)` and partial values),
//! gather_gradient (the gradient and the Hessian diagonal as segmented reductions over the
//! incidence list, every loop bounded) and the reductions into one command buffer, submits once
//! and reads back one or two scalars. The solver is the generic [`newton::minimize`] over
//! [`GpuSpace`], whose vectors are device buffers: element-wise operations and Hessian–vector
//! products (hessian_edge, then the same segmented sums) are only recorded; dot products and
//! norms submit and read back one or two scalars. Conjugate gradients keep their coefficients on
//! the device and read their state every few iterations ([`cg`]); a Newton step's trial value
//! and step come back in one read-back. One device serves every kernel.
//!
//! Precision, chosen per adapter when the device is opened ([`adapter`]):
//! - [`Precision::F64`] (datacenter GPUs with full-rate f64, and lavapipe): V, gradient, solver
//!   vectors and every sum are f64; `K` and `σ` are evaluated with f64 + − * / only (f64
//!   `exp`/`log` are broken on lavapipe and RADV), to a few ulp. Results match the CPU to
//!   ~1e-12 relative; the fit converges to the same tolerances as on the CPU.
//! - [`Precision::F32`] (any other GPU, or `DETBAL_GPU_PRECISION=f32`): vectors and per-edge
//!   terms are f32 with f32 `exp`; sums are compensated (two-sum) f32 pairs, read back as f64.
//!   Per-state gradients are good to ~1e-6 of the incident weight; see
//!   [`crate::backend::tolerance`]. A fit runs on the device to its f32 rounding floor and is
//!   finished by f64 Newton steps on the host ([`polish_in_f64`]), so its potentials are the
//!   CPU's to the same tolerance as in f64.
//!
//! Any GPU failure during a kernel (a lost device, a failed allocation, an error a scope or the
//! device's handler caught, a graph too large for the device) is an [`Error::Gpu`]; under
//! `--device auto` (hardware adapters only) the [`super::fallback`] wrapper reruns it on the
//! CPU. Failures while opening the device are handled by [`crate::backend::select`]. [`fault`]
//! injects each kind of failure for tests.
//!
//! ```no_run
//! use detbal::backend::{Backend, DeviceChoice, gpu::GpuBackend};
//! use detbal::fit::problem::ActionProblem;
//! // `Gpu` accepts software adapters (lavapipe); `DETBAL_GPU_PRECISION=f32` forces f32.
//! let gpu = GpuBackend::new(DeviceChoice::Gpu).unwrap();
//! let problem = ActionProblem::new(2, vec![0, 1], vec![1, 0], vec![3.0, 1.0], 0.0).unwrap();
//! let eval = gpu.edge_action(&problem, &[0.5, -0.5]).unwrap();
//! println!("S = {} on {}", eval.value, gpu.info().adapter);
//! ```

mod adapter;
mod buffers;
mod cg;
mod context;
mod counters;
mod edge_action;
pub mod fault;
mod gather_gradient;
mod hessian;
mod reciprocal_triangles;
mod reduce;
mod resample;
mod shaders;
mod vector_ops;

use super::cpu::CpuBackend;
use super::cpu::reciprocal_triangles::OrientedReciprocal;
use super::{ActionEval, Backend, BackendKind, DeviceChoice, DeviceInfo};
use crate::backend::newton::{self, Cg, NewtonOptions, NewtonOutcome, VectorSpace};
use crate::backend::problem::ActionProblem;
use crate::error::{Error, Result};
use buffers::{ProblemBuffers, Recorder};
use context::GpuContext;
pub use context::Unavailable;
pub use counters::GpuCounters;
pub use resample::Draws;
use vector_ops::VectorOp;

pub use super::Precision;

/// The device encoding of vectors and sums in each precision.
impl Precision {
    fn encode(self, x: &[f64]) -> Vec<u8> {
        match self {
            Precision::F64 => bytemuck::cast_slice(x).to_vec(),
            Precision::F32 => x.iter().flat_map(|&v| (v as f32).to_le_bytes()).collect(),
        }
    }

    fn decode_real(self, raw: &[u8]) -> Vec<f64> {
        match self {
            Precision::F64 => raw
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
                .collect(),
            Precision::F32 => raw
                .chunks_exact(4)
                .map(|b| f64::from(f32::from_le_bytes(b.try_into().expect("4 bytes"))))
                .collect(),
        }
    }

    fn decode_acc(self, raw: &[u8]) -> Vec<f64> {
        match self {
            Precision::F64 => self.decode_real(raw),
            Precision::F32 => Precision::F32
                .decode_real(raw)
                .chunks_exact(2)
                .map(|p| p[0] + p[1])
                .collect(),
        }
    }
}

/// Settings of the GPU backend beyond the device choice.
#[derive(Debug, Clone, Default)]
pub struct GpuOptions {
    /// `None`: chosen per adapter ([`adapter::choose_precision`]).
    pub precision: Option<Precision>,
    /// Largest buffer per binding, in bytes; `None`: the device's limit. Smaller values force
    /// the batched paths (tests).
    pub max_binding_bytes: Option<u64>,
    /// Most workgroups per grid dimension; `None`: the device's limit (65,535). Smaller values
    /// force 2-D grids on small inputs (tests).
    pub max_workgroups_per_dimension: Option<u32>,
}

impl GpuOptions {
    /// Reads `DETBAL_GPU_PRECISION` (`f32`, `f64` or `auto`), and checks the testing switches
    /// of [`fault`] (which [`GpuBackend::open`] reads).
    pub fn from_env() -> Result<Self> {
        fault::switches()?;
        let precision = match std::env::var("DETBAL_GPU_PRECISION").as_deref() {
            Err(_) | Ok("auto") | Ok("") => None,
            Ok("f64") => Some(Precision::F64),
            Ok("f32") => Some(Precision::F32),
            Ok(other) => {
                return Err(Error::settings(format!(
                    "DETBAL_GPU_PRECISION is {other:?}; expected f32, f64 or auto"
                )));
            }
        };
        Ok(GpuOptions {
            precision,
            ..GpuOptions::default()
        })
    }
}

struct Kernels {
    cg: cg::CgKernels,
    edge_action: edge_action::EdgeAction,
    gather_gradient: gather_gradient::GatherGradient,
    hessian: hessian::Hessian,
    reciprocal_triangles: reciprocal_triangles::ReciprocalTriangles,
    reduce: reduce::Reduce,
    resample: resample::Resample,
    vector_ops: vector_ops::VectorOps,
}

/// The f32 device's optimum `device` of `problem`, finished by Newton steps in f64 on the host
/// to the caller's `opts`. f32 holds `V` to an ulp of 4e-6 at |V| ≈ 50 and each gradient term
/// to ~6e-8 of its size, so the device stops where that rounding, divided by the curvature,
/// moves weakly tied states by up to 2.5e-2 (hard300k, BENCHMARKS.md "GPU path"). From there a
/// few f64 steps on the host (each one evaluation and a few tree-preconditioned products) reach
/// the CPU's own bound; the passes, steps and status say what ran where.
fn polish_in_f64(
    problem: &ActionProblem,
    device: NewtonOutcome,
    opts: &NewtonOptions,
) -> Result<NewtonOutcome> {
    let host = CpuBackend::new("f64 polish").minimize_action(problem, &device.x, opts)?;
    Ok(NewtonOutcome {
        iterations: device.iterations + host.iterations,
        evaluations: device.evaluations + host.evaluations,
        hessian_products: device.hessian_products + host.hessian_products,
        solves: device.solves + host.solves,
        status: format!(
            "{}; {} Newton steps in f32 on the device, then {} in f64 on the host",
            host.status, device.iterations, host.iterations
        ),
        ..host
    })
}

/// How much looser the gradient test at the rounding floor is in f32 than asked (the fit's
/// `grad_tol`, 1e-8 of the largest incident weight by default): a state's gradient sums f32
/// terms up to that weight, each rounded to ~6e-8 of its size.
const F32_GRADIENT_FACTOR: f64 = 100.0;

pub struct GpuBackend {
    ctx: GpuContext,
    kernels: Kernels,
    info: DeviceInfo,
    max_binding: u64,
}

impl GpuBackend {
    /// The GPU backend for `choice` (`Auto`: hardware adapters only; `Gpu`: software ones too),
    /// with options from the environment. An [`Error::Gpu`] says why no GPU could be used.
    pub fn new(choice: DeviceChoice) -> Result<Self> {
        Self::with_options(choice, GpuOptions::from_env()?)
    }

    pub fn with_options(choice: DeviceChoice, options: GpuOptions) -> Result<Self> {
        Ok(Self::open(choice, options)?)
    }

    /// Like [`GpuBackend::with_options`], telling a fault from `--device auto` passing over a
    /// software renderer; applies the testing switches of [`fault`].
    pub fn open(
        choice: DeviceChoice,
        options: GpuOptions,
    ) -> std::result::Result<Self, Unavailable> {
        let switches = fault::switches()?;
        let (allow_software, why) = match choice {
            DeviceChoice::Cpu => {
                return Err(Unavailable::Declined("--device cpu was asked for".into()));
            }
            DeviceChoice::Gpu => (true, "--device gpu was asked for"),
            DeviceChoice::Auto if switches.auto_takes_software => (
                true,
                "--device auto found a GPU (software ones allowed by DETBAL_ALLOW_SOFTWARE_GPU)",
            ),
            DeviceChoice::Auto => (false, "--device auto found a hardware GPU"),
        };
        let mut ctx = GpuContext::open(allow_software, options.precision, switches.fault)?;
        let grid = &mut ctx.limits.max_compute_workgroups_per_dimension;
        *grid = options
            .max_workgroups_per_dimension
            .unwrap_or(*grid)
            .clamp(1, *grid);
        let kernels = Kernels {
            edge_action: edge_action::EdgeAction::new(&ctx)?,
            gather_gradient: gather_gradient::GatherGradient::new(&ctx)?,
            hessian: hessian::Hessian::new(&ctx)?,
            reciprocal_triangles: reciprocal_triangles::ReciprocalTriangles::new(&ctx)?,
            reduce: reduce::Reduce::new(&ctx)?,
            resample: resample::Resample::new(&ctx)?,
            vector_ops: vector_ops::VectorOps::new(&ctx)?,
            cg: cg::CgKernels::new(&ctx)?,
        };
        let device_max = ctx
            .limits
            .max_storage_buffer_binding_size
            .min(ctx.limits.max_buffer_size);
        let info = DeviceInfo {
            backend: BackendKind::Gpu,
            precision: ctx.precision,
            adapter: ctx.describe(),
            reason: format!("{why}; {}", ctx.precision_text()),
            fault: None,
        };
        Ok(GpuBackend {
            max_binding: options
                .max_binding_bytes
                .unwrap_or(device_max)
                .min(device_max),
            ctx,
            kernels,
            info,
        })
    }

    pub fn precision(&self) -> Precision {
        self.ctx.precision
    }

    /// Raw Philox draws of `resample` for `n` items, computed by kernel `philox_draws`: what the
    /// tests compare with [`crate::rng`] bit for bit.
    pub fn philox_draws(
        &self,
        what: resample::Draws,
        stream: &crate::rng::Stream,
        resample: u32,
        n: u32,
    ) -> Result<Vec<u32>> {
        self.kernels
            .resample
            .draws(&self.ctx, what, stream, resample, n)
    }

    /// Uploads `problem` and returns the optimiser's vector space over it (the action and its
    /// gradient stay on the device; see [`GpuSpace`]).
    pub fn space<'a>(&'a self, problem: &'a ActionProblem) -> Result<GpuSpace<'a>> {
        GpuSpace::new(self, problem)
    }
}

impl Backend for GpuBackend {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// Uploads the problem on every call (a solver keeps it resident in a [`GpuSpace`]).
    fn edge_action(&self, problem: &ActionProblem, v: &[f64]) -> Result<ActionEval> {
        let mut space = self.space(problem)?;
        let x = space.upload(v)?;
        let mut grad = space.zeros()?;
        let value = space.value_grad(&x, &mut grad)?;
        Ok(ActionEval {
            value,
            gradient: space.download(&grad)?,
        })
    }

    fn hessian_product(&self, problem: &ActionProblem, v: &[f64], x: &[f64]) -> Result<Vec<f64>> {
        let mut space = self.space(problem)?;
        let (v, x) = (space.upload(v)?, space.upload(x)?);
        let mut out = space.zeros()?;
        space.value_grad(&v, &mut out)?;
        space.hessian_product(&x, &mut out)?;
        space.download(&out)
    }

    fn minimize_action(
        &self,
        problem: &ActionProblem,
        v0: &[f64],
        opts: &NewtonOptions,
    ) -> Result<NewtonOutcome> {
        if self.precision() == Precision::F64 {
            return newton::minimize(&mut self.space(problem)?, v0, opts);
        }
        // f32 values resolve ~1e-7 of the action, not 1e-14, and a state's gradient, a sum of
        // f32 terms up to its largest incident weight, not 1e-8 of that weight: the default
        // fit of a hard log stopped at its rounding floor at 1.08e-8 (newton.rs tests).
        let loose = NewtonOptions {
            rounding: opts.rounding.max(1e-6),
            grad_tol: opts.grad_tol * F32_GRADIENT_FACTOR,
            ..opts.clone()
        };
        let device = newton::minimize(&mut self.space(problem)?, v0, &loose)?;
        polish_in_f64(problem, device, opts)
    }

    fn reciprocal_triangles(
        &self,
        r: &OrientedReciprocal,
        chunk: usize,
        visit: &mut dyn FnMut(&[[u32; 3]]) -> Result<()>,
    ) -> Result<()> {
        self.kernels.reciprocal_triangles.run(
            &self.ctx,
            r,
            self.max_binding,
            chunk,
            &mut |_, triangles| visit(triangles),
        )
    }

    fn resample(
        &self,
        job: &super::jobs::ResampleJob,
        stream: &crate::rng::Stream,
        resamples: std::ops::Range<u32>,
    ) -> Result<Vec<[f64; 2]>> {
        let kernel = &self.kernels.resample;
        kernel.run(&self.ctx, job, stream, resamples, self.max_binding)
    }
}

/// A vector of the [`GpuSpace`]: one state per element, `Real` (f64 or f32) on the device.
pub struct GpuVector(wgpu::Buffer);

/// Newton–CG vectors in device buffers over one uploaded problem. Element-wise operations and
/// Hessian products are recorded, not submitted; `value_grad`, `dot`,
/// `norm_inf`, `try_step` and `solve` (every few CG iterations) submit everything recorded and
/// read back a few scalars. Like the CPU's space, each evaluation also keeps the per-edge
/// curvatures (the Hessian's weights) and the Hessian diagonal, and `precondition` multiplies by
/// its floored inverse.
pub struct GpuSpace<'a> {
    backend: &'a GpuBackend,
    problem: ProblemBuffers,
    rec: Recorder<'a>,
    /// Inverse Hessian diagonal (floored) at the last evaluated point: the preconditioner.
    inverse_diagonal: wgpu::Buffer,
    /// Scratch vector of [`VectorSpace::damp`].
    scratch: GpuVector,
    /// The problem on the host, for the step's gauge ([`VectorSpace::step_norm`]).
    host_problem: &'a ActionProblem,
    /// The conjugate-gradient dispatches, made at the first solve ([`cg`]).
    cg: Option<cg::CgPlan<'a>>,
    /// With a ridge centred away from 0 ([`ActionProblem::prior_mean`]): the centre `m`, and a
    /// vector for `x − m`.
    prior: Option<PriorMean>,
}

/// The ridge's centre on the device; see [`GpuSpace::record_value`].
struct PriorMean {
    mean: wgpu::Buffer,
    offset: wgpu::Buffer,
}

impl<'a> GpuSpace<'a> {
    fn new(backend: &'a GpuBackend, problem: &'a ActionProblem) -> Result<Self> {
        let buffers = ProblemBuffers::upload(&backend.ctx, problem, backend.max_binding)?;
        let max_items = buffers.n_states.max(buffers.n_partials);
        let ctx = &backend.ctx;
        let ones = vec![1.0; buffers.n_states as usize];
        let bytes = u64::from(buffers.n_states) * ctx.precision.real_bytes();
        let prior = (!problem.prior_mean.is_empty()).then(|| PriorMean {
            mean: buffers::storage_init(
                ctx,
                "prior mean",
                &ctx.precision.encode(&problem.prior_mean),
            ),
            offset: buffers::storage_zeroed(ctx, "prior offset", bytes),
        });
        Ok(GpuSpace {
            backend,
            rec: Recorder::new(ctx, max_items),
            scratch: GpuVector(buffers::storage_zeroed(ctx, "vector", bytes)),
            host_problem: problem,
            cg: None,
            prior,
            problem: buffers,
            inverse_diagonal: buffers::storage_init(
                ctx,
                "preconditioner",
                &ctx.precision.encode(&ones),
            ),
        })
    }

    /// The preconditioner at the last evaluated point: `1 / max(Hessian diagonal, floor)`.
    pub fn preconditioner(&mut self) -> Result<Vec<f64>> {
        let (n, p) = (self.n(), self.inverse_diagonal.clone());
        self.rec.download(&p, n)
    }

    fn n(&self) -> u32 {
        self.problem.n_states
    }

    /// Records an evaluation at `x` (gradient into `grad`): the value's parts go into the first
    /// scalar slots, whose number it returns ([`GpuSpace::value_from`]). The kernels apply the
    /// ridge centred at 0; a centre `m` is applied here: `grad −= λ m`, and the ridge's value is
    /// taken over `x − m`.
    fn record_value(&mut self, x: &GpuVector, grad: &GpuVector) -> u32 {
        let (k, p, rec) = (&self.backend.kernels, &self.problem, &mut self.rec);
        k.edge_action.record(rec, p, &x.0);
        k.gather_gradient
            .record(rec, p, &x.0, &grad.0, &self.inverse_diagonal);
        k.reduce.sums(rec, &p.partials, p.n_partials, 0);
        if p.l2 <= 0.0 {
            return 1;
        }
        let (l2, n) = (p.l2, p.n_states);
        let Some(PriorMean { mean, offset }) = &self.prior else {
            k.reduce.dot(rec, &x.0, &x.0, n, 1);
            return 2;
        };
        let (mean, offset) = (mean.clone(), offset.clone());
        self.op(VectorOp::Axpy(-l2), &mean, &grad.0);
        let bytes = u64::from(n) * self.backend.ctx.precision.real_bytes();
        if bytes > 0 {
            self.rec.copy(&x.0, &offset, bytes);
        }
        self.op(VectorOp::Axpy(-1.0), &mean, &offset);
        (self.backend.kernels.reduce).dot(&mut self.rec, &offset, &offset, n, 1);
        2
    }

    /// The objective from the scalar slots of [`GpuSpace::record_value`].
    fn value_from(&self, slots: &[f64]) -> f64 {
        if self.problem.l2 > 0.0 {
            slots[0] + 0.5 * self.problem.l2 * slots[1]
        } else {
            slots[0]
        }
    }

    fn op(&mut self, op: VectorOp, x: &wgpu::Buffer, y: &wgpu::Buffer) {
        let n = self.n();
        self.backend
            .kernels
            .vector_ops
            .record(&mut self.rec, op, x, y, n);
    }
}

impl VectorSpace for GpuSpace<'_> {
    type Vector = GpuVector;

    fn upload(&mut self, x: &[f64]) -> Result<GpuVector> {
        assert_eq!(x.len(), self.n() as usize, "vector length");
        let ctx = &self.backend.ctx;
        Ok(GpuVector(buffers::storage_init(
            ctx,
            "vector",
            &ctx.precision.encode(x),
        )))
    }

    fn download(&mut self, x: &GpuVector) -> Result<Vec<f64>> {
        let n = self.n();
        self.rec.download(&x.0, n)
    }

    fn zeros(&mut self) -> Result<GpuVector> {
        let ctx = &self.backend.ctx;
        let bytes = u64::from(self.n()) * ctx.precision.real_bytes();
        Ok(GpuVector(buffers::storage_zeroed(ctx, "vector", bytes)))
    }

    fn value_grad(&mut self, x: &GpuVector, grad: &mut GpuVector) -> Result<f64> {
        let slots = self.record_value(x, grad);
        let s = self.rec.read_scalars(slots)?;
        Ok(self.value_from(&s))
    }

    fn hessian_product(&mut self, v: &GpuVector, out: &mut GpuVector) -> Result<()> {
        let k = &self.backend.kernels;
        k.hessian.record(
            &mut self.rec,
            &k.gather_gradient,
            &self.problem,
            &v.0,
            &out.0,
        );
        Ok(())
    }

    fn damp(&mut self, mu: f64, v: &GpuVector, out: &mut GpuVector) -> Result<()> {
        // scratch = D ∘ v (D = 1 / preconditioner), then out += μ scratch + μ v.
        let bytes = u64::from(self.n()) * self.backend.ctx.precision.real_bytes();
        if bytes > 0 {
            self.rec.copy(&v.0, &self.scratch.0, bytes);
        }
        let (p, scratch) = (self.inverse_diagonal.clone(), self.scratch.0.clone());
        self.op(VectorOp::Div, &p, &scratch);
        self.op(VectorOp::Axpy(mu), &scratch, &out.0);
        self.op(VectorOp::Axpy(mu), &v.0, &out.0);
        Ok(())
    }

    fn dot(&mut self, a: &GpuVector, b: &GpuVector) -> Result<f64> {
        let n = self.n();
        self.backend
            .kernels
            .reduce
            .dot(&mut self.rec, &a.0, &b.0, n, 0);
        Ok(self.rec.read_scalars(1)?[0])
    }

    fn norm_inf(&mut self, a: &GpuVector) -> Result<f64> {
        let n = self.n();
        self.backend
            .kernels
            .reduce
            .max_abs(&mut self.rec, &a.0, n, 0);
        Ok(self.rec.read_scalars(1)?[0])
    }

    /// Downloads the step (once per Newton step) and removes the gauge on the host.
    fn step_norm(&mut self, delta: &GpuVector) -> Result<f64> {
        if self.problem.l2 > 0.0 {
            return self.norm_inf(delta);
        }
        let x = self.download(delta)?;
        Ok(self.host_problem.gauge_free_max(&x))
    }

    fn axpy(&mut self, alpha: f64, x: &GpuVector, y: &mut GpuVector) -> Result<()> {
        self.op(VectorOp::Axpy(alpha), &x.0, &y.0);
        Ok(())
    }

    fn scale(&mut self, alpha: f64, x: &mut GpuVector) -> Result<()> {
        // The shader's `x` binding is not read by `Scale`; any other vector fills it.
        let unused = self.problem.curvature_floor.clone();
        self.op(VectorOp::Scale(alpha), &unused, &x.0);
        Ok(())
    }

    fn assign(&mut self, src: &GpuVector, dst: &mut GpuVector) -> Result<()> {
        let bytes = u64::from(self.n()) * self.backend.ctx.precision.real_bytes();
        if bytes > 0 {
            self.rec.copy(&src.0, &dst.0, bytes);
        }
        Ok(())
    }

    fn precondition(&mut self, x: &mut GpuVector) -> Result<()> {
        let p = self.inverse_diagonal.clone();
        self.op(VectorOp::Mul, &p, &x.0);
        Ok(())
    }

    fn solve(&mut self, cg: &mut Cg<GpuVector>, b: &GpuVector, damping: (f64, f64)) -> Result<f64> {
        self.solve_on_device(cg, b, damping)
    }

    /// One read-back: the trial's value with the step (downloaded for its gauge, as
    /// [`VectorSpace::step_norm`]) or, with a ridge, its largest coordinate.
    fn try_step(
        &mut self,
        x: &GpuVector,
        delta: &GpuVector,
        trial: &mut GpuVector,
        g_trial: &mut GpuVector,
    ) -> Result<(f64, f64)> {
        self.assign(x, trial)?;
        self.axpy(-1.0, delta, trial)?;
        let slots = self.record_value(trial, g_trial);
        let n = self.n();
        if self.problem.l2 > 0.0 {
            let reduce = &self.backend.kernels.reduce;
            reduce.max_abs(&mut self.rec, &delta.0, n, slots);
            let s = self.rec.read_scalars(slots + 1)?;
            return Ok((s[slots as usize], self.value_from(&s)));
        }
        let precision = self.backend.ctx.precision;
        let scalars = self.rec.scalars().clone();
        let raw = self.rec.read_parts(&[
            (&scalars, 0, u64::from(slots) * Precision::ACC_BYTES),
            (&delta.0, 0, u64::from(n) * precision.real_bytes()),
        ])?;
        let step = precision.decode_real(&raw[1]);
        let value = self.value_from(&precision.decode_acc(&raw[0]));
        Ok((self.host_problem.gauge_free_max(&step), value))
    }
}
