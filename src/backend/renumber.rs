//! The fit's state order: states renumbered breadth first over the edges, and the edges
//! grouped by source in that order, so that the passes over the edges, the spanning forest's
//! construction and its solves touch nearby states together. The potential's fit
//! (`fit::minimize_over`) builds its problem in this order and drops the first one, for every
//! backend; the CPU backend renumbers any other problem it is given (a copy beside it).
//!
//! On a large graph the states' vectors outgrow the core's cache, and in the log's order
//! (states numbered as first seen) every edge reads two distant entries: on llm-hard-10M
//! (1.39 M states) a pass cost 27× that of llm-hard-1M for 9× the edges (BENCHMARKS.md,
//! "Fitting the hard log"). Building the renumbered problem costs a few passes (about four on
//! llm-hard-10M, by `perf`); for the potential's fit the first copy is dropped before the
//! solver starts (the 1e8-row log's problem is some 60 MB).

use crate::backend::problem::ActionProblem;
use crate::error::Result;

/// A problem with its states renumbered; `old_of_new[i]` is the original number of state `i`.
pub struct Renumbered {
    pub problem: ActionProblem,
    pub old_of_new: Vec<u32>,
}

impl Renumbered {
    pub fn new(problem: &ActionProblem) -> Result<Self> {
        let old_of_new = breadth_first(problem);
        let mut new_of_old = vec![0u32; problem.n_states];
        for (new, &old) in old_of_new.iter().enumerate() {
            new_of_old[old as usize] = new as u32;
        }
        let m = problem.n_edges();
        let (mut src, mut dst, mut weight) = (
            Vec::with_capacity(m),
            Vec::with_capacity(m),
            Vec::with_capacity(m),
        );
        for (new, &old) in old_of_new.iter().enumerate() {
            for &entry in problem.incident(old as usize) {
                if entry & 1 == 0 {
                    let e = (entry >> 1) as usize;
                    src.push(new as u32);
                    dst.push(new_of_old[problem.dst[e] as usize]);
                    weight.push(problem.weight[e]);
                }
            }
        }
        let mut renumbered = ActionProblem::new(problem.n_states, src, dst, weight, problem.l2)?;
        renumbered.breadth_first = true;
        if !problem.prior_mean.is_empty() {
            let mean = old_of_new.iter().map(|&f| problem.prior_mean[f as usize]);
            renumbered = renumbered.with_prior_mean(mean.collect());
        }
        Ok(Renumbered {
            problem: renumbered,
            old_of_new,
        })
    }

    /// `x` (original numbering) in the new numbering.
    pub fn to_new(&self, x: &[f64]) -> Vec<f64> {
        self.old_of_new.iter().map(|&f| x[f as usize]).collect()
    }

    /// `x` (new numbering) in the original numbering.
    pub fn to_old(&self, x: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; x.len()];
        for (&f, &v) in self.old_of_new.iter().zip(x) {
            out[f as usize] = v;
        }
        out
    }
}

/// The states in breadth-first order over the edges (either direction), each component from
/// its lowest-numbered state.
fn breadth_first(problem: &ActionProblem) -> Vec<u32> {
    let n = problem.n_states;
    let mut seen = vec![false; n];
    let mut order = Vec::with_capacity(n);
    for root in 0..n {
        if seen[root] {
            continue;
        }
        seen[root] = true;
        let mut head = order.len();
        order.push(root as u32);
        while head < order.len() {
            let f = order[head] as usize;
            head += 1;
            for &entry in problem.incident(f) {
                let g = problem.other_end(entry);
                if !seen[g] {
                    seen[g] = true;
                    order.push(g as u32);
                }
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The renumbered problem has the same edges (up to the numbering), and vectors go there
    /// and back unchanged.
    #[test]
    fn keeps_every_edge_and_round_trips_vectors() {
        // 0 → 3, 3 → 1, 1 ⇄ 3, 2 isolated, 4 → 0.
        let p = ActionProblem::new(
            5,
            vec![0, 3, 1, 3, 4],
            vec![3, 1, 3, 0, 0],
            vec![1.0, 2.0, 3.0, 4.0, 5.0],
            0.0,
        )
        .unwrap();
        let r = Renumbered::new(&p).unwrap();
        assert_eq!(r.old_of_new, [0, 3, 4, 1, 2]);
        let mut original: Vec<_> = (0..5).map(|e| (p.src[e], p.dst[e], p.weight[e])).collect();
        let mut back: Vec<_> = (0..5)
            .map(|e| {
                let q = &r.problem;
                (
                    r.old_of_new[q.src[e] as usize],
                    r.old_of_new[q.dst[e] as usize],
                    q.weight[e],
                )
            })
            .collect();
        original.sort_by(|a, b| a.partial_cmp(b).unwrap());
        back.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(original, back);
        assert_eq!(r.problem.n_components, 2);
        let x = [0.5, -1.0, 2.0, 3.0, 7.0];
        assert_eq!(r.to_old(&r.to_new(&x)), x);
    }
}
