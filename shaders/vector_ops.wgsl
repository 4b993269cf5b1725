// vector_ops: the element-wise operations of Newton–CG, one invocation per element (`params.n`).
// OP (pipeline constant), with α = params.alpha:
//   0  axpy   y ← y + α x
//   1  scale  y ← α y        (x is not read)
//   2  mul    y ← x ∘ y      (the diagonal preconditioner, x = P)
//   3  div    y ← y / x      (the Hessian diagonal from x = P, for the damping)

override OP: u32 = 0u;

@group(1) @binding(0) var<storage, read> x: array<Real>;
@group(1) @binding(1) var<storage, read_write> y: array<Real>;

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
    let alpha = real_from_pair(params.alpha_hi, params.alpha_lo);
    if (OP == 0u) {
        y[i] = y[i] + alpha * x[i];
    } else if (OP == 1u) {
        y[i] = alpha * y[i];
    } else if (OP == 2u) {
        y[i] = x[i] * y[i];
    } else {
        y[i] = y[i] / x[i];
    }
}
