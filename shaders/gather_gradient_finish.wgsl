// gather_gradient_finish: the gradient from the accumulated sums, one invocation per state:
//   grad[f] = grad_acc[f] + λ V[f]     (λ = params.alpha, the ridge; `params.n` = states)

@group(1) @binding(0) var<storage, read> v: array<Real>;
@group(1) @binding(1) var<storage, read> grad_acc: array<Acc>;
@group(1) @binding(2) var<storage, read_write> grad: array<Real>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let f = group_index(wid, groups) * WG + lid;
    if (f < params.n) {
        let l2 = real_from_pair(params.alpha_hi, params.alpha_lo);
        grad[f] = acc_value(acc_add(grad_acc[f], l2 * v[f]));
    }
}
