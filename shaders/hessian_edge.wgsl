// hessian_edge: the per-edge flows of a Hessian–vector product, one invocation per edge.
//
// The action's Hessian is the graph Laplacian with edge weights c_e = w_e K''(d_e) (the
// `curvature` edge_action wrote at the last evaluated point) plus λ I, so
//   (H x)_f = Σ_{e: src_e = f} flow_e − Σ_{e: dst_e = f} flow_e + λ x_f,
//   flow_e = c_e (x[src_e] − x[dst_e]).
// This pass writes `flow` (the problem's `deriv` buffer, free once the gradient is gathered);
// gather_gradient (SIGNED) and gather_gradient_finish (OP = 0, per_state = x) then form H x.
// One dispatch covers one edge batch; `params.n` = edges in the batch.
// CPU twin: src/backend/cpu/edge_action.rs (hessian_product).

@group(1) @binding(0) var<storage, read> x: array<Real>;
@group(1) @binding(1) var<storage, read> src: array<u32>;
@group(1) @binding(2) var<storage, read> dst: array<u32>;
@group(1) @binding(3) var<storage, read> curvature: array<Real>;
@group(1) @binding(4) var<storage, read_write> flow: array<Real>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let e = group_index(wid, groups) * WG + lid;
    if (e < params.n) {
        flow[e] = curvature[e] * (x[src[e]] - x[dst[e]]);
    }
}
