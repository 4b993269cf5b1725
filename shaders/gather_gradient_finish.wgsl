// gather_gradient_finish: per-state results from the accumulated sums, one invocation per state
// (`params.n` = states, λ = params.alpha, the ridge). OP (pipeline constant):
//   0  gradient                  out[f] = grad_acc[f] + λ V[f]               (per_state = V)
//   1  inverse Hessian diagonal  out[f] = 1 / max(grad_acc[f] + λ, floor[f]) (per_state = floor)
// The second is the optimiser's preconditioner; the floor keeps it finite where the curvature
// vanishes (edges with large |d|). CPU twin: src/backend/cpu/mod.rs (HostSpace::value_grad).

override OP: u32 = 0u;

@group(1) @binding(0) var<storage, read> per_state: array<Real>;
@group(1) @binding(1) var<storage, read> grad_acc: array<Acc>;
@group(1) @binding(2) var<storage, read_write> out: array<Real>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let f = group_index(wid, groups) * WG + lid;
    if (f >= params.n) {
        return;
    }
    let l2 = real_from_pair(params.alpha_hi, params.alpha_lo);
    if (OP == 0u) {
        out[f] = acc_value(acc_add(grad_acc[f], l2 * per_state[f]));
    } else {
        out[f] = Real(1.0) / max(acc_value(grad_acc[f]) + l2, per_state[f]);
    }
}
