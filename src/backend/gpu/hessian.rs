//! Binds and dispatches shaders/hessian_edge.wgsl, then reuses gather_gradient's signed sum and
//! finish (`OP = 0`) to form the Hessian–vector product `H x = L_c x + λ x` from the per-edge
//! curvatures edge_action left at the last evaluated point.

use super::buffers::{Dispatch, Params, ProblemBuffers, Recorder, groups_for};
use super::context::{Access, GpuContext, Pipeline};
use super::gather_gradient::GatherGradient;
use super::shaders::{self, WG};
use crate::error::Result;

pub struct Hessian {
    kernel: Pipeline,
}

impl Hessian {
    pub fn new(ctx: &GpuContext) -> Result<Self> {
        use Access::*;
        let access = [Read, Read, Read, Read, ReadWrite];
        Ok(Hessian {
            kernel: ctx.pipeline(shaders::HESSIAN_EDGE, &access, &[])?,
        })
    }

    /// Records `out ← H x`; overwrites the problem's per-edge derivatives with the flows.
    pub fn record(
        &self,
        rec: &mut Recorder,
        gather: &GatherGradient,
        p: &ProblemBuffers,
        x: &wgpu::Buffer,
        out: &wgpu::Buffer,
    ) {
        for d in self.flows(rec.ctx(), p, x) {
            rec.replay(&d);
        }
        gather.record_signed(rec, p, x, out);
    }

    /// The hessian_edge dispatches of `H x`: the flows of `x` into the problem's `deriv`.
    pub fn flows(
        &self,
        ctx: &GpuContext,
        p: &ProblemBuffers,
        x: &wgpu::Buffer,
    ) -> Vec<Dispatch<'_>> {
        p.edges
            .iter()
            .map(|batch| Dispatch {
                kernel: &self.kernel,
                group: self.kernel.bind(
                    ctx,
                    &[x, &batch.src, &batch.dst, &batch.curvature, &batch.deriv],
                ),
                params: Params::new(batch.len),
                groups: groups_for(batch.len, WG),
            })
            .collect()
    }
}
