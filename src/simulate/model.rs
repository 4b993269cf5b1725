//! The planted model: popularity, graph, attractors, drive, potentials and the tabulated kernel.

use super::{SimMode, SimParams, Stream, rng};
use rand::seq::SliceRandom;
use rand::{Rng, RngExt};
use rand_distr::StandardNormal;
use rustc_hash::{FxHashMap, FxHashSet};

/// Everything the truth sidecar reports, plus one sampling kernel per group.
pub(super) struct Model {
    pub n: usize,
    /// CSR adjacency: the neighbours of `f` are `nbr[offsets[f]..offsets[f + 1]]`, ascending.
    pub offsets: Vec<usize>,
    pub nbr: Vec<u32>,
    pub triangles: Vec<[u32; 3]>,
    /// Driven triangles `[a, b, c]`, oriented so that `D = +drive` on `a→b`, `b→c` and `c→a`.
    pub driven: Vec<[u32; 3]>,
    /// Attractors, most popular first.
    pub attractors: Vec<u32>,
    /// `V` (mean-centred) and the kernel per group; one of each when the potential is shared.
    potentials: Vec<Vec<f64>>,
    kernels: Vec<Kernel>,
}

impl Model {
    pub fn build(params: &SimParams) -> Model {
        let n = params.states as usize;
        let mut graph_rng = rng(params.seed, Stream::Graph);
        let popularity: Vec<f64> = (0..n)
            .map(|_| match params.pareto {
                0.0 => 1.0,
                // Inverse CDF of Pareto(α) with minimum 1; 1 − u ∈ (0, 1].
                alpha => (1.0 - graph_rng.random::<f64>()).powf(-1.0 / alpha),
            })
            .collect();
        // Most popular first; the shuffle breaks ties at random.
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.shuffle(&mut graph_rng);
        order.sort_by(|&a, &b| popularity[b as usize].total_cmp(&popularity[a as usize]));
        let (edges, triangles) = build_graph(params, &order, &popularity, &mut graph_rng);
        let (offsets, nbr) = csr(n, &edges);
        let attractors = order[..params.attractors as usize].to_vec();

        let driven = if params.mode == SimMode::Driven {
            pick_driven(
                params.drive_fraction,
                &triangles,
                &mut rng(params.seed, Stream::Drive),
            )
        } else {
            Vec::new()
        };
        let drive = drive_map(&driven, params.drive);

        // One potential (and kernel) per group, or a single one shared by all groups.
        let distinct = if params.shared_potential {
            1
        } else {
            params.groups
        };
        let potentials: Vec<Vec<f64>> = (0..distinct)
            .map(|g| potential(params, &popularity, &attractors, g))
            .collect();
        let kernels = potentials
            .iter()
            .map(|v| Kernel::build(&offsets, &nbr, &popularity, v, &drive))
            .collect();
        Model {
            n,
            offsets,
            nbr,
            triangles,
            driven,
            attractors,
            potentials,
            kernels,
        }
    }

    pub fn n_edges(&self) -> usize {
        self.nbr.len() / 2
    }

    /// `V` of `group`.
    pub fn potential(&self, group: u32) -> &[f64] {
        &self.potentials[group as usize % self.potentials.len()]
    }

    /// The kernel of `group`.
    pub fn kernel(&self, group: u32) -> &Kernel {
        &self.kernels[group as usize % self.kernels.len()]
    }
}

/// `D(f,g)` on the directed edges of the driven triangles (`+drive` along each, `−drive` against).
fn drive_map(driven: &[[u32; 3]], drive: f64) -> FxHashMap<(u32, u32), f64> {
    let mut d = FxHashMap::default();
    for &[a, b, c] in driven {
        for (f, g) in [(a, b), (b, c), (c, a)] {
            d.insert((f, g), drive);
            d.insert((g, f), -drive);
        }
    }
    d
}

/// Undirected edges, each once, in insertion order.
#[derive(Default)]
struct EdgeSet {
    seen: FxHashSet<(u32, u32)>,
    list: Vec<(u32, u32)>,
}

impl EdgeSet {
    fn add(&mut self, a: u32, b: u32) {
        let key = (a.min(b), a.max(b));
        if a != b && self.seen.insert(key) {
            self.list.push(key);
        }
    }
}

/// Spanning tree (connectivity), planted triangles, then extra edges, each joining a state to
/// states drawn ∝ popularity (uniform when `p ≡ 1`), so that rare states hang off hubs.
fn build_graph<R: Rng>(
    params: &SimParams,
    order: &[u32],
    popularity: &[f64],
    rng: &mut R,
) -> (Vec<(u32, u32)>, Vec<[u32; 3]>) {
    let n = order.len();
    let pop = AliasTables::single(popularity);
    let mut edges = EdgeSet::default();
    // Tree: in order of decreasing popularity, each state attaches to an earlier one drawn
    // ∝ popularity (`cum[i]` = popularity of the first `i`); a random recursive tree when p ≡ 1.
    let cum: Vec<f64> = std::iter::once(0.0)
        .chain(order.iter().scan(0.0, |acc, &s| {
            *acc += popularity[s as usize];
            Some(*acc)
        }))
        .collect();
    for i in 1..n {
        let u = rng.random::<f64>() * cum[i];
        let j = cum[1..i].partition_point(|&c| c <= u);
        edges.add(order[i], order[j]);
    }

    // Triangles: a uniform state and two drawn ∝ popularity.
    let want = (params.triangles * n as f64).round() as usize;
    let mut seen = FxHashSet::default();
    let mut triangles = Vec::with_capacity(want);
    // Attempts are capped because tiny graphs have fewer than `want` distinct triangles.
    for _ in 0..20 * want + 100 {
        if triangles.len() == want {
            break;
        }
        let mut t = [
            rng.random_range(0..n as u32),
            pop.sample(0, rng),
            pop.sample(0, rng),
        ];
        t.sort_unstable();
        let [a, b, c] = t;
        if a != b && b != c && seen.insert(t) {
            edges.add(a, b);
            edges.add(b, c);
            edges.add(a, c);
            triangles.push(t);
        }
    }

    // Extra edges: a uniform state and one drawn ∝ popularity.
    let target = ((params.mean_degree * n as f64 / 2.0).round() as usize).min(n * (n - 1) / 2);
    for _ in 0..20 * target + 100 {
        if edges.list.len() >= target {
            break;
        }
        let a = rng.random_range(0..n as u32);
        edges.add(a, pop.sample(0, rng));
    }
    (edges.list, triangles)
}

/// CSR adjacency of an undirected edge list, neighbours ascending.
fn csr(n: usize, edges: &[(u32, u32)]) -> (Vec<usize>, Vec<u32>) {
    let mut offsets = vec![0usize; n + 1];
    for &(a, b) in edges {
        offsets[a as usize + 1] += 1;
        offsets[b as usize + 1] += 1;
    }
    for f in 0..n {
        offsets[f + 1] += offsets[f];
    }
    let mut fill = offsets.clone();
    let mut nbr = vec![0u32; 2 * edges.len()];
    for &(a, b) in edges {
        nbr[fill[a as usize]] = b;
        fill[a as usize] += 1;
        nbr[fill[b as usize]] = a;
        fill[b as usize] += 1;
    }
    for f in 0..n {
        nbr[offsets[f]..offsets[f + 1]].sort_unstable();
    }
    (offsets, nbr)
}

/// Edge-disjoint driven triangles (so each affinity is exactly `3 · drive`), random orientation.
fn pick_driven<R: Rng>(fraction: f64, triangles: &[[u32; 3]], rng: &mut R) -> Vec<[u32; 3]> {
    let want = (fraction * triangles.len() as f64).round() as usize;
    let mut order: Vec<usize> = (0..triangles.len()).collect();
    order.shuffle(rng);
    let mut used = FxHashSet::default();
    let mut driven = Vec::with_capacity(want);
    for i in order {
        if driven.len() == want {
            break;
        }
        let [a, b, c] = triangles[i];
        let keys = [(a, b), (b, c), (a, c)];
        if keys.iter().any(|k| used.contains(k)) {
            continue;
        }
        used.extend(keys);
        driven.push(if rng.random_bool(0.5) {
            [a, b, c]
        } else {
            [a, c, b]
        });
    }
    driven
}

/// `V = vscale · z − coupling · ln p − attractor_depth · vscale · [attractor]`, mean-centred.
fn potential(params: &SimParams, popularity: &[f64], attractors: &[u32], stream: u32) -> Vec<f64> {
    let mut rng = rng(params.seed, Stream::Potential(stream));
    let mut v: Vec<f64> = popularity
        .iter()
        .map(|p| params.vscale * rng.sample::<f64, _>(StandardNormal) - params.coupling * p.ln())
        .collect();
    for &a in attractors {
        v[a as usize] -= params.attractor_depth * params.vscale;
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    v.iter_mut().for_each(|x| *x -= mean);
    v
}

/// Several alias tables (Walker/Vose) stored back to back; table `i` covers
/// `start[i]..start[i + 1]` and returns a local index.
pub(super) struct AliasTables {
    start: Vec<usize>,
    prob: Vec<f64>,
    alias: Vec<u32>,
}

impl AliasTables {
    fn single(weights: &[f64]) -> AliasTables {
        let mut tables = AliasTables {
            start: vec![0, weights.len()],
            prob: vec![0.0; weights.len()],
            alias: vec![0; weights.len()],
        };
        tables.fill(0, weights, &mut Vec::new(), &mut Vec::new());
        tables
    }

    /// Vose's method: slot `k` keeps `k` with probability `prob[k]`, else yields `alias[k]`.
    fn fill(&mut self, table: usize, weights: &[f64], small: &mut Vec<u32>, large: &mut Vec<u32>) {
        let range = self.start[table]..self.start[table + 1];
        let (prob, alias) = (&mut self.prob[range.clone()], &mut self.alias[range]);
        let scale = weights.len() as f64 / weights.iter().sum::<f64>();
        small.clear();
        large.clear();
        for (k, w) in weights.iter().enumerate() {
            prob[k] = w * scale;
            alias[k] = k as u32;
            if prob[k] < 1.0 {
                small.push(k as u32)
            } else {
                large.push(k as u32)
            }
        }
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            alias[s as usize] = l;
            prob[l as usize] -= 1.0 - prob[s as usize];
            if prob[l as usize] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // Leftovers are 1 up to rounding.
        for &k in small.iter().chain(large.iter()) {
            prob[k as usize] = 1.0;
        }
    }

    #[inline]
    fn sample<R: Rng>(&self, table: usize, rng: &mut R) -> u32 {
        let lo = self.start[table];
        let k = rng.random_range(0..self.start[table + 1] - lo);
        if rng.random::<f64>() < self.prob[lo + k] {
            k as u32
        } else {
            self.alias[lo + k]
        }
    }

    /// The exact distribution a table encodes: `P(j) = (prob[j] + Σ_{alias[k]=j} (1 − prob[k])) / len`.
    #[cfg(test)]
    fn probabilities(&self, table: usize) -> Vec<f64> {
        let range = self.start[table]..self.start[table + 1];
        let len = range.len() as f64;
        let mut p: Vec<f64> = self.prob[range.clone()].iter().map(|q| q / len).collect();
        for (q, &a) in self.prob[range.clone()].iter().zip(&self.alias[range]) {
            p[a as usize] += (1.0 - q) / len;
        }
        p
    }
}

/// The kernel `T` of one group: row `f` is its neighbours (CSR order) followed by `f` itself.
pub(super) struct Kernel {
    tables: AliasTables,
    next: Vec<u32>,
}

impl Kernel {
    /// `T(f→g) = q(f→g) · min(1, exp(V(f) − V(g) + D(f,g)) · p(f) W(f) / (p(g) W(g)))`,
    /// `q(f→g) = p(g) / W(f)`, and `T(f→f) = 1 − Σ_g T(f→g)`.
    fn build(
        offsets: &[usize],
        nbr: &[u32],
        popularity: &[f64],
        v: &[f64],
        drive: &FxHashMap<(u32, u32), f64>,
    ) -> Kernel {
        let n = v.len();
        let w: Vec<f64> = (0..n)
            .map(|f| {
                nbr[offsets[f]..offsets[f + 1]]
                    .iter()
                    .map(|&h| popularity[h as usize])
                    .sum()
            })
            .collect();
        let ln_pw: Vec<f64> = (0..n).map(|f| (popularity[f] * w[f]).ln()).collect();
        let start: Vec<usize> = (0..=n).map(|f| offsets[f] + f).collect();
        let slots = start[n];
        let mut tables = AliasTables {
            start,
            prob: vec![0.0; slots],
            alias: vec![0; slots],
        };
        let mut next = Vec::with_capacity(slots);
        let (mut row, mut small, mut large) = (Vec::new(), Vec::new(), Vec::new());
        for f in 0..n {
            row.clear();
            for &g in &nbr[offsets[f]..offsets[f + 1]] {
                let gi = g as usize;
                let d = drive.get(&(f as u32, g)).copied().unwrap_or(0.0);
                let log_ratio = v[f] - v[gi] + d + ln_pw[f] - ln_pw[gi];
                row.push(popularity[gi] / w[f] * log_ratio.min(0.0).exp());
                next.push(g);
            }
            row.push((1.0 - row.iter().sum::<f64>()).max(0.0));
            next.push(f as u32);
            tables.fill(f, &row, &mut small, &mut large);
        }
        Kernel { tables, next }
    }

    /// One step of the walk from `f`.
    #[inline]
    pub fn step<R: Rng>(&self, f: u32, rng: &mut R) -> u32 {
        let k = self.tables.sample(f as usize, rng) as usize;
        self.next[self.tables.start[f as usize] + k]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::SimParams;

    fn small(mode: SimMode) -> SimParams {
        SimParams {
            states: 60,
            seed: 7,
            ..SimParams::new(mode)
        }
    }

    /// `T(f→g)` for every slot of every row, from the alias tables.
    fn kernel_rows(model: &Model, group: u32) -> Vec<Vec<f64>> {
        (0..model.n)
            .map(|f| model.kernel(group).tables.probabilities(f))
            .collect()
    }

    #[test]
    fn alias_tables_encode_their_weights_exactly() {
        let weights = [0.5, 3.0, 0.0, 1.25, 7.0, 0.25];
        let total: f64 = weights.iter().sum();
        let p = AliasTables::single(&weights).probabilities(0);
        for (pj, w) in p.iter().zip(weights) {
            assert!((pj - w / total).abs() < 1e-12, "{pj} vs {}", w / total);
        }
    }

    #[test]
    fn graph_is_connected_and_has_the_planted_triangles() {
        let model = Model::build(&small(SimMode::Reversible));
        let mut seen = vec![false; model.n];
        let mut stack = vec![0usize];
        seen[0] = true;
        while let Some(f) = stack.pop() {
            for &g in &model.nbr[model.offsets[f]..model.offsets[f + 1]] {
                if !std::mem::replace(&mut seen[g as usize], true) {
                    stack.push(g as usize);
                }
            }
        }
        assert!(seen.iter().all(|&s| s));
        let has = |a: u32, b: u32| {
            model.nbr[model.offsets[a as usize]..model.offsets[a as usize + 1]].contains(&b)
        };
        assert_eq!(model.triangles.len(), 60);
        assert!(
            model
                .triangles
                .iter()
                .all(|&[a, b, c]| has(a, b) && has(b, c) && has(c, a))
        );
    }

    #[test]
    fn kernel_satisfies_the_planted_log_ratio_exactly() {
        for mode in [SimMode::Reversible, SimMode::Driven, SimMode::LlmLike] {
            let params = SimParams {
                drive_fraction: 0.5,
                ..small(mode)
            };
            let model = Model::build(&params);
            let v = model.potential(0);
            let d = drive_map(&model.driven, params.drive);
            let t = kernel_rows(&model, 0);
            let at = |f: usize, g: u32| {
                let k = model.nbr[model.offsets[f]..model.offsets[f + 1]]
                    .binary_search(&g)
                    .unwrap();
                t[f][k]
            };
            for f in 0..model.n {
                assert!(
                    (t[f].iter().sum::<f64>() - 1.0).abs() < 1e-12,
                    "{mode:?}: row {f} sums to 1"
                );
                for &g in &model.nbr[model.offsets[f]..model.offsets[f + 1]] {
                    let planted =
                        v[f] - v[g as usize] + d.get(&(f as u32, g)).copied().unwrap_or(0.0);
                    let log_ratio = (at(f, g) / at(g as usize, f as u32)).ln();
                    assert!(
                        (log_ratio - planted).abs() < 1e-9,
                        "{mode:?} {f}→{g}: {log_ratio} vs {planted}"
                    );
                }
            }
        }
    }

    #[test]
    fn driven_triangles_are_edge_disjoint() {
        let params = SimParams {
            drive_fraction: 1.0,
            ..small(SimMode::Driven)
        };
        let model = Model::build(&params);
        assert!(!model.driven.is_empty());
        let mut edges = FxHashSet::default();
        for &[a, b, c] in &model.driven {
            for (f, g) in [(a, b), (b, c), (c, a)] {
                assert!(
                    edges.insert((f.min(g), f.max(g))),
                    "edge {f}-{g} driven twice"
                );
            }
        }
    }

    #[test]
    fn attractors_are_the_most_popular_states() {
        let model = Model::build(&small(SimMode::LlmLike));
        let v = model.potential(0);
        let deepest = (0..model.n).min_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap();
        assert_eq!(model.attractors.len(), 5);
        assert!(model.attractors.contains(&(deepest as u32)));
    }
}
