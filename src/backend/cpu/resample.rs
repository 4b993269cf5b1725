//! CPU twin of kernel `resample` (shaders/resample_permute.wgsl, shaders/resample.wgsl): the null
//! statistics of the explanatory-power test, resample by resample, from the same Philox draws
//! (src/rng). Resamples run in parallel; each one's terms are added in item order, so the result
//! does not depend on the threads.

use crate::backend::jobs::ResampleJob;
use crate::rng::Stream;
use rayon::prelude::*;

/// The sums of resamples `resamples` (parallel over resamples).
pub fn resample(
    job: &ResampleJob,
    stream: &Stream,
    resamples: std::ops::Range<u32>,
) -> Vec<[f64; 2]> {
    resamples
        .into_par_iter()
        .map(|r| job.statistic(stream, r))
        .collect()
}
