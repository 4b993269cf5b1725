//! Tests of detailed balance (docs/METHOD.md §4): pairwise against the fitted V, Kolmogorov
//! cycles without it, the entropy production and its decomposition over fundamental cycles;
//! Monte Carlo p-values, bootstrap intervals and a held-out check ([`permutation`]).
pub mod attractors;
pub mod bootstrap;
pub mod cycles;
pub mod detailed_balance;
pub mod distribution;
pub mod entropy;
pub mod permutation;
pub mod quasi_symmetry;
pub mod resampling;
pub mod schnakenberg;
pub mod stationary;

use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};

/// Upper tail `P(χ²_ndf ≥ chi2)`; `None` without degrees of freedom.
pub fn chi2_sf(chi2: f64, ndf: f64) -> Option<f64> {
    (ndf > 0.0 && chi2.is_finite()).then(|| ChiSquared::new(ndf).expect("ndf > 0").sf(chi2))
}

/// Two-sided normal p-value of a z-score.
pub fn two_sided_p(z: f64) -> f64 {
    2.0 * Normal::standard().sf(z.abs())
}

/// Pearson correlation; `None` for fewer than two points or zero variance.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len() as f64;
    if x.len() < 2 {
        return None;
    }
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    // Clamped: rounding can put a perfect correlation a few ulp above 1.
    (sxx > 0.0 && syy > 0.0).then(|| (sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0))
}

/// Spearman's `ρ`: Pearson of the average ranks.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    pearson(&ranks(x), &ranks(y))
}

/// Ranks from 1, ties sharing their average rank.
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        let average = (start + end + 1) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = average;
        }
        start = end;
    }
    ranks
}

/// Kolmogorov–Smirnov p-value of a sample against U(0, 1): the asymptotic Kolmogorov
/// distribution with Stephens' correction `(√n + 0.12 + 0.11/√n) D`, good to about 1 % for
/// `n ≥ 5`. Used to check that p-values are uniform under a null (calibration).
pub fn ks_uniform(sample: &[f64]) -> f64 {
    let mut x = sample.to_vec();
    x.sort_by(f64::total_cmp);
    let n = x.len() as f64;
    let d = x
        .iter()
        .enumerate()
        .map(|(i, &v)| (v - i as f64 / n).max((i + 1) as f64 / n - v))
        .fold(0.0, f64::max);
    let lambda = (n.sqrt() + 0.12 + 0.11 / n.sqrt()) * d;
    let tail: f64 = (1..=100)
        .map(|k| {
            let k = f64::from(k);
            let sign = if k % 2.0 == 1.0 { 2.0 } else { -2.0 };
            sign * (-2.0 * k * k * lambda * lambda).exp()
        })
        .sum();
    tail.clamp(0.0, 1.0)
}

/// Benjamini–Hochberg adjusted p-values (q-values), in the input order.
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
    let mut q = vec![0.0; m];
    let mut running = 1.0f64;
    for (rank_from_top, &i) in order.iter().enumerate() {
        let rank = m - rank_from_top;
        running = running.min(p[i] * m as f64 / rank as f64);
        q[i] = running;
    }
    q
}

/// An observed difference `value ≈ U_u − U_v` with its variance.
pub struct Difference {
    pub u: u32,
    pub v: u32,
    pub value: f64,
    pub variance: f64,
}

/// The weighted least-squares residual `min_U Σ (value − U_u + U_v)² / variance`: the χ² of the
/// hypothesis that the differences form a gradient field (every cycle sums to zero). A difference
/// on no cycle is fitted exactly, so only the 2-core of the differences' graph is solved
/// ([`on_cycles`]; on agent logs most pairs hang in trees and the core is small), by conjugate
/// gradients on its weighted graph Laplacian with a Jacobi preconditioner.
pub fn gradient_field_residual(n_states: usize, differences: &[Difference]) -> f64 {
    let core = on_cycles(n_states, differences);
    let mut local = vec![u32::MAX; n_states];
    let mut n = 0usize;
    let mut number = |f: u32| {
        if local[f as usize] == u32::MAX {
            local[f as usize] = n as u32;
            n += 1;
        }
        local[f as usize]
    };
    let differences: Vec<Difference> = (differences.iter().zip(&core))
        .filter(|&(_, &kept)| kept)
        .map(|(d, _)| Difference {
            u: number(d.u),
            v: number(d.v),
            value: d.value,
            variance: d.variance,
        })
        .collect();
    let differences = &differences[..];
    let weight = |d: &Difference| 1.0 / d.variance;
    let mut b = vec![0.0; n];
    let mut diag = vec![0.0; n];
    for d in differences {
        let (u, v, w) = (d.u as usize, d.v as usize, weight(d));
        b[u] += w * d.value;
        b[v] -= w * d.value;
        diag[u] += w;
        diag[v] += w;
    }
    let laplacian = |x: &[f64], out: &mut [f64]| {
        out.iter_mut().for_each(|o| *o = 0.0);
        for d in differences {
            let (u, v) = (d.u as usize, d.v as usize);
            let flow = weight(d) * (x[u] - x[v]);
            out[u] += flow;
            out[v] -= flow;
        }
    };
    let precondition = |r: &[f64], z: &mut [f64]| {
        for i in 0..n {
            z[i] = if diag[i] > 0.0 { r[i] / diag[i] } else { 0.0 };
        }
    };
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(a, b)| a * b).sum::<f64>();
    let mut x = vec![0.0; n];
    let mut r = b.clone();
    let mut z = vec![0.0; n];
    precondition(&r, &mut z);
    let mut p = z.clone();
    let mut rz = dot(&r, &z);
    let target = 1e-13 * dot(&b, &b).sqrt();
    let mut ap = vec![0.0; n];
    for _ in 0..10 * n.max(10) {
        if dot(&r, &r).sqrt() <= target {
            break;
        }
        laplacian(&p, &mut ap);
        let pap = dot(&p, &ap);
        if pap <= 0.0 {
            break;
        }
        let alpha = rz / pap;
        x.iter_mut().zip(&p).for_each(|(x, p)| *x += alpha * p);
        r.iter_mut().zip(&ap).for_each(|(r, ap)| *r -= alpha * ap);
        precondition(&r, &mut z);
        let rz_new = dot(&r, &z);
        let beta = rz_new / rz;
        rz = rz_new;
        p.iter_mut().zip(&z).for_each(|(p, z)| *p = z + beta * *p);
    }
    differences
        .iter()
        .map(|d| weight(d) * (d.value - x[d.u as usize] + x[d.v as usize]).powi(2))
        .sum()
}

/// Which differences lie in the 2-core of their graph (parallel differences between two states
/// form a cycle): those whose states both survive stripping the trees leaf by leaf.
fn on_cycles(n_states: usize, differences: &[Difference]) -> Vec<bool> {
    let pairs: Vec<(u32, u32)> = differences.iter().map(|d| (d.u, d.v)).collect();
    let adjacency = schnakenberg::Adjacency::new(n_states, &pairs);
    let trees = stationary::Pendants::of(&adjacency, &vec![false; n_states]);
    let stripped = |f: u32| trees.stripped[f as usize];
    pairs
        .iter()
        .map(|&(u, v)| !stripped(u) && !stripped(v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_differences_on_cycles_leave_a_residual() {
        let d = |u, v, value, variance| Difference {
            u,
            v,
            value,
            variance,
        };
        // A triangle whose differences sum to 3 around it, with equal variances: the least-squares
        // residual is 3² / (3 × 1) = 3. A tail (states 3, 4) and a second tree (5, 6, 7) add nothing.
        let triangle = [d(0, 1, 1.0, 1.0), d(1, 2, 1.0, 1.0), d(2, 0, 1.0, 1.0)];
        let trees = [
            d(2, 3, 5.0, 0.1),
            d(3, 4, -2.0, 3.0),
            d(5, 6, 7.0, 1.0),
            d(7, 5, 1.0, 1.0),
        ];
        let all: Vec<Difference> = triangle.into_iter().chain(trees).collect();
        assert_eq!(
            on_cycles(8, &all),
            [true, true, true, false, false, false, false]
        );
        assert!((gradient_field_residual(8, &all) - 3.0).abs() < 1e-10);
        // Two parallel differences form a cycle: (1 − 4)² / (1 + 2) = 3.
        let parallel = [d(0, 1, 1.0, 1.0), d(1, 0, -4.0, 2.0), d(1, 2, 9.0, 1.0)];
        assert_eq!(on_cycles(3, &parallel), [true, true, false]);
        assert!((gradient_field_residual(3, &parallel) - 3.0).abs() < 1e-10);
    }

    #[test]
    fn ties_share_their_average_rank() {
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), [3.5, 1.0, 3.5, 2.0]);
    }

    #[test]
    fn known_values() {
        assert!((chi2_sf(3.841458820694124, 1.0).unwrap() - 0.05).abs() < 1e-12);
        assert!((two_sided_p(1.959963984540054) - 0.05).abs() < 1e-9);
        assert!(
            (pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 7.0]).unwrap() - 0.9933992677987828).abs()
                < 1e-12
        );
        // D = 0.28333 on 6 points: scipy.stats.kstwobign.sf(0.74074583) = 0.64276165 (the
        // exact small-sample p-value, scipy.stats.kstest, is 0.627).
        let six = [0.96, 0.1, 0.25, 0.3, 0.7, 0.95];
        assert!((ks_uniform(&six) - 0.642_761_651_293_092_2).abs() < 1e-9);
        let even: Vec<f64> = (0..50).map(|i| (f64::from(i) + 0.5) / 50.0).collect();
        assert!(ks_uniform(&even) > 0.99);
        let squeezed: Vec<f64> = (0..50).map(|i| f64::from(i) / 500.0).collect();
        assert!(ks_uniform(&squeezed) < 1e-10);
        let q = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.5]);
        assert_eq!(q, [0.04, 0.04 * 4.0 / 3.0, 0.04 * 4.0 / 3.0, 0.5]);
    }
}
