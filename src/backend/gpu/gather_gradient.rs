//! Binds and dispatches the per-state sums over the incidence list: shaders/gather_gradient.wgsl
//! over fixed runs of entries, shaders/gather_gradient_carries.wgsl level by level until one
//! carry is left (each level divides the count by `RUN`: a 2-billion-entry hub takes six), then
//! shaders/gather_gradient_finish.wgsl. Run twice per evaluation: signed over the derivatives
//! (the gradient) and unsigned over the curvatures (the Hessian diagonal, inverted into the
//! solver's preconditioner); and signed over the flows of each Hessian–vector product
//! ([`super::hessian`]).

use super::buffers::{Dispatch, EdgeBatch, Params, ProblemBuffers, Recorder, groups_for};
use super::context::{Access, GpuContext, Pipeline};
use super::shaders::{self, RUN, WG};
use crate::error::Result;

pub struct GatherGradient {
    signed: Pipeline,
    unsigned: Pipeline,
    carries: Pipeline,
    gradient: Pipeline,
    inverse_diagonal: Pipeline,
}

impl GatherGradient {
    pub fn new(ctx: &GpuContext) -> Result<Self> {
        use Access::*;
        let runs = [Read, Read, Read, Read, ReadWrite, ReadWrite, ReadWrite];
        let carries = [Read, Read, Read, ReadWrite, ReadWrite, ReadWrite];
        let finish = [Read, Read, ReadWrite];
        Ok(GatherGradient {
            signed: ctx.pipeline(shaders::GATHER_GRADIENT, &runs, &[("SIGNED", 1.0)])?,
            unsigned: ctx.pipeline(shaders::GATHER_GRADIENT, &runs, &[("SIGNED", 0.0)])?,
            carries: ctx.pipeline(shaders::GATHER_GRADIENT_CARRIES, &carries, &[])?,
            gradient: ctx.pipeline(shaders::GATHER_GRADIENT_FINISH, &finish, &[("OP", 0.0)])?,
            inverse_diagonal: ctx.pipeline(
                shaders::GATHER_GRADIENT_FINISH,
                &finish,
                &[("OP", 1.0)],
            )?,
        })
    }

    /// Records the gradient at `v` into `grad` and the inverse of the Hessian diagonal (floored)
    /// into `inverse_diagonal`, from the per-edge values edge_action left in the problem.
    pub fn record(
        &self,
        rec: &mut Recorder,
        p: &ProblemBuffers,
        v: &wgpu::Buffer,
        grad: &wgpu::Buffer,
        inverse_diagonal: &wgpu::Buffer,
    ) {
        self.record_signed(rec, p, v, grad);
        self.sum(rec, p, &self.unsigned, |b| &b.curvature);
        self.finish(
            rec,
            p,
            &self.inverse_diagonal,
            &p.curvature_floor,
            inverse_diagonal,
        );
    }

    /// Records `out ← λ x + Σ ±deriv` per state: the gradient when `deriv` holds `w K'(d)` and
    /// `x = V`, the Hessian product when it holds the flows of `x`.
    pub fn record_signed(
        &self,
        rec: &mut Recorder,
        p: &ProblemBuffers,
        x: &wgpu::Buffer,
        out: &wgpu::Buffer,
    ) {
        self.sum(rec, p, &self.signed, |b| &b.deriv);
        self.finish(rec, p, &self.gradient, x, out);
    }

    /// Sums `per_edge` over each state's incidence entries into the problem's `grad_acc`.
    fn sum(
        &self,
        rec: &mut Recorder,
        p: &ProblemBuffers,
        kernel: &Pipeline,
        per_edge: impl Fn(&EdgeBatch) -> &wgpu::Buffer,
    ) {
        rec.clear(&p.grad_acc, 0, None);
        for d in self.sum_plan(rec.ctx(), p, kernel, per_edge) {
            rec.replay(&d);
        }
    }

    /// The signed sum of the per-edge values in the problem's `deriv` into `grad_acc`, which
    /// must hold zeros, as dispatches to record (and record again: the Hessian products of
    /// conjugate gradients).
    pub fn signed_plan<'k>(&'k self, ctx: &GpuContext, p: &ProblemBuffers) -> Vec<Dispatch<'k>> {
        self.sum_plan(ctx, p, &self.signed, |b| &b.deriv)
    }

    /// The dispatches of [`GatherGradient::sum`] after its clear: every (entry batch, edge
    /// batch) pair is one pass, each followed by its carry levels; passes add into grad_acc.
    fn sum_plan<'k>(
        &'k self,
        ctx: &GpuContext,
        p: &ProblemBuffers,
        kernel: &'k Pipeline,
        per_edge: impl Fn(&EdgeBatch) -> &wgpu::Buffer,
    ) -> Vec<Dispatch<'k>> {
        let mut plan = Vec::new();
        for entries in &p.entries {
            for edges in &p.edges {
                let group = kernel.bind(
                    ctx,
                    &[
                        per_edge(edges),
                        &entries.incidence,
                        &p.seg_ptr,
                        &p.seg_node,
                        &p.grad_acc,
                        &p.carries[0].1,
                        &p.carries[0].0,
                    ],
                );
                let params = Params {
                    base: entries.first,
                    lo: edges.first,
                    hi: edges.first + edges.len,
                    extra: p.n_segments,
                    ..Params::new(entries.len)
                };
                let runs = groups_for(entries.len, RUN);
                plan.push(Dispatch {
                    kernel,
                    group,
                    params,
                    groups: groups_for(runs, WG),
                });
                self.fix_up(ctx, p, runs, &mut plan);
            }
        }
        plan
    }

    /// Sums `count` carries (in `carries[0]`) per key into grad_acc, one bounded level at a time.
    fn fix_up<'k>(
        &'k self,
        ctx: &GpuContext,
        p: &ProblemBuffers,
        mut count: u32,
        plan: &mut Vec<Dispatch<'k>>,
    ) {
        let mut level = 0;
        while count > 1 {
            let (input, output) = (&p.carries[level % 2], &p.carries[(level + 1) % 2]);
            let group = self.carries.bind(
                ctx,
                &[
                    &input.0,
                    &input.1,
                    &p.seg_node,
                    &p.grad_acc,
                    &output.0,
                    &output.1,
                ],
            );
            let runs = groups_for(count, RUN);
            plan.push(Dispatch {
                kernel: &self.carries,
                group,
                params: Params::new(count),
                groups: groups_for(runs, WG),
            });
            count = runs;
            level += 1;
        }
    }

    /// Records `kernel` (a gather_gradient_finish variant) from grad_acc into `out`.
    fn finish(
        &self,
        rec: &mut Recorder,
        p: &ProblemBuffers,
        kernel: &Pipeline,
        per_state: &wgpu::Buffer,
        out: &wgpu::Buffer,
    ) {
        let group = kernel.bind(rec.ctx(), &[per_state, &p.grad_acc, out]);
        let params = Params::new(p.n_states).alpha(p.l2);
        rec.dispatch(kernel, &group, params, groups_for(p.n_states, WG));
    }
}
