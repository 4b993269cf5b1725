//! Tests of detailed balance (METHOD.md §4): pairwise against the fitted potential, Kolmogorov
//! cycles without it, and the entropy production.
pub mod cycles;
pub mod detailed_balance;
pub mod entropy;

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
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert!((chi2_sf(3.841458820694124, 1.0).unwrap() - 0.05).abs() < 1e-12);
        assert!((two_sided_p(1.959963984540054) - 0.05).abs() < 1e-9);
        assert!(
            (pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 7.0]).unwrap() - 0.9933992677987828).abs()
                < 1e-12
        );
        let q = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.5]);
        assert_eq!(q, [0.04, 0.04 * 4.0 / 3.0, 0.04 * 4.0 / 3.0, 0.5]);
    }
}
