//! Binds and dispatches kernel `reciprocal_triangles`, every 3-cycle whose six arcs exist, in
//! three passes over the oriented reciprocal graph (built on the CPU, uploaded once):
//! shaders/reciprocal_triangles_count.wgsl (triangles per work item), an exclusive scan of the
//! counts into output offsets (shaders/reciprocal_triangles_scan.wgsl, reduce-then-scan level by
//! level: each level divides the count by `ITEMS × WG` = 1024), and
//! shaders/reciprocal_triangles_write.wgsl (each item writes its triangles at its offset). The
//! order is the CPU twin's (src/backend/cpu/reciprocal_triangles.rs) by construction; no sort.
//!
//! Balanced by work ([`WorkItems`]): an oriented edge whose intersection (a merge, or binary
//! searches of the shorter out-list in the longer, whichever is cheaper) takes at most
//! [`HEAVY_STEPS`] steps is one work item; a heavier one is split into items of [`slice_len`]
//! entries of its shorter list, each binary-searched in the longer. One invocation runs one
//! item, so the long out-lists of a graph's dense core (a hub's lopsided intersections, the core's
//! long ones) do not stall the invocations of the light edges beside them, on any adapter.
//!
//! Limits: the graph's arrays must each fit one storage binding (4 B per oriented edge: 32 M
//! reciprocal pairs at lavapipe's 128 MiB; when the work items would not fit, edges stay whole),
//! the longest out-list must be at most `MERGE_STEPS / 2` (it is at most `√(2|R|)`: 20,000 allows 2·10⁸ pairs). The number of
//! triangles is not limited: offsets are u32 modulo 2^32 (a chunk's are exact), and the output is
//! produced in chunks of whole edges, each at most one binding (12 B per triangle: an
//! oriented-edge triple) and at most the caller's chunk, one write dispatch and one read-back
//! per chunk; the caller folds each chunk into its statistics before the next is written, so
//! device and host memory stay O(edges + chunk) however many triangles there are.

use super::buffers::{Params, Recorder, groups_for, show_bytes};
use super::buffers::{storage_init, storage_zeroed};
use super::context::{Access, GpuContext, Pipeline};
use super::shaders::{self, HEAVY_STEPS, ITEMS, MERGE_STEPS, WG};
use crate::backend::cpu::reciprocal_triangles::OrientedReciprocal;
use crate::error::{Error, Result};

/// Receives each chunk of triangles with the end of the oriented edges done so far.
pub type EdgeVisitor<'a> = dyn FnMut(usize, &[[u32; 3]]) -> Result<()> + 'a;

/// Entries one scan workgroup owns.
const BLOCK: u32 = ITEMS * WG;
/// Bytes of one output triangle.
const TRIANGLE_BYTES: u64 = 12;
/// `item_slice` of an item that is a whole edge (`WHOLE` in the shader).
const WHOLE: u32 = u32::MAX;

pub struct ReciprocalTriangles {
    count: Pipeline,
    reduce: Pipeline,
    scan: Pipeline,
    write: Pipeline,
}

impl ReciprocalTriangles {
    pub fn new(ctx: &GpuContext) -> Result<Self> {
        use Access::*;
        let scan = [ReadWrite, ReadWrite];
        let graph = [Read; 5];
        Ok(ReciprocalTriangles {
            count: ctx.pipeline(
                shaders::RECIPROCAL_TRIANGLES_COUNT,
                &[&graph[..], &[ReadWrite]].concat(),
                &[],
            )?,
            reduce: ctx.pipeline(shaders::RECIPROCAL_TRIANGLES_SCAN, &scan, &[("PHASE", 0.0)])?,
            scan: ctx.pipeline(shaders::RECIPROCAL_TRIANGLES_SCAN, &scan, &[("PHASE", 1.0)])?,
            write: ctx.pipeline(
                shaders::RECIPROCAL_TRIANGLES_WRITE,
                &[&graph[..], &[Read, ReadWrite]].concat(),
                &[],
            )?,
        })
    }

    /// Every reciprocal triangle of `r`, in the canonical order, streamed to `visit` with the
    /// end of the edges done so far: chunks of whole edges of at most
    /// `min(max(chunk, longest out-list), max_binding / 12)` triangles. `max_binding` (bytes)
    /// caps every buffer. An [`Error::Gpu`] when the graph exceeds a limit of the module docs
    /// or the device fails; an error of `visit` is returned as it is.
    pub fn run(
        &self,
        ctx: &GpuContext,
        r: &OrientedReciprocal,
        max_binding: u64,
        chunk: usize,
        visit: &mut EdgeVisitor,
    ) -> Result<()> {
        if r.n_edges() == 0 {
            return Ok(());
        }
        check_limits(r, max_binding)?;
        let work = WorkItems::new(r, (max_binding / 4).saturating_sub(1));
        let n = work.len();
        let scope = ctx.scope();
        let graph = [
            storage_init(ctx, "out_ptr", bytemuck::cast_slice(&r.ptr)),
            storage_init(ctx, "adj", bytemuck::cast_slice(&r.adj)),
            storage_init(ctx, "src", bytemuck::cast_slice(&r.src)),
            storage_init(ctx, "item_edge", bytemuck::cast_slice(&work.edge)),
            storage_init(ctx, "item_slice", bytemuck::cast_slice(&work.slice)),
        ];
        // Counts, then offsets (modulo 2^32) after the scan; entry n stays 0 and becomes the
        // total.
        let offsets = storage_zeroed(ctx, "offsets", 4 * (n as u64 + 1));
        scope.close().map_err(out_of_memory)?;

        let mut rec = Recorder::new(ctx, 0);
        let [ptr, adj, src, edge, slice] = &graph;
        let group = self
            .count
            .bind(ctx, &[ptr, adj, src, edge, slice, &offsets]);
        let groups = groups_for(n as u32, WG);
        let listed = u32::from(work.is_listed());
        let params = Params {
            extra: listed,
            ..Params::new(n as u32)
        };
        rec.dispatch(&self.count, &group, params, groups);
        self.exclusive_scan(&mut rec, &offsets, n as u32 + 1);
        let raw = rec.download_bytes(&offsets, 0, 4 * (n as u64 + 1))?;
        let starts = words(&raw);
        let between = |a: usize, b: usize| u64::from(starts[b].wrapping_sub(starts[a]));
        let total: u64 = (0..n).map(|i| between(i, i + 1)).sum();
        if total == 0 {
            return Ok(());
        }
        let widest = u64::from(r.max_out_degree()).max(chunk as u64).max(1);
        let batch = widest.min(max_binding / TRIANGLE_BYTES).min(total);
        let scope = ctx.scope();
        let output = storage_zeroed(ctx, "triangles", TRIANGLE_BYTES * batch);
        scope.close().map_err(out_of_memory)?;
        let group = self
            .write
            .bind(ctx, &[ptr, adj, src, edge, slice, &offsets, &output]);
        let mut first = 0;
        while first < n {
            let last = work.chunk_end(first, batch, between)?;
            let count = between(first, last);
            if count > 0 {
                let params = Params {
                    base: first as u32,
                    lo: starts[first],
                    hi: count as u32,
                    extra: listed,
                    ..Params::new((last - first) as u32)
                };
                let groups = groups_for((last - first) as u32, WG);
                rec.dispatch(&self.write, &group, params, groups);
                let raw = rec.download_bytes(&output, 0, TRIANGLE_BYTES * count)?;
                let triangles: Vec<[u32; 3]> = words(&raw)
                    .chunks_exact(3)
                    .map(|t| [t[0], t[1], t[2]])
                    .collect();
                visit(work.edge_of(last - 1) + 1, &triangles)?;
            }
            first = last;
        }
        Ok(())
    }

    /// Records the exclusive prefix sum of `data[..n]` in place: reduce each level's blocks into
    /// the next level until one block is left, scan it, then scan each level below adding the
    /// scanned totals of the level above.
    fn exclusive_scan(&self, rec: &mut Recorder, data: &wgpu::Buffer, n: u32) {
        let ctx = rec.ctx();
        let mut levels = vec![(data.clone(), n)];
        let (top, len) = loop {
            let (below, len) = levels.last().expect("at least the data").clone();
            if len <= BLOCK {
                break (below, len);
            }
            let blocks = groups_for(len, BLOCK);
            let sums = storage_zeroed(ctx, "scan sums", 4 * u64::from(blocks));
            let group = self.reduce.bind(ctx, &[&below, &sums]);
            rec.dispatch(&self.reduce, &group, Params::new(len), blocks);
            levels.push((sums, blocks));
        };
        let unused = storage_zeroed(ctx, "no block sums", 4);
        let group = self.scan.bind(ctx, &[&top, &unused]);
        rec.dispatch(&self.scan, &group, Params::new(len), 1);
        for pair in levels.windows(2).rev() {
            let [(below, len), (sums, _)] = pair else {
                unreachable!("windows of two")
            };
            let group = self.scan.bind(ctx, &[below, sums]);
            let params = Params {
                extra: 1,
                ..Params::new(*len)
            };
            rec.dispatch(&self.scan, &group, params, groups_for(*len, BLOCK));
        }
    }
}

/// The work items of the count and write passes, in edge order: item `i` is oriented edge
/// `edge[i]`, whole (`slice[i] == WHOLE`) or the `slice[i]`-th run of [`slice_len`] entries of
/// its shorter out-list. When no edge is split the lists are left empty: item `i` is edge `i`.
struct WorkItems {
    edge: Vec<u32>,
    slice: Vec<u32>,
    edges: usize,
}

impl WorkItems {
    /// One item per edge whose cheaper intersection, a merge (`|a| + |b|` steps) or binary
    /// searches of the shorter list `a` in the longer `b` (`|a| · ⌈log2(|b| + 1)⌉`), takes at
    /// most [`HEAVY_STEPS`]; `⌈|a| / slice_len(|b|)⌉` items for any other. The shader reads the
    /// items and recomputes `slice_len` from the lists. Edges stay whole when the items would
    /// exceed `max_items` (an array of them must fit one storage binding; the edges' arrays do).
    fn new(r: &OrientedReciprocal, max_items: u64) -> Self {
        let degree = |u: u32| r.ptr[u as usize + 1] - r.ptr[u as usize];
        let lists = |e: usize| {
            let (x, y) = (degree(r.src[e]), degree(r.adj[e]));
            (x.min(y), x.max(y))
        };
        let slices = |e: usize| {
            let (a, b) = lists(e);
            let light = (a + b).min(a * search_steps(b)) <= HEAVY_STEPS;
            (!light).then(|| a.div_ceil(slice_len(b)))
        };
        let mut work = WorkItems {
            edge: Vec::new(),
            slice: Vec::new(),
            edges: r.n_edges(),
        };
        let split = (0..r.n_edges()).any(|e| slices(e).is_some());
        let items: u64 = (0..r.n_edges())
            .map(|e| u64::from(slices(e).unwrap_or(1)))
            .sum();
        if !split || items > max_items {
            return work;
        }
        for e in 0..r.n_edges() {
            match slices(e) {
                None => {
                    work.edge.push(e as u32);
                    work.slice.push(WHOLE);
                }
                Some(k) => {
                    work.edge.extend(std::iter::repeat_n(e as u32, k as usize));
                    work.slice.extend(0..k);
                }
            }
        }
        work
    }

    /// Whether the items are listed (some edge is split).
    fn is_listed(&self) -> bool {
        !self.edge.is_empty()
    }

    fn len(&self) -> usize {
        if self.is_listed() {
            self.edge.len()
        } else {
            self.edges
        }
    }

    fn edge_of(&self, item: usize) -> usize {
        if self.is_listed() {
            self.edge[item] as usize
        } else {
            item
        }
    }

    /// The end of the chunk of whole edges from item `first` (an edge's first item) whose
    /// triangles fit `batch`; `between(i, j)` is the triangles of items `i .. j`. An
    /// [`Error::Gpu`] when the first edge alone does not fit.
    fn chunk_end(
        &self,
        first: usize,
        batch: u64,
        between: impl Fn(usize, usize) -> u64,
    ) -> Result<usize> {
        let n = self.len();
        // The item after the last of the edge at item i.
        let edge_end = |mut i: usize| {
            let e = self.edge_of(i);
            while i < n && self.edge_of(i) == e {
                i += 1;
            }
            i
        };
        let mut last = first;
        while last < n {
            let next = edge_end(last);
            if between(first, next) > batch {
                break;
            }
            last = next;
        }
        if last == first {
            return Err(Error::Gpu(format!(
                "oriented edge {} closes {} triangles, more than one output buffer of {} holds",
                self.edge_of(first),
                between(first, edge_end(first)),
                show_bytes(TRIANGLE_BYTES * batch)
            )));
        }
        Ok(last)
    }
}

/// Steps of a binary search over `n` entries: `⌈log2(n + 1)⌉` (`search_steps` in the shader).
fn search_steps(n: u32) -> u32 {
    u32::BITS - n.leading_zeros()
}

/// Entries of the shorter list per work item of a heavy edge whose longer list has `n`
/// entries, so that an item takes at most about [`HEAVY_STEPS`] steps; the same rule as
/// `slice_len` in shaders/reciprocal_triangles.wgsl, which the items' slices rely on.
fn slice_len(n: u32) -> u32 {
    (HEAVY_STEPS / search_steps(n)).max(1)
}

/// Little-endian u32 words of a read-back.
fn words(raw: &[u8]) -> Vec<u32> {
    raw.chunks_exact(4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect()
}

fn out_of_memory(why: String) -> Error {
    Error::Gpu(format!(
        "buffer allocation failed: the reciprocal triangles do not fit the device's memory: {why}"
    ))
}

/// The limits of the module docs, checked before anything is uploaded.
fn check_limits(r: &OrientedReciprocal, max_binding: u64) -> Result<()> {
    let too_large = |why: String| Err(Error::Gpu(why));
    let largest = 4 * (r.n_edges().max(r.ptr.len() - 1) as u64 + 1);
    if largest > max_binding {
        return too_large(format!(
            "the reciprocal graph ({} oriented edges, {} states) needs {} per array, above the \
             device's {} storage-binding limit",
            r.n_edges(),
            r.ptr.len() - 1,
            show_bytes(largest),
            show_bytes(max_binding)
        ));
    }
    let longest = r.max_out_degree();
    if 2 * u64::from(longest) > u64::from(MERGE_STEPS) {
        return too_large(format!(
            "an out-list of the oriented reciprocal graph has {longest} entries, above the \
             kernel's bound of {}",
            MERGE_STEPS / 2
        ));
    }
    if TRIANGLE_BYTES * u64::from(longest) > max_binding {
        return too_large(format!(
            "an edge may close {longest} triangles, more than one {} output buffer holds",
            show_bytes(max_binding)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::GraphBuilder;

    /// A ring of `ring` states each joined both ways to `hubs` other states (`ring > hubs + 2`):
    /// the out-list of a ring state is the hubs and its next ring state.
    fn ring_of_hubs(ring: u32, hubs: u32) -> OrientedReciprocal {
        let mut b = GraphBuilder::default();
        let ids: Vec<u32> = (0..ring + hubs)
            .map(|i| b.intern(&format!("s{i}")))
            .collect();
        let mut row = 0;
        let mut both = |f: u32, g: u32| {
            b.add(ids[f as usize], ids[g as usize], 1, row).unwrap();
            b.add(ids[g as usize], ids[f as usize], 1, row + 1).unwrap();
            row += 2;
        };
        for u in 0..ring {
            both(u, (u + 1) % ring);
            (ring..ring + hubs).for_each(|h| both(u, h));
        }
        OrientedReciprocal::new(&b.finish())
    }

    #[test]
    fn heavy_edges_are_split_into_slices_covering_their_shorter_list() {
        // Ring edges intersect two lists of 131 entries: a merge of 262 steps, searches of
        // 131 · 8; slices of 128 / 8 = 16 entries, ⌈131 / 16⌉ = 9 items per ring edge.
        let r = ring_of_hubs(140, 130);
        let work = WorkItems::new(&r, u64::MAX);
        assert!(work.is_listed());
        assert_eq!(work.len(), r.n_edges() + 140 * 8);
        assert_eq!(slice_len(131), 16);
        let mut item = 0;
        for e in 0..r.n_edges() {
            let first = item;
            while item < work.len() && work.edge_of(item) == e {
                item += 1;
            }
            let slices = &work.slice[first..item];
            // Hubs rank highest: their out-lists are empty, a ring state's holds every hub.
            let out = |u: u32| r.ptr[u as usize + 1] - r.ptr[u as usize];
            let ring_edge = out(r.adj[e]) > 0;
            assert!(out(r.src[e]) >= 130);
            if ring_edge {
                assert_eq!(slices, (0..9).collect::<Vec<u32>>(), "edge {e}");
            } else {
                assert_eq!(slices, [WHOLE], "edge {e}");
            }
        }
        assert_eq!(item, work.len());
    }

    #[test]
    fn without_heavy_edges_the_items_are_the_edges_and_nothing_is_listed() {
        let r = ring_of_hubs(12, 5);
        let work = WorkItems::new(&r, u64::MAX);
        assert!(!work.is_listed());
        assert_eq!(work.len(), r.n_edges());
        assert!((0..work.len()).all(|i| work.edge_of(i) == i));
    }

    #[test]
    fn chunks_hold_whole_edges_that_fit_the_batch() {
        let r = ring_of_hubs(140, 130);
        let work = WorkItems::new(&r, u64::MAX);
        // Every item closes one triangle: a chunk of batch 20 ends at an edge boundary.
        let between = |a: usize, b: usize| (b - a) as u64;
        let end = work.chunk_end(0, 20, between).unwrap();
        assert!(end <= 20 && work.edge_of(end) != work.edge_of(end - 1));
        assert!(work.chunk_end(0, 0, between).is_err());
    }
}
