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
        let precision = ctx.precision;
        let key = stream.key;
        let perm = Permutation::new(job.values.len() as u32);
        let config = vec![key[0], key[1], perm.n, perm.half_bits];
        let ints: Vec<u32> = job.ends.iter().flatten().copied().collect();
        let reals: Vec<f64> = job
            .standardized
            .iter()
            .zip(&job.inv_sigma)
            .flat_map(|(&x, &s)| [x, s])
            .collect();
        let reals = precision.encode(&reals);
        let values = precision.encode(&job.values);
        let ints_bytes: &[u8] = bytemuck::cast_slice(&ints);
        for (what, bytes) in [
            ("items", ints_bytes.len()),
            ("values", reals.len().max(values.len())),
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
        let items = job.items() as u32;
        let count = resamples.len() as u32;
        if items == 0 || count == 0 {
            return Ok(vec![[0.0; 2]; count as usize]);
        }
        let chunks = groups_for(items, CHUNK);
        let per_resample = 2 * u64::from(chunks) * crate::backend::gpu::Precision::ACC_BYTES;
        let max_groups = u64::from(ctx.limits.max_compute_workgroups_per_dimension).pow(2);
        // The batch's permuted potentials, `states` per resample, in one binding.
        let states = perm.n;
        let permuted_bytes = u64::from(states) * precision.real_bytes();
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

        let scope = ctx.scope();
        let config = storage_init(ctx, "resample config", bytemuck::cast_slice(&config));
        let ints = storage_init(ctx, "resample items", ints_bytes);
        let reals = storage_init(ctx, "resample reals", &reals);
        let values = storage_init(ctx, "resample values", &values);
        let permuted = storage_zeroed(
            ctx,
            "permuted potentials",
            permuted_bytes * u64::from(batch),
        );
        let partial = storage_zeroed(
            ctx,
            "resample partial sums",
            per_resample * u64::from(batch),
        );
        scope.close().map_err(|why| {
            Error::Gpu(format!(
                "buffer allocation failed: the resampling test does not fit the device's memory: \
                 {why}"
            ))
        })?;
        let kernel = &self.statistic;
        let group = kernel.bind(ctx, &[&config, &ints, &reals, &permuted, &partial]);
        let permute = self.permute.bind(ctx, &[&config, &values, &permuted]);
        let mut rec = Recorder::new(ctx, 0);
        let mut sums = Vec::with_capacity(count as usize);
        for first in resamples.clone().step_by(batch as usize) {
            let len = batch.min(resamples.end - first);
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
            let raw = rec.download_bytes(&partial, 0, per_resample * u64::from(len))?;
            let acc = precision.decode_acc(&raw);
            for resample in acc.chunks_exact(2 * chunks as usize) {
                let mut s = [0.0; 2];
                for pair in resample.chunks_exact(2) {
                    s[0] += pair[0];
                    s[1] += pair[1];
                }
                sums.push(s);
            }
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
