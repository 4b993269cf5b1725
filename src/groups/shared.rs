//! The test of "one shared potential": do the groups' transitions fit one `V` as well as each
//! group's own (docs/METHOD.md §7)? The paper's claim that potentials transcend prompt templates,
//! as a p-value.
//!
//! **Model.** As the verdict's (`stats::quasi_symmetry`): given the `m` transitions between two
//! states of group `k` in either direction, the split is binomial,
//!
//! ```text
//! n_k(f→g) | m_k  ~  Bin(m_k, σ(U^k_f − U^k_g)),      U^k_f = V^k_f + log N_k(f)
//! ```
//!
//! with `N_k(f)` the visits of `f` in group `k` (data, not fitted). The alternative fits each
//! group's `U^k` freely — the verdict's fit, once per group; the null ties them to one potential,
//! `U^k_f = V_f + log N_k(f)`, a Bradley–Terry fit over the states of all groups with a known
//! offset on every split. Both use the same splits: each group's verdict pairs (`m ≥
//! --verdict-min-transitions` inside a strongly connected component of that group's pairs), so
//! both maximum-likelihood fits are finite (the null's components are unions of strongly
//! connected ones). The statistic is the likelihood ratio `LR = 2 (ℓ_separate − ℓ_shared)`, with
//! `df = Σ_k (states_k − components_k) − (states − components)`: the potential differences that
//! the groups could disagree on. It tests the potential, not the kernel: groups may move at
//! different rates as long as `T(f→g)/T(g→f)` is one `e^{V_f − V_g}`.
//!
//! **Calibration.** Sparse groups put the χ² approximation far off, so the p-value comes from a
//! parametric bootstrap of the null fit, as the verdict's: every split redrawn from the shared
//! fit's `p̂` given its `m`, both models refitted (from the shared fit's values, with the vanishing
//! ridge [`RIDGE`] so that no resampled state diverges), `LR` recomputed;
//! sequential stopping by [`calibrate`] under the verdict's settings (`--verdict-resamples`,
//! `--seed`; `--verdict-resamples 0` gives the χ² tail). On trajectory logs it is conservative
//! (METHOD.md §7): both fits see the splits only through each state's wins, its net flow, which a
//! walk conserves and the bootstrap's independent binomials do not.
//!
//! The model is independent of the estimator of the groups' potentials (it tests the transitions,
//! not a fit): `--estimator` and `--l2` change the correlations, not this test.

use crate::backend::newton::{self, HostSpace, NewtonOptions};
use crate::backend::problem::{sigmoid_neg, softplus_neg};
use crate::error::{Error, Result};
use crate::graph::TransitionGraph;
use crate::stats::chi2_sf;
use crate::stats::detailed_balance::vertices_and_components;
use crate::stats::quasi_symmetry::{
    Calibration, DECREMENT_TOL, SplitPairs, VerdictSettings, calibrate, mean_sd,
};
use rand::SeedableRng;
use rand_distr::{Binomial, Distribution};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use rustc_hash::FxHashMap;

/// The ridge `λ/2 Σ U²` of both models' fits: a resample can leave a state winning all its
/// comparisons, where the likelihood has no finite maximum.
const RIDGE: f64 = 1e-6;
/// The test's outcome (report.json `groups.shared_potential_test`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct SharedPotentialTest {
    pub test: &'static str,
    /// Groups with at least one tested split.
    pub groups: usize,
    /// Tested splits, over all groups.
    pub splits: usize,
    /// Distinct states of the shared fit.
    pub states: usize,
    /// Smallest `m` of a tested split (`--verdict-min-transitions`).
    pub min_transitions: u64,
    /// Potential differences the groups could disagree on.
    pub df: i64,
    /// The likelihood ratio `2 (ℓ_separate − ℓ_shared)`.
    pub statistic: f64,
    /// `P(χ²_df ≥ LR)`, for comparison.
    pub p_value_asymptotic: Option<f64>,
    pub p_value: f64,
    pub calibration: Calibration,
    pub resamples: usize,
    /// Resampled statistics at or above the observed one.
    pub exceedances: usize,
    /// Mean and standard deviation of the resampled `LR`.
    pub null_mean: Option<f64>,
    pub null_sd: Option<f64>,
}

/// The test on the groups' graphs (states matched by name); `None` when no state's potential
/// difference is seen in two groups (`df ≤ 0`).
pub fn shared_potential_test(
    graphs: &[&TransitionGraph],
    settings: &VerdictSettings,
) -> Result<Option<SharedPotentialTest>> {
    let splits = Splits::of(graphs, settings.min_transitions.max(1));
    if splits.df <= 0 {
        return Ok(None);
    }
    let shared = fit(
        &splits.shared,
        &splits,
        &splits.n,
        &splits.shared_start,
        0.0,
    )?;
    let separate = fit(
        &splits.separate,
        &splits,
        &splits.n,
        &splits.separate_start,
        0.0,
    )?;
    let statistic = likelihood_ratio(&splits, &splits.n, &shared, &separate);
    if !statistic.is_finite() {
        return Err(Error::Numerical(format!(
            "the shared-potential test's likelihood ratio is {statistic}; no report is written"
        )));
    }
    let mut test = SharedPotentialTest {
        test: "likelihood ratio, one potential for all groups against one per group",
        groups: splits.groups,
        splits: splits.m.len(),
        states: splits.shared.nodes,
        min_transitions: settings.min_transitions.max(1),
        df: splits.df,
        statistic,
        p_value_asymptotic: chi2_sf(statistic, splits.df as f64),
        p_value: f64::NAN,
        calibration: Calibration::Asymptotic,
        resamples: 0,
        exceedances: 0,
        null_mean: None,
        null_sd: None,
    };
    if settings.max_resamples == 0 {
        test.p_value = test.p_value_asymptotic.unwrap_or(1.0);
        return Ok(Some(test));
    }
    let null = Null::new(&splits, shared);
    let batch = (2 * rayon::current_num_threads()).max(8);
    let outcome = calibrate(statistic, settings, batch, |resamples| {
        Ok(resamples
            .into_par_iter()
            .map(|r| null.statistic(r, settings.seed))
            .collect())
    })?;
    let (mean, sd) = mean_sd(&outcome.samples);
    test.p_value = outcome.p_value;
    test.calibration = outcome.calibration;
    test.resamples = outcome.samples.len();
    test.exceedances = outcome.exceedances;
    test.null_mean = Some(mean);
    test.null_sd = Some(sd);
    Ok(Some(test))
}

/// Which fitted value each split compares, in one of the two models.
struct Design {
    a: Vec<u32>,
    b: Vec<u32>,
    /// Added to `x_a − x_b` (the shared model's `log N_k(f) − log N_k(g)`).
    offset: Vec<f64>,
    nodes: usize,
}

/// Every group's tested splits, `f → g` wins `n` of `m`, and the two models over them.
struct Splits {
    m: Vec<u64>,
    n: Vec<u64>,
    shared: Design,
    separate: Design,
    /// Starts of the observed fits: `V = 0`, and `U^k = log N_k`.
    shared_start: Vec<f64>,
    separate_start: Vec<f64>,
    /// `log N_k(f)` of each separate node and its shared node: the map between the models.
    separate_offset: Vec<f64>,
    separate_shared: Vec<u32>,
    groups: usize,
    df: i64,
}

impl Splits {
    fn of(graphs: &[&TransitionGraph], min_m: u64) -> Splits {
        let mut shared_id: FxHashMap<&str, u32> = FxHashMap::default();
        let (mut m, mut n) = (Vec::new(), Vec::new());
        let empty = || Design {
            a: Vec::new(),
            b: Vec::new(),
            offset: Vec::new(),
            nodes: 0,
        };
        let (mut shared, mut separate) = (empty(), empty());
        let (mut separate_offset, mut separate_shared) = (Vec::new(), Vec::new());
        let (mut groups, mut free) = (0, 0i64);
        for graph in graphs {
            let pairs = SplitPairs::of(graph, min_m);
            if pairs.is_empty() {
                continue;
            }
            groups += 1;
            free += (pairs.states.len() - pairs.components) as i64;
            let log_n = |s: u32| (graph.out_count[s as usize] as f64).ln();
            // Graph id → separate node.
            let mut node: FxHashMap<u32, u32> = FxHashMap::default();
            for &s in &pairs.states {
                let next = shared_id.len() as u32;
                let id = *shared_id
                    .entry(graph.names[s as usize].as_str())
                    .or_insert(next);
                node.insert(s, separate_offset.len() as u32);
                separate_offset.push(log_n(s));
                separate_shared.push(id);
            }
            for i in 0..pairs.len() {
                let (f, g) = (pairs.f[i], pairs.g[i]);
                let (sf, sg) = (node[&f], node[&g]);
                separate.a.push(sf);
                separate.b.push(sg);
                separate.offset.push(0.0);
                shared.a.push(separate_shared[sf as usize]);
                shared.b.push(separate_shared[sg as usize]);
                shared.offset.push(log_n(f) - log_n(g));
                m.push(pairs.m[i]);
                n.push(pairs.n_fg[i]);
            }
        }
        separate.nodes = separate_offset.len();
        shared.nodes = shared_id.len();
        // Every shared node is a state of some split, so the components of the splits' states
        // are those of all nodes.
        let edges: Vec<(u32, u32)> = shared
            .a
            .iter()
            .copied()
            .zip(shared.b.iter().copied())
            .collect();
        let (_, shared_components) = vertices_and_components(shared.nodes, &edges);
        Splits {
            df: free - (shared.nodes - shared_components) as i64,
            shared_start: vec![0.0; shared.nodes],
            separate_start: separate_offset.clone(),
            m,
            n,
            shared,
            separate,
            separate_offset,
            separate_shared,
            groups,
        }
    }
}

/// `LR = 2 (ℓ_separate − ℓ_shared)` of wins `n` at the two fits, rounding below 0 set to 0 (NaN
/// stays NaN).
fn likelihood_ratio(splits: &Splits, n: &[u64], shared: &[f64], separate: &[f64]) -> f64 {
    let nll = |design: &Design, x: &[f64]| {
        (0..n.len())
            .map(|i| {
                let d = difference(design, x, i);
                let win = n[i] as f64;
                win * softplus_neg(d) + (splits.m[i] as f64 - win) * softplus_neg(-d)
            })
            .sum::<f64>()
    };
    let lr = 2.0 * (nll(&splits.shared, shared) - nll(&splits.separate, separate));
    if lr < 0.0 { 0.0 } else { lr }
}

/// `x_a − x_b + offset` of split `i`.
fn difference(design: &Design, x: &[f64], i: usize) -> f64 {
    x[design.a[i] as usize] - x[design.b[i] as usize] + design.offset[i]
}

/// The maximum-likelihood fit of `design` to wins `n` from `start`, with the ridge
/// `ridge/2 Σ (x − start)²` (the resamples' refits; 0 for the observed fits).
fn fit(design: &Design, splits: &Splits, n: &[u64], start: &[f64], ridge: f64) -> Result<Vec<f64>> {
    let opts = NewtonOptions {
        max_iterations: 200,
        step_tol: 0.0,
        decrement_tol: DECREMENT_TOL,
        quadratic: 1e-8,
        damping: if ridge > 0.0 { 0.0 } else { 1.0 },
        max_step: 10.0,
        grad_tol: f64::INFINITY,
        rounding: 1e-14,
        stage: "groups",
    };
    let mut space = LogitSpace {
        design,
        m: &splits.m,
        n,
        anchor: start,
        ridge,
        weight: vec![0.0; n.len()],
        diag: vec![0.0; design.nodes],
    };
    Ok(newton::minimize(&mut space, start, &opts)?.x)
}

/// The splits' negative log-likelihood under `design` as a Newton–CG space over host vectors.
struct LogitSpace<'a> {
    design: &'a Design,
    m: &'a [u64],
    n: &'a [u64],
    anchor: &'a [f64],
    ridge: f64,
    /// Hessian weights `m p (1 − p)` per split at the last evaluated point.
    weight: Vec<f64>,
    diag: Vec<f64>,
}

impl HostSpace for LogitSpace<'_> {
    fn dim(&self) -> usize {
        self.diag.len()
    }
    fn evaluate(&mut self, x: &[f64], grad: &mut [f64]) -> Result<f64> {
        let mut value = 0.0;
        for (i, (g, d)) in grad.iter_mut().zip(&mut self.diag).enumerate() {
            let dx = x[i] - self.anchor[i];
            (*g, *d) = (self.ridge * dx, self.ridge);
            value += 0.5 * self.ridge * dx * dx;
        }
        for i in 0..self.m.len() {
            let (a, b) = (self.design.a[i] as usize, self.design.b[i] as usize);
            let d = difference(self.design, x, i);
            let (win, m) = (self.n[i] as f64, self.m[i] as f64);
            value += win * softplus_neg(d) + (m - win) * softplus_neg(-d);
            let p = sigmoid_neg(-d);
            let residual = win - m * p;
            grad[a] -= residual;
            grad[b] += residual;
            self.weight[i] = m * p * (1.0 - p);
            self.diag[a] += self.weight[i];
            self.diag[b] += self.weight[i];
        }
        // A node whose weights all underflowed: a unit diagonal there.
        self.diag
            .iter_mut()
            .filter(|d| d.is_nan() || **d <= 1e-200)
            .for_each(|d| *d = 1.0);
        Ok(value)
    }
    fn hessian_times(&mut self, v: &[f64], out: &mut [f64]) -> Result<()> {
        out.iter_mut().zip(v).for_each(|(o, v)| *o = self.ridge * v);
        let design = self.design;
        for ((&a, &b), &w) in design.a.iter().zip(&design.b).zip(&self.weight) {
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

/// The shared fit as a generator of resampled statistics.
struct Null<'a> {
    splits: &'a Splits,
    shared: Vec<f64>,
    /// The shared fit in the separate model's variables: `V̂_f + log N_k(f)`.
    separate: Vec<f64>,
    draws: Vec<Binomial>,
}

impl<'a> Null<'a> {
    fn new(splits: &'a Splits, shared: Vec<f64>) -> Self {
        let separate = (splits.separate_offset.iter().zip(&splits.separate_shared))
            .map(|(o, &s)| shared[s as usize] + o)
            .collect();
        let draws = (0..splits.m.len())
            .map(|i| {
                let p = sigmoid_neg(-difference(&splits.shared, &shared, i));
                Binomial::new(splits.m[i], p).expect("0 ≤ p ≤ 1")
            })
            .collect();
        Null {
            splits,
            shared,
            separate,
            draws,
        }
    }

    /// `LR` of resample `resample`; a failed refit or a NaN counts as reaching any observed
    /// statistic (+∞, the conservative side).
    fn statistic(&self, resample: u64, seed: u64) -> f64 {
        let mut key = seed ^ 0x6772_6f75_7073_4c52;
        key = key.wrapping_add(resample.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(key);
        let n: Vec<u64> = self.draws.iter().map(|d| d.sample(&mut rng)).collect();
        let s = self.splits;
        match (
            fit(&s.shared, s, &n, &self.shared, RIDGE),
            fit(&s.separate, s, &n, &self.separate, RIDGE),
        ) {
            (Ok(shared), Ok(separate)) => match likelihood_ratio(s, &n, &shared, &separate) {
                lr if lr.is_nan() => f64::INFINITY,
                lr => lr,
            },
            _ => f64::INFINITY,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::GraphBuilder;

    /// A triangle `a, b, c` with splits `(n(a→b), n(b→a)), (b,c), (c,a)`, each state also
    /// staying put `stay` times.
    fn triangle(splits: [(u64, u64); 3], stay: u64) -> TransitionGraph {
        let mut b = GraphBuilder::default();
        let s = [b.intern("a"), b.intern("b"), b.intern("c")];
        let mut row = 0;
        for (i, &(fw, bw)) in splits.iter().enumerate() {
            let (f, g) = (s[i], s[(i + 1) % 3]);
            b.add(f, g, fw, row).unwrap();
            b.add(g, f, bw, row + 1).unwrap();
            b.add(f, f, stay, row + 2).unwrap();
            row += 3;
        }
        b.finish()
    }

    #[test]
    fn identical_groups_fit_one_potential_exactly() {
        let g = triangle([(30, 10), (20, 20), (12, 24)], 5);
        let test = shared_potential_test(&[&g, &g], &VerdictSettings::default())
            .unwrap()
            .unwrap();
        // Two groups of 3 states in one component each: 4 free differences, 2 shared.
        assert_eq!((test.df, test.states, test.splits), (2, 3, 6));
        assert!(test.statistic < 1e-8, "{}", test.statistic);
        assert!(test.p_value > 0.5, "{}", test.p_value);
    }

    #[test]
    fn opposite_potentials_are_rejected() {
        let a = triangle([(40, 10), (40, 10), (10, 40)], 20);
        let b = triangle([(10, 40), (10, 40), (40, 10)], 20);
        let test = shared_potential_test(&[&a, &b], &VerdictSettings::default())
            .unwrap()
            .unwrap();
        // χ²₂ tail at 26: e^{−13} = 2.3e-6.
        assert!(test.statistic > 20.0, "{}", test.statistic);
        assert!(test.p_value < 0.01, "{:?}", test);
        assert!(test.p_value_asymptotic.unwrap() < 1e-4);
    }

    #[test]
    fn no_shared_state_no_test() {
        let a = triangle([(30, 10), (20, 20), (12, 24)], 5);
        let mut b = GraphBuilder::default();
        let (x, y) = (b.intern("x"), b.intern("y"));
        b.add(x, y, 20, 0).unwrap();
        b.add(y, x, 20, 1).unwrap();
        let b = b.finish();
        assert!(
            shared_potential_test(&[&a, &b], &VerdictSettings::default())
                .unwrap()
                .is_none()
        );
    }
}
