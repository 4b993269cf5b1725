// gather_gradient_carries: one level of the carry fix-up of gather_gradient, itself a bounded
// segmented reduction. Input: `params.n` carries (key_in = segment, val_in = partial sum) with
// non-decreasing keys; each invocation reduces a fixed run of RUN carries. A key whose carries
// start inside the run is owned: their sum is added to grad_acc[seg_node[key]]. The run's first
// key, when its carries started in an earlier run, goes to the next level's carry. Each level
// divides the count by RUN, so a hub with millions of entries takes a few levels of bounded
// work instead of one unbounded loop (docs/GPU.md §1.1).

const RUN: u32 = 32u;

@group(1) @binding(0) var<storage, read> key_in: array<u32>;
@group(1) @binding(1) var<storage, read> val_in: array<Acc>;
@group(1) @binding(2) var<storage, read> seg_node: array<u32>;
@group(1) @binding(3) var<storage, read_write> grad_acc: array<Acc>;
@group(1) @binding(4) var<storage, read_write> key_out: array<u32>;
@group(1) @binding(5) var<storage, read_write> val_out: array<Acc>;

fn flush(run: u32, s: u32, sum: Acc, carried: bool) {
    if (carried) {
        val_out[run] = sum;
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
    var s = key_in[first];
    var carried = run != 0u && key_in[first - 1u] == s;
    key_out[run] = s;
    val_out[run] = acc_zero();
    var sum = acc_zero();
    for (var i = first; i < last; i++) {
        let key = key_in[i];
        if (key != s) {
            flush(run, s, sum, carried);
            carried = false;
            s = key;
            sum = acc_zero();
        }
        sum = acc_merge(sum, val_in[i]);
    }
    flush(run, s, sum, carried);
}
