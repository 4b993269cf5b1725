//! CPU twin of kernel `resample` (shaders/resample_permute.wgsl, shaders/resample.wgsl): the null
//! statistics of the explanatory-power test, resample by resample, from the same Philox draws
//! (src/rng). Resamples run in parallel; each one's terms are added in item order, so the result
//! does not depend on the threads.

use crate::rng::{Permutation, Stream};
use rayon::prelude::*;

/// The items of the explanatory-power test, as the kernel reads them: `values` permuted over the
/// states and, with `y_i = (V[π a_i] − V[π b_i]) / σ_i`, two sums per resample, `Σ x̃_i y_i` and
/// `Σ y_i²`.
#[derive(Debug, Clone)]
pub struct ResampleJob {
    /// The two compact states of each pair.
    pub ends: Vec<[u32; 2]>,
    /// `x̃_i`.
    pub standardized: Vec<f64>,
    /// `1 / σ_i`.
    pub inv_sigma: Vec<f64>,
    /// The potential of each compact state.
    pub values: Vec<f64>,
}

impl ResampleJob {
    /// Items of the kernel (pairs).
    pub fn items(&self) -> usize {
        self.ends.len()
    }

    /// The two sums of resample `r`.
    pub fn statistic(&self, stream: &Stream, r: u32) -> [f64; 2] {
        // The permuted values of every state once (the kernel's first pass).
        let perm = Permutation::new(self.values.len() as u32);
        let permuted: Vec<f64> = (0..perm.n)
            .map(|x| self.values[perm.apply(stream, r, x) as usize])
            .collect();
        let (mut sxy, mut syy) = (0.0, 0.0);
        for (i, &[a, b]) in self.ends.iter().enumerate() {
            let y = (permuted[a as usize] - permuted[b as usize]) * self.inv_sigma[i];
            sxy += self.standardized[i] * y;
            syy += y * y;
        }
        [sxy, syy]
    }

    /// Scale of each sum (the sum of the absolute values of its terms, bounded by
    /// Cauchy–Schwarz) for `statistic`'s value `s`: `√(Σx̃² · Σy²)` and `Σy²`; what the CPU–GPU
    /// tolerance is relative to.
    pub fn scale(&self, s: [f64; 2]) -> [f64; 2] {
        let sxx: f64 = self.standardized.iter().map(|x| x * x).sum();
        [(sxx * s[1]).sqrt(), s[1]]
    }
}

/// A job on `items` pairs over `items / 3 + 2` states, with values from a fixed Philox stream:
/// the input of the CPU–GPU agreement tests and the benchmarks.
pub fn synthetic_job(items: u32) -> ResampleJob {
    let s = Stream::new(5, crate::rng::Purpose::Split);
    let unit = |i: u32, j: u32| f64::from(s.block(i, j, 0)[0]) / 4_294_967_296.0;
    let states = items / 3 + 2;
    ResampleJob {
        ends: (0..items)
            .map(|i| [i % states, (i * 7 + 1) % states])
            .collect(),
        standardized: (0..items).map(|i| 2.0 * unit(i, 5) - 0.5).collect(),
        inv_sigma: (0..items).map(|i| 0.5 + unit(i, 6)).collect(),
        values: (0..states).map(|f| 3.0 * unit(f, 7) - 1.5).collect(),
    }
}

/// `--verify`: kernel `resample` on `backend` against this CPU twin, on [`synthetic_job`] of
/// 10,000 items and 64 resamples; tolerance of `backend`'s precision.
pub fn verify(
    backend: &dyn crate::backend::Backend,
) -> crate::error::Result<Vec<crate::backend::verify::KernelDeviation>> {
    use crate::backend::tolerance;
    let precision = backend.info().precision;
    let stream = Stream::new(0, crate::rng::Purpose::Permutation);
    let job = synthetic_job(10_000);
    let reference = resample(&job, &stream, 0..64);
    let device = backend.resample(&job, &stream, 0..64)?;
    let (mut max_abs, mut max_rel) = (0f64, 0f64);
    for (c, g) in reference.iter().zip(&device) {
        let scale = job.scale(*c);
        for k in 0..2 {
            let error = (c[k] - g[k]).abs();
            max_abs = max_abs.max(error);
            max_rel = max_rel.max(error / scale[k].max(f64::MIN_POSITIVE));
        }
    }
    let tolerance = tolerance::resample_statistic(precision);
    Ok(vec![crate::backend::verify::KernelDeviation {
        kernel: "resample (permutations)",
        max_abs,
        max_rel,
        tolerance,
        ok: max_rel <= tolerance,
    }])
}

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
