// cg_coefficients: one workgroup that turns the partials of cg_update and cg_product into the
// iteration's scalars, as the host's `newton::Cg::solve` does after its read-back: rᵀu (γ),
// wᵀu (δ) and ‖x‖∞; the stop tests (‖x‖∞ beyond the radius; on the first iteration the
// Eisenstat–Walker goal from `newton::forcing`; γ at the goal; α not finite and positive;
// the iteration limit); then α and β for cg_update. `params.extra` = partials per quantity; each
// invocation combines every WG-th one (at most 256 for 16.7 M states, within lavapipe's loop
// limit), then log2(WG) tree steps. Shared definitions: shaders/cg.wgsl.

@group(1) @binding(0) var<storage, read_write> cg: CgScalars;

// `newton::forcing`: the forcing term for a right-hand side with ∇ᵀP∇ = g.
fn forcing(g: Real, st: CgState) -> Real {
    var eta = Real(0.5);
    if (st.has_last != 0u) {
        let floor = Real(0.9) * st.eta_last * st.eta_last;
        var e = Real(0.9) * g / st.g_last;
        // Rust's `min(0.5)` returns 0.5 for NaN.
        if (!(e <= Real(0.5))) {
            e = Real(0.5);
        }
        eta = select(e, max(e, floor), floor > Real(0.1));
    }
    if (is_finite(eta)) {
        return max(eta, Real(1e-12));
    }
    return Real(0.5);
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
    let parts = params.extra;
    var gamma = acc_zero();
    var delta = acc_zero();
    var size = Real(0.0);
    for (var k = lid; k < parts; k += WG) {
        gamma = acc_merge(gamma, cg.partials[k]);
        size = max(size, acc_value(cg.partials[parts + k]));
        delta = acc_merge(delta, cg.partials[2u * parts + k]);
    }
    let rtu = workgroup_sum_max(lid, gamma, size);
    let g = acc_value(rtu.sum);
    let largest = rtu.largest;
    let d = acc_value(workgroup_sum_max(lid, delta, Real(0.0)).sum);
    if (lid != 0u || cg.state.done != RUNNING) {
        return;
    }
    var st = cg.state;
    if (st.iteration >= st.limit) {
        st.done = LIMIT;
    } else if (largest > st.radius) {
        st.done = RADIUS;
        st.size = largest;
    } else {
        if (st.iteration == 0u) {
            st.eta = forcing(g, st);
            st.gamma0 = g;
            st.goal = st.eta * st.eta * g;
        }
        var alpha = g / d;
        var beta = Real(0.0);
        if (st.iteration > 0u) {
            beta = g / st.gamma_old;
            alpha = g / (d - beta * g / st.alpha_old);
        }
        if (!(g > st.goal && g > Real(0.0))) {
            st.done = CONVERGED;
        } else if (!(is_finite(alpha) && alpha > Real(0.0))) {
            st.done = BREAKDOWN;
        } else {
            st.alpha = alpha;
            st.beta = beta;
            st.gamma_old = g;
            st.alpha_old = alpha;
            st.iteration += 1u;
        }
    }
    cg.state = st;
}
