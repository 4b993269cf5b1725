//! Binds and dispatches shaders/vector_ops.wgsl, the element-wise Newton–CG operations.

use super::buffers::{Params, Recorder, groups_for};
use super::context::{Access, GpuContext, Pipeline};
use super::shaders::{self, WG};
use crate::error::Result;

/// One element-wise operation on `y` (values of the shader's `OP`).
#[derive(Clone, Copy)]
pub enum VectorOp {
    /// `y ← y + α x`.
    Axpy(f64),
    /// `y ← α y`.
    Scale(f64),
    /// `y ← x ∘ y`.
    Mul,
    /// `y ← y / x`.
    Div,
}

pub struct VectorOps {
    axpy: Pipeline,
    scale: Pipeline,
    mul: Pipeline,
    div: Pipeline,
}

impl VectorOps {
    pub fn new(ctx: &GpuContext) -> Result<Self> {
        use Access::*;
        let access = [Read, ReadWrite];
        Ok(VectorOps {
            axpy: ctx.pipeline(shaders::VECTOR_OPS, &access, &[("OP", 0.0)])?,
            scale: ctx.pipeline(shaders::VECTOR_OPS, &access, &[("OP", 1.0)])?,
            mul: ctx.pipeline(shaders::VECTOR_OPS, &access, &[("OP", 2.0)])?,
            div: ctx.pipeline(shaders::VECTOR_OPS, &access, &[("OP", 3.0)])?,
        })
    }

    /// Records `op` on the first `n` elements; `x` must differ from `y` (for `Scale` it is bound
    /// but not read).
    pub fn record(
        &self,
        rec: &mut Recorder,
        op: VectorOp,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
        n: u32,
    ) {
        let (kernel, alpha) = match op {
            VectorOp::Axpy(alpha) => (&self.axpy, alpha),
            VectorOp::Scale(alpha) => (&self.scale, alpha),
            VectorOp::Mul => (&self.mul, 1.0),
            VectorOp::Div => (&self.div, 1.0),
        };
        let group = kernel.bind(rec.ctx(), &[x, y]);
        rec.dispatch(
            kernel,
            &group,
            Params::new(n).alpha(alpha),
            groups_for(n, WG),
        );
    }
}
