// reciprocal_triangles_write: pass 3 of 3 of kernel reciprocal_triangles, one invocation per
// work item of one chunk (shared definitions: reciprocal_triangles.wgsl). Item i's triangles
// are output positions offsets[i] .. offsets[i+1] (the exclusive scan of the counts, modulo
// 2^32); its k-th common out-neighbour w of edge e = u → v goes to position offsets[i] + k as
// the oriented-edge triple (e, u → w, v → w). Items run in edge order and an edge's items in
// the order of their slices of the shorter list, so the order is by edge, then by w: the same
// as the CPU twin's, with no sort.
// The output is bounded: one dispatch covers the items `params.base .. params.base + params.n`
// of a chunk of whole edges (`params.extra` as in the count pass), whose triangles (`params.hi` of them, at most one storage binding)
// start at offset `params.lo`; item i writes triangles[3 (offsets[i] − lo) ..]. Offsets are u32
// and wrap past 2^32 triangles: differences within a chunk are exact all the same.

@group(1) @binding(5) var<storage, read> offsets: array<u32>;
@group(1) @binding(6) var<storage, read_write> triangles: array<u32>;

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
    let item = params.base + local;
    let first = offsets[item] - params.lo;
    let last = min(offsets[item + 1u] - params.lo, params.hi);
    if (first >= last) {
        return;
    }
    let e = edge_of(item);
    let l = lists(e);
    var c = item_cursor(item, l);
    for (var k = first; k < last && k - first < MAX_STEPS && next(&c); k++) {
        let edges = hit_edges(c, l);
        let at = 3u * k;
        triangles[at] = e;
        triangles[at + 1u] = edges.x;
        triangles[at + 2u] = edges.y;
    }
}
