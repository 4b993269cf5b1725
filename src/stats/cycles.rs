//! Kolmogorov 3-cycle test (METHOD.md §4b): needs no potential.
//!
//! For each reciprocal triangle `a < b < c`: `fwd = Σ log T` along `a→b→c→a`, `bwd` along
//! `a→c→b→a`, affinity `A = fwd − bwd = log(n_ab n_bc n_ca / (n_ba n_cb n_ac))` (the `N` terms
//! cancel); detailed balance says `A = 0` on every cycle.
//!
//! Reference statistic: triangles whose nine counts (six arcs, three `N`) all exceed
//! `threshold` and whose `σ²_fwd + σ²_bwd = Σ_arcs (1/n + 1/N_source) < 100`;
//! `χ²/ndf = Σ A² / (σ²_fwd + σ²_bwd) / cycles`.
//!
//! Corrected statistic: the multinomial delta method gives `Var A = Σ_arcs 1/n` (the `1/N` terms
//! cancel around a cycle), and per-cycle `z = A / √Var A`. Triangles share arcs, so their
//! `z²` are not independent; the joint test uses the cycle space instead. On the graph `H` of the
//! pairs of triangles whose six counts are ≥ `min_count`, with `ψ_uv = log(n_uv / n_vu)` and
//! `Var ψ_uv = 1/n_uv + 1/n_vu`, a gradient field (`ψ_uv = U_u − U_v`) is exactly "every cycle of
//! `H` has zero affinity"; its weighted least-squares residual is `χ²` with
//! `ndf = |E_H| − |V_H| + components(H)`, the number of independent cycles.
//! Per-cycle flags use Benjamini–Hochberg q-values of the per-cycle z-scores.

use super::detailed_balance::vertices_and_components;
use super::{Difference, benjamini_hochberg, chi2_sf, gradient_field_residual, two_sided_p};
use crate::backend::Backend;
use crate::error::Result;
use crate::graph::TransitionGraph;

#[derive(Debug, Clone, serde::Serialize)]
pub struct CycleSettings {
    /// Reference filter: every count involved must exceed it.
    pub threshold: f64,
    /// Smallest arc count for the corrected statistics.
    pub min_count: u64,
    /// False-discovery rate for per-cycle flags.
    pub fdr: f64,
}

impl Default for CycleSettings {
    fn default() -> Self {
        CycleSettings {
            threshold: 1.0,
            min_count: 5,
            fdr: 0.05,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Triangle {
    pub states: [u32; 3],
    /// Arc counts `n_ab, n_bc, n_ca, n_ac, n_cb, n_ba`.
    pub counts: [u64; 6],
    pub forward: f64,
    pub backward: f64,
    pub affinity: f64,
    /// `σ²_fwd + σ²_bwd` of the reference.
    pub variance_reference: f64,
    /// `Σ 1/n` over the six arcs.
    pub variance: f64,
    pub z: f64,
    pub p_value: f64,
    /// Benjamini–Hochberg q-value among corrected triangles; `None` for the others.
    pub q_value: Option<f64>,
    pub kept_reference: bool,
    pub corrected: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CycleTest {
    /// Triangles kept by the reference filters.
    pub n: usize,
    pub chi2_ndf_reference: Option<f64>,
    /// All reciprocal triangles.
    pub triangles: usize,
    /// Triangles in the corrected statistics.
    pub n_corrected: usize,
    pub chi2: f64,
    pub ndf: i64,
    pub p_value: Option<f64>,
    /// Triangles with q-value ≤ `fdr`.
    pub flagged: usize,
    pub fdr: f64,
    pub min_count: u64,
}

/// The cycle test of `graph`; the triangles are enumerated by `backend`'s kernel
/// `reciprocal_triangles` and listed in its canonical order.
pub fn cycle_test(
    graph: &TransitionGraph,
    backend: &dyn Backend,
    settings: &CycleSettings,
) -> Result<(Vec<Triangle>, CycleTest)> {
    let count = |u: u32, v: u32| graph.count[graph.find_edge(u, v).expect("reciprocal arcs exist")];
    let big_n = |u: u32| graph.out_count[u as usize] as f64;
    let mut triangles: Vec<Triangle> = backend
        .reciprocal_triangles(graph)?
        .into_iter()
        .map(|states| {
            let [a, b, c] = states;
            let counts = [
                count(a, b),
                count(b, c),
                count(c, a),
                count(a, c),
                count(c, b),
                count(b, a),
            ];
            let sources = [a, b, c, a, c, b];
            let log_t = |i: usize| (counts[i] as f64 / big_n(sources[i])).ln();
            let forward = log_t(0) + log_t(1) + log_t(2);
            let backward = log_t(3) + log_t(4) + log_t(5);
            let variance_reference: f64 = (0..6)
                .map(|i| 1.0 / counts[i] as f64 + 1.0 / big_n(sources[i]))
                .sum();
            let variance: f64 = counts.iter().map(|&n| 1.0 / n as f64).sum();
            let smallest = counts
                .iter()
                .map(|&n| n as f64)
                .chain([big_n(a), big_n(b), big_n(c)])
                .fold(f64::INFINITY, f64::min);
            let affinity = forward - backward;
            let z = affinity / variance.sqrt();
            Triangle {
                states,
                counts,
                forward,
                backward,
                affinity,
                variance_reference,
                variance,
                z,
                p_value: two_sided_p(z),
                q_value: None,
                kept_reference: smallest > settings.threshold && variance_reference < 100.0,
                corrected: counts.iter().all(|&n| n >= settings.min_count),
            }
        })
        .collect();

    let kept = triangles.iter().filter(|t| t.kept_reference).count();
    let chi2_ndf_reference = (kept > 0).then(|| {
        let chi2: f64 = triangles
            .iter()
            .filter(|t| t.kept_reference)
            .map(|t| (t.backward - t.forward).powi(2) / (t.variance_reference + 1e-10))
            .sum();
        chi2 / kept as f64
    });

    let corrected: Vec<usize> = (0..triangles.len())
        .filter(|&i| triangles[i].corrected)
        .collect();
    let q = benjamini_hochberg(
        &corrected
            .iter()
            .map(|&i| triangles[i].p_value)
            .collect::<Vec<_>>(),
    );
    for (&i, q) in corrected.iter().zip(q) {
        triangles[i].q_value = Some(q);
    }
    let flagged = triangles
        .iter()
        .filter(|t| t.q_value.is_some_and(|q| q <= settings.fdr))
        .count();

    let mut pairs: Vec<(u32, u32)> = corrected
        .iter()
        .flat_map(|&i| {
            let [a, b, c] = triangles[i].states;
            [(a, b), (b, c), (a, c)]
        })
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let differences: Vec<Difference> = pairs
        .iter()
        .map(|&(u, v)| {
            let forward = graph.count[graph.find_edge(u, v).expect("reciprocal")] as f64;
            let backward = graph.count[graph.find_edge(v, u).expect("reciprocal")] as f64;
            Difference {
                u,
                v,
                value: (forward / backward).ln(),
                variance: 1.0 / forward + 1.0 / backward,
            }
        })
        .collect();
    let chi2 = gradient_field_residual(graph.n_states(), &differences);
    let (vertices, components) = vertices_and_components(graph.n_states(), &pairs);
    let ndf = pairs.len() as i64 - vertices as i64 + components as i64;
    let test = CycleTest {
        n: kept,
        chi2_ndf_reference,
        triangles: triangles.len(),
        n_corrected: corrected.len(),
        chi2,
        ndf,
        p_value: chi2_sf(chi2, ndf as f64),
        flagged,
        fdr: settings.fdr,
        min_count: settings.min_count,
    };
    Ok((triangles, test))
}
