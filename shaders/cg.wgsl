// cg: what the device-side conjugate-gradient kernels share (cg_update, cg_product,
// cg_coefficients; host side src/backend/gpu/cg.rs). The CG coefficients live on the device in
// `CgScalars`, so that an iteration needs no read-back: the host reads the state every few
// iterations to learn whether the solve has stopped. The algorithm is the host's
// `newton::Cg::solve` (Chronopoulos–Gear preconditioned CG), step for step.

// Why a solve stopped (`CgState.done`); 0 while it runs. Kept in sync with `cg.rs`.
const RUNNING: u32 = 0u;
const CONVERGED: u32 = 1u;
const RADIUS: u32 = 2u;
const BREAKDOWN: u32 = 3u;
const LIMIT: u32 = 4u;

// The solve's scalars. Layout kept in sync with `cg.rs` (`StateLayout`): four Reals, four u32,
// eight Reals.
struct CgState {
    // Set by the host for each solve.
    mu: Real,
    radius: Real,
    // The previous solve's ∇ᵀP∇ and forcing term (when `has_last` ≠ 0).
    g_last: Real,
    eta_last: Real,
    has_last: u32,
    // Most updates (the host loop's guard).
    limit: u32,
    // Updates made so far, and RUNNING or why the solve stopped.
    iteration: u32,
    done: u32,
    // Written by cg_coefficients.
    alpha: Real,
    beta: Real,
    gamma_old: Real,
    alpha_old: Real,
    goal: Real,
    // For the host: this solve's ∇ᵀP∇ and forcing term, and ‖δ‖∞ when it left the radius.
    gamma0: Real,
    eta: Real,
    size: Real,
}

// The state and the per-workgroup partial results of the per-state kernels: `params.extra`
// (= P, workgroups over the states, ITEMS × WG states each) each of rᵀu (sums, [0, P)), ‖x‖∞ (maxima, [P, 2P)) and
// wᵀu (sums, [2P, 3P)).
struct CgScalars {
    state: CgState,
    partials: array<Acc>,
}

// States per invocation of the per-state kernels (cg_update, cg_product): a workgroup covers
// ITEMS × WG states.
const ITEMS: u32 = 4u;
// The workgroup's values are combined in two levels of SPAN (SPAN² = WG), two barriers in all
// instead of a log2(WG)-step tree's eight. On lavapipe, where a workgroup's invocations are
// coroutines of one thread, workgroups and barriers are costly: one state per invocation and
// the tree made a hard-log fit about twice as slow per CG iteration (docs/GPU.md §3.4).
const SPAN: u32 = 16u;

var<workgroup> sums: array<Acc, WG>;
var<workgroup> maxima: array<Real, WG>;
var<workgroup> span_sums: array<Acc, SPAN>;
var<workgroup> span_maxima: array<Real, SPAN>;

struct SumMax {
    sum: Acc,
    largest: Real,
}

// The workgroup's sum of `x` and maximum of non-negative `m`, returned to every invocation (call
// from uniform control flow). Calls may follow each other without a barrier between them: the
// second writes `sums` only after every invocation passed its first barrier.
fn workgroup_sum_max(lid: u32, x: Acc, m: Real) -> SumMax {
    sums[lid] = x;
    maxima[lid] = m;
    workgroupBarrier();
    if (lid < SPAN) {
        var s = acc_zero();
        var largest = Real(0.0);
        for (var j = 0u; j < SPAN; j++) {
            s = acc_merge(s, sums[lid * SPAN + j]);
            largest = max(largest, maxima[lid * SPAN + j]);
        }
        span_sums[lid] = s;
        span_maxima[lid] = largest;
    }
    workgroupBarrier();
    var total = SumMax(acc_zero(), Real(0.0));
    for (var j = 0u; j < SPAN; j++) {
        total.sum = acc_merge(total.sum, span_sums[j]);
        total.largest = max(total.largest, span_maxima[j]);
    }
    return total;
}
