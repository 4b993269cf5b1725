// reciprocal_triangles_count: pass 1 of 3 of kernel reciprocal_triangles (count → exclusive scan
// → write), one invocation per work item (shared definitions: reciprocal_triangles.wgsl):
//   counts[item] = the common out-neighbours its slice of the intersection finds,
// so an edge's triangles are the sum over its items. `params.n` = items, `params.extra` 1 when
// they are listed (some edge is split). The host scans counts
// (n + 1 entries, the last left 0) into output offsets in place. CPU twin: `closed_by` in
// src/backend/cpu/reciprocal_triangles.rs.

@group(1) @binding(5) var<storage, read_write> counts: array<u32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let item = group_index(wid, groups) * WG + lid;
    if (item >= params.n) {
        return;
    }
    let l = lists(edge_of(item));
    var c = item_cursor(item, l);
    var count = 0u;
    for (var k = 0u; k < MAX_STEPS && next(&c); k++) {
        count++;
    }
    counts[item] = count;
}
