//! `detbal.Analysis` and `detbal.Comparison`: what the engine computed, read through the
//! report's own functions (report.json, the Parquet tables' batches, the summary, the figures,
//! report.html), so that Python sees exactly what `detbal analyze` writes.

use crate::{arrow, detached};
use ::arrow::record_batch::RecordBatch;
use detbal::pipeline::Analyses;
use detbal::report::{self, figures::Figure};
use pyo3::prelude::*;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The analysis of a transition log (the result of `detbal.analyze`).
#[pyclass(frozen, module = "detbal")]
pub struct Analysis {
    pub(crate) run: Analyses,
    report: Value,
    tables: Vec<(&'static str, RecordBatch)>,
    /// Rendered on first use (about 0.1 s): `figure` and the notebook view.
    figures: OnceLock<Result<Vec<Figure>, String>>,
}

impl Analysis {
    pub fn new(run: Analyses) -> Self {
        Analysis {
            report: report::report_json(&run),
            tables: report::analysis_tables(&run.pooled),
            run,
            figures: OnceLock::new(),
        }
    }

    fn table<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
        let batch = self.tables.iter().find(|(n, _)| *n == name);
        batch.map(|(_, b)| arrow::table(py, b)).transpose()
    }

    fn figures(&self, py: Python<'_>) -> PyResult<&[Figure]> {
        let figures = py.detach(|| {
            self.figures
                .get_or_init(|| report::figures::figures(&self.run))
        });
        figures
            .as_deref()
            .map_err(|e| crate::DetbalError::new_err(e.clone()))
    }
}

#[pymethods]
impl Analysis {
    /// The report as a dict, equal to the report.json that `.write(dir)` writes (a new dict on
    /// every access).
    #[getter]
    fn report<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json(py, &self.report)
    }

    /// The verdict: report.json's `verdict` section (`rejected`, `alpha`, `p_value`,
    /// `statistic`, `ndf`, `sentence`, …); `rejected` is None when the log has no independent
    /// cycle to test.
    #[getter]
    fn verdict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json(py, &self.report["verdict"])
    }

    /// One row per state: `state`, `potential` (null where not identifiable), `identifiable`,
    /// `status`, `component`, `out_count`, `in_count`, `self_count` (potentials.parquet).
    #[getter]
    fn potentials<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.table(py, "potentials")
    }

    /// One row per pair of the pairwise statistics: counts both ways, `log_ratio`,
    /// `potential_difference`, `sigma`, … (pairs.parquet).
    #[getter]
    fn pairs<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.table(py, "pairs")
    }

    /// One row per pair of the verdict's test: observed and fitted split, standardised
    /// `residual`, `p_value`, `q_value` (splits.parquet).
    #[getter]
    fn splits<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.table(py, "splits")
    }

    /// One row per reciprocal triangle listed: its states, six counts, `affinity`, `z`,
    /// `p_value`, `q_value`, … (cycles.parquet).
    #[getter]
    fn cycles<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.table(py, "cycles")
    }

    /// One row per Schnakenberg fundamental cycle: `cycle` (its states), `length`,
    /// `affinity`, `flux` (fundamental_cycles.parquet).
    #[getter]
    fn fundamental_cycles<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.table(py, "fundamental_cycles")
    }

    /// The null samples of the resampling tests in long form (`test`, `resample`,
    /// `statistic`, `observed`; nulls.parquet), or None when none ran.
    #[getter]
    fn nulls<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.table(py, "nulls")
    }

    /// The terminal summary, wrapped to `width` columns (default: `COLUMNS`, else the
    /// terminal's width, else 100).
    #[pyo3(signature = (width=None))]
    fn summary(&self, width: Option<usize>) -> String {
        report::summary_at(&self.run, width.unwrap_or_else(report::width))
    }

    /// Writes the output directory of `detbal analyze -o DIR` (report.json, the Parquet tables,
    /// figures, report.html), replaced as a whole; a directory that is not a detbal output is
    /// replaced only with `force=True`.
    #[pyo3(signature = (dir, force=false))]
    fn write(&self, py: Python<'_>, dir: PathBuf, force: bool) -> PyResult<()> {
        detached(py, || report::write_outputs(&self.run, &dir, force))
    }

    /// The names of the figures, as `.figure(name)` takes them.
    #[getter]
    fn figure_names(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        Ok(self.figures(py)?.iter().map(|f| f.name.clone()).collect())
    }

    /// The figure `name` (see `figure_names`) as SVG text, as written under figures/.
    fn figure(&self, py: Python<'_>, name: &str) -> PyResult<String> {
        let figures = self.figures(py)?;
        match figures.iter().find(|f| f.name == name) {
            Some(f) => Ok(f.svg.clone()),
            None => {
                let names: Vec<&str> = figures.iter().map(|f| f.name.as_str()).collect();
                Err(crate::DetbalError::new_err(format!(
                    "no figure `{name}`; the figures are {}",
                    names.join(", ")
                )))
            }
        }
    }

    /// report.html in a frame, for notebooks.
    fn _repr_html_(&self, py: Python<'_>) -> PyResult<String> {
        let page = report::report_html(&self.run, &self.report, self.figures(py)?);
        let quoted = page.replace('&', "&amp;").replace('"', "&quot;");
        Ok(format!(
            "<iframe srcdoc=\"{quoted}\" style=\"width:100%;height:720px;border:0\"></iframe>"
        ))
    }

    fn __repr__(&self) -> String {
        let g = &self.run.pooled.graph;
        let sentence = self.report["verdict"]["sentence"].as_str().unwrap_or("");
        format!(
            "<detbal.Analysis: {} transitions, {} states. {sentence}>",
            g.transitions(),
            g.n_states()
        )
    }
}

/// The drift between two analyses (the result of `detbal.compare`).
#[pyclass(frozen, module = "detbal")]
pub struct Comparison(pub detbal::compare::Comparison);

#[pymethods]
impl Comparison {
    /// The comparison as a dict, as `detbal compare --json` prints it (`rms_drift`,
    /// `top_movers`, `exceeded`, `unmeasured`, …).
    #[getter]
    fn report<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json(
            py,
            &serde_json::to_value(&self.0).expect("a comparison serialises"),
        )
    }

    /// The comparison as `detbal compare` prints it.
    fn summary(&self) -> String {
        detbal::compare::text(&self.0)
    }

    fn __repr__(&self) -> String {
        self.summary()
    }
}

/// A JSON value as Python objects, through the `json` module (the same dicts as reading the
/// file).
fn json<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value).expect("JSON serialises");
    py.import("json")?.call_method1("loads", (text,))
}
