//! Binds and dispatches shaders/edge_action.wgsl: per-edge derivatives `w K'(d)`, curvatures
//! `w K''(d)` and one partial action value per workgroup, batch by batch.

use super::buffers::{Params, ProblemBuffers, Recorder, groups_for};
use super::context::{Access, GpuContext, Pipeline};
use super::shaders::{self, WG};
use crate::error::Result;

pub struct EdgeAction {
    kernel: Pipeline,
}

impl EdgeAction {
    pub fn new(ctx: &GpuContext) -> Result<Self> {
        use Access::*;
        let access = [Read, Read, Read, Read, ReadWrite, ReadWrite, ReadWrite];
        Ok(EdgeAction {
            kernel: ctx.pipeline(shaders::EDGE_ACTION, &access, &[])?,
        })
    }

    /// Records every edge batch at potential `v`.
    pub fn record(&self, rec: &mut Recorder, problem: &ProblemBuffers, v: &wgpu::Buffer) {
        for batch in &problem.edges {
            let group = self.kernel.bind(
                rec.ctx(),
                &[
                    v,
                    &batch.src,
                    &batch.dst,
                    &batch.weight,
                    &batch.deriv,
                    &batch.curvature,
                    &problem.partials,
                ],
            );
            let params = Params {
                base: batch.partial_base,
                ..Params::new(batch.len)
            };
            rec.dispatch(&self.kernel, &group, params, groups_for(batch.len, WG));
        }
    }
}
