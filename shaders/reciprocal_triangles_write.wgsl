// reciprocal_triangles_write: pass 3 of 3 of kernel reciprocal_triangles, one invocation per
// oriented edge e = u → v (shared definitions: reciprocal_triangles.wgsl). Edge e's triangles
// are output positions offsets[e] .. offsets[e+1] (the exclusive scan of the counts); the k-th
// common out-neighbour w goes to position offsets[e] + k as its vertices sorted ascending. So the
// order is by edge, then by w: the same as the CPU twin's, with no sort.
// The output may exceed one storage binding: one dispatch writes the batch of positions
// `params.lo .. params.hi` into triangles[3 (k − lo) ..]. `params.n` = oriented edges.

@group(1) @binding(3) var<storage, read> offsets: array<u32>;
@group(1) @binding(4) var<storage, read_write> triangles: array<u32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let e = group_index(wid, groups) * WG + lid;
    if (e >= params.n) {
        return;
    }
    let first = offsets[e];
    let last = min(offsets[e + 1u], params.hi);
    if (first >= last || last <= params.lo) {
        return;
    }
    let u = src[e];
    let v = adj[e];
    var m = merge_start(e);
    for (var k = first; k < last && k - first < MAX_STEPS; k++) {
        let w = merge_next(&m);
        if (k >= params.lo) {
            let at = 3u * (k - params.lo);
            triangles[at] = min(min(u, v), w);
            triangles[at + 1u] = max(min(u, v), min(max(u, v), w));
            triangles[at + 2u] = max(max(u, v), w);
        }
    }
}
