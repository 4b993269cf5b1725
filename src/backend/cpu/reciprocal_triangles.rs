//! CPU twin of kernel `reciprocal_triangles` (shaders/reciprocal_triangles_count.wgsl,
//! shaders/reciprocal_triangles_scan.wgsl, shaders/reciprocal_triangles_write.wgsl): every
//! 3-cycle whose six arcs exist, i.e. every triangle of the reciprocal graph `R` (the pairs seen
//! in both directions).
//!
//! Why this way: `R` is oriented from lower to higher `(degree, id)` rank, so a triangle is
//! found exactly once, at its oriented edge `u → v` from its lowest- to its middle-ranked vertex,
//! as the common out-neighbours `w` of `u` and `v`; and every out-list has at most `√(2|R|)`
//! entries (a vertex with `k` out-neighbours has `k` neighbours of degree ≥ its own, so
//! `k² ≤ 2|R|`), so intersecting two of them is bounded even on hubs, which matters for the GPU
//! (docs/GPU.md §1.1: lavapipe silently stops an invocation after 65,535 loop iterations).
//!
//! Canonical order, produced by both backends without a final sort: by oriented-edge index `e`
//! (sources ascending, targets ascending within a source), then by the third vertex `w`
//! ascending. Each triangle is its oriented-edge triple `[e, i, j]` (`e = u → v`, `i = u → w`,
//! `j = v → w`; one edge per reciprocal pair, so the triple also names the triangle's three
//! pairs) or its vertices `[a, b, c]` with `a < b < c`. The GPU cannot grow a list, so it
//! counts each edge's triangles, takes the exclusive prefix sum of the counts as output offsets
//! and writes them in a second pass; here the counts and offsets are implicit in concatenating the
//! per-edge lists in edge order. [`closed_by`] is the intersection both shader passes compute
//! per edge (the GPU splits an edge with long lists into slices of the shorter list and
//! binary-searches lopsided ones: src/backend/gpu/reciprocal_triangles.rs; same triangles,
//! same order).
//!
//! Dense graphs have many triangles (`n³/6` for `n` states all joined both ways), so analyses
//! never hold them all: [`enumerate`] (and the GPU kernel) hand them over in chunks of whole
//! edges, in the canonical order, each chunk bounded in size.
//!
//! ```
//! use detbal::backend::cpu::reciprocal_triangles::{OrientedReciprocal, reciprocal_triangles};
//! use detbal::graph::GraphBuilder;
//! let mut b = GraphBuilder::default();
//! let s: Vec<u32> = ["x", "y", "z"].iter().map(|n| b.intern(n)).collect();
//! for (row, (f, g)) in [(0, 1), (1, 0), (1, 2), (2, 1), (2, 0), (0, 2)].into_iter().enumerate() {
//!     b.add(s[f], s[g], 1, row as u64).unwrap();
//! }
//! let r = OrientedReciprocal::new(&b.finish());
//! assert_eq!(reciprocal_triangles(&r), [[0, 1, 2]]);
//! ```

use crate::error::Result;
use crate::graph::TransitionGraph;
use rayon::prelude::*;
use std::ops::Range;

/// The oriented reciprocal graph in CSR form: oriented edge `e` is `src[e] → adj[e]`; the
/// out-list of `u` is `adj[ptr[u]..ptr[u+1]]`, sorted by vertex id.
pub struct OrientedReciprocal {
    pub ptr: Vec<u32>,
    pub adj: Vec<u32>,
    pub src: Vec<u32>,
}

impl OrientedReciprocal {
    pub fn new(graph: &TransitionGraph) -> Self {
        let n = graph.n_states();
        let pairs: Vec<(u32, u32)> = graph
            .reciprocal_pairs()
            .map(|e| (graph.src[e], graph.dst[e]))
            .collect();
        let mut degree = vec![0u32; n];
        for &(a, b) in &pairs {
            degree[a as usize] += 1;
            degree[b as usize] += 1;
        }
        let rank_lt = |a: u32, b: u32| (degree[a as usize], a) < (degree[b as usize], b);
        let mut ptr = vec![0u32; n + 1];
        let oriented: Vec<(u32, u32)> = pairs
            .iter()
            .map(|&(a, b)| if rank_lt(a, b) { (a, b) } else { (b, a) })
            .collect();
        for &(u, _) in &oriented {
            ptr[u as usize + 1] += 1;
        }
        for i in 0..n {
            ptr[i + 1] += ptr[i];
        }
        let mut fill = ptr.clone();
        let mut adj = vec![0u32; oriented.len()];
        for &(u, v) in &oriented {
            adj[fill[u as usize] as usize] = v;
            fill[u as usize] += 1;
        }
        let mut src = vec![0u32; oriented.len()];
        for u in 0..n {
            let range = ptr[u] as usize..ptr[u + 1] as usize;
            adj[range.clone()].sort_unstable();
            src[range].fill(u as u32);
        }
        OrientedReciprocal { ptr, adj, src }
    }

    pub fn n_edges(&self) -> usize {
        self.adj.len()
    }

    /// The longest out-list: each intersection takes at most twice as many steps.
    pub fn max_out_degree(&self) -> u32 {
        self.ptr.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0)
    }

    /// At most this many triangles are closed by oriented edge `e`: `min(|out(u)|, |out(v)|)`.
    pub fn bound(&self, e: usize) -> u64 {
        let degree = |u: u32| u64::from(self.ptr[u as usize + 1] - self.ptr[u as usize]);
        degree(self.src[e]).min(degree(self.adj[e]))
    }

    /// The sorted vertices `[a, b, c]` of the triangle with oriented-edge triple `t`.
    pub fn vertices(&self, t: [u32; 3]) -> [u32; 3] {
        let mut v = [
            self.src[t[0] as usize],
            self.adj[t[0] as usize],
            self.adj[t[1] as usize],
        ];
        v.sort_unstable();
        v
    }

    fn out(&self, u: u32) -> &[u32] {
        &self.adj[self.ptr[u as usize] as usize..self.ptr[u as usize + 1] as usize]
    }
}

/// Every reciprocal triangle as its sorted vertices, in the canonical order (see the module
/// docs): the whole list at once, for tests and small graphs; analyses stream [`enumerate`].
pub fn reciprocal_triangles(r: &OrientedReciprocal) -> Vec<[u32; 3]> {
    // Rayon's collect keeps the order of the edges.
    (0..r.n_edges())
        .into_par_iter()
        .flat_map_iter(|e| closed_by(r, e).map(|t| r.vertices(t)))
        .collect()
}

/// Streams the triangles closed by the oriented edges `edges`, in the canonical order, to
/// `visit` in chunks of whole edges holding at most `max(chunk, longest out-list)` triangles
/// each (an edge closes at most `min(|out(u)|, |out(v)|)` of them, the bound the chunks are cut
/// by), each triangle as its oriented-edge triple (see [`closed_by`]). Memory: one chunk.
pub fn enumerate(
    r: &OrientedReciprocal,
    edges: Range<usize>,
    chunk: usize,
    visit: &mut dyn FnMut(&[[u32; 3]]) -> Result<()>,
) -> Result<()> {
    let chunk = chunk.max(r.max_out_degree() as usize).max(1) as u64;
    let mut first = edges.start;
    while first < edges.end {
        let (mut last, mut bound) = (first, 0u64);
        while last < edges.end && (last == first || bound + r.bound(last) <= chunk) {
            bound += r.bound(last);
            last += 1;
        }
        let triangles: Vec<[u32; 3]> = (first..last)
            .into_par_iter()
            .flat_map_iter(|e| closed_by(r, e))
            .collect();
        if !triangles.is_empty() {
            visit(&triangles)?;
        }
        first = last;
    }
    Ok(())
}

/// The triangles closed by oriented edge `e = u → v`: one per common out-neighbour `w` of `u`
/// and `v` (a merge of two sorted lists), `w` ascending, each as its oriented-edge triple
/// `[e, i, j]`: `i` is the edge `u → w`, `j` the edge `v → w` (so `w = adj[i] = adj[j]`; the
/// vertices are [`OrientedReciprocal::vertices`]).
pub fn closed_by(r: &OrientedReciprocal, e: usize) -> impl Iterator<Item = [u32; 3]> + '_ {
    let (u, v) = (r.src[e], r.adj[e]);
    let (a0, b0) = (r.ptr[u as usize] as usize, r.ptr[v as usize] as usize);
    let (a, b) = (r.out(u), r.out(v));
    let (mut i, mut j) = (0, 0);
    std::iter::from_fn(move || {
        while i < a.len() && j < b.len() {
            match a[i].cmp(&b[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    let t = [e as u32, (a0 + i) as u32, (b0 + j) as u32];
                    i += 1;
                    j += 1;
                    return Some(t);
                }
            }
        }
        None
    })
}
