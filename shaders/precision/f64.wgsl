// Precision prelude for devices with SHADER_F64: vectors, weights, per-edge terms and sums are
// all f64.
//
// Only f64 + − * / and conversions are used: f64 `exp`/`log` return garbage on lavapipe and
// RADV (docs/GPU.md §1.2). The two transcendental functions the action needs are evaluated here to
// full f64 accuracy from those operations alone:
//   e^(−a) = 2^(−k) e^(−r),  k = round(a / ln 2),  r = a − k ln 2 ∈ [−ln2/2, ln2/2]  (Taylor, degree 13)
//   log(1 + u) = 2 atanh(z) = 2 (z + z³/3 + z⁵/5 + …),  z = u / (2 + u) ∈ [0, 1/3]    (18 terms)
// so the GPU's action equals the CPU's to a few ulp per term, and the optimiser's line search,
// which compares values whose differences shrink to ~1e-12 relative, sees no extra noise.

alias Real = f64;
// A running sum: plain f64.
alias Acc = f64;

fn acc_zero() -> Acc {
    return f64(0.0);
}

fn acc_from(x: Real) -> Acc {
    return x;
}

fn acc_add(a: Acc, x: Real) -> Acc {
    return a + x;
}

fn acc_merge(a: Acc, b: Acc) -> Acc {
    return a + b;
}

fn acc_value(a: Acc) -> Real {
    return a;
}

// A host scalar sent as two f32 (`hi = f32(x)`, `lo = f32(x − hi)`): 48 of its 53 bits.
fn real_from_pair(hi: f32, lo: f32) -> Real {
    return f64(hi) + f64(lo);
}

// ln 2 split so that `k * LN2_HI` is exact for k < 2^20 (fdlibm's constants).
const LN2_HI: f64 = 6.93147180369123816490e-01;
const LN2_LO: f64 = 1.90821492927058770002e-10;
const INV_LN2: f64 = 1.44269504088896338700e+00;

// e^(−a) for a ≥ 0; 0 below f64's normal range (a > 708), where every term it feeds is
// negligible next to the others.
fn exp_neg(a: f64) -> f64 {
    if (a > f64(708.0)) {
        return f64(0.0);
    }
    let k = u32(a * INV_LN2 + f64(0.5));
    let kf = f64(k);
    let r = (a - kf * LN2_HI) - kf * LN2_LO;
    // e^(−r) by Horner; the first omitted term is r^14/14! < 5e-18.
    let x = -r;
    var p = f64(1.0 / 6227020800.0);
    p = p * x + f64(1.0 / 479001600.0);
    p = p * x + f64(1.0 / 39916800.0);
    p = p * x + f64(1.0 / 3628800.0);
    p = p * x + f64(1.0 / 362880.0);
    p = p * x + f64(1.0 / 40320.0);
    p = p * x + f64(1.0 / 5040.0);
    p = p * x + f64(1.0 / 720.0);
    p = p * x + f64(1.0 / 120.0);
    p = p * x + f64(1.0 / 24.0);
    p = p * x + f64(1.0 / 6.0);
    p = p * x + f64(0.5);
    p = p * x + f64(1.0);
    p = p * x + f64(1.0);
    // 2^(−k) from the binary digits of k (k ≤ 1022: ten digits).
    var scale = f64(1.0);
    var power = f64(0.5);
    var bits = k;
    for (var i = 0u; i < 10u; i++) {
        if ((bits & 1u) != 0u) {
            scale *= power;
        }
        power *= power;
        bits >>= 1u;
    }
    return p * scale;
}

// log(1 + u) for 0 ≤ u ≤ 1; the first omitted term is below 2e-19 relative.
fn log1p_unit(u: f64) -> f64 {
    let z = u / (f64(2.0) + u);
    let z2 = z * z;
    var p = f64(1.0 / 35.0);
    p = p * z2 + f64(1.0 / 33.0);
    p = p * z2 + f64(1.0 / 31.0);
    p = p * z2 + f64(1.0 / 29.0);
    p = p * z2 + f64(1.0 / 27.0);
    p = p * z2 + f64(1.0 / 25.0);
    p = p * z2 + f64(1.0 / 23.0);
    p = p * z2 + f64(1.0 / 21.0);
    p = p * z2 + f64(1.0 / 19.0);
    p = p * z2 + f64(1.0 / 17.0);
    p = p * z2 + f64(1.0 / 15.0);
    p = p * z2 + f64(1.0 / 13.0);
    p = p * z2 + f64(1.0 / 11.0);
    p = p * z2 + f64(1.0 / 9.0);
    p = p * z2 + f64(1.0 / 7.0);
    p = p * z2 + f64(1.0 / 5.0);
    p = p * z2 + f64(1.0 / 3.0);
    p = p * z2 + f64(1.0);
    return f64(2.0) * z * p;
}

// K(d) = log(1 + e^(−d)) = max(−d, 0) + log(1 + e^(−|d|)).
fn softplus_neg(d: Real) -> Real {
    return max(-d, f64(0.0)) + log1p_unit(exp_neg(abs(d)));
}

// σ(−d) = 1 / (1 + e^d), without overflow; K'(d) = −σ(−d).
fn sigmoid_neg(d: Real) -> Real {
    let e = exp_neg(abs(d));
    return select(f64(1.0) / (f64(1.0) + e), e / (f64(1.0) + e), d >= f64(0.0));
}

// Whether x is neither infinite nor NaN (comparisons with NaN are false).
fn is_finite(x: Real) -> bool {
    return abs(x) <= Real(1.7976931348623157e308);
}
