//! `detbal analyze` end to end: load the inputs (files, or Arrow batches in memory), choose the
//! backend, analyse the whole log ([`crate::analyze`]) and, with `--group-by`, each group
//! ([`crate::groups`]); the pooled analysis and the groups' come back side by side in
//! [`Analyses`].

use crate::analyze::{Analysis, AnalyzeSettings, analyze_graph};
use crate::backend::{self, Backend};
use crate::error::Result;
use crate::groups::{self, GroupAnalyses};
use crate::io::scores::StateScores;
use crate::io::{self, LoadedLog};
use arrow::record_batch::RecordBatchReader;
use std::path::PathBuf;
use std::time::Instant;

/// The analysis of the whole log and, with `--group-by`, of each group.
pub struct Analyses {
    /// The whole log.
    pub pooled: Analysis,
    /// Per-group analyses and their comparison, with `--group-by`.
    pub groups: Option<GroupAnalyses>,
}

impl Analyses {
    /// Gives every analysis (pooled and per group) the score of each of its states.
    pub fn attach_scores(&mut self, scores: &StateScores) {
        let attach = |a: &mut Analysis| {
            let names = &a.graph.names;
            a.state_score = Some(
                names
                    .iter()
                    .map(|n| scores.get(n.as_str()).copied())
                    .collect(),
            );
        };
        attach(&mut self.pooled);
        for g in self.groups.iter_mut().flat_map(|g| &mut g.groups) {
            if let Ok(a) = &mut g.analysis {
                attach(a);
            }
        }
    }
}

/// An analysis without groups.
impl From<Analysis> for Analyses {
    fn from(pooled: Analysis) -> Self {
        Analyses {
            pooled,
            groups: None,
        }
    }
}

/// Loads `inputs` and analyses them on the backend `settings.device` selects.
pub fn analyze(inputs: &[PathBuf], settings: &AnalyzeSettings) -> Result<Analyses> {
    analyze_from(|| io::load(inputs, &settings.load_options()), settings)
}

/// Analyses a log that is already in memory as Arrow record batches (the Python package's
/// tables), `name` standing for its path in messages; otherwise as [`analyze`].
pub fn analyze_stream(
    reader: impl RecordBatchReader,
    name: &str,
    settings: &AnalyzeSettings,
) -> Result<Analyses> {
    analyze_from(
        || io::load_stream(reader, name, &settings.load_options()),
        settings,
    )
}

/// Runs `load`, then analyses what it loaded on the backend `settings.device` selects.
fn analyze_from(
    load: impl FnOnce() -> Result<LoadedLog>,
    settings: &AnalyzeSettings,
) -> Result<Analyses> {
    let start = Instant::now();
    // A bad score file fails before the log is read.
    let scores = settings
        .state_score
        .as_deref()
        .map(io::scores::read)
        .transpose()?;
    let loaded = load()?;
    let load = start.elapsed().as_secs_f64();
    tracing::info!(
        stage = "load",
        files = loaded.summary.files,
        rows = loaded.summary.rows,
        states = loaded.graph.n_states(),
        edges = loaded.graph.n_edges(),
        seconds = load
    );
    bound_resident_set(loaded.graph.n_states() + loaded.graph.n_edges());
    settings.interrupt.check("load")?;
    let backend = backend::select(settings.device)?;
    let mut run = analyze_loaded(loaded, backend.as_ref(), settings, load, start)?;
    if let Some(scores) = &scores {
        run.attach_scores(scores);
    }
    Ok(run)
}

/// On a graph of [`LARGE_GRAPH`] states and edges or more: hands the heap the load freed back to
/// the system and serves every later allocation of 256 KiB or more with its own mapping,
/// unmapped when freed (glibc; process-wide, so also in the Python package's process).
///
/// glibc's default raises that threshold to the largest block freed so far (up to 32 MiB), after
/// which the stages' large vectors come from the heap, and what a stage frees stays resident: the
/// 1e8-row llm-like default run held 530–620 MiB after the load for a graph of about 160 MiB;
/// with this its stages after the load peaked at 743–797 MiB in three runs, against 887 MiB with
/// the heap trimmed after every stage instead (BENCHMARKS.md, "The default run at 1e8 rows: memory"). The cost is
/// a fresh mapping's page faults per large vector, which is why small graphs keep the default
/// and why it starts after the load: fixed from the start, it cost llm-hard-1M 10 % of its wall
/// time (a fit's set-up per cross-validation fold, a posterior probe's vectors), the 1e8-row
/// load 20–30 %, and a load of 30,000 one-row files (a reader's buffers per file) its test's 30 s
/// bound.
fn bound_resident_set(graph_size: usize) {
    if graph_size < LARGE_GRAPH {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: plain calls into glibc's allocator, which takes its own locks.
    unsafe {
        libc::malloc_trim(0);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 10);
        // The raised threshold had also raised this one, to twice itself.
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 10);
    }
}

/// States plus edges from which [`bound_resident_set`] acts: a fit's working set is then some
/// 400 MiB (about 190 bytes per state and edge with the default ridge fit).
const LARGE_GRAPH: usize = 1 << 21;

/// The analyses of an already loaded log on `backend`; `load_seconds` and `start` (when loading
/// began) go into the pooled analysis' timings.
pub fn analyze_loaded(
    loaded: LoadedLog,
    backend: &dyn Backend,
    settings: &AnalyzeSettings,
    load_seconds: f64,
    start: Instant,
) -> Result<Analyses> {
    let LoadedLog {
        graph,
        summary,
        groups: group_graphs,
    } = loaded;
    let mut pooled = analyze_graph(graph, summary, backend, settings, load_seconds, start)?;
    let groups = match &settings.load.group_column {
        Some(column) => {
            let t = Instant::now();
            let groups =
                groups::analyze_groups(column, group_graphs, &pooled.input, backend, settings)?;
            pooled.timings.groups = t.elapsed().as_secs_f64();
            pooled.timings.total = start.elapsed().as_secs_f64();
            Some(groups)
        }
        None => None,
    };
    Ok(Analyses { pooled, groups })
}
