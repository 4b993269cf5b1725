//! The transition graph: state dictionary, counts `n(f→g)`, `N(f)`, CSR adjacency by source and
//! by target, reciprocal pairs and strongly connected components.
//!
//! Conventions (docs/METHOD.md §1): a transition `f → g`, `f ≠ g`, is an edge; a self-transition
//! `f → f` counts in `N(f)` ([`TransitionGraph::out_count`]) and is never an edge.
//!
//! [`GraphBuilder::finish`] numbers states in the reference code's node order, so that `--paper`
//! can reproduce it: in order of first appearance in a transition with `source ≠ target`
//! (source before target within a row), then states seen only in self-transitions, in order of
//! first appearance. The analysis runs on states in name order ([`StateOrder::Name`]).
//!
//! ```
//! use detbal::graph::GraphBuilder;
//! let mut b = GraphBuilder::default();
//! let (a, c) = (b.intern("a"), b.intern("c"));
//! b.add(a, c, 3, 0).unwrap();
//! b.add(c, a, 1, 1).unwrap();
//! b.add(a, a, 2, 2).unwrap();
//! let g = b.finish();
//! assert_eq!(g.n_edges(), 2);
//! assert_eq!(g.out_count[0], 5); // N(a) = 3 + 2 self-transitions
//! ```

use crate::error::{Error, Result};
use crate::tables::{NameTable, Tally, TallyTable};
use rayon::prelude::*;
use std::sync::Arc;

/// Accumulates transitions row by row; [`GraphBuilder::finish`] yields the [`TransitionGraph`].
#[derive(Default)]
pub struct GraphBuilder {
    names: NameTable,
    /// Transitions between different states, by `source << 32 | target`.
    tallies: TallyTable,
    /// Self-transitions by state (count 0: none yet): agents often repeat a state, and a vector
    /// costs no hash per row.
    self_tallies: Vec<Tally>,
    /// Tallies of absorbed builders (by `source << 32 | target`, in this builder's ids), not
    /// summed with `tallies` until [`GraphBuilder::finish`]: one pass over them there costs less
    /// than a hash lookup each on the one thread that merges the parts of a parallel read.
    absorbed: Vec<(u64, Tally)>,
    /// Per state `g`: the moves into `g` that their run follows with a move out of `g`, and how
    /// many of those went straight back ([`Returns`]).
    returns: Vec<Returns>,
    rows: u64,
    /// Sum of every count added: checked, so that no later sum of counts (`N(f)`, totals) can
    /// overflow.
    total: u64,
}

impl GraphBuilder {
    /// The id of a state name, assigning the next id on first sight.
    pub fn intern(&mut self, name: &str) -> u32 {
        self.names.intern(name)
    }

    /// Replaces `ids` with the id of each of `names`, as [`GraphBuilder::intern`] in turn would
    /// (faster on many names: see [`NameTable::intern_all`]).
    pub fn intern_all(&mut self, names: &[&str], ids: &mut Vec<u32>) {
        self.names.intern_all(names, ids);
    }

    /// The name of state `id`.
    pub fn name(&self, id: u32) -> &str {
        self.names.name(id)
    }

    /// Number of distinct states interned so far.
    pub fn n_states(&self) -> usize {
        self.names.len()
    }

    /// Adds `count` transitions `source → target` read at global row index `row` (rows order the
    /// states as the reference does). Fails only when the sum of all counts would overflow `u64`
    /// (then every partial sum, per pair or per state, fits); the message names the pair.
    pub fn add(&mut self, source: u32, target: u32, count: u64, row: u64) -> Result<()> {
        self.add_all(&[(source, target, count, row)])
            .map_err(|(_, e)| e)
    }

    /// Adds each `(source, target, count, row)` of `transitions` as [`GraphBuilder::add`] would,
    /// each pair's tally fetched into the cache a few transitions ahead (see [`crate::tables`]).
    /// On an overflow nothing is added, and the error comes with the index of the transition
    /// that overflowed.
    pub fn add_all(
        &mut self,
        transitions: &[(u32, u32, u64, u64)],
    ) -> std::result::Result<(), (usize, Error)> {
        let mut total = self.total;
        for (i, &(source, target, count, _)) in transitions.iter().enumerate() {
            total = total.checked_add(count).ok_or_else(|| {
                let message = format!(
                    "adding {count} transitions {} → {} takes the total count past 2^64 − 1",
                    self.name(source),
                    self.name(target)
                );
                (i, Error::Numerical(message))
            })?;
        }
        self.total = total;
        self.rows += transitions.len() as u64;
        self.tally_all(transitions);
        Ok(())
    }

    /// Adds `count` at `first_row` to the tally of each `(source, target, count, first_row)`.
    fn tally_all(&mut self, tallies: &[(u32, u32, u64, u64)]) {
        for (i, &(source, target, count, first_row)) in tallies.iter().enumerate() {
            if let Some(&(s, t, ..)) = tallies.get(i + AHEAD)
                && s != t
            {
                self.tallies.prefetch(pair(s, t));
            }
            self.tally(source, target).add(count, first_row);
        }
    }

    /// Counts a run's move `from → via` followed (self-transitions aside) by its move
    /// `via → to`.
    pub fn add_path(&mut self, from: u32, via: u32, to: u32) {
        self.returns_of(via).add(Returns {
            onward: 1,
            back: u64::from(to == from),
        });
    }

    /// The [`Returns`] of state `g`, created empty on first use.
    fn returns_of(&mut self, g: u32) -> &mut Returns {
        let g = g as usize;
        if g >= self.returns.len() {
            if self.returns.capacity() == 0 {
                self.returns.reserve(RETURNS_RESERVED);
            }
            self.returns.resize(g + 1, Returns::default());
        }
        &mut self.returns[g]
    }

    /// The tally of `source → target`, created empty on first use.
    fn tally(&mut self, source: u32, target: u32) -> &mut Tally {
        if source == target {
            let s = source as usize;
            if s >= self.self_tallies.len() {
                self.self_tallies.resize(s + 1, Tally::NONE);
            }
            &mut self.self_tallies[s]
        } else {
            self.tallies.entry(pair(source, target))
        }
    }

    /// Every non-empty tally: `(source, target, tally)`. A pair of different states may come
    /// more than once (from `tallies` and from `absorbed`): its tallies add up.
    fn each_tally(&self) -> impl Iterator<Item = (u32, u32, &Tally)> {
        let absorbed = self.absorbed.iter().map(|(k, t)| (*k, t));
        let pairs = (self.tallies.iter().chain(absorbed))
            .map(|(k, t)| ((k >> 32) as u32, (k & 0xffff_ffff) as u32, t));
        let loops = (self.self_tallies.iter().enumerate())
            .filter(|(_, t)| t.count > 0)
            .map(|(s, t)| (s as u32, s as u32, t));
        pairs.chain(loops)
    }

    /// Adds everything `later` accumulated, as if its rows had been added to `self` after
    /// `self`'s own (row indices are global, so the node order is that of one sequential read).
    /// Fails like [`GraphBuilder::add`] when the total count would overflow; else returns the
    /// id in `self` of each of `later`'s states.
    pub fn absorb(&mut self, later: GraphBuilder) -> Result<Vec<u32>> {
        if self.names.is_empty() {
            *self = later;
            return Ok((0..self.n_states() as u32).collect());
        }
        self.total = self.total.checked_add(later.total).ok_or_else(|| {
            Error::Numerical(format!(
                "the counts sum past 2^64 − 1 (the {} counted so far plus {} more)",
                self.total, later.total
            ))
        })?;
        self.rows += later.rows;
        let names: Vec<&str> = (0..later.n_states() as u32)
            .map(|id| later.name(id))
            .collect();
        let mut ids = Vec::new();
        self.intern_all(&names, &mut ids);
        for (g, &r) in later.returns.iter().enumerate() {
            self.returns_of(ids[g]).add(r);
        }
        for (s, d, t) in later.each_tally() {
            let (s, d) = (ids[s as usize], ids[d as usize]);
            if s == d {
                self.tally(s, d).add(t.count, t.first_row);
            } else {
                self.absorbed.push((pair(s, d), *t));
            }
        }
        Ok(ids)
    }

    /// Builds the graph; state ids are relabelled to the reference node order.
    pub fn finish(self) -> TransitionGraph {
        self.finish_in(StateOrder::FirstAppearance)
    }

    /// The graph with its states numbered in `order`.
    pub fn finish_in(self, order: StateOrder) -> TransitionGraph {
        self.finish_with_returns(order).0
    }

    /// [`GraphBuilder::finish_in`], with the [`Returns`] of each state by this builder's ids
    /// (empty when no path was added) and the graph's id of each of those ids.
    pub fn finish_with_returns(
        mut self,
        order: StateOrder,
    ) -> (TransitionGraph, Vec<Returns>, Vec<u32>) {
        let n = self.n_states();
        let by_id: Vec<&str> = (0..n as u32)
            .into_par_iter()
            .map(|id| self.name(id))
            .collect();
        let order = match order {
            StateOrder::FirstAppearance => self.first_appearance(),
            StateOrder::Name => name_order(&by_id),
        };
        let mut new_id = vec![0u32; n];
        for (new, &old) in order.iter().enumerate() {
            new_id[old as usize] = new as u32;
        }
        let names: Vec<String> = (order.par_iter())
            .map(|&old| by_id[old as usize].to_owned())
            .collect();
        let relabel = |(key, tally): (u64, &Tally)| {
            let (s, d) = ((key >> 32) as usize, (key & 0xffff_ffff) as usize);
            (new_id[s], new_id[d], tally.count)
        };
        let absorbed = self.absorbed.par_iter().map(|(key, tally)| (*key, tally));
        let mut edges: Vec<(u32, u32, u64)> = (self.tallies.par_iter())
            .chain(absorbed)
            .map(relabel)
            .collect();
        edges.par_sort_unstable_by_key(|&(s, d, _)| (s, d));
        // A pair in both `tallies` and `absorbed`: one edge, the counts summed.
        edges.dedup_by(|later, kept| {
            let same = (later.0, later.1) == (kept.0, kept.1);
            if same {
                kept.2 += later.2;
            }
            same
        });
        let mut self_count = vec![0u64; n];
        for (s, tally) in self.self_tallies.iter().enumerate() {
            self_count[new_id[s] as usize] = tally.count;
        }
        let returns = std::mem::take(&mut self.returns);
        // `N(f)`: its self-transitions and its edges (sorted by source: one pass in order).
        let mut out_count = self_count.clone();
        for &(s, _, count) in &edges {
            out_count[s as usize] += count;
        }
        let graph =
            TransitionGraph::from_sorted_edges(names, out_count, self_count, edges, self.rows);
        (graph, returns, new_id)
    }

    /// Ids in order of first appearance (the module docs): by 2·row (+1 as a target) of each
    /// state's first non-self transition; states seen only in self-transitions after the others.
    fn first_appearance(&self) -> Vec<u32> {
        let mut key = vec![u64::MAX; self.n_states()];
        for (s, d, t) in self.each_tally() {
            let (s, d) = (s as usize, d as usize);
            if s == d {
                key[s] = key[s].min((1 << 63) + t.first_row);
            } else {
                key[s] = key[s].min(2 * t.first_row);
                key[d] = key[d].min(2 * t.first_row + 1);
            }
        }
        let mut order: Vec<u32> = (0..key.len() as u32).collect();
        order.sort_unstable_by_key(|&s| (key[s as usize], s));
        order
    }
}

/// Of the moves into a state `g` that their run follows with a move out of `g` (its
/// self-transitions in between passed over): how many (`onward`), and how many of those went
/// straight back to the state the run came from (`back`). A Markov chain goes back as often as
/// its kernel says, whatever it came from; `io::memory` compares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Returns {
    pub onward: u64,
    pub back: u64,
}

impl Returns {
    fn add(&mut self, other: Returns) {
        self.onward += other.onward;
        self.back += other.back;
    }
}

/// States whose [`Returns`] a builder reserves room for at its first path: 64 MiB of address
/// space, of which only the pages of states seen are touched. Grown as a vector is, by doubling,
/// the counters of the 1e8-row log's readers (a million states each) cost its default run some
/// 30 MiB at its peak, long after they were freed (the reading threads' heaps, fragmented); one
/// block of this size is mapped and unmapped whole.
const RETURNS_RESERVED: usize = 1 << 22;

/// How a graph's states are numbered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StateOrder {
    /// In order of first appearance: the reference's (`--paper`), and [`GraphBuilder::finish`]'s.
    #[default]
    FirstAppearance,
    /// In name order, [`TransitionGraph::canonical`]'s: what the analysis runs on, built so
    /// by the load instead of renumbered after it.
    Name,
}

/// Ids `0..names.len()` in byte order of their names. The names are distinct, so the unstable
/// parallel sort gives one order whatever the thread count. Sorted by eight bytes past the
/// prefix every name shares (big-endian, zero-padded: where they differ, the names differ the
/// same way) and by whole names only where those tie: one integer comparison for most pairs,
/// also of long names written from one template (`simplify ((…`).
fn name_order<S: AsRef<str> + Sync>(names: &[S]) -> Vec<u32> {
    let bytes = |i: usize| names[i].as_ref().as_bytes();
    let first = if names.is_empty() { &[][..] } else { bytes(0) };
    let shared = (0..names.len())
        .into_par_iter()
        .map(|i| {
            first
                .iter()
                .zip(bytes(i))
                .take_while(|(a, b)| a == b)
                .count()
        })
        .min()
        .unwrap_or(0);
    let key = |name: &[u8]| {
        let mut key = [0u8; 8];
        let head = &name[shared..name.len().min(shared + 8)];
        key[..head.len()].copy_from_slice(head);
        u64::from_be_bytes(key)
    };
    let mut keys: Vec<(u64, u32)> = (0..names.len())
        .into_par_iter()
        .map(|i| (key(bytes(i)), i as u32))
        .collect();
    keys.par_sort_unstable_by(|a, b| {
        (a.0.cmp(&b.0)).then_with(|| bytes(a.1 as usize).cmp(bytes(b.1 as usize)))
    });
    keys.into_iter().map(|(_, id)| id).collect()
}

/// Turns counts at `1..` into the offsets they end at (`ptr[0]` stays 0).
fn prefix_sums(ptr: &mut [usize]) {
    for i in 1..ptr.len() {
        ptr[i] += ptr[i - 1];
    }
}

/// Transitions looked ahead by [`GraphBuilder::add_all`]: enough for a cache miss to complete.
const AHEAD: usize = 16;

/// The key of `source → target` in [`GraphBuilder::tallies`].
fn pair(source: u32, target: u32) -> u64 {
    (u64::from(source) << 32) | u64::from(target)
}

/// Counts and adjacency of a transition log. Edges are sorted by `(source, target)`.
#[derive(Debug, Clone)]
pub struct TransitionGraph {
    /// State names by id, shared by the graphs recounted from this one (a resample's or a fold's
    /// graph would otherwise copy a million names).
    pub names: Arc<Vec<String>>,
    /// `N(f)`: transitions leaving `f`, self-transitions included.
    pub out_count: Vec<u64>,
    /// Transitions entering `f` from other states.
    pub in_count: Vec<u64>,
    /// Self-transitions `f → f`.
    pub self_count: Vec<u64>,
    /// Edge sources, sorted.
    pub src: Vec<u32>,
    /// Edge targets, sorted within each source.
    pub dst: Vec<u32>,
    /// `n(f→g)` per edge.
    pub count: Vec<u64>,
    /// CSR by source: edges of `f` are `out_ptr[f]..out_ptr[f+1]`.
    pub out_ptr: Vec<usize>,
    /// CSR by target: `in_edges[in_ptr[g]..in_ptr[g+1]]` are the edges entering `g`.
    pub in_ptr: Vec<usize>,
    pub in_edges: Vec<u32>,
    /// Index of the reverse edge `g → f` of each edge, or `u32::MAX` when it was never seen.
    pub reverse: Vec<u32>,
    /// Rows (records) read to build the graph.
    pub rows: u64,
}

/// Marks an absent reverse edge in [`TransitionGraph::reverse`].
pub const NO_EDGE: u32 = u32::MAX;

impl TransitionGraph {
    /// The graph with every count replaced by `count(item)` (arc `e`: item `e`; self-transitions of
    /// `f`: item `edges + f`); arcs whose count becomes 0 are dropped.
    pub fn recount(&self, count: impl Fn(u32, u64) -> u64) -> TransitionGraph {
        let m = self.n_edges();
        let n = self.n_states();
        let self_count: Vec<u64> = (0..n)
            .map(|f| count((m + f) as u32, self.self_count[f]))
            .collect();
        let mut out_count = self_count.clone();
        let mut edges = Vec::with_capacity(m);
        for e in 0..m {
            let c = count(e as u32, self.count[e]);
            if c > 0 {
                out_count[self.src[e] as usize] += c;
                edges.push((self.src[e], self.dst[e], c));
            }
        }
        let rows = out_count.iter().sum();
        TransitionGraph::from_sorted_edges(self.names.clone(), out_count, self_count, edges, rows)
    }

    /// Builds the adjacency from edges sorted by `(source, target)` without self-loops.
    pub fn from_sorted_edges(
        names: impl Into<Arc<Vec<String>>>,
        out_count: Vec<u64>,
        self_count: Vec<u64>,
        edges: Vec<(u32, u32, u64)>,
        rows: u64,
    ) -> Self {
        let names = names.into();
        let n = names.len();
        let m = edges.len();
        // The out-side (edges in order) and the in-side (a scatter by target) at once.
        let out_side = || {
            let mut out_ptr = vec![0usize; n + 1];
            for &(s, _, _) in &edges {
                out_ptr[s as usize + 1] += 1;
            }
            prefix_sums(&mut out_ptr);
            let src = edges.par_iter().map(|&(s, _, _)| s).collect::<Vec<_>>();
            let dst = edges.par_iter().map(|&(_, d, _)| d).collect::<Vec<_>>();
            let count = edges.par_iter().map(|&(_, _, c)| c).collect::<Vec<_>>();
            (out_ptr, src, dst, count)
        };
        let in_side = || {
            let (mut in_ptr, mut in_count) = (vec![0usize; n + 1], vec![0u64; n]);
            for &(s, d, c) in &edges {
                debug_assert!(s != d);
                in_ptr[d as usize + 1] += 1;
                in_count[d as usize] += c;
            }
            prefix_sums(&mut in_ptr);
            let mut fill = in_ptr.clone();
            let mut in_edges = vec![0u32; m];
            for (e, &(_, d, _)) in edges.iter().enumerate() {
                in_edges[fill[d as usize]] = e as u32;
                fill[d as usize] += 1;
            }
            (in_ptr, in_count, in_edges)
        };
        let ((out_ptr, src, dst, count), (in_ptr, in_count, in_edges)) =
            rayon::join(out_side, in_side);
        let mut graph = TransitionGraph {
            names,
            out_count,
            in_count,
            self_count,
            src,
            dst,
            count,
            out_ptr,
            in_ptr,
            in_edges,
            reverse: Vec::new(),
            rows,
        };
        graph.reverse = graph.reverse_edges();
        graph
    }

    /// The graph without the states no transition leaves or enters, the others renumbered in
    /// their order (so the edges stay sorted): a thinned log's graph is then the size of its
    /// sample, not of the log.
    pub fn without_unvisited(self) -> TransitionGraph {
        let n = self.n_states();
        let visited = |f: usize| self.out_count[f] > 0 || self.in_count[f] > 0;
        if (0..n).all(visited) {
            return self;
        }
        let mut id = vec![u32::MAX; n];
        let (mut out_count, mut self_count) = (Vec::new(), Vec::new());
        for f in (0..n).filter(|&f| visited(f)) {
            id[f] = out_count.len() as u32;
            out_count.push(self.out_count[f]);
            self_count.push(self.self_count[f]);
        }
        // Copied: a thinned graph's names are shared with the log's.
        let names: Vec<String> = (0..n)
            .filter(|&f| id[f] != u32::MAX)
            .map(|f| self.names[f].clone())
            .collect();
        let edges = (0..self.n_edges())
            .map(|e| {
                let (s, d) = (self.src[e] as usize, self.dst[e] as usize);
                (id[s], id[d], self.count[e])
            })
            .collect();
        TransitionGraph::from_sorted_edges(names, out_count, self_count, edges, self.rows)
    }

    /// For each edge `f → g`, the index of `g → f` ([`NO_EDGE`] when never seen): per state
    /// `f`, the targets of its out-edges and the sources of its in-edges, both ascending, merged
    /// (in streams, where a binary search per edge missed the cache at every step).
    fn reverse_edges(&self) -> Vec<u32> {
        (0..self.n_states())
            .into_par_iter()
            .flat_map_iter(|f| {
                let incoming = &self.in_edges[self.in_ptr[f]..self.in_ptr[f + 1]];
                let mut sources = incoming
                    .iter()
                    .map(|&e| (self.src[e as usize], e))
                    .peekable();
                (self.out_ptr[f]..self.out_ptr[f + 1]).map(move |e| {
                    let g = self.dst[e];
                    while sources.next_if(|&(s, _)| s < g).is_some() {}
                    sources
                        .next_if(|&(s, _)| s == g)
                        .map_or(NO_EDGE, |(_, r)| r)
                })
            })
            .collect()
    }

    pub fn n_states(&self) -> usize {
        self.names.len()
    }

    pub fn n_edges(&self) -> usize {
        self.src.len()
    }

    /// Total transitions, self-transitions included.
    pub fn transitions(&self) -> u64 {
        self.out_count.iter().sum()
    }

    pub fn self_transitions(&self) -> u64 {
        self.self_count.iter().sum()
    }

    /// The index of edge `f → g`, if it was observed.
    pub fn find_edge(&self, f: u32, g: u32) -> Option<usize> {
        let range = self.out_ptr[f as usize]..self.out_ptr[f as usize + 1];
        self.dst[range.clone()]
            .binary_search(&g)
            .ok()
            .map(|i| range.start + i)
    }

    /// Edges `f → g` with `f < g` whose reverse was also observed: one per reciprocal pair.
    pub fn reciprocal_pairs(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.n_edges()).filter(|&e| self.reverse[e] != NO_EDGE && self.src[e] < self.dst[e])
    }

    /// Transitions of edge `e`'s reverse `g → f` (0 when it was never observed).
    pub fn reverse_count(&self, e: usize) -> u64 {
        match self.reverse[e] {
            NO_EDGE => 0,
            r => self.count[r as usize],
        }
    }

    /// Empirical kernel `T(f→g) = n(f→g) / N(f)` of edge `e`.
    pub fn kernel(&self, e: usize) -> f64 {
        self.count[e] as f64 / self.out_count[self.src[e] as usize] as f64
    }

    /// The same graph with its states renumbered in name order (byte order of the names), so
    /// that every result computed from it is independent of the order in which rows were read.
    /// (`--paper` keeps the reference's first-appearance order instead.)
    pub fn canonical(self) -> TransitionGraph {
        let n = self.n_states();
        if self.names.windows(2).all(|w| w[0] < w[1]) {
            return self;
        }
        // Edges are distinct by their ends: the unstable parallel sort gives one order whatever
        // the thread count.
        let order = name_order(&self.names);
        let mut rank = vec![0u32; n];
        for (new, &old) in order.iter().enumerate() {
            rank[old as usize] = new as u32;
        }
        let mut edges: Vec<(u32, u32, u64)> = (0..self.n_edges())
            .map(|e| {
                (
                    rank[self.src[e] as usize],
                    rank[self.dst[e] as usize],
                    self.count[e],
                )
            })
            .collect();
        edges.par_sort_unstable();
        let permute = |v: &[u64]| order.iter().map(|&o| v[o as usize]).collect::<Vec<_>>();
        let (out_count, self_count) = (permute(&self.out_count), permute(&self.self_count));
        let mut names = Arc::unwrap_or_clone(self.names);
        let names: Vec<String> = order
            .iter()
            .map(|&o| std::mem::take(&mut names[o as usize]))
            .collect();
        TransitionGraph::from_sorted_edges(names, out_count, self_count, edges, self.rows)
    }
}

/// Disjoint sets over `0..n`: union–find with path halving and union by rank, for spanning
/// forests (which pairs Kruskal joins does not depend on how the trees are linked) and
/// connected components.
#[derive(Debug, Clone, Default)]
pub struct DisjointSets {
    parent: Vec<u32>,
    rank: Vec<u8>,
}

impl DisjointSets {
    pub fn new(n: usize) -> Self {
        let mut sets = DisjointSets::default();
        sets.reset(n);
        sets
    }

    /// Every element of `0..n` alone again (the allocations are kept).
    pub fn reset(&mut self, n: usize) {
        self.parent.clear();
        self.parent.extend(0..n as u32);
        self.rank.clear();
        self.rank.resize(n, 0);
    }

    /// The representative of `x`'s set.
    pub fn find(&mut self, mut x: u32) -> u32 {
        let parent = &mut self.parent;
        while parent[x as usize] != x {
            parent[x as usize] = parent[parent[x as usize] as usize];
            x = parent[x as usize];
        }
        x
    }

    /// Joins the sets of `a` and `b`; false if they were one.
    pub fn union(&mut self, a: u32, b: u32) -> bool {
        let (ra, rb) = (self.find(a) as usize, self.find(b) as usize);
        if ra == rb {
            return false;
        }
        let (low, high) = if self.rank[ra] < self.rank[rb] {
            (ra, rb)
        } else {
            (rb, ra)
        };
        self.parent[low] = high as u32;
        if self.rank[low] == self.rank[high] {
            self.rank[high] += 1;
        }
        true
    }
}

/// Strongly connected components of a subgraph.
#[derive(Debug, Clone)]
pub struct Components {
    /// Component id per state, numbered in reverse topological order of the condensation.
    pub id: Vec<u32>,
    /// Size of each component.
    pub size: Vec<u32>,
}

impl Components {
    pub fn count(&self) -> usize {
        self.size.len()
    }

    pub fn largest(&self) -> u32 {
        self.size.iter().copied().max().unwrap_or(0)
    }

    /// Components of more than one state (the only ones where a potential can be fitted).
    pub fn nontrivial(&self) -> usize {
        self.size.iter().filter(|&&s| s > 1).count()
    }

    pub fn summary(&self) -> ComponentSummary {
        ComponentSummary {
            count: self.count(),
            largest: self.largest(),
        }
    }
}

/// How many components there are and the size of the largest, without the per-state ids.
#[derive(Debug, Clone, Copy)]
pub struct ComponentSummary {
    pub count: usize,
    pub largest: u32,
}

/// Tarjan's algorithm without recursion, over the edges of `graph` for which `keep(e)` holds.
pub fn strongly_connected_components(
    graph: &TransitionGraph,
    keep: impl Fn(usize) -> bool,
) -> Components {
    components_of_arcs(&graph.out_ptr, &graph.dst, keep)
}

/// Tarjan's algorithm without recursion on the arcs of a CSR adjacency (the arcs out of `v` are
/// `dst[out_ptr[v]..out_ptr[v + 1]]`, `out_ptr.len()` the vertices + 1) for which `keep(e)` holds.
pub fn components_of_arcs(
    out_ptr: &[usize],
    dst: &[u32],
    keep: impl Fn(usize) -> bool,
) -> Components {
    const UNSEEN: u32 = u32::MAX;
    let n = out_ptr.len() - 1;
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0u32; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<u32> = Vec::new();
    let mut id = vec![UNSEEN; n];
    let mut size: Vec<u32> = Vec::new();
    let mut next_index = 0u32;
    // Call stack of (node, next edge to look at).
    let mut calls: Vec<(u32, usize)> = Vec::new();
    for root in 0..n as u32 {
        if index[root as usize] != UNSEEN {
            continue;
        }
        calls.push((root, out_ptr[root as usize]));
        index[root as usize] = next_index;
        low[root as usize] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root as usize] = true;
        while let Some(&mut (v, ref mut e)) = calls.last_mut() {
            let end = out_ptr[v as usize + 1];
            let mut descended = false;
            while *e < end {
                let edge = *e;
                *e += 1;
                if !keep(edge) {
                    continue;
                }
                let w = dst[edge];
                if index[w as usize] == UNSEEN {
                    index[w as usize] = next_index;
                    low[w as usize] = next_index;
                    next_index += 1;
                    stack.push(w);
                    on_stack[w as usize] = true;
                    calls.push((w, out_ptr[w as usize]));
                    descended = true;
                    break;
                } else if on_stack[w as usize] {
                    low[v as usize] = low[v as usize].min(index[w as usize]);
                }
            }
            if descended {
                continue;
            }
            calls.pop();
            if let Some(&(parent, _)) = calls.last() {
                low[parent as usize] = low[parent as usize].min(low[v as usize]);
            }
            if low[v as usize] == index[v as usize] {
                let c = size.len() as u32;
                let mut members = 0;
                loop {
                    let w = stack.pop().unwrap();
                    on_stack[w as usize] = false;
                    id[w as usize] = c;
                    members += 1;
                    if w == v {
                        break;
                    }
                }
                size.push(members);
            }
        }
    }
    Components { id, size }
}

/// Which edges `(a[i], b[i])` of an undirected graph on `n` vertices are bridges: on no cycle, so
/// that removing one disconnects its two ends (Tarjan's lowlink, without recursion).
pub fn bridges(n: usize, a: &[u32], b: &[u32]) -> Vec<bool> {
    let mut start = vec![0usize; n + 1];
    for &v in a.iter().chain(b) {
        start[v as usize + 1] += 1;
    }
    for v in 0..n {
        start[v + 1] += start[v];
    }
    let mut fill = start.clone();
    // (neighbour, edge) per incidence.
    let mut incident = vec![(0u32, 0usize); start[n]];
    for (e, (&x, &y)) in a.iter().zip(b).enumerate() {
        for (from, to) in [(x, y), (y, x)] {
            incident[fill[from as usize]] = (to, e);
            fill[from as usize] += 1;
        }
    }
    const UNSEEN: usize = usize::MAX;
    let (mut order, mut low) = (vec![UNSEEN; n], vec![0usize; n]);
    let mut bridge = vec![false; a.len()];
    let mut next_order = 0;
    // Call stack of (vertex, the edge it was entered by, next incidence to look at).
    let mut calls: Vec<(usize, usize, usize)> = Vec::new();
    for root in 0..n {
        if order[root] != UNSEEN {
            continue;
        }
        (order[root], low[root]) = (next_order, next_order);
        next_order += 1;
        calls.push((root, UNSEEN, start[root]));
        while let Some(call) = calls.last_mut() {
            let (v, entered_by, next) = *call;
            if next < start[v + 1] {
                call.2 += 1;
                let (w, e) = incident[next];
                let w = w as usize;
                if e == entered_by {
                    continue;
                }
                if order[w] == UNSEEN {
                    (order[w], low[w]) = (next_order, next_order);
                    next_order += 1;
                    calls.push((w, e, start[w]));
                } else {
                    low[v] = low[v].min(order[w]);
                }
                continue;
            }
            calls.pop();
            if let Some(&(parent, _, _)) = calls.last() {
                low[parent] = low[parent].min(low[v]);
                bridge[entered_by] = low[v] > order[parent];
            }
        }
    }
    bridge
}

/// The graph of `(source, target, count)` rows, one row each (unit tests' fixtures).
#[cfg(test)]
pub(crate) fn graph_of(edges: &[(&str, &str, u64)]) -> TransitionGraph {
    builder_of(edges).finish()
}

/// The builder of [`graph_of`], before `finish`.
#[cfg(test)]
fn builder_of(edges: &[(&str, &str, u64)]) -> GraphBuilder {
    let mut b = GraphBuilder::default();
    for (row, &(s, t, c)) in edges.iter().enumerate() {
        let (s, t) = (b.intern(s), b.intern(t));
        b.add(s, t, c, row as u64).unwrap();
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridges_are_the_edges_on_no_cycle() {
        // A triangle 0-1-2, a tail 2-3-4, a square 4-5-6-7, a second edge 0-1 (on a 2-cycle),
        // and an isolated edge 8-9.
        let edges = [
            (0, 1),
            (1, 2),
            (2, 0),
            (2, 3),
            (3, 4),
            (4, 5),
            (5, 6),
            (6, 7),
            (7, 4),
            (1, 0),
            (8, 9),
        ];
        let (a, b): (Vec<u32>, Vec<u32>) = edges.iter().copied().unzip();
        let found = bridges(10, &a, &b);
        let expected: Vec<bool> = edges
            .iter()
            .map(|&e| matches!(e, (2, 3) | (3, 4) | (8, 9)))
            .collect();
        assert_eq!(found, expected);
    }

    fn graph(edges: &[(&str, &str, u64)]) -> TransitionGraph {
        graph_of(edges)
    }

    #[test]
    fn disjoint_sets_join_once_and_reset() {
        let mut sets = DisjointSets::new(5);
        assert!(sets.union(0, 1) && sets.union(3, 4) && sets.union(1, 4));
        assert!(
            !sets.union(0, 3),
            "0 and 3 are already joined through 1 and 4"
        );
        assert_eq!(sets.find(0), sets.find(3));
        assert_ne!(sets.find(2), sets.find(0));
        sets.reset(5);
        assert!(sets.union(0, 3));
    }

    #[test]
    fn reference_node_order_and_counts() {
        let g = graph(&[
            ("x", "x", 4),
            ("b", "a", 1),
            ("a", "b", 2),
            ("a", "c", 5),
            ("b", "a", 3),
        ]);
        assert_eq!(*g.names, ["b", "a", "c", "x"]);
        assert_eq!(g.out_count, [4, 7, 0, 4]);
        assert_eq!(g.self_count, [0, 0, 0, 4]);
        assert_eq!(g.in_count, [2, 4, 5, 0]);
        let ab = g.find_edge(1, 0).unwrap();
        assert_eq!(g.count[ab], 2);
        assert_eq!(g.reciprocal_pairs().count(), 1);
        assert_eq!(g.reverse[g.find_edge(1, 2).unwrap()], NO_EDGE);
    }

    #[test]
    fn absorbed_parts_give_the_graph_of_one_sequential_builder() {
        let rows = [
            ("a", "b", 1),
            ("b", "a", 2),
            ("c", "c", 3),
            ("a", "b", 4),
            ("b", "c", 5),
            ("c", "b", 6),
            ("a", "b", 7),
            ("d", "d", 1),
        ];
        let whole = graph(&rows);
        // Three parts, each with the pair a → b: it is summed from the table and two lists.
        let mut merged = GraphBuilder::default();
        for part in [0..3, 3..6, 6..8] {
            let mut b = GraphBuilder::default();
            for row in part {
                let (s, t, c) = rows[row];
                let (s, t) = (b.intern(s), b.intern(t));
                b.add(s, t, c, row as u64).unwrap();
            }
            merged.absorb(b).unwrap();
        }
        let merged = merged.finish();
        assert_eq!(merged.names, whole.names);
        assert_eq!((&merged.src, &merged.dst), (&whole.src, &whole.dst));
        assert_eq!(merged.count, whole.count);
        assert_eq!(merged.count[merged.find_edge(0, 1).unwrap()], 12);
        assert_eq!(
            (&merged.out_count, &merged.self_count),
            (&whole.out_count, &whole.self_count)
        );
        assert_eq!(merged.in_count, whole.in_count);
        assert_eq!(merged.reverse, whole.reverse);
        assert_eq!(merged.reciprocal_pairs().count(), 2);
    }

    #[test]
    fn scc_of_cycle_plus_tail() {
        let g = graph(&[
            ("a", "b", 1),
            ("b", "c", 1),
            ("c", "a", 1),
            ("c", "d", 1),
            ("e", "e", 1),
        ]);
        let c = strongly_connected_components(&g, |_| true);
        assert_eq!(c.count(), 3);
        assert_eq!(c.largest(), 3);
        assert_eq!(c.id[0], c.id[2]);
        assert_ne!(c.id[0], c.id[3]);
    }

    #[test]
    fn scc_deep_chain_needs_no_recursion() {
        let n = 200_000u32;
        let mut b = GraphBuilder::default();
        let ids: Vec<u32> = (0..n).map(|i| b.intern(&i.to_string())).collect();
        for i in 0..n as usize {
            b.add(ids[i], ids[(i + 1) % n as usize], 1, i as u64)
                .unwrap();
        }
        let c = strongly_connected_components(&b.finish(), |_| true);
        assert_eq!(c.count(), 1);
    }

    #[test]
    fn canonical_order_sorts_states_by_name_and_keeps_counts() {
        let g = graph(&[
            ("c", "a", 3),
            ("a", "b", 2),
            ("b", "c", 1),
            ("a", "c", 4),
            ("c", "c", 5),
        ]);
        let c = g.clone().canonical();
        assert_eq!(*c.names, ["a", "b", "c"]);
        let count = |g: &TransitionGraph, f: &str, t: &str| {
            let id = |s: &str| g.names.iter().position(|n| n == s).unwrap() as u32;
            g.find_edge(id(f), id(t)).map(|e| g.count[e])
        };
        for (f, t) in [("c", "a"), ("a", "b"), ("b", "c"), ("a", "c"), ("b", "a")] {
            assert_eq!(count(&g, f, t), count(&c, f, t), "{f} → {t}");
        }
        assert_eq!(c.out_count, [6, 1, 8]);
        assert_eq!(c.self_count, [0, 0, 5]);
        assert_eq!(c.transitions(), g.transitions());
    }

    #[test]
    fn name_order_is_byte_order_past_and_within_the_first_eight_bytes() {
        let names: Vec<String> = [
            "state_0000012",
            "state_0000002",
            "ab",
            "ab\0",
            "ab\0x",
            "a",
            "",
            "é",
            "e\u{301}",
            "zzzzzzzz",
            "zzzzzzz",
            "state_000001",
        ]
        .map(String::from)
        .to_vec();
        // Past a shared prefix too (the key starts after it), and with one name that prefix.
        let prefixed: Vec<String> = names.iter().map(|n| format!("simplify ((x{n}")).collect();
        let with_bare = [prefixed.clone(), vec!["simplify ((x".into()]].concat();
        for names in [names, prefixed, with_bare] {
            let order = name_order(&names);
            let sorted: Vec<&String> = order.iter().map(|&i| &names[i as usize]).collect();
            let mut expected: Vec<&String> = names.iter().collect();
            expected.sort();
            assert_eq!(sorted, expected);
        }
    }

    #[test]
    fn a_graph_built_in_name_order_is_the_canonical_graph() {
        let edges = [
            ("c", "a", 3),
            ("a", "b", 2),
            ("b", "c", 1),
            ("d", "d", 7),
            ("a", "c", 4),
            ("c", "c", 5),
        ];
        let builder = || builder_of(&edges);
        let by_name = builder().finish_in(StateOrder::Name);
        let canonical = builder().finish().canonical();
        assert_eq!(*by_name.names, ["a", "b", "c", "d"]);
        assert_eq!(by_name.names, canonical.names);
        assert_eq!(
            (&by_name.src, &by_name.dst, &by_name.count),
            (&canonical.src, &canonical.dst, &canonical.count)
        );
        assert_eq!(by_name.out_count, canonical.out_count);
        assert_eq!(by_name.self_count, canonical.self_count);
        // First appearance: c, a, b, then d (self-transitions only).
        assert_eq!(*builder().finish().names, ["c", "a", "b", "d"]);
    }

    #[test]
    fn count_overflow_is_an_error() {
        let mut b = GraphBuilder::default();
        let (a, c) = (b.intern("a"), b.intern("c"));
        b.add(a, c, u64::MAX, 0).unwrap();
        assert!(b.add(a, c, 1, 1).is_err());
        // Sums over different pairs too (N(a) here), before they reach `finish`.
        let mut b = GraphBuilder::default();
        let (a, c, d) = (b.intern("a"), b.intern("c"), b.intern("d"));
        b.add(a, c, u64::MAX - 1, 0).unwrap();
        let message = b.add(a, d, 2, 1).unwrap_err().to_string();
        assert!(message.contains("a → d"), "{message}");
    }
}
