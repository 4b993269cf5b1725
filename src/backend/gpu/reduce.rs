//! Binds and dispatches the tree reductions: shaders/reduce_vector.wgsl for the first level over
//! vectors (dot products, max-abs) and shaders/reduce.wgsl for the levels after it and for the
//! action's per-workgroup partial values. Each level divides the count by `ITEMS × WG` (1024);
//! the last one writes into a scalar slot of the [`Recorder`].

use super::Precision;
use super::buffers::{Params, Recorder, groups_for};
use super::context::{Access, GpuContext, Pipeline};
use super::shaders::{self, ITEMS, WG};
use crate::error::Result;

/// How values combine.
#[derive(Clone, Copy)]
pub enum Combine {
    Sum = 0,
    Max = 1,
}

pub struct Reduce {
    sum: Pipeline,
    max: Pipeline,
    dot: Pipeline,
    max_abs: Pipeline,
}

impl Reduce {
    pub fn new(ctx: &GpuContext) -> Result<Self> {
        use Access::*;
        let level = [Read, ReadWrite];
        let vector = [Read, Read, ReadWrite];
        let op = |c: Combine| [("OP", f64::from(c as u32))];
        Ok(Reduce {
            sum: ctx.pipeline(shaders::REDUCE, &level, &op(Combine::Sum))?,
            max: ctx.pipeline(shaders::REDUCE, &level, &op(Combine::Max))?,
            dot: ctx.pipeline(shaders::REDUCE_VECTOR, &vector, &op(Combine::Sum))?,
            max_abs: ctx.pipeline(shaders::REDUCE_VECTOR, &vector, &op(Combine::Max))?,
        })
    }

    /// Records `Σ a_i b_i` (i < n) into scalar `slot`.
    pub fn dot(&self, rec: &mut Recorder, a: &wgpu::Buffer, b: &wgpu::Buffer, n: u32, slot: u32) {
        self.vector(rec, Combine::Sum, [a, b], n, slot);
    }

    /// Records `max |a_i|` (i < n) into scalar `slot`.
    pub fn max_abs(&self, rec: &mut Recorder, a: &wgpu::Buffer, n: u32, slot: u32) {
        self.vector(rec, Combine::Max, [a, a], n, slot);
    }

    fn vector(
        &self,
        rec: &mut Recorder,
        combine: Combine,
        [a, b]: [&wgpu::Buffer; 2],
        n: u32,
        slot: u32,
    ) {
        let kernel = match combine {
            Combine::Sum => &self.dot,
            Combine::Max => &self.max_abs,
        };
        let groups = groups_for(n, ITEMS * WG);
        let (output, base) = target(rec, groups, slot, 0);
        let group = kernel.bind(rec.ctx(), &[a, b, &output]);
        rec.dispatch(
            kernel,
            &group,
            Params {
                base,
                ..Params::new(n)
            },
            groups,
        );
        self.levels(rec, groups, slot, combine, 0);
    }

    /// Records the sum of `n` partial sums (`Acc`) in `input` into scalar `slot`.
    pub fn sums(&self, rec: &mut Recorder, input: &wgpu::Buffer, n: u32, slot: u32) {
        let groups = groups_for(n, ITEMS * WG);
        let (output, base) = target(rec, groups, slot, 0);
        let group = self.sum.bind(rec.ctx(), &[input, &output]);
        rec.dispatch(
            &self.sum,
            &group,
            Params {
                base,
                ..Params::new(n)
            },
            groups,
        );
        self.levels(rec, groups, slot, Combine::Sum, 0);
    }

    /// Reduces `n` values left in scratch buffer `at` until one is left in scalar `slot`.
    fn levels(&self, rec: &mut Recorder, mut n: u32, slot: u32, combine: Combine, mut at: usize) {
        if n == 0 {
            // Nothing was reduced: the slot must read zero, not a stale value.
            let acc = Precision::ACC_BYTES;
            let scalars = rec.scalars().clone();
            rec.clear(&scalars, u64::from(slot) * acc, Some(acc));
        }
        let kernel = match combine {
            Combine::Sum => &self.sum,
            Combine::Max => &self.max,
        };
        while n > 1 {
            let groups = groups_for(n, ITEMS * WG);
            let (output, base) = target(rec, groups, slot, 1 - at);
            let group = kernel.bind(rec.ctx(), &[&rec.scratch[at], &output]);
            rec.dispatch(
                kernel,
                &group,
                Params {
                    base,
                    ..Params::new(n)
                },
                groups,
            );
            (n, at) = (groups, 1 - at);
        }
    }
}

/// Where a level producing `groups` values writes: the scalar slot when it is the last level,
/// otherwise the start of scratch buffer `scratch`.
fn target(rec: &Recorder, groups: u32, slot: u32, scratch: usize) -> (wgpu::Buffer, u32) {
    if groups <= 1 {
        (rec.scalars().clone(), slot)
    } else {
        (rec.scratch[scratch].clone(), 0)
    }
}
