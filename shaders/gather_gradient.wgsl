// gather_gradient: the gradient as a segmented reduction of per-edge derivatives over the
// symmetric incidence list (ActionProblem::incidence: entry 2e under src_e adds +deriv_e,
// entry 2e+1 under dst_e adds −deriv_e), without atomics and with every loop bounded. With the
// pipeline constant SIGNED = false both entries add +per_edge_e: from the per-edge curvatures
// that gives the Hessian diagonal.
//
// Each invocation reduces a FIXED run of RUN consecutive entries, whatever the node boundaries
// (one invocation per node would walk a hub's millions of entries and exceed lavapipe's silent
// 65,535-iteration limit, docs/GPU.md §1.1). Segments are the non-empty nodes, in incidence order:
// segment s covers entries seg_ptr[s] .. seg_ptr[s+1] and belongs to node seg_node[s].
// - A segment that starts inside the run is owned by it: its sum within the run is added to
//   grad_acc[node] (exactly one invocation per dispatch writes a given node).
// - The run's first segment, when it started in an earlier run, is not owned: its sum goes to
//   the carry (carry_val[run], carry_key[run] = s). Runs whose first segment is owned write a
//   zero carry with the same key, so carry keys are non-decreasing.
// The carries are then summed per key by gather_gradient_carries, the same scheme one level up.
//
// One dispatch covers one batch of entries (`params.base` = first entry, `params.n` = entries)
// and one batch of per-edge values (edges `params.lo .. params.hi`; entries of other edges add 0):
// arrays larger than a storage binding are split, and the passes add up. `params.extra` =
// number of segments. CPU twin: src/backend/cpu/edge_action.rs (the per-node sum).

const RUN: u32 = 32u;
override SIGNED: bool = true;

@group(1) @binding(0) var<storage, read> per_edge: array<Real>;
@group(1) @binding(1) var<storage, read> incidence: array<u32>;
@group(1) @binding(2) var<storage, read> seg_ptr: array<u32>;
@group(1) @binding(3) var<storage, read> seg_node: array<u32>;
@group(1) @binding(4) var<storage, read_write> grad_acc: array<Acc>;
@group(1) @binding(5) var<storage, read_write> carry_val: array<Acc>;
@group(1) @binding(6) var<storage, read_write> carry_key: array<u32>;

// The segment holding global entry p: seg_ptr[s] ≤ p < seg_ptr[s+1] (binary search, ≤ 32 steps).
fn find_segment(p: u32) -> u32 {
    var lo = 0u;
    var hi = params.extra;
    for (var step = 0u; step < 32u && hi - lo > 1u; step++) {
        let mid = lo + (hi - lo) / 2u;
        if (seg_ptr[mid] <= p) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return lo;
}

fn flush(run: u32, s: u32, sum: Acc, carried: bool) {
    if (carried) {
        carry_val[run] = sum;
    } else {
        let node = seg_node[s];
        grad_acc[node] = acc_merge(grad_acc[node], sum);
    }
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let run = group_index(wid, groups) * WG + lid;
    let first = run * RUN;
    if (first >= params.n) {
        return;
    }
    let last = min(first + RUN, params.n);
    var s = find_segment(params.base + first);
    var next = seg_ptr[s + 1u];
    var carried = run != 0u && params.base + first != seg_ptr[s];
    carry_key[run] = s;
    carry_val[run] = acc_zero();
    var sum = acc_zero();
    for (var i = first; i < last; i++) {
        if (params.base + i == next) {
            flush(run, s, sum, carried);
            carried = false;
            s += 1u;
            next = seg_ptr[s + 1u];
            sum = acc_zero();
        }
        let entry = incidence[i];
        let e = entry >> 1u;
        if (e >= params.lo && e < params.hi) {
            let x = per_edge[e - params.lo];
            sum = acc_add(sum, select(x, -x, SIGNED && (entry & 1u) != 0u));
        }
    }
    flush(run, s, sum, carried);
}
