// reduce: one level of a tree reduction of sums (`Acc`). Each workgroup combines ITEMS × WG
// inputs into output[params.base + group]: ITEMS per invocation, then log2(WG) tree steps. The
// host repeats levels until one value is left; every loop is bounded. `params.n` = inputs.
// OP, ITEMS and the tree: shaders/tree_reduce.wgsl.

@group(1) @binding(0) var<storage, read> input: array<Acc>;
@group(1) @binding(1) var<storage, read_write> output: array<Acc>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let group = group_index(wid, groups);
    var acc = acc_zero();
    for (var k = 0u; k < ITEMS; k++) {
        let i = (group * ITEMS + k) * WG + lid;
        if (i < params.n) {
            acc = combine(acc, input[i]);
        }
    }
    let total = workgroup_combine(lid, acc);
    if (lid == 0u && group * ITEMS * WG < params.n) {
        output[params.base + group] = total;
    }
}
