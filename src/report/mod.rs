//! Outputs of `detbal analyze`: `report.json`, the Parquet tables, the figures and `report.html`
//! ([`figures`], [`html`]) and the terminal summary.
//! The output directory is written as a whole (see [`atomic`]): a reader sees the previous
//! outputs or the new ones, never a mix or a half-written file. Inside it the files are
//! independent and written side by side ([`write_outputs`]).

pub(crate) mod atomic;
pub mod figures;
mod groups;
pub(crate) mod html;
mod json;
pub(crate) mod markup;
mod nulls;
mod summary;
mod tables;

pub(crate) use atomic::{check_inputs_outside, check_output};
pub use html::report_html;
pub use json::report_json;
pub use summary::{
    PIPED_WIDTH, p_text, printable, summary, summary_at, summary_with_outputs, width,
};
pub(crate) use summary::{counted, num, thousands};
pub use tables::analysis_tables;

use crate::analyze::Analysis;
use crate::error::Result;
use crate::pipeline::Analyses;
use atomic::{write_atomic, write_dir_atomic};
use std::path::Path;

/// Version of the `report.json` layout (`schema/report.schema.json`); bumped by one on any
/// change of its key tree.
pub const SCHEMA_VERSION: u32 = 10;

/// Writes every output file of `run` into `dir`, replacing a previous detbal output there
/// (see [`atomic`]: only what its manifest lists); another non-empty directory is replaced only
/// with `force`, and a directory holding one of the files read never.
pub fn write_outputs(run: &Analyses, dir: &Path, force: bool) -> Result<()> {
    let inputs: Vec<std::path::PathBuf> = (run.pooled.input.paths.iter().map(Into::into))
        .chain(run.pooled.settings.state_score.clone())
        .collect();
    atomic::check_inputs_outside(dir, &inputs)?;
    write_dir_atomic(dir, force, |dir| {
        // The outputs are independent: the tables, report.json with the page that embeds it (and
        // `report_json`'s SCC pass), and the groups' folders are written side by side. On errors
        // in several, the first of tables, report.json, groups, page is returned.
        let (tables, ((json, page), groups)) = rayon::join(
            || write_analysis_tables(&run.pooled, dir),
            || {
                rayon::join(
                    || write_report(run, dir),
                    || {
                        run.groups
                            .as_ref()
                            .map_or(Ok(()), |g| groups::write(g, dir))
                    },
                )
            },
        );
        tables.and(json).and(groups).and(page)
    })
}

/// `report.json`, and beside it the figures and `report.html`, which embeds the report: what
/// writing each gave.
fn write_report(run: &Analyses, dir: &Path) -> (Result<()>, Result<()>) {
    let report = report_json(run);
    rayon::join(
        || {
            let json = serde_json::to_vec_pretty(&report).expect("report serialises");
            write_atomic(&dir.join("report.json"), |mut f| {
                std::io::Write::write_all(&mut f, &json).map_err(|e| e.to_string())
            })
        },
        || html::write_report(run, &report, dir),
    )
}

/// The Parquet tables of one analysis (the whole log's, or a group's in its folder):
/// potentials, pairs, splits, cycles, fundamental cycles, and the null samples when resampled.
/// One after the other: encoded side by side they cost llm-hard-10M's run 40 MiB more peak
/// (966 against 927 MiB) for no measurable time.
fn write_analysis_tables(analysis: &Analysis, dir: &Path) -> Result<()> {
    for (name, batch) in analysis_tables(analysis) {
        write_atomic(&dir.join(format!("{name}.parquet")), |f| {
            tables::write(f, &batch)
        })?;
    }
    Ok(())
}

/// The verdict at level `alpha`: the quasi-symmetry test of the pair splits
/// ([`crate::stats::quasi_symmetry`]), with its calibrated p-value. One test, so `alpha` is its
/// level; the pair and cycle statistics beside it describe and localise, they do not vote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verdict {
    /// `None` when the verdict cannot decide: the log has no independent cycle, or its only
    /// cycles run through pairs too sparse for a calibrated test
    /// ([`crate::stats::quasi_symmetry::QuasiSymmetryTest::decides`]).
    pub rejected: Option<bool>,
    pub alpha: f64,
    pub test: &'static str,
    pub statistic: f64,
    pub ndf: i64,
    pub p_value: Option<f64>,
    /// How the p-value was calibrated, in words.
    pub calibration: Option<&'static str>,
    pub sentence: String,
}

impl Verdict {
    /// The verdict at the settings' `alpha`.
    pub fn of(analysis: &Analysis) -> Verdict {
        Verdict::at(analysis, analysis.settings.alpha)
    }

    /// The verdict at another level (`--fail-on-violation ALPHA`).
    pub fn at(analysis: &Analysis, alpha: f64) -> Verdict {
        let t = &analysis.verdict_test;
        let rejected = t.p_value.filter(|_| t.decides).map(|p| p < alpha);
        let sentence = match (rejected, t.p_value) {
            (Some(true), Some(p)) => format!(
                "Detailed balance is rejected at α = {} (quasi-symmetry X² = {} on {} ndf, {}).",
                summary::level(alpha),
                num(t.statistic, 1),
                thousands(t.ndf.max(0) as u64),
                p_text(Some(p))
            ),
            (Some(false), Some(p)) => format!(
                "Consistent with detailed balance at α = {} (quasi-symmetry X² = {} on {} ndf, {}).",
                summary::level(alpha),
                num(t.statistic, 1),
                thousands(t.ndf.max(0) as u64),
                p_text(Some(p))
            ),
            (None, Some(p)) => format!(
                "Cannot decide at α = {}: no pair with ≥ {} transitions closes a cycle, and at \
                 the threshold of {} the test is not calibrated (approximate quasi-symmetry X² = \
                 {} on {} ndf, {}).",
                summary::level(alpha),
                analysis.settings.verdict.min_transitions,
                t.min_transitions,
                num(t.statistic, 1),
                thousands(t.ndf.max(0) as u64),
                p_text(Some(p))
            ),
            _ => format!(
                "Not testable: zero degrees of freedom; the log has no independent cycle ({} pairs \
                 among {} states in strongly connected components), so every pair split fits a \
                 potential exactly.",
                t.pairs, t.states
            ),
        };
        Verdict {
            rejected,
            alpha,
            test: t.test,
            statistic: t.statistic,
            ndf: t.ndf,
            p_value: t.p_value,
            calibration: t.calibration.map(|c| c.describe()),
            sentence,
        }
    }
}
