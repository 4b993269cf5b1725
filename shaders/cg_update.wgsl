// cg_update: the vector updates of one CG iteration and the preconditioning of the next, ITEMS
// states per invocation (`params.n` states, `params.extra` workgroups over them). OP (pipeline
// constant):
//   0  start   u = P r, with x = 0 (the host cleared it and copied b into r)
//   1  update  unless the solve has stopped: p ← βp + u, s ← βs + w, x ← x + αp, r ← r − αs,
//              then u = P r
// Both write the workgroup's partial rᵀu and ‖x‖∞ for cg_coefficients (also once stopped: the
// partials are then not read). The operations and their order are the host's
// (`newton::Cg::solve`). Shared definitions: shaders/cg.wgsl.

override OP: u32 = 1u;

@group(1) @binding(0) var<storage, read_write> cg: CgScalars;
@group(1) @binding(1) var<storage, read> inverse_diagonal: array<Real>;
@group(1) @binding(2) var<storage, read_write> r: array<Real>;
@group(1) @binding(3) var<storage, read_write> u: array<Real>;
@group(1) @binding(4) var<storage, read> w: array<Real>;
@group(1) @binding(5) var<storage, read_write> p: array<Real>;
@group(1) @binding(6) var<storage, read_write> s: array<Real>;
@group(1) @binding(7) var<storage, read_write> x: array<Real>;

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
    // (The start runs before any iteration, while the state is RUNNING.)
    let running = cg.state.done == RUNNING;
    let alpha = cg.state.alpha;
    let beta = cg.state.beta;
    var gamma = acc_zero();
    var size = Real(0.0);
    for (var k = 0u; k < ITEMS; k++) {
        let i = (group * ITEMS + k) * WG + lid;
        if (running && i < params.n) {
            var ri = r[i];
            var xi = x[i];
            if (OP == 1u) {
                let pi = beta * p[i] + u[i];
                let si = beta * s[i] + w[i];
                p[i] = pi;
                s[i] = si;
                xi = xi + alpha * pi;
                ri = ri + (-alpha) * si;
                x[i] = xi;
                r[i] = ri;
            }
            let ui = inverse_diagonal[i] * ri;
            u[i] = ui;
            gamma = acc_add(gamma, ri * ui);
            size = max(size, abs(xi));
        }
    }
    let total = workgroup_sum_max(lid, gamma, size);
    if (lid == 0u) {
        cg.partials[group] = total.sum;
        cg.partials[params.extra + group] = acc_from(total.largest);
    }
}
