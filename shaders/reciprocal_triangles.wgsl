// reciprocal_triangles: what the count and write passes share; compiled before each of them
// (after the precision prelude and common.wgsl). CPU twin: src/backend/cpu/reciprocal_triangles.rs.
//
// The reciprocal graph R (pairs seen in both directions), oriented from lower to higher
// (degree, id) rank, in CSR form: oriented edge e is src[e] → adj[e]; the out-list of u is
// adj[out_ptr[u] .. out_ptr[u+1]], sorted by id. Under that orientation every out-list has at
// most √(2|R|) entries, so the merge of two of them is short even on hubs. The triangles closed
// by e = u → v are the common out-neighbours w of u and v, found in ascending order.

// Most merge steps one invocation takes. The host only dispatches graphs whose longest out-list
// is at most MAX_STEPS / 2, so a merge (≤ |out(u)| + |out(v)| steps) never reaches the cap, and
// all loops of an invocation together stay below lavapipe's silent 65,535-iteration limit.
// Kept in sync with MERGE_STEPS in src/backend/gpu/shaders.rs.
const MAX_STEPS: u32 = 40000u;
// Returned by merge_next at the end of the merge (not an edge position: positions are < 2^32 − 1).
const NONE: u32 = 0xffffffffu;

@group(1) @binding(0) var<storage, read> out_ptr: array<u32>;
@group(1) @binding(1) var<storage, read> adj: array<u32>;
@group(1) @binding(2) var<storage, read> src: array<u32>;

// A merge of the out-lists of u and v: cursors i (into u's list) and j (into v's), and the
// position in v's list of the last common out-neighbour found.
struct Merge {
    i: u32,
    i_end: u32,
    j: u32,
    j_end: u32,
    steps: u32,
    hit_j: u32,
}

fn merge_start(e: u32) -> Merge {
    let u = src[e];
    let v = adj[e];
    return Merge(out_ptr[u], out_ptr[u + 1u], out_ptr[v], out_ptr[v + 1u], 0u, NONE);
}

// The next common out-neighbour w as its position in u's list (the oriented edge u → w; its
// position in v's list, the edge v → w, is left in hit_j), or NONE when the merge is done.
fn merge_next(m: ptr<function, Merge>) -> u32 {
    for (; (*m).steps < MAX_STEPS && (*m).i < (*m).i_end && (*m).j < (*m).j_end; (*m).steps++) {
        let a = adj[(*m).i];
        let b = adj[(*m).j];
        if (a < b) {
            (*m).i++;
        } else if (a > b) {
            (*m).j++;
        } else {
            let hit = (*m).i;
            (*m).hit_j = (*m).j;
            (*m).i++;
            (*m).j++;
            (*m).steps++;
            return hit;
        }
    }
    return NONE;
}
