//! Binds and dispatches the gradient's segmented reduction: shaders/gather_gradient.wgsl over
//! fixed runs of incidence entries, shaders/gather_gradient_carries.wgsl level by level until
//! one carry is left (each level divides the count by `RUN`: a 2-billion-entry hub takes six),
//! then shaders/gather_gradient_finish.wgsl adds the ridge and writes the gradient vector.

use super::buffers::{Params, ProblemBuffers, Recorder, groups_for};
use super::context::{Access, GpuContext, Pipeline};
use super::shaders::{self, RUN, WG};
use crate::error::Result;

pub struct GatherGradient {
    runs: Pipeline,
    carries: Pipeline,
    finish: Pipeline,
}

impl GatherGradient {
    pub fn new(ctx: &GpuContext) -> Result<Self> {
        use Access::*;
        Ok(GatherGradient {
            runs: ctx.pipeline(
                shaders::GATHER_GRADIENT,
                &[Read, Read, Read, Read, ReadWrite, ReadWrite, ReadWrite],
                None,
            )?,
            carries: ctx.pipeline(
                shaders::GATHER_GRADIENT_CARRIES,
                &[Read, Read, Read, ReadWrite, ReadWrite, ReadWrite],
                None,
            )?,
            finish: ctx.pipeline(
                shaders::GATHER_GRADIENT_FINISH,
                &[Read, Read, ReadWrite],
                None,
            )?,
        })
    }

    /// Records the gradient at `v` into `grad`, from the derivatives edge_action left in the
    /// problem's `deriv` buffers.
    pub fn record(
        &self,
        rec: &mut Recorder,
        p: &ProblemBuffers,
        v: &wgpu::Buffer,
        grad: &wgpu::Buffer,
    ) {
        let ctx = rec.ctx();
        rec.clear(&p.grad_acc, 0, None);
        // Every (entry batch, derivative batch) pair is one pass; passes add into grad_acc.
        for entries in &p.entries {
            for edges in &p.edges {
                let group = self.runs.bind(
                    ctx,
                    &[
                        &edges.deriv,
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
                rec.dispatch(&self.runs, &group, params, groups_for(runs, WG));
                self.fix_up(rec, p, runs);
            }
        }
        let group = self.finish.bind(ctx, &[v, &p.grad_acc, grad]);
        let params = Params::new(p.n_states).alpha(p.l2);
        rec.dispatch(&self.finish, &group, params, groups_for(p.n_states, WG));
    }

    /// Sums `count` carries (in `carries[0]`) per key into grad_acc, one bounded level at a time.
    fn fix_up(&self, rec: &mut Recorder, p: &ProblemBuffers, mut count: u32) {
        let ctx = rec.ctx();
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
            rec.dispatch(
                &self.carries,
                &group,
                Params::new(count),
                groups_for(runs, WG),
            );
            count = runs;
            level += 1;
        }
    }
}
