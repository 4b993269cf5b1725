// resample_permute: the permuted potentials of a batch of resamples for kernel `resample`'s
// permutation test, one invocation per (resample, state):
//   out[(r − base) · n + s] = values[π_r(s)],  π_r = permute(resample r)
// so that the statistic pass reads each pair's ends from memory instead of evaluating the Feistel
// permutation twice per pair. params: n = states, base = first resample, hi = resamples in the
// batch. config: key (2 words), states, half bits. CPU twin: the permuted values in
// src/backend/cpu/resample.rs.

@group(1) @binding(0) var<storage, read> config: array<u32>;
@group(1) @binding(1) var<storage, read> values: array<Real>;
@group(1) @binding(2) var<storage, read_write> out: array<Real>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = group_index(wid, groups) * WG + lid;
    let n = params.n;
    if (i >= n * params.hi) {
        return;
    }
    let state = i % n;
    let resample = params.base + i / n;
    out[i] = values[permute(vec2<u32>(config[0], config[1]), config[2], config[3], resample, state)];
}
