//! Outputs of `detbal analyze`: `report.json`, the Parquet tables, the figures and `report.html`
//! ([`figures`], [`html`]) and the terminal summary.
//! The output directory is written as a whole (see [`atomic`]): a reader sees the previous
//! outputs or the new ones, never a mix or a half-written file.

pub(crate) mod atomic;
pub mod figures;
mod groups;
pub(crate) mod html;
mod json;
mod nulls;
mod summary;
mod tables;

pub use json::report_json;
pub(crate) use summary::thousands;
pub use summary::{p_text, summary};

use crate::analyze::Analysis;
use crate::error::Result;
use atomic::{write_atomic, write_dir_atomic};
use std::path::Path;

/// Version of the `report.json` layout; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Writes every output file of `analysis` into `dir`, replacing a previous detbal output there;
/// another non-empty directory is replaced only with `force`.
pub fn write_outputs(analysis: &Analysis, dir: &Path, force: bool) -> Result<()> {
    write_dir_atomic(dir, force, |dir| {
        let report = report_json(analysis);
        // The tables and the figures are independent: written side by side.
        let (tables, page) = rayon::join(
            || write_tables(analysis, &report, dir),
            || html::write_report(analysis, &report, dir),
        );
        tables.and(page)
    })
}

/// The Parquet tables, `report.json` and the group folders.
fn write_tables(analysis: &Analysis, report: &serde_json::Value, dir: &Path) -> Result<()> {
    write_atomic(&dir.join("potentials.parquet"), |f| {
        tables::write_potentials(analysis, f)
    })?;
    write_atomic(&dir.join("pairs.parquet"), |f| {
        tables::write_pairs(analysis, f)
    })?;
    write_atomic(&dir.join("cycles.parquet"), |f| {
        tables::write_cycles(analysis, f)
    })?;
    write_atomic(&dir.join("fundamental_cycles.parquet"), |f| {
        tables::write_fundamental_cycles(analysis, f)
    })?;
    if let Some(r) = analysis.resampling.as_ref().filter(|r| !r.tests.is_empty()) {
        write_atomic(&dir.join("nulls.parquet"), |f| nulls::write_nulls(r, f))?;
    }
    let json = serde_json::to_vec_pretty(report).expect("report serialises");
    write_atomic(&dir.join("report.json"), |mut f| {
        std::io::Write::write_all(&mut f, &json).map_err(|e| e.to_string())
    })?;
    groups::write(analysis, dir)
}

/// Whether the graph of reciprocal pairs (states joined when both `f → g` and `g → f` were seen)
/// has no cycle: then the pair test has no degrees of freedom and there is no cycle test.
fn reciprocal_forest(graph: &crate::graph::TransitionGraph) -> bool {
    let mut parent: Vec<u32> = (0..graph.n_states() as u32).collect();
    fn root(parent: &mut [u32], mut x: u32) -> u32 {
        while parent[x as usize] != x {
            parent[x as usize] = parent[parent[x as usize] as usize];
            x = parent[x as usize];
        }
        x
    }
    for e in graph.reciprocal_pairs() {
        let (f, g) = (
            root(&mut parent, graph.src[e]),
            root(&mut parent, graph.dst[e]),
        );
        if f == g {
            return false;
        }
        parent[f as usize] = g;
    }
    true
}

/// The verdict at level `alpha`: rejected when a corrected test's p-value is below it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verdict {
    pub rejected: bool,
    pub alpha: f64,
    pub sentence: String,
}

impl Verdict {
    /// Rejected when a corrected test's p-value is below the settings' `alpha`.
    pub fn of(analysis: &Analysis) -> Verdict {
        Verdict::at(analysis, analysis.settings.alpha)
    }

    /// The verdict at another level (`--fail-on-violation ALPHA`).
    pub fn at(analysis: &Analysis, alpha: f64) -> Verdict {
        let tests = [
            ("pairwise", analysis.pair_test.p_value),
            ("cycle", analysis.cycle_test.p_value),
        ];
        let rejecting: Vec<String> = tests
            .iter()
            .filter_map(|(name, p)| {
                p.filter(|&p| p < alpha)
                    .map(|p| format!("{name} test {}", p_text(Some(p))))
            })
            .collect();
        let tested: Vec<&str> = tests
            .iter()
            .filter(|(_, p)| p.is_some())
            .map(|(n, _)| *n)
            .collect();
        let sentence = if !rejecting.is_empty() {
            format!(
                "Detailed balance is rejected at α = {alpha} ({}).",
                rejecting.join(", ")
            )
        } else if tested.is_empty()
            && analysis.graph.reciprocal_pairs().next().is_some()
            && reciprocal_forest(&analysis.graph)
        {
            // The reciprocal pairs form no cycle (e.g. two states): V fits every pair exactly
            // and there is no cycle affinity, so no count would be enough.
            let pairs = analysis.graph.reciprocal_pairs().count();
            format!(
                "Not testable: zero degrees of freedom (the {pairs} reciprocal pair{} form{} no \
                 cycle, so the potential fits {} exactly); detailed balance needs a cycle of \
                 states, at least three with transitions both ways.",
                if pairs == 1 { "" } else { "s" },
                if pairs == 1 { "s" } else { "" },
                if pairs == 1 { "it" } else { "them" },
            )
        } else if tested.is_empty() {
            "Not testable: no pair or cycle has enough counts in both directions.".to_string()
        } else {
            format!(
                "Consistent with detailed balance at α = {alpha} ({} test{} not rejected).",
                tested.join(" and "),
                if tested.len() > 1 { "s" } else { "" }
            )
        };
        Verdict {
            rejected: !rejecting.is_empty(),
            alpha,
            sentence,
        }
    }
}
