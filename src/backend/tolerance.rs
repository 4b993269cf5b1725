//! Every CPU–GPU tolerance in one place, with its unit and why it has that size.
//!
//! Units. Errors are measured against the scale of the quantity's terms, not the quantity itself
//! (a hub's gradient is a small difference of large sums; a relative error of the difference
//! means nothing):
//! - action value: relative to `Σ_e w_e (1 + |V_src| + |V_dst|) + ½λ Σ (|V| + |μ|)²`
//!   ([`value_scale`]), which bounds `Σ_e w_e K(d_e)` because `K(d) ≤ |d| + log 2`, and the
//!   ridge `½λ Σ (V − μ)²` centred at the prior mean `μ` (0 without one);
//! - gradient entry `f`: relative to `Σ_{e ∋ f} w_e (1 + |V_src| + |V_dst|) + λ (|V_f| + |μ_f|)`
//!   ([`gradient_scale`]), which bounds the sum of the absolute values of its terms (the ridge's
//!   `λ V_f` and `−λ μ_f`: in f32 both are rounded, so their difference is not a scale when `V_f`
//!   is near `μ_f`);
//! - fitted potential: absolute, after centring each component to mean zero.
//!
//! `u` is the unit roundoff: `u32 = 2⁻²⁴ ≈ 6.0e-8`, `u64 = 2⁻⁵³ ≈ 1.1e-16`.

use super::Precision;
use crate::backend::problem::ActionProblem;

const U32: f64 = f32::EPSILON as f64 / 2.0;
const U64: f64 = f64::EPSILON / 2.0;

/// Action value, relative to [`value_scale`].
///
/// - f64: per term both sides evaluate `K` to a few ulp (GPU: series in f64 + − * /; CPU:
///   libm), but the CPU adds runs of 16,384 terms in sequence: worst case 16,384 u64 ≈ 1.8e-12
///   of the scale, plus ~40 u64 for the GPU's trees. 1e5 u64 ≈ 1.1e-11 leaves a factor 6.
/// - f32: per edge, V rounded to f32 and `d` in f32 move `d` by ≤ 2u(|V_src| + |V_dst|) and `K`
///   by as much (|K'| ≤ 1); Vulkan bounds f32 `exp(x)` by 3 + 2|x| ulp, which moves
///   `log(1 + e^(−|d|))` by ≤ 6u; series, additions and the f32 weight add ≤ 6u `w K`. That is
///   ≤ 12u of the edge's scale; the compensated sum adds ~2u. 32 u32 ≈ 1.9e-6 leaves a factor 2.
pub fn action_value(precision: Precision) -> f64 {
    match precision {
        Precision::F64 => 1e5 * U64,
        Precision::F32 => 32.0 * U32,
    }
}

/// Gradient entries, relative to [`gradient_scale`] of each state; also the Hessian diagonal
/// (per edge `w σ(d) σ(−d)` ≤ w/4, summed the same way, with the same error sources).
///
/// - f64: the CPU adds a node's terms in incidence order: worst case `degree × u64`; the GPU
///   adds runs of 32 and then per-level carries (~100 u64). 2e6 u64 ≈ 2.2e-10 covers the worst
///   case up to a degree of 2e6; in practice the error grows like √degree (tests/it/gpu_agreement.rs measures
///   it on a hub of degree 4e5).
/// - f32: per edge, `|σ'| ≤ 1/4` turns the f32 rounding of `d` into ≤ u(|V_src| + |V_dst|)/2;
///   f32 `exp` (3 + 2|x| ulp) moves `σ(−|d|)` by ≤ 6u; division, negation and the f32 weight add
///   ≤ 5u `w`. That is ≤ 11u of the edge's scale; the compensated sum and the final rounding of
///   the gradient to f32 add ~3u. 32 u32 ≈ 1.9e-6 leaves a factor 2.
pub fn gradient(precision: Precision) -> f64 {
    match precision {
        Precision::F64 => 2e6 * U64,
        Precision::F32 => 32.0 * U32,
    }
}

/// Entries of the Hessian–vector product `H(v) x` (kernel `hessian_edge`), relative to
/// [`hessian_scale`]. The per-edge weight `w σ(d) σ(−d)` carries the error of a gradient term
/// (the same `σ`, see [`gradient`]); times the difference `x_src − x_dst` (one more rounding) and
/// summed per state in the same incidence order and runs as the gradient. Same bounds.
pub fn hessian_product(precision: Precision) -> f64 {
    gradient(precision)
}

/// Fitted potentials after centring, absolute, when both backends run Newton–CG until its step
/// is at most `1e-9` in every coordinate.
///
/// - f64: the GPU's values, gradients, Hessian weights and products equal the CPU's to ~1e-13
///   relative; both stop once the remaining error (the last Newton step) is below 1e-9, or at the
///   rounding floor, which the GPU's uncompensated f64 sums raise on weakly coupled states (the
///   CPU compensates; they then converge on the gradient test). Measured: 1.3e-9 on a hard
///   30,000-row log (tests/it/newton.rs), 1.4e-8 on bootstrap intervals (tests/it/resampling.rs).
///   1e-7 leaves a factor 7; the product's requirement is 1e-6.
/// - f32: the device stops at its rounding floor (the gradient known to ~2e-6 of the incident
///   weight, see [`gradient`]), up to 2.5e-2 from the optimum on weakly tied states of a hard
///   log; the GPU backend then finishes the fit with f64 Newton steps on the host to the same
///   stop as the CPU (`gpu::polish_in_f64`). Measured: 2.6e-11 on hard300k (BENCHMARKS.md,
///   "The f32 fit finished in f64"). The same 1e-7 as f64.
pub fn potential(_precision: Precision) -> f64 {
    1e-7
}

/// The verdict's resampled statistics (`X²` of a refit, `Backend::minimize_action` on a batch of
/// copies of the pair graph), relative to the statistic's sensitivity to the fitted log-odds:
/// `Σ_i 2|r_i|√v_i + r_i²` over the pairs (`r` the standardised residual, `v = m p (1 − p)`),
/// which bounds `Σ_i |∂X²/∂d_i|`. The refits stop on the same step (`1e-9` in every coordinate)
/// as the potential's fit, so each log-odds `d = U_a − U_b` is off by at most twice
/// [`potential`], and `X²` by that times the scale (to first order): `2 ×` [`potential`].
pub fn verdict_statistic(precision: Precision) -> f64 {
    2.0 * potential(precision)
}

/// Null statistics of kernel `resample`, relative to each sum's scale
/// ([`ResampleJob::scale`](super::jobs::ResampleJob::scale): a bound on the sum of the
/// absolute values of its terms). The permutations are bit-identical on both backends (integer
/// arithmetic on Philox words); only the arithmetic on the permuted values differs.
///
/// - f64: the GPU adds in runs of 64 per invocation and workgroup trees, the CPU in item order:
///   worst case `n u64` for `n` terms. 1e6 u64 ≈ 1.1e-10 covers a million terms.
/// - f32: inputs rounded to f32 (u each), products and differences a few u, compensated sums
///   ~2u: 32 u32 ≈ 1.9e-6.
pub fn resample_statistic(precision: Precision) -> f64 {
    match precision {
        Precision::F64 => 1e6 * U64,
        Precision::F32 => 32.0 * U32,
    }
}

/// Integer outputs (triangle lists: ids and order; counts), as the fraction of positions that
/// differ: none may. Both backends run the same integer algorithm; any difference is a bug.
pub const EXACT: f64 = 0.0;

/// Scale of the action value at `v` (see the module documentation).
pub fn value_scale(problem: &ActionProblem, v: &[f64]) -> f64 {
    let edges: f64 = (0..problem.n_edges())
        .map(|e| edge_scale(problem, v, e))
        .sum();
    let ridge: f64 = (0..v.len())
        .map(|f| (v[f].abs() + mean_abs(problem, f)).powi(2))
        .sum();
    edges + 0.5 * problem.l2 * ridge
}

/// Scale of each gradient entry at `v` (see the module documentation).
pub fn gradient_scale(problem: &ActionProblem, v: &[f64]) -> Vec<f64> {
    let mut scale: Vec<f64> = (0..v.len())
        .map(|f| problem.l2 * (v[f].abs() + mean_abs(problem, f)))
        .collect();
    for e in 0..problem.n_edges() {
        let s = edge_scale(problem, v, e);
        scale[problem.src[e] as usize] += s;
        scale[problem.dst[e] as usize] += s;
    }
    scale
}

/// Scale of each entry of `H(v) x`: `Σ_{e ∋ f} (w_e/4) (|x_src| + |x_dst|) + λ |x_f|`, which
/// bounds the sum of the absolute values of its terms (`σ(d) σ(−d) ≤ 1/4`).
pub fn hessian_scale(problem: &ActionProblem, x: &[f64]) -> Vec<f64> {
    let mut scale: Vec<f64> = x.iter().map(|x| problem.l2 * x.abs()).collect();
    for e in 0..problem.n_edges() {
        let (s, d) = (problem.src[e] as usize, problem.dst[e] as usize);
        let t = 0.25 * problem.weight[e] * (x[s].abs() + x[d].abs());
        scale[s] += t;
        scale[d] += t;
    }
    scale
}

/// `|μ_f|`, the prior mean's size at state `f` (0 without one): `|0 − μ_f|`.
fn mean_abs(problem: &ActionProblem, f: usize) -> f64 {
    problem.from_prior_mean(f, 0.0).abs()
}

fn edge_scale(problem: &ActionProblem, v: &[f64], e: usize) -> f64 {
    let (s, d) = (problem.src[e] as usize, problem.dst[e] as usize);
    problem.weight[e] * (1.0 + v[s].abs() + v[d].abs())
}
