//! Truncated Newton with preconditioned conjugate gradients (Newton–CG), written against
//! [`VectorSpace`] so that the same solver runs with its vectors in host memory (CPU backend, the
//! verdict's pair fits) or in device buffers (GPU backend), reading back only scalars.
//!
//! Every objective it serves is a weighted Bradley–Terry action (docs/METHOD.md §2.3),
//! `S = Σ_e w_e K(x_src − x_dst) + ridge`, whose Hessian is a weighted graph Laplacian (edge
//! weights `w σ(d) σ(−d)`) plus the ridge's diagonal. So a Newton step needs, besides one
//! evaluation of value, gradient and those weights, only Hessian–vector products, which are
//! sparse products over the edges: each conjugate-gradient iteration is one pass over the edges.
//!
//! - **Step**: `δ = (H + μ (D + I))⁻¹ ∇S`, `D` the space's diagonal, `x ← x − δ`. The solve is
//!   inexact: CG stops once the preconditioned residual has fallen by the forcing term `η`,
//!   Eisenstat & Walker's choice 2 (1996) in the preconditioned gradient norm `g = ∇ᵀP∇`:
//!   `η_k = 0.9 g_k/g_{k−1}` (the squared ratio of norms), at most 0.5, at least
//!   `0.9 η_{k−1}²` while that exceeds 0.1: loose while the steps make slow, linear progress
//!   (far from the optimum, or where the curvature is tiny), tight once convergence is quadratic;
//!   never below [`FORCING_FLOOR`] (0.01) after the first solve, nor below `10 step_tol/‖δ‖∞`
//!   of the last step (at most 0.1; [`least_forcing`]): the stop needs the step only to a few
//!   digits, and near the optimum the unfloored term asked for residuals of 1e-10 and below, a
//!   third of the products on the hard log (BENCHMARKS.md). CG has the Chronopoulos–Gear
//!   coefficients (both inner products of an iteration formed from `u = P r` and `w = A u`); the
//!   host reads `rᵀu` before forming `w`, so the iteration that meets the forcing term does no
//!   product (one pass per solve fewer). A device may override [`VectorSpace::solve`] to form
//!   the coefficients itself and read the state back only every few iterations (the GPU does;
//!   it forms the product of the iteration that stops too, and counts it).
//! - **Globalisation**: a step whose objective does not decrease is halved, up to
//!   [`HALVINGS`] times (one evaluation each, no new solve: the Hessian then stands at the point
//!   accepted); if none decreases, Levenberg–Marquardt damping `μ`: the step is re-solved with
//!   `μ` quadrupled (at least `1e-3`) after evaluating the current point again. An accepted step
//!   divides `μ` by 4 (0 below `1e-3`). Once the decrement `∇ᵀδ` (twice the predicted
//!   decrease) is below `quadratic` the model is trusted and full steps are taken without the
//!   test, whose differences would be rounding. A step longer than the bound `max_step` (in
//!   `‖δ‖∞`) is cut to it; the bound itself falls to a quarter of a cut step along which the
//!   objective showed more than twice the curvature the model had, and doubles back after a cut
//!   step that did not ([`next_radius`]): a sharp valley is then landed in, not jumped across.
//! - **Stop**: when the largest coordinate of an undamped, unhalved step `‖δ‖∞ ≤ step_tol` (then
//!   the step is taken and the point evaluated once more; flat directions such as the action's
//!   gauge are removed first, [`VectorSpace::step_norm`]): `δ` is the distance to the optimum
//!   to second order, so `‖δ‖∞` bounds the error of every coordinate, weakly coupled ones
//!   included, where a gradient test does not (a small gradient times a large inverse
//!   curvature). Also when the decrement `∇ᵀδ ≤ decrement_tol` (the squared error in the
//!   Hessian's norm), when rounding stops the decrement and the step from falling (neither
//!   halves below `quadratic`), or at `max_iterations`.
//!
//! Cost is counted in passes over the edges: evaluations plus Hessian products. Each step's trial
//! point is evaluated together with the step's norm ([`VectorSpace::try_step`]), also on the last
//! step when a rounding stop then discards it.

use crate::error::{Error, Result};
use crate::progress::{self, Unit};

/// Vector storage and the operations Newton–CG needs.
pub trait VectorSpace {
    type Vector;
    fn upload(&mut self, x: &[f64]) -> Result<Self::Vector>;
    fn download(&mut self, x: &Self::Vector) -> Result<Vec<f64>>;
    fn zeros(&mut self) -> Result<Self::Vector>;
    /// The objective at `x`; writes its gradient into `grad` and keeps the Hessian at `x` (its
    /// edge weights and diagonal) for [`VectorSpace::hessian_product`],
    /// [`VectorSpace::damp`] and [`VectorSpace::precondition`].
    fn value_grad(&mut self, x: &Self::Vector, grad: &mut Self::Vector) -> Result<f64>;
    /// `out ← H v`, the Hessian at the last evaluated point.
    fn hessian_product(&mut self, v: &Self::Vector, out: &mut Self::Vector) -> Result<()>;
    /// `out ← out + μ (D + I) v`, `D` the (floored) Hessian diagonal at the last evaluated point.
    fn damp(&mut self, mu: f64, v: &Self::Vector, out: &mut Self::Vector) -> Result<()>;
    fn dot(&mut self, a: &Self::Vector, b: &Self::Vector) -> Result<f64>;
    fn norm_inf(&mut self, a: &Self::Vector) -> Result<f64>;
    /// The largest change the step `δ` makes to a coordinate, up to the objective's flat
    /// directions (for the action without a ridge: one constant per connected component, which
    /// conjugate gradients may add to a step at will).
    fn step_norm(&mut self, delta: &Self::Vector) -> Result<f64> {
        self.norm_inf(delta)
    }
    /// `y ← y + α x`.
    fn axpy(&mut self, alpha: f64, x: &Self::Vector, y: &mut Self::Vector) -> Result<()>;
    /// `x ← α x`.
    fn scale(&mut self, alpha: f64, x: &mut Self::Vector) -> Result<()>;
    /// `dst ← src`.
    fn assign(&mut self, src: &Self::Vector, dst: &mut Self::Vector) -> Result<()>;
    /// `x ← P x`, `P` the preconditioner at the last evaluated point (the inverse diagonal).
    fn precondition(&mut self, x: &mut Self::Vector) -> Result<()>;
    /// Solves `(H + μ (D + I)) δ = b` into `cg.x` by [`Cg::solve`] and returns the decrement
    /// `bᵀδ`. A device overrides it to keep the coefficients on the device, with the same
    /// iterates to rounding.
    fn solve(
        &mut self,
        cg: &mut Cg<Self::Vector>,
        b: &Self::Vector,
        damping: (f64, f64),
    ) -> Result<f64>
    where
        Self: Sized,
    {
        cg.solve(self, b, damping)?;
        self.dot(b, &cg.x)
    }
    /// `trial ← x − δ`; returns the step's norm ([`VectorSpace::step_norm`]) and the objective
    /// at `trial` (as [`VectorSpace::value_grad`], its gradient into `g_trial`). A device reads
    /// both back together.
    fn try_step(
        &mut self,
        x: &Self::Vector,
        delta: &Self::Vector,
        trial: &mut Self::Vector,
        g_trial: &mut Self::Vector,
    ) -> Result<(f64, f64)> {
        self.assign(x, trial)?;
        self.axpy(-1.0, delta, trial)?;
        let norm = self.step_norm(delta)?;
        Ok((norm, self.value_grad(trial, g_trial)?))
    }
}

/// A [`VectorSpace`] over vectors in host memory (`Vec<f64>`) with its vector operations given:
/// an implementor provides the objective, the Hessian product and the Hessian diagonal, which
/// damping and the (Jacobi) preconditioner use.
pub trait HostSpace {
    /// The number of coordinates.
    fn dim(&self) -> usize;
    /// As [`VectorSpace::value_grad`].
    fn evaluate(&mut self, x: &[f64], grad: &mut [f64]) -> Result<f64>;
    /// As [`VectorSpace::hessian_product`].
    fn hessian_times(&mut self, v: &[f64], out: &mut [f64]) -> Result<()>;
    /// The Hessian diagonal at the last evaluated point, floored above zero.
    fn diagonal(&self) -> &[f64];
    /// As [`VectorSpace::precondition`]; by default the inverse diagonal (Jacobi).
    fn precondition(&mut self, x: &mut [f64]) {
        x.iter_mut().zip(self.diagonal()).for_each(|(x, d)| *x /= d);
    }
}

impl<T: HostSpace> VectorSpace for T {
    type Vector = Vec<f64>;
    fn upload(&mut self, x: &[f64]) -> Result<Vec<f64>> {
        Ok(x.to_vec())
    }
    fn download(&mut self, x: &Vec<f64>) -> Result<Vec<f64>> {
        Ok(x.clone())
    }
    fn zeros(&mut self) -> Result<Vec<f64>> {
        Ok(vec![0.0; self.dim()])
    }
    fn value_grad(&mut self, x: &Vec<f64>, grad: &mut Vec<f64>) -> Result<f64> {
        self.evaluate(x, grad)
    }
    fn hessian_product(&mut self, v: &Vec<f64>, out: &mut Vec<f64>) -> Result<()> {
        self.hessian_times(v, out)
    }
    fn damp(&mut self, mu: f64, v: &Vec<f64>, out: &mut Vec<f64>) -> Result<()> {
        out.iter_mut()
            .zip(v.iter().zip(self.diagonal()))
            .for_each(|(o, (v, d))| *o += mu * (d + 1.0) * v);
        Ok(())
    }
    fn dot(&mut self, a: &Vec<f64>, b: &Vec<f64>) -> Result<f64> {
        Ok(a.iter().zip(b).map(|(a, b)| a * b).sum())
    }
    fn norm_inf(&mut self, a: &Vec<f64>) -> Result<f64> {
        Ok(a.iter().fold(0.0, |m, v| m.max(v.abs())))
    }
    fn axpy(&mut self, alpha: f64, x: &Vec<f64>, y: &mut Vec<f64>) -> Result<()> {
        y.iter_mut().zip(x).for_each(|(y, x)| *y += alpha * x);
        Ok(())
    }
    fn scale(&mut self, alpha: f64, x: &mut Vec<f64>) -> Result<()> {
        x.iter_mut().for_each(|v| *v *= alpha);
        Ok(())
    }
    fn assign(&mut self, src: &Vec<f64>, dst: &mut Vec<f64>) -> Result<()> {
        dst.copy_from_slice(src);
        Ok(())
    }
    fn precondition(&mut self, x: &mut Vec<f64>) -> Result<()> {
        HostSpace::precondition(self, x);
        Ok(())
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct NewtonOptions {
    /// Most Newton steps.
    pub max_iterations: usize,
    /// Converged when the Newton step's largest coordinate is at most this (0: not used).
    pub step_tol: f64,
    /// Converged when the decrement `∇ᵀδ` is at most this (0: not used).
    pub decrement_tol: f64,
    /// Below this decrement the quadratic model is trusted: full steps, no decrease test. Set it
    /// near the rounding error of the objective's value.
    pub quadratic: f64,
    /// Levenberg–Marquardt damping of the first step (0 from a good start).
    pub damping: f64,
    /// Trust radius: conjugate gradients stop once their iterate moves a coordinate further
    /// than this, and the step is scaled back to it (Steihaug).
    pub max_step: f64,
    /// A converged fit also needs `‖∇S‖∞ ≤ grad_tol` when it stopped on rounding.
    pub grad_tol: f64,
    /// Relative rounding error of the objective's value: a trial whose value is within it of
    /// the current one is accepted when it lowers `‖∇S‖∞` (values in f32 cannot tell a decrease).
    pub rounding: f64,
    /// The progress bar's label: the stage the solve belongs to (stages may run at once).
    #[serde(skip)]
    pub stage: &'static str,
}

impl Default for NewtonOptions {
    /// Steps to `1e-9`, undamped start, `quadratic` for an objective of order 1e4.
    fn default() -> Self {
        NewtonOptions {
            max_iterations: 200,
            step_tol: 1e-9,
            decrement_tol: 0.0,
            quadratic: 1e-8,
            damping: 0.0,
            max_step: 10.0,
            grad_tol: 1e-8,
            rounding: 1e-14,
            stage: "fit",
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewtonOutcome {
    pub x: Vec<f64>,
    pub value: f64,
    /// `‖∇S‖∞` at `x`.
    pub grad_norm: f64,
    /// Newton steps taken.
    pub iterations: usize,
    /// Evaluations of value, gradient and Hessian weights (one pass over the edges each).
    pub evaluations: usize,
    /// Hessian–vector products (conjugate-gradient iterations, one pass each).
    pub hessian_products: usize,
    /// Conjugate-gradient solves (one per Newton step, and one per re-solve with damping).
    pub solves: usize,
    /// `‖δ‖∞` of the last Newton step solved: the largest coordinate error before it was taken,
    /// to second order (the bound on the error of `x`).
    pub step_norm: f64,
    /// The last decrement `∇ᵀδ` (squared error in the Hessian's norm, to second order).
    pub decrement: f64,
    pub converged: bool,
    /// Why the solver stopped, in words.
    pub status: String,
}

impl NewtonOutcome {
    /// Passes over the edges: evaluations plus Hessian products.
    pub fn passes(&self) -> usize {
        self.evaluations + self.hessian_products
    }
}

/// Why the Newton loop ended.
enum Stop {
    Step,
    Decrement,
    Rounding,
    Limit,
    NoDecrease,
}

impl Stop {
    /// Whether the solver counts as converged when stopped this way, and why it stopped, in words.
    fn describe(
        &self,
        opts: &NewtonOptions,
        decrement: f64,
        step_norm: f64,
        grad_norm: f64,
    ) -> (bool, String) {
        match self {
            Stop::Step => (
                true,
                format!("Newton step ≤ {:.0e} in every coordinate", opts.step_tol),
            ),
            Stop::Decrement => (
                decrement.is_finite(),
                format!("Newton decrement ≤ {:.0e}", opts.decrement_tol),
            ),
            Stop::Rounding => (
                grad_norm <= opts.grad_tol,
                format!("rounding floor (Newton step {step_norm:.1e})"),
            ),
            Stop::Limit => (
                false,
                format!("iteration limit ({}) reached", opts.max_iterations),
            ),
            Stop::NoDecrease => (
                grad_norm <= opts.grad_tol,
                format!("no decrease even when damped (Newton step {step_norm:.1e})"),
            ),
        }
    }
}

/// Minimises the space's objective from `x0`.
pub fn minimize<S: VectorSpace>(
    space: &mut S,
    x0: &[f64],
    opts: &NewtonOptions,
) -> Result<NewtonOutcome> {
    if x0.is_empty() {
        // No state to fit (a log without a cycle, its trees all eliminated): the empty point is
        // the optimum. A device's kernels cannot be bound to empty buffers.
        return Ok(NewtonOutcome {
            x: Vec::new(),
            value: 0.0,
            grad_norm: 0.0,
            iterations: 0,
            evaluations: 0,
            hessian_products: 0,
            solves: 0,
            step_norm: 0.0,
            decrement: 0.0,
            converged: true,
            status: "no state left to fit".to_owned(),
        });
    }
    let x = space.upload(x0)?;
    let mut g = space.zeros()?;
    let f = space.value_grad(&x, &mut g)?;
    check_finite(f, 0)?;
    let mut cur = Point { x, g, f };
    let mut cg = Cg::new(space)?;
    let (x, g) = (space.zeros()?, space.zeros()?);
    let mut trial = Point { x, g, f: 0.0 };
    let mut work = Work {
        evaluations: 1,
        solves: 0,
        decrement: f64::INFINITY,
        step_norm: f64::INFINITY,
    };
    let mut iterations = 0;
    let mut damping = opts.damping;
    let mut radius = opts.max_step;
    let bar = progress::bar(opts.stage, opts.max_iterations as u64, Unit::Iterations);
    let stop = 'newton: loop {
        if iterations >= opts.max_iterations {
            break Stop::Limit;
        }
        loop {
            let previous = (work.decrement, work.step_norm);
            floor_forcing(space, &mut cg, &cur.g, opts.step_tol / previous.1)?;
            work.decrement = space.solve(&mut cg, &cur.g, (damping, radius))?;
            work.solves += 1;
            // (A NaN decrement stops too.)
            if work.decrement.is_nan() || work.decrement <= opts.decrement_tol {
                work.step_norm = space.step_norm(&cg.x)?;
                break 'newton Stop::Decrement;
            }
            let step = (&mut cur, &mut trial, &mut work);
            let trial_outcome = try_halving(space, opts, &mut cg, step, damping, previous)?;
            trace_step(iterations, &work, cg.products, damping);
            match trial_outcome {
                Trial::Stop(stop) => {
                    iterations += usize::from(matches!(stop, Stop::Step));
                    break 'newton stop;
                }
                Trial::Accepted { halved } => {
                    if !halved {
                        radius = next_radius(space, opts, &cg, &cur.g, &work, radius)?;
                    }
                    damping = if damping < 1e-3 { 0.0 } else { damping / 4.0 };
                    iterations += 1;
                    bar.set(iterations as u64);
                    break;
                }
                Trial::Rejected => {}
            }
            damping = (damping * 4.0).max(1e-3);
            if damping > 1e12 {
                break 'newton Stop::NoDecrease;
            }
            // The trial overwrote the space's Hessian: evaluate the current point again.
            cur.f = space.value_grad(&cur.x, &mut cur.g)?;
            work.evaluations += 1;
        }
    };
    check_finite(cur.f, iterations)?;
    let grad_norm = space.norm_inf(&cur.g)?;
    let (converged, status) = stop.describe(opts, work.decrement, work.step_norm, grad_norm);
    Ok(NewtonOutcome {
        x: space.download(&cur.x)?,
        value: cur.f,
        grad_norm,
        iterations,
        evaluations: work.evaluations,
        hessian_products: cg.products,
        solves: work.solves,
        step_norm: work.step_norm,
        decrement: work.decrement,
        converged,
        status,
    })
}

/// The step bound after an accepted, unhalved step `δ = cg.x` to the point whose gradient is
/// `g`: unchanged unless the solve cut the step at the bound `radius` (module docs). Then the
/// step is `s` times a conjugate-gradient iterate, whose curvature `δᵀAδ` is `s ∇ᵀδ` (Galerkin:
/// the iterate's residual is orthogonal to it), and the curvature the objective showed along the
/// step is `δᵀ(∇ − g)`. Where it is more than [`CURVATURE_MISMATCH`] times the model's, the
/// model was wrong at that length (the step crossed a valley whose curvature it did not see)
/// and the bound falls to a quarter of the step; otherwise it doubles, up to `max_step`. Without
/// this a coordinate whose curvature has underflowed on both sides of a sharp valley is thrown
/// across it and back at every step, while the cut holds every other coordinate to a fraction
/// of its Newton step (the 1e8-row llm-like log: 383 steps, BENCHMARKS.md "The default's cost,
/// second pass").
fn next_radius<S: VectorSpace>(
    space: &mut S,
    opts: &NewtonOptions,
    cg: &Cg<S::Vector>,
    g: &S::Vector,
    work: &Work,
    radius: f64,
) -> Result<f64> {
    if cg.shrink >= 1.0 {
        return Ok(radius);
    }
    let model = cg.shrink * work.decrement;
    let seen = work.decrement - space.dot(g, &cg.x)?;
    Ok(if seen > CURVATURE_MISMATCH * model {
        0.25 * work.step_norm.min(radius)
    } else {
        (2.0 * radius).min(opts.max_step)
    })
}

/// How much more curvature than its model a cut step may meet along its length before the step
/// bound shrinks ([`next_radius`]).
const CURVATURE_MISMATCH: f64 = 2.0;

/// The step's numbers as a debug event (`RUST_LOG=detbal=debug`).
fn trace_step(step: usize, work: &Work, products: usize, damping: f64) {
    let (decrement, step_norm, evaluations) = (work.decrement, work.step_norm, work.evaluations);
    tracing::debug!(
        step,
        decrement,
        step_norm,
        evaluations,
        products,
        damping,
        "newton step"
    );
}

/// A point with its objective and gradient.
struct Point<V> {
    x: V,
    g: V,
    f: f64,
}

/// The last solve's decrement and step norm, and the evaluations and solves so far.
struct Work {
    evaluations: usize,
    solves: usize,
    decrement: f64,
    step_norm: f64,
}

/// What became of a Newton step.
enum Trial {
    /// Taken: the trial point is the current one (`halved`: a fraction of the solve's step).
    Accepted { halved: bool },
    /// No trial point lowered the objective.
    Rejected,
    /// The solver stops (on [`Stop::Step`] after taking the step).
    Stop(Stop),
}

/// Tries the step `cg.x` from `cur`, halving it up to [`HALVINGS`] times while the objective
/// does not decrease (module docs); an accepted trial is swapped into `cur`. `previous` is the
/// decrement and step norm before this step's solve.
fn try_halving<S: VectorSpace>(
    space: &mut S,
    opts: &NewtonOptions,
    cg: &mut Cg<S::Vector>,
    (cur, trial, work): (&mut Point<S::Vector>, &mut Point<S::Vector>, &mut Work),
    damping: f64,
    previous: (f64, f64),
) -> Result<Trial> {
    for halvings in 0..=HALVINGS {
        if halvings > 0 {
            space.scale(0.5, &mut cg.x)?;
            work.decrement *= 0.5;
        }
        // The trial point is evaluated with the step's norm (one read-back on a device), also
        // when the tests below then stop without it.
        (work.step_norm, trial.f) = space.try_step(&cur.x, &cg.x, &mut trial.x, &mut trial.g)?;
        work.evaluations += 1;
        let trusted = damping == 0.0 && work.decrement < opts.quadratic;
        if damping == 0.0 && halvings == 0 && work.step_norm <= opts.step_tol {
            std::mem::swap(cur, trial);
            return Ok(Trial::Stop(Stop::Step));
        }
        let stalled = work.decrement > 0.5 * previous.0 && work.step_norm > 0.5 * previous.1;
        if trusted && halvings == 0 && stalled {
            return Ok(Trial::Stop(Stop::Rounding));
        }
        let (f, f_trial) = (cur.f, trial.f);
        let level = f_trial.is_finite() && f_trial <= f + opts.rounding * (f.abs() + 1.0);
        let mut flatter =
            || -> Result<bool> { Ok(space.norm_inf(&trial.g)? < space.norm_inf(&cur.g)?) };
        if f_trial < f || (trusted && f_trial.is_finite()) || (level && flatter()?) {
            std::mem::swap(cur, trial);
            return Ok(Trial::Accepted {
                halved: halvings > 0,
            });
        }
    }
    Ok(Trial::Rejected)
}

/// Halvings of a Newton step whose trial point does not lower the objective before the step is
/// re-solved with more damping (module docs).
const HALVINGS: usize = 3;

/// Least forcing term after the first solve (module docs).
pub const FORCING_FLOOR: f64 = 0.01;

/// The least forcing term after a step of `‖δ‖∞ = s`: `FORCING_FLOOR`, raised to
/// `10 step_tol/s` (at most 0.1) once `s` nears `step_tol`. The next step is then known to
/// `η ‖δ‖`, about `10 step_tol ‖δ‖/s`, a tenth of `step_tol` while steps shrink a hundredfold
/// (as they do at the floor): enough to tell whether it is below `step_tol`, and to within a
/// tenth of its size.
fn least_forcing(step_tol_over_last_step: f64) -> f64 {
    FORCING_FLOOR.max((10.0 * step_tol_over_last_step).min(0.1))
}

/// Imposes [`least_forcing`] on the next solve's forcing term `min(0.9 g/g_last, 0.5)` by
/// lowering the remembered `g_last` to at most `0.9 g/η_min`, `g = ∇ᵀP∇` at the current point:
/// through [`Cg::last`], which a device's solve reads too (it forms the same forcing term
/// itself), so every space gets the same floor. Costs one preconditioner application, no pass
/// over the edges. `ratio` is `step_tol` over the last step's `‖δ‖∞`.
fn floor_forcing<S: VectorSpace>(
    space: &mut S,
    cg: &mut Cg<S::Vector>,
    g: &S::Vector,
    ratio: f64,
) -> Result<()> {
    if let Some((g_last, eta_last)) = cg.last {
        space.assign(g, &mut cg.u)?;
        space.precondition(&mut cg.u)?;
        let gp = space.dot(g, &cg.u)?;
        cg.last = Some((g_last.min(0.9 * gp / least_forcing(ratio)), eta_last));
    }
    Ok(())
}

/// Most conjugate-gradient iterations of one solve: far more than convergence needs, a guard
/// against rounding loops.
pub const CG_LIMIT: usize = 10_000;

/// Preconditioned conjugate gradients (Chronopoulos–Gear coefficients) for `(H + μ (D + I)) δ = b`, with the
/// vectors it reuses from one Newton step to the next (public for the spaces that override
/// [`VectorSpace::solve`]).
pub struct Cg<V> {
    /// The solution `δ`.
    pub x: V,
    /// The residual `b − Aδ`.
    pub r: V,
    /// `P r`.
    pub u: V,
    /// `A u`.
    pub w: V,
    /// The search direction.
    pub p: V,
    /// `A p`.
    pub s: V,
    /// Hessian products so far.
    pub products: usize,
    /// `∇ᵀP∇` and the forcing term of the last solve.
    pub last: Option<(f64, f64)>,
    /// The factor the last solve's step was scaled by to keep it within the radius (1: not
    /// cut).
    pub shrink: f64,
}

/// The forcing term for a right-hand side with `∇ᵀP∇ = g`, after a solve whose `(∇ᵀP∇, η)` was
/// `last` (module docs). shaders/cg_coefficients.wgsl computes the same.
pub fn forcing(g: f64, last: Option<(f64, f64)>) -> f64 {
    let eta = match last {
        None => 0.5,
        Some((g_last, eta_last)) => {
            let floor = 0.9 * eta_last * eta_last;
            let eta = (0.9 * g / g_last).min(0.5);
            if floor > 0.1 { eta.max(floor) } else { eta }
        }
    };
    if eta.is_finite() { eta.max(1e-12) } else { 0.5 }
}

impl<V> Cg<V> {
    pub fn new<S: VectorSpace<Vector = V>>(space: &mut S) -> Result<Self> {
        Ok(Cg {
            x: space.zeros()?,
            r: space.zeros()?,
            u: space.zeros()?,
            w: space.zeros()?,
            p: space.zeros()?,
            s: space.zeros()?,
            products: 0,
            last: None,
            shrink: 1.0,
        })
    }

    /// `w ← (H + μ (D + I)) u`.
    fn product<S: VectorSpace<Vector = V>>(&mut self, space: &mut S, mu: f64) -> Result<()> {
        space.hessian_product(&self.u, &mut self.w)?;
        if mu > 0.0 {
            space.damp(mu, &self.u, &mut self.w)?;
        }
        self.products += 1;
        Ok(())
    }

    /// The forcing term for a right-hand side with `∇ᵀP∇ = g`, remembered for the next solve.
    fn forcing(&mut self, g: f64) -> f64 {
        let eta = forcing(g, self.last);
        self.last = Some((g, eta));
        eta
    }

    /// Solves from `δ = 0` until `rᵀPr` has fallen by the forcing term squared, or until `‖δ‖∞` exceeds
    /// `radius` (then `δ` is scaled back to it: nearly flat directions, where the curvature has
    /// underflowed far from the optimum, would otherwise give enormous steps and many
    /// iterations). Without a ridge the system is singular along each component's constant, and
    /// consistent (the gradient sums to zero per component), so CG converges to one of its
    /// solutions.
    pub fn solve<S: VectorSpace<Vector = V>>(
        &mut self,
        space: &mut S,
        b: &V,
        (mu, radius): (f64, f64),
    ) -> Result<()> {
        space.scale(0.0, &mut self.x)?;
        space.assign(b, &mut self.r)?;
        self.shrink = 1.0;
        let (mut gamma_old, mut alpha_old, mut target) = (0.0, 0.0, 0.0);
        for i in 0..CG_LIMIT {
            space.assign(&self.r, &mut self.u)?;
            space.precondition(&mut self.u)?;
            // ‖δ‖∞ of the previous iteration's update, and `rᵀPr`, read before the product:
            // the iteration that stops needs none.
            let (gamma, size) = (space.dot(&self.r, &self.u)?, space.norm_inf(&self.x)?);
            if size > radius {
                self.shrink = radius / size;
                space.scale(self.shrink, &mut self.x)?;
                break;
            }
            if i == 0 {
                let forcing = self.forcing(gamma);
                target = forcing * forcing * gamma;
            }
            if !(gamma > target && gamma > 0.0) {
                break;
            }
            self.product(space, mu)?;
            let delta = space.dot(&self.w, &self.u)?;
            let (alpha, beta) = if i == 0 {
                (gamma / delta, 0.0)
            } else {
                let beta = gamma / gamma_old;
                (gamma / (delta - beta * gamma / alpha_old), beta)
            };
            if !(alpha.is_finite() && alpha > 0.0) {
                break;
            }
            space.scale(beta, &mut self.p)?;
            space.axpy(1.0, &self.u, &mut self.p)?;
            space.scale(beta, &mut self.s)?;
            space.axpy(1.0, &self.w, &mut self.s)?;
            space.axpy(alpha, &self.p, &mut self.x)?;
            space.axpy(-alpha, &self.s, &mut self.r)?;
            (gamma_old, alpha_old) = (gamma, alpha);
        }
        Ok(())
    }
}

fn check_finite(f: f64, iteration: usize) -> Result<()> {
    if f.is_finite() {
        Ok(())
    } else {
        Err(Error::Numerical(format!(
            "objective is {f} at Newton step {iteration}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Σ_i c_i (log(1 + e^(x_i − 1)) − (x_i − 1)/2)`-like convex separable objective: the
    /// logistic loss of each coordinate, minimised at `x_i = 1`, curvature `c_i σ σ'`.
    struct Separable(Vec<f64>, Vec<f64>);

    impl HostSpace for Separable {
        fn dim(&self) -> usize {
            self.0.len()
        }
        fn evaluate(&mut self, x: &[f64], g: &mut [f64]) -> Result<f64> {
            let mut f = 0.0;
            for i in 0..x.len() {
                let d = x[i] - 1.0;
                let s = 1.0 / (1.0 + (-d).exp());
                f += self.0[i] * ((1.0 + d.exp()).ln() - d / 2.0);
                g[i] = self.0[i] * (s - 0.5);
                self.1[i] = self.0[i] * s * (1.0 - s);
            }
            Ok(f)
        }
        fn hessian_times(&mut self, v: &[f64], out: &mut [f64]) -> Result<()> {
            out.iter_mut()
                .zip(v.iter().zip(&self.1))
                .for_each(|(o, (v, h))| *o = h * v);
            Ok(())
        }
        fn diagonal(&self) -> &[f64] {
            &self.1
        }
    }

    #[test]
    fn converges_quadratically_from_far_away_with_damping() {
        let c: Vec<f64> = (0..50).map(|i| 10f64.powf(i as f64 / 10.0)).collect();
        let mut space = Separable(c, vec![0.0; 50]);
        let out = minimize(&mut space, &[-30.0; 50], &NewtonOptions::default()).unwrap();
        assert!(out.converged, "{}", out.status);
        assert!(out.x.iter().all(|x| (x - 1.0).abs() < 1e-9), "{:?}", out.x);
        assert!(out.step_norm <= 1e-9);
        assert!(out.iterations < 40, "{} steps", out.iterations);
    }

    /// A sharp valley in `x₀` (`a log cosh(k (x₀ − 1))` plus a weak `ε/2 (x₀ − 1)²`: away from
    /// the valley the curvature underflows to `ε` and the Newton step is `a k/ε`) beside a far
    /// quadratic minimum in `x₁` (`½ (x₁ − 200)²`, 20 bounded steps away).
    struct Valley([f64; 2]);

    impl HostSpace for Valley {
        fn dim(&self) -> usize {
            2
        }
        fn evaluate(&mut self, x: &[f64], g: &mut [f64]) -> Result<f64> {
            let (a, k, eps) = (1.0, 20.0, 0.01);
            let d = x[0] - 1.0;
            let t = (k * d).tanh();
            let log_cosh = (k * d).abs() + (-2.0 * (k * d).abs()).exp().ln_1p() - 2f64.ln();
            g[0] = a * k * t + eps * d;
            g[1] = x[1] - 200.0;
            self.0 = [a * k * k * (1.0 - t * t) + eps, 1.0];
            Ok(a * log_cosh + 0.5 * eps * d * d + 0.5 * (x[1] - 200.0).powi(2))
        }
        fn hessian_times(&mut self, v: &[f64], out: &mut [f64]) -> Result<()> {
            out[0] = self.0[0] * v[0];
            out[1] = self.0[1] * v[1];
            Ok(())
        }
        fn diagonal(&self) -> &[f64] {
            &self.0
        }
    }

    /// A cut step that meets far more curvature than its model shrinks the bound, which grows
    /// again after: the valley's coordinate lands instead of being thrown across the valley at
    /// every step (without the rule: over 100 steps, `x₁` moving ~1 per step).
    #[test]
    fn a_sharp_valley_does_not_hold_back_the_other_coordinates() {
        let mut space = Valley([0.0; 2]);
        let out = minimize(&mut space, &[6.3, 0.0], &NewtonOptions::default()).unwrap();
        assert!(out.converged, "{}", out.status);
        assert!((out.x[0] - 1.0).abs() < 1e-9 && (out.x[1] - 200.0).abs() < 1e-9);
        eprintln!("{} steps", out.iterations);
        assert!(out.iterations < 40, "{} steps", out.iterations);
    }

    #[test]
    fn reports_the_iteration_limit() {
        let mut space = Separable(vec![1.0; 5], vec![0.0; 5]);
        let opts = NewtonOptions {
            max_iterations: 1,
            ..NewtonOptions::default()
        };
        let out = minimize(&mut space, &[-20.0; 5], &opts).unwrap();
        assert!(!out.converged);
        assert_eq!(out.iterations, 1);
        assert!(out.status.contains("iteration limit"), "{}", out.status);
    }
}
