// edge_action: the per-edge terms of the action, one invocation per edge.
//
//   d_e = V[src_e] − V[dst_e],  s_e = σ(−d_e),  value term w_e K(d_e),
//   deriv_e = w_e K'(d_e) = −w_e s_e,  curvature_e = w_e K''(d_e) = w_e s_e (1 − s_e)
//
// writes `deriv` and `curvature` (summed per state by gather_gradient into the gradient and the
// Hessian diagonal, the optimiser's preconditioner) and one partial value sum per workgroup
// (read by reduce). One dispatch covers one edge batch (edge arrays larger than a storage binding are
// split); `params.n` = edges in the batch, `params.base` = index of the batch's first partial.
// CPU twin: src/backend/cpu/edge_action.rs.

@group(1) @binding(0) var<storage, read> v: array<Real>;
@group(1) @binding(1) var<storage, read> src: array<u32>;
@group(1) @binding(2) var<storage, read> dst: array<u32>;
@group(1) @binding(3) var<storage, read> weight: array<Real>;
@group(1) @binding(4) var<storage, read_write> deriv: array<Real>;
@group(1) @binding(5) var<storage, read_write> curvature: array<Real>;
@group(1) @binding(6) var<storage, read_write> partial: array<Acc>;

var<workgroup> sums: array<Acc, WG>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let group = group_index(wid, groups);
    let e = group * WG + lid;
    var term = acc_zero();
    if (e < params.n) {
        let d = v[src[e]] - v[dst[e]];
        let w = weight[e];
        let s = sigmoid_neg(d);
        deriv[e] = -w * s;
        curvature[e] = w * s * (Real(1.0) - s);
        term = acc_from(w * softplus_neg(d));
    }
    // Tree sum over the workgroup: log2(WG) steps.
    sums[lid] = term;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if (lid < stride) {
            sums[lid] = acc_merge(sums[lid], sums[lid + stride]);
        }
        workgroupBarrier();
    }
    if (lid == 0u && group * WG < params.n) {
        partial[params.base + group] = sums[0];
    }
}
