//! CPU twin of kernel `resample` (shaders/resample.wgsl): the null statistics of the resampling
//! tests, resample by resample, from the same Philox draws (src/rng). Resamples run in parallel;
//! each one's terms are added in item order, so the result does not depend on the threads.

use crate::rng::{BinomialParams, Permutation, Stream};
use rayon::prelude::*;

/// The items of one resampling test, as the kernel reads them. Each resample yields two sums
/// (the second is 0 for the first two kinds).
#[derive(Debug, Clone)]
pub enum ResampleJob {
    /// Sign flips: `Σ_c s_c p_c`, `s_c = ±1` from bit `c` of the resample's stream.
    SignFlips { products: Vec<f64> },
    /// Parametric splits: pair `i` draws `n* ~ Bin(m_i, p_i)`; the sum is
    /// `Σ_i (log(n*+½) − log(m_i−n*+½) − λ_i)² / (1/(n*+½) + 1/(m_i−n*+½))`.
    Splits {
        binomials: Vec<BinomialParams>,
        log_odds: Vec<f64>,
    },
    /// Permutations of `values` over the states: with `y_i = (V[π a_i] − V[π b_i]) / σ_i`, the
    /// sums `Σ x̃_i y_i` and `Σ y_i²`.
    Permutations {
        ends: Vec<[u32; 2]>,
        standardized: Vec<f64>,
        inv_sigma: Vec<f64>,
        values: Vec<f64>,
    },
}

impl ResampleJob {
    /// Items of the kernel (sign flips: words of 32 cycles; otherwise pairs).
    pub fn items(&self) -> usize {
        match self {
            ResampleJob::SignFlips { products } => products.len().div_ceil(32),
            ResampleJob::Splits { binomials, .. } => binomials.len(),
            ResampleJob::Permutations { ends, .. } => ends.len(),
        }
    }

    /// The two sums of resample `r`.
    pub fn statistic(&self, stream: &Stream, r: u32) -> [f64; 2] {
        match self {
            ResampleJob::SignFlips { products } => {
                // One Philox block per 128 cycles: the bits of Stream::bit.
                let mut sum = 0.0;
                for (block, cycles) in products.chunks(128).enumerate() {
                    let words = stream.block(block as u32, r, 0);
                    for (c, &p) in cycles.iter().enumerate() {
                        let bit = (words[c / 32] >> (c % 32)) & 1 == 1;
                        sum += if bit { p } else { -p };
                    }
                }
                [sum, 0.0]
            }
            ResampleJob::Splits {
                binomials,
                log_odds,
            } => {
                let mut sum = 0.0;
                for (i, b) in binomials.iter().enumerate() {
                    let n = b.draw(stream, i as u32, r);
                    let rest = b.trials - n;
                    let d = log_half(n) - log_half(rest) - log_odds[i];
                    let variance = 1.0 / (f64::from(n) + 0.5) + 1.0 / (f64::from(rest) + 0.5);
                    sum += d * d / variance;
                }
                [sum, 0.0]
            }
            ResampleJob::Permutations {
                ends,
                standardized,
                inv_sigma,
                values,
            } => {
                // The permuted values of every state once (the kernel permutes each end).
                let perm = Permutation::new(values.len() as u32);
                let permuted: Vec<f64> = (0..perm.n)
                    .map(|x| values[perm.apply(stream, r, x) as usize])
                    .collect();
                let (mut sxy, mut syy) = (0.0, 0.0);
                for (i, &[a, b]) in ends.iter().enumerate() {
                    let y = (permuted[a as usize] - permuted[b as usize]) * inv_sigma[i];
                    sxy += standardized[i] * y;
                    syy += y * y;
                }
                [sxy, syy]
            }
        }
    }

    /// Scale of each sum (the sum of the absolute values of its terms) for `statistic`'s value
    /// `s`: what the CPU–GPU tolerance is relative to. Sign flips: `Σ|p|`; splits: the sum
    /// itself (its terms are ≥ 0); permutations: `√(Σx̃² · Σy²)` and `Σy²`.
    pub fn scale(&self, s: [f64; 2]) -> [f64; 2] {
        match self {
            ResampleJob::SignFlips { products } => [products.iter().map(|p| p.abs()).sum(), 0.0],
            ResampleJob::Splits { .. } => [s[0], 0.0],
            ResampleJob::Permutations { standardized, .. } => {
                let sxx: f64 = standardized.iter().map(|x| x * x).sum();
                [(sxx * s[1]).sqrt(), s[1]]
            }
        }
    }
}

/// One job of each kind (sign flips, splits, permutations over `items / 3 + 2` states) on
/// `items` items, with values from a fixed Philox stream: inputs of the CPU–GPU agreement
/// tests and the benchmarks. A fiftieth of the pairs have 5,000 times more transitions (the
/// normal-approximation draw).
pub fn synthetic_jobs(items: u32) -> [ResampleJob; 3] {
    let s = Stream::new(5, crate::rng::Purpose::Split);
    let unit = |i: u32, j: u32| f64::from(s.block(i, j, 0)[0]) / 4_294_967_296.0;
    let states = items / 3 + 2;
    [
        ResampleJob::SignFlips {
            products: (0..items).map(|i| 4.0 * unit(i, 0) - 1.0).collect(),
        },
        ResampleJob::Splits {
            binomials: (0..items)
                .map(|i| {
                    let scale = if i % 50 == 0 { 5_000 } else { 1 };
                    let m = 1 + (unit(i, 1) * 300.0) as u64 * scale;
                    BinomialParams::new(m, 0.05 + 0.9 * unit(i, 2))
                })
                .collect(),
            log_odds: (0..items).map(|i| 4.0 * unit(i, 4) - 2.0).collect(),
        },
        ResampleJob::Permutations {
            ends: (0..items)
                .map(|i| [i % states, (i * 7 + 1) % states])
                .collect(),
            standardized: (0..items).map(|i| 2.0 * unit(i, 5) - 0.5).collect(),
            inv_sigma: (0..items).map(|i| 0.5 + unit(i, 6)).collect(),
            values: (0..states).map(|f| 3.0 * unit(f, 7) - 1.5).collect(),
        },
    ]
}

/// `--verify`: kernel `resample` on `backend` against this CPU twin, one row per test, on
/// [`synthetic_jobs`] of 10,000 items and 64 resamples; tolerances of `backend`'s precision.
pub fn verify(
    backend: &dyn crate::backend::Backend,
) -> crate::error::Result<Vec<crate::backend::verify::KernelDeviation>> {
    use crate::backend::{gpu::Precision, tolerance};
    let precision = Precision::of(backend.info());
    let stream = Stream::new(0, crate::rng::Purpose::SignFlip);
    let names = [
        "resample (sign flips)",
        "resample (splits)",
        "resample (permutations)",
    ];
    let mut rows = Vec::new();
    for (kernel, job) in names.into_iter().zip(synthetic_jobs(10_000)) {
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
        let tolerance = tolerance::resample_statistic(precision, &job);
        rows.push(crate::backend::verify::KernelDeviation {
            kernel,
            max_abs,
            max_rel,
            tolerance,
            ok: max_rel <= tolerance,
        });
    }
    Ok(rows)
}

/// `log(n + ½)`.
pub fn log_half(n: u32) -> f64 {
    (f64::from(n) + 0.5).ln()
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
