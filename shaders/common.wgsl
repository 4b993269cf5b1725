// Shared by every kernel: the dispatch parameters and the 2-D grid index. Loaded after a
// precision prelude (`precision/f64.wgsl` or `precision/f32.wgsl`, which define `Real`, the
// element type of vectors, and `Acc`, a running sum) and before the kernel itself.

// Parameters of one dispatch, bound from a ring buffer with a dynamic offset so that many
// dispatches can be recorded before one submit. The meaning of `base`, `lo`, `hi` and `extra`
// is documented by each kernel.
// Kept in sync with `Params` in src/backend/gpu/buffers.rs.
struct Params {
    // Items this dispatch covers (edges, incidence entries, runs or vector elements).
    n: u32,
    base: u32,
    lo: u32,
    hi: u32,
    extra: u32,
    pad: u32,
    // A host scalar split as `hi + lo` (see `real_from_pair`).
    alpha_hi: f32,
    alpha_lo: f32,
}

@group(0) @binding(0) var<uniform> params: Params;

// Invocations per workgroup (the WebGPU default limit).
const WG: u32 = 256u;

// Workgroup number in a 2-D grid: large dispatches use `y` because each dimension is limited to
// 65,535 workgroups.
fn group_index(wid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return wid.y * groups.x + wid.x;
}
