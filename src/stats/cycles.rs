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
use crate::backend::cpu::reciprocal_triangles::{OrientedReciprocal, closed_by};
use crate::backend::{Backend, TRIANGLE_CHUNK};
use crate::error::{Error, Result};
use crate::graph::TransitionGraph;
use rayon::prelude::*;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Default of `--max-cycles`: rows of the per-cycle table.
pub const DEFAULT_MAX_CYCLES: usize = 100_000;
/// Default of `--max-triangles`: reciprocal triangles one analysis enumerates.
pub const DEFAULT_MAX_TRIANGLES: u64 = 500_000_000;

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
    /// Most rows of the per-cycle table (`--max-cycles`): the most significant triangles.
    pub max_cycles: usize,
    /// Most reciprocal triangles enumerated (`--max-triangles`); more is an error, said before
    /// they are enumerated.
    pub max_triangles: u64,
}

impl Default for CycleSettings {
    fn default() -> Self {
        CycleSettings {
            threshold: 1.0,
            min_count: 1,
            fdr: 0.05,
            max_len: 3,
            max_cycles: DEFAULT_MAX_CYCLES,
            max_triangles: DEFAULT_MAX_TRIANGLES,
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
    /// Triangles with q-value ≤ `fdr`; a lower bound when `flagged_exact` is false.
    pub flagged: usize,
    /// Whether `flagged` is exact: always when every corrected triangle is listed; otherwise
    /// when the flagged ones provably fit the listed ones or the bounds meet (see
    /// [`cycle_test`]).
    pub flagged_exact: bool,
    /// An upper bound of the flagged triangles (`flagged` when exact).
    pub flagged_at_most: usize,
    /// Whether every flagged triangle is listed (always when every corrected triangle is):
    /// then `flagged` is exact, and so is every listed q-value ≤ `fdr`; a listed q-value above
    /// it, and every listed q-value when this is false, is an upper bound of the true one.
    pub flags_fit_listed: bool,
    /// Corrected triangles with p ≤ `fdr`: an upper bound of `flagged`.
    pub p_at_most_fdr: usize,
    /// Rows of the per-cycle table (`cycles.parquet`): every triangle, or the `--max-cycles`
    /// most significant.
    pub listed: usize,
    /// Whether `--max-cycles` bound (fewer rows listed than triangles).
    pub limit_reached: bool,
    pub fdr: f64,
    pub min_count: u64,
}

/// What [`cycle_test`] returns: the listed triangles and the test.
#[derive(Debug, Clone)]
pub struct CycleScan {
    /// The per-cycle table: every triangle in the canonical order, or, when there are more than
    /// `--max-cycles`, the most significant ones (corrected first, then by |z| descending, i.e.
    /// p-value ascending, then canonical order), listed in the canonical order.
    pub triangles: Vec<Triangle>,
    pub test: CycleTest,
}

/// One arc `x → y` of a triangle, with the terms the statistics sum: its count `n`,
/// `log T = log(n / N(x))`, the reference variance `1/n + 1/N(x)` and `1/n`. Computed once per
/// arc (not per triangle) when streaming, and the same way for the listed rows, so both give
/// bit-identical statistics.
#[derive(Debug, Clone, Copy)]
struct Arc {
    n: u64,
    log_t: f64,
    variance_reference: f64,
    inverse: f64,
}

impl Arc {
    fn new(n: u64, big_n: f64) -> Self {
        Arc {
            n,
            log_t: (n as f64 / big_n).ln(),
            variance_reference: 1.0 / n as f64 + 1.0 / big_n,
            inverse: 1.0 / n as f64,
        }
    }
}

/// What every triangle contributes, before the p-value (which costs an `erfc`, so it is only
/// computed where needed).
#[derive(Debug, Clone, Copy)]
struct Core {
    forward: f64,
    backward: f64,
    variance_reference: f64,
    variance: f64,
    z: f64,
    kept_reference: bool,
    corrected: bool,
}

/// The statistics of a triangle from its arcs `ab, bc, ca, ac, cb, ba` and the out-counts of
/// its states (for the reference filter).
fn core(arcs: &[Arc; 6], big_n: [u64; 3], settings: &CycleSettings) -> Core {
    let forward = arcs[0].log_t + arcs[1].log_t + arcs[2].log_t;
    let backward = arcs[3].log_t + arcs[4].log_t + arcs[5].log_t;
    let variance_reference = arcs.iter().map(|a| a.variance_reference).sum::<f64>();
    let variance = arcs.iter().map(|a| a.inverse).sum::<f64>();
    let smallest = arcs
        .iter()
        .map(|a| a.n)
        .chain(big_n)
        .min()
        .expect("nine counts") as f64;
    Core {
        forward,
        backward,
        variance_reference,
        variance,
        z: (forward - backward) / variance.sqrt(),
        kept_reference: smallest > settings.threshold && variance_reference < 100.0,
        corrected: arcs.iter().all(|a| a.n >= settings.min_count),
    }
}

/// The arcs `ab, bc, ca, ac, cb, ba` of the triangle `[a, b, c]`, as [`core`] takes them.
fn six_arcs([a, b, c]: [u32; 3], arc: impl Fn(u32, u32) -> Arc) -> [Arc; 6] {
    [
        arc(a, b),
        arc(b, c),
        arc(c, a),
        arc(a, c),
        arc(c, b),
        arc(b, a),
    ]
}

/// The triangle `[a, b, c]` of `graph`, evaluated (counts looked up in the graph); the q-value
/// is left unset.
fn triangle_of(graph: &TransitionGraph, states: [u32; 3], settings: &CycleSettings) -> Triangle {
    let arc = |u: u32, v: u32| {
        let n = graph.count[graph.find_edge(u, v).expect("reciprocal arcs exist")];
        Arc::new(n, graph.out_count[u as usize] as f64)
    };
    let arcs = six_arcs(states, arc);
    let big_n = states.map(|u| graph.out_count[u as usize]);
    let t = core(&arcs, big_n, settings);
    Triangle {
        states,
        counts: arcs.map(|a| a.n),
        forward: t.forward,
        backward: t.backward,
        affinity: t.forward - t.backward,
        variance_reference: t.variance_reference,
        variance: t.variance,
        z: t.z,
        p_value: two_sided_p(t.z),
        q_value: None,
        kept_reference: t.kept_reference,
        corrected: t.corrected,
    }
}

/// The two arcs of each oriented edge of `r` (one per reciprocal pair): `src → adj`, `adj → src`.
fn pair_arcs(graph: &TransitionGraph, r: &OrientedReciprocal) -> Vec<[Arc; 2]> {
    (0..r.n_edges())
        .into_par_iter()
        .map(|e| {
            let (u, v) = (r.src[e], r.adj[e]);
            let forward = graph.find_edge(u, v).expect("reciprocal arcs exist");
            let backward = graph.reverse[forward] as usize;
            [
                Arc::new(graph.count[forward], graph.out_count[u as usize] as f64),
                Arc::new(graph.count[backward], graph.out_count[v as usize] as f64),
            ]
        })
        .collect()
}

/// A triangle's place in the ranking of the per-cycle table: smaller is more significant
/// (corrected first, then larger |z|, i.e. smaller p-value, then the canonical order).
#[derive(Debug, Clone, Copy)]
struct Ranked {
    untested: bool,
    abs_z: f64,
    /// Position in the canonical order.
    index: u64,
    states: [u32; 3],
}

impl Ranked {
    fn key(&self, other: &Self) -> Ordering {
        self.untested
            .cmp(&other.untested)
            .then(other.abs_z.total_cmp(&self.abs_z))
            .then(self.index.cmp(&other.index))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.key(other) == Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key(other)
    }
}

/// What one triangle adds to the streamed statistics.
#[derive(Debug, Clone, Copy)]
struct Contribution {
    /// `A² / (σ²_fwd + σ²_bwd)` when kept by the reference filters.
    reference: Option<f64>,
    corrected: bool,
    /// Corrected with p ≤ `fdr`.
    significant: bool,
    abs_z: f64,
}

/// Histogram of the corrected triangles' |z|, for bounds on the Benjamini–Hochberg count when
/// the flagged triangles do not fit the listed ones: bins of 2^−12 relative width (the top 12
/// mantissa bits) over |z| ∈ [2^−24, 2^16), everything below in the first bin, above in the last.
struct ZHistogram(Vec<u64>);

impl ZHistogram {
    const SHIFT: u32 = 40;
    const FIRST: u64 = (1023 - 24) << 12;
    const END: u64 = (1023 + 16) << 12;

    fn new() -> Self {
        ZHistogram(vec![0; (Self::END - Self::FIRST) as usize])
    }

    fn bin(abs_z: f64) -> usize {
        let bits = abs_z.to_bits() >> Self::SHIFT;
        (bits.clamp(Self::FIRST, Self::END - 1) - Self::FIRST) as usize
    }

    /// The |z| range `[low, high)` of bin `b`.
    fn edges(b: usize) -> (f64, f64) {
        let edge = |k: u64| f64::from_bits((k + Self::FIRST) << Self::SHIFT);
        let low = if b == 0 { 0.0 } else { edge(b as u64) };
        let high = if b as u64 + 1 == Self::END - Self::FIRST {
            f64::INFINITY
        } else {
            edge(b as u64 + 1)
        };
        (low, high)
    }

    /// Bounds `[low, high]` of the Benjamini–Hochberg count `R = max{r : p_(r) ≤ fdr r / m}`:
    /// visiting the bins from the largest |z| (smallest p) down, with `C` the triangles so far,
    /// `R ≥ C` when even the bin's largest p satisfies `p m ≤ fdr C`, and `R ≤` the largest `C`
    /// whose bin's smallest p satisfies it (the p-value `p_(R)` lies in some bin with
    /// `R ≤ C`).
    fn bh_bounds(&self, m: u64, fdr: f64) -> (u64, u64) {
        let (mut c, mut low, mut high) = (0u64, 0u64, 0u64);
        for b in (0..self.0.len()).rev() {
            if self.0[b] == 0 {
                continue;
            }
            c += self.0[b];
            let (z_low, z_high) = Self::edges(b);
            let (p_small, p_large) = (two_sided_p(z_high), two_sided_p(z_low));
            if p_large * m as f64 <= fdr * c as f64 {
                low = low.max(c);
            }
            if p_small * m as f64 <= fdr * c as f64 {
                high = high.max(c);
            }
        }
        (low, high)
    }
}

/// The streamed statistics over all triangles, folded in the canonical order (so sums are the
/// same whatever the chunks, and on every backend). Memory: the `limit` listed triangles, one
/// flag per reciprocal pair and a fixed histogram.
struct Accumulator {
    seen: u64,
    kept_reference: u64,
    reference_chi2: f64,
    corrected: u64,
    p_at_most_fdr: u64,
    histogram: ZHistogram,
    /// The `limit` most significant triangles, the least significant on top.
    top: BinaryHeap<Ranked>,
    limit: usize,
}

impl Accumulator {
    fn new(limit: usize) -> Self {
        Accumulator {
            seen: 0,
            kept_reference: 0,
            reference_chi2: 0.0,
            corrected: 0,
            p_at_most_fdr: 0,
            histogram: ZHistogram::new(),
            top: BinaryHeap::new(),
            limit,
        }
    }

    fn add(&mut self, r: &OrientedReciprocal, t: [u32; 3], c: &Contribution) {
        let index = self.seen;
        self.seen += 1;
        if let Some(term) = c.reference {
            self.kept_reference += 1;
            self.reference_chi2 += term;
        }
        if c.corrected {
            self.corrected += 1;
            self.p_at_most_fdr += u64::from(c.significant);
            self.histogram.0[ZHistogram::bin(c.abs_z)] += 1;
        }
        if self.limit == 0 {
            return;
        }
        let ranked = Ranked {
            untested: !c.corrected,
            abs_z: c.abs_z,
            index,
            states: [0; 3],
        };
        if self.top.len() == self.limit {
            let worst = self.top.peek().expect("the heap is full");
            if ranked.key(worst) != Ordering::Less {
                return;
            }
            self.top.pop();
        }
        self.top.push(Ranked {
            states: r.vertices(t),
            ..ranked
        });
    }
}

/// The `|z|` above which p ≤ `fdr` for certain, and below which p > `fdr` for certain; in
/// between (a relative width of 2·10⁻⁶) the p-value is computed.
fn significance_window(fdr: f64) -> (f64, f64) {
    let (mut low, mut high) = (0.0f64, 40.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (low + high);
        if two_sided_p(mid) > fdr {
            low = mid;
        } else {
            high = mid;
        }
    }
    (low * (1.0 - 1e-6), high * (1.0 + 1e-6))
}

/// What each streamed triangle is evaluated with.
struct Evaluator<'a> {
    graph: &'a TransitionGraph,
    r: &'a OrientedReciprocal,
    /// The two arcs of each oriented edge of `r` ([`pair_arcs`]).
    arcs: Vec<[Arc; 2]>,
    settings: &'a CycleSettings,
    /// [`significance_window`] of `settings.fdr`.
    z_window: (f64, f64),
}

impl Evaluator<'_> {
    /// The contribution of triangle `t` of the kernel's stream: oriented edges `[e, i, j]`.
    fn contribution(&self, t: [u32; 3]) -> Contribution {
        let r = self.r;
        let [e, i, j] = t.map(|x| x as usize);
        let (u, v) = (r.src[e], r.adj[e]);
        // Arc x → y of the triangle: pairs u–v (edge e), u–w (edge i), v–w (edge j),
        // each oriented from its first to its second vertex.
        let arc = |x: u32, y: u32| -> Arc {
            let (edge, backward) = match (x == u, x == v, y == u, y == v) {
                (true, _, _, true) => (e, 0),
                (_, true, true, _) => (e, 1),
                (true, _, _, _) => (i, 0),
                (_, _, true, _) => (i, 1),
                (_, true, _, _) => (j, 0),
                _ => (j, 1),
            };
            self.arcs[edge][backward]
        };
        let states = r.vertices(t);
        let big_n = states.map(|x| self.graph.out_count[x as usize]);
        let t = core(&six_arcs(states, arc), big_n, self.settings);
        let abs_z = t.z.abs();
        let (z_low, z_high) = self.z_window;
        let significant = t.corrected
            && (abs_z >= z_high || (abs_z > z_low && two_sided_p(t.z) <= self.settings.fdr));
        Contribution {
            reference: t
                .kept_reference
                .then(|| (t.backward - t.forward).powi(2) / (t.variance_reference + 1e-10)),
            corrected: t.corrected,
            significant,
            abs_z,
        }
    }
}

/// The cycle test of `graph`; the triangles are enumerated by `backend`'s kernel
/// `reciprocal_triangles`, streamed in chunks and folded into counts and sums, never held all
/// at once: memory is O(states + edges + `max_cycles`) however many triangles there are.
///
/// Every statistic over all triangles is a streamed count or sum: the reference χ²/ndf, the
/// number `m` of corrected triangles, the number `S` of them with p ≤ `fdr`, the cycle-space χ²
/// (it needs only the pairs that lie on a corrected triangle, [`cycle_space_pairs`]). The
/// per-cycle table keeps the `max_cycles` most significant triangles
/// (corrected first, then by |z| descending, i.e. p ascending) in a bounded heap.
///
/// Benjamini–Hochberg q-values need the p-values sorted. When every corrected triangle is
/// listed they are exact. Otherwise the `k` listed corrected ones, the `k` smallest p-values of
/// `m`, get the step-up `q_(i) = min_{i ≤ j ≤ k} min(1, m p_(j) / j)` over their ranks among all
/// `m`. That misses only the terms `j > k`, so it is an upper bound of the true q, exact for
/// every q ≤ `fdr` whenever no unlisted triangle can be flagged: when `S ≤ k`, or
/// `p_(k) m / S > fdr` (then every `j > k` has `p_(j) m / j > fdr`). Then `flagged` is exact
/// too ([`CycleTest::flags_fit_listed`]). Otherwise the flagged triangles do not fit the listed
/// ones: `flagged` is a lower bound and `flagged_at_most` an upper bound, from the listed
/// q-values, `S` and a fixed histogram of |z| (bins of 2^−12 relative width), and
/// [`CycleTest::flagged_exact`] says whether they meet.
///
/// More than `settings.max_triangles` triangles is an [`Error::Settings`] naming
/// `--max-triangles` ([`check_triangle_limit`], before any is enumerated).
pub fn cycle_test(
    graph: &TransitionGraph,
    backend: &dyn Backend,
    settings: &CycleSettings,
) -> Result<CycleScan> {
    cycle_test_in_chunks(graph, backend, settings, TRIANGLE_CHUNK)
}

/// [`cycle_test`] with the backend's chunks of at most `chunk` triangles (tests use small ones).
pub fn cycle_test_in_chunks(
    graph: &TransitionGraph,
    backend: &dyn Backend,
    settings: &CycleSettings,
    chunk: usize,
) -> Result<CycleScan> {
    let r = OrientedReciprocal::new(graph);
    check_limit(&r, settings.max_triangles)?;
    let acc = fold_triangles(graph, backend, &r, settings, chunk)?;
    let total = acc.seen as usize;
    let mut listed: Vec<Ranked> = acc.top.into_vec();
    listed.sort_unstable_by_key(|t| t.index);
    let mut triangles: Vec<Triangle> = listed
        .iter()
        .map(|t| triangle_of(graph, t.states, settings))
        .collect();
    let (m, s) = (acc.corrected, acc.p_at_most_fdr);
    let certain = set_q_values(&mut triangles, m, s, settings.fdr);
    let listed_flags = triangles
        .iter()
        .filter(|t| t.q_value.is_some_and(|q| q <= settings.fdr))
        .count() as u64;
    let (flagged, flagged_at_most) = if certain {
        (listed_flags, listed_flags)
    } else {
        let (low, high) = acc.histogram.bh_bounds(m, settings.fdr);
        let low = low.max(listed_flags);
        (low, high.min(s).max(low))
    };

    let kept = acc.kept_reference as usize;
    let chi2_ndf_reference = (kept > 0).then(|| acc.reference_chi2 / kept as f64);
    let space = cycle_space(graph, settings.min_count);
    let test = CycleTest {
        n: kept,
        chi2_ndf_reference,
        triangles: total,
        n_corrected: m as usize,
        chi2: space.chi2,
        ndf: space.ndf,
        p_value: space.p_value,
        flagged: flagged as usize,
        flagged_exact: flagged == flagged_at_most,
        flags_fit_listed: certain,
        flagged_at_most: flagged_at_most as usize,
        p_at_most_fdr: s as usize,
        listed: triangles.len(),
        limit_reached: triangles.len() < total,
        fdr: settings.fdr,
        min_count: settings.min_count,
    };
    Ok(CycleScan { triangles, test })
}

/// Every triangle of the backend's stream folded into an [`Accumulator`], in the canonical
/// order; each chunk is evaluated in parallel.
fn fold_triangles(
    graph: &TransitionGraph,
    backend: &dyn Backend,
    r: &OrientedReciprocal,
    settings: &CycleSettings,
    chunk: usize,
) -> Result<Accumulator> {
    let evaluator = Evaluator {
        graph,
        r,
        arcs: pair_arcs(graph, r),
        settings,
        z_window: significance_window(settings.fdr),
    };
    let mut acc = Accumulator::new(settings.max_cycles);
    backend.reciprocal_triangles(r, chunk, &mut |triangles| {
        let contributions: Vec<Contribution> = triangles
            .par_iter()
            .map(|&t| evaluator.contribution(t))
            .collect();
        for (&t, c) in triangles.iter().zip(&contributions) {
            acc.add(r, t, c);
        }
        Ok(())
    })?;
    Ok(acc)
}

/// Benjamini–Hochberg q-values of the listed corrected `triangles`, `m` corrected in all and
/// `s` of them with p ≤ `fdr` (see [`cycle_test`]); whether the flagged triangles fit the
/// listed ones.
fn set_q_values(triangles: &mut [Triangle], m: u64, s: u64, fdr: f64) -> bool {
    let mut tested: Vec<usize> = (0..triangles.len())
        .filter(|&i| triangles[i].corrected)
        .collect();
    let k = tested.len() as u64;
    if k == m {
        // Every corrected triangle is listed: BH as it is.
        let p: Vec<f64> = tested.iter().map(|&i| triangles[i].p_value).collect();
        for (&i, q) in tested.iter().zip(benjamini_hochberg(&p)) {
            triangles[i].q_value = Some(q);
        }
        return true;
    }
    // The k smallest p-values of m: the step-up over their ranks among all m.
    tested.sort_by(|&x, &y| {
        let (a, b) = (&triangles[x], &triangles[y]);
        a.p_value.total_cmp(&b.p_value).then(x.cmp(&y))
    });
    let mut running = 1.0f64;
    for (position, &i) in tested.iter().enumerate().rev() {
        running = running.min(triangles[i].p_value * m as f64 / (position + 1) as f64);
        triangles[i].q_value = Some(running);
    }
    let p_k = tested.last().map_or(0.0, |&i| triangles[i].p_value);
    s <= k || p_k * m as f64 / s as f64 > fdr
}

/// `--max-triangles`, checked before the fit: an [`Error::Settings`] naming the flag when the
/// reciprocal graph of `graph` has more triangles than `settings.max_triangles`.
pub fn check_triangle_limit(graph: &TransitionGraph, settings: &CycleSettings) -> Result<()> {
    check_limit(&OrientedReciprocal::new(graph), settings.max_triangles)
}

/// The triangle limit: the cheap bound `Σ_e min(|out(u)|, |out(v)|)` first; only when it
/// exceeds `limit`, the exact count, in chunks of edges, stopping as soon as it does.
fn check_limit(r: &OrientedReciprocal, limit: u64) -> Result<()> {
    let bound: u64 = (0..r.n_edges()).into_par_iter().map(|e| r.bound(e)).sum();
    if bound <= limit {
        return Ok(());
    }
    let mut found = 0u64;
    for first in (0..r.n_edges()).step_by(1 << 14) {
        let last = (first + (1 << 14)).min(r.n_edges());
        found += (first..last)
            .into_par_iter()
            .map(|e| closed_by(r, e).count() as u64)
            .sum::<u64>();
        if found > limit {
            return Err(Error::settings(format!(
                "the reciprocal graph has more than {limit} triangles (--max-triangles; at most \
                 {bound}): the cycle test would enumerate them all"
            ))
            .hint(
                "raise --max-triangles: the cycle test's time grows with the triangles (about \
                 0.1 µs each per core), its memory does not",
            ));
        }
    }
    Ok(())
}

/// The joint cycle-space test of [`cycle_test`]: `χ²`, its `ndf` and p-value.
#[derive(Debug, Clone, Copy)]
pub struct CycleSpace {
    pub chi2: f64,
    pub ndf: i64,
    pub p_value: Option<f64>,
}

/// The cycle-space χ² on the pairs of the corrected triangles (all six counts ≥ `min_count`):
/// what the bootstrap and the held-out check need, without enumerating triangles.
pub fn cycle_space(graph: &TransitionGraph, min_count: u64) -> CycleSpace {
    let pairs = cycle_space_pairs(graph, min_count);
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
    CycleSpace {
        chi2,
        ndf,
        p_value: chi2_sf(chi2, ndf as f64),
    }
}

/// The pairs `(u, v)`, `u < v`, ascending, that lie on a corrected triangle: on the graph `H` of
/// the pairs with both counts ≥ `min_count`, the pairs with a common neighbour. Each pair scans
/// the shorter neighbour list against the longer (binary search) and stops at the first common
/// neighbour: `O(Σ min(deg u, deg v) log)`, no triangle listed.
pub fn cycle_space_pairs(graph: &TransitionGraph, min_count: u64) -> Vec<(u32, u32)> {
    let pairs: Vec<(u32, u32)> = graph
        .reciprocal_pairs()
        .filter(|&e| {
            graph.count[e] >= min_count && graph.count[graph.reverse[e] as usize] >= min_count
        })
        .map(|e| (graph.src[e], graph.dst[e]))
        .collect();
    let h = Adjacency::new(graph.n_states(), &pairs);
    pairs
        .into_par_iter()
        .filter(|&(u, v)| {
            let (short, long) = if h.of(u).len() <= h.of(v).len() {
                (u, v)
            } else {
                (v, u)
            };
            h.of(short).iter().any(|&(w, _)| h.adjacent(long, w))
        })
        .collect()
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
