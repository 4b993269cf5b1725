//! Whether a log's runs remember more than their current state: how often a run steps straight
//! back to the state it came from, against how often a Markov chain with the log's own kernel
//! would (docs/METHOD.md §4.5).
//!
//! Why: the verdict's null draws each pair's split independently given the fitted odds, which
//! is the sampling law of a Markov chain. An agent that works through a plan keeps its
//! direction: a walk that avoids stepping back is reversible (its path law is the same run
//! backwards), yet its runs go round the graph's cycles one way, and the verdict rejected 82 %
//! of such logs at α = 0.01 when half the steps avoided the way back (BENCHMARKS.md, "Logs that
//! are not Markov"). Stepping back is where that memory shows in counts the load can keep per
//! state.
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

/// Compares the back-steps of `returns` (state `i`'s is that of `graph`'s state `ids[i]`)
/// with a Markov chain's; `None` when no busy state has a path that could have gone back, or
/// one that could not have.
pub fn measure(graph: &TransitionGraph, returns: &[Returns], ids: &[u32]) -> Option<RunMemory> {
    // The busy states in the graph's order, so that the sums do not depend on the reader's ids
    // (which follow the order rows were read in, parts of a parallel read absorbed one by one).
    // Each with its moves out (self-transitions aside).
    let mut busy: Vec<(usize, u64, Returns)> = (ids.iter().zip(returns))
        .map(|(&g, &r)| {
            (
                g as usize,
                graph.out_count[g as usize] - graph.self_count[g as usize],
                r,
            )
        })
        .filter(|&(_, moves, r)| moves >= BUSY_MOVES && r.onward > 0)
        .collect();
    busy.sort_unstable_by_key(|&(g, ..)| g);
    let (mut paths, mut back) = (0, 0);
    let (mut expected, mut variance) = (0.0, 0.0);
    for &(g, moves, r) in &busy {
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
        busy_states: busy.len(),
        paths,
        back,
        expected_back: expected,
        ratio,
        z,
        remembers: z.abs() >= Z_LIMIT && (ratio - 1.0).abs() >= RATIO_LIMIT,
    })
}

/// Follows the rows of one reader in order and adds each path to its graph builder. A parallel
/// read's parts are stitched where they meet ([`PathScan::absorb`]), so that it finds the paths
/// of one sequential read.
#[derive(Debug, Default)]
pub(super) struct PathScan {
    /// The last move `(run, from, via)`, while the run may go on from `via`; `run` is the
    /// reader's own id of the run's label.
    last: Option<(u32, u32, u32)>,
    /// The run label of `last` (set at the end of each batch, [`PathScan::end_batch`]), which
    /// another reader's ids cannot be compared with.
    last_label: Option<String>,
    /// The batch row that set `last`, until its label is taken.
    last_row: Option<usize>,
    /// How this reader's rows began.
    head: Head,
}

/// How a reader's rows began, for the path that a previous reader's last move may continue.
#[derive(Debug, Default)]
enum Head {
    /// No row yet.
    #[default]
    Empty,
    /// So far only self-transitions at `state` in the run (`label`, and this reader's id).
    Stay { label: String, run: u32, state: u32 },
    /// The first move `state → target`, after only self-transitions at `state` in its run.
    Move {
        label: String,
        state: u32,
        target: u32,
    },
    /// Anything else: no path continues into this reader's rows.
    Closed,
}

impl PathScan {
    /// Row `row` of the batch: `source → target` in run `run` (any constant when the log has
    /// no runs), whose label `label` gives when asked.
    pub(super) fn row(
        &mut self,
        (row, run, source, target): (usize, u32, u32, u32),
        label: impl Fn(usize) -> String,
        graph: &mut GraphBuilder,
    ) {
        match &self.head {
            Head::Empty if source == target => {
                self.head = Head::Stay {
                    label: label(row),
                    run,
                    state: source,
                }
            }
            Head::Empty => {
                self.head = Head::Move {
                    label: label(row),
                    state: source,
                    target,
                }
            }
            Head::Stay {
                label,
                run: r,
                state,
            } => {
                self.head = match *r == run && *state == source {
                    true if source == target => return,
                    true => Head::Move {
                        label: label.clone(),
                        state: source,
                        target,
                    },
                    false => Head::Closed,
                }
            }
            Head::Move { .. } | Head::Closed => {}
        }
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
        self.last_row = self.last.map(|_| row);
    }

    /// A row that breaks every run (a null state, another file).
    pub(super) fn cut(&mut self) {
        self.last = None;
        self.last_row = None;
        self.last_label = None;
        if !matches!(self.head, Head::Move { .. }) {
            self.head = Head::Closed;
        }
    }

    /// After a batch: the run label of `last` if a row of this batch set it.
    pub(super) fn end_batch(&mut self, label: impl Fn(usize) -> String) {
        if let Some(row) = self.last_row.take() {
            self.last_label = Some(label(row));
        }
    }

    /// Takes over from `later`, the reader of the rows that follow this one's; `ids`: the id in
    /// this reader's graph of each state of `later`'s ([`GraphBuilder::absorb`]). The path from
    /// this reader's last move into `later`'s first is added to `graph`. Run ids are the
    /// readers' own: after this, `last` is compared by label only (by the next `absorb`).
    pub(super) fn absorb(&mut self, later: PathScan, ids: &[u32], graph: &mut GraphBuilder) {
        if matches!(self.head, Head::Empty) {
            self.head = Head::Closed;
        }
        let continues = |label: &str, state: u32| {
            (self.last.zip(self.last_label.as_deref()))
                .filter(|&((_, _, via), l)| l == label && via == ids[state as usize])
                .map(|((_, from, via), _)| (from, via))
        };
        let carried = match &later.head {
            Head::Empty => true,
            // Only self-transitions: the run stays where this reader's last move left it.
            Head::Stay { label, state, .. } => continues(label, *state).is_some(),
            Head::Move {
                label,
                state,
                target,
            } => {
                if let Some((from, via)) = continues(label, *state) {
                    graph.add_path(from, via, ids[*target as usize]);
                }
                false
            }
            Head::Closed => false,
        };
        if !carried {
            // `u32::MAX`: no run id of this reader's own rows (every later row is another
            // file's, after a cut, or another reader's, compared by label).
            self.last = (later.last)
                .map(|(_, from, via)| (u32::MAX, ids[from as usize], ids[via as usize]));
            self.last_label = later.last_label;
        }
        self.last_row = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows `(run, source, target)` by name, each run's label its number.
    const ROWS: [(u32, &str, &str); 9] = [
        (0, "a", "c"),
        (0, "c", "c"),
        (0, "c", "a"),
        (0, "a", "d"),
        (1, "d", "a"),
        (1, "c", "d"),
        (1, "d", "d"),
        (1, "d", "c"),
        (1, "c", "c"),
    ];

    /// Scans `rows` into `b` with `scan`, as one batch.
    fn scan_into(scan: &mut PathScan, b: &mut GraphBuilder, rows: &[(u32, &str, &str)]) {
        for (i, &(run, s, t)) in rows.iter().enumerate() {
            let (s, t) = (b.intern(s), b.intern(t));
            let label = |i: usize| rows[i].0.to_string();
            scan.row((i, run, s, t), label, b);
        }
        scan.end_batch(|i| rows[i].0.to_string());
    }

    /// `(onward, back)` of a, c and d in the graph `b` builds.
    fn returns_by_name(b: GraphBuilder) -> Vec<(u64, u64)> {
        let (graph, returns, ids) = b.finish_with_returns(crate::graph::StateOrder::Name);
        let at = |n: &str| {
            let g = graph.names.iter().position(|x| x == n).unwrap() as u32;
            let i = ids.iter().position(|&id| id == g).unwrap();
            returns.get(i).copied().unwrap_or_default()
        };
        ["a", "c", "d"].map(|n| (at(n).onward, at(n).back)).to_vec()
    }

    /// Paths are counted through self-transitions, not across runs or gaps; one read split in
    /// two anywhere and stitched counts the same paths.
    #[test]
    fn paths_follow_runs_through_self_transitions_and_across_readers() {
        let mut b = GraphBuilder::default();
        scan_into(&mut PathScan::default(), &mut b, &ROWS);
        // Run 0: a → c → (c) → a is a back-step at c, c → a → d onward at a; run 1 starts at
        // d (no path across the runs), then a gap (c is not where the run stood), then
        // c → d → (d) → c, a back-step at d.
        let whole = returns_by_name(b);
        assert_eq!(whole, [(1, 0), (1, 1), (1, 1)]);
        for at in 0..=ROWS.len() {
            let (mut first, mut b) = (PathScan::default(), GraphBuilder::default());
            scan_into(&mut first, &mut b, &ROWS[..at]);
            let (mut later, mut b2) = (PathScan::default(), GraphBuilder::default());
            scan_into(&mut later, &mut b2, &ROWS[at..]);
            let ids = b.absorb(b2).unwrap();
            first.absorb(later, &ids, &mut b);
            assert_eq!(returns_by_name(b), whole, "split at {at}");
        }
        // A cut (a null state) stops the path from a → d on.
        let (mut scan, mut b) = (PathScan::default(), GraphBuilder::default());
        scan_into(&mut scan, &mut b, &ROWS[..3]);
        scan.cut();
        scan_into(&mut scan, &mut b, &ROWS[3..]);
        assert_eq!(returns_by_name(b), [(0, 0), (1, 1), (1, 1)]);
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
        let (graph, returns, ids) = b.finish_with_returns(crate::graph::StateOrder::Name);
        let m = measure(&graph, &returns, &ids).unwrap();
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
