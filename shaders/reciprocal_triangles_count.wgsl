// reciprocal_triangles_count: pass 1 of 3 of kernel reciprocal_triangles (count → exclusive scan
// → write), one invocation per oriented edge e (shared definitions: reciprocal_triangles.wgsl):
//   counts[e] = |out(src[e]) ∩ out(adj[e])|,  the number of triangles e closes.
// `params.n` = oriented edges. The host scans counts (n + 1 entries, the last left 0) into
// output offsets in place. CPU twin: `closed_by` in src/backend/cpu/reciprocal_triangles.rs.

@group(1) @binding(3) var<storage, read_write> counts: array<u32>;

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
    var m = merge_start(e);
    var count = 0u;
    for (var k = 0u; k < MAX_STEPS && merge_next(&m) != NONE; k++) {
        count++;
    }
    counts[e] = count;
}
