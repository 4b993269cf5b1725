//! Whether a log's runs remember more than their current state: how often a run steps straight
//! back to the state it came from, against how often a Markov chain with the log's own kernel
//! would (docs/METHOD.md §4.5).
//!
//! Why: the verdict's null draws each pair's split independently given the fitted odds, which
//! is the sampling law of a Markov chain. An agent that works through a plan keeps its
//! direction: a walk that avoids stepping back is reversible (its path law is the same run
//! backwards), yet its runs go round the graph's cycles one way, and the verdict rejected 82 %
//! of such logs at α = 0.01 (BENCHMARKS.md, "Logs that are not Markov"). Stepping back is where
//! that memory shows in counts the load can keep per state.
//!
//! While the rows are read, [`PathScan`] finds each run's move `f → g` followed (self-
//! transitions aside) by a move `g → h` and counts per `g` how many (`onward`) and how many with
//! `h = f` (`back`, [`Returns`]). A Markov chain's next move ignores `f`: given the arrivals,
//! `E back_g = onward_g Σ_f q(f→g) p(g→f)`, `q` the share of `g`'s arrivals from `f` and `p` the
//! share of its moves to `f`, both from the log's counts. Plugged in on a state left a few times
//! that expectation is biased (a run that left `g` for `f` tends to come back from `f`, which
//! ties `p` to the arrivals; llm-hard-1M, a Markov log: 0.86 of the expectation over all
//! states), so only states left at least [`BUSY_MOVES`] times are compared (1.03 there).
//! Without a run column consecutive rows that chain (`g` the next row's source) count as a run:
//! under a Markov chain their next move ignores `f` too, so the expectation holds; a log with a
//! count column has no order to read and gets no measure.

use crate::graph::{GraphBuilder, Returns, TransitionGraph};

/// States compared: those left for another state at least this often.
pub const BUSY_MOVES: u64 = 100;

/// The log is said to remember when the back-steps are this many standard errors…
pub const Z_LIMIT: f64 = 5.0;
/// …and this far, relatively, from the Markov expectation.
pub const RATIO_LIMIT: f64 = 0.1;

/// Back-steps of the busy states against a Markov chain's.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunMemory {
    /// States left at least [`BUSY_MOVES`] times with a path through them.
    pub busy_states: usize,
    /// Paths `f → g → h` through them.
    pub paths: u64,
    /// Of those, `h = f`.
    pub back: u64,
    /// The Markov expectation of `back`, and `back` over it.
    pub expected_back: f64,
    pub ratio: f64,
    /// `(back − expected) / sd`, the binomial standard deviation given the arrivals.
    pub z: f64,
    /// `|z| ≥ Z_LIMIT` and `|ratio − 1| ≥ RATIO_LIMIT`.
    pub remembers: bool,
}

/// Compares the back-steps of `returns` (per state of `graph`) with a Markov chain's; `None`
/// when no busy state has a path that could have gone back, or one that could not have.
pub fn measure(graph: &TransitionGraph, returns: &[Returns]) -> Option<RunMemory> {
    let (mut busy_states, mut paths, mut back) = (0, 0, 0);
    let (mut expected, mut variance) = (0.0, 0.0);
    for (g, r) in returns.iter().enumerate() {
        let moves = graph.out_count[g] - graph.self_count[g];
        if moves < BUSY_MOVES || r.onward == 0 {
            continue;
        }
        busy_states += 1;
        paths += r.onward;
        back += r.back;
        let arrivals = graph.in_count[g] as f64;
        for &e in &graph.in_edges[graph.in_ptr[g]..graph.in_ptr[g + 1]] {
            let reverse = graph.reverse[e as usize];
            if reverse == crate::graph::NO_EDGE {
                continue;
            }
            let q = graph.count[e as usize] as f64 / arrivals;
            let p = graph.count[reverse as usize] as f64 / moves as f64;
            expected += r.onward as f64 * q * p;
            variance += r.onward as f64 * q * p * (1.0 - p);
        }
    }
    if variance <= 0.0 {
        return None;
    }
    let z = (back as f64 - expected) / variance.sqrt();
    let ratio = back as f64 / expected;
    Some(RunMemory {
        busy_states,
        paths,
        back,
        expected_back: expected,
        ratio,
        z,
        remembers: z.abs() >= Z_LIMIT && (ratio - 1.0).abs() >= RATIO_LIMIT,
    })
}

/// Follows the rows of one reader in order and adds each path to its graph builder.
#[derive(Debug, Default)]
pub(super) struct PathScan {
    /// The last move `(run, from, via)`, while the run may go on from `via`.
    last: Option<(u32, u32, u32)>,
}

impl PathScan {
    /// The next row of run `run` (any constant when the log has no runs): `source → target`.
    pub(super) fn row(&mut self, run: u32, source: u32, target: u32, graph: &mut GraphBuilder) {
        if let Some((last_run, from, via)) = self.last
            && last_run == run
            && via == source
        {
            if source == target {
                return;
            }
            graph.add_path(from, via, target);
        }
        self.last = (source != target).then_some((run, source, target));
    }

    /// A row that breaks every run (a null state, another file).
    pub(super) fn cut(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Paths are counted through self-transitions, not across runs, gaps or cuts.
    #[test]
    fn paths_follow_runs_through_self_transitions() {
        let mut b = GraphBuilder::default();
        let [a, c, d] = ["a", "c", "d"].map(|n| b.intern(n));
        let mut scan = PathScan::default();
        // Run 0: a → c, c → c, c → a (back at c), a → d (onward at a).
        for (s, t) in [(a, c), (c, c), (c, a), (a, d)] {
            scan.row(0, s, t, &mut b);
        }
        // Run 1 starts at d: no path through d across the runs.
        scan.row(1, d, a, &mut b);
        // A gap in run 1 (c is not where it stood), then a cut.
        scan.row(1, c, d, &mut b);
        scan.cut();
        scan.row(1, d, c, &mut b);
        let (graph, returns) = b.finish_with_returns(crate::graph::StateOrder::Name);
        let id = |n: &str| graph.names.iter().position(|x| x == n).unwrap();
        let onward: Vec<(u64, u64)> = ["a", "c", "d"]
            .iter()
            .map(|n| (returns[id(n)].onward, returns[id(n)].back))
            .collect();
        assert_eq!(onward, [(1, 0), (1, 1), (0, 0)]);
    }

    /// On a star whose centre is left 200 times for two leaves, a Markov chain's expected
    /// back-steps follow the leaves' shares.
    #[test]
    fn the_expectation_is_the_kernels() {
        let mut b = GraphBuilder::default();
        let [x, l, r] = ["x", "l", "r"].map(|n| b.intern(n));
        // x → l 150 times, x → r 50 times; each leaf returns to x.
        b.add(x, l, 150, 0).unwrap();
        b.add(x, r, 50, 1).unwrap();
        b.add(l, x, 150, 2).unwrap();
        b.add(r, x, 50, 3).unwrap();
        // 100 paths through x: 60 arrived from l (45 went back), 40 from r (5 went back).
        for (from, other, n, back) in [(l, r, 60, 45), (r, l, 40, 5)] {
            for k in 0..n {
                b.add_path(from, x, if k < back { from } else { other });
            }
        }
        let (graph, returns) = b.finish_with_returns(crate::graph::StateOrder::FirstAppearance);
        let m = measure(&graph, &returns).unwrap();
        // q(l→x) = 0.75, p(x→l) = 0.75; q(r→x) = 0.25, p(x→r) = 0.25.
        let expected = 100.0 * (0.75 * 0.75 + 0.25 * 0.25);
        assert_eq!((m.busy_states, m.paths, m.back), (1, 100, 50));
        assert!((m.expected_back - expected).abs() < 1e-9);
        let sd = (100.0f64 * (0.75 * 0.75 * 0.25 + 0.25 * 0.25 * 0.75)).sqrt();
        assert!((m.z - (50.0 - expected) / sd).abs() < 1e-9);
        // 0.8 of the expectation, but only 2.9 standard errors below it: not enough to say.
        assert!(!m.remembers, "{m:?}");
    }
}
