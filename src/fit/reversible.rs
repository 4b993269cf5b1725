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
//! With a ridge `λ` the prior is on `V`: `V_f ~ N(0, 1/λ)`, i.e. `u_f ~ N(log c_f, 1/λ)` in the
//! fitted variable (the ridge centred at `log c`, [`prior_mean`]); every state ever left gets a
//! value and no centring is applied. (Until 2026-12-06 the prior was `u_f ~ N(0, 1/λ)`, centred
//! on the potential `−log c` of the visits alone: worse on every measure of the recovery suite,
//! BENCHMARKS.md "Recovery".)

use super::problem::sigmoid_neg;
use super::{
    Estimator, FitReport, FitSettings, Identifiability, Potential, Selection, Solution,
    center_per_component, minimize_over, select_edges,
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
    let row_sum = row_sums(graph, &edges, settings);
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
    let prior_mean = prior_mean(graph, &edges, settings);
    let Solution {
        outcome,
        grad_tolerance,
        ..
    } = minimize_over(
        graph,
        &edges,
        &|e| graph.count[e] as f64,
        prior_mean.as_deref(),
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
        action: mean_nll(graph, &edges, u, &row_sum, &identifiable, ridge),
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

/// The ridge's centre in `u` for the prior `V ~ N(0, 1/λ)`: `log c_f` per state (0 for a state
/// never left, whose `V` is not reported); `None` without a ridge or for another estimator.
pub(super) fn prior_mean(
    graph: &TransitionGraph,
    edges: &[usize],
    settings: &FitSettings,
) -> Option<Vec<f64>> {
    let ridge = settings.l2 > 0.0 && settings.estimator == Estimator::ReversibleMle;
    ridge.then(|| {
        (row_sums(graph, edges, settings).into_iter())
            .map(|c| if c > 0.0 { c.ln() } else { 0.0 })
            .collect()
    })
}

/// Each state's row sum `c_i`: without a ridge over the selected edges, self-transitions
/// included; with one over every transition leaving it.
fn row_sums(graph: &TransitionGraph, edges: &[usize], settings: &FitSettings) -> Vec<f64> {
    // With a ridge every transition leaving the state, arcs into states never left included.
    if settings.l2 > 0.0 {
        return graph.out_count.iter().map(|&c| c as f64).collect();
    }
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
    ridge: bool,
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
    // With a ridge `c_f` also counts the arcs into states never left, which are not fitted
    // (`u = −∞` there): their fitted probability is exactly `n/c_f`.
    if ridge {
        for e in 0..graph.n_edges() {
            let (f, g) = (graph.src[e] as usize, graph.dst[e] as usize);
            if identifiable[f] && graph.out_count[g] == 0 {
                let n = graph.count[e] as f64;
                nll -= n * (n / row_sum[f]).ln();
            }
        }
    }
    nll / counted.max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::CpuBackend;
    use crate::graph::GraphBuilder;

    /// With a ridge the reported action is the negative log-likelihood per transition of the
    /// fitted kernel over every transition of the valued states, the arc into a state never left
    /// (`T̂ = n/c`) and the self-transitions included.
    #[test]
    fn the_ridge_fit_reports_the_whole_likelihood() {
        let mut b = GraphBuilder::default();
        let (a, bb, c) = (b.intern("a"), b.intern("b"), b.intern("c"));
        for (row, (f, g, n)) in [(a, bb, 5), (bb, a, 3), (a, a, 2), (bb, c, 1), (bb, bb, 4)]
            .into_iter()
            .enumerate()
        {
            b.add(f, g, n, row as u64).unwrap();
        }
        let graph = b.finish();
        let settings = FitSettings {
            estimator: Estimator::ReversibleMle,
            l2: 1.0,
            ..FitSettings::default()
        };
        let (v, report) = fit(&graph, &settings, &CpuBackend::new("test"), None).unwrap();
        assert!(v.value[c as usize].is_none(), "c is never left");
        let u = |f: u32| v.value[f as usize].unwrap() + (graph.out_count[f as usize] as f64).ln();
        let sigma = |x: f64| 1.0 / (1.0 + (-x).exp());
        // Row a: 7 transitions; row b: 8.
        let nll = -(5.0 * (8.0 * sigma(u(a) - u(bb)) / 7.0).ln()
            + 2.0 * (2.0f64 / 7.0).ln()
            + 3.0 * (8.0 * sigma(u(bb) - u(a)) / 8.0).ln()
            + 4.0 * (4.0f64 / 8.0).ln()
            + 1.0 * (1.0f64 / 8.0).ln());
        assert!(
            (report.action - nll / 15.0).abs() < 1e-12,
            "{} vs {}",
            report.action,
            nll / 15.0
        );
    }
}
