//! Binds and dispatches kernel `reciprocal_triangles`, every 3-cycle whose six arcs exist, in
//! three passes over the oriented reciprocal graph (built on the CPU, uploaded once):
//! shaders/reciprocal_triangles_count.wgsl (triangles per oriented edge), an exclusive scan of the
//! counts into output offsets (shaders/reciprocal_triangles_scan.wgsl, reduce-then-scan level by
//! level: each level divides the count by `ITEMS × WG` = 1024), and
//! shaders/reciprocal_triangles_write.wgsl (each edge writes its triangles at its offset). The
//! order is the CPU twin's (src/backend/cpu/reciprocal_triangles.rs) by construction; no sort.
//!
//! Limits: the graph's arrays must each fit one storage binding (4 B per oriented edge: 32 M
//! reciprocal pairs at lavapipe's 128 MiB), the longest out-list must be at most
//! `MERGE_STEPS / 2` (it is at most `√(2|R|)`: 20,000 allows 2·10⁸ pairs). The number of
//! triangles is not limited: offsets are u32 modulo 2^32 (a chunk's are exact), and the output is
//! produced in chunks of whole edges, each at most one binding (12 B per triangle: an
//! oriented-edge triple) and at most the caller's chunk, one write dispatch and one read-back
//! per chunk; the caller folds each chunk into its statistics before the next is written, so
//! device and host memory stay O(edges + chunk) however many triangles there are.

use super::buffers::{Params, Recorder, groups_for, show_bytes};
use super::buffers::{storage_init, storage_zeroed};
use super::context::{Access, GpuContext, Pipeline};
use super::shaders::{self, ITEMS, MERGE_STEPS, WG};
use crate::backend::cpu::reciprocal_triangles::OrientedReciprocal;
use crate::error::{Error, Result};

/// Receives each chunk of triangles with the end of the oriented edges done so far.
pub type EdgeVisitor<'a> = dyn FnMut(usize, &[[u32; 3]]) -> Result<()> + 'a;

/// Entries one scan workgroup owns.
const BLOCK: u32 = ITEMS * WG;
/// Bytes of one output triangle.
const TRIANGLE_BYTES: u64 = 12;

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
        Ok(ReciprocalTriangles {
            count: ctx.pipeline(
                shaders::RECIPROCAL_TRIANGLES_COUNT,
                &[Read, Read, Read, ReadWrite],
                &[],
            )?,
            reduce: ctx.pipeline(shaders::RECIPROCAL_TRIANGLES_SCAN, &scan, &[("PHASE", 0.0)])?,
            scan: ctx.pipeline(shaders::RECIPROCAL_TRIANGLES_SCAN, &scan, &[("PHASE", 1.0)])?,
            write: ctx.pipeline(
                shaders::RECIPROCAL_TRIANGLES_WRITE,
                &[Read, Read, Read, Read, ReadWrite],
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
        let m = r.n_edges();
        if m == 0 {
            return Ok(());
        }
        check_limits(r, max_binding)?;
        let scope = ctx.scope();
        let ptr = storage_init(ctx, "out_ptr", bytemuck::cast_slice(&r.ptr));
        let adj = storage_init(ctx, "adj", bytemuck::cast_slice(&r.adj));
        let src = storage_init(ctx, "src", bytemuck::cast_slice(&r.src));
        // Counts, then offsets (modulo 2^32) after the scan; entry m stays 0 and becomes the
        // total.
        let offsets = storage_zeroed(ctx, "offsets", 4 * (m as u64 + 1));
        scope.close().map_err(out_of_memory)?;

        let mut rec = Recorder::new(ctx, 0);
        let group = self.count.bind(ctx, &[&ptr, &adj, &src, &offsets]);
        rec.dispatch(
            &self.count,
            &group,
            Params::new(m as u32),
            groups_for(m as u32, WG),
        );
        self.exclusive_scan(&mut rec, &offsets, m as u32 + 1);
        let raw = rec.download_bytes(&offsets, 0, 4 * (m as u64 + 1))?;
        let starts = words(&raw);
        let closed = |e: usize| u64::from(starts[e + 1].wrapping_sub(starts[e]));
        let total: u64 = (0..m).map(closed).sum();
        if total == 0 {
            return Ok(());
        }

        let widest = u64::from(r.max_out_degree()).max(chunk as u64).max(1);
        let batch = widest.min(max_binding / TRIANGLE_BYTES).min(total);
        let scope = ctx.scope();
        let output = storage_zeroed(ctx, "triangles", TRIANGLE_BYTES * batch);
        scope.close().map_err(out_of_memory)?;
        let group = self.write.bind(ctx, &[&ptr, &adj, &src, &offsets, &output]);
        let mut first = 0;
        while first < m {
            let (mut last, mut count) = (first, 0u64);
            while last < m && count + closed(last) <= batch {
                count += closed(last);
                last += 1;
            }
            if last == first {
                return Err(Error::Gpu(format!(
                    "oriented edge {first} closes {} triangles, more than one output buffer of {} \
                     holds",
                    closed(first),
                    show_bytes(TRIANGLE_BYTES * batch)
                )));
            }
            if count > 0 {
                let params = Params {
                    base: first as u32,
                    lo: starts[first],
                    hi: count as u32,
                    ..Params::new((last - first) as u32)
                };
                rec.dispatch(
                    &self.write,
                    &group,
                    params,
                    groups_for((last - first) as u32, WG),
                );
                let raw = rec.download_bytes(&output, 0, TRIANGLE_BYTES * count)?;
                let triangles: Vec<[u32; 3]> = words(&raw)
                    .chunks_exact(3)
                    .map(|t| [t[0], t[1], t[2]])
                    .collect();
                visit(last, &triangles)?;
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
