// Precision prelude for devices without SHADER_F64: vectors, weights and per-edge terms are f32;
// sums are compensated.
//
// `Acc = (s, c)` is a running sum whose value is `s + c`: every addition `s + x` is split by the
// error-free two-sum into the rounded sum and its exact rounding error, which `c` collects
// (Kahan–Babuška–Neumaier). The error of a compensated sum is ~2 ulp of the result plus
// O(n u²) Σ|x|, instead of O(n u) Σ|x| for plain f32; a hub whose 1e5 terms cancel keeps its
// small gradient. Transcendental functions use the f32 builtins (Vulkan bounds `exp` by
// 3 + 2|x| ulp); log(1 + u) uses a short series, because `log` near 1 is only bounded in
// absolute terms (2^−21) and would lose the small terms of edges with large |d|.

alias Real = f32;
alias Acc = vec2<f32>;

fn acc_zero() -> Acc {
    return vec2<f32>(0.0, 0.0);
}

fn acc_from(x: Real) -> Acc {
    return vec2<f32>(x, 0.0);
}

fn acc_add(a: Acc, x: Real) -> Acc {
    let s = a.x + x;
    let t = s - a.x;
    let err = (a.x - (s - t)) + (x - t);
    return vec2<f32>(s, a.y + err);
}

fn acc_merge(a: Acc, b: Acc) -> Acc {
    let t = acc_add(a, b.x);
    return vec2<f32>(t.x, t.y + b.y);
}

fn acc_value(a: Acc) -> Real {
    return a.x + a.y;
}

// A host scalar sent as two f32 (`hi = f32(x)`, `lo = f32(x − hi)`), rounded to f32.
fn real_from_pair(hi: f32, lo: f32) -> Real {
    return hi + lo;
}

// log(1 + u) for 0 ≤ u ≤ 1: 2 atanh(z), z = u / (2 + u) ≤ 1/3, to z^15 (omitted < 2e-9 relative).
fn log1p_unit(u: f32) -> f32 {
    let z = u / (2.0 + u);
    let z2 = z * z;
    var p = 1.0 / 15.0;
    p = p * z2 + 1.0 / 13.0;
    p = p * z2 + 1.0 / 11.0;
    p = p * z2 + 1.0 / 9.0;
    p = p * z2 + 1.0 / 7.0;
    p = p * z2 + 1.0 / 5.0;
    p = p * z2 + 1.0 / 3.0;
    p = p * z2 + 1.0;
    return 2.0 * z * p;
}

// K(d) = log(1 + e^(−d)) = max(−d, 0) + log(1 + e^(−|d|)).
fn softplus_neg(d: Real) -> Real {
    return max(-d, 0.0) + log1p_unit(exp(-abs(d)));
}

// σ(−d) = 1 / (1 + e^d), without overflow; K'(d) = −σ(−d).
fn sigmoid_neg(d: Real) -> Real {
    let e = exp(-abs(d));
    return select(1.0 / (1.0 + e), e / (1.0 + e), d >= 0.0);
}

// Whether x is neither infinite nor NaN (comparisons with NaN are false).
fn is_finite(x: Real) -> bool {
    return abs(x) <= Real(3.4028234663852886e38);
}
