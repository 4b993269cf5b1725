//! Resampling tests, Monte Carlo p-values (docs/METHOD.md §4.3): null distributions drawn on the
//! analysis' backend (kernel `resample`, CPU and GPU bit-identical draws from [`crate::rng`]),
//! bootstrap intervals ([`super::bootstrap`]) and a held-out check.
//!
//! Every test draws `N` resamples (`--permutations N`) from Philox streams keyed by
//! `(--seed, test)`, counter `(item, resample, j)`; its p-value is
//! `(1 + #{null ≥ observed}) / (1 + N)` with Monte Carlo standard error `√(p (1 − p) / N)`.
//!
//! **The random half.** Two tests need data the statistic's other ingredient was not fitted on.
//! Each count `n` (arc or self-transition) is thinned once per seed, `n_A ~ Bin(n, ½)`,
//! `n_B = n − n_A` (Philox, purpose `Split`): two independent halves of the records (exactly so
//! when counts are Poisson, to `O(1/N)` under the multinomial).
//!
//! **Sign flips of cycle affinities** (null: detailed balance, every affinity symmetric around
//! 0). Flipping the signs of one affinity per triangle cannot detect a drive whose orientation
//! is arbitrary (a driven affinity is as likely positive as negative across triangles), and
//! triangles sharing an arc are dependent, so flipping them one by one misstates the null.
//! Instead: all reciprocal triangles (no count threshold: a drive makes the arcs against it
//! rare, and a threshold would drop exactly the driven cycles), packed greedily in the
//! canonical order so that no two share a pair (their affinities are then independent up to
//! the `O(1/N)` multinomial coupling of a shared source state); in each half the standardised
//! affinity `z_h = A_h / √Σ 1/(n_h + ½)`, `A_h = Σ ±log(n_h + ½)` around the cycle; statistic
//! `T = Σ_c z_A,c z_B,c`. Under detailed balance the two halves are independent with mean-zero
//! affinities, so each product is symmetric around 0 and the flips `Σ ±z_A z_B` are an exact
//! null; a drive has the same sign in both halves and makes `T` large (one-sided).
//!
//! **Parametric resampling of the pair residuals** (null: detailed balance with the fitted V).
//! For each pair of the corrected pair test with `m = n(f→g) + n(g→f)`, the fitted odds are
//! `λ = log(N(f)/N(g)) + V(f) − V(g)`, `p = σ(λ)`, and `n*(f→g) ~ Bin(m, p)` (exact for
//! `m ≤ 64`, else the fixed-point normal approximation of [`crate::rng::BinomialParams`]).
//! Statistic `Q = min_V Σ (ℓ − log(N(f)/N(g)) − V(f) + V(g))² / σ²`, `ℓ = log(n(f→g)+½) −
//! log(n(g→f)+½)`, with each pair's variance from its own counts,
//! `σ² = 1/(n(f→g)+½) + 1/(n(g→f)+½) − 1/N(f) − 1/N(g)` (the sources' multinomials make the
//! log-odds less variable than a split of `m` by the `1/N` terms); each resample's
//! `Q* = Σ (ℓ* − λ)² / (1/(n*+½) + 1/(m−n*+½))`, the same statistic of the split draws. Weights
//! from the counts themselves on both sides: weights from the fitted odds (`m p (1 − p)`) left
//! the observed statistic below the null (mean p-value 0.61 on 100 reversible simulations,
//! Kolmogorov–Smirnov p = 0.001). V is not refitted per resample: the observed `Q` is taken at
//! its minimum over V (the weighted least-squares potential of these residuals, as in the pair
//! test), which removes `k = states − components` degrees of freedom, while each `Q*` keeps all
//! `P` pairs'. Without a correction the test would be conservative (`E Q ≈ P − k` against
//! `E Q* ≈ P`); each `Q*` is mapped to `M (P−k)/P + (Q* − M) √((P−k)/P)` (`M` the mean of the
//! `Q*`), which matches the first two moments of `χ²_P → χ²_(P−k)` and keeps the resampled
//! shape. What it approximates: exact refitting per resample (a weighted least squares per
//! resample), equal to it to the normal approximation of each pair's log-odds. Also
//! approximated: `N(f)` is held fixed (the pair split is resampled, not the source totals).
//!
//! **Explanatory power of V** (null: V says nothing about the direction of transitions). The
//! paper's `r` tested in-sample always rejects: V is fitted to the same log-ratios, so even a
//! flat potential "explains" its own noise. Here V is fitted on half A and tested on half B:
//! for the reciprocal pairs with both half-B counts ≥ `min_count` and V on both states,
//! `x̃ = x_B / σ_B`, `ỹ = (V_A(f) − V_A(g)) / σ_B` (binomial σ of the pair test), statistic the
//! orientation-invariant correlation `r = Σ x̃ ỹ / √(Σ x̃² Σ ỹ²)`; the null permutes V_A over the
//! states of those pairs (a keyed Feistel permutation per resample, [`crate::rng::Permutation`]).
//! Components are permuted together (each is centred to mean zero).
//!
//! **Held-out check** (`--holdout`): the pair test of half B against V_A (its `r`, slope and the
//! corrected χ², which minimises over V on B) and the cycle test of half B, beside the in-sample
//! values. Run-level splits are not implemented: the loader keeps counts, not runs.

use super::bootstrap::{self, Bootstrap};
use super::cycles::{self, CycleSettings};
use super::detailed_balance::{self, Pair, PairSettings, vertices_and_components};
use super::{Difference, gradient_field_residual};
use crate::backend::Backend;
use crate::backend::cpu::resample::{ResampleJob, log_half};
use crate::error::Result;
use crate::fit::{self, FitSettings, Potential};
use crate::graph::TransitionGraph;
use crate::progress::{self, Unit};
use crate::rng::{BinomialParams, MAX_TRIALS, Purpose, Stream, binomial};
use rustc_hash::FxHashMap;

#[derive(Debug, Clone, serde::Serialize)]
pub struct ResamplingSettings {
    /// Resamples per test (`--permutations`); 0 turns the resampling tests off.
    pub permutations: u32,
    /// Bootstrap resamples (`--bootstrap`); 0 turns the bootstrap off.
    pub bootstrap: u32,
    pub seed: u64,
    /// Also run the held-out check.
    pub holdout: bool,
    /// Coverage of the bootstrap intervals.
    pub level: f64,
}

impl Default for ResamplingSettings {
    fn default() -> Self {
        ResamplingSettings {
            permutations: 10_000,
            bootstrap: 200,
            seed: 0,
            holdout: false,
            level: 0.9,
        }
    }
}

/// One Monte Carlo test: its observed statistic, null sample and p-value.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NullTest {
    /// `sign_flip`, `parametric` or `explanatory_power`.
    pub test: &'static str,
    pub statistic: &'static str,
    /// Cycles or pairs in the statistic.
    pub items: usize,
    pub observed: f64,
    pub resamples: u32,
    /// Resamples with a statistic ≥ the observed one.
    pub exceed: u32,
    pub p_value: f64,
    /// Monte Carlo standard error of `p_value`.
    pub p_value_se: f64,
    /// The null statistics, resample by resample (also in nulls.parquet).
    #[serde(skip)]
    pub null: Vec<f64>,
}

impl NullTest {
    fn new(
        test: &'static str,
        statistic: &'static str,
        items: usize,
        observed: f64,
        null: Vec<f64>,
    ) -> Self {
        // A null value within 1e-12 relative of the observed one counts as a tie (≥), so that
        // the CPU's and the GPU's sums, equal to ~1e-13, give the same p-value.
        let tie = 1e-12 * observed.abs().max(f64::MIN_POSITIVE);
        let exceed = null.iter().filter(|&&t| t >= observed - tie).count() as u32;
        let resamples = null.len() as u32;
        let p = f64::from(1 + exceed) / f64::from(1 + resamples);
        NullTest {
            test,
            statistic,
            items,
            observed,
            resamples,
            exceed,
            p_value: p,
            p_value_se: (p * (1.0 - p) / f64::from(resamples.max(1))).sqrt(),
            null,
        }
    }
}

/// The held-out check: half B tested against V fitted on half A.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Holdout {
    /// Transitions in half A (fit) and half B (test).
    pub transitions_fit: u64,
    pub transitions_test: u64,
    pub identifiable_states_fit: usize,
    pub pairs: usize,
    pub pearson_r: Option<f64>,
    pub correlation_origin: Option<f64>,
    pub slope: Option<f64>,
    pub slope_ci: Option<[f64; 2]>,
    pub pair_chi2: f64,
    pub pair_ndf: i64,
    pub pair_p_value: Option<f64>,
    pub cycle_chi2: f64,
    pub cycle_ndf: i64,
    pub cycle_p_value: Option<f64>,
}

/// Everything the resampling stage computed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Resampling {
    pub settings: ResamplingSettings,
    /// Monte Carlo tests, in the order sign flip, parametric, explanatory power (each only when
    /// it has items).
    pub tests: Vec<NullTest>,
    /// Degrees of freedom the parametric null was corrected for (`states − components`) and
    /// the raw mean of its resampled statistic.
    pub parametric_fit_dof: Option<usize>,
    pub bootstrap: Option<Bootstrap>,
    pub holdout: Option<Holdout>,
}

/// Most resamples per test (`--permutations`): every null sample is kept (for nulls.parquet and
/// the figures), 8 bytes per resample and test.
pub const MAX_PERMUTATIONS: u32 = 1_000_000;

/// Resamples per backend call: the progress bar advances between calls.
const BATCH: u32 = 2048;

/// Runs the resampling stage.
#[allow(clippy::too_many_arguments)]
pub fn resampling(
    graph: &TransitionGraph,
    potential: &Potential,
    pairs: &[Pair],
    packing: &[[u32; 3]],
    backend: &dyn Backend,
    fit_settings: &FitSettings,
    pair_settings: &PairSettings,
    cycle_settings: &CycleSettings,
    settings: &ResamplingSettings,
) -> Result<Resampling> {
    let n = settings.permutations;
    let min_count = pair_settings.min_count;
    let [half_a, half_b] = split_halves(graph, settings.seed);
    let mut tests = Vec::new();
    let mut fit_dof = None;
    let bar = progress::bar("resample", 3 * u64::from(n), Unit::Items);
    if n > 0 {
        let products = sign_flip_products(packing, &half_a, &half_b);
        if !products.is_empty() {
            let observed = products.iter().sum();
            let items = products.len();
            let job = ResampleJob::SignFlips { products };
            let null = draw(backend, &job, Purpose::SignFlip, settings, &bar)?;
            let null = null.iter().map(|s| s[0]).collect();
            tests.push(NullTest::new(
                "sign_flip",
                "Σ z_A z_B over edge-disjoint triangles",
                items,
                observed,
                null,
            ));
        }
        if let Some((job, observed, dof)) = parametric_job(graph, pairs) {
            let items = job.items();
            let raw: Vec<f64> = draw(backend, &job, Purpose::Parametric, settings, &bar)?
                .iter()
                .map(|s| s[0])
                .collect();
            let mean = raw.iter().sum::<f64>() / raw.len() as f64;
            let keep = (items - dof) as f64 / items as f64;
            let null = raw
                .iter()
                .map(|q| mean * keep + (q - mean) * keep.sqrt())
                .collect();
            tests.push(NullTest::new(
                "parametric",
                "weighted χ² of the pair log-odds, minimised over V",
                items,
                observed,
                null,
            ));
            fit_dof = Some(dof);
        }
    }
    let needs_half_fit = n > 0 || settings.holdout;
    let held_out = if needs_half_fit {
        let (v_a, fit_a) = fit::fit(&half_a, fit_settings, backend)?;
        Some((v_a, fit_a.identifiable_states))
    } else {
        None
    };
    if let (true, Some((v_a, _))) = (n > 0, &held_out)
        && let Some((job, observed)) = explanatory_job(&half_b, v_a, min_count)
    {
        let items = job.items();
        let null = draw(backend, &job, Purpose::Permutation, settings, &bar)?;
        let ResampleJob::Permutations { standardized, .. } = &job else {
            unreachable!("built as permutations")
        };
        let sxx: f64 = standardized.iter().map(|x| x * x).sum();
        let null = null
            .iter()
            .map(|s| {
                if s[1] > 0.0 {
                    s[0] / (sxx * s[1]).sqrt()
                } else {
                    0.0
                }
            })
            .collect();
        tests.push(NullTest::new(
            "explanatory_power",
            "r(x_B, ΔV_A) standardised, through the origin",
            items,
            observed,
            null,
        ));
    }
    bar.finish();
    let holdout = match (&held_out, settings.holdout) {
        (Some((v_a, identifiable)), true) => Some(holdout(
            &half_a,
            &half_b,
            v_a,
            *identifiable,
            pair_settings,
            cycle_settings,
        )?),
        _ => None,
    };
    let bootstrap = (settings.bootstrap > 0)
        .then(|| {
            bootstrap::bootstrap(
                graph,
                potential,
                backend,
                fit_settings,
                pair_settings,
                cycle_settings,
                settings,
            )
        })
        .transpose()?;
    Ok(Resampling {
        settings: settings.clone(),
        tests,
        parametric_fit_dof: fit_dof,
        bootstrap,
        holdout,
    })
}

/// The null sums of `job` for resamples `0..N`, in batches that advance `bar`.
fn draw(
    backend: &dyn Backend,
    job: &ResampleJob,
    purpose: Purpose,
    settings: &ResamplingSettings,
    bar: &progress::Progress,
) -> Result<Vec<[f64; 2]>> {
    let stream = Stream::new(settings.seed, purpose);
    let n = settings.permutations;
    let mut sums = Vec::with_capacity(n as usize);
    for first in (0..n).step_by(BATCH as usize) {
        let last = (first + BATCH).min(n);
        sums.extend(backend.resample(job, &stream, first..last)?);
        bar.inc(u64::from(last - first));
    }
    Ok(sums)
}

/// `graph` with every count replaced by `count(item)` (arc `e`: item `e`; self-transitions of
/// `f`: item `edges + f`); arcs whose count becomes 0 are dropped.
pub(crate) fn recount(graph: &TransitionGraph, count: impl Fn(u32, u64) -> u64) -> TransitionGraph {
    let m = graph.n_edges();
    let n = graph.n_states();
    let self_count: Vec<u64> = (0..n)
        .map(|f| count((m + f) as u32, graph.self_count[f]))
        .collect();
    let mut out_count = self_count.clone();
    let mut edges = Vec::with_capacity(m);
    for e in 0..m {
        let c = count(e as u32, graph.count[e]);
        if c > 0 {
            out_count[graph.src[e] as usize] += c;
            edges.push((graph.src[e], graph.dst[e], c));
        }
    }
    let rows = out_count.iter().sum();
    TransitionGraph::from_sorted_edges(graph.names.clone(), out_count, self_count, edges, rows)
}

/// The two random halves of the records (see the module docs).
pub fn split_halves(graph: &TransitionGraph, seed: u64) -> [TransitionGraph; 2] {
    let stream = Stream::new(seed, Purpose::Split);
    let half = |item: u32, n: u64| binomial(&stream, n, 0.5, item, 0);
    let a = recount(graph, half);
    let b = recount(graph, |item, n| n - half(item, n));
    [a, b]
}

/// `z_A z_B` of each triangle of `packing`, the edge-disjoint packing of the reciprocal
/// triangles that [`cycles::cycle_test`] streams (greedy in the canonical order).
fn sign_flip_products(
    packing: &[[u32; 3]],
    half_a: &TransitionGraph,
    half_b: &TransitionGraph,
) -> Vec<f64> {
    let mut products = Vec::with_capacity(packing.len());
    for &[a, b, c] in packing {
        let z = |g: &TransitionGraph| {
            let n = |u: u32, v: u32| g.find_edge(u, v).map_or(0, |e| g.count[e]) as u32;
            let arcs = [(a, b), (b, c), (c, a), (a, c), (c, b), (b, a)];
            let logs: Vec<f64> = arcs.iter().map(|&(u, v)| log_half(n(u, v))).collect();
            let affinity = logs[..3].iter().sum::<f64>() - logs[3..].iter().sum::<f64>();
            let variance: f64 = arcs
                .iter()
                .map(|&(u, v)| 1.0 / (f64::from(n(u, v)) + 0.5))
                .sum();
            affinity / variance.sqrt()
        };
        products.push(z(half_a) * z(half_b));
    }
    products
}

/// The parametric test's kernel job, its observed statistic (minimised over V) and the degrees
/// of freedom `states − components` of that minimum; `None` without pairs.
fn parametric_job(graph: &TransitionGraph, pairs: &[Pair]) -> Option<(ResampleJob, f64, usize)> {
    let (mut binomials, mut log_odds, mut differences) = (Vec::new(), Vec::new(), Vec::new());
    for p in pairs {
        let m = p.n_fg + p.n_gf;
        if !(p.corrected && p.sigma > 0.0 && m <= MAX_TRIALS) {
            continue;
        }
        let (big_f, big_g) = (
            graph.out_count[p.f as usize] as f64,
            graph.out_count[p.g as usize] as f64,
        );
        let exposure = (big_f / big_g).ln();
        let lambda = exposure + p.y;
        // The sources' multinomials make the log-odds less variable than a split of `m` by
        // 1/N(f) + 1/N(g).
        let (a, b) = (p.n_fg as f64 + 0.5, p.n_gf as f64 + 0.5);
        let variance = 1.0 / a + 1.0 / b - 1.0 / big_f - 1.0 / big_g;
        if variance <= 0.0 {
            continue;
        }
        binomials.push(BinomialParams::new(m, 1.0 / (1.0 + (-lambda).exp())));
        log_odds.push(lambda);
        differences.push(Difference {
            u: p.f,
            v: p.g,
            value: (a / b).ln() - exposure,
            variance,
        });
    }
    if differences.is_empty() {
        return None;
    }
    let observed = gradient_field_residual(graph.n_states(), &differences);
    let endpoints: Vec<(u32, u32)> = differences.iter().map(|d| (d.u, d.v)).collect();
    let (states, components) = vertices_and_components(graph.n_states(), &endpoints);
    let dof = (states - components).min(differences.len() - 1);
    let job = ResampleJob::Splits {
        binomials,
        log_odds,
    };
    Some((job, observed, dof))
}

/// The explanatory-power job on half B against `v_a`, and its observed `r`; `None` without
/// pairs or without variation.
fn explanatory_job(
    half_b: &TransitionGraph,
    v_a: &Potential,
    min_count: u64,
) -> Option<(ResampleJob, f64)> {
    let settings = PairSettings {
        paper: false,
        min_count,
    };
    let (pairs, _) = detailed_balance::pair_test(half_b, v_a, &settings);
    let mut compact: FxHashMap<u32, u32> = FxHashMap::default();
    let mut values = Vec::new();
    let mut index = |f: u32| {
        *compact.entry(f).or_insert_with(|| {
            values.push(v_a.value[f as usize].expect("pairs have potentials"));
            (values.len() - 1) as u32
        })
    };
    let (mut ends, mut standardized, mut inv_sigma) = (Vec::new(), Vec::new(), Vec::new());
    for p in pairs.iter().filter(|p| p.corrected && p.sigma > 0.0) {
        ends.push([index(p.f), index(p.g)]);
        standardized.push(p.x / p.sigma);
        inv_sigma.push(1.0 / p.sigma);
    }
    let (sxx, sxy, syy) = ends
        .iter()
        .enumerate()
        .fold((0.0, 0.0, 0.0), |s, (i, &[a, b])| {
            let y = (values[a as usize] - values[b as usize]) * inv_sigma[i];
            let x = standardized[i];
            (s.0 + x * x, s.1 + x * y, s.2 + y * y)
        });
    if !(sxx > 0.0 && syy > 0.0) || values.len() < 2 {
        return None;
    }
    let observed = sxy / (sxx * syy).sqrt();
    let job = ResampleJob::Permutations {
        ends,
        standardized,
        inv_sigma,
        values,
    };
    Some((job, observed))
}

fn holdout(
    half_a: &TransitionGraph,
    half_b: &TransitionGraph,
    v_a: &Potential,
    identifiable: usize,
    pair_settings: &PairSettings,
    cycle_settings: &CycleSettings,
) -> Result<Holdout> {
    let (_, pairs) = detailed_balance::pair_test(half_b, v_a, pair_settings);
    let cycles = cycles::cycle_space(half_b, cycle_settings.min_count);
    Ok(Holdout {
        transitions_fit: half_a.rows,
        transitions_test: half_b.rows,
        identifiable_states_fit: identifiable,
        pairs: pairs.n_corrected,
        pearson_r: pairs.pearson_r,
        correlation_origin: pairs.correlation_origin,
        slope: pairs.slope,
        slope_ci: pairs.slope_ci,
        pair_chi2: pairs.chi2,
        pair_ndf: pairs.ndf,
        pair_p_value: pairs.p_value,
        cycle_chi2: cycles.chi2,
        cycle_ndf: cycles.ndf,
        cycle_p_value: cycles.p_value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p_values_count_ties_and_have_their_monte_carlo_error() {
        let t = NullTest::new("t", "s", 1, 2.0, vec![1.0, 2.0, 3.0, 0.0]);
        assert_eq!(t.exceed, 2);
        assert_eq!(t.p_value, 3.0 / 5.0);
        assert!((t.p_value_se - (0.6f64 * 0.4 / 4.0).sqrt()).abs() < 1e-15);
    }
}
