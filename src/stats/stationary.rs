//! The stationary distribution `π̂` of the estimated kernel on the reciprocal pairs
//! (docs/METHOD.md §5), which the entropy production and its null resamples need.
//!
//! The kernel is `T(f→g) = n(f→g)/N(f)` on the pairs seen both ways (`N` = the out-count, self-
//! and one-way transitions included, so they stay with `f`). On each connected component of
//! those pairs `π̂` solves the balance `π_f r_f = Σ_g π_g T(g→f)`, `r_f = Σ_g T(f→g)`, and sums to
//! the component's share of the transitions.
//!
//! Why not Gauss–Seidel sweeps (the first implementation): they converge at the chain's mixing
//! rate. On agent logs whose reciprocal graph is a long, nearly tree-like web around hubs that is
//! thousands of sweeps (1,632 on a 1e5-row `llm-hard` log; on its 1e6-row twin 7,955 sweeps left
//! an imbalance of 4e-8 after a minute), and the entropy null solves it 40 times more.
//!
//! Here: one state per component (the most visited, its `π` pinned to 1) makes the system
//! `A x = b` non-singular (an M-matrix with the other states' balance rows), solved by GMRES(12)
//! preconditioned with the same system on a maximum-weight spanning forest (weight: the pair's
//! transitions both ways) with the whole diagonal. A forest has no fill-in, so the
//! preconditioner is factored once by eliminating leaves first and applied in two passes,
//! O(states). It is exact on a tree-shaped component (one iteration), and a component with `k`
//! chords differs from it by rank ≤ 2k, so GMRES needs few iterations where a few chords carry
//! the flow. The pivots stay positive: a state's pivot is at least its rate to its parent.
//! A small system (at most [`DENSE_STATES`]) on which GMRES stalls is solved by elimination
//! instead: a one-way drift's resamples are driven chains whose `π` spans tens of orders of
//! magnitude, where GMRES(12) stopped at an imbalance of 1e-2 and made the null `NaN`.
//!
//! Trees first: a state on a single pair balances through that pair alone, so the trees hanging
//! off each component's 2-core ([`Pendants`]) follow exactly from the state they hang from, and
//! GMRES runs on the core alone (llm-hard-1M: 9,429 of the 88,595 states on pairs).
//!
//! The entropy null solves 80 resamples that differ from the log only in the splits of the
//! verdict's tested pairs that it redraws (its "tested" pairs here; not the bridges,
//! [`super::quasi_symmetry::NullModel::redrawn_pairs`]). [`CoreSystem`] strips their trees once
//! (up to the tested pairs' states) in the unknowns `y = π / N`, whose balance has the counts for
//! coefficients and so does not change off the tested pairs; each resample then builds and solves only the core (about 10,000 states
//! on llm-hard-1M) and sums its `σ` over the core's pairs. A redraw keeps each pair's total but
//! can leave a side empty, which drops the pair. The core's [`Shape`] (Kruskal's forest over
//! the pairs sorted once by their totals, numbered breadth first from roots sorted once by
//! visits) is built once with every tested pair alive; a resample that drops only pairs off that
//! forest has the same forest and takes the shape without their entries, and one that drops a
//! forest pair builds its own, with no heap and no sort (llm-hard-1M: 4 of 80 resamples; a
//! reversible 2e6-row log: none; BENCHMARKS.md, "The entropy null's shapes").

use super::schnakenberg::{Adjacency, PairCounts};
use crate::graph::DisjointSets;
use ndarray::ArrayView1;
use rustc_hash::FxHashMap;
use std::borrow::Cow;
use std::cmp::Reverse;

/// The solver stops when the relative imbalance of `π̂` is below this (the entropy null's
/// resamples: [`NULL_TOL`])…
pub const STATIONARY_TOL: f64 = 1e-14;
/// The imbalance at which a resample of the entropy null stops, far below what moves its `σ`
/// against the null's spread. Against 1e-6 (BENCHMARKS.md, "The entropy null's stop"): products
/// −19 % on llm-hard-1M, −20 % on llm-like 1e6, −41 % on a reversible 2e6-row log; the null mean
/// moves by 1.5e-4 to 1.2e-3 of the null sd, the null sd by at most 1.3e-3 of itself and
/// `excess_z` by at most 3e-3, against the 40 resamples' own error of about 0.35 in `excess_z`
/// (1e-4 moved the null sd by 2.6e-3 of itself on llm-hard-1M). Every solve also goes on until
/// each state is positive ([`Chain::iterate`]).
pub const NULL_TOL: f64 = 1e-5;
/// …or when a restart cycle no longer lowers it by a tenth (rounding), or after this many
/// cycles.
const MAX_CYCLES: usize = 200;
/// Krylov vectors per restart cycle: orthogonalising against them costs more than the products
/// themselves, so shorter cycles win (llm-hard-1M flux stage: 14.4 s with 30, 9.3–9.9 s with 12,
/// 10.8–11.1 s with 6).
const RESTART: usize = 12;
/// The most states of a system that a stalled solve finishes by elimination
/// ([`Chain::eliminate`], O(states³): 0.4 GFlop here).
const DENSE_STATES: usize = 1024;
/// Where a cycle stops, as a share of the tolerance: the imbalance is a weighted 1-norm that the
/// cycle's 2-norm only stands in for, so it aims below.
const AIM: f64 = 0.5;

/// The estimated kernel restricted to the reciprocal pairs.
pub(super) struct Kernel {
    /// The pairs seen both ways.
    pub pairs: Vec<PairCounts>,
    pub adjacency: Adjacency,
    /// `T(u→v)` and `T(v→u)` of each pair.
    pub rates: Vec<(f64, f64)>,
}

impl Kernel {
    pub fn new(out_count: &[u64], pairs: &[PairCounts]) -> Self {
        let pairs: Vec<PairCounts> = pairs
            .iter()
            .copied()
            .filter(|p| p.2 > 0 && p.3 > 0)
            .collect();
        let rates = pairs
            .iter()
            .map(|&(u, v, a, b)| {
                (
                    a as f64 / out_count[u as usize] as f64,
                    b as f64 / out_count[v as usize] as f64,
                )
            })
            .collect();
        Self::with_rates(out_count.len(), pairs, rates)
    }

    /// The kernel in counts, `n(u→v)` in place of `T(u→v)`: its balance
    /// `y_f Σ_g n(f→g) = Σ_g y_g n(g→f)` is that of `T` in `y_f = π_f / N(f)`.
    fn of_counts(n: usize, pairs: Vec<PairCounts>) -> Self {
        let rates = pairs.iter().map(|p| (p.2 as f64, p.3 as f64)).collect();
        Self::with_rates(n, pairs, rates)
    }

    /// Each pair is turned to `(lo, hi)` order, its rates with it ([`Shape`] relies on it).
    fn with_rates(n: usize, pairs: Vec<PairCounts>, rates: Vec<(f64, f64)>) -> Self {
        let (pairs, rates): (Vec<PairCounts>, Vec<(f64, f64)>) = (pairs.into_iter().zip(rates))
            .map(|((u, v, a, b), (t_uv, t_vu))| match u < v {
                true => ((u, v, a, b), (t_uv, t_vu)),
                false => ((v, u, b, a), (t_vu, t_uv)),
            })
            .unzip();
        let ends: Vec<(u32, u32)> = pairs.iter().map(|p| (p.0, p.1)).collect();
        Kernel {
            adjacency: Adjacency::new(n, &ends),
            pairs,
            rates,
        }
    }

    /// `T(f→g)` and `T(g→f)` of `pair`, seen from its state `f`.
    fn rates_from(&self, f: u32, pair: u32) -> (f64, f64) {
        let (u, (t_uv, t_vu)) = (self.pairs[pair as usize].0, self.rates[pair as usize]);
        if u == f { (t_uv, t_vu) } else { (t_vu, t_uv) }
    }

    /// `Σ_f |inflow(f) − outflow(f)| / Σ_f outflow(f)` under `pi`; 0 without flow.
    pub fn imbalance(&self, pi: &[f64]) -> f64 {
        let (mut imbalance, mut flow) = (0.0, 0.0);
        for f in 0..pi.len() as u32 {
            let (mut inflow, mut outflow) = (0.0, 0.0);
            for &(g, pair) in self.adjacency.of(f) {
                let (out_rate, in_rate) = self.rates_from(f, pair);
                outflow += pi[f as usize] * out_rate;
                inflow += pi[g as usize] * in_rate;
            }
            imbalance += (inflow - outflow).abs();
            flow += outflow;
        }
        if flow > 0.0 { imbalance / flow } else { 0.0 }
    }
}

/// `π̂` and how the solver left it.
pub(super) struct Solution {
    pub pi: Vec<f64>,
    /// [`Kernel::imbalance`] of `pi`.
    pub residual: f64,
    /// Products with the balance matrix (each with one preconditioner solve).
    pub iterations: usize,
}

/// The kernel of `out_count` and `pairs` (every pair of states with a transition) and its `π̂`
/// on each component of its pairs, summing to the component's share of `out_count`; 0 on states
/// without a reciprocal pair. The [`CoreSystem`] with nothing tested, iterated from the visits
/// until the imbalance is at most `tolerance`; the kernel is built once the system is dropped.
pub(super) fn solve(out_count: &[u64], pairs: &[PairCounts], tolerance: f64) -> (Kernel, Solution) {
    // The visits are stationary already for a balanced log.
    let visits: Vec<f64> = out_count.iter().map(|&c| c as f64).collect();
    let system = CoreSystem::build(out_count, pairs, &[], &visits, true);
    let (pi, iterations) = system.stationary(tolerance);
    drop(system);
    let kernel = Kernel::new(out_count, pairs);
    let solution = Solution {
        residual: kernel.imbalance(&pi),
        pi,
        iterations,
    };
    (kernel, solution)
}

/// The balance of a log's kernel on its core, fixed once (docs/METHOD.md §5): the observed
/// `π̂` ([`solve`]: nothing tested) and the entropy null's resamples. A resample redraws the
/// tested pairs' splits and nothing else, and in the unknowns `y_f = π_f / N(f)` the balance
/// has the counts for coefficients ([`Kernel::of_counts`]), so only the tested pairs'
/// coefficients change.
/// The trees hanging off the core ([`Pendants`], pinned at the tested pairs' states) are
/// therefore stripped once: a tree state's `y` is a fixed multiple of the core state its tree
/// hangs from, and its visits, mass and flow are summed onto that state. Each solve iterates on
/// the core alone and measures the whole imbalance there ([`Scaling::balance`]: O(core), where
/// the whole graph's took 50 of the 70 ms of llm-hard-1M's observed solve); a resample's `σ` is
/// a sum over the core's pairs (a tree's pairs carry no flux).
pub(super) struct CoreSystem {
    /// The core's pairs `(u, v, n(u→v), n(v→u))` in local numbers (`u` the lower graph id), as
    /// observed: the pairs seen both ways and the tested pairs, one-way ones included (a
    /// resample may see them both ways).
    pairs: Vec<PairCounts>,
    /// The index in `pairs` of each tested pair, in the order of `tested` in [`Self::new`].
    tested: Vec<usize>,
    /// The graph's states; per local state, its graph id and observed out-count `N`.
    graph_states: usize,
    states: Vec<u32>,
    visits: Vec<u64>,
    /// Per tree state, its graph id, its tree's core state (local) and `(y_f / y_top) N(f)`:
    /// `π_f` in units of its core state's `y` (only for [`Self::stationary`]).
    tree_states: Vec<(u32, u32, f64)>,
    /// Per local state, over the trees hanging from it: `Σ N(f)`, `Σ (y_f / y_p) N(f)`, and the
    /// flow `Σ (y_f / y_p) Σ_g n(f→g)` with the state's own transitions into them.
    tree_visits: Vec<f64>,
    tree_mass: Vec<f64>,
    tree_flow: Vec<f64>,
    /// The starting `y` of each local state: the observed `π̂_f / N(f)`.
    start: Vec<f64>,
    /// The core's pairs as an adjacency, and what orders each resample's [`Shape`].
    adjacency: Adjacency,
    order: Ordering,
    /// The shape with every tested pair alive, and whether each pair is on its forest. A
    /// resample differs from it only by the tested pairs it draws one-way; while none of those
    /// is on this forest, Kruskal chooses the same forest (it skipped them), so the resample's
    /// shape is this one without their entries ([`Shape::without`]).
    base: Shape,
    on_base_forest: Vec<bool>,
}

impl CoreSystem {
    /// The system of the log with `out_count` and `pairs` (every pair of states with a
    /// transition, [`super::schnakenberg::pair_counts`]) whose `tested` pairs (`(f, g)`, `f < g`)
    /// are redrawn, starting from its `π̂` (`pi`).
    pub fn new(out_count: &[u64], pairs: &[PairCounts], tested: &[(u32, u32)], pi: &[f64]) -> Self {
        Self::build(out_count, pairs, tested, pi, false)
    }

    /// [`Self::new`], keeping each tree state's place ([`Self::tree_states`]) when
    /// `spread_trees`: [`Self::stationary`] needs them, the null's resamples do not.
    fn build(
        out_count: &[u64],
        pairs: &[PairCounts],
        tested: &[(u32, u32)],
        pi: &[f64],
        spread_trees: bool,
    ) -> Self {
        let n = out_count.len();
        let key = |u: u32, v: u32| (u.min(v), u.max(v));
        let tested_at: FxHashMap<(u32, u32), usize> = (tested.iter().enumerate())
            .map(|(i, &(f, g))| (key(f, g), i))
            .collect();
        let mut pinned = vec![false; n];
        for &(f, g) in tested {
            (pinned[f as usize], pinned[g as usize]) = (true, true);
        }
        let universe: Vec<PairCounts> = (pairs.iter().copied())
            .filter(|&(u, v, a, b)| (a > 0 && b > 0) || tested_at.contains_key(&key(u, v)))
            .collect();
        let kernel = Kernel::of_counts(n, universe);
        let pendants = Pendants::of(&kernel.adjacency, &pinned);
        let states: Vec<u32> = (0..n as u32)
            .filter(|&f| !pendants.stripped[f as usize] && !kernel.adjacency.of(f).is_empty())
            .collect();
        let mut local = vec![ROOT; n];
        states
            .iter()
            .enumerate()
            .for_each(|(i, &f)| local[f as usize] = i as u32);
        let mut system = CoreSystem {
            pairs: Vec::new(),
            tested: vec![usize::MAX; tested.len()],
            visits: states.iter().map(|&f| out_count[f as usize]).collect(),
            tree_states: Vec::new(),
            tree_visits: vec![0.0; states.len()],
            tree_mass: vec![0.0; states.len()],
            tree_flow: vec![0.0; states.len()],
            start: Vec::new(),
            adjacency: Adjacency::new(0, &[]),
            order: Ordering::new(&[], &[]),
            base: Shape::default(),
            on_base_forest: Vec::new(),
            graph_states: n,
            states,
        };
        system.sum_trees(&kernel, &pendants, &local, out_count, spread_trees);
        for &(u, v, a, b) in &kernel.pairs {
            if local[u as usize] == ROOT || local[v as usize] == ROOT {
                continue;
            }
            if let Some(&i) = tested_at.get(&key(u, v)) {
                system.tested[i] = system.pairs.len();
            }
            let (u, v, a, b) = if u < v { (u, v, a, b) } else { (v, u, b, a) };
            system
                .pairs
                .push((local[u as usize], local[v as usize], a, b));
        }
        // States on no observed pair (only on a one-way tested pair) start at the mean `y`.
        let mean = 1.0 / out_count.iter().sum::<u64>().max(1) as f64;
        system.start = (system.states.iter().map(|&f| f as usize))
            .map(|f| match pi[f] > 0.0 {
                true => pi[f] / out_count[f] as f64,
                false => mean,
            })
            .collect();
        let ends: Vec<(u32, u32)> = system.pairs.iter().map(|p| (p.0, p.1)).collect();
        system.adjacency = Adjacency::new(system.states.len(), &ends);
        system.order = Ordering::new(&system.pairs, &system.visits);
        let mut alive: Vec<bool> = (system.pairs.iter()).map(|p| p.2 > 0 && p.3 > 0).collect();
        for &i in system.tested.iter().filter(|&&i| i != usize::MAX) {
            alive[i] = true;
        }
        system.base = Shape::new(&system.adjacency, &alive, &system.order);
        system.on_base_forest = vec![false; system.pairs.len()];
        for &arc in system.base.parent_arc.iter().filter(|&&arc| arc != ROOT) {
            system.on_base_forest[arc as usize / 2] = true;
        }
        system
    }

    /// States kept on the core: those of the tested pairs and of the 2-core, and each tree's
    /// top state.
    pub fn core_states(&self) -> usize {
        self.visits.len()
    }

    /// The trees' visits, mass and flow on the core state each hangs from (`local` numbers).
    fn sum_trees(
        &mut self,
        kernel: &Kernel,
        pendants: &Pendants,
        local: &[u32],
        out: &[u64],
        spread_trees: bool,
    ) {
        let (mut ratio, mut top) = (vec![1.0; local.len()], local.to_vec());
        let counts = |f: u32, pair: u32| kernel.rates_from(f, pair);
        // Parents first: `y_f / y_top = y_p / y_top × n(p→f) / n(f→p)`.
        for &(f, p, pair) in pendants.order.iter().rev() {
            let (f, p, (f_to_p, p_to_f)) = (f as usize, p as usize, counts(f, pair));
            ratio[f] = ratio[p] * p_to_f / f_to_p;
            top[f] = top[p];
            let t = top[f] as usize;
            let leaving: f64 = (kernel.adjacency.of(f as u32).iter())
                .map(|&(_, e)| counts(f as u32, e).0)
                .sum();
            let from_top = if local[p] == ROOT { 0.0 } else { p_to_f };
            let mass = ratio[f] * out[f] as f64;
            if spread_trees {
                self.tree_states.push((f as u32, t as u32, mass));
            }
            self.tree_visits[t] += out[f] as f64;
            self.tree_mass[t] += mass;
            self.tree_flow[t] += ratio[f] * leaving + from_top;
        }
    }

    /// `σ` of the resample whose tested pairs' counts are `draws` (`(f, g, n(f→g), n(g→f))`
    /// in the order of `tested` in [`Self::new`]), solved to an imbalance of `tolerance`.
    pub fn production(&self, draws: &[(u32, u32, u64, u64)], tolerance: f64) -> NullSolution {
        let mut pairs = self.pairs.clone();
        let mut visits: Vec<f64> = self.visits.iter().map(|&v| v as f64).collect();
        for (&i, &(_, _, forward, backward)) in self.tested.iter().zip(draws) {
            let Some(pair) = pairs.get_mut(i) else {
                continue;
            };
            visits[pair.0 as usize] += forward as f64 - pair.2 as f64;
            visits[pair.1 as usize] += backward as f64 - pair.3 as f64;
            (pair.2, pair.3) = (forward, backward);
        }
        let core = self.solve_core(&pairs, &visits, tolerance);
        let on_pairs: Vec<&PairCounts> = pairs.iter().filter(|p| seen(p)).collect();
        // Without a cycle detailed balance holds exactly and every flux vanishes: the sum would
        // be rounding (±1e-33 on a single pair), which would give the null a spread.
        let shape = &core.shape;
        let forest = on_pairs.len() + shape.roots.len() == shape.states.len();
        let y = &core.y;
        let sigma = (on_pairs.iter())
            .filter(|_| !forest)
            .map(|&&(u, v, a, b)| {
                let (forward, backward) = (y[u as usize] * a as f64, y[v as usize] * b as f64);
                (forward - backward) * (forward / backward).ln()
            })
            .sum();
        NullSolution {
            sigma,
            residual: if core.flow > 0.0 {
                core.residual / core.flow
            } else {
                0.0
            },
            flow: core.flow,
            products: core.products,
            new_shape: core.new_forest,
        }
    }

    /// `π` of every graph state (0 off the pairs) and the products it took, for the observed
    /// counts, solved to an imbalance of `tolerance`.
    fn stationary(&self, tolerance: f64) -> (Vec<f64>, usize) {
        let visits: Vec<f64> = self.visits.iter().map(|&v| v as f64).collect();
        let core = self.solve_core(&self.pairs, &visits, tolerance);
        let mut pi = vec![0.0; self.graph_states];
        for ((&f, &y), &visits) in self.states.iter().zip(&core.y).zip(&self.visits) {
            pi[f as usize] = y * visits as f64;
        }
        for &(f, top, mass) in &self.tree_states {
            pi[f as usize] = core.y[top as usize] * mass;
        }
        (pi, core.products)
    }

    /// The core's solution for the counts `pairs` and `visits` (local numbers, as in
    /// [`Self::pairs`]): each local state's `y` (trees' tops off `shape`, components of their
    /// own, included), the shape it was solved on, and the imbalance and flow it left.
    fn solve_core(&self, pairs: &[PairCounts], visits: &[f64], tolerance: f64) -> Core<'_> {
        // The kernel in counts on the pairs seen both ways; the others' arcs have rate 0.
        let rates: Vec<f64> = (pairs.iter())
            .flat_map(|p| match seen(p) {
                true => [p.2 as f64, p.3 as f64],
                false => [0.0; 2],
            })
            .collect();
        // Roots: the most visited by the observed counts (any state of a component will do).
        let alive: Vec<bool> = pairs.iter().map(seen).collect();
        let mut one_way = (self.tested.iter()).filter(|&&i| i != usize::MAX && !alive[i]);
        let new_forest = one_way.clone().any(|&i| self.on_base_forest[i]);
        let shape = match (one_way.next(), new_forest) {
            (None, _) => Cow::Borrowed(&self.base),
            (Some(_), false) => Cow::Owned(self.base.without(&alive)),
            (Some(_), true) => Cow::Owned(Shape::new(&self.adjacency, &alive, &self.order)),
        };
        let chain = Chain::new(&shape, &rates);
        let scaling = self.scaling(&shape, visits);
        let imbalance = |x: &[f64]| {
            let (imbalance, flow) = scaling.balance(&chain, x);
            if flow > 0.0 { imbalance / flow } else { 0.0 }
        };
        let (x, products) = chain.iterate(&self.start, tolerance, imbalance);
        let scale = scaling.scales(&x, &shape.component);
        let (residual, flow) = scaling.balance(&chain, &x);
        let mut y = vec![0.0; visits.len()];
        for ((&f, &c), &x) in shape.states.iter().zip(&shape.component).zip(&x) {
            y[f as usize] = x * scale[c as usize];
        }
        for &(f, lone_y) in &scaling.lone {
            y[f] = lone_y;
        }
        Core {
            y,
            shape,
            new_forest,
            residual,
            flow,
            products,
        }
    }

    /// What turns the core's `x` on `shape` into `π` units for a resample with `visits`: each
    /// component sums to its share of the visits, trees included; the trees whose core state is
    /// on no pair of `shape` are components of their own, whose flow is fixed.
    fn scaling(&self, shape: &Shape, visits: &[f64]) -> Scaling {
        let components = shape.roots.len();
        let mut weight = vec![0.0; components];
        let mut on_shape = vec![false; visits.len()];
        for (&f, &c) in shape.states.iter().zip(&shape.component) {
            on_shape[f as usize] = true;
            weight[c as usize] += visits[f as usize] + self.tree_visits[f as usize];
        }
        let lone: Vec<usize> = (0..visits.len())
            .filter(|&f| !on_shape[f] && self.tree_visits[f] > 0.0)
            .collect();
        let lone_weight = |f: usize| visits[f] + self.tree_visits[f];
        let total = weight.iter().sum::<f64>() + lone.iter().map(|&f| lone_weight(f)).sum::<f64>();
        let lone: Vec<(usize, f64)> = (lone.into_iter())
            .map(|f| (f, lone_weight(f) / total / (visits[f] + self.tree_mass[f])))
            .collect();
        let lone_flow = lone.iter().map(|&(f, y)| y * self.tree_flow[f]).sum();
        let of_states = |value: &dyn Fn(usize) -> f64| -> Vec<f64> {
            shape.states.iter().map(|&f| value(f as usize)).collect()
        };
        Scaling {
            share: weight.iter().map(|w| w / total).collect(),
            mass: of_states(&|f| visits[f] + self.tree_mass[f]),
            tree_flow: of_states(&|f| self.tree_flow[f]),
            lone,
            lone_flow,
        }
    }
}

/// Whether a pair is seen both ways: on the kernel.
fn seen(&(_, _, a, b): &PairCounts) -> bool {
    a > 0 && b > 0
}

/// [`CoreSystem::solve_core`]'s solution.
struct Core<'s> {
    y: Vec<f64>,
    shape: Cow<'s, Shape>,
    /// Whether `shape`'s forest was built anew (a forest pair drawn one-way).
    new_forest: bool,
    residual: f64,
    flow: f64,
    products: usize,
}

/// A resample's `σ` and how its solve ended.
pub(super) struct NullSolution {
    pub sigma: f64,
    /// [`Kernel::imbalance`] of its `π`, and the flow it is relative to (`Σ_f outflow(f)`;
    /// the tests check it against a fresh solve).
    pub residual: f64,
    #[cfg_attr(not(test), allow(dead_code))]
    pub flow: f64,
    /// Products with the core's balance matrix.
    pub products: usize,
    /// Whether the resample's forest differed from the core's ([`CoreSystem::base`]) and was
    /// built anew.
    pub new_shape: bool,
}

/// Per resample, what turns the core's `x` into `π` units ([`CoreSystem::scaling`]).
struct Scaling {
    /// Per component, its share of the visits.
    share: Vec<f64>,
    /// Per local state of the shape, its `π` per unit of `x` up to the component's scale
    /// (`N + Σ (y_f / y_p) N(f)` over its trees), and its trees' flow per unit of `x`.
    mass: Vec<f64>,
    tree_flow: Vec<f64>,
    /// The trees that are components of their own: their core state's `y` (local numbers),
    /// and their flow.
    lone: Vec<(usize, f64)>,
    lone_flow: f64,
}

impl Scaling {
    /// Per component, the factor from its `x` to `π`.
    fn scales(&self, x: &[f64], component: &[u32]) -> Vec<f64> {
        let mut mass = vec![0.0; self.share.len()];
        for ((&c, &x), &m) in component.iter().zip(x).zip(&self.mass) {
            mass[c as usize] += x * m;
        }
        (self.share.iter().zip(&mass)).map(|(s, m)| s / m).collect()
    }

    /// `Σ_f |inflow(f) − outflow(f)|` and `Σ_f outflow(f)` ([`Kernel::imbalance`]) of the
    /// whole `π` that the core's `x` stands for (the trees balance exactly, up to rounding).
    fn balance(&self, chain: &Chain, x: &[f64]) -> (f64, f64) {
        let component = &chain.shape.component;
        let scale = self.scales(x, component);
        let (mut imbalance, mut flow) = (0.0, self.lone_flow);
        for (i, &x_i) in x.iter().enumerate() {
            let s = scale[component[i] as usize];
            imbalance += s * (chain.inflow(i, x) - chain.out_rate[i] * x_i).abs();
            flow += s * x_i * (chain.out_rate[i] + self.tree_flow[i]);
        }
        (imbalance, flow)
    }
}

/// The trees hanging off each component's core (its 2-core), stripped leaf by leaf. A leaf `f`
/// on a single pair with `p` balances only through that pair, `π_f T(f→p) = π_p T(p→f)`, and
/// its inflow and outflow at `p` cancel: the rest solves the balance of the kernel without `f`,
/// and `f` follows from `p` exactly. On agent logs most states are on such trees (llm-hard-1M:
/// 78,899 of the 88,595 states on pairs), so the iteration runs on a tenth of the states.
pub(super) struct Pendants {
    /// Stripped states in the order they were stripped (leaves first), with the state `p` and
    /// the pair they hung from.
    order: Vec<(u32, u32, u32)>,
    pub stripped: Vec<bool>,
}

impl Pendants {
    /// The trees of the pairs of `adjacency`, stripped up to the `pinned` states (never
    /// stripped).
    pub fn of(adjacency: &Adjacency, pinned: &[bool]) -> Self {
        let n = pinned.len();
        let mut degree: Vec<usize> = (0..n as u32).map(|f| adjacency.of(f).len()).collect();
        let mut stripped = vec![false; n];
        let mut leaves: Vec<u32> = (0..n as u32)
            .filter(|&f| degree[f as usize] == 1 && !pinned[f as usize])
            .collect();
        let mut order = Vec::new();
        while let Some(f) = leaves.pop() {
            // A tree component's last state is left with degree 0: it stays, as the tree's core.
            if degree[f as usize] != 1 {
                continue;
            }
            let kept = adjacency.of(f).iter();
            let Some(&(p, pair)) = kept.clone().find(|&&(g, _)| !stripped[g as usize]) else {
                continue;
            };
            stripped[f as usize] = true;
            degree[f as usize] = 0;
            degree[p as usize] -= 1;
            if degree[p as usize] == 1 && !pinned[p as usize] {
                leaves.push(p);
            }
            order.push((f, p, pair));
        }
        Pendants { order, stripped }
    }
}

/// The balance system's structure over the states on the pairs of a kernel, numbered breadth
/// first along the forest of its preconditioner from each component's root (parents before
/// children). It holds no rates: [`Chain`] fills it with a kernel's. The entropy null builds one
/// per resample (the pairs it sees both ways differ) from the orders [`Ordering`] keeps.
///
/// A pair's two arcs are numbered `2 × pair` (`u → v`) and `2 × pair + 1` (`v → u`), and the
/// rates of a kernel are given per arc; `arc ^ 1` is the reverse arc.
#[derive(Clone, Default, Debug, PartialEq)]
struct Shape {
    /// The state of each local number.
    states: Vec<u32>,
    /// Per local state, its neighbours `g` (`neighbour[ptr[f]..ptr[f + 1]]`, local numbers) and
    /// the arc `g → f` of each.
    ptr: Vec<usize>,
    neighbour: Vec<u32>,
    arc: Vec<u32>,
    component: Vec<u32>,
    /// The root of each component.
    roots: Vec<u32>,
    /// The forest: each state's parent ([`ROOT`] for roots) and the arc from it.
    parent: Vec<u32>,
    parent_arc: Vec<u32>,
}

/// The parent of a component's root.
const ROOT: u32 = u32::MAX;

/// The arc `g → f` of `pair` into its state `f`, the pair's states in `(lo, hi)` order (as every
/// [`Shape`]'s are): `lo → hi` is `2 × pair`, `hi → lo` is `2 × pair + 1`, so the pair's own
/// entry need not be read.
fn arc_into(pair: u32, f: u32, g: u32) -> u32 {
    2 * pair + u32::from(f < g)
}

/// What a [`Shape`] is built from that does not change with a pair's split: the pairs `(pair,
/// lo, hi)` by decreasing weight (the transitions both ways; the index breaks ties), and the
/// states by decreasing visits.
struct Ordering {
    by_weight: Vec<(u32, u32, u32)>,
    by_visits: Vec<u32>,
}

impl Ordering {
    fn new(pairs: &[PairCounts], visits: &[u64]) -> Self {
        let mut by_weight: Vec<u32> = (0..pairs.len() as u32).collect();
        by_weight.sort_by_key(|&e| (Reverse(pairs[e as usize].2 + pairs[e as usize].3), e));
        let by_weight = (by_weight.into_iter())
            .map(|e| (e, pairs[e as usize].0, pairs[e as usize].1))
            .collect();
        let mut by_visits: Vec<u32> = (0..visits.len() as u32).collect();
        by_visits.sort_by_key(|&f| (Reverse(visits[f as usize]), f));
        Ordering {
            by_weight,
            by_visits,
        }
    }
}

impl Shape {
    /// The shape of the `alive` ones of the pairs of `adjacency` (in `(lo, hi)` order, as
    /// [`Kernel`]s and [`CoreSystem`]s hold them): a maximum-weight spanning forest, each
    /// component rooted at its most visited state.
    fn new(adjacency: &Adjacency, alive: &[bool], order: &Ordering) -> Self {
        let tree = Self::forest(adjacency.states(), alive, &order.by_weight);
        let mut shape = Shape {
            states: Vec::new(),
            ptr: vec![0],
            neighbour: Vec::new(),
            arc: Vec::new(),
            component: Vec::new(),
            roots: Vec::new(),
            parent: Vec::new(),
            parent_arc: Vec::new(),
        };
        let mut local = vec![ROOT; adjacency.states()];
        let on_pair = |f: u32| adjacency.of(f).iter().any(|&(_, e)| alive[e as usize]);
        for &root in &order.by_visits {
            if local[root as usize] != ROOT || !on_pair(root) {
                continue;
            }
            let c = shape.roots.len() as u32;
            let mut next = shape.states.len();
            shape.roots.push(next as u32);
            shape.reach(root, c, (ROOT, ROOT), &mut local);
            while let Some(&f) = shape.states.get(next) {
                for &(g, e) in adjacency.of(f) {
                    if tree[e as usize] && local[g as usize] == ROOT {
                        let arc = arc_into(e, g, f);
                        shape.reach(g, c, (next as u32, arc), &mut local);
                    }
                }
                next += 1;
            }
        }
        for &f in &shape.states {
            for &(g, e) in adjacency.of(f).iter().filter(|&&(_, e)| alive[e as usize]) {
                shape.neighbour.push(local[g as usize]);
                shape.arc.push(arc_into(e, f, g));
            }
            shape.ptr.push(shape.neighbour.len());
        }
        shape
    }

    /// This shape without the entries of the pairs not `alive`, none of them on its forest: what
    /// [`Shape::new`] builds for those pairs, as it lists each state's entries in the same order.
    fn without(&self, alive: &[bool]) -> Shape {
        let mut shape = Shape {
            states: self.states.clone(),
            ptr: Vec::with_capacity(self.ptr.len()),
            neighbour: Vec::with_capacity(self.neighbour.len()),
            arc: Vec::with_capacity(self.arc.len()),
            component: self.component.clone(),
            roots: self.roots.clone(),
            parent: self.parent.clone(),
            parent_arc: self.parent_arc.clone(),
        };
        shape.ptr.push(0);
        for f in 0..self.states.len() {
            let entries = self.ptr[f]..self.ptr[f + 1];
            for (&g, &arc) in self.neighbour[entries.clone()]
                .iter()
                .zip(&self.arc[entries])
            {
                if alive[arc as usize / 2] {
                    shape.neighbour.push(g);
                    shape.arc.push(arc);
                }
            }
            shape.ptr.push(shape.neighbour.len());
        }
        shape
    }

    /// Numbers `f`, of component `c`, below its `parent` and the arc from it.
    fn reach(&mut self, f: u32, c: u32, (parent, arc): (u32, u32), local: &mut [u32]) {
        local[f as usize] = self.states.len() as u32;
        self.states.push(f);
        self.component.push(c);
        self.parent.push(parent);
        self.parent_arc.push(arc);
    }

    /// Kruskal's maximum-weight spanning forest of the `alive` pairs on `n` states: whether
    /// each pair is on it.
    fn forest(n: usize, alive: &[bool], by_weight: &[(u32, u32, u32)]) -> Vec<bool> {
        let mut sets = DisjointSets::new(n);
        let mut tree = vec![false; alive.len()];
        for &(e, u, v) in by_weight.iter().filter(|&&(e, _, _)| alive[e as usize]) {
            tree[e as usize] = sets.union(u, v);
        }
        tree
    }
}

/// The balance system `A x = b` of a kernel on a [`Shape`]: a root's row is `x_f = b_f`, any
/// other `r_f x_f − Σ_g T(g→f) x_g = 0`; with its forest preconditioner.
struct Chain<'s> {
    shape: &'s Shape,
    /// Per entry of the shape, `T(g→f)`; per state, `r_f = Σ_g T(f→g)`.
    inflow: Vec<f64>,
    out_rate: Vec<f64>,
    /// The forest: `T(p→f)` of each state from its parent.
    from_parent: Vec<f64>,
    /// The forest's factor ([`Chain::factor`]), what [`Chain::precondition`] reads: the parent
    /// a state's elimination updates (`ROOT`: none, the parent is a root or there is no
    /// parent), the multiplier `T(f→p) / pivot_f`, and `1 / pivot_f`.
    eliminates_into: Vec<u32>,
    multiplier: Vec<f64>,
    inverse_pivot: Vec<f64>,
}

impl<'s> Chain<'s> {
    /// The system of the kernel with `rates` (per arc) on `shape`.
    fn new(shape: &'s Shape, rates: &[f64]) -> Self {
        let s = shape;
        let out_rate = (0..s.states.len())
            .map(|f| {
                let arcs = &s.arc[s.ptr[f]..s.ptr[f + 1]];
                arcs.iter().map(|&a| rates[a as usize ^ 1]).sum()
            })
            .collect();
        let rate = |a: u32, reverse: u32| {
            if a == ROOT {
                0.0
            } else {
                rates[(a ^ reverse) as usize]
            }
        };
        let to_parent: Vec<f64> = s.parent_arc.iter().map(|&a| rate(a, 1)).collect();
        let mut chain = Chain {
            shape,
            inflow: s.arc.iter().map(|&a| rates[a as usize]).collect(),
            out_rate,
            from_parent: s.parent_arc.iter().map(|&a| rate(a, 0)).collect(),
            eliminates_into: Vec::new(),
            multiplier: Vec::new(),
            inverse_pivot: Vec::new(),
        };
        chain.factor(&to_parent);
        chain
    }

    /// Eliminates leaves first: a child `f` of a non-root `p` lowers `p`'s pivot by
    /// `T(f→p) T(p→f) / pivot_f` (`to_parent`: `T(f→p)` of each state).
    fn factor(&mut self, to_parent: &[f64]) {
        let parent = &self.shape.parent;
        let mut pivot: Vec<f64> = (0..parent.len())
            .map(|f| {
                if parent[f] == ROOT {
                    1.0
                } else {
                    self.out_rate[f]
                }
            })
            .collect();
        self.eliminates_into = (parent.iter())
            .map(|&p| match p != ROOT && parent[p as usize] != ROOT {
                true => p,
                false => ROOT,
            })
            .collect();
        for f in (0..parent.len()).rev() {
            let p = self.eliminates_into[f];
            if p != ROOT {
                pivot[p as usize] -= to_parent[f] * self.from_parent[f] / pivot[f];
            }
        }
        self.multiplier = (to_parent.iter().zip(&pivot))
            .map(|(t, pivot)| t / pivot)
            .collect();
        self.inverse_pivot = pivot.iter().map(|pivot| 1.0 / pivot).collect();
    }

    /// `Σ_g T(g→f) x_g`, in four partial sums over the entries in groups of four, then the
    /// rest: one chain of dependent additions bounded the products on a hub's long row.
    fn inflow(&self, f: usize, x: &[f64]) -> f64 {
        let (from, to) = (self.shape.ptr[f], self.shape.ptr[f + 1]);
        let (neighbours, rates) = (
            self.shape.neighbour[from..to].chunks_exact(4),
            self.inflow[from..to].chunks_exact(4),
        );
        let rest: f64 = (neighbours.remainder().iter())
            .zip(rates.remainder())
            .map(|(&g, &t)| x[g as usize] * t)
            .sum();
        let mut lanes = [0.0; 4];
        for (g, t) in neighbours.zip(rates) {
            for k in 0..4 {
                lanes[k] += x[g[k] as usize] * t[k];
            }
        }
        (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + rest
    }

    /// `A x`.
    fn apply(&self, x: &[f64], y: &mut [f64]) {
        for (f, y_f) in y.iter_mut().enumerate() {
            *y_f = self.out_rate[f] * x[f] - self.inflow(f, x);
        }
        for &root in &self.shape.roots {
            y[root as usize] = x[root as usize];
        }
    }

    /// `z = M⁻¹ y` for the forest system `M`, in place.
    fn precondition(&self, z: &mut [f64]) {
        for f in (0..z.len()).rev() {
            let p = self.eliminates_into[f];
            if p != ROOT {
                z[p as usize] += self.multiplier[f] * z[f];
            }
        }
        let parent = &self.shape.parent;
        for f in 0..z.len() {
            let p = parent[f];
            let from_parent = if p == ROOT {
                0.0
            } else {
                self.from_parent[f] * z[p as usize]
            };
            z[f] = (z[f] + from_parent) * self.inverse_pivot[f];
        }
    }

    /// GMRES from `start` (each component scaled to its root's value, pinned to 1) until
    /// `residual` of the iterate is at most `tolerance` and every state's value is positive, or
    /// a cycle no longer lowers `residual` by a tenth; the solution and the products it took.
    /// Positive, because the solution is (the system is an M-matrix) and `σ` takes logarithms of
    /// it: the imbalance is relative to the whole flow, so at the null's [`NULL_TOL`] a state of
    /// tiny `π` can still be negative (1e8-row llm-like log: in some resamples after 13
    /// products, which made the null `NaN`); what is left so is [`Chain::lift`]ed.
    ///
    /// Restarted GMRES can stall on a strongly driven chain whose `π` spans many orders of
    /// magnitude (a one-way drift's resamples: GMRES(12) stopped at an imbalance of 1e-2; even a
    /// cycle as long as the system left 1e-2 on some): a system of at most [`DENSE_STATES`]
    /// that stalls above `tolerance`, or with a state not positive, is [`Chain::eliminate`]d.
    fn iterate(
        &self,
        start: &[f64],
        tolerance: f64,
        residual: impl Fn(&[f64]) -> f64,
    ) -> (Vec<f64>, usize) {
        let s = self.shape;
        let guess = |i: usize| start[s.states[i] as usize];
        let root = |i: usize| s.roots[s.component[i] as usize] as usize;
        let mut x: Vec<f64> = (0..s.states.len())
            .map(|i| guess(i) / guess(root(i)))
            .collect();
        let mut b = vec![0.0; x.len()];
        s.roots.iter().for_each(|&root| b[root as usize] = 1.0);
        let mut krylov = Krylov::new(x.len());
        let (mut r, mut products) = (residual(&x), 0);
        for _ in 0..MAX_CYCLES {
            if r <= tolerance && x.iter().all(|&x| x > 0.0) {
                break;
            }
            // A cycle's residual norm falls as the imbalance does: it stops where the
            // imbalance should be [`AIM`] of the tolerance, not at the cycle's end.
            let aim = if r > tolerance {
                AIM * tolerance / r
            } else {
                0.0
            };
            products += self.gmres_cycle(&b, &mut x, aim, &mut krylov);
            let previous = r;
            r = residual(&x);
            if r > 0.9 * previous {
                break;
            }
        }
        let positive = x.iter().all(|&x| x > 0.0);
        if (r > tolerance || !positive) && x.len() <= DENSE_STATES {
            self.eliminate(&mut x);
        }
        self.lift(&mut x);
        (x, products)
    }

    /// The solution by Grassmann, Taksar and Heyman's elimination (Stewart, Introduction to the
    /// Numerical Solution of Markov Chains, §2.7), component by component: it only adds
    /// positive terms, so every state's value is exact to rounding however small it is.
    fn eliminate(&self, x: &mut [f64]) {
        let s = self.shape;
        for (c, &first) in s.roots.iter().enumerate() {
            let first = first as usize;
            let m = s.roots.get(c + 1).map_or(s.states.len(), |&r| r as usize) - first;
            // q[f m + g] = T(f→g) within the component (numbered contiguously from its root).
            let mut q = vec![0.0; m * m];
            for f in 0..m {
                for k in s.ptr[first + f]..s.ptr[first + f + 1] {
                    q[(s.neighbour[k] as usize - first) * m + f] = self.inflow[k];
                }
            }
            // Censor the chain to states 0..k, from the last state down.
            let mut leaving = vec![0.0; m];
            for k in (1..m).rev() {
                leaving[k] = q[k * m..k * m + k].iter().sum();
                for i in 0..k {
                    let through = q[i * m + k] / leaving[k];
                    if through > 0.0 {
                        for j in 0..k {
                            q[i * m + j] += through * q[k * m + j];
                        }
                    }
                }
            }
            x[first] = 1.0;
            for k in 1..m {
                let into: f64 = (0..k).map(|i| x[first + i] * q[i * m + k]).sum();
                x[first + k] = into / leaving[k];
            }
        }
    }

    /// Sets each non-root state left at or below zero from its inflow,
    /// `x_f = Σ_g T(g→f) x_g / r_f`, a sum of positive terms once a neighbour is positive:
    /// those states carry a share of the flow below the solver's resolution, and this balances
    /// each of them against its neighbours.
    fn lift(&self, x: &mut [f64]) {
        let low: Vec<usize> = (0..x.len())
            .filter(|&f| x[f] <= 0.0 && self.shape.parent[f] != ROOT)
            .collect();
        low.iter().for_each(|&f| x[f] = 0.0);
        // Each sweep lifts at least the low states next to a positive one.
        for _ in 0..low.len() {
            for &f in &low {
                x[f] = self.inflow(f, x) / self.out_rate[f];
            }
            if low.iter().all(|&f| x[f] > 0.0) {
                break;
            }
        }
    }

    /// One restart cycle of right-preconditioned GMRES (Saad, Iterative Methods for Sparse
    /// Linear Systems, §9.3.2) from `x`, stopping once the residual norm is `aim` of its start;
    /// returns the products with `A` it took.
    fn gmres_cycle(&self, b: &[f64], x: &mut [f64], aim: f64, k: &mut Krylov) -> usize {
        // ndarray's dot sums in independent lanes; a plain `sum` waits on every addition.
        let dot = |a: &[f64], b: &[f64]| ArrayView1::from(a).dot(&ArrayView1::from(b));
        let basis = &mut k.basis;
        self.apply(x, &mut basis[0]);
        basis[0].iter_mut().zip(b).for_each(|(r, b)| *r = b - *r);
        let beta = dot(&basis[0], &basis[0]).sqrt();
        if beta == 0.0 {
            return 1;
        }
        basis[0].iter_mut().for_each(|r| *r /= beta);
        let floor = beta * aim.max(1e-15);
        // Hessenberg columns, already rotated; the rotations; the rotated right-hand side.
        let mut h: Vec<Vec<f64>> = Vec::new();
        let mut rotations: Vec<(f64, f64)> = Vec::new();
        let mut g = vec![beta];
        let (z, w) = (&mut k.z, &mut k.w);
        for j in 0..RESTART {
            z.copy_from_slice(&basis[j]);
            self.precondition(z);
            self.apply(z, w);
            let mut column = Vec::with_capacity(j + 2);
            for v in &basis[..=j] {
                let c = dot(w, v);
                w.iter_mut().zip(v).for_each(|(w, v)| *w -= c * v);
                column.push(c);
            }
            let norm = dot(w, w).sqrt();
            column.push(norm);
            for (i, &(c, s)) in rotations.iter().enumerate() {
                let (a, b) = (column[i], column[i + 1]);
                column[i] = c * a + s * b;
                column[i + 1] = c * b - s * a;
            }
            let (a, b) = (column[j], column[j + 1]);
            let radius = a.hypot(b);
            let (c, s) = if radius > 0.0 {
                (a / radius, b / radius)
            } else {
                (1.0, 0.0)
            };
            column[j] = radius;
            column[j + 1] = 0.0;
            rotations.push((c, s));
            g.push(-s * g[j]);
            g[j] *= c;
            h.push(column);
            if g[j + 1].abs() <= floor || norm == 0.0 {
                break;
            }
            if basis.len() == j + 1 {
                basis.push(vec![0.0; x.len()]);
            }
            basis[j + 1]
                .iter_mut()
                .zip(w.iter())
                .for_each(|(v, w)| *v = w / norm);
        }
        // y = H⁻¹ g (upper triangular), then x += M⁻¹ (V y).
        let n = h.len();
        let mut y = vec![0.0; n];
        for i in (0..n).rev() {
            let tail: f64 = (i + 1..n).map(|l| h[l][i] * y[l]).sum();
            y[i] = (g[i] - tail) / h[i][i];
        }
        z.iter_mut().for_each(|z| *z = 0.0);
        for (v, y) in basis.iter().zip(&y) {
            z.iter_mut().zip(v).for_each(|(u, v)| *u += y * v);
        }
        self.precondition(z);
        x.iter_mut().zip(z.iter()).for_each(|(x, u)| *x += u);
        n + 1
    }
}

/// GMRES's vectors, kept from one restart cycle to the next: the Krylov basis (grown as a cycle
/// needs it) and two of scratch.
struct Krylov {
    basis: Vec<Vec<f64>>,
    z: Vec<f64>,
    w: Vec<f64>,
}

impl Krylov {
    fn new(n: usize) -> Self {
        Krylov {
            basis: vec![vec![0.0; n]],
            z: vec![0.0; n],
            w: vec![0.0; n],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts `(u, v, n(u→v), n(v→u))` with `out_count` = the transitions out of each state.
    fn chain(n: usize, pairs: &[PairCounts]) -> (Vec<u64>, Kernel) {
        let mut out_count = vec![0u64; n];
        for &(u, v, a, b) in pairs {
            out_count[u as usize] += a;
            out_count[v as usize] += b;
        }
        let kernel = Kernel::new(&out_count, pairs);
        (out_count, kernel)
    }

    /// The rates of `kernel` per arc (`2 × pair`: `u → v`, `2 × pair + 1`: `v → u`; [`Shape`]).
    fn arc_rates(kernel: &Kernel) -> Vec<f64> {
        kernel.rates.iter().flat_map(|&(a, b)| [a, b]).collect()
    }

    /// The shape of all of `kernel`'s pairs.
    fn shape_of(kernel: &Kernel, out_count: &[u64]) -> Shape {
        let every = vec![true; kernel.pairs.len()];
        let order = Ordering::new(&kernel.pairs, out_count);
        Shape::new(&kernel.adjacency, &every, &order)
    }

    /// A path of 40 states driven 60:1 one way, with a chord: `π` spans about 50 orders of
    /// magnitude. Elimination leaves every state positive and balanced to rounding against its
    /// own flow (not only the whole flow); GMRES from flat visits ends with the same
    /// distribution where the flow is (stalled, by elimination; or by its own iterations).
    #[test]
    fn elimination_resolves_a_chain_whose_stationary_values_span_orders_of_magnitude() {
        let mut pairs: Vec<PairCounts> = (0..39u32).map(|i| (i, i + 1, 60, 1)).collect();
        pairs.push((10, 20, 3, 2));
        let (out_count, kernel) = chain(40, &pairs);
        let shape = shape_of(&kernel, &out_count);
        let chain = Chain::new(&shape, &arc_rates(&kernel));
        let mut x = vec![0.0; 40];
        chain.eliminate(&mut x);
        let (smallest, largest) = (
            x.iter().copied().fold(f64::MAX, f64::min),
            x.iter().copied().fold(0.0, f64::max),
        );
        assert!(smallest > 0.0 && largest / smallest > 1e40, "{x:?}");
        for f in 0..40 {
            let inflow = chain.inflow(f, &x);
            let outflow = chain.out_rate[f] * x[f];
            assert!(
                (inflow - outflow).abs() <= 1e-13 * outflow,
                "state {f}: {inflow} vs {outflow}"
            );
        }
        // GMRES on the same shape, from flat visits: its largest states agree with elimination.
        let imbalance = |y: &[f64]| {
            let row = |f: usize| (chain.inflow(f, y) - chain.out_rate[f] * y[f]).abs();
            let flow: f64 = (0..40).map(|f| chain.out_rate[f] * y[f]).sum();
            match flow > 0.0 {
                true => (0..40).map(row).sum::<f64>() / flow,
                false => f64::INFINITY,
            }
        };
        // Compared as distributions: the pinned root carries about 1e-33 of the flow, so the
        // scale of the iterate against it is not determined to any useful precision.
        let (gmres, _) = chain.iterate(&vec![1.0; 40], STATIONARY_TOL, imbalance);
        let (x_sum, gmres_sum) = (x.iter().sum::<f64>(), gmres.iter().sum::<f64>());
        for f in (0..40).filter(|&f| x[f] > 1e-6 * largest) {
            let (a, b) = (gmres[f] / gmres_sum, x[f] / x_sum);
            assert!((a - b).abs() <= 1e-9 * b, "state {f}: {a} vs {b}");
        }
    }

    /// A state left at or below zero is balanced against its neighbours.
    #[test]
    fn lifting_balances_a_non_positive_state_against_its_neighbours() {
        let pairs: Vec<PairCounts> = vec![(0, 1, 4, 2), (1, 2, 3, 5), (0, 2, 1, 6)];
        let (out_count, kernel) = chain(3, &pairs);
        let shape = shape_of(&kernel, &out_count);
        let chain = Chain::new(&shape, &arc_rates(&kernel));
        let leaf = (0..3).find(|&f| shape.parent[f] != ROOT).unwrap();
        let mut x = vec![2.0; 3];
        x[leaf] = -1.0;
        chain.lift(&mut x);
        let mut zeroed = vec![2.0; 3];
        zeroed[leaf] = 0.0;
        assert_eq!(x[leaf], chain.inflow(leaf, &zeroed) / chain.out_rate[leaf]);
        assert!(x[leaf] > 0.0);
    }

    /// `σ = Σ J A` and the flow `Σ_f outflow(f)` of the kernel of `out_count` and `pairs`,
    /// solved afresh on the whole graph.
    fn fresh_production(out_count: &[u64], pairs: &[PairCounts]) -> (f64, f64) {
        let (kernel, s) = solve(out_count, pairs, STATIONARY_TOL);
        assert!(s.residual <= STATIONARY_TOL, "{}", s.residual);
        (kernel.pairs.iter().zip(&kernel.rates))
            .map(|(&(u, v, _, _), &(t_uv, t_vu))| {
                let (forward, backward) = (s.pi[u as usize] * t_uv, s.pi[v as usize] * t_vu);
                (
                    (forward - backward) * (forward / backward).ln(),
                    forward + backward,
                )
            })
            .fold((0.0, 0.0), |(s, f), (ds, df)| (s + ds, f + df))
    }

    /// The counts of `pairs` with the tested pairs' counts `draws` (`(f, g, n(f→g), n(g→f))`,
    /// `f < g`), and the out-counts that follow.
    fn redrawn(
        out_count: &[u64],
        pairs: &[PairCounts],
        draws: &[(u32, u32, u64, u64)],
    ) -> (Vec<u64>, Vec<PairCounts>) {
        let mut out_count = out_count.to_vec();
        let pairs = (pairs.iter())
            .map(|&(u, v, a, b)| {
                let Some(&(f, _, x, y)) = draws.iter().find(|d| (d.0, d.1) == (u.min(v), u.max(v)))
                else {
                    return (u, v, a, b);
                };
                let (x, y) = if u == f { (x, y) } else { (y, x) };
                out_count[u as usize] = out_count[u as usize] - a + x;
                out_count[v as usize] = out_count[v as usize] - b + y;
                (u, v, x, y)
            })
            .collect();
        (out_count, pairs)
    }

    /// The null's reduced solve against a fresh solve of the whole resampled graph: a driven
    /// core with trees hanging off tested and untested states, a tree component, a tested pair
    /// inside a tree, a one-way tested pair, and self-transitions. Redrawn: unchanged (`σ̂`
    /// itself), then with the tree's tested pair and a component's only core pair emptied on one
    /// side (splitting a tree off, leaving a state on no pair and one on its tree alone) and the
    /// one-way pair seen both ways (closing a new cycle).
    #[test]
    fn the_null_system_solves_a_resample_as_a_fresh_solve_does() {
        let mut pairs: Vec<PairCounts> = vec![
            (0, 1, 9, 2),
            (1, 2, 8, 3),
            (2, 3, 7, 2),
            (3, 4, 9, 4),
            (0, 4, 2, 8),
            (0, 2, 5, 4),
            (2, 5, 6, 1),
            (5, 6, 7, 2),
            (2, 6, 1, 5),
        ];
        // Trees: off 3 (with the tested pair 7–9 inside), off the tested state 5, off 4.
        pairs.extend([(3, 7, 4, 3), (7, 8, 2, 5), (7, 9, 6, 6), (9, 10, 3, 1)]);
        pairs.extend([(5, 11, 2, 2), (11, 12, 5, 3), (4, 15, 3, 3)]);
        // The one-way tested pair 13 → 14, between states hanging off 4 and 0.
        pairs.extend([(4, 13, 2, 3), (13, 14, 6, 0), (0, 14, 4, 1)]);
        // A tree component; a component of one tested pair with a tree off 24.
        pairs.extend([(20, 21, 3, 2), (21, 22, 1, 4)]);
        pairs.extend([(23, 24, 12, 3), (24, 25, 2, 2)]);
        let mut out_count = vec![0u64; 26];
        for &(u, v, a, b) in &pairs {
            out_count[u as usize] += a;
            out_count[v as usize] += b;
        }
        for (f, selves) in [(0, 5), (7, 2), (13, 3), (24, 1)] {
            out_count[f] += selves;
        }
        let tested = [(1, 2), (5, 6), (7, 9), (13, 14), (23, 24)];
        let pi = solve(&out_count, &pairs, STATIONARY_TOL).1.pi;
        let system = CoreSystem::new(&out_count, &pairs, &tested, &pi);
        let unchanged: Vec<_> = tested
            .iter()
            .map(|&(f, g)| {
                let &(_, _, a, b) = pairs.iter().find(|p| (p.0, p.1) == (f, g)).unwrap();
                (f, g, a, b)
            })
            .collect();
        let redrawn_counts = [
            (1, 2, 3, 8),
            (5, 6, 2, 7),
            (7, 9, 12, 0),
            (13, 14, 4, 2),
            (23, 24, 0, 15),
        ];
        for draws in [unchanged, redrawn_counts.to_vec()] {
            let (out_count, pairs) = redrawn(&out_count, &pairs, &draws);
            let (sigma, flow) = fresh_production(&out_count, &pairs);
            let found = system.production(&draws, STATIONARY_TOL);
            assert!(sigma > 1e-3, "{sigma}");
            assert!(found.residual <= STATIONARY_TOL, "{}", found.residual);
            for (found, expected) in [(found.sigma, sigma), (found.flow, flow)] {
                assert!(
                    (found - expected).abs() <= 1e-12 * expected,
                    "{found} vs {expected} ({draws:?})"
                );
            }
        }
    }

    /// A resample without a cycle produces exactly nothing (not rounding, which would give the
    /// null a spread); one with a cycle does.
    #[test]
    fn a_resample_without_a_cycle_produces_exactly_nothing() {
        let pairs: Vec<PairCounts> = vec![(0, 1, 20, 15), (1, 2, 7, 3), (0, 2, 0, 4)];
        let mut out_count = vec![0u64; 3];
        for &(u, v, a, b) in &pairs {
            out_count[u as usize] += a;
            out_count[v as usize] += b;
        }
        out_count[1] += 3;
        let pi = solve(&out_count, &pairs, STATIONARY_TOL).1.pi;
        let system = CoreSystem::new(&out_count, &pairs, &[(0, 1), (0, 2)], &pi);
        for split in 0..=35 {
            let draws = [(0, 1, split, 35 - split), (0, 2, 0, 4)];
            assert_eq!(system.production(&draws, STATIONARY_TOL).sigma, 0.0);
        }
        let closed = system.production(&[(0, 1, 20, 15), (0, 2, 1, 3)], STATIONARY_TOL);
        assert!(closed.sigma > 1e-3, "{}", closed.sigma);
    }

    /// An iterate with a state at or below zero is no solution whatever its imbalance: the
    /// iteration goes on until every state is positive.
    #[test]
    fn a_loose_tolerance_does_not_accept_a_negative_iterate() {
        let pairs: Vec<PairCounts> = (0..30u32)
            .map(|i| (i, (i + 1) % 30, 5 + u64::from(i % 4), 2 + u64::from(i % 3)))
            .collect();
        let (out_count, kernel) = chain(30, &pairs);
        let shape = shape_of(&kernel, &out_count);
        let chain = Chain::new(&shape, &arc_rates(&kernel));
        let mut start: Vec<f64> = out_count.iter().map(|&c| c as f64).collect();
        let least = (0..30).min_by_key(|&f| out_count[f]).unwrap();
        start[least] = -1.0;
        let (x, products) = chain.iterate(&start, f64::INFINITY, |_| 0.0);
        assert!(products > 0);
        assert!(x.iter().all(|&x| x > 0.0), "{x:?}");
    }

    /// Dropping pairs off the forest leaves Kruskal's forest as it was: the shape without their
    /// entries is the shape built for the pairs left, entry for entry. Dropping a forest pair
    /// changes the forest.
    #[test]
    fn a_shape_without_pairs_off_its_forest_is_the_shape_built_anew() {
        // Two squares with diagonals sharing state 3, counts all different.
        let ends = [
            (0, 1),
            (1, 2),
            (2, 3),
            (0, 3),
            (0, 2),
            (3, 4),
            (4, 5),
            (5, 6),
            (3, 6),
            (4, 6),
        ];
        let pairs: Vec<PairCounts> = (ends.iter().enumerate())
            .map(|(i, &(u, v))| (u, v, 2 + i as u64, 9 + (7 * i as u64) % 5))
            .collect();
        let (out_count, kernel) = chain(7, &pairs);
        let order = Ordering::new(&kernel.pairs, &out_count);
        let all = vec![true; kernel.pairs.len()];
        let base = Shape::new(&kernel.adjacency, &all, &order);
        let on_forest: Vec<bool> = (0..kernel.pairs.len())
            .map(|e| {
                base.parent_arc
                    .iter()
                    .any(|&a| a != ROOT && a as usize / 2 == e)
            })
            .collect();
        assert_eq!(on_forest.iter().filter(|&&t| t).count(), 6);
        let off: Vec<usize> = (0..kernel.pairs.len()).filter(|&e| !on_forest[e]).collect();
        for dropped in [vec![off[0]], off.clone()] {
            let mut alive = all.clone();
            dropped.iter().for_each(|&e| alive[e] = false);
            assert_eq!(
                base.without(&alive),
                Shape::new(&kernel.adjacency, &alive, &order)
            );
        }
        let on = (0..kernel.pairs.len()).find(|&e| on_forest[e]).unwrap();
        let mut alive = all.clone();
        alive[on] = false;
        assert_ne!(
            base.without(&alive).parent_arc,
            Shape::new(&kernel.adjacency, &alive, &order).parent_arc
        );
    }

    /// A path is a tree: the forest system is the balance system, so one Krylov step solves it.
    #[test]
    fn a_tree_is_solved_by_its_preconditioner_in_one_step() {
        let pairs: Vec<PairCounts> = (0..50u32)
            .map(|i| (i, i + 1, 3 + u64::from(i % 7), 2 + u64::from(i % 5)))
            .collect();
        let (out_count, _) = chain(51, &pairs);
        let (kernel, s) = solve(&out_count, &pairs, STATIONARY_TOL);
        assert!(s.residual <= STATIONARY_TOL, "{}", s.residual);
        assert!(
            s.iterations <= 3,
            "{} products, residual {:e}",
            s.iterations,
            s.residual
        );
        // On a tree the stationary chain is reversible: π_u T(u→v) = π_v T(v→u) on every pair,
        // to the tolerance of the whole flow.
        let flux = |(&(u, v, _, _), &(t_uv, t_vu)): (&PairCounts, &(f64, f64))| {
            (s.pi[u as usize] * t_uv, s.pi[v as usize] * t_vu)
        };
        let flow: f64 = kernel
            .pairs
            .iter()
            .zip(&kernel.rates)
            .map(|p| flux(p).0)
            .sum();
        for pair in kernel.pairs.iter().zip(&kernel.rates) {
            let (forward, backward) = flux(pair);
            assert!(
                (forward - backward).abs() <= STATIONARY_TOL * flow,
                "{pair:?}"
            );
        }
    }

    /// Components (a driven cycle with chords, a hub with spokes, a lone pair) and states on no
    /// pair: balanced to the tolerance, positive, each component summing to its share.
    #[test]
    fn components_are_balanced_and_weighted_by_their_transitions() {
        let mut pairs: Vec<PairCounts> = (0..40u32)
            .map(|i| (i, (i + 1) % 40, 9 + u64::from(i % 4), 1 + u64::from(i % 3)))
            .collect();
        pairs.extend((0..40u32).step_by(7).map(|i| (i, (i + 13) % 40, 4, 5)));
        pairs.extend((41..90u32).map(|i| (40, i, 2 + u64::from(i % 9), 1 + u64::from(i % 2))));
        pairs.push((90, 91, 5, 3));
        pairs.push((92, 93, 7, 0)); // one-way: no pair of the kernel
        let (out_count, _) = chain(94, &pairs);
        let (_, s) = solve(&out_count, &pairs, STATIONARY_TOL);
        assert!(s.residual <= STATIONARY_TOL, "{}", s.residual);
        let total: u64 = out_count[..92].iter().sum();
        for states in [0..40, 40..90, 90..92] {
            let share = out_count[states.clone()].iter().sum::<u64>() as f64 / total as f64;
            let mass: f64 = s.pi[states.clone()].iter().sum();
            assert!(
                (mass - share).abs() <= 1e-14,
                "{states:?}: {mass} vs {share}"
            );
            assert!(s.pi[states].iter().all(|&p| p > 0.0));
        }
        assert_eq!(&s.pi[92..], &[0.0, 0.0]);
    }
}
