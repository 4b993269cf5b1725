// resample: the null statistics of the resampling tests (src/stats/permutation.rs), compiled after
// shaders/philox.wgsl. CPU twin: src/backend/cpu/resample.rs.
//
// One workgroup per (resample, chunk of K · WG items); each invocation adds the terms of K items
// (every loop bounded: at most K · 33 iterations for sign flips, K · 16 for splits, K for
// permutations, below lavapipe's 65,535 per invocation) into two sums, the workgroup adds
// them in a tree and writes `partial[2 group]`, `partial[2 group + 1]` with
// `group = (resample − base) · chunks + chunk`; the host adds the chunks of each resample.
// params: n = items, base = first resample, lo = chunks, hi = resamples in this dispatch.
// config: key (2 words), then per TEST: sign flips: cycles; permutations: states.
//
// TEST (pipeline constant):
//   0 sign flips:   item = a word of 32 cycles; term Σ_c ±p_c, sign from bit c of the resample's
//                   Philox stream (reals[c] = p_c).
//   1 splits:       item = a pair; n* = binomial_draw(ints[5i..5i+5]), λ = reals[i];
//                   term (log(n*+½) − log(m−n*+½) − λ)² / (1/(n*+½) + 1/(m−n*+½)).
//   2 permutations: item = a pair (ints[2i], ints[2i+1]) of compact states; values holds the
//                   batch's permuted potentials (shaders/resample_permute.wgsl), resample r's
//                   at offset (r − base) · states; y = (V[π a] − V[π b]) · reals[2i+1];
//                   terms x̃ y and y², x̃ = reals[2i].

override TEST: u32;
// Items per invocation per dispatch; kept in sync with RESAMPLE_ITEMS in
// src/backend/gpu/shaders.rs.
const K: u32 = 64u;
const LN2 = 0.6931471805599453;

@group(1) @binding(0) var<storage, read> config: array<u32>;
@group(1) @binding(1) var<storage, read> ints: array<u32>;
@group(1) @binding(2) var<storage, read> reals: array<Real>;
@group(1) @binding(3) var<storage, read> values: array<Real>;
@group(1) @binding(4) var<storage, read_write> partial: array<Acc>;

var<workgroup> sums0: array<Acc, WG>;
var<workgroup> sums1: array<Acc, WG>;

// log(n + ½) = log(a / 2), a = 2n + 1 = 2^k (1 + u), u ∈ [0, 1): exact u, then the prelude's
// log1p_unit (f64: to ~1e-19; f32: to f32 rounding).
fn log_half(n: u32) -> Real {
    let a = 2u * n + 1u;
    let k = firstLeadingBit(a);
    let top = 1u << k;
    let u = Real(a - top) / Real(top);
    return Real(i32(k) - 1) * Real(LN2) + log1p_unit(u);
}

fn terms(i: u32, resample: u32, key: vec2<u32>) -> vec2<Real> {
    if (TEST == 0u) {
        let bits = philox_block(key, i / 4u, resample, 0u)[i % 4u];
        let first = 32u * i;
        let last = min(first + 32u, config[2]);
        var sum = Real(0.0);
        for (var c = first; c < last; c++) {
            let p = reals[c];
            sum += select(-p, p, ((bits >> (c - first)) & 1u) == 1u);
        }
        return vec2<Real>(sum, Real(0.0));
    } else if (TEST == 1u) {
        let b = Binomial(ints[5u * i], ints[5u * i + 1u], ints[5u * i + 2u], ints[5u * i + 3u],
                         ints[5u * i + 4u]);
        let n = binomial_draw(b, key, i, resample);
        let rest = b.trials - n;
        let d = log_half(n) - log_half(rest) - reals[i];
        let variance = Real(1.0) / (Real(n) + Real(0.5)) + Real(1.0) / (Real(rest) + Real(0.5));
        return vec2<Real>(d * d / variance, Real(0.0));
    }
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
    let key = vec2<u32>(config[0], config[1]);
    var s0 = acc_zero();
    var s1 = acc_zero();
    for (var k = 0u; k < K; k++) {
        let i = (chunk * K + k) * WG + lid;
        if (i < params.n) {
            let t = terms(i, resample, key);
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
