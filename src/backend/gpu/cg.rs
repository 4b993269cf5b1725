//! Conjugate gradients with their coefficients on the device ([`VectorSpace::solve`] of
//! [`GpuSpace`]; docs/GPU.md §3.4). The host's [`Cg::solve`] reads back `rᵀu`, `wᵀu` and
//! `‖δ‖∞` in every iteration to form `α` and `β`; here a one-workgroup kernel forms them into a
//! state buffer that the vector kernels read, so an iteration is recorded without a read-back
//! and the host reads the state (has the solve stopped, and why) after 2, 4, 8, then every
//! [`CHECK_EVERY`] iterations. Iterations recorded after the stop find the state stopped and leave the vectors
//! as they are. The stop tests and the forcing term are the host's, step for step, so the
//! iterates are the host's to rounding.
//!
//! One iteration is five kinds of dispatch, all with bind groups made once per vector set
//! ([`CgPlan`]): hessian_edge (flows of `u`), gather_gradient and its carry levels (`H u` summed
//! into grad_acc), cg_product (`w`, grad_acc zeroed, partial `wᵀu`), cg_coefficients (`α`, `β`,
//! the stop) and cg_update (`p`, `s`, `x`, `r`, the next `u = P r`, partial `rᵀu` and `‖x‖∞`).

use super::buffers::{self, Dispatch, Params, groups_for};
use super::context::{Access, GpuContext, Pipeline};
use super::shaders::{self, ITEMS, WG};
use super::{GpuSpace, GpuVector, Precision};
use crate::backend::newton::{CG_LIMIT, Cg, VectorSpace};
use crate::error::{Error, Result};

/// The most iterations recorded between two reads of the state. Each read is a round trip and
/// each iteration recorded after the stop a wasted pass over the edges, so the reads come after
/// 2, 4, 8, 16, 24, … iterations: at most a third of a short solve's iterations and 8 of a long
/// one's are wasted (docs/GPU.md §3.4).
pub const CHECK_EVERY: usize = 8;
/// Iterations recorded before the first read.
const FIRST_CHECK: usize = 2;

/// Values of `CgState.done` (shaders/cg.wgsl).
const RUNNING: u32 = 0;
const RADIUS: u32 = 2;
const LIMIT: u32 = 4;

pub struct CgKernels {
    start: Pipeline,
    update: Pipeline,
    product: Pipeline,
    coefficients: Pipeline,
}

impl CgKernels {
    pub fn new(ctx: &GpuContext) -> Result<Self> {
        use Access::*;
        let update = [
            ReadWrite, Read, ReadWrite, ReadWrite, Read, ReadWrite, ReadWrite, ReadWrite,
        ];
        let product = [ReadWrite, Read, Read, ReadWrite, ReadWrite];
        Ok(CgKernels {
            start: ctx.pipeline(shaders::CG_UPDATE, &update, &[("OP", 0.0)])?,
            update: ctx.pipeline(shaders::CG_UPDATE, &update, &[("OP", 1.0)])?,
            product: ctx.pipeline(shaders::CG_PRODUCT, &product, &[])?,
            coefficients: ctx.pipeline(shaders::CG_COEFFICIENTS, &[ReadWrite], &[])?,
        })
    }
}

/// Bytes of `CgState` (shaders/cg.wgsl): four Reals, four u32, eight Reals.
pub fn state_bytes(precision: Precision) -> u64 {
    12 * precision.real_bytes() + 16
}

/// The dispatches of one vector set, bind groups made once.
pub struct CgPlan<'k> {
    /// The vectors it binds: `x, r, u, w, p, s` of the [`Cg`].
    vectors: [wgpu::Buffer; 6],
    /// `CgScalars`: the state, then the partials.
    scalars: wgpu::Buffer,
    start: Dispatch<'k>,
    iteration: Vec<Dispatch<'k>>,
}

/// What the host reads of the state.
struct Progress {
    iteration: u32,
    done: u32,
    gamma0: f64,
    eta: f64,
    size: f64,
}

impl Progress {
    fn decode(precision: Precision, raw: &[u8]) -> Progress {
        let real = precision.real_bytes() as usize;
        let word = |i: usize| {
            u32::from_le_bytes(raw[4 * real + 4 * i..][..4].try_into().expect("4 bytes"))
        };
        // alpha, beta, gamma_old, alpha_old, goal, gamma0, eta, size
        let tail = precision.decode_real(&raw[4 * real + 16..][..8 * real]);
        Progress {
            iteration: word(2),
            done: word(3),
            gamma0: tail[5],
            eta: tail[6],
            size: tail[7],
        }
    }
}

/// The host's part of the state for one solve: damping, radius, the last solve's forcing.
fn control(precision: Precision, (mu, radius): (f64, f64), last: Option<(f64, f64)>) -> Vec<u8> {
    let (g_last, eta_last) = last.unwrap_or((0.0, 0.0));
    let mut bytes = precision.encode(&[mu, radius, g_last, eta_last]);
    for word in [u32::from(last.is_some()), CG_LIMIT as u32, 0, 0] {
        bytes.extend(word.to_le_bytes());
    }
    bytes.extend(precision.encode(&[0.0; 8]));
    bytes
}

impl<'a> GpuSpace<'a> {
    /// The dispatches of conjugate gradients over `cg`'s vectors.
    fn cg_plan(&self, cg: &Cg<GpuVector>) -> CgPlan<'a> {
        let (ctx, k, p) = (&self.backend.ctx, &self.backend.kernels, &self.problem);
        let parts = groups_for(p.n_states, ITEMS * WG);
        let acc = Precision::ACC_BYTES;
        let scalars_bytes = state_bytes(ctx.precision) + 3 * u64::from(parts) * acc;
        let scalars = buffers::storage_zeroed(ctx, "cg scalars", scalars_bytes);
        let per_state = |kernel: &'a Pipeline, bound: &[&wgpu::Buffer], params: Params| Dispatch {
            kernel,
            group: kernel.bind(ctx, bound),
            params: Params {
                extra: parts,
                ..params
            },
            groups: parts,
        };
        let n = Params::new(p.n_states);
        let (x, r, u, w) = (&cg.x.0, &cg.r.0, &cg.u.0, &cg.w.0);
        let update = [
            &scalars,
            &self.inverse_diagonal,
            r,
            u,
            w,
            &cg.p.0,
            &cg.s.0,
            x,
        ];
        let mut iteration = k.hessian.flows(ctx, p, u);
        iteration.extend(k.gather_gradient.signed_plan(ctx, p));
        iteration.push(per_state(
            &k.cg.product,
            &[&scalars, &self.inverse_diagonal, u, &p.grad_acc, w],
            n.alpha(p.l2),
        ));
        iteration.push(Dispatch {
            kernel: &k.cg.coefficients,
            group: k.cg.coefficients.bind(ctx, &[&scalars]),
            params: Params { extra: parts, ..n },
            groups: 1,
        });
        iteration.push(per_state(&k.cg.update, &update, n));
        CgPlan {
            vectors: [x, r, u, w, &cg.p.0, &cg.s.0].map(Clone::clone),
            start: per_state(&k.cg.start, &update, n),
            scalars,
            iteration,
        }
    }

    /// [`VectorSpace::solve`] with the coefficients on the device (module docs).
    pub(super) fn solve_on_device(
        &mut self,
        cg: &mut Cg<GpuVector>,
        b: &GpuVector,
        (mu, radius): (f64, f64),
    ) -> Result<f64> {
        let vectors = [&cg.x, &cg.r, &cg.u, &cg.w, &cg.p, &cg.s].map(|v| v.0.clone());
        if self.cg.as_ref().is_none_or(|plan| plan.vectors != vectors) {
            self.cg = Some(self.cg_plan(cg));
        }
        let plan = self.cg.as_ref().expect("planned");
        let (backend, n) = (self.backend, self.problem.n_states);
        let ctx = &backend.ctx;
        let precision = ctx.precision;
        let state = state_bytes(precision);
        let control = buffers::storage_init(
            ctx,
            "cg control",
            &control(precision, (mu, radius), cg.last),
        );
        let rec = &mut self.rec;
        rec.copy(&control, &plan.scalars, state);
        let bytes = u64::from(n) * precision.real_bytes();
        if bytes > 0 {
            rec.copy(&b.0, &cg.r.0, bytes);
            rec.clear(&cg.x.0, 0, None);
        }
        rec.clear(&self.problem.grad_acc, 0, None);
        rec.replay(&plan.start);
        let slot = rec.scalars().clone();
        let mut recorded = 0;
        let (progress, bx) = loop {
            let chunk = recorded.clamp(FIRST_CHECK, CHECK_EVERY);
            for _ in 0..chunk {
                plan.iteration.iter().for_each(|d| rec.replay(d));
            }
            recorded += chunk;
            backend.kernels.reduce.dot(rec, &b.0, &cg.x.0, n, 0);
            let raw =
                rec.read_parts(&[(&plan.scalars, 0, state), (&slot, 0, Precision::ACC_BYTES)])?;
            let progress = Progress::decode(precision, &raw[0]);
            if progress.done != RUNNING {
                break (progress, precision.decode_acc(&raw[1])[0]);
            }
            if recorded > CG_LIMIT + 2 * CHECK_EVERY {
                return Err(Error::Gpu(format!(
                    "conjugate gradients on the device did not stop after {recorded} iterations \
                     (state at iteration {})",
                    progress.iteration
                )));
            }
        };
        let mut decrement = bx;
        cg.shrink = 1.0;
        if progress.done == RADIUS {
            cg.shrink = radius / progress.size;
            self.scale(cg.shrink, &mut cg.x)?;
            decrement *= cg.shrink;
        }
        let products = progress.iteration + u32::from(progress.done != LIMIT);
        cg.products += products as usize;
        cg.last = Some((progress.gamma0, progress.eta));
        Ok(decrement)
    }
}
