// resample: the null statistic of the explanatory-power test (src/stats/permutation.rs), after
// shaders/resample_permute.wgsl has written each resample's permuted potentials. CPU twin:
// src/backend/cpu/resample.rs.
//
// One workgroup per (resample, chunk of K · WG items); each invocation adds the terms of K items
// (K loop iterations, below lavapipe's 65,535 per invocation) into two sums, the workgroup adds
// them in a tree and writes `partial[2 group]`, `partial[2 group + 1]` with
// `group = (resample − base) · chunks + chunk`; the host adds the chunks of each resample.
// params: n = items, base = first resample, lo = chunks, hi = resamples in this dispatch.
// config: key (2 words), states, half bits (the permutation's; this pass reads only states).
//
// item = a pair (ints[2i], ints[2i+1]) of compact states; values holds the batch's permuted
// potentials, resample r's at offset (r − base) · states; y = (V[π a] − V[π b]) · reals[2i+1];
// terms x̃ y and y², x̃ = reals[2i].

// Items per invocation per dispatch; kept in sync with RESAMPLE_ITEMS in
// src/backend/gpu/shaders.rs.
const K: u32 = 64u;

@group(1) @binding(0) var<storage, read> config: array<u32>;
@group(1) @binding(1) var<storage, read> ints: array<u32>;
@group(1) @binding(2) var<storage, read> reals: array<Real>;
@group(1) @binding(3) var<storage, read> values: array<Real>;
@group(1) @binding(4) var<storage, read_write> partial: array<Acc>;

var<workgroup> sums0: array<Acc, WG>;
var<workgroup> sums1: array<Acc, WG>;

fn terms(i: u32, resample: u32) -> vec2<Real> {
    let offset = (resample - params.base) * config[2];
    let y = (values[offset + ints[2u * i]] - values[offset + ints[2u * i + 1u]]) * reals[2u * i + 1u];
    return vec2<Real>(reals[2u * i] * y, y * y);
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let group = group_index(wid, groups);
    let chunks = params.lo;
    if (group >= chunks * params.hi) {
        return;
    }
    let chunk = group % chunks;
    let resample = params.base + group / chunks;
    var s0 = acc_zero();
    var s1 = acc_zero();
    for (var k = 0u; k < K; k++) {
        let i = (chunk * K + k) * WG + lid;
        if (i < params.n) {
            let t = terms(i, resample);
            s0 = acc_add(s0, t.x);
            s1 = acc_add(s1, t.y);
        }
    }
    sums0[lid] = s0;
    sums1[lid] = s1;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if (lid < stride) {
            sums0[lid] = acc_merge(sums0[lid], sums0[lid + stride]);
            sums1[lid] = acc_merge(sums1[lid], sums1[lid + stride]);
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        partial[2u * group] = sums0[0];
        partial[2u * group + 1u] = sums1[0];
    }
}
