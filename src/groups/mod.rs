//! `--group-by`: one analysis per group (model, prompt template, …) and the comparison of the
//! groups' potentials, the paper's claim that potentials "transcend architectures and prompt
//! templates" made a measurement.
//!
//! Potentials are defined up to one constant per strongly connected component (the gauge), so
//! two groups' potentials are comparable only where each is a single gauge group: the
//! correlation of groups `a` and `b` is taken over the states identifiable in both that lie in
//! the largest component of `a` and in the largest component of `b` ("shared states"); with a
//! ridge, which fixes the gauge, over the states identifiable in both (prior-dominated ones left
//! out). Pearson's
//! `r` of the values and Spearman's `ρ` (Pearson of average ranks) are given with that count.
//! Beside the correlations, [`shared`] tests whether one potential fits all groups' transitions.
//!
//! The pairs grow as the square of the groups (3,000 groups are 4.5 million pairs: before this
//! bound, 750 MB of report.json and a 9.2 GiB peak for 27,000 rows), so the correlations cover
//! at most [`MAX_CORRELATED_GROUPS`] groups, those with the most comparable states; the
//! shared-potential test still covers every analysed group.

pub mod shared;

use crate::analyze::{Analysis, AnalyzeSettings, analyze_graph};
use crate::backend::Backend;
use crate::error::Result;
use crate::fit::Identifiability;
use crate::graph::TransitionGraph;
use crate::io::InputSummary;
use crate::stats::{pearson, spearman};
use rustc_hash::FxHashMap;
use std::time::Instant;

/// Every group's analysis and the pairwise comparison of their potentials.
pub struct GroupAnalyses {
    /// The `--group-by` column (or partition key).
    pub column: String,
    pub groups: Vec<GroupAnalysis>,
    /// The analysed groups whose potentials are correlated pairwise (indices into `groups`,
    /// increasing): all of them up to [`MAX_CORRELATED_GROUPS`], else that many with the most
    /// comparable states (ties: more transitions, then the earlier group).
    pub correlated: Vec<usize>,
    /// One entry per pair `a < b` of `correlated` groups (indices into `groups`).
    pub correlations: Vec<GroupCorrelation>,
    /// One potential for all analysed groups against one each; `None` when no potential
    /// difference is seen in two groups.
    pub shared_potential: Option<shared::SharedPotentialTest>,
}

pub struct GroupAnalysis {
    pub name: String,
    /// Transitions of the group (counts summed, self-transitions included).
    pub transitions: u64,
    /// The group's analysis, or why it has none.
    pub analysis: std::result::Result<Analysis, String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct GroupCorrelation {
    pub a: usize,
    pub b: usize,
    /// States identifiable in both groups, in the largest component of each.
    pub shared_states: usize,
    pub pearson: Option<f64>,
    /// 95 % interval of `pearson` (Fisher's z, `tanh(atanh r ± 1.96/√(n − 3))`); `None` below
    /// four shared states or at `|r| = 1`.
    pub pearson_ci: Option<[f64; 2]>,
    pub spearman: Option<f64>,
}

/// Most groups whose potentials are correlated pairwise (1,225 pairs).
pub const MAX_CORRELATED_GROUPS: usize = 50;

/// Group names, Pearson correlations and shared-state counts, as square matrices.
pub type CorrelationMatrix = (Vec<String>, Vec<Vec<Option<f64>>>, Vec<Vec<usize>>);

impl GroupAnalyses {
    /// Names of the [`Self::correlated`] groups and the symmetric matrices of their Pearson
    /// correlations and shared-state counts (diagonal: 1 and the group's comparable states;
    /// `None` where undefined).
    pub fn correlation_matrix(&self) -> CorrelationMatrix {
        let k = self.correlated.len();
        let mut row = vec![usize::MAX; self.groups.len()];
        let mut r = vec![vec![None; k]; k];
        let mut shared = vec![vec![0; k]; k];
        for (i, &g) in self.correlated.iter().enumerate() {
            row[g] = i;
            if let Ok(a) = &self.groups[g].analysis {
                let n = main_component(a).len();
                (r[i][i], shared[i][i]) = ((n >= 2).then_some(1.0), n);
            }
        }
        for c in &self.correlations {
            let (a, b) = (row[c.a], row[c.b]);
            (r[a][b], r[b][a]) = (c.pearson, c.pearson);
            (shared[a][b], shared[b][a]) = (c.shared_states, c.shared_states);
        }
        let names = (self.correlated.iter())
            .map(|&g| self.groups[g].name.clone())
            .collect();
        (names, r, shared)
    }
}

/// Analyses each group's graph on `backend` with `settings`, then correlates the potentials.
pub fn analyze_groups(
    column: &str,
    graphs: Vec<(String, TransitionGraph)>,
    input: &InputSummary,
    backend: &dyn Backend,
    settings: &AnalyzeSettings,
) -> Result<GroupAnalyses> {
    let mut groups = Vec::with_capacity(graphs.len());
    for (name, graph) in graphs {
        let transitions = graph.out_count.iter().sum();
        let analysis = if graph.n_edges() == 0 {
            Err("not testable: no transitions between different states".to_owned())
        } else {
            let summary = InputSummary {
                rows: graph.rows,
                transitions,
                dropped_rows: 0,
                dropped_reasons: Vec::new(),
                runs: None,
                ..input.clone()
            };
            let start = Instant::now();
            Ok(analyze_graph(
                graph, summary, backend, settings, 0.0, start,
            )?)
        };
        groups.push(GroupAnalysis {
            name,
            transitions,
            analysis,
        });
    }
    let comparable: Vec<Option<FxHashMap<&str, f64>>> = groups
        .iter()
        .map(|g| g.analysis.as_ref().ok().map(|a| main_component(a)))
        .collect();
    let correlated = most_comparable(&groups, &comparable);
    let mut correlations = Vec::new();
    for (i, &a) in correlated.iter().enumerate() {
        for &b in &correlated[i + 1..] {
            if let (Some(va), Some(vb)) = (&comparable[a], &comparable[b]) {
                correlations.push(correlate(a, b, va, vb));
            }
        }
    }
    let graphs: Vec<&TransitionGraph> = groups
        .iter()
        .filter_map(|g| g.analysis.as_ref().ok().map(|a| &a.graph))
        .collect();
    let shared_potential = shared::shared_potential_test(&graphs, &settings.verdict)?;
    Ok(GroupAnalyses {
        column: column.to_owned(),
        groups,
        correlated,
        correlations,
        shared_potential,
    })
}

/// The analysed groups to correlate ([`GroupAnalyses::correlated`]).
fn most_comparable(
    groups: &[GroupAnalysis],
    comparable: &[Option<FxHashMap<&str, f64>>],
) -> Vec<usize> {
    let mut analysed: Vec<usize> = (0..groups.len())
        .filter(|&g| comparable[g].is_some())
        .collect();
    if analysed.len() > MAX_CORRELATED_GROUPS {
        let states = |g: usize| comparable[g].as_ref().map_or(0, FxHashMap::len);
        analysed.sort_by_key(|&g| {
            (
                std::cmp::Reverse(states(g)),
                std::cmp::Reverse(groups[g].transitions),
                g,
            )
        });
        analysed.truncate(MAX_CORRELATED_GROUPS);
        analysed.sort_unstable();
    }
    analysed
}

/// Potentials of the identifiable states in the largest component, by state name. A ridge fit
/// has no gauge (the prior fixes the level): all its states set by the data are comparable.
fn main_component(analysis: &Analysis) -> FxHashMap<&str, f64> {
    let potential = &analysis.potential;
    if analysis.fit.l2 > 0.0 {
        return (0..potential.value.len())
            .filter(|&s| potential.status[s] == Identifiability::Identifiable)
            .filter_map(|s| Some((analysis.graph.names[s].as_str(), potential.value[s]?)))
            .collect();
    }
    let mut sizes: FxHashMap<u32, usize> = FxHashMap::default();
    for (s, v) in potential.value.iter().enumerate() {
        if v.is_some() {
            *sizes.entry(potential.component[s]).or_default() += 1;
        }
    }
    // Largest, ties to the lowest component id.
    let Some(main) = sizes
        .iter()
        .max_by_key(|&(&c, &n)| (n, std::cmp::Reverse(c)))
        .map(|(&c, _)| c)
    else {
        return FxHashMap::default();
    };
    potential
        .value
        .iter()
        .enumerate()
        .filter(|&(s, _)| potential.component[s] == main)
        .filter_map(|(s, v)| Some((analysis.graph.names[s].as_str(), (*v)?)))
        .collect()
}

fn correlate(
    a: usize,
    b: usize,
    va: &FxHashMap<&str, f64>,
    vb: &FxHashMap<&str, f64>,
) -> GroupCorrelation {
    let mut shared: Vec<(&str, f64, f64)> = va
        .iter()
        .filter_map(|(name, &x)| Some((*name, x, *vb.get(name)?)))
        .collect();
    // Map order is arbitrary; sums in name order make the result reproducible to the bit.
    shared.sort_unstable_by(|p, q| p.0.cmp(q.0));
    let x: Vec<f64> = shared.iter().map(|p| p.1).collect();
    let y: Vec<f64> = shared.iter().map(|p| p.2).collect();
    let r = pearson(&x, &y);
    GroupCorrelation {
        a,
        b,
        shared_states: shared.len(),
        pearson: r,
        pearson_ci: r.and_then(|r| fisher_interval(r, shared.len())),
        spearman: spearman(&x, &y),
    }
}

/// The 95 % Fisher-z interval of a Pearson `r` over `n` pairs.
fn fisher_interval(r: f64, n: usize) -> Option<[f64; 2]> {
    use statrs::distribution::{ContinuousCDF, Normal};
    if n < 4 || r.abs() >= 1.0 {
        return None;
    }
    let z = Normal::standard().inverse_cdf(0.975) / ((n - 3) as f64).sqrt();
    Some([(r.atanh() - z).tanh(), (r.atanh() + z).tanh()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_is_over_shared_names_only() {
        let va: FxHashMap<&str, f64> = [("a", 1.0), ("b", 2.0), ("c", 3.0), ("x", 9.0)]
            .into_iter()
            .collect();
        let vb: FxHashMap<&str, f64> = [("a", 2.0), ("b", 4.0), ("c", 6.5), ("y", 0.0)]
            .into_iter()
            .collect();
        let c = correlate(0, 1, &va, &vb);
        assert_eq!(c.shared_states, 3);
        assert!(
            (c.pearson.unwrap() - 0.997_948_7).abs() < 1e-6,
            "{:?}",
            c.pearson
        );
        assert_eq!(c.spearman, Some(1.0));
        assert_eq!(c.pearson_ci, None, "three shared states");
    }

    #[test]
    fn the_fisher_interval_covers_r_and_narrows_with_n() {
        let [lo, hi] = fisher_interval(0.5, 28).unwrap();
        // atanh(0.5) = 0.5493, 1.96/5 = 0.392: tanh(0.1573), tanh(0.9413).
        assert!(
            (lo - 0.1560).abs() < 1e-3 && (hi - 0.7357).abs() < 1e-3,
            "{lo} {hi}"
        );
        let [lo2, hi2] = fisher_interval(0.5, 1003).unwrap();
        assert!(lo2 > lo && hi2 < hi && lo2 < 0.5 && hi2 > 0.5);
        assert_eq!(fisher_interval(1.0, 50), None);
    }
}
