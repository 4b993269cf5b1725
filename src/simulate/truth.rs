//! The truth sidecar: the planted potential, drive and attractors, as JSON.
//!
//! Same layout as the reference fixture `parity_driven.truth.json`, which [`read_truth`] also
//! reads (its `params` are the generator's own; unknown keys are ignored).

use super::model::Model;
use super::{SimMode, SimParams};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

/// Format tag written in [`Truth::format`].
pub const FORMAT: &str = "detbal-sim-truth/1";

const CONVENTION: &str = "pi(f) ~ exp(-V(f)); log T(f,g)/T(g,f) = V(f) - V(g) + D(f,g), D antisymmetric; \
     cycle affinity f->g->h->f = D(f,g)+D(g,h)+D(h,f). Unlisted edges have D=0.";

/// What was planted and what was written. `potential[i]` (JSON `V`) is the potential of
/// `states[i]` (of group `g0` when there are groups; `group_potentials[g]` has each group's).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Truth {
    pub format: String,
    pub mode: SimMode,
    pub seed: u64,
    pub rows: u64,
    pub n_states: u64,
    /// Always 1: only `βV` is identifiable.
    pub beta: f64,
    pub convention: String,
    /// The parameters of the generator that wrote the file (a [`SimParams`] for ours).
    pub params: serde_json::Value,
    pub graph: GraphInfo,
    pub states: Vec<String>,
    #[serde(rename = "V")]
    pub potential: Vec<f64>,
    /// Attractor states, most popular first.
    #[serde(default)]
    pub attractors: Vec<String>,
    pub drive: Drive,
    /// Group names `g0, g1, …` when `groups > 1`, else empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// `group_potentials[g][i]` = `V` of `states[i]` in group `g`, when `groups > 1`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_potentials: Vec<Vec<f64>>,
    pub stats: TruthStats,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphInfo {
    pub n_undirected_edges: u64,
    pub n_planted_triangles: u64,
    pub mean_degree: f64,
    pub max_degree: u64,
}

/// The non-conservative part `D` (empty unless the mode is driven).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Drive {
    /// `|D|` on a driven edge.
    pub eps: f64,
    /// `(a, b, D(a,b))`; `D(b,a) = −D(a,b)`; unlisted edges have `D = 0`.
    pub edges: Vec<(String, String, f64)>,
    /// The driven triangles.
    pub triangles: Vec<PlantedCycle>,
}

/// A planted cycle `a→b→c→a` and its affinity `D(a,b) + D(b,c) + D(c,a)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlantedCycle {
    pub cycle: [String; 3],
    pub affinity: f64,
}

/// Statistics of the written log. A state's visits = rows it is the source of + runs it ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TruthStats {
    pub rows: u64,
    pub runs: u64,
    pub self_rows: u64,
    pub states_seen: u64,
    pub states_seen_once: u64,
    pub frac_seen_once_of_seen: f64,
    pub states_as_source: u64,
    pub max_state_visits: u64,
}

impl Truth {
    /// The planted `V` by state name.
    pub fn potential_by_name(&self) -> HashMap<&str, f64> {
        self.states
            .iter()
            .map(String::as_str)
            .zip(self.potential.iter().copied())
            .collect()
    }

    /// The planted `V` of each of `names` (a graph's states, in its order); `None` when one of
    /// them was not planted.
    pub fn potential_of(&self, names: &[String]) -> Option<Vec<f64>> {
        let by_name = self.potential_by_name();
        names
            .iter()
            .map(|n| by_name.get(n.as_str()).copied())
            .collect()
    }

    pub(super) fn new(params: &SimParams, model: &Model, stats: TruthStats) -> Truth {
        let name = |i: u32| format!("s{i}");
        let eps = if params.mode == SimMode::Driven {
            params.drive
        } else {
            0.0
        };
        let drive = Drive {
            eps,
            edges: model
                .driven
                .iter()
                .flat_map(|&[a, b, c]| [(a, b), (b, c), (c, a)])
                .map(|(f, g)| (name(f), name(g), eps))
                .collect(),
            triangles: model
                .driven
                .iter()
                .map(|&[a, b, c]| PlantedCycle {
                    cycle: [name(a), name(b), name(c)],
                    affinity: 3.0 * eps,
                })
                .collect(),
        };
        let grouped = params.groups > 1;
        let degrees = model.offsets.windows(2).map(|w| w[1] - w[0]);
        Truth {
            format: FORMAT.to_string(),
            mode: params.mode,
            seed: params.seed,
            rows: params.rows,
            n_states: model.n as u64,
            beta: 1.0,
            convention: CONVENTION.to_string(),
            params: serde_json::to_value(params).expect("SimParams serialises"),
            graph: GraphInfo {
                n_undirected_edges: model.n_edges() as u64,
                n_planted_triangles: model.triangles.len() as u64,
                mean_degree: model.nbr.len() as f64 / model.n as f64,
                max_degree: degrees.max().unwrap_or(0) as u64,
            },
            states: (0..model.n as u32).map(name).collect(),
            potential: model.potential(0).to_vec(),
            attractors: model.attractors.iter().map(|&a| name(a)).collect(),
            drive,
            groups: if grouped {
                (0..params.groups).map(|g| format!("g{g}")).collect()
            } else {
                Vec::new()
            },
            group_potentials: if grouped {
                (0..params.groups)
                    .map(|g| model.potential(g).to_vec())
                    .collect()
            } else {
                Vec::new()
            },
            stats,
        }
    }
}

pub(super) fn write(truth: &Truth, path: &Path) -> Result<()> {
    let write_err = |message: String| Error::Write {
        path: path.to_path_buf(),
        message,
    };
    let file = std::fs::File::create(path).map_err(|e| write_err(e.to_string()))?;
    let mut out = std::io::BufWriter::new(file);
    serde_json::to_writer(&mut out, truth).map_err(|e| write_err(e.to_string()))?;
    out.write_all(b"\n")
        .and_then(|()| out.flush())
        .map_err(|e| write_err(e.to_string()))
}

/// Reads a truth sidecar written by [`super::simulate`] (or the reference fixture).
pub fn read_truth(path: &Path) -> Result<Truth> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let truth: Truth = serde_json::from_str(&text).map_err(|e| {
        Error::bad_input(path, format!("not a truth sidecar: {e}"))
            .hint("write one with `detbal simulate`")
    })?;
    let n = truth.states.len();
    if truth.potential.len() != n || truth.group_potentials.iter().any(|v| v.len() != n) {
        return Err(Error::bad_input(
            path,
            format!("expected one potential value per state ({n} states)"),
        ));
    }
    Ok(truth)
}
