//! Fitting the potential `V` (docs/METHOD.md §2).
//!
//! Three estimators:
//! - `least-action` (the paper's): weighted Bradley–Terry action
//!   `S = Σ_{f→g} w(f→g) K(V_f − V_g)`, `K(x) = log(1 + e^(−x))`, with the paper's weights
//!   `w = min(1, n(f→g)/N0(f))`: observed exposure `N0 = N(f)` (states with `N0 ≤ threshold`
//!   dropped with their edges) or uniform exposure `N0 = attempts / states`;
//! - `counts`: the same action with `w = n(f→g)`, the ordinary Bradley–Terry MLE;
//! - `reversible-mle`: the maximum-likelihood reversible Markov chain, `V = −log π`
//!   (see [`reversible`]).
//!
//! A finite minimiser of the action exists only on strongly connected components (SCCs) of the
//! kept edges, and is unique there up to a constant: edges between components push their ends
//! apart without bound (their terms vanish in the limit). So the fit uses the edges inside
//! non-trivial SCCs only, all components at once (they are independent), the reported action is
//! the infimum of the paper's action over all kept edges, and each component's potential is
//! centred to mean zero. States outside a non-trivial SCC are not identifiable and get no value.
//! With a ridge `λ > 0` the problem is strictly convex everywhere: every kept state gets a finite
//! MAP value, all edges are used, and no centring is applied.
//!
//! ```
//! use detbal::{backend::cpu::CpuBackend, graph::GraphBuilder, fit::{fit, FitSettings}};
//! let mut b = GraphBuilder::default();
//! let (hi, lo) = (b.intern("hi"), b.intern("lo"));
//! b.add(hi, lo, 30, 0).unwrap(); // T(hi→lo) = 30/40
//! b.add(hi, hi, 10, 1).unwrap();
//! b.add(lo, hi, 10, 2).unwrap(); // T(lo→hi) = 10/40
//! b.add(lo, lo, 30, 3).unwrap();
//! let g = b.finish();
//! let (v, _) = fit(&g, &FitSettings::default(), &CpuBackend::new("doc")).unwrap();
//! let dv = v.value[0].unwrap() - v.value[1].unwrap();
//! assert!((dv - 3f64.ln()).abs() < 1e-9); // V(hi) − V(lo) = log T(hi→lo)/T(lo→hi)
//! ```

mod peel;
pub mod posterior;
mod reference;
pub mod reversible;
pub mod ridge;
mod start;

pub use crate::backend::{newton, problem};

use crate::backend::Backend;
use crate::backend::renumber::Renumbered;
use crate::error::{Error, Result};
use crate::graph::{Components, TransitionGraph, strongly_connected_components};
use newton::NewtonOptions;
use problem::{ActionProblem, softplus_neg};

/// The fit converges when its last Newton step moves no potential by more than this: the
/// error bound on `V` (see [`FitReport::potential_error`]).
pub const POTENTIAL_TOL: f64 = 1e-9;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Estimator {
    LeastAction,
    Counts,
    ReversibleMle,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Exposure {
    /// `N0(f) = N(f)` (the reference's "low_reject").
    Observed,
    /// `N0(f) = attempts / states` (the reference's "high_reject").
    Uniform,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FitSettings {
    pub estimator: Estimator,
    pub exposure: Exposure,
    /// Agent attempts, for uniform exposure.
    pub attempts: Option<u64>,
    /// States with `N0 ≤ threshold` are dropped (least-action weighting only).
    pub threshold: f64,
    /// Ridge `λ`: the precision of a Gaussian prior `N(0, 1/λ)` on every `V` (ignored when
    /// `l2_auto`).
    pub l2: f64,
    /// Choose `λ` from the data (see [`ridge`]).
    pub l2_auto: bool,
    /// When rounding stops the Newton iteration before its step reaches [`POTENTIAL_TOL`], the
    /// fit still counts as converged if the gradient's infinity norm is below `grad_tol` times
    /// the largest total weight incident to one state (so the tolerance does not depend on the
    /// log's size).
    pub grad_tol: f64,
    /// Most Newton steps.
    pub max_iterations: usize,
    /// The fit converges when its last Newton step moves no potential by more than this
    /// ([`POTENTIAL_TOL`]; `--l2 auto`'s trial fits ask less, [`ridge::CV_POTENTIAL_TOL`]).
    #[serde(skip)]
    pub potential_tol: f64,
    /// Retrace the reference code's optimiser (see `reference`) instead of converging.
    pub paper: bool,
}

/// The paper's least action without a ridge: the building block the library's callers name.
/// The command line's default is another (`settings::DEFAULT_ESTIMATOR`, chosen by measurement).
impl Default for FitSettings {
    fn default() -> Self {
        FitSettings {
            estimator: Estimator::LeastAction,
            exposure: Exposure::Observed,
            attempts: None,
            threshold: 1.0,
            l2: 0.0,
            l2_auto: false,
            grad_tol: 1e-8,
            max_iterations: 20_000,
            potential_tol: POTENTIAL_TOL,
            paper: false,
        }
    }
}

/// Why a state has no potential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Identifiability {
    Identifiable,
    /// Dropped by the exposure threshold.
    BelowThreshold,
    /// Not on any cycle of kept edges (its own strongly connected component).
    NotOnCycle,
    /// A ridge fit's value set more by the prior than by the data: posterior variance above
    /// half the prior's (see [`posterior`]).
    PriorDominated,
}

impl Identifiability {
    pub fn as_str(self) -> &'static str {
        match self {
            Identifiability::Identifiable => "identifiable",
            Identifiability::BelowThreshold => "below-threshold",
            Identifiability::NotOnCycle => "not-on-cycle",
            Identifiability::PriorDominated => "prior-dominated",
        }
    }
}

/// The fitted potential, one entry per state of the graph.
#[derive(Debug, Clone)]
pub struct Potential {
    /// `βV`, centred per component; `None` when not identifiable.
    pub value: Vec<Option<f64>>,
    pub status: Vec<Identifiability>,
    /// Strongly connected component of each state in the fitted graph (the gauge group).
    pub component: Vec<u32>,
    /// Posterior standard deviation of each value of a ridge fit (see [`posterior`]); `None`
    /// without a ridge or before [`attach_posterior`].
    pub posterior_sd: Vec<Option<f64>>,
}

impl Potential {
    /// States with a value (prior-dominated ones included).
    pub fn identifiable(&self) -> usize {
        self.value.iter().filter(|v| v.is_some()).count()
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FitReport {
    pub estimator: Estimator,
    /// The ridge `λ` the fit used (chosen from the data under `--l2 auto`).
    pub l2: f64,
    /// How `λ` was chosen, under `--l2 auto`.
    pub l2_choice: Option<ridge::L2Choice>,
    /// States with a value set mostly by the prior (filled by [`attach_posterior`]).
    pub prior_dominated_states: usize,
    /// How the posterior standard deviations were computed (a ridge fit's, by
    /// [`attach_posterior`]).
    pub posterior: Option<posterior::PosteriorReport>,
    pub converged: bool,
    pub status: String,
    /// Newton steps (`--paper`: the reference's L-BFGS-B iterations).
    pub iterations: usize,
    /// Evaluations of value, gradient and Hessian weights: one pass over the edges each (a cold
    /// start's least-squares right-hand side counted as one, see `start`).
    pub evaluations: usize,
    /// Hessian–vector products (conjugate-gradient iterations): one pass over the edges each,
    /// the cold start's Laplacian products included (`--paper`: 0).
    pub hessian_products: usize,
    /// Passes over the fitted edges: `evaluations + hessian_products`.
    pub passes: usize,
    /// Bound on the error of every reported potential, to second order: the largest change the
    /// last Newton step solved made to a potential centred per component (the distance of the
    /// point it started from to the optimum; the step was then taken, so the error left is
    /// smaller still). `None` under `--paper`, which stops where the reference stops.
    pub potential_error: Option<f64>,
    /// The last Newton decrement `∇ᵀH⁻¹∇` (the squared error in the Hessian's norm, to second
    /// order); `None` under `--paper`.
    pub newton_decrement: Option<f64>,
    /// The estimator's objective at the optimum: the paper's action per kept state (`S/M`) for
    /// the action estimators, the negative log-likelihood per transition for `reversible-mle`.
    pub action: f64,
    /// Gradient infinity norm of the minimised action (for `reversible-mle`, of the equivalent
    /// `counts` action).
    pub grad_norm: f64,
    /// What `grad_norm` is compared with: `grad_tol` times the largest total weight incident to
    /// one state (`--paper`: the reference's fixed 1e-5).
    pub grad_tolerance: f64,
    pub identifiable_states: usize,
    /// Components with a fitted potential (each has its own additive constant).
    pub components: usize,
    /// States kept by the threshold (`M`).
    pub kept_states: usize,
    /// Edges in the fitted problem.
    pub fitted_edges: usize,
    pub seconds: f64,
}

/// Fits the potential of `graph` from the least-squares start of its reciprocal pairs (see
/// `start`).
pub fn fit(
    graph: &TransitionGraph,
    settings: &FitSettings,
    backend: &dyn Backend,
) -> Result<(Potential, FitReport)> {
    fit_from(graph, settings, backend, None)
}

/// Fits the potential of `graph`, starting the solver from `start` (a warm start: one value per
/// state of `graph`, `None` read as 0; e.g. the potential of a fit to similar counts, such as a
/// bootstrap resample's original). Without a start, or with one of `None` only, the solver
/// starts from the least-squares potential of the reciprocal pairs (see `start`). The optimum
/// does not depend on the start, only the work to reach it; `--paper` ignores it (the reference
/// starts from its own point).
pub fn fit_from(
    graph: &TransitionGraph,
    settings: &FitSettings,
    backend: &dyn Backend,
    start: Option<&[Option<f64>]>,
) -> Result<(Potential, FitReport)> {
    let clock = std::time::Instant::now();
    let start: Option<Vec<f64>> = match start {
        Some(v) if v.len() != graph.n_states() => {
            return Err(Error::settings(format!(
                "a warm start has {} values for {} states",
                v.len(),
                graph.n_states()
            )));
        }
        Some(v) if v.iter().any(Option::is_some) => {
            Some(v.iter().map(|x| x.unwrap_or(0.0)).collect())
        }
        _ => None,
    };
    let start = start.as_deref();
    let choice = (settings.l2_auto && !settings.paper)
        .then(|| ridge::choose(graph, settings, backend))
        .transpose()?;
    let settings = &match &choice {
        Some(choice) => settings.with_l2(choice.l2),
        None => settings.clone(),
    };
    let (potential, mut report) = match settings.estimator {
        Estimator::ReversibleMle => reversible::fit(graph, settings, backend, start)?,
        Estimator::LeastAction | Estimator::Counts => fit_action(graph, settings, backend, start)?,
    };
    report.l2_choice = choice;
    report.seconds = clock.elapsed().as_secs_f64();
    Ok((potential, report))
}

impl FitSettings {
    /// These settings with the ridge fixed at `l2`.
    pub fn with_l2(&self, l2: f64) -> FitSettings {
        FitSettings {
            l2,
            l2_auto: false,
            ..self.clone()
        }
    }
}

/// Adds the posterior standard deviations of a ridge fit to `potential` and marks the states
/// whose value the prior sets (see [`posterior`]); nothing without a ridge. `settings` are the
/// fit's, `report` its report (which carries the `λ` used).
pub fn attach_posterior(
    graph: &TransitionGraph,
    settings: &FitSettings,
    potential: &mut Potential,
    report: &mut FitReport,
) -> Result<()> {
    let l2 = report.l2;
    if l2 <= 0.0 || settings.paper {
        return Ok(());
    }
    // With a ridge the fit's edges are all those with a weight: no components are needed (on a
    // 1e7-row log 0.9 s passed here before the posterior, most of it `select_edges`' components).
    let (weights, _) = estimator_weights(graph, &settings.with_l2(l2))?;
    // The fitted variable, numbered compactly over the states with a value. Arcs into states
    // without one (reversible-mle: never left) are left out, which widens their neighbours'
    // posterior a little.
    let n = graph.n_states();
    let mut local = vec![u32::MAX; n];
    let mut x = Vec::new();
    for f in 0..n {
        if let Some(v) = potential.value[f] {
            local[f] = x.len() as u32;
            x.push(match settings.estimator {
                Estimator::ReversibleMle => v + (graph.out_count[f] as f64).ln(),
                Estimator::LeastAction | Estimator::Counts => v,
            });
        }
    }
    let fitted = (0..graph.n_edges()).filter_map(|e| {
        let (s, d) = (local[graph.src[e] as usize], local[graph.dst[e] as usize]);
        (s != u32::MAX && d != u32::MAX).then_some((s, d, weights[e]?))
    });
    let (sd, posterior) = posterior::Curvature::new(fitted, &x, l2).posterior_sd();
    report.posterior = Some(posterior);
    let mut prior_dominated = 0;
    for f in (0..n).filter(|&f| local[f] != u32::MAX) {
        let sd = sd[local[f] as usize];
        potential.posterior_sd[f] = Some(sd);
        if sd * sd > 0.5 / l2 && potential.status[f] == Identifiability::Identifiable {
            potential.status[f] = Identifiability::PriorDominated;
            prior_dominated += 1;
        }
    }
    report.prior_dominated_states = prior_dominated;
    Ok(())
}

/// Edge weights of the estimator (`None` for edges touching a dropped state) and the states
/// kept.
fn estimator_weights(
    graph: &TransitionGraph,
    settings: &FitSettings,
) -> Result<(Vec<Option<f64>>, Vec<bool>)> {
    Ok(match settings.estimator {
        // The reversible chain uses every transition, as counts, except those into a state
        // never left: its `u = V + log c` is −∞ (`c = 0`), so such an arc's term vanishes at the
        // optimum and says nothing about its source (without a ridge it is outside every cycle).
        Estimator::ReversibleMle => (
            (0..graph.n_edges())
                .map(|e| {
                    let left = graph.out_count[graph.dst[e] as usize] > 0;
                    left.then_some(graph.count[e] as f64)
                })
                .collect(),
            vec![true; graph.n_states()],
        ),
        Estimator::LeastAction | Estimator::Counts => action_weights(graph, settings)?,
    })
}

/// Edge weights of the action estimators; `None` for edges touching a dropped state.
fn action_weights(
    graph: &TransitionGraph,
    settings: &FitSettings,
) -> Result<(Vec<Option<f64>>, Vec<bool>)> {
    let n = graph.n_states();
    let in_graph: Vec<bool> = (0..n)
        .map(|f| graph.out_ptr[f] < graph.out_ptr[f + 1] || graph.in_ptr[f] < graph.in_ptr[f + 1])
        .collect();
    let (exposure, threshold): (Box<dyn Fn(usize) -> f64>, f64) =
        match (settings.estimator, settings.exposure) {
            (Estimator::Counts, _) => (Box::new(|_| 1.0), f64::NEG_INFINITY),
            (_, Exposure::Observed) => {
                (Box::new(|f| graph.out_count[f] as f64), settings.threshold)
            }
            (_, Exposure::Uniform) => {
                let attempts = settings.attempts.ok_or_else(|| {
                    Error::settings("uniform exposure needs the number of agent attempts")
                        .hint("pass --attempts N")
                })?;
                let states = in_graph.iter().filter(|&&x| x).count().max(1);
                let n0 = attempts as f64 / states as f64;
                (Box::new(move |_| n0), settings.threshold.min(0.0))
            }
        };
    let kept: Vec<bool> = (0..n)
        .map(|f| in_graph[f] && exposure(f) > threshold)
        .collect();
    let weights = (0..graph.n_edges())
        .map(|e| {
            let (s, d) = (graph.src[e] as usize, graph.dst[e] as usize);
            (kept[s] && kept[d]).then(|| match settings.estimator {
                Estimator::Counts => graph.count[e] as f64,
                _ => (graph.count[e] as f64 / exposure(s)).min(1.0),
            })
        })
        .collect();
    Ok((weights, kept))
}

/// The edges an estimator fits and their weights.
struct Selection {
    /// Graph edges in the fit.
    edges: Vec<usize>,
    /// Weight per graph edge; `None` for edges of dropped states.
    weights: Vec<Option<f64>>,
    /// States kept by the threshold.
    kept: Vec<bool>,
    /// Strongly connected components of the weighted edges.
    sccs: Components,
}

fn select_edges(graph: &TransitionGraph, settings: &FitSettings) -> Result<Selection> {
    let (weights, kept) = estimator_weights(graph, settings)?;
    let sccs = strongly_connected_components(graph, |e| weights[e].is_some());
    let ridge = settings.l2 > 0.0;
    // Without a ridge only edges inside non-trivial components enter the fit.
    let edges = (0..graph.n_edges())
        .filter(|&e| {
            weights[e].is_some()
                && (ridge || sccs.id[graph.src[e] as usize] == sccs.id[graph.dst[e] as usize])
        })
        .collect();
    Ok(Selection {
        edges,
        weights,
        kept,
        sccs,
    })
}

/// The action the fit minimises (before dangling trees are eliminated), numbered like the graph:
/// what `--verify` runs the kernels on.
pub fn action_problem(graph: &TransitionGraph, settings: &FitSettings) -> Result<ActionProblem> {
    let Selection { edges, weights, .. } = select_edges(graph, settings)?;
    let problem = ActionProblem::new(
        graph.n_states(),
        edges.iter().map(|&e| graph.src[e]).collect(),
        edges.iter().map(|&e| graph.dst[e]).collect(),
        edges
            .iter()
            .map(|&e| weights[e].expect("fitted edges have weights"))
            .collect(),
        settings.l2,
    )?;
    Ok(match reversible::prior_mean(graph, &edges, settings) {
        Some(mean) => problem.with_prior_mean(mean),
        None => problem,
    })
}

fn fit_action(
    graph: &TransitionGraph,
    settings: &FitSettings,
    backend: &dyn Backend,
    start: Option<&[f64]>,
) -> Result<(Potential, FitReport)> {
    let n = graph.n_states();
    let Selection {
        edges,
        weights,
        kept,
        sccs,
    } = select_edges(graph, settings)?;
    let ridge = settings.l2 > 0.0;
    let status: Vec<Identifiability> = (0..n)
        .map(|f| {
            if !kept[f] {
                Identifiability::BelowThreshold
            } else if ridge || sccs.size[sccs.id[f] as usize] > 1 {
                Identifiability::Identifiable
            } else {
                Identifiability::NotOnCycle
            }
        })
        .collect();
    let kept_states = kept.iter().filter(|&&k| k).count();
    if settings.paper {
        return Ok(reference_fit(
            graph,
            &weights,
            status,
            sccs,
            kept_states,
            settings,
        ));
    }
    let Solution {
        outcome,
        grad_tolerance,
        action,
    } = minimize_over(
        graph,
        &edges,
        &|e| weights[e].expect("used edges are kept"),
        None,
        settings,
        backend,
        start,
    )?;
    let mut value: Vec<Option<f64>> = (0..n)
        .map(|f| (status[f] == Identifiability::Identifiable).then_some(outcome.x[f]))
        .collect();
    if !ridge {
        center_per_component(&mut value, &sccs);
    }
    let potential = Potential {
        posterior_sd: vec![None; n],
        value,
        status,
        component: sccs.id.clone(),
    };
    let report = FitReport {
        // Inter-component terms vanish in the limit: this is the infimum of the paper's action.
        action: action / kept_states.max(1) as f64,
        grad_tolerance,
        identifiable_states: potential.identifiable(),
        components: if ridge { 1 } else { sccs.nontrivial() },
        kept_states,
        fitted_edges: edges.len(),
        ..FitReport::of(settings, &outcome)
    };
    Ok((potential, report))
}

impl FitReport {
    /// The solver's part of the report; the action, the tolerance and the counts of states and
    /// edges are the caller's to fill in.
    fn of(settings: &FitSettings, outcome: &newton::NewtonOutcome) -> FitReport {
        FitReport {
            estimator: settings.estimator,
            l2: settings.l2,
            l2_choice: None,
            prior_dominated_states: 0,
            posterior: None,
            converged: outcome.converged,
            status: outcome.status.clone(),
            iterations: outcome.iterations,
            evaluations: outcome.evaluations,
            hessian_products: outcome.hessian_products,
            passes: outcome.passes(),
            potential_error: Some(outcome.step_norm),
            newton_decrement: Some(outcome.decrement),
            action: f64::NAN,
            grad_norm: outcome.grad_norm,
            grad_tolerance: f64::NAN,
            identifiable_states: 0,
            components: 0,
            kept_states: 0,
            fitted_edges: 0,
            seconds: 0.0,
        }
    }
}

/// The optimum of the action over some edges of the graph.
struct Solution {
    /// Solver outcome; `x` covers every state, eliminated ones included.
    outcome: newton::NewtonOutcome,
    /// The absolute gradient tolerance used.
    grad_tolerance: f64,
    /// `S` at the optimum over all the given edges.
    action: f64,
}

/// Minimises the action over the graph's `edges` with `weight(e)` and the settings' ridge
/// (centred at `prior_mean`, per graph state, when given; else at 0), from `start` (per graph
/// state; `None`: the least-squares start, [`start`]). Without a ridge, dangling trees are
/// eliminated exactly first (see [`peel`]).
fn minimize_over(
    graph: &TransitionGraph,
    edges: &[usize],
    weight: &dyn Fn(usize) -> f64,
    prior_mean: Option<&[f64]>,
    settings: &FitSettings,
    backend: &dyn Backend,
    start: Option<&[f64]>,
) -> Result<Solution> {
    let n = graph.n_states();
    // The edges' arrays, the peeling's core and the compact numbering are dropped before the
    // solve: on the 1e8-row log's ridge fit they were some 50 MiB beside it.
    let (problem, global, eliminated, scale) = {
        let src: Vec<u32> = edges.iter().map(|&e| graph.src[e]).collect();
        let dst: Vec<u32> = edges.iter().map(|&e| graph.dst[e]).collect();
        let w: Vec<f64> = edges.iter().map(|&e| weight(e)).collect();
        let (core, eliminated) = if settings.l2 > 0.0 {
            ((0..edges.len()).collect(), Vec::new())
        } else {
            peel::peel_leaves(n, &src, &dst, &w)
        };
        // The optimiser sees only the states of the remaining edges, numbered compactly.
        let mut local = vec![u32::MAX; n];
        let mut global: Vec<u32> = Vec::new();
        for &i in &core {
            for f in [src[i], dst[i]] {
                if local[f as usize] == u32::MAX {
                    local[f as usize] = global.len() as u32;
                    global.push(f);
                }
            }
        }
        let problem = ActionProblem::new(
            global.len(),
            core.iter().map(|&i| local[src[i] as usize]).collect(),
            core.iter().map(|&i| local[dst[i] as usize]).collect(),
            core.iter().map(|&i| w[i]).collect(),
            settings.l2,
        )?;
        let problem = match prior_mean {
            Some(m) if settings.l2 > 0.0 => {
                problem.with_prior_mean(global.iter().map(|&f| m[f as usize]).collect())
            }
            _ => problem,
        };
        // Breadth first for every backend (see `renumber`); the first numbering's problem goes
        // at the end of this block, before the solver's working set is built beside it.
        let Renumbered {
            problem,
            old_of_new,
        } = Renumbered::new(&problem)?;
        let global: Vec<u32> = old_of_new.iter().map(|&i| global[i as usize]).collect();
        let mut incident = vec![settings.l2; n];
        for i in 0..edges.len() {
            incident[src[i] as usize] += w[i];
            incident[dst[i] as usize] += w[i];
        }
        let scale = incident.into_iter().fold(f64::MIN_POSITIVE, f64::max);
        (problem, global, eliminated, scale)
    };
    // The action is at most of the order of its total weight: below 1e-12 of that, a decrease
    // is rounding.
    let total_weight: f64 = problem.weight.iter().sum();
    let opts = NewtonOptions {
        grad_tol: settings.grad_tol * scale,
        max_iterations: settings.max_iterations,
        step_tol: settings.potential_tol,
        quadratic: 1e-12 * total_weight.max(1.0),
        ..Default::default()
    };
    let (v0, start_passes) = match start {
        Some(start) => (global.iter().map(|&f| start[f as usize]).collect(), 0),
        None => start::least_squares(&problem)?,
    };
    let mut outcome = backend.minimize_action(&problem, &v0, &opts)?;
    // The start's passes are counted as an evaluation (its right-hand side) and products.
    if start_passes > 0 {
        outcome.evaluations += 1;
        outcome.hessian_products += start_passes - 1;
    }
    // A state outside the fitted edges sits at the prior's centre.
    let mut x = match prior_mean {
        Some(m) if settings.l2 > 0.0 => m.to_vec(),
        _ => vec![0.0; n],
    };
    for (&f, &v) in global.iter().zip(&outcome.x) {
        x[f as usize] = v;
    }
    for step in eliminated.iter().rev() {
        x[step.leaf as usize] = x[step.parent as usize] + step.difference;
    }
    outcome.x = x;
    let x = &outcome.x;
    let action = (edges.iter())
        .map(|&e| weight(e) * softplus_neg(x[graph.src[e] as usize] - x[graph.dst[e] as usize]))
        .sum();
    Ok(Solution {
        outcome,
        grad_tolerance: opts.grad_tol,
        action,
    })
}

/// `--paper`: the reference's fit over every kept edge, stopped where its optimiser stops.
fn reference_fit(
    graph: &TransitionGraph,
    weights: &[Option<f64>],
    status: Vec<Identifiability>,
    sccs: Components,
    kept_states: usize,
    settings: &FitSettings,
) -> (Potential, FitReport) {
    let edges: Vec<usize> = (0..graph.n_edges())
        .filter(|&e| weights[e].is_some())
        .collect();
    let fitted = reference::fit(graph, &edges, weights, kept_states);
    let value = (0..graph.n_states())
        .map(|f| {
            if status[f] == Identifiability::Identifiable {
                fitted.value[f]
            } else {
                None
            }
        })
        .collect();
    let potential = Potential {
        posterior_sd: vec![None; graph.n_states()],
        value,
        status,
        component: sccs.id,
    };
    let report = FitReport {
        estimator: settings.estimator,
        l2: 0.0,
        l2_choice: None,
        prior_dominated_states: 0,
        posterior: None,
        converged: fitted.converged,
        status: "stopped by the reference's L-BFGS-B criteria (--paper)".into(),
        iterations: fitted.iterations,
        evaluations: fitted.evaluations,
        hessian_products: 0,
        passes: fitted.evaluations,
        potential_error: None,
        newton_decrement: None,
        action: fitted.action,
        grad_norm: fitted.grad_norm,
        grad_tolerance: reference::PGTOL,
        identifiable_states: potential.identifiable(),
        components: sccs.size.iter().filter(|&&s| s > 1).count(),
        kept_states,
        fitted_edges: edges.len(),
        seconds: 0.0,
    };
    (potential, report)
}

/// Shifts each component's values to mean zero.
pub(crate) fn center_per_component(value: &mut [Option<f64>], components: &Components) {
    let mut sum = vec![0.0; components.count()];
    let mut members = vec![0usize; components.count()];
    for (f, v) in value.iter().enumerate() {
        if let Some(v) = v {
            sum[components.id[f] as usize] += v;
            members[components.id[f] as usize] += 1;
        }
    }
    for (f, v) in value.iter_mut().enumerate() {
        if let Some(v) = v {
            let c = components.id[f] as usize;
            *v -= sum[c] / members[c] as f64;
        }
    }
}
