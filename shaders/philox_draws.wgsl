// philox_draws: raw draws of shaders/philox.wgsl, one invocation per item, for the tests that
// compare the GPU's stream with the CPU's bit for bit (src/backend/gpu/resample.rs).
// params: n = items, base = resample, extra = what to draw:
//   0: the Philox block [item, base, 0, 0] (4 words per item);
//   1: permute(item) over config[2] states with config[3] half bits (1 word per item).
// config: key (2 words), states, half bits.

@group(1) @binding(0) var<storage, read> config: array<u32>;
@group(1) @binding(1) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = group_index(wid, groups) * WG + lid;
    if (i >= params.n) {
        return;
    }
    let key = vec2<u32>(config[0], config[1]);
    let r = params.base;
    if (params.extra == 0u) {
        let block = philox_block(key, i, r, 0u);
        out[4u * i] = block.x;
        out[4u * i + 1u] = block.y;
        out[4u * i + 2u] = block.z;
        out[4u * i + 3u] = block.w;
    } else {
        out[i] = permute(key, config[2], config[3], r, i);
    }
}
