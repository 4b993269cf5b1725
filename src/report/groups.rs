//! The `--group-by` outputs: a `groups` section in `report.json` (each group's verdict and main
//! numbers, and the cross-group potential correlations), one folder per group with that group's
//! own tables and `report.json`, and the summary's `Groups` lines.
//!
//! Group folders are named Hive-style, `groups/COLUMN=VALUE/` (the value percent-escaped as Hive
//! and Spark do), so `groups/` is itself a partitioned dataset: `groups/*/potentials.parquet`
//! reads as one table with the group as a partition key.

use super::atomic::write_atomic;
use super::{Verdict, p_text, report_json, tables, thousands};
use crate::analyze::Analysis;
use crate::error::{Error, Result};
use crate::groups::GroupAnalyses;
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::Path;

/// The `groups` section of `report.json`; null without `--group-by`.
pub(super) fn json(a: &Analysis) -> Value {
    let Some(groups) = &a.groups else {
        return Value::Null;
    };
    let listed: Vec<Value> = groups
        .groups
        .iter()
        .map(|g| {
            let common = json!({
                "name": g.name,
                "transitions": g.transitions,
                "directory": format!("groups/{}", folder(&groups.column, &g.name)),
            });
            let details = match &g.analysis {
                Ok(ga) => json!({
                    "states": ga.graph.n_states(),
                    "edges": ga.graph.n_edges(),
                    "identifiable_states": ga.fit.identifiable_states,
                    "converged": ga.fit.converged,
                    "action": ga.fit.action,
                    "pearson_r": ga.pair_test.pearson_r,
                    "pairwise_p": ga.pair_test.p_value,
                    "cycle_p": ga.cycle_test.p_value,
                    "entropy_production": ga.entropy.nats_per_transition,
                    "verdict": Verdict::of(ga),
                }),
                Err(reason) => json!({ "not_analysed": reason }),
            };
            merge(common, details)
        })
        .collect();
    let name = |i: usize| groups.groups[i].name.as_str();
    let correlations: Vec<Value> = groups
        .correlations
        .iter()
        .map(|c| {
            json!({
                "a": name(c.a),
                "b": name(c.b),
                "shared_states": c.shared_states,
                "pearson": c.pearson,
                "spearman": c.spearman,
            })
        })
        .collect();
    json!({
        "column": groups.column,
        "comparable_states": "identifiable in both groups and in the largest component of each",
        "groups": listed,
        "correlations": correlations,
    })
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Value::Object(a), Value::Object(b)) = (&mut a, b) {
        a.extend(b);
    }
    a
}

/// Writes each analysed group's tables and `report.json` into `dir/groups/COLUMN=VALUE/`.
pub(super) fn write(a: &Analysis, dir: &Path) -> Result<()> {
    let Some(groups) = &a.groups else {
        return Ok(());
    };
    for g in &groups.groups {
        let Ok(ga) = &g.analysis else { continue };
        let folder = dir.join("groups").join(folder(&groups.column, &g.name));
        std::fs::create_dir_all(&folder).map_err(|e| Error::Write {
            path: folder.clone(),
            message: e.to_string(),
        })?;
        write_atomic(&folder.join("potentials.parquet"), |f| {
            tables::write_potentials(ga, f)
        })?;
        write_atomic(&folder.join("pairs.parquet"), |f| {
            tables::write_pairs(ga, f)
        })?;
        write_atomic(&folder.join("cycles.parquet"), |f| {
            tables::write_cycles(ga, f)
        })?;
        let report = serde_json::to_vec_pretty(&report_json(ga)).expect("report serialises");
        write_atomic(&folder.join("report.json"), |mut f| {
            std::io::Write::write_all(&mut f, &report).map_err(|e| e.to_string())
        })?;
    }
    Ok(())
}

/// `COLUMN=VALUE`, with every byte of the value outside `[A-Za-z0-9_-]` (and a leading `.`)
/// written `%XX`; an empty value is Hive's `__HIVE_DEFAULT_PARTITION__`.
fn folder(column: &str, value: &str) -> String {
    let mut out = format!("{}=", escape(column));
    if value.is_empty() {
        out.push_str("__HIVE_DEFAULT_PARTITION__");
    } else {
        out.push_str(&escape(value));
    }
    out
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && !out.is_empty()) {
            out.push(b as char);
        } else {
            write!(out, "%{b:02X}").expect("writing to a String cannot fail");
        }
    }
    out
}

/// The summary's lines on groups: one per group, then the correlations.
pub(super) fn summary(groups: &GroupAnalyses) -> String {
    let mut s = String::new();
    let n = groups.groups.len();
    let _ = writeln!(
        s,
        "Groups     {n} group{} by `{}`",
        if n == 1 { "" } else { "s" },
        groups.column
    );
    for g in &groups.groups {
        let line = match &g.analysis {
            Ok(ga) => format!(
                "{} transitions, {} states identifiable; pairwise {}, cycles {}",
                thousands(g.transitions),
                thousands(ga.fit.identifiable_states as u64),
                p_text(ga.pair_test.p_value),
                p_text(ga.cycle_test.p_value),
            ),
            Err(reason) => format!("{} transitions; {reason}", thousands(g.transitions)),
        };
        let _ = writeln!(s, "           {}: {line}", g.name);
    }
    for c in &groups.correlations {
        let r = |x: Option<f64>| x.map_or("n/a".to_owned(), |x| format!("{x:.3}"));
        let _ = writeln!(
            s,
            "           V({}) ~ V({}): Pearson {}, Spearman {} on {} shared states",
            groups.groups[c.a].name,
            groups.groups[c.b].name,
            r(c.pearson),
            r(c.spearman),
            thousands(c.shared_states as u64),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_hive_escaped() {
        assert_eq!(folder("model", "claude-3.5"), "model=claude-3.5");
        assert_eq!(folder("model", "gpt/4o mini"), "model=gpt%2F4o%20mini");
        assert_eq!(folder("model", ".hidden"), "model=%2Ehidden");
        assert_eq!(folder("model", ""), "model=__HIVE_DEFAULT_PARTITION__");
    }
}
