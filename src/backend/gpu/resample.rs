//! Binds and dispatches kernel `resample`: for each batch of resamples first
//! shaders/resample_permute.wgsl, which writes each resample's permuted potentials once (so that
//! pairs read their ends instead of evaluating the permutation twice each), then
//! shaders/resample.wgsl, the explanatory-power test's two sums; and the stream check
//! `philox_draws`.
//!
//! The items are uploaded once; resamples run in batches whose partial sums (two `Acc` per
//! resample and chunk of `RESAMPLE_ITEMS · WG` items) and permuted potentials fit one storage
//! binding each, one submit and read-back per batch; the host adds the chunks of each resample in
//! order. Only those partial sums come back, never the draws. Limits: each item array must fit
//! one storage binding.

use super::Precision;
use super::buffers::{Params, Recorder, groups_for, show_bytes, storage_init, storage_zeroed};
use super::context::{Access, GpuContext, Pipeline};
use super::shaders::{self, RESAMPLE_ITEMS, WG};
use crate::backend::jobs::ResampleJob;
use crate::error::{Error, Result};
use crate::rng::{Permutation, Stream};
use std::ops::Range;

/// Items of one chunk (one workgroup of one resample).
const CHUNK: u32 = RESAMPLE_ITEMS * WG;

pub struct Resample {
    /// The two sums of each (resample, chunk).
    statistic: Pipeline,
    /// The permuted potentials of a batch.
    permute: Pipeline,
    draws: Pipeline,
}

/// What `philox_draws` computes (its `params.extra`).
#[derive(Debug, Clone, Copy)]
pub enum Draws {
    /// Blocks `[item, resample, 0, 0]`, 4 words per item.
    Blocks,
    /// Images of `0..n` under the permutation of `n` states.
    Permutation(u32),
}

impl Resample {
    pub fn new(ctx: &GpuContext) -> Result<Self> {
        use Access::*;
        let access = [Read, Read, Read, Read, ReadWrite];
        Ok(Resample {
            statistic: ctx.pipeline(shaders::RESAMPLE, &access, &[])?,
            permute: ctx.pipeline(shaders::RESAMPLE_PERMUTE, &[Read, Read, ReadWrite], &[])?,
            draws: ctx.pipeline(shaders::PHILOX_DRAWS, &[Read, ReadWrite], &[])?,
        })
    }

    /// The two sums of each resample in `resamples`, as [`ResampleJob::statistic`] computes them.
    pub fn run(
        &self,
        ctx: &GpuContext,
        job: &ResampleJob,
        stream: &Stream,
        resamples: Range<u32>,
        max_binding: u64,
    ) -> Result<Vec<[f64; 2]>> {
        let inputs = Inputs::encode(job, stream, ctx.precision, max_binding)?;
        let items = job.items() as u32;
        let count = resamples.len() as u32;
        if items == 0 || count == 0 {
            return Ok(vec![[0.0; 2]; count as usize]);
        }
        let plan = Batches::plan(ctx, items, inputs.states(), count, max_binding)?;
        let buf = Buffers::allocate(ctx, &inputs, &plan)?;
        let kernel = &self.statistic;
        let group = kernel.bind(
            ctx,
            &[
                &buf.config,
                &buf.ints,
                &buf.reals,
                &buf.permuted,
                &buf.partial,
            ],
        );
        let permute = self
            .permute
            .bind(ctx, &[&buf.config, &buf.values, &buf.permuted]);
        let (chunks, states) = (plan.chunks, inputs.states());
        let mut rec = Recorder::new(ctx, 0);
        let mut sums = Vec::with_capacity(count as usize);
        for first in resamples.clone().step_by(plan.batch as usize) {
            let len = plan.batch.min(resamples.end - first);
            let params = Params {
                base: first,
                lo: chunks,
                hi: len,
                ..Params::new(items)
            };
            let permute_params = Params {
                base: first,
                hi: len,
                ..Params::new(states)
            };
            rec.dispatch(
                &self.permute,
                &permute,
                permute_params,
                groups_for(states * len, WG),
            );
            rec.dispatch(kernel, &group, params, chunks * len);
            let raw = rec.download_bytes(&buf.partial, 0, plan.per_resample * u64::from(len))?;
            sums.extend(add_chunks(&ctx.precision.decode_acc(&raw), chunks));
        }
        Ok(sums)
    }

    /// Raw draws of resample `resample` for `n` items (see [`Draws`]).
    pub fn draws(
        &self,
        ctx: &GpuContext,
        what: Draws,
        stream: &Stream,
        resample: u32,
        n: u32,
    ) -> Result<Vec<u32>> {
        let (extra, states, words) = match what {
            Draws::Blocks => (0, 0, 4),
            Draws::Permutation(states) => (1, states, 1),
        };
        let half_bits = Permutation::new(states).half_bits;
        let config = [stream.key[0], stream.key[1], states, half_bits];
        let config = storage_init(ctx, "draws config", bytemuck::cast_slice(&config));
        let out = storage_zeroed(ctx, "draws", 4 * u64::from(words * n));
        let group = self.draws.bind(ctx, &[&config, &out]);
        let mut rec = Recorder::new(ctx, 0);
        let params = Params {
            base: resample,
            extra,
            ..Params::new(n)
        };
        rec.dispatch(&self.draws, &group, params, groups_for(n, WG));
        let raw = rec.download_bytes(&out, 0, 4 * u64::from(words * n))?;
        Ok(bytemuck::pod_collect_to_vec(&raw))
    }
}

/// The resampling test's inputs, encoded as the kernels read them.
struct Inputs {
    /// The stream's key, then the permutation's `n` (the states) and `half_bits`.
    config: [u32; 4],
    /// Each item's two ends.
    ints: Vec<u32>,
    /// Each item's standardized value and inverse standard deviation.
    reals: Vec<u8>,
    /// The potentials the resamples permute.
    values: Vec<u8>,
}

impl Inputs {
    /// Encodes `job`; an item array above one storage binding is an error.
    fn encode(
        job: &ResampleJob,
        stream: &Stream,
        precision: Precision,
        max_binding: u64,
    ) -> Result<Self> {
        let perm = Permutation::new(job.values.len() as u32);
        let reals: Vec<f64> = job
            .standardized
            .iter()
            .zip(&job.inv_sigma)
            .flat_map(|(&x, &s)| [x, s])
            .collect();
        let inputs = Inputs {
            config: [stream.key[0], stream.key[1], perm.n, perm.half_bits],
            ints: job.ends.iter().flatten().copied().collect(),
            reals: precision.encode(&reals),
            values: precision.encode(&job.values),
        };
        for (what, bytes) in [
            ("items", inputs.ints_bytes().len()),
            ("values", inputs.reals.len().max(inputs.values.len())),
        ] {
            if bytes as u64 > max_binding {
                return Err(Error::Gpu(format!(
                    "the resampling test's {what} need {}, above the device's {} storage-binding \
                     limit",
                    show_bytes(bytes as u64),
                    show_bytes(max_binding)
                )));
            }
        }
        Ok(inputs)
    }

    fn states(&self) -> u32 {
        self.config[2]
    }

    fn ints_bytes(&self) -> &[u8] {
        bytemuck::cast_slice(&self.ints)
    }
}

/// How many resamples one batch holds, and the sizes of its buffers.
struct Batches {
    /// Chunks of `CHUNK` items per resample.
    chunks: u32,
    /// Bytes of one resample's partial sums.
    per_resample: u64,
    /// Bytes of one resample's permuted potentials.
    permuted_bytes: u64,
    /// Resamples per batch.
    batch: u32,
}

impl Batches {
    /// The largest batch whose partial sums and permuted potentials each fit one binding and
    /// whose dispatches fit the workgroup-count limit; at least one resample, at most `count`.
    fn plan(
        ctx: &GpuContext,
        items: u32,
        states: u32,
        count: u32,
        max_binding: u64,
    ) -> Result<Self> {
        let chunks = groups_for(items, CHUNK);
        let per_resample = 2 * u64::from(chunks) * Precision::ACC_BYTES;
        let max_groups = u64::from(ctx.limits.max_compute_workgroups_per_dimension).pow(2);
        let permuted_bytes = u64::from(states) * ctx.precision.real_bytes();
        let batch = (max_binding / per_resample)
            .min(max_binding / permuted_bytes.max(1))
            .min(max_groups / u64::from(chunks))
            .min(max_groups * u64::from(WG) / u64::from(states.max(1)))
            .clamp(1, u64::from(count)) as u32;
        if permuted_bytes > max_binding {
            return Err(Error::Gpu(format!(
                "the permutation test's {states} potentials need {}, above the device's {} \
                 storage-binding limit",
                show_bytes(permuted_bytes),
                show_bytes(max_binding)
            )));
        }
        Ok(Batches {
            chunks,
            per_resample,
            permuted_bytes,
            batch,
        })
    }
}

/// The device buffers of one `Resample::run`: the inputs, uploaded once, and one batch's
/// permuted potentials and partial sums.
struct Buffers {
    config: wgpu::Buffer,
    ints: wgpu::Buffer,
    reals: wgpu::Buffer,
    values: wgpu::Buffer,
    permuted: wgpu::Buffer,
    partial: wgpu::Buffer,
}

impl Buffers {
    /// Allocates them in one error scope: running out of device memory is an error, not a panic.
    fn allocate(ctx: &GpuContext, inputs: &Inputs, plan: &Batches) -> Result<Self> {
        let batch = u64::from(plan.batch);
        let scope = ctx.scope();
        let buffers = Buffers {
            config: storage_init(ctx, "resample config", bytemuck::cast_slice(&inputs.config)),
            ints: storage_init(ctx, "resample items", inputs.ints_bytes()),
            reals: storage_init(ctx, "resample reals", &inputs.reals),
            values: storage_init(ctx, "resample values", &inputs.values),
            permuted: storage_zeroed(ctx, "permuted potentials", plan.permuted_bytes * batch),
            partial: storage_zeroed(ctx, "resample partial sums", plan.per_resample * batch),
        };
        scope.close().map_err(|why| {
            Error::Gpu(format!(
                "buffer allocation failed: the resampling test does not fit the device's memory: \
                 {why}"
            ))
        })?;
        Ok(buffers)
    }
}

/// Each resample's two sums from a batch's partial sums (two per chunk), chunks added in order.
fn add_chunks(acc: &[f64], chunks: u32) -> impl Iterator<Item = [f64; 2]> + '_ {
    acc.chunks_exact(2 * chunks as usize).map(|resample| {
        let mut s = [0.0; 2];
        for pair in resample.chunks_exact(2) {
            s[0] += pair[0];
            s[1] += pair[1];
        }
        s
    })
}
