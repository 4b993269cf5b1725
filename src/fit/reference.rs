//! `--paper`: the reference code's fit, step for step, so that its statistics can be reproduced.
//!
//! The reference minimises the action divided by the number of kept states `M`, over every kept
//! edge (also those between components, which have no finite optimum), from the levels of the
//! SCC condensation (`V0 = −level`, centred), with SciPy's L-BFGS-B at default settings. Without
//! bounds L-BFGS-B is L-BFGS (memory 10, `H0 = (s·y / y·y) I`) with the Moré–Thuente line search
//! (MINPACK-2 `dcsrch`: `ftol = 1e-3`, `gtol = 0.9`, `xtol = 0.1`; first trial step `1/‖g‖₂`,
//! then 1), stopping when `‖g‖∞ ≤ 1e-5` or the relative decrease of `f` is `≤ 2.2e-9`. It stops
//! well before the optimum; its statistics depend on where, so this module retraces that path.
//! Final potentials are centred over all states in edges.
//!
//! `fit` (the L-BFGS-B iteration: two-loop recursion, first trial step, line search, the
//! curvature test before a pair enters the memory, the stopping rules) and `dcstep` (MINPACK-2's
//! safeguarded cubic/quadratic step) are kept whole although each is over 100 lines: each is a
//! line-by-line port of its reference routine (SciPy's `lbfgsb.f` without bounds, MINPACK-2's
//! `dcstep.f`), so that its branches and the order of its floating-point operations can be
//! checked one for one against the original, which helpers would obscure; the path the reference
//! takes, and so its statistics, depend on that order.

use super::problem::{sigmoid_neg, softplus_neg};
use crate::graph::{TransitionGraph, strongly_connected_components};
use crate::progress::{self, Unit};

const MEMORY: usize = 10;
pub(super) const PGTOL: f64 = 1e-5;
const FACTR_EPS: f64 = 2.220_446_049_250_313e-9;
const MAX_ITERATIONS: usize = 15_000;

pub struct ReferenceFit {
    /// Potential of every state that appears in an edge, centred over them; `None` otherwise.
    pub value: Vec<Option<f64>>,
    /// The action per kept state where the optimiser stopped.
    pub action: f64,
    pub iterations: usize,
    pub evaluations: usize,
    pub grad_norm: f64,
    pub converged: bool,
}

/// Runs the reference optimiser on the graph's `edges` with `weight[e]`, normalised by
/// `kept_states`.
pub fn fit(
    graph: &TransitionGraph,
    edges: &[usize],
    weight: &[Option<f64>],
    kept_states: usize,
) -> ReferenceFit {
    let n = graph.n_states();
    let in_edges: Vec<bool> = (0..n)
        .map(|f| graph.out_ptr[f] < graph.out_ptr[f + 1] || graph.in_ptr[f] < graph.in_ptr[f + 1])
        .collect();
    let scale = 1.0 / kept_states.max(1) as f64;
    let objective = |x: &[f64], g: &mut [f64]| -> f64 {
        g.iter_mut().for_each(|g| *g = 0.0);
        let mut f = 0.0;
        for &e in edges {
            let (s, t) = (graph.src[e] as usize, graph.dst[e] as usize);
            let w = weight[e].expect("kept edges have weights");
            let d = x[s] - x[t];
            f += w * softplus_neg(d);
            let ws = w * sigmoid_neg(d);
            g[s] -= ws * scale;
            g[t] += ws * scale;
        }
        f * scale
    };
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(a, b)| a * b).sum::<f64>();
    let norm_inf = |a: &[f64]| a.iter().fold(0.0f64, |m, v| m.max(v.abs()));

    let mut x = condensation_levels(graph, &in_edges);
    let mut g = vec![0.0; n];
    let mut f = objective(&x, &mut g);
    let mut evaluations = 1;
    let mut history: std::collections::VecDeque<(Vec<f64>, Vec<f64>)> = Default::default();
    let mut theta = 1.0;
    let mut iterations = 0;
    let mut converged = norm_inf(&g) <= PGTOL;
    let bar = progress::bar("fit", MAX_ITERATIONS as u64, Unit::Iterations);
    while !converged && iterations < MAX_ITERATIONS {
        // d = −H g, two-loop recursion with H0 = I / θ.
        let mut d: Vec<f64> = g.clone();
        let mut alphas = Vec::with_capacity(history.len());
        for (s, y) in history.iter().rev() {
            let a = dot(s, &d) / dot(s, y);
            d.iter_mut().zip(y).for_each(|(d, y)| *d -= a * y);
            alphas.push(a);
        }
        d.iter_mut().for_each(|d| *d /= theta);
        for ((s, y), a) in history.iter().zip(alphas.iter().rev()) {
            let b = dot(y, &d) / dot(s, y);
            d.iter_mut().zip(s).for_each(|(d, s)| *d += (a - b) * s);
        }
        d.iter_mut().for_each(|d| *d = -*d);
        let slope = dot(&g, &d);
        if slope >= 0.0 {
            break;
        }
        let first = if iterations == 0 {
            (1.0 / dot(&d, &d).sqrt()).min(1e10)
        } else {
            1.0
        };
        let mut search = MoreThuente::new(first, f, slope, 1e10);
        let (mut x_new, mut g_new) = (x.clone(), vec![0.0; n]);
        let mut f_new;
        loop {
            let t = search.step;
            x_new
                .iter_mut()
                .zip(&x)
                .zip(&d)
                .for_each(|((xn, x), d)| *xn = x + t * d);
            f_new = objective(&x_new, &mut g_new);
            evaluations += 1;
            if search.next(f_new, dot(&g_new, &d)) || evaluations > 20 * MAX_ITERATIONS {
                break;
            }
        }
        let s: Vec<f64> = x_new.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        let (sy, yy) = (dot(&s, &y), dot(&y, &y));
        if sy > f64::EPSILON * -dot(&g, &s) {
            if history.len() == MEMORY {
                history.pop_front();
            }
            history.push_back((s, y));
            theta = yy / sy;
        }
        let f_old = f;
        (x, g, f) = (x_new, g_new, f_new);
        iterations += 1;
        bar.set(iterations as u64);
        converged =
            norm_inf(&g) <= PGTOL || (f_old - f) / f_old.abs().max(f.abs()).max(1.0) <= FACTR_EPS;
    }
    let members = in_edges.iter().filter(|&&b| b).count().max(1) as f64;
    let mean = (0..n).filter(|&i| in_edges[i]).map(|i| x[i]).sum::<f64>() / members;
    ReferenceFit {
        value: (0..n).map(|i| in_edges[i].then(|| x[i] - mean)).collect(),
        action: f,
        iterations,
        evaluations,
        grad_norm: norm_inf(&g),
        converged,
    }
}

/// `−level` in the condensation DAG (longest path from a source component), centred.
fn condensation_levels(graph: &TransitionGraph, in_edges: &[bool]) -> Vec<f64> {
    let sccs = strongly_connected_components(graph, |_| true);
    // Tarjan numbers components in reverse topological order: sources have the highest ids.
    let mut by_component: Vec<Vec<usize>> = vec![Vec::new(); sccs.count()];
    for (f, &c) in sccs.id.iter().enumerate() {
        by_component[c as usize].push(f);
    }
    let mut level = vec![0usize; sccs.count()];
    for c in (0..sccs.count()).rev() {
        for &f in &by_component[c] {
            for e in graph.out_ptr[f]..graph.out_ptr[f + 1] {
                let c2 = sccs.id[graph.dst[e] as usize] as usize;
                if c2 != c {
                    level[c2] = level[c2].max(level[c] + 1);
                }
            }
        }
    }
    let v: Vec<f64> = (0..graph.n_states())
        .map(|f| -(level[sccs.id[f] as usize] as f64))
        .collect();
    let members = in_edges.iter().filter(|&&b| b).count().max(1) as f64;
    let mean = (0..v.len())
        .filter(|&i| in_edges[i])
        .map(|i| v[i])
        .sum::<f64>()
        / members;
    v.iter()
        .zip(in_edges)
        .map(|(v, &inside)| if inside { v - mean } else { 0.0 })
        .collect()
}

/// The Moré–Thuente line search (MINPACK-2 `dcsrch`/`dcstep`) with L-BFGS-B's constants.
struct MoreThuente {
    step: f64,
    f0: f64,
    g0: f64,
    stage_one: bool,
    bracketed: bool,
    width: f64,
    width_before: f64,
    /// Best step so far (`x`) and the other end of the interval (`y`), with values, slopes.
    stx: (f64, f64, f64),
    sty: (f64, f64, f64),
    stmin: f64,
    stmax: f64,
    stpmax: f64,
}

impl MoreThuente {
    const FTOL: f64 = 1e-3;
    const GTOL: f64 = 0.9;
    const XTOL: f64 = 0.1;
    const XTRAPL: f64 = 1.1;
    const XTRAPU: f64 = 4.0;

    fn new(step: f64, f0: f64, g0: f64, stpmax: f64) -> Self {
        MoreThuente {
            step,
            f0,
            g0,
            stage_one: true,
            bracketed: false,
            width: stpmax,
            width_before: 2.0 * stpmax,
            stx: (0.0, f0, g0),
            sty: (0.0, f0, g0),
            stmin: 0.0,
            stmax: step + Self::XTRAPU * step,
            stpmax,
        }
    }

    /// Takes `f` and the directional derivative at `self.step`; true when the step is accepted,
    /// otherwise `self.step` is the next trial.
    fn next(&mut self, f: f64, g: f64) -> bool {
        let gtest = Self::FTOL * self.g0;
        let ftest = self.f0 + self.step * gtest;
        if self.stage_one && f <= ftest && g >= 0.0 {
            self.stage_one = false;
        }
        if f <= ftest && g.abs() <= Self::GTOL * -self.g0 {
            return true;
        }
        let stuck = (self.bracketed
            && (self.step <= self.stmin
                || self.step >= self.stmax
                || self.stmax - self.stmin <= Self::XTOL * self.stmax))
            || (self.step == self.stpmax && f <= ftest && g <= gtest)
            || (self.step == 0.0 && (f > ftest || g >= gtest));
        if stuck {
            return true;
        }
        if self.stage_one && f <= self.stx.1 && f > ftest {
            // The modified function ψ(t) = f(t) − f0 − t·gtest.
            let m = |(t, fv, gv): (f64, f64, f64)| (t, fv - t * gtest, gv - gtest);
            let (mut x, mut y) = (m(self.stx), m(self.sty));
            let (stp, fm, gm) = m((self.step, f, g));
            let next = dcstep(
                &mut x,
                &mut y,
                (stp, fm, gm),
                &mut self.bracketed,
                self.stmin,
                self.stmax,
            );
            let unm = |(t, fv, gv): (f64, f64, f64)| (t, fv + t * gtest, gv + gtest);
            (self.stx, self.sty) = (unm(x), unm(y));
            self.step = next;
        } else {
            self.step = dcstep(
                &mut self.stx,
                &mut self.sty,
                (self.step, f, g),
                &mut self.bracketed,
                self.stmin,
                self.stmax,
            );
        }
        if self.bracketed {
            if (self.sty.0 - self.stx.0).abs() >= 0.66 * self.width_before {
                self.step = self.stx.0 + 0.5 * (self.sty.0 - self.stx.0);
            }
            self.width_before = self.width;
            self.width = (self.sty.0 - self.stx.0).abs();
            self.stmin = self.stx.0.min(self.sty.0);
            self.stmax = self.stx.0.max(self.sty.0);
        } else {
            self.stmin = self.step + Self::XTRAPL * (self.step - self.stx.0);
            self.stmax = self.step + Self::XTRAPU * (self.step - self.stx.0);
        }
        self.step = self.step.clamp(0.0, self.stpmax);
        if self.bracketed
            && (self.step <= self.stmin
                || self.step >= self.stmax
                || self.stmax - self.stmin <= Self::XTOL * self.stmax)
        {
            self.step = self.stx.0;
        }
        false
    }
}

/// One safeguarded step of `dcstep`: updates the interval ends `x`, `y` with the trial `p` and
/// returns the next trial step.
fn dcstep(
    x: &mut (f64, f64, f64),
    y: &mut (f64, f64, f64),
    p: (f64, f64, f64),
    bracketed: &mut bool,
    stpmin: f64,
    stpmax: f64,
) -> f64 {
    let (stx, fx, dx) = *x;
    let (sty, fy, dy) = *y;
    let (stp, fp, dp) = p;
    let sgnd = dp * (dx / dx.abs());
    let cubic_gamma = |theta: f64, a: f64, b: f64, clamp: bool| {
        let s = theta.abs().max(a.abs()).max(b.abs());
        let inner = (theta / s).powi(2) - (a / s) * (b / s);
        s * if clamp { inner.max(0.0) } else { inner }.sqrt()
    };
    let stpf = if fp > fx {
        let theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp;
        let mut gamma = cubic_gamma(theta, dx, dp, false);
        if stp < stx {
            gamma = -gamma;
        }
        let r = ((gamma - dx) + theta) / (((gamma - dx) + gamma) + dp);
        let stpc = stx + r * (stp - stx);
        let stpq = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / 2.0) * (stp - stx);
        *bracketed = true;
        if (stpc - stx).abs() < (stpq - stx).abs() {
            stpc
        } else {
            stpc + (stpq - stpc) / 2.0
        }
    } else if sgnd < 0.0 {
        let theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp;
        let mut gamma = cubic_gamma(theta, dx, dp, false);
        if stp > stx {
            gamma = -gamma;
        }
        let r = ((gamma - dp) + theta) / (((gamma - dp) + gamma) + dx);
        let stpc = stp + r * (stx - stp);
        let stpq = stp + (dp / (dp - dx)) * (stx - stp);
        *bracketed = true;
        if (stpc - stp).abs() > (stpq - stp).abs() {
            stpc
        } else {
            stpq
        }
    } else if dp.abs() < dx.abs() {
        let theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp;
        let mut gamma = cubic_gamma(theta, dx, dp, true);
        if stp > stx {
            gamma = -gamma;
        }
        let r = ((gamma - dp) + theta) / ((gamma + (dx - dp)) + gamma);
        let stpc = if r < 0.0 && gamma != 0.0 {
            stp + r * (stx - stp)
        } else if stp > stx {
            stpmax
        } else {
            stpmin
        };
        let stpq = stp + (dp / (dp - dx)) * (stx - stp);
        if *bracketed {
            let t = if (stpc - stp).abs() < (stpq - stp).abs() {
                stpc
            } else {
                stpq
            };
            if stp > stx {
                t.min(stp + 0.66 * (sty - stp))
            } else {
                t.max(stp + 0.66 * (sty - stp))
            }
        } else {
            let t = if (stpc - stp).abs() > (stpq - stp).abs() {
                stpc
            } else {
                stpq
            };
            t.min(stpmax).max(stpmin)
        }
    } else if *bracketed {
        let theta = 3.0 * (fp - fy) / (sty - stp) + dy + dp;
        let mut gamma = cubic_gamma(theta, dy, dp, false);
        if stp > sty {
            gamma = -gamma;
        }
        let r = ((gamma - dp) + theta) / (((gamma - dp) + gamma) + dy);
        stp + r * (sty - stp)
    } else if stp > stx {
        stpmax
    } else {
        stpmin
    };
    if fp > fx {
        *y = p;
    } else {
        if sgnd < 0.0 {
            *y = *x;
        }
        *x = p;
    }
    stpf
}
