// reduce_vector: the first level of a reduction over vectors (`Real`), into sums (`Acc`) that
// reduce.wgsl finishes: ITEMS per invocation, then log2(WG) tree steps per workgroup, written to
// output[params.base + group]. `params.n` = vector length.
// OP (tree_reduce.wgsl): 0 = dot product Σ a_i b_i, 1 = max |a_i| (b is not read).

@group(1) @binding(0) var<storage, read> a: array<Real>;
@group(1) @binding(1) var<storage, read> b: array<Real>;
@group(1) @binding(2) var<storage, read_write> output: array<Acc>;

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
            if (OP == 0u) {
                acc = acc_add(acc, a[i] * b[i]);
            } else {
                acc = combine(acc, acc_from(abs(a[i])));
            }
        }
    }
    let total = workgroup_combine(lid, acc);
    if (lid == 0u && group * ITEMS * WG < params.n) {
        output[params.base + group] = total;
    }
}
