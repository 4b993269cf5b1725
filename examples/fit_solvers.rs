//! Fits the potential of a log with each solver and prints the work: passes over the edges
//! (evaluations + Hessian products), Newton steps, seconds, and the error bound.
//!
//! `cargo run --release --example fit_solvers -- LOG.parquet`
//! (`DETBAL_PRECONDITIONER=diagonal` for the diagonal preconditioner.)

use detbal::backend::cpu::CpuBackend;
use detbal::fit::{FitSettings, fit};
use detbal::io::{LoadOptions, load};

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: fit_solvers LOG.parquet");
    let log = load(&[path.into()], &LoadOptions::default()).expect("log loads");
    let graph = log.graph.canonical();
    let sccs = detbal::graph::strongly_connected_components(&graph, |_| true);
    println!(
        "{} states, {} edges, largest strongly connected component {}",
        graph.n_states(),
        graph.n_edges(),
        sccs.size.iter().max().unwrap_or(&0)
    );
    let (v, r) = fit(&graph, &FitSettings::default(), &CpuBackend::new("example")).unwrap();
    println!(
        "newton-cg: {} steps, {} evaluations + {} Hessian products = {} passes, {:.3} s, \
         action {:.12}, bound {:.2e}, {} ({} identifiable)",
        r.iterations,
        r.evaluations,
        r.hessian_products,
        r.passes,
        r.seconds,
        r.action,
        r.potential_error.unwrap_or(f64::NAN),
        r.status,
        v.identifiable()
    );
}
