// reciprocal_triangles_scan: pass 2 of 3 of kernel reciprocal_triangles, an exclusive prefix sum
// of u32 by reduce-then-scan (never decoupled look-back, which needs forward-progress guarantees
// that lavapipe and some GPUs lack; docs/GPU.md §1.5). Each workgroup owns a block of ITEMS × WG
// consecutive entries of data[0 .. params.n]: ITEMS per invocation, then a log2(WG)-step
// Hillis–Steele scan of the invocations' totals; every loop is bounded.
// PHASE (pipeline constant):
//   0 = reduce: sums[block] = Σ data[block];
//   1 = scan:   data[block] ← its exclusive prefix sums, plus sums[block] when `params.extra`
//               is 1 (sums = the scanned block totals of the level above; 0: a single block).
// The host reduces level by level until one block is left, scans it, then scans back down.
// CPU twin: the concatenation of the per-edge lists in src/backend/cpu/reciprocal_triangles.rs.

override PHASE: u32 = 0u;
const ITEMS: u32 = 4u;

@group(1) @binding(0) var<storage, read_write> data: array<u32>;
@group(1) @binding(1) var<storage, read_write> sums: array<u32>;

var<workgroup> part: array<u32, WG>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let block = group_index(wid, groups);
    let first = (block * WG + lid) * ITEMS;
    var items = array<u32, ITEMS>();
    var total = 0u;
    for (var k = 0u; k < ITEMS; k++) {
        if (first + k < params.n) {
            items[k] = data[first + k];
            total += items[k];
        }
    }
    // Inclusive scan of the invocations' totals.
    part[lid] = total;
    workgroupBarrier();
    for (var stride = 1u; stride < WG; stride <<= 1u) {
        var x = part[lid];
        if (lid >= stride) {
            x += part[lid - stride];
        }
        workgroupBarrier();
        part[lid] = x;
        workgroupBarrier();
    }
    if (PHASE == 0u) {
        // Spare workgroups of a 2-D grid own no entries and must not write.
        if (lid == WG - 1u && block * WG * ITEMS < params.n) {
            sums[block] = part[WG - 1u];
        }
        return;
    }
    var running = part[lid] - total;
    if (params.extra == 1u) {
        running += sums[block];
    }
    for (var k = 0u; k < ITEMS; k++) {
        let i = first + k;
        if (i < params.n) {
            data[i] = running;
        }
        running += items[k];
    }
}
