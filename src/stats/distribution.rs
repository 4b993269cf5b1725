//! The distribution of the fitted potential, as the paper reports it: a histogram of `V` over the
//! identifiable states seen more than once (`N(f) > 1`) and a Gaussian fitted to it (the paper
//! finds σ ≈ 5.1 and ≈ 1.75), by moments and by least squares on the histogram.
//!
//! - **Moments**: the maximum-likelihood normal, `μ̂` the mean and `σ̂` the root mean square
//!   deviation; normal-theory standard errors `σ̂/√n` and `σ̂/√(2n)`.
//! - **Histogram**: `c_i ≈ A exp(−(x_i − μ)²/(2σ²))` over the bin centres `x_i`, by
//!   Levenberg–Marquardt from the moments (what a `curve_fit` of the histogram does); standard
//!   errors from `s² (JᵀJ)⁻¹` with `s² = RSS / (bins − 3)`. `None` when it does not converge or
//!   fewer than four bins are occupied.
//!
//! Values are centred per component (the gauge), so `μ` is 0 on one component and describes the
//! mixture of components otherwise.

use crate::fit::Potential;
use crate::graph::TransitionGraph;

/// Equal bins over the values' range.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Histogram {
    /// Left edge of the first bin.
    pub low: f64,
    pub width: f64,
    pub counts: Vec<u64>,
}

/// `√n` equal bins (clamped to 10–60) over `[min, max]` of `values`; a unit range around a
/// constant value.
pub fn histogram(values: &[f64]) -> Histogram {
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5, lo + 0.5)
    };
    let bins = ((values.len() as f64).sqrt().ceil() as usize).clamp(10, 60);
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0u64; bins];
    for &v in values {
        counts[(((v - lo) / width) as usize).min(bins - 1)] += 1;
    }
    Histogram {
        low: lo,
        width,
        counts,
    }
}

/// A normal's location and scale with their standard errors.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Gaussian {
    pub mean: f64,
    pub mean_se: f64,
    pub sd: f64,
    pub sd_se: f64,
}

/// The Gaussian least-squares fit of the histogram: `A exp(−(x − μ)²/(2σ²))`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct HistogramFit {
    #[serde(flatten)]
    pub gaussian: Gaussian,
    /// Peak height `A`, in states per bin.
    pub amplitude: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PotentialDistribution {
    /// Identifiable states with `N(f) > 1`: the values histogrammed.
    pub states: usize,
    pub moments: Gaussian,
    pub histogram_fit: Option<HistogramFit>,
    pub histogram: Histogram,
}

/// The distribution of `potential` over its identifiable states with `N(f) > 1`; `None` without
/// two such states.
pub fn potential_distribution(
    graph: &TransitionGraph,
    potential: &Potential,
) -> Option<PotentialDistribution> {
    let values: Vec<f64> = (0..graph.n_states())
        .filter(|&f| graph.out_count[f] > 1)
        .filter_map(|f| potential.value[f])
        .collect();
    if values.len() < 2 {
        return None;
    }
    let histogram = histogram(&values);
    let moments = moments(&values);
    Some(PotentialDistribution {
        states: values.len(),
        histogram_fit: fit_histogram(&histogram, &moments),
        moments,
        histogram,
    })
}

fn moments(values: &[f64]) -> Gaussian {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    Gaussian {
        mean,
        mean_se: sd / n.sqrt(),
        sd,
        sd_se: sd / (2.0 * n).sqrt(),
    }
}

/// Most Levenberg–Marquardt iterations of the histogram fit.
const MAX_ITERATIONS: usize = 200;

fn fit_histogram(h: &Histogram, start: &Gaussian) -> Option<HistogramFit> {
    let points: Vec<(f64, f64)> = h
        .counts
        .iter()
        .enumerate()
        .map(|(i, &c)| (h.low + (i as f64 + 0.5) * h.width, c as f64))
        .collect();
    if h.counts.iter().filter(|&&c| c > 0).count() < 4 || start.sd <= 0.0 {
        return None;
    }
    let peak = h.counts.iter().copied().max().unwrap_or(0) as f64;
    let mut p = [peak, start.mean, start.sd.max(h.width / 2.0)];
    let mut lambda = 1e-3;
    let mut rss = residual_sum(&points, &p);
    for _ in 0..MAX_ITERATIONS {
        let (jtj, jtr) = normal_equations(&points, &p);
        let mut damped = jtj;
        for (k, row) in damped.iter_mut().enumerate() {
            row[k] += lambda * jtj[k][k].max(f64::MIN_POSITIVE);
        }
        let step = solve3(damped, jtr)?;
        let trial = [p[0] + step[0], p[1] + step[1], (p[2] + step[2]).abs()];
        let trial_rss = residual_sum(&points, &trial);
        if trial_rss < rss {
            let done = (rss - trial_rss) <= 1e-12 * rss.max(f64::MIN_POSITIVE);
            (p, rss, lambda) = (trial, trial_rss, lambda / 10.0);
            if done {
                return covariance(&points, p, rss);
            }
        } else {
            lambda *= 10.0;
            if lambda > 1e12 {
                return covariance(&points, p, rss);
            }
        }
    }
    None
}

fn model(p: &[f64; 3], x: f64) -> f64 {
    p[0] * (-(x - p[1]).powi(2) / (2.0 * p[2] * p[2])).exp()
}

fn residual_sum(points: &[(f64, f64)], p: &[f64; 3]) -> f64 {
    points.iter().map(|&(x, y)| (y - model(p, x)).powi(2)).sum()
}

/// `JᵀJ` and `Jᵀr` of the residuals `r = y − model` at `p`.
fn normal_equations(points: &[(f64, f64)], p: &[f64; 3]) -> ([[f64; 3]; 3], [f64; 3]) {
    let (mut jtj, mut jtr) = ([[0.0; 3]; 3], [0.0; 3]);
    for &(x, y) in points {
        let e = model(&[1.0, p[1], p[2]], x);
        let d = x - p[1];
        let j = [
            e,
            p[0] * e * d / p[2].powi(2),
            p[0] * e * d * d / p[2].powi(3),
        ];
        let r = y - p[0] * e;
        for a in 0..3 {
            jtr[a] += j[a] * r;
            for b in 0..3 {
                jtj[a][b] += j[a] * j[b];
            }
        }
    }
    (jtj, jtr)
}

/// The fit at `p` with standard errors from `s² (JᵀJ)⁻¹`.
fn covariance(points: &[(f64, f64)], p: [f64; 3], rss: f64) -> Option<HistogramFit> {
    let (jtj, _) = normal_equations(points, &p);
    let s2 = rss / (points.len() as f64 - 3.0).max(1.0);
    let se = |k: usize| {
        let mut unit = [0.0; 3];
        unit[k] = 1.0;
        solve3(jtj, unit).map(|col| (s2 * col[k]).max(0.0).sqrt())
    };
    Some(HistogramFit {
        gaussian: Gaussian {
            mean: p[1],
            mean_se: se(1)?,
            sd: p[2],
            sd_se: se(2)?,
        },
        amplitude: p[0],
    })
}

/// `a x = b` by Gaussian elimination with partial pivoting; `None` when `a` is singular.
fn solve3(mut a: [[f64; 3]; 3], mut b: [f64; 3]) -> Option<[f64; 3]> {
    for col in 0..3 {
        let pivot = (col..3).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() <= 1e-300 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..3 {
            let f = a[row][col] / a[col][col];
            for k in col..3 {
                a[row][k] -= f * a[col][k];
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0.0; 3];
    for row in (0..3).rev() {
        let tail: f64 = (row + 1..3).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - tail) / a[row][row];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    #[test]
    fn bins_hold_every_value() {
        let values: Vec<f64> = (0..400).map(|i| ((i * 37) % 101) as f64 / 10.0).collect();
        let h = histogram(&values);
        assert_eq!(h.counts.len(), 20);
        assert_eq!(h.low, 0.0);
        assert!((h.width - 0.5).abs() < 1e-12);
        assert_eq!(h.counts.iter().sum::<u64>(), 400);
        let m = moments(&[1.0, 3.0]);
        assert_eq!((m.mean, m.sd), (2.0, 1.0));
    }

    /// Both fits recover a planted normal within a few standard errors, and the errors are
    /// of the normal-theory size.
    #[test]
    fn a_planted_normal_is_recovered_by_both_fits() {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
        let normal = Normal::new(1.5, 5.1).unwrap();
        let values: Vec<f64> = (0..20_000).map(|_| normal.sample(&mut rng)).collect();
        let h = histogram(&values);
        let m = moments(&values);
        assert!((m.mean - 1.5).abs() < 4.0 * m.mean_se, "{m:?}");
        assert!((m.sd - 5.1).abs() < 4.0 * m.sd_se, "{m:?}");
        assert!((m.mean_se - 5.1 / 20_000f64.sqrt()).abs() < 1e-3);
        let fit = fit_histogram(&h, &m).expect("converges").gaussian;
        assert!((fit.mean - 1.5).abs() < 4.0 * fit.mean_se, "{fit:?}");
        assert!((fit.sd - 5.1).abs() < 4.0 * fit.sd_se, "{fit:?}");
        assert!(fit.sd_se > 0.0 && fit.sd_se < 0.2, "{fit:?}");
    }

    #[test]
    fn too_few_occupied_bins_give_no_histogram_fit() {
        let h = histogram(&[0.0, 0.0, 1.0, 1.0]);
        assert!(fit_histogram(&h, &moments(&[0.0, 0.0, 1.0, 1.0])).is_none());
    }
}
