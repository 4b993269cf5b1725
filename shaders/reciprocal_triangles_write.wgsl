// reciprocal_triangles_write: pass 3 of 3 of kernel reciprocal_triangles, one invocation per
// oriented edge e = u → v of one chunk of edges (shared definitions: reciprocal_triangles.wgsl).
// Edge e's triangles are output positions offsets[e] .. offsets[e+1] (the exclusive scan of the
// counts, modulo 2^32); the k-th common out-neighbour w goes to position offsets[e] + k as the
// oriented-edge triple (e, u → w, v → w). So the order is by edge, then by w: the same as the
// CPU twin's, with no sort.
// The output is bounded: one dispatch covers the chunk of edges `params.base ..
// params.base + params.n`, whose triangles (`params.hi` of them, at most one storage binding)
// start at offset `params.lo`; edge e writes triangles[3 (offsets[e] − lo) ..]. Offsets are
// u32 and wrap past 2^32 triangles: differences within a chunk are exact all the same.

@group(1) @binding(3) var<storage, read> offsets: array<u32>;
@group(1) @binding(4) var<storage, read_write> triangles: array<u32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let local = group_index(wid, groups) * WG + lid;
    if (local >= params.n) {
        return;
    }
    let e = params.base + local;
    let first = offsets[e] - params.lo;
    let last = min(offsets[e + 1u] - params.lo, params.hi);
    if (first >= last) {
        return;
    }
    var m = merge_start(e);
    for (var k = first; k < last && k - first < MAX_STEPS; k++) {
        let i = merge_next(&m);
        let at = 3u * k;
        triangles[at] = e;
        triangles[at + 1u] = i;
        triangles[at + 2u] = m.hit_j;
    }
}
