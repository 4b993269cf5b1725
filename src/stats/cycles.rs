//! Kolmogorov 3-cycle test (docs/METHOD.md §4.2): needs no potential.
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
//!
//! With `max_len = 4`, chordless reciprocal 4-cycles `a → b → c → d → a` (all eight arcs seen,
//! neither diagonal pair reciprocal) are counted too: a 4-cycle with a chord is the sum of two
//! triangles and adds nothing. Each is counted once, at its highest-`(degree, id)`-ranked
//! state `a`, from the wedges `a – b – c` with `b` and `c` ranked below `a` (neighbour lists
//! sorted by rank, so the enumeration costs `O(m √m)`): the `k` wedges to the same `c` close
//! `k (k−1)/2` cycles, less the pairs `b, b'` that are adjacent. The first [`LISTED_SQUARES`] are
//! listed with their affinity `Σ log(n_forward / n_backward)` and `z = A / √(Σ 1/n)`.

use super::detailed_balance::vertices_and_components;
use super::schnakenberg::Adjacency;
use super::{Difference, benjamini_hochberg, chi2_sf, gradient_field_residual, two_sided_p};
use crate::backend::Backend;
use crate::error::Result;
use crate::graph::TransitionGraph;
use rayon::prelude::*;

#[derive(Debug, Clone, serde::Serialize)]
pub struct CycleSettings {
    /// Reference filter: every count involved must exceed it.
    pub threshold: f64,
    /// Smallest arc count for the corrected statistics.
    pub min_count: u64,
    /// False-discovery rate for per-cycle flags.
    pub fdr: f64,
    /// Longest cycles examined: 3 (triangles) or 4 (also chordless 4-cycles).
    pub max_len: u32,
}

impl Default for CycleSettings {
    fn default() -> Self {
        CycleSettings {
            threshold: 1.0,
            min_count: 1,
            fdr: 0.05,
            max_len: 3,
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

/// Chordless 4-cycles listed in the report (all of them are counted).
pub const LISTED_SQUARES: usize = 100;

/// A chordless reciprocal 4-cycle `a → b → c → d → a`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Square {
    pub states: [u32; 4],
    /// `Σ log(n_forward / n_backward)` around the cycle.
    pub affinity: f64,
    /// `Σ 1/n` over its eight arcs.
    pub variance: f64,
    pub z: f64,
}

#[derive(Debug, Clone)]
pub struct Squares {
    /// Every chordless reciprocal 4-cycle.
    pub count: u64,
    /// The first `limit` in enumeration order: highest-ranked state by id, then its opposite
    /// state by id, then the other two by id.
    pub listed: Vec<Square>,
}

/// Counts the chordless reciprocal 4-cycles of `graph` and lists the first `limit`.
pub fn chordless_squares(graph: &TransitionGraph, limit: usize) -> Squares {
    const CHUNK: usize = 256;
    let n = graph.n_states();
    let pairs: Vec<(u32, u32)> = graph
        .reciprocal_pairs()
        .map(|e| (graph.src[e], graph.dst[e]))
        .collect();
    let r = &Adjacency::new(n, &pairs);
    let mut by_rank: Vec<u32> = (0..n as u32).collect();
    by_rank.sort_by_key(|&f| (r.of(f).len(), f));
    let mut rank = vec![0u32; n];
    for (i, &f) in by_rank.iter().enumerate() {
        rank[f as usize] = i as u32;
    }
    // Neighbours of each state ascending by rank, so a scan can stop at a rank.
    let lower: Vec<Vec<u32>> = (0..n as u32)
        .map(|f| {
            let mut g: Vec<u32> = r.of(f).iter().map(|&(g, _)| g).collect();
            g.sort_by_key(|&g| rank[g as usize]);
            g
        })
        .collect();

    let per_chunk: Vec<(u64, Vec<[u32; 4]>)> = (0..n as u32)
        .collect::<Vec<_>>()
        .par_chunks(CHUNK)
        .map_init(
            || vec![false; n],
            |marked, chunk| {
                let (mut count, mut listed) = (0u64, Vec::new());
                for &a in chunk {
                    let below = |g: &&u32| rank[**g as usize] < rank[a as usize];
                    let mut wedges: Vec<(u32, u32)> = lower[a as usize]
                        .iter()
                        .take_while(below)
                        .flat_map(|&b| {
                            let ends = lower[b as usize].iter().take_while(below);
                            ends.filter(|&&c| c != a).map(move |&c| (c, b))
                        })
                        .collect();
                    wedges.sort_unstable();
                    for group in wedges.chunk_by(|x, y| x.0 == y.0) {
                        let c = group[0].0;
                        let k = group.len() as u64;
                        if k < 2 || r.adjacent(a, c) {
                            continue;
                        }
                        let b: Vec<u32> = group.iter().map(|w| w.1).collect();
                        count += k * (k - 1) / 2 - adjacent_pairs(r, &b, marked);
                        let chordless = b.iter().enumerate().flat_map(|(i, &b1)| {
                            let others = b[i + 1..].iter().filter(move |&&b2| !r.adjacent(b1, b2));
                            others.map(move |&b2| [a, b1, c, b2])
                        });
                        listed.extend(chordless.take(limit - listed.len()));
                    }
                }
                (count, listed)
            },
        )
        .collect();
    let count = per_chunk.iter().map(|c| c.0).sum();
    let listed = per_chunk
        .into_iter()
        .flat_map(|c| c.1)
        .take(limit)
        .map(|states| square(graph, states))
        .collect();
    Squares { count, listed }
}

/// Pairs of `states` (distinct) that are adjacent in `r`: pairwise look-ups or, when cheaper, a
/// scan of every neighbour list against marks (`marked` is all false before and after).
fn adjacent_pairs(r: &Adjacency, states: &[u32], marked: &mut [bool]) -> u64 {
    let k = states.len();
    let scan: usize = states.iter().map(|&s| r.of(s).len()).sum();
    if k * (k - 1) / 2 <= scan {
        let mut pairs = 0;
        for (i, &x) in states.iter().enumerate() {
            pairs += states[i + 1..]
                .iter()
                .filter(|&&y| r.adjacent(x, y))
                .count() as u64;
        }
        return pairs;
    }
    states.iter().for_each(|&s| marked[s as usize] = true);
    let ends: usize = states
        .iter()
        .map(|&s| r.of(s).iter().filter(|&&(g, _)| marked[g as usize]).count())
        .sum();
    states.iter().for_each(|&s| marked[s as usize] = false);
    (ends / 2) as u64
}

/// The statistics of the 4-cycle `states[0] → … → states[3] → states[0]`.
fn square(graph: &TransitionGraph, states: [u32; 4]) -> Square {
    let count = |u: u32, v: u32| graph.count[graph.find_edge(u, v).expect("reciprocal")] as f64;
    let (mut affinity, mut variance) = (0.0, 0.0);
    for i in 0..4 {
        let (u, v) = (states[i], states[(i + 1) % 4]);
        let (forward, backward) = (count(u, v), count(v, u));
        affinity += (forward / backward).ln();
        variance += 1.0 / forward + 1.0 / backward;
    }
    Square {
        states,
        affinity,
        variance,
        z: affinity / variance.sqrt(),
    }
}
