// cg_product: the end of a CG iteration's Hessian product, ITEMS states per invocation
// (`params.n` states, `params.extra` workgroups over them): w = H u + μ (D + I) u from the sums
// the gather left in grad_acc (λ = params.alpha, the ridge; μ = the state's damping; D = 1/P,
// the floored Hessian diagonal), then grad_acc zeroed for the next product, and the workgroup's
// partial wᵀu for cg_coefficients. Does nothing once the solve has stopped. The operations and
// their order are those of gather_gradient_finish (OP = 0) and GpuSpace::damp.
// Shared definitions: shaders/cg.wgsl.

@group(1) @binding(0) var<storage, read_write> cg: CgScalars;
@group(1) @binding(1) var<storage, read> inverse_diagonal: array<Real>;
@group(1) @binding(2) var<storage, read> u: array<Real>;
@group(1) @binding(3) var<storage, read_write> grad_acc: array<Acc>;
@group(1) @binding(4) var<storage, read_write> w: array<Real>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let group = group_index(wid, groups);
    if (group >= params.extra) {
        return;
    }
    let running = cg.state.done == RUNNING;
    let l2 = real_from_pair(params.alpha_hi, params.alpha_lo);
    let mu = cg.state.mu;
    var delta = acc_zero();
    for (var k = 0u; k < ITEMS; k++) {
        let i = (group * ITEMS + k) * WG + lid;
        if (running && i < params.n) {
            let ui = u[i];
            var wi = acc_value(acc_add(grad_acc[i], l2 * ui));
            if (mu > Real(0.0)) {
                wi = wi + mu * (ui / inverse_diagonal[i]);
                wi = wi + mu * ui;
            }
            w[i] = wi;
            grad_acc[i] = acc_zero();
            delta = acc_add(delta, wi * ui);
        }
    }
    let total = workgroup_sum_max(lid, delta, Real(0.0));
    if (lid == 0u && running) {
        cg.partials[2u * params.extra + group] = total.sum;
    }
}
