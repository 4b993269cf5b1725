//! The verdict's test of detailed balance: goodness of fit of quasi-symmetry (docs/METHOD.md
//! §4.0).
//!
//! **Model.** Under detailed balance `log T(f→g)/T(g→f) = V(f) − V(g)`. Given the number of
//! transitions between two states in either direction, `m = n(f→g) + n(g→f)`, the split is
//! binomial with the fitted odds
//!
//! ```text
//! n(f→g) | m  ~  Bin(m, σ(U_f − U_g)),      U_f = V_f + log N(f)
//! ```
//!
//! a Bradley–Terry model on the splits (the −1/N(f) covariance of a source's multinomial lies
//! along a gradient direction and is absorbed by `U`). `m` carries no information about the
//! split, so pairs are selected by `m` alone: every pair of states with `m ≥ min_transitions`
//! (default 10) inside one non-trivial strongly connected component of the graph of those
//! pairs' arcs, one-way pairs included. (A pair across components is one-way by construction;
//! its fitted split is certain and it adds nothing to the statistic.) Pairs with small `m` are
//! left out because trajectories conserve flow (a state visited once in mid-run is entered once
//! and left once), which couples a sparse state's splits in a way independent binomials do not
//! reproduce: with `m ≥ 1` the null below is liberal on sparse logs (measured, docs/METHOD.md
//! §4.0). When no such pair closes a cycle the threshold is lowered until one does. `U` is fitted by maximum likelihood; the statistic is
//! Pearson's `X² = Σ (n − m p̂)² / (m p̂ (1 − p̂))` with `ndf = pairs − (states − components)`,
//! and the deviance `G²` is reported beside it.
//!
//! **Calibration.** The χ² approximation needs expected counts of a few per pair, which sparse
//! logs do not have (most pairs are seen once). The p-value is therefore calibrated by a
//! parametric bootstrap under the fitted model: every pair's split is redrawn given its `m`
//! from `p̂` (an exact binomial draw, `rand_distr`'s BTPE, one Xoshiro stream per resample keyed
//! by `(seed, resample)`), `U` is refitted from `Û` (Newton, a few steps) and `X²` recomputed.
//! Resampled splits may leave a state winning all its comparisons, where the likelihood has no
//! finite maximum; every refit (the observed one included) therefore adds the same vanishing
//! ridge `λ/2 Σ (U − Û)²` with [`RIDGE`]: at the observed data it changes nothing (`Û` is its
//! own minimiser), and a diverging state's pairs contribute `O(λ)` to `X²`, which is their
//! limit (zero) up to `λ`. The statistic is thus the same function of the data on both sides.
//! Sequential stopping ([`VerdictSettings`]): Besag–Clifford (stop after `h` resampled
//! statistics reach the observed one, `p = h/L`), or once the observed statistic lies so far
//! beyond every resample that the decision is clear (then the tail of the χ² whose first two
//! moments match the resamples), or at the cap `(1 + G)/(1 + L)`.
//!
//! **Localisation.** Each pair's standardised residual `(n − m p̂)/√(m p̂ (1 − p̂))`, its
//! two-sided normal p-value and Benjamini–Hochberg q-value say which arcs carry a violation.
//!
//! **The fit.** Newton's method on the negative log-likelihood, by the solver the potential's fit
//! uses too ([`crate::backend::newton`]): the Hessian is the graph
//! Laplacian with weights `m p (1 − p)` (plus `λ`), so each step is a conjugate-gradient solve
//! with sparse matrix–vector products only, preconditioned by its diagonal, to a relative
//! accuracy that follows the last decrement (inexact Newton); Levenberg–Marquardt damping
//! `μ (diag H + I)` while steps fail to decrease the objective (far from the optimum the weights
//! can be tiny where the curvature ahead is not); stopped when the Newton decrement `δᵀHδ` (the
//! squared error of `U` in the Hessian's norm, to second order) falls below [`DECREMENT_TOL`] or
//! stops decreasing (the floor set by rounding).

use super::{benjamini_hochberg, chi2_sf, two_sided_p};
use crate::backend::newton::{self, HostSpace, NewtonOptions};
use crate::backend::problem::softplus_neg;
use crate::error::{Error, Result};
use crate::graph::{TransitionGraph, strongly_connected_components};
use rand::SeedableRng;
use rand_distr::{Binomial, Distribution};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use statrs::distribution::{ChiSquared, ContinuousCDF};

/// The ridge `λ` of every refit (see the module docs).
pub const RIDGE: f64 = 1e-6;
/// Newton stops when the decrement `δᵀHδ` is below this (or stops decreasing quadratically
/// below [`QUADRATIC`]: the floor set by rounding in the gradient's sums).
pub const DECREMENT_TOL: f64 = 1e-20;
/// Below this decrement Newton takes full steps (no line search).
const QUADRATIC: f64 = 1e-8;

const MAX_NEWTON: usize = 200;

/// The pairs of the test: every pair of states with `m > 0` within one non-trivial strongly
/// connected component, in a compact numbering of those states.
#[derive(Debug, Clone)]
pub struct SplitPairs {
    /// Graph ids of the two states (`f < g`).
    pub f: Vec<u32>,
    pub g: Vec<u32>,
    /// Compact indices of `f` and `g`.
    a: Vec<u32>,
    b: Vec<u32>,
    /// `n(f→g)` and `m = n(f→g) + n(g→f)`.
    pub n_fg: Vec<u64>,
    pub m: Vec<u64>,
    /// Graph id of each compact state.
    pub states: Vec<u32>,
    pub components: usize,
}

impl SplitPairs {
    /// The pairs of `graph` with `m ≥ min_m` (see the module docs).
    pub fn of(graph: &TransitionGraph, min_m: u64) -> SplitPairs {
        let pair_m = |e: usize| {
            let r = graph.reverse[e];
            graph.count[e]
                + if r == crate::graph::NO_EDGE {
                    0
                } else {
                    graph.count[r as usize]
                }
        };
        let scc = strongly_connected_components(graph, |e| pair_m(e) >= min_m);
        let n = graph.n_states();
        let mut compact = vec![u32::MAX; n];
        let mut renumber = vec![u32::MAX; scc.count()];
        let mut states = Vec::new();
        let mut components = 0u32;
        for (s, slot) in compact.iter_mut().enumerate() {
            let c = scc.id[s] as usize;
            if scc.size[c] < 2 {
                continue;
            }
            if renumber[c] == u32::MAX {
                renumber[c] = components;
                components += 1;
            }
            *slot = states.len() as u32;
            states.push(s as u32);
        }
        let mut pairs = SplitPairs {
            f: Vec::new(),
            g: Vec::new(),
            a: Vec::new(),
            b: Vec::new(),
            n_fg: Vec::new(),
            m: Vec::new(),
            states,
            components: components as usize,
        };
        for e in 0..graph.n_edges() {
            let (f, g) = (graph.src[e], graph.dst[e]);
            let r = graph.reverse[e];
            // Each pair once: from its edge f → g with f < g, or from a one-way edge.
            let first = r == crate::graph::NO_EDGE || f < g;
            if !first
                || pair_m(e) < min_m
                || scc.id[f as usize] != scc.id[g as usize]
                || compact[f as usize] == u32::MAX
            {
                continue;
            }
            let back = if r == crate::graph::NO_EDGE {
                0
            } else {
                graph.count[r as usize]
            };
            let (lo, hi, n_lo) = if f < g {
                (f, g, graph.count[e])
            } else {
                (g, f, back)
            };
            pairs.f.push(lo);
            pairs.g.push(hi);
            pairs.a.push(compact[lo as usize]);
            pairs.b.push(compact[hi as usize]);
            pairs.n_fg.push(n_lo);
            pairs.m.push(graph.count[e] + back);
        }
        pairs
    }

    pub fn len(&self) -> usize {
        self.m.len()
    }

    pub fn is_empty(&self) -> bool {
        self.m.is_empty()
    }

    /// Degrees of freedom `pairs − (states − components)`: the independent cycles.
    pub fn ndf(&self) -> i64 {
        self.len() as i64 - (self.states.len() as i64 - self.components as i64)
    }

    /// The fitted probability `p̂ = σ(U_f − U_g)` that pair `i` splits towards `f → g`.
    fn fitted_p(&self, u: &[f64], i: usize) -> f64 {
        logistic(u[self.a[i] as usize] - u[self.b[i] as usize])
    }

    /// `log N(f)` per compact state: the start of the fit (`V = 0`).
    fn log_out_counts(&self, graph: &TransitionGraph) -> Vec<f64> {
        self.states
            .iter()
            .map(|&s| (graph.out_count[s as usize] as f64).ln())
            .collect()
    }
}

/// Logistic `σ(x)`, stable for large `|x|`.
fn logistic(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `−log σ(x)` without overflow.
fn neg_log_logistic(x: f64) -> f64 {
    if x >= 0.0 {
        (-x).exp().ln_1p()
    } else {
        -x + x.exp().ln_1p()
    }
}

/// A maximum-likelihood fit of `U` for given splits.
struct Fit {
    u: Vec<f64>,
    newton_steps: usize,
    /// Conjugate-gradient iterations over all Newton steps.
    cg_steps: usize,
    /// The last Newton decrement `δᵀHδ`.
    decrement: f64,
}

/// The Bradley–Terry fit of `U` to the splits `n` from `start`, with the ridge
/// `ridge/2 Σ (U − anchor)²`: the shared Newton–CG ([`newton`]) with Levenberg–Marquardt damping
/// (module docs). Starting at the anchor with a ridge (a refit) it starts undamped.
fn fit_splits(
    pairs: &SplitPairs,
    n: &[u64],
    start: &[f64],
    anchor: &[f64],
    ridge: f64,
) -> Result<Fit> {
    let opts = NewtonOptions {
        max_iterations: MAX_NEWTON,
        step_tol: 0.0,
        decrement_tol: DECREMENT_TOL,
        quadratic: QUADRATIC,
        damping: if start == anchor && ridge > 0.0 {
            0.0
        } else {
            1.0
        },
        max_step: 10.0,
        grad_tol: f64::INFINITY,
        rounding: 1e-14,
    };
    let mut space = SplitSpace {
        pairs,
        n,
        anchor,
        ridge,
        weight: vec![0.0; pairs.len()],
        diag: vec![0.0; start.len()],
    };
    let out = newton::minimize(&mut space, start, &opts)?;
    Ok(Fit {
        u: out.x,
        newton_steps: out.iterations,
        cg_steps: out.hessian_products,
        decrement: out.decrement,
    })
}

/// The negative log-likelihood of the splits as a Newton–CG space over host vectors: each pair
/// is two arcs of a Bradley–Terry action, `n` wins of `a` over `b` and `m − n` of `b` over `a`.
struct SplitSpace<'a> {
    pairs: &'a SplitPairs,
    n: &'a [u64],
    anchor: &'a [f64],
    ridge: f64,
    /// Hessian weights `m p (1 − p)` per pair at the last evaluated point.
    weight: Vec<f64>,
    /// Hessian diagonal there (`ridge + Σ weights`; 1 where every weight underflowed).
    diag: Vec<f64>,
}

impl HostSpace for SplitSpace<'_> {
    fn dim(&self) -> usize {
        self.diag.len()
    }
    fn evaluate(&mut self, u: &[f64], grad: &mut [f64]) -> Result<f64> {
        let (pairs, n, ridge) = (self.pairs, self.n, self.ridge);
        let mut value = 0.0;
        for ((g, d), (x, y)) in grad
            .iter_mut()
            .zip(&mut self.diag)
            .zip(u.iter().zip(self.anchor))
        {
            *g = ridge * (x - y);
            *d = ridge;
            value += 0.5 * ridge * (x - y).powi(2);
        }
        for i in 0..pairs.len() {
            let (a, b) = (pairs.a[i] as usize, pairs.b[i] as usize);
            let d = u[a] - u[b];
            let (win, m) = (n[i] as f64, pairs.m[i] as f64);
            value += win * neg_log_logistic(d) + (m - win) * neg_log_logistic(-d);
            let p = logistic(d);
            let residual = win - m * p;
            grad[a] -= residual;
            grad[b] += residual;
            self.weight[i] = m * p * (1.0 - p);
            self.diag[a] += self.weight[i];
            self.diag[b] += self.weight[i];
        }
        // A state whose weights all underflowed: a unit diagonal there.
        self.diag
            .iter_mut()
            .filter(|d| d.is_nan() || **d <= 1e-200)
            .for_each(|d| *d = 1.0);
        Ok(value)
    }
    fn hessian_times(&mut self, v: &[f64], out: &mut [f64]) -> Result<()> {
        out.iter_mut().zip(v).for_each(|(o, v)| *o = self.ridge * v);
        let pairs = self.pairs;
        for ((&a, &b), &w) in pairs.a.iter().zip(&pairs.b).zip(&self.weight) {
            let t = w * (v[a as usize] - v[b as usize]);
            out[a as usize] += t;
            out[b as usize] -= t;
        }
        Ok(())
    }
    fn diagonal(&self) -> &[f64] {
        &self.diag
    }
}

/// Pearson's `X²` and the deviance `G²` of splits `n` at `u`.
fn statistics(pairs: &SplitPairs, n: &[u64], u: &[f64]) -> (f64, f64) {
    let (mut x2, mut g2) = (0.0, 0.0);
    for i in 0..pairs.len() {
        let d = u[pairs.a[i] as usize] - u[pairs.b[i] as usize];
        let p = logistic(d);
        let (m, win) = (pairs.m[i] as f64, n[i] as f64);
        let lose = m - win;
        let variance = m * p * (1.0 - p);
        if variance > 0.0 {
            x2 += (win - m * p).powi(2) / variance;
        }
        // log p = −K(d) and log(1 − p) = −K(−d), finite where p rounds to 0 or 1.
        if win > 0.0 {
            g2 += 2.0 * win * ((win / m).ln() + softplus_neg(d));
        }
        if lose > 0.0 {
            g2 += 2.0 * lose * ((lose / m).ln() + softplus_neg(-d));
        }
    }
    (x2, g2)
}

/// Which pairs the verdict tests, and when to stop drawing resamples.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VerdictSettings {
    /// Pairs enter with `m = n(f→g) + n(g→f) ≥ min_transitions` (module docs: why 3).
    pub min_transitions: u64,
    /// Most resamples (`0`: the asymptotic χ² p-value, no resampling).
    pub max_resamples: usize,
    /// Besag–Clifford: stop once this many resampled statistics reach the observed one.
    pub exceedances: usize,
    /// Fewest resamples before the observed statistic can be declared beyond them all.
    pub min_resamples: usize,
    /// ... when it lies this many resampled standard deviations above their mean.
    pub clear_sd: f64,
    pub seed: u64,
}

impl Default for VerdictSettings {
    fn default() -> Self {
        VerdictSettings {
            min_transitions: 10,
            max_resamples: 999,
            exceedances: 10,
            min_resamples: 40,
            clear_sd: 8.0,
            seed: 0,
        }
    }
}

/// How the p-value was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Calibration {
    /// `P(χ²_ndf ≥ X²)`: resampling off.
    Asymptotic,
    /// Besag–Clifford: `h` exceedances reached after `L` resamples, `p = h/L`.
    SequentialMonteCarlo,
    /// The cap was reached: `p = (1 + G)/(1 + L)`.
    MonteCarlo,
    /// No resample reached the observed statistic, which lies beyond them by more than
    /// `clear_sd` standard deviations: the tail of the moment-matched scaled χ².
    MomentMatchedTail,
}

impl Calibration {
    pub fn describe(self) -> &'static str {
        match self {
            Calibration::Asymptotic => "asymptotic χ² (resampling off)",
            Calibration::SequentialMonteCarlo => {
                "parametric bootstrap with refits, Besag–Clifford sequential stopping"
            }
            Calibration::MonteCarlo => "parametric bootstrap with refits",
            Calibration::MomentMatchedTail => {
                "parametric bootstrap with refits; observed beyond every resample, tail of the moment-matched χ²"
            }
        }
    }
}

/// The verdict's test.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QuasiSymmetryTest {
    pub test: &'static str,
    pub pairs: usize,
    /// Smallest `m` of a tested pair: `min_transitions`, or less when only smaller pairs close
    /// a cycle (then the calibration is approximate: see the module docs).
    pub min_transitions: u64,
    pub one_way_pairs: usize,
    pub states: usize,
    pub components: usize,
    pub ndf: i64,
    /// Pearson `X²`.
    pub statistic: f64,
    pub deviance: f64,
    /// `P(χ²_ndf ≥ X²)`, for comparison with the calibrated p-value.
    pub p_value_asymptotic: Option<f64>,
    /// The verdict's p-value; `None` without an independent cycle.
    pub p_value: Option<f64>,
    pub calibration: Option<Calibration>,
    pub resamples: usize,
    /// Resampled statistics at or above the observed one.
    pub exceedances: usize,
    /// Mean and standard deviation of the resampled `X²`.
    pub null_mean: Option<f64>,
    pub null_sd: Option<f64>,
    /// Pairs with `m p̂ (1 − p̂) < 1`, where the χ² approximation is poor.
    pub sparse_pairs: usize,
    pub newton_steps: usize,
    /// Conjugate-gradient iterations (sparse products) of the observed fit.
    pub cg_steps: usize,
    /// Newton decrement at the observed fit (squared error of `U` in the Hessian's norm).
    pub decrement: f64,
    /// Pairs whose residual is flagged at the false-discovery rate.
    pub flagged_pairs: usize,
    pub fdr: f64,
}

/// One pair's fitted split and residual.
#[derive(Debug, Clone)]
pub struct SplitResidual {
    pub f: u32,
    pub g: u32,
    pub n_fg: u64,
    pub n_gf: u64,
    /// `m p̂`.
    pub expected: f64,
    pub residual: f64,
    pub p_value: f64,
    pub q_value: f64,
}

/// Runs the test; `None` fields for a log without an independent cycle.
pub fn quasi_symmetry_test(
    graph: &TransitionGraph,
    settings: &VerdictSettings,
    fdr: f64,
) -> Result<(QuasiSymmetryTest, Vec<SplitResidual>, FittedSplits)> {
    let (pairs, min_m) = select_pairs(graph, settings.min_transitions);
    let start = pairs.log_out_counts(graph);
    let observed = fit_splits(&pairs, &pairs.n_fg, &start, &start, 0.0)?;
    let u = observed.u;
    let (statistic, deviance) = statistics(&pairs, &pairs.n_fg, &u);
    let ndf = pairs.ndf();
    let residuals = split_residuals(&pairs, &u);
    let mut test = QuasiSymmetryTest {
        test: "quasi-symmetry X² (Bradley–Terry on pair splits)",
        pairs: pairs.len(),
        min_transitions: min_m,
        one_way_pairs: (0..pairs.len())
            .filter(|&i| pairs.n_fg[i] == 0 || pairs.n_fg[i] == pairs.m[i])
            .count(),
        states: pairs.states.len(),
        components: pairs.components,
        ndf,
        statistic,
        deviance,
        p_value_asymptotic: chi2_sf(statistic, ndf as f64),
        p_value: None,
        calibration: None,
        resamples: 0,
        exceedances: 0,
        null_mean: None,
        null_sd: None,
        sparse_pairs: (0..pairs.len())
            .filter(|&i| {
                let p = pairs.fitted_p(&u, i);
                (pairs.m[i] as f64) * p * (1.0 - p) < 1.0
            })
            .count(),
        newton_steps: observed.newton_steps,
        cg_steps: observed.cg_steps,
        decrement: observed.decrement,
        flagged_pairs: residuals.iter().filter(|r| r.q_value <= fdr).count(),
        fdr,
    };
    let fitted = FittedSplits { pairs, u };
    if ndf <= 0 {
        return Ok((test, residuals, fitted));
    }
    if !statistic.is_finite() {
        return Err(Error::Numerical(format!(
            "the verdict's X² is {statistic}; no report is written"
        )));
    }
    set_p_value(&mut test, &fitted, settings);
    Ok((test, residuals, fitted))
}

/// The pairs with `m ≥ min_transitions`, or with a lower threshold when those close no cycle (so
/// a log with an independent cycle always gets a p-value, its calibration then flagged as
/// approximate); and the threshold used.
fn select_pairs(graph: &TransitionGraph, min_transitions: u64) -> (SplitPairs, u64) {
    let mut min_m = min_transitions.max(1);
    let mut pairs = SplitPairs::of(graph, min_m);
    while pairs.ndf() <= 0 && min_m > 1 {
        min_m -= 1;
        pairs = SplitPairs::of(graph, min_m);
    }
    (pairs, min_m)
}

/// Each pair's standardised residual under the fitted `u`, its two-sided p-value and its
/// Benjamini–Hochberg q-value.
fn split_residuals(pairs: &SplitPairs, u: &[f64]) -> Vec<SplitResidual> {
    let mut residuals: Vec<SplitResidual> = (0..pairs.len())
        .map(|i| {
            let p = pairs.fitted_p(u, i);
            let m = pairs.m[i] as f64;
            let sd = (m * p * (1.0 - p)).sqrt();
            let residual = if sd > 0.0 {
                (pairs.n_fg[i] as f64 - m * p) / sd
            } else {
                0.0
            };
            SplitResidual {
                f: pairs.f[i],
                g: pairs.g[i],
                n_fg: pairs.n_fg[i],
                n_gf: pairs.m[i] - pairs.n_fg[i],
                expected: m * p,
                residual,
                p_value: two_sided_p(residual),
                q_value: 1.0,
            }
        })
        .collect();
    let q = benjamini_hochberg(&residuals.iter().map(|r| r.p_value).collect::<Vec<_>>());
    residuals.iter_mut().zip(q).for_each(|(r, q)| r.q_value = q);
    residuals
}

/// The p-value of a test with independent cycles: the χ² tail without resamples, else the
/// parametric bootstrap of `fitted` (module docs).
fn set_p_value(test: &mut QuasiSymmetryTest, fitted: &FittedSplits, settings: &VerdictSettings) {
    if settings.max_resamples == 0 {
        test.p_value = test.p_value_asymptotic;
        test.calibration = Some(Calibration::Asymptotic);
        return;
    }
    let null = NullModel::new(fitted);
    let outcome = calibrate(test.statistic, settings, |resample| {
        null.statistic(resample, settings.seed)
    });
    test.p_value = Some(outcome.p_value);
    test.calibration = Some(outcome.calibration);
    test.resamples = outcome.samples.len();
    test.exceedances = outcome.exceedances;
    let (mean, sd) = mean_sd(&outcome.samples);
    test.null_mean = Some(mean);
    test.null_sd = Some(sd);
}

/// The fitted model as a generator of resampled splits and statistics.
pub struct NullModel<'a> {
    pairs: &'a SplitPairs,
    u: &'a [f64],
    draws: Vec<Binomial>,
}

impl<'a> NullModel<'a> {
    pub fn new(fitted: &'a FittedSplits) -> Self {
        let (pairs, u) = (&fitted.pairs, fitted.u.as_slice());
        let draws = (0..pairs.len())
            .map(|i| {
                let p = logistic(u[pairs.a[i] as usize] - u[pairs.b[i] as usize]);
                Binomial::new(pairs.m[i], p).expect("0 ≤ p ≤ 1")
            })
            .collect();
        NullModel { pairs, u, draws }
    }

    /// The splits `n*(f→g)` of resample `resample`, drawn from `p̂`.
    fn splits(&self, resample: u64, seed: u64) -> Vec<u64> {
        let mut rng = resample_rng(seed, resample);
        self.draws.iter().map(|d| d.sample(&mut rng)).collect()
    }

    /// Resample `resample` as `(f, g, n*(f→g), n*(g→f))` per tested pair (graph ids, `f < g`).
    pub fn draw(&self, resample: u64, seed: u64) -> Vec<(u32, u32, u64, u64)> {
        let n = self.splits(resample, seed);
        (0..self.pairs.len())
            .map(|i| {
                (
                    self.pairs.f[i],
                    self.pairs.g[i],
                    n[i],
                    self.pairs.m[i] - n[i],
                )
            })
            .collect()
    }

    /// `Û*` refitted (from `Û`, with the refits' ridge) to the splits of resample `resample`;
    /// `None` where the refit fails.
    pub fn refit(&self, resample: u64, seed: u64) -> Option<FittedSplits> {
        let n = self.splits(resample, seed);
        let fit = fit_splits(self.pairs, &n, self.u, self.u, RIDGE).ok()?;
        Some(FittedSplits {
            pairs: self.pairs.clone(),
            u: fit.u,
        })
    }

    /// `X²` of resample `resample`: splits drawn from `p̂`, `U` refitted from `Û`. A refit whose
    /// objective is not finite (which the ridge prevents) counts as reaching any observed
    /// statistic: +∞, the conservative side.
    pub fn statistic(&self, resample: u64, seed: u64) -> f64 {
        let n = self.splits(resample, seed);
        match fit_splits(self.pairs, &n, self.u, self.u, RIDGE) {
            Ok(fit) => statistics(self.pairs, &n, &fit.u).0,
            Err(_) => f64::INFINITY,
        }
    }
}

/// The pairs of the verdict's test and the fitted `Û`.
pub struct FittedSplits {
    pub pairs: SplitPairs,
    pub u: Vec<f64>,
}

/// The random stream of one resample: independent of the threads that draw it.
fn resample_rng(seed: u64, resample: u64) -> Xoshiro256PlusPlus {
    let mut key = seed ^ 0x51_7c_c1_b7_27_22_0a_95;
    key = key.wrapping_add(resample.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    Xoshiro256PlusPlus::seed_from_u64(key)
}

/// A Monte Carlo p-value with its stopping.
pub struct Calibrated {
    pub p_value: f64,
    pub calibration: Calibration,
    pub exceedances: usize,
    pub samples: Vec<f64>,
}

/// Draws resampled statistics in parallel batches until the stopping rule of `settings` holds
/// (module docs). The result depends on the seed only, not on the threads.
pub fn calibrate(
    observed: f64,
    settings: &VerdictSettings,
    draw: impl Fn(u64) -> f64 + Sync,
) -> Calibrated {
    let batch = (2 * rayon::current_num_threads()).max(8);
    let mut samples: Vec<f64> = Vec::new();
    let mut exceed = 0;
    loop {
        let from = samples.len();
        let to = (from + batch).min(settings.max_resamples);
        let drawn: Vec<f64> = (from..to).into_par_iter().map(|r| draw(r as u64)).collect();
        // Examine the new samples one by one, so the stopping point does not depend on the
        // batch size.
        for x in drawn {
            samples.push(x);
            exceed += usize::from(x >= observed);
            let l = samples.len();
            if exceed >= settings.exceedances {
                return Calibrated {
                    p_value: exceed as f64 / l as f64,
                    calibration: Calibration::SequentialMonteCarlo,
                    exceedances: exceed,
                    samples,
                };
            }
            if exceed == 0 && l >= settings.min_resamples {
                let (mean, sd) = mean_sd(&samples);
                if sd > 0.0 && observed > mean + settings.clear_sd * sd {
                    return Calibrated {
                        p_value: moment_matched_tail(observed, mean, sd),
                        calibration: Calibration::MomentMatchedTail,
                        exceedances: 0,
                        samples,
                    };
                }
            }
            if l >= settings.max_resamples {
                return Calibrated {
                    p_value: (1 + exceed) as f64 / (1 + l) as f64,
                    calibration: Calibration::MonteCarlo,
                    exceedances: exceed,
                    samples,
                };
            }
        }
    }
}

/// `P(a χ²_ν ≥ x)` with `a χ²_ν` matching the mean and standard deviation of the resamples.
fn moment_matched_tail(x: f64, mean: f64, sd: f64) -> f64 {
    let scale = sd * sd / (2.0 * mean);
    let nu = 2.0 * mean * mean / (sd * sd);
    ChiSquared::new(nu).map_or(0.0, |c| c.sf(x / scale))
}

/// Mean and sample standard deviation.
pub(super) fn mean_sd(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::graph_of as graph;
    #[test]
    fn a_tree_of_pairs_fits_exactly_and_has_no_degrees_of_freedom() {
        let g = graph(&[("a", "b", 30), ("b", "a", 10), ("b", "c", 5), ("c", "b", 7)]);
        let (t, residuals, _) = quasi_symmetry_test(&g, &VerdictSettings::default(), 0.05).unwrap();
        assert_eq!((t.pairs, t.states, t.components, t.ndf), (2, 3, 1, 0));
        assert!(t.statistic < 1e-12, "{}", t.statistic);
        assert!(t.p_value.is_none());
        assert!(
            residuals
                .iter()
                .all(|r| (r.expected - r.n_fg as f64).abs() < 1e-9)
        );
    }

    #[test]
    fn a_driven_triangle_is_rejected_and_a_balanced_one_is_not() {
        // Kolmogorov: 40·40·40 ≠ 10·10·10 around a→b→c→a.
        let driven = graph(&[
            ("a", "b", 40),
            ("b", "c", 40),
            ("c", "a", 40),
            ("b", "a", 10),
            ("c", "b", 10),
            ("a", "c", 10),
        ]);
        let (t, _, _) = quasi_symmetry_test(&driven, &VerdictSettings::default(), 0.05).unwrap();
        assert_eq!(t.ndf, 1);
        assert!(t.p_value.unwrap() < 0.001, "{t:?}");
        // log-odds a:b = log 4, b:c = log 4, c:a = −log 16: a gradient field, X² = 0.
        let balanced = graph(&[
            ("a", "b", 40),
            ("b", "c", 40),
            ("c", "a", 5),
            ("b", "a", 10),
            ("c", "b", 10),
            ("a", "c", 80),
        ]);
        let (t, _, _) = quasi_symmetry_test(&balanced, &VerdictSettings::default(), 0.05).unwrap();
        assert!(t.statistic < 1e-9, "{t:?}");
        assert!(t.p_value.unwrap() > 0.5, "{t:?}");
    }

    #[test]
    fn one_way_pairs_inside_a_component_are_tested() {
        // a→b→c→a one way only: one cycle of one-way pairs, strongly connected.
        let g = graph(&[("a", "b", 3), ("b", "c", 3), ("c", "a", 3), ("b", "a", 1)]);
        let pairs = SplitPairs::of(&g, 1);
        assert_eq!(pairs.len(), 3);
        assert_eq!(pairs.ndf(), 1);
        // A pair across components is left out.
        let g = graph(&[("a", "b", 3), ("b", "a", 2), ("b", "c", 4)]);
        assert_eq!(SplitPairs::of(&g, 1).len(), 1);
    }

    #[test]
    fn resampling_depends_on_the_seed_only() {
        let g = graph(&[
            ("a", "b", 4),
            ("b", "c", 3),
            ("c", "a", 2),
            ("b", "a", 1),
            ("c", "b", 2),
            ("a", "c", 3),
            ("c", "d", 1),
            ("d", "a", 2),
        ]);
        let settings = VerdictSettings {
            max_resamples: 200,
            ..VerdictSettings::default()
        };
        let one = quasi_symmetry_test(&g, &settings, 0.05).unwrap().0;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let two = pool.install(|| quasi_symmetry_test(&g, &settings, 0.05).unwrap().0);
        assert_eq!(one.p_value, two.p_value);
        assert_eq!(one.resamples, two.resamples);
        assert!(one.p_value.unwrap() > 0.0);
    }
}
