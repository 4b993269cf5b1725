//! The maximum-likelihood reversible Markov chain (docs/METHOD.md §2.4): `V = −log π`.
//!
//! Under detailed balance the kernel is reversible, `π_f T(f→g) = π_g T(g→f)`, and its
//! likelihood — every transition, self-transitions included — is maximised where (Bowman et al.
//! 2009; deeptime's fixed point) `c_i = c_ii + Σ_{j≠i} C_ij q_i / (q_i + q_j)`, with
//! `C_ij = c_ij + c_ji`, row sums `c_i` and `q_i = c_i / π_i`. Writing `q_i = e^(u_i)`, the
//! condition reads `Σ_{j≠i} C_ij σ(u_i − u_j) = Σ_{j≠i} c_ij`: the stationarity condition of
//! the plain Bradley–Terry likelihood `Σ c_ij log σ(u_i − u_j)`, i.e. the `counts` action.
//! So the reversible MLE is that convex fit, run by the same backend kernels and optimiser, then
//!
//! ```text
//! V_i = −log π_i = u_i − log c_i + const,    T̂(i→j) = C_ij σ(u_i − u_j) / c_i,   T̂(i→i) = c_ii / c_i
//! ```
//!
//! instead of the slowly converging fixed-point iteration. Each strongly connected component is
//! an independent chain: `V` is centred per component, and states outside a non-trivial
//! component are not identifiable.
//!
//! With a ridge `λ` the prior is on `u`: `u_f ~ N(0, 1/λ)`, i.e. `V_f ~ N(−log c_f, 1/λ)`, centred
//! on the potential the visits alone suggest; every state ever left gets a value and no centring
//! is applied.

use super::problem::sigmoid_neg;
use super::{
    FitReport, FitSettings, Identifiability, Potential, Selection, Solution, center_per_component,
    minimize_over, select_edges,
};
use crate::backend::Backend;
use crate::error::Result;
use crate::graph::{NO_EDGE, TransitionGraph};

/// The fit from `start` (a potential per state: the solver starts from `u = V + log c`).
pub(super) fn fit(
    graph: &TransitionGraph,
    settings: &FitSettings,
    backend: &dyn Backend,
    start: Option<&[f64]>,
) -> Result<(Potential, FitReport)> {
    let n = graph.n_states();
    let Selection { edges, sccs, .. } = select_edges(graph, settings)?;
    let row_sum = row_sums(graph, &edges);
    let u0: Option<Vec<f64>> = start.map(|start| {
        (0..n)
            .map(|f| {
                if start[f] != 0.0 && row_sum[f] > 0.0 {
                    start[f] + row_sum[f].ln()
                } else {
                    0.0
                }
            })
            .collect()
    });
    let Solution {
        outcome,
        grad_tolerance,
        ..
    } = minimize_over(
        graph,
        &edges,
        &|e| graph.count[e] as f64,
        settings,
        backend,
        u0.as_deref(),
    )?;
    let u = &outcome.x;

    // With a ridge every state ever left has a finite MAP `u`; without, only those on cycles.
    let ridge = settings.l2 > 0.0;
    let identifiable: Vec<bool> = (0..n)
        .map(|f| row_sum[f] > 0.0 && (ridge || sccs.size[sccs.id[f] as usize] > 1))
        .collect();
    let mut value: Vec<Option<f64>> = (0..n)
        .map(|f| identifiable[f].then(|| u[f] - row_sum[f].ln()))
        .collect();
    if !ridge {
        center_per_component(&mut value, &sccs);
    }

    let status = identifiable
        .iter()
        .map(|&ok| {
            if ok {
                Identifiability::Identifiable
            } else {
                Identifiability::NotOnCycle
            }
        })
        .collect();
    let potential = Potential {
        posterior_sd: vec![None; n],
        value,
        status,
        component: sccs.id.clone(),
    };
    let report = FitReport {
        action: mean_nll(graph, &edges, u, &row_sum, &identifiable),
        grad_tolerance,
        identifiable_states: potential.identifiable(),
        components: if ridge { 1 } else { sccs.nontrivial() },
        kept_states: n,
        fitted_edges: edges.len(),
        seconds: 0.0,
        ..FitReport::of(settings, &outcome)
    };
    Ok((potential, report))
}

/// Each state's row sum `c_i` over the selected edges, self-transitions included.
fn row_sums(graph: &TransitionGraph, edges: &[usize]) -> Vec<f64> {
    let mut row_sum: Vec<f64> = graph.self_count.iter().map(|&c| c as f64).collect();
    for &e in edges {
        row_sum[graph.src[e] as usize] += graph.count[e] as f64;
    }
    row_sum
}

/// The negative log-likelihood of the fitted reversible kernel per transition of the
/// identifiable states' rows (the report's `action`).
fn mean_nll(
    graph: &TransitionGraph,
    edges: &[usize],
    u: &[f64],
    row_sum: &[f64],
    identifiable: &[bool],
) -> f64 {
    let mut nll = 0.0;
    let mut counted = 0.0;
    for f in (0..graph.n_states()).filter(|&f| identifiable[f]) {
        let c_ff = graph.self_count[f] as f64;
        if c_ff > 0.0 {
            nll -= c_ff * (c_ff / row_sum[f]).ln();
        }
        counted += row_sum[f];
    }
    for &e in edges {
        let (f, g) = (graph.src[e] as usize, graph.dst[e] as usize);
        let back = match graph.reverse[e] {
            NO_EDGE => 0.0,
            r => graph.count[r as usize] as f64,
        };
        let p = (graph.count[e] as f64 + back) * sigmoid_neg(u[g] - u[f]) / row_sum[f];
        nll -= graph.count[e] as f64 * p.ln();
    }
    nll / counted.max(1.0)
}
