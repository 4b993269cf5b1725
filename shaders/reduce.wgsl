// reduce: one level of a tree reduction of sums (`Acc`). Each workgroup combines ITEMS × WG
// inputs into output[params.base + group]: ITEMS per invocation, then log2(WG) tree steps. The
// host repeats levels until one value is left; every loop is bounded. `params.n` = inputs.
// OP (pipeline constant): 0 = sum, 1 = maximum (of non-negative values).

override OP: u32 = 0u;
const ITEMS: u32 = 4u;

@group(1) @binding(0) var<storage, read> input: array<Acc>;
@group(1) @binding(1) var<storage, read_write> output: array<Acc>;

var<workgroup> part: array<Acc, WG>;

fn combine(a: Acc, b: Acc) -> Acc {
    if (OP == 0u) {
        return acc_merge(a, b);
    }
    return select(a, b, acc_value(b) > acc_value(a));
}

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
    part[lid] = acc;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if (lid < stride) {
            part[lid] = combine(part[lid], part[lid + stride]);
        }
        workgroupBarrier();
    }
    if (lid == 0u && group * ITEMS * WG < params.n) {
        output[params.base + group] = part[0];
    }
}
