//! The maximum-likelihood reversible Markov chain (METHOD.md §6): `V = −log π`.
//!
//! Under detailed balance the kernel is reversible, `π_f T(f→g) = π_g T(g→f)`, and the
//! likelihood of all transitions — self-transitions included — is maximised by the fixed point
//! (Bowman et al. 2009; Trendelkamp-Schroer et al. 2015, as in deeptime)
//!
//! ```text
//! π_i ← c_ii / q_i + Σ_{j ≠ i} (c_ij + c_ji) / (q_i + q_j),   q_i = c_i / π_i,   then normalise
//! ```
//!
//! where `c_i` is the row sum of counts within the state's strongly connected component. Each
//! component is an independent chain with its own normalisation, so `V` is centred per component
//! and states outside a non-trivial component are not identifiable.

use super::{FitReport, FitSettings, Identifiability, Potential, center_per_component};
use crate::error::{Error, Result};
use crate::graph::{TransitionGraph, strongly_connected_components};
use rayon::prelude::*;

/// Relative change of `π` under which the fixed point counts as converged.
const TOLERANCE: f64 = 1e-10;

pub(super) fn fit(
    graph: &TransitionGraph,
    settings: &FitSettings,
) -> Result<(Potential, FitReport)> {
    let n = graph.n_states();
    let sccs = strongly_connected_components(graph, |_| true);
    let inside = |e: usize| sccs.id[graph.src[e] as usize] == sccs.id[graph.dst[e] as usize];
    let identifiable: Vec<bool> = (0..n).map(|f| sccs.size[sccs.id[f] as usize] > 1).collect();

    // Symmetric adjacency with C_ij = c_ij + c_ji, and row sums c_i within the component.
    let mut row_sum: Vec<f64> = graph.self_count.iter().map(|&c| c as f64).collect();
    let mut degree = vec![0usize; n + 1];
    for e in (0..graph.n_edges()).filter(|&e| inside(e)) {
        row_sum[graph.src[e] as usize] += graph.count[e] as f64;
        degree[graph.src[e] as usize + 1] += 1;
        if graph.reverse[e] == crate::graph::NO_EDGE {
            degree[graph.dst[e] as usize + 1] += 1;
        }
    }
    for i in 0..n {
        degree[i + 1] += degree[i];
    }
    let ptr = degree;
    let mut fill = ptr.clone();
    let mut neighbour = vec![(0u32, 0.0f64); ptr[n]];
    for e in (0..graph.n_edges()).filter(|&e| inside(e)) {
        let (s, d) = (graph.src[e] as usize, graph.dst[e] as usize);
        let r = graph.reverse[e];
        let total = graph.count[e] as f64
            + if r == crate::graph::NO_EDGE {
                0.0
            } else {
                graph.count[r as usize] as f64
            };
        neighbour[fill[s]] = (d as u32, total);
        fill[s] += 1;
        if r == crate::graph::NO_EDGE {
            neighbour[fill[d]] = (s as u32, total);
            fill[d] += 1;
        }
    }

    let mut pi: Vec<f64> = (0..n)
        .map(|f| if identifiable[f] { 1.0 } else { 0.0 })
        .collect();
    normalise(&mut pi, &sccs.id, sccs.count());
    let mut next = vec![0.0; n];
    let mut q = vec![0.0; n];
    let (mut iterations, mut change) = (0, f64::INFINITY);
    while change > TOLERANCE && iterations < settings.max_iterations {
        q.par_iter_mut()
            .enumerate()
            .for_each(|(i, q)| *q = if pi[i] > 0.0 { row_sum[i] / pi[i] } else { 0.0 });
        next.par_iter_mut().enumerate().for_each(|(i, out)| {
            *out = if identifiable[i] {
                let own = graph.self_count[i] as f64 / q[i];
                neighbour[ptr[i]..ptr[i + 1]]
                    .iter()
                    .map(|&(j, c)| c / (q[i] + q[j as usize]))
                    .sum::<f64>()
                    + own
            } else {
                0.0
            };
        });
        normalise(&mut next, &sccs.id, sccs.count());
        change = (0..n)
            .into_par_iter()
            .filter(|&i| pi[i] > 0.0)
            .map(|i| (next[i] / pi[i] - 1.0).abs())
            .reduce(|| 0.0, f64::max);
        std::mem::swap(&mut pi, &mut next);
        iterations += 1;
    }
    if pi.iter().any(|p| !p.is_finite()) {
        return Err(Error::Numerical(
            "the reversible fixed point produced a non-finite π".into(),
        ));
    }

    // Negative log-likelihood per transition of the fitted reversible kernel.
    let q: Vec<f64> = (0..n)
        .map(|i| if pi[i] > 0.0 { row_sum[i] / pi[i] } else { 0.0 })
        .collect();
    let mut nll = 0.0;
    let mut counted = 0.0;
    for i in (0..n).filter(|&i| identifiable[i]) {
        let c_ii = graph.self_count[i] as f64;
        if c_ii > 0.0 {
            nll -= c_ii * (c_ii / row_sum[i]).ln();
        }
        counted += row_sum[i];
        for e in graph.out_ptr[i]..graph.out_ptr[i + 1] {
            if inside(e) {
                let j = graph.dst[e] as usize;
                let r = graph.reverse[e];
                let total = graph.count[e] as f64
                    + if r == crate::graph::NO_EDGE {
                        0.0
                    } else {
                        graph.count[r as usize] as f64
                    };
                let p_ij = total / (q[i] + q[j]) / pi[i];
                nll -= graph.count[e] as f64 * p_ij.ln();
            }
        }
    }

    let status: Vec<Identifiability> = identifiable
        .iter()
        .map(|&ok| {
            if ok {
                Identifiability::Identifiable
            } else {
                Identifiability::NotOnCycle
            }
        })
        .collect();
    let mut value: Vec<Option<f64>> = (0..n)
        .map(|f| identifiable[f].then(|| -pi[f].ln()))
        .collect();
    center_per_component(&mut value, &sccs);
    let potential = Potential {
        value,
        status,
        component: sccs.id.clone(),
    };
    let report = FitReport {
        estimator: settings.estimator,
        converged: change <= TOLERANCE,
        status: if change <= TOLERANCE {
            "relative change of π below tolerance".into()
        } else {
            format!("iteration limit ({}) reached", settings.max_iterations)
        },
        iterations,
        evaluations: iterations,
        action: nll / counted.max(1.0),
        grad_norm: change,
        identifiable_states: potential.identifiable(),
        components: sccs.nontrivial(),
        kept_states: n,
        fitted_edges: (0..graph.n_edges()).filter(|&e| inside(e)).count(),
        seconds: 0.0,
    };
    Ok((potential, report))
}

/// Scales `x` to sum to one within each component.
fn normalise(x: &mut [f64], component: &[u32], components: usize) {
    let mut total = vec![0.0; components];
    for (v, &c) in x.iter().zip(component) {
        total[c as usize] += v;
    }
    for (v, &c) in x.iter_mut().zip(component) {
        if total[c as usize] > 0.0 {
            *v /= total[c as usize];
        }
    }
}
