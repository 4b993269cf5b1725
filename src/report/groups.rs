//! The `--group-by` outputs: a `groups` section in `report.json` (each group's verdict and main
//! numbers, and the cross-group potential correlations), one folder per group with that group's
//! own tables and `report.json`, and the summary's `Groups` lines.
//!
//! Group folders are named Hive-style, `groups/COLUMN=VALUE/` (the value percent-escaped as Hive
//! and Spark do), so `groups/` is itself a partitioned dataset: `groups/*/potentials.parquet`
//! reads as one table with the group as a partition key. Every group gets its own folder, of at
//! most [`MAX_FOLDER`] bytes (file systems allow 255): the empty value is Hive's
//! `__HIVE_DEFAULT_PARTITION__`, so a value spelt that way is written `%5F_HIVE_DEFAULT_PARTITION__`
//! (which decodes to it); a name longer than the bound is cut (never inside a `%XX`) and ends in
//! `~` and 16 hex digits of the value's BLAKE3 hash, as do names that differ only in letter case
//! (one folder on case-insensitive file systems). `~` is escaped in values, so such a name
//! cannot be another group's. The exact value is in the `groups` section (`name`, with the
//! `directory`) and in the group's own report.json (`group`: `column`, `value`).

use super::atomic::write_atomic;
use super::json::analysis_json;
use super::{Verdict, p_text, thousands};
use crate::error::{Error, Result};
use crate::groups::GroupAnalyses;
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::Path;

/// The `groups` section of `report.json`.
pub(super) fn json(groups: &GroupAnalyses) -> Value {
    let folders = folders(groups);
    let listed: Vec<Value> = groups
        .groups
        .iter()
        .zip(&folders)
        .map(|(g, folder)| {
            let common = json!({
                "name": g.name,
                "transitions": g.transitions,
                "directory": format!("groups/{folder}"),
            });
            let details = match &g.analysis {
                Ok(ga) => json!({
                    "states": ga.graph.n_states(),
                    "edges": ga.graph.n_edges(),
                    "identifiable_states": ga.fit.identifiable_states,
                    "prior_dominated_states": ga.fit.prior_dominated_states,
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
                "pearson_ci": c.pearson_ci,
                "spearman": c.spearman,
            })
        })
        .collect();
    json!({
        "column": groups.column,
        "comparable_states": "identifiable in both groups and in the largest component of each",
        "groups": listed,
        "correlated_groups": groups.correlated.iter().map(|&g| name(g)).collect::<Vec<_>>(),
        "correlations": correlations,
        "shared_potential_test": groups.shared_potential,
    })
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Value::Object(a), Value::Object(b)) = (&mut a, b) {
        a.extend(b);
    }
    a
}

/// Writes each analysed group's tables (those of the whole log: potentials, pairs, splits,
/// cycles, fundamental cycles, and the null samples when resampled) and `report.json` into
/// `dir/groups/COLUMN=VALUE/`.
pub(super) fn write(groups: &GroupAnalyses, dir: &Path) -> Result<()> {
    for (g, name) in groups.groups.iter().zip(folders(groups)) {
        let Ok(ga) = &g.analysis else { continue };
        let folder = dir.join("groups").join(&name);
        std::fs::create_dir_all(&folder).map_err(|e| Error::Write {
            path: folder.clone(),
            message: e.to_string(),
        })?;
        // The same tables as the whole log's, so `groups/*/NAME.parquet` read as one table.
        super::write_analysis_tables(ga, &folder)?;
        let mut report = analysis_json(ga, None);
        if let Value::Object(fields) = &mut report {
            fields.insert(
                "group".into(),
                json!({
                    "column": groups.column,
                    "value": g.name,
                    "directory": format!("groups/{name}"),
                }),
            );
        }
        let report = serde_json::to_vec_pretty(&report).expect("report serialises");
        write_atomic(&folder.join("report.json"), |mut f| {
            std::io::Write::write_all(&mut f, &report).map_err(|e| e.to_string())
        })?;
    }
    Ok(())
}

/// Longest group folder name, in bytes.
const MAX_FOLDER: usize = 200;

/// Hive's name of the empty (null) partition value.
const HIVE_DEFAULT: &str = "__HIVE_DEFAULT_PARTITION__";

/// The folder of each group, in order: unique (also ignoring letter case) and bounded.
fn folders(groups: &GroupAnalyses) -> Vec<String> {
    let mut names: Vec<String> = groups
        .groups
        .iter()
        .map(|g| folder(&groups.column, &g.name))
        .collect();
    let lower: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
    for (i, g) in groups.groups.iter().enumerate() {
        let clash = lower.iter().filter(|&l| *l == lower[i]).count() > 1;
        if clash && !names[i].contains('~') {
            names[i] = hashed(&names[i], &g.name);
        }
    }
    names
}

/// `COLUMN=VALUE`, with every byte of the value outside `[A-Za-z0-9_-]` (and a leading `.`)
/// written `%XX`; an empty value is Hive's `__HIVE_DEFAULT_PARTITION__` and that value spelt
/// out is `%5F_HIVE_DEFAULT_PARTITION__`; cut and hashed beyond [`MAX_FOLDER`] bytes.
fn folder(column: &str, value: &str) -> String {
    let mut out = format!("{}=", escape(column));
    if value.is_empty() {
        out.push_str(HIVE_DEFAULT);
    } else if value == HIVE_DEFAULT {
        out.push_str("%5F");
        out.push_str(&value[1..]);
    } else {
        out.push_str(&escape(value));
    }
    if out.len() > MAX_FOLDER {
        out = hashed(&out, value);
    }
    out
}

/// `name` cut to leave room for `~` and 16 hex digits of the BLAKE3 hash of `value`.
fn hashed(name: &str, value: &str) -> String {
    let hash = blake3::hash(value.as_bytes()).to_hex();
    // Escaped names are ASCII; a cut never splits a `%XX`.
    let mut cut = name.len().min(MAX_FOLDER - 17);
    for back in 1..=2 {
        if cut >= back && name.as_bytes()[cut - back] == b'%' {
            cut -= back;
            break;
        }
    }
    format!("{}~{}", &name[..cut], &hash[..16])
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

/// Most lines of groups, and of correlations, in the summary.
const SUMMARY_LINES: usize = 20;

/// The `max` of the items `0..n` with the greatest `key` (ties: the earlier), in item order.
fn largest<K: Ord>(n: usize, max: usize, key: impl Fn(usize) -> K) -> Vec<usize> {
    let mut items: Vec<usize> = (0..n).collect();
    if n > max {
        items.sort_by_key(|&i| (std::cmp::Reverse(key(i)), i));
        items.truncate(max);
        items.sort_unstable();
    }
    items
}

/// The summary's line for `left` items not listed, if any.
fn more_lines(t: &mut super::summary::Text, left: usize, what: &str) {
    if left > 0 {
        t.more(&format!("… and {} more {what}", thousands(left as u64)));
    }
}

/// The summary's block on groups: a row per group (its verdict's p-value, and whether its fit
/// or bootstrap did not converge), then the correlations; at most [`SUMMARY_LINES`] of each
/// (the groups with the most transitions, the pairs with the most shared states, in their
/// order), the rest counted.
pub(super) fn summary(t: &mut super::summary::Text, groups: &GroupAnalyses) {
    let n = groups.groups.len();
    t.block(
        "Groups",
        &format!(
            "{} by `{}`, each in groups/{}=VALUE/",
            super::counted(n as u64, "group"),
            super::printable(&groups.column),
            super::printable(&groups.column),
        ),
    );
    let listed = largest(groups.groups.len(), SUMMARY_LINES, |g| {
        groups.groups[g].transitions
    });
    for &g in &listed {
        let g = &groups.groups[g];
        let line = match &g.analysis {
            Ok(ga) => {
                let verdict = Verdict::of(ga);
                let (fit, by_prior) = (&ga.fit, ga.fit.prior_dominated_states);
                let mut line = format!(
                    "{} transitions, {} states identifiable{}; verdict {}",
                    thousands(g.transitions),
                    thousands((fit.identifiable_states - by_prior) as u64),
                    if by_prior > 0 {
                        format!(
                            " ({} more valued mostly by the prior)",
                            thousands(by_prior as u64)
                        )
                    } else {
                        String::new()
                    },
                    match verdict.rejected {
                        Some(true) => format!("rejected ({})", p_text(verdict.p_value)),
                        Some(false) => format!("consistent ({})", p_text(verdict.p_value)),
                        None if verdict.p_value.is_some() => format!(
                            "undecided (pairs too sparse; approximate {})",
                            p_text(verdict.p_value)
                        ),
                        None => "not testable (no independent cycle)".to_string(),
                    },
                );
                if !fit.converged {
                    line.push_str("; fit NOT CONVERGED");
                }
                let bootstrap = ga.resampling.as_ref().and_then(|r| r.bootstrap.as_ref());
                if let Some(b) = bootstrap.filter(|b| b.not_converged > 0) {
                    let _ = write!(line, "; {} bootstrap refits NOT CONVERGED", b.not_converged);
                }
                line
            }
            Err(reason) => format!("{} transitions; {reason}", thousands(g.transitions)),
        };
        t.more(&format!("{}: {line}", super::printable(&g.name)));
    }
    more_lines(
        t,
        groups.groups.len() - listed.len(),
        "groups, none larger (report.json `groups.groups`)",
    );
    let analysed = groups.groups.iter().filter(|g| g.analysis.is_ok()).count();
    if groups.correlated.len() < analysed {
        t.more(&format!(
            "Correlations over the {} groups with the most comparable states, of {} analysed",
            groups.correlated.len(),
            thousands(analysed as u64),
        ));
    }
    let pairs = &groups.correlations;
    let listed = largest(pairs.len(), SUMMARY_LINES, |c| pairs[c].shared_states);
    for &c in &listed {
        let c = &pairs[c];
        let r = |x: Option<f64>| x.map_or("n/a".to_owned(), |x| format!("{x:.3}"));
        let ci = c
            .pearson_ci
            .map_or(String::new(), |[lo, hi]| format!(" [{lo:.3}, {hi:.3}]"));
        t.more(&format!(
            "V({}) ~ V({}): Pearson {}{ci}, Spearman {} on {} shared states",
            super::printable(&groups.groups[c.a].name),
            super::printable(&groups.groups[c.b].name),
            r(c.pearson),
            r(c.spearman),
            thousands(c.shared_states as u64),
        ));
    }
    more_lines(
        t,
        pairs.len() - listed.len(),
        "pairs, none with more shared states (report.json `groups.correlations`)",
    );
    // Every group is analysed with the same settings.
    let alpha = groups.groups.iter().find_map(|g| g.analysis.as_ref().ok());
    let alpha = alpha.map_or(0.05, |a| a.settings.alpha);
    t.more(&match &groups.shared_potential {
        Some(s) => format!(
            "One shared potential: {}, {} (LR {:.1} on {} df; {}, {} resamples)",
            if s.p_value < alpha {
                "rejected"
            } else {
                "not rejected"
            },
            p_text(Some(s.p_value)),
            s.statistic,
            s.df,
            s.calibration.describe(),
            s.resamples,
        ),
        None => "One shared potential: not testable (no potential difference seen in two groups)"
            .to_owned(),
    });
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
        assert_eq!(
            folder("model", "__HIVE_DEFAULT_PARTITION__"),
            "model=%5F_HIVE_DEFAULT_PARTITION__"
        );
        assert_eq!(folder("model", "a~b"), "model=a%7Eb");
    }

    #[test]
    fn long_names_are_cut_and_hashed_without_splitting_an_escape() {
        // "model=" and 176 or 175 bytes put a `%` one or two bytes before the cut.
        let near_cut = |n: usize| format!("{}/{}", "y".repeat(n), "z".repeat(50));
        for value in [
            "x".repeat(1000),
            "é".repeat(300),
            near_cut(176),
            near_cut(175),
        ] {
            let name = folder("model", &value);
            assert!(name.len() <= MAX_FOLDER, "{name}");
            let (kept, hash) = name.split_once('~').unwrap();
            assert_eq!(hash.len(), 16);
            assert!(
                !kept.ends_with('%') && !kept[..kept.len() - 1].ends_with('%'),
                "{name}"
            );
        }
        assert_ne!(
            folder("m", &"x".repeat(1000)),
            folder("m", &"x".repeat(1001))
        );
    }
}
