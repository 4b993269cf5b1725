//! `detbal compare OLD_DIR NEW_DIR`: the drift between two `analyze` outputs, for nightly jobs.
//!
//! Read: `report.json` (r, χ², p-values, entropy production, attractors) and
//! `potentials.parquet` (`state`, `potential`, `component`) of each directory.
//!
//! **Gauge.** A potential is defined up to one constant per connected component, and each run
//! fixes it by centring each of its components, so raw values of two runs differ by a constant
//! wherever a component gained or lost states. The shared states with a potential in both runs
//! are therefore grouped by their (old component, new component) pair, and within each group
//! the mean difference is removed: `ΔV(f) = (V_new(f) − V_old(f)) − mean_group(V_new − V_old)`.
//! The listed "new" value is `V_new(f)` shifted by that constant, so `new − old = ΔV`. A group
//! of one state carries no gauge-free information: its `ΔV` is 0.
//!
//! **Attractors** (see [`crate::stats::attractors`]): "new" are listed in the new report but not
//! in the old one, "vanished" the reverse; both lists are the reports' top
//! [`LISTED`](crate::stats::attractors::LISTED).
//!
//! **Thresholds** (`--max-potential-drift` on the RMS `ΔV`, `--max-state-drift` on the largest
//! `|ΔV|`, `--max-r-drop` on `r_old − r_new`): beyond any of them the exit code is
//! [`EXIT_DRIFT`]; without thresholds compare only reports. A threshold whose drift cannot be
//! measured fails too, with [`EXIT_UNMEASURED`] (when none is exceeded): the potential drift
//! when no two shared states with a potential in both runs share a component pair (no shared
//! state at all, say: nothing gauge-free to compare), or when either table holds a non-finite
//! potential; the r drop when either report has no `pairs.pearson_r`, or the runs share no state.
//!
//! **Reading.** Both Parquet reads go through the loader's panic containment
//! ([`crate::io::contain_parquet_panics`]); a report.json lacking one of the keys read is an
//! error naming the file and the key.

use crate::error::{Error, Result};
use crate::pipeline::Analyses;
use crate::report::{counted, printable, report_json};
use arrow::array::{Array, Float64Array, StringArray, UInt32Array};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rustc_hash::FxHashMap;
use serde::Serialize;
use serde_json::Value;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Exit code of `detbal compare` when a drift exceeds its threshold.
pub const EXIT_DRIFT: u8 = 5;
/// Exit code of `detbal compare` when no drift exceeds its threshold but the drift of one
/// threshold given could not be measured.
pub const EXIT_UNMEASURED: u8 = 6;

/// The keys of report.json that compare reads: each a number or null.
const REPORT_NUMBERS: [&str; 6] = [
    "/pairs/pearson_r",
    "/pairs/chi2",
    "/pairs/ndf",
    "/verdict/p_value",
    "/cycles/p_value",
    "/entropy_production/nats_per_transition",
];

/// Limits beyond which the drift fails the comparison.
#[derive(Debug, Clone, Copy, Default)]
pub struct Thresholds {
    pub rms: Option<f64>,
    pub max: Option<f64>,
    pub r_drop: Option<f64>,
}

impl Thresholds {
    /// Each limit given is a number ≥ 0: a NaN would pass every drift, a negative one fail it.
    fn check(&self) -> Result<()> {
        let limits = [
            ("--max-potential-drift", self.rms),
            ("--max-state-drift", self.max),
            ("--max-r-drop", self.r_drop),
        ];
        for (flag, limit) in limits {
            if let Some(x) = limit.filter(|x| !(*x >= 0.0)) {
                return Err(Error::settings(format!(
                    "{flag} must be a number ≥ 0, got {x}"
                )));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Mover {
    pub state: String,
    pub old: f64,
    /// The new potential in the old run's gauge.
    pub new: f64,
    pub delta: f64,
}

/// An old → new pair of one number of the reports.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Change {
    pub old: Option<f64>,
    pub new: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub old_dir: PathBuf,
    pub new_dir: PathBuf,
    /// States in both runs' potentials tables.
    pub shared_states: usize,
    pub new_states: usize,
    pub vanished_states: usize,
    /// Shared states with a potential in both runs: the ones compared.
    pub compared_states: usize,
    /// `None` when the potential drift cannot be measured (see `unmeasured`).
    pub rms_drift: Option<f64>,
    pub max_drift: Option<f64>,
    /// The states whose potential moved most, largest `|ΔV|` first.
    pub top_movers: Vec<Mover>,
    pub pearson_r: Change,
    pub pairs_chi2_ndf: Change,
    /// The verdict's calibrated p-value.
    pub verdict_p_value: Change,
    pub cycles_p_value: Change,
    pub entropy_production: Change,
    pub new_attractors: Vec<String>,
    pub vanished_attractors: Vec<String>,
    /// Thresholds exceeded, in words; empty when none is.
    pub exceeded: Vec<String>,
    /// Thresholds given whose drift could not be measured, each with why; empty when none.
    pub unmeasured: Vec<String>,
}

impl Comparison {
    /// The exit code: [`EXIT_DRIFT`] when a threshold is exceeded, else [`EXIT_UNMEASURED`]
    /// when one could not be checked, else 0.
    pub fn exit_code(&self) -> u8 {
        if !self.exceeded.is_empty() {
            EXIT_DRIFT
        } else if !self.unmeasured.is_empty() {
            EXIT_UNMEASURED
        } else {
            0
        }
    }
}

/// Shared states by (old component, new component): (old index, old V, new V).
type GaugeGroups = FxHashMap<(u32, u32), Vec<(usize, f64, f64)>>;

/// One side of a comparison: an `analyze` output directory ([`Run::read`]) or an analysis in
/// memory ([`Run::of`], the Python package's `detbal.compare`).
pub struct Run {
    /// The directory, or the label of an analysis in memory.
    dir: PathBuf,
    report: Value,
    report_path: PathBuf,
    potentials_path: PathBuf,
    /// state → (potential, component), in file order.
    states: Vec<(String, Option<f64>, u32)>,
}

impl Run {
    /// The `report.json` and `potentials.parquet` of the output directory `dir`.
    pub fn read(dir: &Path) -> Result<Run> {
        read_run(dir)
    }

    /// An analysis in memory, named `label` where messages would name its files: the same
    /// report and potentials as its output directory would hold.
    pub fn of(run: &Analyses, label: &str) -> Run {
        let (graph, potential) = (&run.pooled.graph, &run.pooled.potential);
        let states = (0..graph.n_states())
            .map(|s| {
                (
                    graph.names[s].clone(),
                    potential.value[s],
                    potential.component[s],
                )
            })
            .collect();
        Run {
            dir: label.into(),
            report: report_json(run),
            report_path: format!("{label} (report)").into(),
            potentials_path: format!("{label} (potentials)").into(),
            states,
        }
    }

    /// Why the potentials cannot be compared: a non-finite potential.
    fn non_finite(&self) -> Option<String> {
        let bad: Vec<&str> = self
            .states
            .iter()
            .filter(|s| s.1.is_some_and(|v| !v.is_finite()))
            .map(|s| s.0.as_str())
            .collect();
        let first = bad.first()?;
        Some(format!(
            "{} holds {} (NaN or infinite; state `{first}`{})",
            self.potentials_path.display(),
            counted(bad.len() as u64, "non-finite potential"),
            if bad.len() > 1 { " and others" } else { "" },
        ))
    }

    /// The number of the report at `pointer`, if any.
    fn number(&self, pointer: &str) -> Option<f64> {
        self.report.pointer(pointer).and_then(Value::as_f64)
    }

    /// The pairs' weighted `χ²/ndf`, when `ndf > 0`.
    fn chi2_ndf(&self) -> Option<f64> {
        let ndf = self.number("/pairs/ndf").filter(|&n| n > 0.0)?;
        Some(self.number("/pairs/chi2")? / ndf)
    }
}

/// The report number at `pointer` in the old and the new run.
fn change(a: &Run, b: &Run, pointer: &str) -> Change {
    Change {
        old: a.number(pointer),
        new: b.number(pointer),
    }
}

/// Compares the outputs in `old` and `new`, listing the `top` movers.
pub fn compare(old: &Path, new: &Path, top: usize, limits: Thresholds) -> Result<Comparison> {
    compare_runs(Run::read(old)?, Run::read(new)?, top, limits)
}

/// Compares two runs, each read from its directory or taken from memory (see [`Run`]).
pub fn compare_runs(a: Run, b: Run, top: usize, limits: Thresholds) -> Result<Comparison> {
    limits.check()?;
    let shared = shared_states(&a, &b);
    let mut drift = potential_drift(&a, &b, &shared);
    drift.movers.truncate(top);
    let (old_attractors, new_attractors) = (attractor_names(&a)?, attractor_names(&b)?);
    let pearson_r = change(&a, &b, "/pairs/pearson_r");
    let mut breaches = Breaches::default();
    breaches.potential(limits, &drift);
    if let Some(limit) = limits.r_drop {
        breaches.r_drop(limit, [&a, &b], pearson_r, !shared.is_empty());
    }
    Ok(Comparison {
        old_dir: a.dir.clone(),
        new_dir: b.dir.clone(),
        shared_states: shared.len(),
        new_states: b.states.len() - shared.len(),
        vanished_states: vanished_states(&a, &b),
        compared_states: drift.compared,
        rms_drift: drift.rms,
        max_drift: drift.max,
        top_movers: drift.movers,
        pearson_r,
        pairs_chi2_ndf: Change {
            old: a.chi2_ndf(),
            new: b.chi2_ndf(),
        },
        verdict_p_value: change(&a, &b, "/verdict/p_value"),
        cycles_p_value: change(&a, &b, "/cycles/p_value"),
        entropy_production: change(&a, &b, "/entropy_production/nats_per_transition"),
        new_attractors: missing_from(&new_attractors, &old_attractors),
        vanished_attractors: missing_from(&old_attractors, &new_attractors),
        exceeded: breaches.exceeded,
        unmeasured: breaches.unmeasured,
    })
}

/// `(old index, new index)` of every state in both runs, in the new run's order.
fn shared_states(a: &Run, b: &Run) -> Vec<(usize, usize)> {
    let index: FxHashMap<&str, usize> = a
        .states
        .iter()
        .enumerate()
        .map(|(i, s)| (s.0.as_str(), i))
        .collect();
    b.states
        .iter()
        .enumerate()
        .filter_map(|(j, s)| index.get(s.0.as_str()).map(|&i| (i, j)))
        .collect()
}

/// The number of states of the old run missing from the new one.
fn vanished_states(a: &Run, b: &Run) -> usize {
    let in_new: FxHashMap<&str, ()> = b.states.iter().map(|s| (s.0.as_str(), ())).collect();
    a.states
        .iter()
        .filter(|s| !in_new.contains_key(s.0.as_str()))
        .count()
}

/// The names of `names` that are not in `other`, in order.
fn missing_from(names: &[String], other: &[String]) -> Vec<String> {
    names
        .iter()
        .filter(|n| !other.contains(n))
        .cloned()
        .collect()
}

/// The potential drift over the shared states, with the gauge removed.
struct Drift {
    /// Shared states with a potential in both runs.
    compared: usize,
    /// The states compared, largest `|ΔV|` first ([`compare`] keeps the `top`).
    movers: Vec<Mover>,
    /// `None` when `unmeasurable` says why.
    rms: Option<f64>,
    max: Option<f64>,
    unmeasurable: Option<String>,
}

fn potential_drift(a: &Run, b: &Run, shared: &[(usize, usize)]) -> Drift {
    let (groups, compared) = gauge_groups(a, b, shared);
    let movers = gauged_movers(a, &groups);
    // States whose ΔV is free of the gauge: those of groups of two or more.
    let informative: usize = groups.values().map(Vec::len).filter(|&n| n >= 2).sum();
    let unmeasurable = a.non_finite().or_else(|| b.non_finite()).or_else(|| {
        let why = if shared.is_empty() {
            "the two runs share no state"
        } else if compared == 0 {
            "no shared state has a potential in both runs"
        } else if informative == 0 {
            "no two shared states with a potential in both runs lie in one component of each \
             run, so no difference is free of the per-component constant"
        } else {
            return None;
        };
        Some(why.to_string())
    });
    let (rms, max) = if unmeasurable.is_some() {
        (None, None)
    } else {
        let sum = movers.iter().map(|m| m.delta * m.delta).sum::<f64>();
        let max = movers.first().map_or(0.0, |m| m.delta.abs());
        (Some((sum / movers.len() as f64).sqrt()), Some(max))
    };
    Drift {
        compared,
        movers,
        rms,
        max,
        unmeasurable,
    }
}

/// Shared states with a finite potential in both runs, grouped by component pair for the
/// gauge, and the number of shared states with a potential in both (finite or not).
fn gauge_groups(a: &Run, b: &Run, shared: &[(usize, usize)]) -> (GaugeGroups, usize) {
    let mut groups: GaugeGroups = FxHashMap::default();
    let mut with_potentials = 0;
    for &(i, j) in shared {
        if let (Some(vo), Some(vn)) = (a.states[i].1, b.states[j].1) {
            with_potentials += 1;
            if !(vo.is_finite() && vn.is_finite()) {
                continue;
            }
            groups
                .entry((a.states[i].2, b.states[j].2))
                .or_default()
                .push((i, vo, vn));
        }
    }
    (groups, with_potentials)
}

/// Every grouped state with its new potential shifted by its group's mean difference, largest
/// `|ΔV|` first (ties by name).
fn gauged_movers(a: &Run, groups: &GaugeGroups) -> Vec<Mover> {
    let mut movers: Vec<Mover> = Vec::new();
    for members in groups.values() {
        let shift = members.iter().map(|&(_, vo, vn)| vn - vo).sum::<f64>() / members.len() as f64;
        movers.extend(members.iter().map(|&(i, vo, vn)| Mover {
            state: a.states[i].0.clone(),
            old: vo,
            new: vn - shift,
            delta: (vn - shift) - vo,
        }));
    }
    movers.sort_by(|x, y| {
        y.delta
            .abs()
            .total_cmp(&x.delta.abs())
            .then_with(|| x.state.cmp(&y.state))
    });
    movers
}

/// The thresholds exceeded and those that could not be checked, in words, in the order of the
/// flags.
#[derive(Default)]
struct Breaches {
    exceeded: Vec<String>,
    unmeasured: Vec<String>,
}

impl Breaches {
    fn cannot(&mut self, flag: &str, why: &str) {
        self.unmeasured.push(format!(
            "{flag}: the drift could not be measured, so the threshold is not met: {why}"
        ));
    }

    /// `--max-potential-drift` and `--max-state-drift`.
    fn potential(&mut self, limits: Thresholds, drift: &Drift) {
        for (flag, limit, value, what) in [
            (
                "--max-potential-drift",
                limits.rms,
                drift.rms,
                "RMS potential drift",
            ),
            (
                "--max-state-drift",
                limits.max,
                drift.max,
                "largest potential drift",
            ),
        ] {
            match (limit, value) {
                (Some(limit), Some(value)) if value > limit => {
                    self.exceeded.push(format!("{what} {value:.4} > {limit}"));
                }
                (Some(_), None) => {
                    let why = drift.unmeasurable.as_deref().unwrap_or("no drift");
                    self.cannot(flag, why);
                }
                _ => {}
            }
        }
    }

    /// `--max-r-drop` at `limit`, on the `r` of the `runs`, old and new.
    fn r_drop(&mut self, limit: f64, runs: [&Run; 2], r: Change, share_states: bool) {
        let missing = runs
            .into_iter()
            .zip([r.old, r.new])
            .find(|(_, r)| !r.is_some_and(f64::is_finite));
        match (missing, r.old, r.new) {
            // Two runs without a common state are not two runs of one process.
            _ if !share_states => self.cannot("--max-r-drop", "the two runs share no state"),
            (Some((run, _)), ..) => self.cannot(
                "--max-r-drop",
                &format!(
                    "{} has no pairwise correlation (pairs.pearson_r is null, as when too few \
                     pairs are tested)",
                    run.report_path.display()
                ),
            ),
            (None, Some(ro), Some(rn)) if ro - rn > limit => {
                self.exceeded
                    .push(format!("r dropped by {:.4} > {limit}", ro - rn));
            }
            _ => {}
        }
    }
}

/// The comparison as printed on the terminal.
pub fn text(c: &Comparison) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "States     {} shared ({} with a potential in both runs), {} new, {} vanished",
        c.shared_states, c.compared_states, c.new_states, c.vanished_states
    );
    let _ = match (c.rms_drift, c.max_drift) {
        (Some(rms), Some(max)) => writeln!(
            s,
            "Potential  RMS |ΔV| = {rms:.4}, max |ΔV| = {max:.4} (constant per component removed)",
        ),
        _ => writeln!(s, "Potential  drift not measurable"),
    };
    movers_table(&mut s, &c.top_movers);
    report_rows(&mut s, c);
    let mut verdict = Vec::new();
    if !c.exceeded.is_empty() {
        verdict.push(format!("EXCEEDED: {}", c.exceeded.join("; ")));
    }
    if !c.unmeasured.is_empty() {
        verdict.push(format!("NOT MEASURED: {}", c.unmeasured.join("; ")));
    }
    if verdict.is_empty() {
        verdict.push("within thresholds".to_string());
    }
    let _ = writeln!(s, "Drift      {}", verdict.join("; "));
    s
}

/// The movers with a nonzero `ΔV`, as a table under the potential's row; nothing when none.
fn movers_table(s: &mut String, movers: &[Mover]) {
    if movers.iter().all(|m| m.delta == 0.0) {
        return;
    }
    let width = movers
        .iter()
        .map(|m| printable(&m.state).chars().count())
        .max();
    let width = width.unwrap_or(0).max(5);
    let _ = writeln!(
        s,
        "  {:<width$}  {:>9}  {:>9}  {:>9}",
        "state", "old V", "new V", "ΔV"
    );
    for m in movers.iter().filter(|m| m.delta != 0.0) {
        let _ = writeln!(
            s,
            "  {:<width$}  {:>9.4}  {:>9.4}  {:>+9.4}",
            printable(&m.state),
            m.old,
            m.new,
            m.delta
        );
    }
}

/// `old → new`, each written by `f`, or `n/a`.
fn arrow(c: Change, f: fn(f64) -> String) -> String {
    let one = |x: Option<f64>| x.map_or("n/a".to_string(), f);
    format!("{} → {}", one(c.old), one(c.new))
}

/// The rows of the reports' numbers and attractors.
fn report_rows(s: &mut String, c: &Comparison) {
    let fixed = |x: f64| format!("{x:.4}");
    let sci = |x: f64| format!("{x:.3e}");
    let p = |x: f64| crate::report::p_text(Some(x));
    let _ = writeln!(s, "Verdict    {}", arrow(c.verdict_p_value, p));
    let _ = writeln!(
        s,
        "Pairs      r {} (the paper's); weighted χ²/ndf {} (descriptive)",
        arrow(c.pearson_r, fixed),
        arrow(c.pairs_chi2_ndf, fixed),
    );
    let _ = writeln!(
        s,
        "Cycles     cycle-space χ² {} (descriptive)",
        arrow(c.cycles_p_value, p)
    );
    let _ = writeln!(
        s,
        "Entropy    {} nats per transition",
        arrow(c.entropy_production, sci)
    );
    let list = |names: &[String]| {
        if names.is_empty() {
            "none".to_string()
        } else {
            let names: Vec<_> = names.iter().map(|n| printable(n)).collect();
            names.join(", ")
        }
    };
    let _ = writeln!(
        s,
        "Attractors new: {}; vanished: {}",
        list(&c.new_attractors),
        list(&c.vanished_attractors)
    );
}

fn read_run(dir: &Path) -> Result<Run> {
    let report_path = dir.join("report.json");
    let bytes = std::fs::read(&report_path).map_err(|source| Error::Read {
        path: report_path.clone(),
        source,
    })?;
    let report: Value = serde_json::from_slice(&bytes).map_err(|e| {
        Error::bad_input(&report_path, format!("not valid JSON: {e}"))
            .hint("is this a detbal analyze output directory?")
    })?;
    if report.get("schema_version").is_none() {
        return Err(Error::bad_input(
            &report_path,
            "no schema_version: not a detbal report",
        ));
    }
    for pointer in REPORT_NUMBERS {
        let key = pointer[1..].replace('/', ".");
        let problem = match report.pointer(pointer) {
            None => "is missing",
            Some(Value::Number(_) | Value::Null) => continue,
            Some(_) => "is not a number or null",
        };
        return Err(Error::bad_input(
            &report_path,
            format!("key `{key}` {problem}: not a complete detbal report"),
        )
        .hint("compare reads the report.json of a detbal analyze output; rerun analyze"));
    }
    let potentials_path = dir.join("potentials.parquet");
    let states =
        crate::io::contain_parquet_panics(&potentials_path, || read_potentials(&potentials_path))?;
    Ok(Run {
        dir: dir.to_owned(),
        report,
        report_path,
        potentials_path,
        states,
    })
}

/// `state`, `potential` and `component` of a potentials table.
fn read_potentials(path: &Path) -> Result<Vec<(String, Option<f64>, u32)>> {
    let file = std::fs::File::open(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    let bad = |message: String| Error::bad_input(path, message);
    // The reader checks the magic at the end only (as in the loader).
    let mut magic = [0u8; 4];
    if std::io::Read::read_exact(&mut &file, &mut magic).is_err() || &magic != b"PAR1" {
        return Err(bad(format!(
            "not a readable Parquet file: it starts with {:?}, not the magic bytes \"PAR1\"",
            String::from_utf8_lossy(&magic)
        )));
    }
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| bad(format!("not a readable Parquet file: {e}")))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| bad(format!("not a readable Parquet file: {e}")))?;
        let column = |name: &str, expected: &str| {
            batch.column_by_name(name).ok_or_else(|| {
                bad(format!(
                    "no column `{name}` ({expected}): not a detbal potentials table"
                ))
            })
        };
        let typed = |name: &str, expected: &str| bad(format!("column `{name}` is not {expected}"));
        let names = column("state", "string")?;
        let names = names
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| typed("state", "string"))?;
        let values = column("potential", "float64")?;
        let values = values
            .as_any()
            .downcast_ref::<Float64Array>()
            .ok_or_else(|| typed("potential", "float64"))?;
        let components = column("component", "uint32")?;
        let components = components
            .as_any()
            .downcast_ref::<UInt32Array>()
            .ok_or_else(|| typed("component", "uint32"))?;
        for i in 0..batch.num_rows() {
            let value = values.is_valid(i).then(|| values.value(i));
            out.push((names.value(i).to_string(), value, components.value(i)));
        }
    }
    Ok(out)
}

/// Names of the attractors listed in a report.
fn attractor_names(run: &Run) -> Result<Vec<String>> {
    let listed = run
        .report
        .pointer("/attractors/listed")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            Error::bad_input(&run.report_path, "no `attractors.listed` array")
                .hint("the report was written by an older detbal; rerun analyze")
        })?;
    Ok(listed
        .iter()
        .filter_map(|a| a.get("name").and_then(Value::as_str).map(str::to_string))
        .collect())
}
