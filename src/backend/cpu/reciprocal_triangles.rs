//! CPU twin of the reciprocal-triangle enumeration: all 3-cycles whose six arcs exist, i.e.
//! triangles of the reciprocal graph `R` (pairs seen in both directions).
//!
//! `R` is oriented from lower to higher `(degree, id)` rank, so every out-list has at most
//! `√(2|R|)` entries; each oriented edge `u → v` intersects the sorted out-lists of `u` and `v`.
//! Each triangle is found exactly once, at its lowest-ranked vertex. Output: `[a, b, c]` with
//! `a < b < c`, sorted lexicographically (the canonical order both backends produce).

use crate::graph::TransitionGraph;
use rayon::prelude::*;

/// Oriented reciprocal graph in CSR form, out-lists sorted by vertex id.
pub struct OrientedReciprocal {
    pub ptr: Vec<u32>,
    pub adj: Vec<u32>,
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
        for u in 0..n {
            adj[ptr[u] as usize..ptr[u + 1] as usize].sort_unstable();
        }
        OrientedReciprocal { ptr, adj }
    }

    fn out(&self, u: u32) -> &[u32] {
        &self.adj[self.ptr[u as usize] as usize..self.ptr[u as usize + 1] as usize]
    }
}

/// Every reciprocal triangle, canonical order.
pub fn reciprocal_triangles(r: &OrientedReciprocal) -> Vec<[u32; 3]> {
    let n = r.ptr.len() - 1;
    let mut triangles: Vec<[u32; 3]> = (0..n as u32)
        .into_par_iter()
        .flat_map_iter(|u| {
            let out_u = r.out(u);
            out_u.iter().flat_map(move |&v| {
                intersect_sorted(out_u, r.out(v)).map(move |w| {
                    let mut t = [u, v, w];
                    t.sort_unstable();
                    t
                })
            })
        })
        .collect();
    triangles.par_sort_unstable();
    triangles
}

/// Common elements of two sorted slices.
fn intersect_sorted<'a>(a: &'a [u32], b: &'a [u32]) -> impl Iterator<Item = u32> + 'a {
    let (mut i, mut j) = (0, 0);
    std::iter::from_fn(move || {
        while i < a.len() && j < b.len() {
            match a[i].cmp(&b[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    i += 1;
                    j += 1;
                    return Some(a[i - 1]);
                }
            }
        }
        None
    })
}
