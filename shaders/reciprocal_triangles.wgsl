// reciprocal_triangles: what the count and write passes share; compiled before each of them
// (after the precision prelude and common.wgsl). CPU twin: src/backend/cpu/reciprocal_triangles.rs.
//
// The reciprocal graph R (pairs seen in both directions), oriented from lower to higher
// (degree, id) rank, in CSR form: oriented edge e is src[e] → adj[e]; the out-list of u is
// adj[out_ptr[u] .. out_ptr[u+1]], sorted by id. Under that orientation every out-list has at
// most √(2|R|) entries. The triangles closed by e = u → v are the common out-neighbours w of u
// and v, found in ascending order.
//
// Balanced by work. With a the shorter of the two out-lists and b the longer, a merge takes
// |a| + |b| steps and binary searches of a's entries in b take |a| · ⌈log2(|b| + 1)⌉. An edge
// whose cheaper method takes at most HEAVY steps is one work item, intersected whole by that
// method (short lists, |a| + |b| ≤ SHORT, always by a merge: a search is a loop in a loop, and
// invocations of one warp that mix the two methods pay for both). A heavy edge is split into
// items of SLICE(|b|) consecutive entries of a, each searched in b, so no item takes more than
// about HEAVY steps however long the lists: a hub's intersections do not stall the invocations
// beside them. The host lists the items in edge order (item_edge, item_slice) by the same rule,
// with `slice_len` below; one invocation runs one item. When no edge is split (`params.extra`
// 0) the items are the edges and the two lists are neither uploaded nor read.

// Cap on the steps of one item (a guard: items take at most about HEAVY). The host refuses
// graphs whose longest out-list exceeds MAX_STEPS / 2, so all loops of an invocation together
// stay far below lavapipe's silent 65,535-iteration limit. Kept in sync with MERGE_STEPS in
// src/backend/gpu/shaders.rs.
const MAX_STEPS: u32 = 40000u;
// Most steps of one item; kept in sync with HEAVY_STEPS in src/backend/gpu/shaders.rs.
const HEAVY: u32 = 128u;
// Intersections of at most this many merge steps are merged, whatever a search would cost.
const SHORT: u32 = 32u;
// A whole edge is searched only when its searches take fewer than 1 / SEARCH_WEIGHT of the merge's
// steps: a search step (a load, a compare, the inner loop's bookkeeping) costs about two merge
// steps (measured on lavapipe: BENCHMARKS.md, "GPU path").
const SEARCH_WEIGHT: u32 = 2u;
// item_slice of an item that is a whole edge.
const WHOLE: u32 = 0xffffffffu;

@group(1) @binding(0) var<storage, read> out_ptr: array<u32>;
@group(1) @binding(1) var<storage, read> adj: array<u32>;
@group(1) @binding(2) var<storage, read> src: array<u32>;
@group(1) @binding(3) var<storage, read> item_edge: array<u32>;
@group(1) @binding(4) var<storage, read> item_slice: array<u32>;

// The out-lists of oriented edge e = u → v, the shorter one as a (positions a .. a_end of adj)
// and the other as b; `swapped` when a is v's list.
struct Lists {
    a: u32,
    a_end: u32,
    b: u32,
    b_end: u32,
    swapped: bool,
}

fn lists(e: u32) -> Lists {
    let u = src[e];
    let v = adj[e];
    let l = Lists(out_ptr[u], out_ptr[u + 1u], out_ptr[v], out_ptr[v + 1u], false);
    if (l.b_end - l.b < l.a_end - l.a) {
        return Lists(l.b, l.b_end, l.a, l.a_end, true);
    }
    return l;
}

// Steps of a binary search over n entries: ⌈log2(n + 1)⌉.
fn search_steps(n: u32) -> u32 {
    return 32u - countLeadingZeros(n);
}

// Entries of a per item of a heavy edge whose longer list has n entries; kept in sync with
// `slice_len` in src/backend/gpu/reciprocal_triangles.rs.
fn slice_len(n: u32) -> u32 {
    return max(1u, HEAVY / search_steps(n));
}

// The first position in lo .. hi whose entry is ≥ x (hi when there is none); ≤ 32 steps.
fn lower_bound(x: u32, lo: u32, hi: u32) -> u32 {
    var first = lo;
    var last = hi;
    for (var k = 0u; k < 32u && first < last; k++) {
        let mid = first + (last - first) / 2u;
        if (adj[mid] < x) {
            first = mid + 1u;
        } else {
            last = mid;
        }
    }
    return first;
}

// An intersection of a's entries i .. i_end with b's j .. j_end in progress, by a merge or by
// binary searches (`search`). The last common out-neighbour w found is at hit_a in a and hit_b
// in b.
struct Cursor {
    i: u32,
    i_end: u32,
    j: u32,
    j_end: u32,
    steps: u32,
    search: bool,
    hit_a: u32,
    hit_b: u32,
}

// The oriented edge of work item `item`.
fn edge_of(item: u32) -> u32 {
    if (params.extra == 0u) {
        return item;
    }
    return item_edge[item];
}

// The intersection of work item `item`, and the lists of its edge.
fn item_cursor(item: u32, l: Lists) -> Cursor {
    var slice = WHOLE;
    if (params.extra != 0u) {
        slice = item_slice[item];
    }
    let len_a = l.a_end - l.a;
    let len_b = l.b_end - l.b;
    if (slice == WHOLE) {
        let merge = len_a + len_b;
        let search = merge > SHORT && SEARCH_WEIGHT * len_a * search_steps(len_b) < merge;
        return Cursor(l.a, l.a_end, l.b, l.b_end, 0u, search, 0u, 0u);
    }
    let per = slice_len(len_b);
    let first = l.a + min(slice * per, len_a);
    return Cursor(first, min(first + per, l.a_end), l.b, l.b_end, 0u, true, 0u, 0u);
}

// Advances to the next common entry; false when there is none left. Two loops, not one with a
// branch inside: a merge then runs no nested loop.
fn next(c: ptr<function, Cursor>) -> bool {
    if ((*c).search) {
        return next_by_search(c);
    }
    return next_by_merge(c);
}

fn next_by_merge(c: ptr<function, Cursor>) -> bool {
    for (; (*c).steps < MAX_STEPS && (*c).i < (*c).i_end && (*c).j < (*c).j_end; (*c).steps++) {
        let x = adj[(*c).i];
        let y = adj[(*c).j];
        if (x < y) {
            (*c).i++;
        } else if (x > y) {
            (*c).j++;
        } else {
            return hit(c);
        }
    }
    return false;
}

fn next_by_search(c: ptr<function, Cursor>) -> bool {
    for (; (*c).steps < MAX_STEPS && (*c).i < (*c).i_end && (*c).j < (*c).j_end; (*c).steps++) {
        let x = adj[(*c).i];
        (*c).j = lower_bound(x, (*c).j, (*c).j_end);
        if ((*c).j < (*c).j_end && adj[(*c).j] == x) {
            return hit(c);
        }
        (*c).i++;
    }
    return false;
}

// Records a common entry at the cursors and moves both past it.
fn hit(c: ptr<function, Cursor>) -> bool {
    (*c).hit_a = (*c).i;
    (*c).hit_b = (*c).j;
    (*c).i++;
    (*c).j++;
    (*c).steps++;
    return true;
}

// The oriented edges u → w and v → w of the cursor's last hit.
fn hit_edges(c: Cursor, l: Lists) -> vec2<u32> {
    if (l.swapped) {
        return vec2<u32>(c.hit_b, c.hit_a);
    }
    return vec2<u32>(c.hit_a, c.hit_b);
}
