//! Trajectory logs: one row per agent step (`run`, `step`, `state`) instead of one per
//! transition. Within each run, rows ordered by `step` (ties keep file order) give one transition
//! per consecutive pair `f → g`, a self-transition when `f = g`.
//!
//! Rows are kept until the whole dataset is read, because a run may span several files. The row
//! index of a pair (which orders states, see [`GraphBuilder`]) is that of its later row. A step
//! whose state is null (kept with `--drop-null-states`) is a gap: the run breaks there, and no
//! transition is made into it, out of it, or across it (`a, null, b` gives no `a → b`).

use super::group::Groups;
use super::table::NULL;
use crate::error::Result;
use crate::graph::GraphBuilder;

/// One step of one run.
struct Step {
    run: u32,
    step: i64,
    state: u32,
    row: u64,
    /// Group id with `--group-by`.
    group: Option<u32>,
}

/// The steps of every run read so far.
#[derive(Default)]
pub(super) struct Trajectory {
    steps: Vec<Step>,
}

impl Trajectory {
    /// Records that `run` was in `state` at `step`, read at global row index `row`, in `group`;
    /// a [`NULL`] state is a gap in the run.
    pub(super) fn push(&mut self, run: u32, step: i64, state: u32, row: u64, group: Option<u32>) {
        self.steps.push(Step {
            run,
            step,
            state,
            row,
            group,
        });
    }

    /// Adds one transition per consecutive pair of steps within a run to `graph`, and to the
    /// group of its later step in `groups`; returns how many.
    pub(super) fn add_pairs(
        mut self,
        graph: &mut GraphBuilder,
        mut groups: Option<&mut Groups>,
    ) -> Result<u64> {
        // Rows were pushed in read order, so `row` breaks ties between equal steps stably.
        self.steps.sort_unstable_by_key(|s| (s.run, s.step, s.row));
        let mut pairs = 0;
        for w in self.steps.windows(2) {
            if w[0].run == w[1].run && w[0].state != NULL && w[1].state != NULL {
                graph.add(w[0].state, w[1].state, 1, w[1].row)?;
                if let (Some(g), Some(groups)) = (w[1].group, groups.as_deref_mut()) {
                    groups.add(g, w[0].state, w[1].state, 1, w[1].row, graph)?;
                }
                pairs += 1;
            }
        }
        Ok(pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_follow_steps_within_runs() {
        let mut g = GraphBuilder::default();
        let [a, b, c] = ["a", "b", "c"].map(|s| g.intern(s));
        let mut t = Trajectory::default();
        // run 0: steps 2,0,1 → a(0) b(1) c(2): a→b, b→c; run 1: c, c → one self-transition.
        t.push(0, 2, c, 0, None);
        t.push(1, 5, c, 1, None);
        t.push(0, 0, a, 2, None);
        t.push(1, 6, c, 3, None);
        t.push(0, 1, b, 4, None);
        assert_eq!(t.add_pairs(&mut g, None).unwrap(), 3);
        let graph = g.finish();
        assert_eq!(graph.n_edges(), 2);
        assert_eq!(graph.self_transitions(), 1);
        // A pair takes the row of its second step: b→c row 0 (c's row), a→b row 4 (b's row).
        assert_eq!(graph.names, ["b", "c", "a"]);
    }

    #[test]
    fn a_null_state_breaks_its_run() {
        let mut g = GraphBuilder::default();
        let [a, b] = ["a", "b"].map(|s| g.intern(s));
        let mut t = Trajectory::default();
        // run 0: a, null, b → nothing; run 1: b, a → b → a.
        t.push(0, 0, a, 0, None);
        t.push(0, 1, NULL, 1, None);
        t.push(0, 2, b, 2, None);
        t.push(1, 0, b, 3, None);
        t.push(1, 1, a, 4, None);
        assert_eq!(t.add_pairs(&mut g, None).unwrap(), 1);
        let graph = g.finish();
        assert_eq!((graph.n_edges(), graph.self_transitions()), (1, 0));
    }
}
