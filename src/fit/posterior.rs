//! Posterior standard deviations of a ridge fit (docs/METHOD.md §2.5): the Laplace approximation
//! `V ~ N(V̂, H⁻¹)` at the MAP, `H` the Hessian of the penalised objective — the graph Laplacian
//! with edge weights `w_e σ(d_e) σ(−d_e)` plus `λI` — so `sd_f = √(H⁻¹)_ff`.
//!
//! Up to [`EXACT_STATES`] fitted states the diagonal is exact (dense Cholesky). Above, it is
//! Hutchinson's estimator with a control variate: the fit's spanning-forest preconditioner `M`
//! (`backend::cpu::TreePreconditioner`) has an exact diagonal inverse in O(states), so
//! `diag H⁻¹ ≈ diag M⁻¹ + (1/s) Σ_k z_k ⊙ (H⁻¹ − M⁻¹) z_k` with `s` Rademacher vectors, each
//! `H⁻¹ z` by conjugate gradients preconditioned by `M` to a relative residual of
//! [`CG_RELATIVE_RESIDUAL`]. Its error on entry `f` has standard deviation
//! `√(Σ_{g≠f} (H⁻¹ − M⁻¹)_fg² / s)`: where the forest carries the graph's strong links (sparse
//! logs are mostly trees) the probes only estimate what the cycles add. An estimate is never
//! taken below `1/H_ff`, which bounds `(H⁻¹)_ff` from below for any positive definite `H`.
//!
//! The probes run in blocks of [`BLOCK`], each probe with its own CG coefficients and stop, on
//! the states renumbered in the forest's breadth-first positions: the forest's solve is then two
//! sweeps in place and most of the Laplacian's neighbours are near, and each entry and each
//! neighbour's cache line is read once per block. On a 1e7-row reversible log (953,162 states)
//! the probes took 17.0–19.8 s against 39.1–39.8 s one at a time in the fit's numbering (single
//! runs), the `sd`s within an ulp (BENCHMARKS.md, "Session 19: the posterior's probes in blocks").
//!
//! A state is `prior-dominated` when its posterior variance is more than half the prior's
//! (`sd² > 1/(2λ)`): in one dimension that is data precision below the prior's, `V` set more by
//! the prior than by the transitions.

use crate::backend::cpu::{Laplacian, TreePreconditioner};
use crate::backend::problem::ActionProblem;
use crate::fit::problem::sigmoid_neg;
use crate::rng::{Purpose, Stream};
use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Largest number of fitted states whose posterior variances are computed exactly.
pub const EXACT_STATES: usize = 1_500;
/// Rademacher probes of the estimator above [`EXACT_STATES`]: at first this many, then as many
/// more as the estimated standard errors of the `sd`s say they need to average at most
/// [`TARGET_RELATIVE_ERROR`] of them ([`next_check`]; the counts checked depend only on the
/// estimates, so the result does not depend on the thread count) …
pub const MIN_PROBES: usize = 16;
/// … or until this many.
pub const MAX_PROBES: usize = 256;
/// Probes are added in multiples of this.
const PROBE_STEP: usize = 8;
/// Each probe's solve stops at this residual relative to the probe's norm. Against 1e-8 on a
/// reversible 2e6-row log (190,570 states) and llm-like 1e6: the `sd`s move by at most 5.4e-6
/// of themselves (mean 5e-8), far inside the probes' own 1 % ([`TARGET_RELATIVE_ERROR`]), for
/// 24 % and 15 % fewer CG iterations; 1e-4 moved them by up to 3.9e-4.
const CG_RELATIVE_RESIDUAL: f64 = 1e-6;
/// Probes solved together ([`Laplacian::product_many`],
/// [`TreePreconditioner::solve_in_positions`]): each of the Hessian's entries and each
/// neighbour's cache line is read once for all of them.
const BLOCK: usize = 4;
type Block = [f64; BLOCK];
// A block's signs are the bits of a `u8`.
const _: () = assert!(BLOCK <= 8);
/// Vectors of `BLOCK` values per state that a block's solve holds at once (iterate, residual,
/// direction, product).
const BLOCK_VECTORS: usize = 4;
/// The most memory the blocks solved at once may hold in vectors.
const PROBE_MEMORY: usize = 256 << 20;
/// Target of the mean relative standard error of the posterior `sd`s (half that of the variances).
pub const TARGET_RELATIVE_ERROR: f64 = 0.01;

/// How the posterior standard deviations were computed (report.json `fit.posterior`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PosteriorReport {
    /// `exact` (dense Cholesky) or `hutchinson` (probes with the forest as control variate).
    pub method: &'static str,
    /// Rademacher probes (0 when exact).
    pub probes: usize,
    /// Mean over the states of the estimated standard error of `sd` relative to `sd` (0 when
    /// exact).
    pub relative_error: f64,
}

/// The Hessian at the MAP over the states with a value, numbered compactly.
pub(super) struct Curvature {
    /// Edges between fitted states and their curvature `w σ(d) σ(−d)`.
    pub edges: Vec<(u32, u32, f64)>,
    pub l2: f64,
    pub n: usize,
}

impl Curvature {
    /// From the fitted edges `(src, dst, weight)` and the fitted variable `x` (one per fitted
    /// state, numbered like the edges).
    pub fn new(edges: impl Iterator<Item = (u32, u32, f64)>, x: &[f64], l2: f64) -> Self {
        let edges = edges
            .map(|(s, d, w)| {
                let dx = x[s as usize] - x[d as usize];
                (s, d, w * sigmoid_neg(dx) * sigmoid_neg(-dx))
            })
            .collect();
        Curvature {
            edges,
            l2,
            n: x.len(),
        }
    }

    fn diagonal(&self) -> Vec<f64> {
        let mut d = vec![self.l2; self.n];
        for &(s, t, c) in &self.edges {
            d[s as usize] += c;
            d[t as usize] += c;
        }
        d
    }

    /// `√(H⁻¹)_ff` for every fitted state, and how it was computed.
    pub fn posterior_sd(self) -> (Vec<f64>, PosteriorReport) {
        let (variance, report) = if self.n <= EXACT_STATES {
            let report = PosteriorReport {
                method: "exact",
                probes: 0,
                relative_error: 0.0,
            };
            (self.exact_variances(), report)
        } else {
            self.estimated_variances()
        };
        (variance.into_iter().map(f64::sqrt).collect(), report)
    }

    /// `diag H⁻¹` from the Cholesky factor `H = L Lᵀ`: `(H⁻¹)_ff = Σ_k (L⁻¹)_kf²`.
    fn exact_variances(&self) -> Vec<f64> {
        let n = self.n;
        let mut h = vec![0.0; n * n];
        for (f, d) in self.diagonal().into_iter().enumerate() {
            h[f * n + f] = d;
        }
        for &(s, t, c) in &self.edges {
            let (s, t) = (s as usize, t as usize);
            h[s * n + t] -= c;
            h[t * n + s] -= c;
        }
        // In-place Cholesky, lower triangle (H is positive definite: λ > 0).
        for j in 0..n {
            let pivot = (h[j * n + j] - (0..j).map(|k| h[j * n + k].powi(2)).sum::<f64>()).sqrt();
            h[j * n + j] = pivot;
            for i in j + 1..n {
                let dot: f64 = (0..j).map(|k| h[i * n + k] * h[j * n + k]).sum();
                h[i * n + j] = (h[i * n + j] - dot) / pivot;
            }
        }
        // Column f of L⁻¹ by forward substitution from e_f; its squared norm is (H⁻¹)_ff.
        (0..n)
            .into_par_iter()
            .map(|f| {
                let mut y = vec![0.0; n];
                let mut sum = 0.0;
                for i in f..n {
                    let rhs = if i == f { 1.0 } else { 0.0 };
                    let dot: f64 = (f..i).map(|k| h[i * n + k] * y[k]).sum();
                    y[i] = (rhs - dot) / h[i * n + i];
                    sum += y[i] * y[i];
                }
                sum
            })
            .collect()
    }

    /// Hutchinson's estimate of `diag H⁻¹` with the forest's exact `diag M⁻¹` as control
    /// variate, floored at `1/H_ff`, with as many probes as [`TARGET_RELATIVE_ERROR`] asks.
    fn estimated_variances(self) -> (Vec<f64>, PosteriorReport) {
        let clock = std::time::Instant::now();
        let diagonal = self.diagonal();
        let (laplacian, tree) = self.hessian(&diagonal);
        // The probes need only the Laplacian: the edge list goes (16 bytes an edge).
        let n = self.n;
        drop(self);
        // The probes run in the forest's positions: its solve is then two sweeps in place, and
        // the Laplacian's neighbours are mostly near (BENCHMARKS.md, "Session 19").
        let order = tree.positions().to_vec();
        let laplacian = {
            let in_fit_order = laplacian;
            in_fit_order.permuted(&order)
        };
        let by_position = |of_state: Vec<f64>| -> Vec<f64> {
            order.iter().map(|&f| of_state[f as usize]).collect()
        };
        let (base, diagonal) = (by_position(tree.inverse_diagonal()), by_position(diagonal));
        let iterations = AtomicUsize::new(0);
        let stream = Stream::new(0, Purpose::Probe);
        // Probes `first..first + BLOCK` (up to `last`), solved together: per probe and position
        // `z ⊙ (H⁻¹ − M⁻¹) z`.
        let probe_block = |first: usize, last: usize| -> Vec<Block> {
            // Bit `j` set: probe `first + j` is −1 at the position.
            let negative: Vec<u8> = (order.iter())
                .map(|&f| {
                    (first..last.min(first + BLOCK))
                        .map(|k| ((stream.word(f, 1 + k as u32, 0) & 1) as u8) << (k - first))
                        .fold(0, |bits, bit| bits | bit)
                })
                .collect();
            let z = |i: usize| -> Block {
                std::array::from_fn(|j| match (first + j < last, negative[i] >> j & 1) {
                    (false, _) => 0.0,
                    (true, 0) => 1.0,
                    (true, _) => -1.0,
                })
            };
            let (mut x, steps) = conjugate_gradients(
                (0..n).map(z).collect(),
                &|v, out| laplacian.product_many(v, out),
                &mut |r| tree.solve_in_positions(r),
            );
            iterations.fetch_add(steps, Ordering::Relaxed);
            let mut m: Vec<Block> = (0..n).map(z).collect();
            tree.solve_in_positions(&mut m);
            for (i, (x, m)) in x.iter_mut().zip(&m).enumerate() {
                let z = z(i);
                for j in 0..BLOCK {
                    x[j] = z[j] * (x[j] - m[j]);
                }
            }
            x
        };
        // Blocks solved at once: one per thread while their vectors fit in
        // [`PROBE_MEMORY`], else one (its products still use every thread).
        let block_bytes = BLOCK_VECTORS * n * std::mem::size_of::<Block>();
        let in_flight = (PROBE_MEMORY / block_bytes.max(1)).clamp(1, rayon::current_num_threads());
        // Sums of the probes' terms and of their squares per position, in probe order.
        let (mut sum, mut squares) = (vec![0.0; n], vec![0.0; n]);
        let mut probes = 0;
        let mut check = MIN_PROBES;
        loop {
            while probes < check {
                let firsts: Vec<usize> = (probes..check).step_by(BLOCK).take(in_flight).collect();
                let estimates: Vec<Vec<Block>> = (firsts.par_iter())
                    .map(|&first| probe_block(first, check))
                    .collect();
                for (&first, e) in firsts.iter().zip(&estimates) {
                    for j in 0..BLOCK.min(check - first) {
                        for ((s, q), x) in sum.iter_mut().zip(&mut squares).zip(e) {
                            *s += x[j];
                            *q += x[j] * x[j];
                        }
                    }
                }
                probes = (firsts.last().expect("a probe is left") + BLOCK).min(check);
            }
            let s = probes as f64;
            let variance: Vec<f64> = (sum.iter().zip(&base).zip(&diagonal))
                .map(|((t, m), d)| (m + t / s).max(1.0 / d))
                .collect();
            // The standard error of each variance's estimate, relative to it, halved for the sd.
            let relative_error = (sum.iter().zip(&squares).zip(&variance))
                .map(|((t, q), v)| {
                    let spread = ((q - t * t / s) / (s - 1.0)).max(0.0);
                    0.5 * (spread / s).sqrt() / v
                })
                .sum::<f64>()
                / n as f64;
            if relative_error <= TARGET_RELATIVE_ERROR || probes >= MAX_PROBES {
                tracing::debug!(
                    states = n,
                    probes,
                    cg_iterations = iterations.load(Ordering::Relaxed),
                    relative_error,
                    seconds = clock.elapsed().as_secs_f64(),
                    "posterior probes"
                );
                let report = PosteriorReport {
                    method: "hutchinson",
                    probes,
                    relative_error,
                };
                let mut of_state = vec![0.0; n];
                for (&f, v) in order.iter().zip(variance) {
                    of_state[f as usize] = v;
                }
                return (of_state, report);
            }
            check = next_check(probes, relative_error);
        }
    }

    /// `H` as the fit's pair Laplacian (`backend::cpu::Laplacian`, whose product reads each
    /// state's entries in sequence, in parallel) and its spanning-forest preconditioner
    /// (`backend::cpu::TreePreconditioner`), whose diagonal is `diagonal`: on llm-10M the
    /// posterior took 11 s with it against 19.5 s with the diagonal alone (BENCHMARKS.md "The new
    /// default estimator's cost").
    fn hessian(&self, diagonal: &[f64]) -> (Laplacian, TreePreconditioner) {
        let positive = self.edges.iter().filter(|e| e.2 > 0.0);
        let (src, dst): (Vec<u32>, Vec<u32>) = positive.clone().map(|e| (e.0, e.1)).unzip();
        let weight: Vec<f64> = positive.map(|e| e.2).collect();
        let problem = ActionProblem::new(self.n, src, dst, weight, self.l2)
            .expect("curvatures are finite and positive");
        let mut laplacian = Laplacian::new(&problem);
        laplacian.set_weights(&problem.weight);
        let mut tree = TreePreconditioner::new(&problem, &laplacian);
        tree.factor(&laplacian, diagonal);
        laplacian.forget_arcs();
        (laplacian, tree)
    }
}

/// The probe count to check next after `probes` gave a mean relative error `error`: the error
/// falls as `1/√probes`, so `probes (error/target)²` with a tenth to spare, in whole
/// [`PROBE_STEP`]s, at least one step more and at most twice as many (the estimate of the error
/// is itself noisy), and at most [`MAX_PROBES`]. Doubling instead ran 128 probes on a log where
/// about 86 would have met the target (its 0.82 % at 128 scaled as `1/√s`; BENCHMARKS.md, "The
/// posterior's probes"); this schedule stopped at 96.
fn next_check(probes: usize, error: f64) -> usize {
    let wanted = (probes as f64 * (error / TARGET_RELATIVE_ERROR).powi(2) * 1.1).ceil() as usize;
    (wanted.next_multiple_of(PROBE_STEP))
        .clamp(probes + PROBE_STEP, 2 * probes)
        .min(MAX_PROBES)
}

/// `H⁻¹ b` for each column of `b` by conjugate gradients with the product `product`
/// (`out ← H v`), preconditioned by `precondition` (`r ← M⁻¹ r`), each to a residual of
/// [`CG_RELATIVE_RESIDUAL`] `‖b‖`; and the iterations they took, summed over the columns. The
/// columns share the passes over `H` and `M`, but each has its own coefficients and stop: its
/// iterates are those of conjugate gradients on it alone, to the bit.
fn conjugate_gradients(
    mut r: Vec<Block>,
    product: &dyn Fn(&[Block], &mut [Block]),
    precondition: &mut dyn FnMut(&mut [Block]),
) -> (Vec<Block>, usize) {
    let n = r.len();
    let dots = |a: &[Block], c: &[Block]| -> Block {
        let mut sum = [0.0; BLOCK];
        for (a, c) in a.iter().zip(c) {
            for j in 0..BLOCK {
                sum[j] += a[j] * c[j];
            }
        }
        sum
    };
    let stop = dots(&r, &r).map(|b| CG_RELATIVE_RESIDUAL.powi(2) * b);
    let mut x = vec![[0.0; BLOCK]; n];
    // `z = M⁻¹ r` shares its storage with `H p`: each is dead once the other is formed.
    let mut z = r.clone();
    precondition(&mut z);
    let mut p = z.clone();
    let mut rz = dots(&r, &z);
    let active = |r: &[Block]| -> [bool; BLOCK] {
        let rr = dots(r, r);
        std::array::from_fn(|j| rr[j] > stop[j])
    };
    let mut running = active(&r);
    let (mut rounds, mut iterations) = (0, 0);
    while rounds < 10 * n && running.contains(&true) {
        let hp = &mut z;
        product(&p, hp);
        let php = dots(&p, hp);
        let alpha: Block = std::array::from_fn(|j| rz[j] / php[j]);
        for ((x, r), (p, hp)) in x.iter_mut().zip(&mut r).zip(p.iter().zip(hp.iter())) {
            for j in (0..BLOCK).filter(|&j| running[j]) {
                x[j] += alpha[j] * p[j];
                r[j] -= alpha[j] * hp[j];
            }
        }
        z.copy_from_slice(&r);
        precondition(&mut z);
        let next = dots(&r, &z);
        for (p, z) in p.iter_mut().zip(&z) {
            for j in (0..BLOCK).filter(|&j| running[j]) {
                p[j] = z[j] + next[j] / rz[j] * p[j];
            }
        }
        for j in (0..BLOCK).filter(|&j| running[j]) {
            rz[j] = next[j];
        }
        iterations += running.iter().filter(|&&r| r).count();
        rounds += 1;
        let still = active(&r);
        running = std::array::from_fn(|j| running[j] && still[j]);
    }
    (x, iterations)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ring of 40 states with a chord and uneven weights.
    fn ring(n: usize) -> Curvature {
        let mut edges: Vec<(u32, u32, f64)> = (0..n)
            .map(|f| (f as u32, ((f + 1) % n) as u32, 1.0 + (f % 7) as f64))
            .collect();
        edges.push((0, (n / 2) as u32, 3.0));
        let x: Vec<f64> = (0..n).map(|f| (f as f64 * 0.37).sin()).collect();
        Curvature::new(edges.into_iter(), &x, 0.2)
    }

    #[test]
    fn exact_variances_invert_the_hessian() {
        let h = ring(12);
        let var = h.exact_variances();
        let diagonal = h.diagonal();
        let (laplacian, _) = h.hessian(&diagonal);
        let precondition = |r: &mut [Block]| {
            for (r, d) in r.iter_mut().zip(&diagonal) {
                r.iter_mut().for_each(|r| *r /= d);
            }
        };
        // The columns of the identity, a block at a time.
        for first in (0..h.n).step_by(BLOCK) {
            let e = (0..h.n)
                .map(|f| std::array::from_fn(|j| if f == first + j { 1.0 } else { 0.0 }))
                .collect();
            let (columns, _) =
                conjugate_gradients(e, &|v, out| laplacian.product_many(v, out), &mut |r| {
                    precondition(r)
                });
            for f in first..(first + BLOCK).min(h.n) {
                let col = columns[f][f - first];
                assert!((col - var[f]).abs() < 1e-10, "{f}: {col} vs {}", var[f]);
                // The posterior is narrower than the prior, wider than the conditional.
                assert!(var[f] < 1.0 / h.l2 && var[f] > 1.0 / diagonal[f]);
            }
        }
    }

    /// Columns solved together stop each at its own residual and come out as each alone (with
    /// the other columns zero), to the bit; a zero column takes no iteration.
    #[test]
    fn a_block_solves_each_column_as_alone() {
        let h = torus();
        let diagonal = h.diagonal();
        let (laplacian, tree) = h.hessian(&diagonal);
        let mut work = vec![[0.0; BLOCK]; h.n];
        let mut solve = |b: Vec<Block>| {
            conjugate_gradients(b, &|v, out| laplacian.product_many(v, out), &mut |r| {
                tree.solve_many(r, &mut work)
            })
        };
        // A smooth, a rough and a point right-hand side, and a zero column.
        let column = |j: usize, f: usize| match j {
            0 => (f as f64 * 0.01).sin(),
            1 => {
                if f % 3 == 0 {
                    1.0
                } else {
                    -0.5
                }
            }
            2 => {
                if f == 17 {
                    1.0
                } else {
                    0.0
                }
            }
            _ => 0.0,
        };
        let (together, iterations) = solve(
            (0..h.n)
                .map(|f| std::array::from_fn(|j| column(j, f)))
                .collect(),
        );
        let mut alone_total = 0;
        for j in 0..BLOCK {
            let only = |f: usize| std::array::from_fn(|i| if i == j { column(j, f) } else { 0.0 });
            let (alone, steps) = solve((0..h.n).map(only).collect());
            alone_total += steps;
            for f in 0..h.n {
                assert_eq!(
                    together[f][j].to_bits(),
                    alone[f][j].to_bits(),
                    "column {j}"
                );
            }
        }
        assert_eq!(iterations, alone_total);
        assert!(together.iter().all(|x| x[3] == 0.0));
    }

    /// The next check asks for what the error says is needed, within one step and a doubling.
    #[test]
    fn probes_grow_as_the_error_asks() {
        // 64 probes at 1.16 %: 64 · 1.16² · 1.1 = 94.7 → 96.
        assert_eq!(next_check(64, 0.0116), 96);
        // Nearly there: one step more.
        assert_eq!(next_check(64, 0.0101), 72);
        // Far off: a doubling at most, and never past the cap.
        assert_eq!(next_check(16, 0.05), 32);
        assert_eq!(next_check(192, 0.02), MAX_PROBES);
    }

    /// A 20 × 20 torus with uneven weights: 400 states, 800 pairs, 401 of them off any
    /// spanning tree.
    fn torus() -> Curvature {
        let side = 20u32;
        let id = |r: u32, c: u32| (r % side) * side + c % side;
        let edges: Vec<(u32, u32, f64)> = (0..side * side)
            .flat_map(|f| {
                let (r, c) = (f / side, f % side);
                let w = 1.0 + (f % 5) as f64;
                [(f, id(r, c + 1), w), (f, id(r + 1, c), 0.5 * w)]
            })
            .collect();
        let x: Vec<f64> = (0..side * side).map(|f| (f as f64 * 0.21).cos()).collect();
        Curvature::new(edges.into_iter(), &x, 0.05)
    }

    /// On a ring the control variate leaves the probes little to estimate; on the torus they
    /// carry the estimate and more are drawn. Either way the estimates are unbiased on average,
    /// and the reported error is that measured against the exact diagonal, within a factor 2.
    #[test]
    fn hutchinson_is_close_to_the_exact_diagonal() {
        for (h, most) in [(ring(400), 0.15), (torus(), 0.6)] {
            let exact = h.exact_variances();
            let (estimated, report) = h.estimated_variances();
            let relative: Vec<f64> = (exact.iter().zip(&estimated))
                .map(|(a, b)| (b - a) / a)
                .collect();
            let n = relative.len() as f64;
            let bias = relative.iter().sum::<f64>() / n;
            // The sd's error is half the variance's.
            let sd_error = relative.iter().map(|r| 0.5 * r.abs()).sum::<f64>() / n;
            assert!(bias.abs() < 0.01, "bias {bias}");
            assert!(relative.iter().all(|r| r.abs() < most), "{relative:?}");
            let ratio = sd_error / report.relative_error;
            assert!((0.5..2.0).contains(&ratio), "{sd_error} vs {report:?}");
            assert!(report.relative_error <= TARGET_RELATIVE_ERROR || report.probes == MAX_PROBES);
        }
    }
}
