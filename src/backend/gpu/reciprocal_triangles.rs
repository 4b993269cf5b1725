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
//! `MERGE_STEPS / 2` (it is at most `√(2|R|)`: 20,000 allows 2·10⁸ pairs), and the number of
//! triangles must fit a u32 (offsets are u32). The output is read back in batches of one
//! binding (12 B per triangle), one write dispatch per batch.

use super::buffers::{Params, Recorder, groups_for, show_bytes};
use super::buffers::{storage_init, storage_zeroed};
use super::context::{Access, GpuContext, Pipeline};
use super::shaders::{self, ITEMS, MERGE_STEPS, WG};
use crate::backend::cpu::reciprocal_triangles::OrientedReciprocal;
use crate::error::{Error, Result};

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

    /// Every reciprocal triangle of `r`, in the canonical order. `max_binding` (bytes) caps
    /// every buffer. An [`Error::Gpu`] when the graph exceeds a limit of the module docs or the
    /// device fails.
    pub fn run(
        &self,
        ctx: &GpuContext,
        r: &OrientedReciprocal,
        max_binding: u64,
    ) -> Result<Vec<[u32; 3]>> {
        let m = r.n_edges();
        if m == 0 {
            return Ok(Vec::new());
        }
        check_limits(r, max_binding)?;
        let scope = ctx.scope();
        let ptr = storage_init(ctx, "out_ptr", bytemuck::cast_slice(&r.ptr));
        let adj = storage_init(ctx, "adj", bytemuck::cast_slice(&r.adj));
        let src = storage_init(ctx, "src", bytemuck::cast_slice(&r.src));
        // Counts, then offsets after the scan; entry m stays 0 and becomes the total.
        let offsets = storage_zeroed(ctx, "offsets", 4 * (m as u64 + 1));
        scope.close().map_err(out_of_memory)?;

        let mut rec = Recorder::new(ctx, 0);
        let m = m as u32;
        let group = self.count.bind(ctx, &[&ptr, &adj, &src, &offsets]);
        rec.dispatch(&self.count, &group, Params::new(m), groups_for(m, WG));
        self.exclusive_scan(&mut rec, &offsets, m + 1);
        let total = rec.download_bytes(&offsets, 4 * u64::from(m), 4)?;
        let total = u32::from_le_bytes(total.try_into().expect("4 bytes"));

        let batch = (max_binding / TRIANGLE_BYTES).clamp(1, u64::from(total.max(1)));
        let scope = ctx.scope();
        let output = storage_zeroed(ctx, "triangles", TRIANGLE_BYTES * batch);
        scope.close().map_err(out_of_memory)?;
        let mut triangles = Vec::with_capacity(total as usize);
        let group = self.write.bind(ctx, &[&ptr, &adj, &src, &offsets, &output]);
        for lo in (0..u64::from(total)).step_by(batch as usize) {
            let hi = (lo + batch).min(u64::from(total));
            let params = Params {
                lo: lo as u32,
                hi: hi as u32,
                ..Params::new(m)
            };
            rec.dispatch(&self.write, &group, params, groups_for(m, WG));
            let raw = rec.download_bytes(&output, 0, TRIANGLE_BYTES * (hi - lo))?;
            let words: &[u32] = bytemuck::cast_slice(&raw);
            triangles.extend(words.chunks_exact(3).map(|t| [t[0], t[1], t[2]]));
        }
        Ok(triangles)
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
    // Each edge closes at most min(|out(u)|, |out(v)|) triangles.
    let degree = |u: u32| u64::from(r.ptr[u as usize + 1] - r.ptr[u as usize]);
    let bound: u64 = (0..r.n_edges())
        .map(|e| degree(r.src[e]).min(degree(r.adj[e])))
        .sum();
    if bound > u64::from(u32::MAX) {
        return too_large(format!(
            "the reciprocal graph may hold up to {bound} triangles, more than the kernel's u32 \
             offsets can index"
        ));
    }
    Ok(())
}
