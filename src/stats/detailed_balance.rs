//! Pairwise statistics against the fitted potential (docs/METHOD.md, "Pairs"): descriptions
//! and the paper's numbers; the verdict's test is [`super::quasi_symmetry`].
//!
//! For each reciprocal pair with `n(f→g) > 1` and `n(g→f) > 1` (the reference's filter),
//! `x = log T(f→g)/T(g→f)` and `y = V(f) − V(g)`; detailed balance says `x = y`.
//!
//! The paper's statistics: Pearson `r(x, y)` and the unweighted `Σ (y − x)² / pairs`. Pearson
//! `r` depends on which state of a pair comes first (a flipped pair is `(−x, −y)`): under
//! `--paper` pairs take the reference's orientation (first appearance in its node order);
//! otherwise the graph's states are in canonical (name) order and each pair is oriented from
//! its lower id, so `r` does not depend on the order of the rows.
//!
//! Descriptions on pairs with both counts ≥ `min_count` (default 1: every listed pair; a higher
//! value selects on the outcome and is for exploration only): variance
//! `σ² = 1/n(f→g) + 1/n(g→f)` (the `−1/N` multinomial covariance of a source lies along a
//! gradient direction and is absorbed by the minimisation over `V`), the weighted
//! `χ² = min_V Σ (x − ΔV)²/σ²` with `ndf = pairs − (states − components)` (a linearised
//! version of the verdict's test on reciprocal pairs only; its p-value is asymptotic), the
//! orientation-invariant correlation `Σxy / √(Σx² Σy²)`, and the weighted slope `β̂` of `x` on
//! `y` through the origin with a 95 % interval (its standard error inflated by the residual
//! dispersion when that exceeds one).

use super::{Difference, chi2_sf, gradient_field_residual, pearson};
use crate::fit::Potential;
use crate::graph::{DisjointSets, TransitionGraph};

/// `log(50228)`: the reference drops pairs whose `|ΔV|` exceeds it.
const REFERENCE_MAX_DV: f64 = 10.824_325_6;

#[derive(Debug, Clone, serde::Serialize)]
pub struct PairSettings {
    /// Apply the reference's filters on `V` (`| |V| − 20 | < 1`, `|ΔV| > log 50228`).
    pub paper: bool,
    /// Smallest count of either direction for the corrected statistics.
    pub min_count: u64,
}

impl Default for PairSettings {
    fn default() -> Self {
        PairSettings {
            paper: false,
            min_count: 1,
        }
    }
}

/// One tested pair.
#[derive(Debug, Clone)]
pub struct Pair {
    pub f: u32,
    pub g: u32,
    pub n_fg: u64,
    pub n_gf: u64,
    /// `log T(f→g)/T(g→f)`.
    pub x: f64,
    /// `V(f) − V(g)`.
    pub y: f64,
    /// The reference's error bar `√(1/n(f→g) + 1/N(f) + 1/n(g→f) + 1/N(g))`.
    pub sigma_reference: f64,
    /// Binomial standard error of `x`.
    pub sigma: f64,
    /// Whether the pair enters the corrected statistics.
    pub corrected: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PairTest {
    pub n: usize,
    pub pearson_r: Option<f64>,
    pub chi2_ndf_reference: Option<f64>,
    /// Pairs in the corrected statistics.
    pub n_corrected: usize,
    pub chi2: f64,
    pub ndf: i64,
    pub p_value: Option<f64>,
    pub correlation_origin: Option<f64>,
    pub slope: Option<f64>,
    pub slope_ci: Option<[f64; 2]>,
    pub min_count: u64,
}

/// Runs the pairwise test.
pub fn pair_test(
    graph: &TransitionGraph,
    potential: &Potential,
    settings: &PairSettings,
) -> (Vec<Pair>, PairTest) {
    let pairs = tested_pairs(graph, potential, settings);
    let x: Vec<f64> = pairs.iter().map(|p| p.x).collect();
    let y: Vec<f64> = pairs.iter().map(|p| p.y).collect();
    let n = pairs.len();
    let chi2_ndf_reference =
        (n > 0).then(|| pairs.iter().map(|p| (p.y - p.x).powi(2)).sum::<f64>() / n as f64);

    let used: Vec<&Pair> = pairs
        .iter()
        .filter(|p| p.corrected && p.sigma > 0.0)
        .collect();
    let differences: Vec<Difference> = used
        .iter()
        .map(|p| Difference {
            u: p.f,
            v: p.g,
            value: p.x,
            variance: p.sigma * p.sigma,
        })
        .collect();
    let chi2 = gradient_field_residual(graph.n_states(), &differences);
    let endpoints: Vec<(u32, u32)> = used.iter().map(|p| (p.f, p.g)).collect();
    let (states, components) = vertices_and_components(graph.n_states(), &endpoints);
    let ndf = used.len() as i64 - (states as i64 - components as i64);
    let origin = through_origin(&used);
    let test = PairTest {
        n,
        pearson_r: pearson(&x, &y),
        chi2_ndf_reference,
        n_corrected: used.len(),
        chi2,
        ndf,
        p_value: chi2_sf(chi2, ndf as f64),
        correlation_origin: origin.correlation,
        slope: origin.slope,
        slope_ci: origin.slope_ci,
        min_count: settings.min_count,
    };
    (pairs, test)
}

/// The reciprocal pairs with both counts above 1 and a potential at both ends (under `--paper`,
/// also inside the reference's filters on `V`), oriented as the graph's edges.
fn tested_pairs(
    graph: &TransitionGraph,
    potential: &Potential,
    settings: &PairSettings,
) -> Vec<Pair> {
    let mut pairs = Vec::new();
    for e in graph.reciprocal_pairs() {
        let r = graph.reverse[e] as usize;
        let (f, g) = (graph.src[e], graph.dst[e]);
        let (n_fg, n_gf) = (graph.count[e], graph.count[r]);
        if n_fg <= 1 || n_gf <= 1 {
            continue;
        }
        let (Some(vf), Some(vg)) = (potential.value[f as usize], potential.value[g as usize])
        else {
            continue;
        };
        if settings.paper
            && ((vf.abs() - 20.0).abs() < 1.0
                || (vg.abs() - 20.0).abs() < 1.0
                || (vf - vg).abs() > REFERENCE_MAX_DV)
        {
            continue;
        }
        let (big_f, big_g) = (
            graph.out_count[f as usize] as f64,
            graph.out_count[g as usize] as f64,
        );
        let (a, b) = (n_fg as f64, n_gf as f64);
        pairs.push(Pair {
            f,
            g,
            n_fg,
            n_gf,
            x: (a / big_f).ln() - (b / big_g).ln(),
            y: vf - vg,
            sigma_reference: (1.0 / a + 1.0 / big_f + 1.0 / b + 1.0 / big_g).sqrt(),
            sigma: (1.0 / a + 1.0 / b).sqrt(),
            corrected: n_fg >= settings.min_count && n_gf >= settings.min_count,
        });
    }
    pairs
}

/// `x` against `y` through the origin: the orientation-invariant correlation, and the weighted
/// slope with its 95 % interval.
struct Origin {
    correlation: Option<f64>,
    slope: Option<f64>,
    slope_ci: Option<[f64; 2]>,
}

fn through_origin(used: &[&Pair]) -> Origin {
    let (mut sxy, mut syy, mut sxx_u, mut sxy_u, mut syy_u) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for p in used {
        let w = 1.0 / (p.sigma * p.sigma);
        sxy += w * p.x * p.y;
        syy += w * p.y * p.y;
        sxx_u += p.x * p.x;
        sxy_u += p.x * p.y;
        syy_u += p.y * p.y;
    }
    let slope = (syy > 0.0).then(|| sxy / syy);
    let slope_ci = slope.map(|b| {
        let residual: f64 = used
            .iter()
            .map(|p| (p.x - b * p.y).powi(2) / (p.sigma * p.sigma))
            .sum();
        let dispersion = if used.len() > 1 {
            residual / (used.len() - 1) as f64
        } else {
            1.0
        };
        let se = (dispersion.max(1.0) / syy).sqrt();
        [
            b - 1.959_963_984_540_054 * se,
            b + 1.959_963_984_540_054 * se,
        ]
    });
    Origin {
        // Clamped: rounding can put a perfect correlation a few ulp above 1.
        correlation: (sxx_u > 0.0 && syy_u > 0.0)
            .then(|| (sxy_u / (sxx_u * syy_u).sqrt()).clamp(-1.0, 1.0)),
        slope,
        slope_ci,
    }
}

/// Distinct vertices and connected components of an undirected edge list (union–find).
pub(crate) fn vertices_and_components(n: usize, edges: &[(u32, u32)]) -> (usize, usize) {
    let mut sets = DisjointSets::new(n);
    let mut present = vec![false; n];
    let mut components = 0usize;
    for &(a, b) in edges {
        for v in [a, b] {
            if !present[v as usize] {
                present[v as usize] = true;
                components += 1;
            }
        }
        if sets.union(a, b) {
            components -= 1;
        }
    }
    (present.iter().filter(|&&p| p).count(), components)
}
