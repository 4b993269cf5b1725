// tree_reduce: what reduce and reduce_vector share — the combining operation and one
// workgroup's tree reduction (log2(WG) steps, each followed by a barrier: every loop bounded).
// OP (pipeline constant): 0 = sum, 1 = maximum (of non-negative values).

override OP: u32 = 0u;
/// Inputs combined by one invocation before the tree.
const ITEMS: u32 = 4u;

var<workgroup> part: array<Acc, WG>;

fn combine(a: Acc, b: Acc) -> Acc {
    if (OP == 0u) {
        return acc_merge(a, b);
    }
    return select(a, b, acc_value(b) > acc_value(a));
}

// The combination of every invocation's `acc` in the workgroup (call from uniform control flow).
fn workgroup_combine(lid: u32, acc: Acc) -> Acc {
    part[lid] = acc;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if (lid < stride) {
            part[lid] = combine(part[lid], part[lid + stride]);
        }
        workgroupBarrier();
    }
    return part[0];
}
