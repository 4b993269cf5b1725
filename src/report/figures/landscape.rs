//! The potential landscape, in the paper's layout: the most visited identifiable states (at most
//! [`MAX_NODES`]) at height `V` over a per-state quantity — the `--state-score` (the paper used
//! log10 of an expression's error), or without one log10 of the state's visits `N(f)` — and the
//! arcs between them with `T ≥ 0.05` (the paper's cut), downhill (to lower `V`) green and uphill
//! red, width ∝ `T`.

use super::*;
use crate::graph::{NO_EDGE, TransitionGraph};

/// Most edges drawn (the largest `T`); the rest would be hairlines under them.
const MAX_EDGES: usize = 800;
/// Horizontal shift of an arc to its side of the pair, as a fraction of the axis' range.
const EDGE_OFFSET: f64 = 0.002;
/// Arcs drawn have `T ≥` this (the paper's cut).
const MIN_T: f64 = 0.05;
/// States named on the figure (the most visited).
const LABELLED: usize = 12;
/// Longest state name drawn, in characters.
const NAME_CHARS: usize = 24;

struct Landscape {
    names: Vec<String>,
    v: Vec<f64>,
    visits: Vec<u64>,
    x: Vec<f64>,
    /// What `x` is.
    x_label: &'static str,
    /// `(from, to, T)` in drawn-node indices, weakest first.
    edges: Vec<(usize, usize, f64)>,
    notes: Vec<String>,
}

const TITLE: &str = "Potential landscape";

pub(super) fn figure(a: &Analysis) -> Result<Figure, String> {
    let caption = "The most visited identifiable states at height V over their score \
                   (--state-score) or, without one, log10 of their visits; an arc f→g with \
                   T(f→g) ≥ 0.05 is green when it goes downhill (V(g) < V(f)) and red when \
                   uphill, its width ∝ T(f→g)."
        .to_string();
    render(
        "landscape",
        TITLE,
        caption,
        &landscape(&a.graph, &a.potential.value, a.state_score.as_deref()),
    )
}

/// What the figure draws (module docs), in drawn-node indices.
fn landscape(
    graph: &TransitionGraph,
    value: &[Option<f64>],
    score: Option<&[Option<f64>]>,
) -> Landscape {
    let (states, identifiable) = drawn_states(graph, value, score);
    let (edges, all_edges) = drawn_arcs(graph, &states);
    let notes = [
        thinning_note(
            states.len(),
            identifiable,
            if score.is_some() {
                "identifiable states with a score, the most visited"
            } else {
                "identifiable states, the most visited"
            },
        ),
        thinning_note(
            edges.len(),
            all_edges,
            "arcs between them with T ≥ 0.05, pairs of largest T",
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    let (x, x_label) = match score {
        Some(score) => (
            states.iter().map(|&s| score[s].expect("placed")).collect(),
            "score (--state-score)",
        ),
        None => (
            states
                .iter()
                .map(|&s| (graph.out_count[s].max(1) as f64).log10())
                .collect(),
            "log10 visits N(f)",
        ),
    };
    Landscape {
        x,
        x_label,
        names: states.iter().map(|&s| graph.names[s].clone()).collect(),
        v: states
            .iter()
            .map(|&s| value[s].expect("identifiable"))
            .collect(),
        visits: states.iter().map(|&s| graph.out_count[s]).collect(),
        edges,
        notes,
    }
}

/// The states drawn, most visited first: identifiable, with a score when there are scores, at
/// most [`MAX_NODES`]; and how many qualified.
fn drawn_states(
    graph: &TransitionGraph,
    value: &[Option<f64>],
    score: Option<&[Option<f64>]>,
) -> (Vec<usize>, usize) {
    let placed = |s: usize| score.is_none_or(|score| score[s].is_some());
    let mut states: Vec<usize> = (0..graph.n_states())
        .filter(|&s| value[s].is_some() && placed(s))
        .collect();
    let identifiable = states.len();
    states.sort_by(|&a, &b| graph.out_count[b].cmp(&graph.out_count[a]).then(a.cmp(&b)));
    states.truncate(MAX_NODES);
    (states, identifiable)
}

/// The arcs drawn between `states` (as `(from, to, T)` in indices of `states`, weakest first):
/// those with `T ≥` [`MIN_T`], at most [`MAX_EDGES`] of the largest; and how many qualified.
fn drawn_arcs(graph: &TransitionGraph, states: &[usize]) -> (Vec<(usize, usize, f64)>, usize) {
    let mut node = vec![usize::MAX; graph.n_states()];
    for (i, &s) in states.iter().enumerate() {
        node[s] = i;
    }
    let t = |e: usize| graph.count[e] as f64 / graph.out_count[graph.src[e] as usize] as f64;
    // (from, to, T, the larger T of the arc and its reverse): a pair's two arcs rank together,
    // so the uphill arc, the weaker one, is drawn whenever its pair is.
    let mut ranked = Vec::new();
    for (i, &f) in states.iter().enumerate() {
        for e in graph.out_ptr[f]..graph.out_ptr[f + 1] {
            let j = node[graph.dst[e] as usize];
            if j != usize::MAX && t(e) >= MIN_T {
                let r = graph.reverse[e];
                let reverse = if r == NO_EDGE { 0.0 } else { t(r as usize) };
                ranked.push((i, j, t(e), t(e).max(reverse)));
            }
        }
    }
    let all_edges = ranked.len();
    ranked.sort_by(|a, b| {
        let pair = |e: &(usize, usize, f64, f64)| (e.0.min(e.1), e.0.max(e.1), e.0);
        b.3.total_cmp(&a.3).then(pair(a).cmp(&pair(b)))
    });
    ranked.truncate(MAX_EDGES);
    let mut edges: Vec<(usize, usize, f64)> = ranked.iter().map(|e| (e.0, e.1, e.2)).collect();
    edges.sort_by(|a, b| a.2.total_cmp(&b.2).then((a.0, a.1).cmp(&(b.0, b.1))));
    (edges, all_edges)
}

/// `name`, cut to [`NAME_CHARS`] characters with an ellipsis.
pub(super) fn short(name: &str) -> String {
    if name.chars().count() <= NAME_CHARS {
        name.to_string()
    } else {
        let cut: String = name.chars().take(NAME_CHARS - 1).collect();
        format!("{cut}…")
    }
}

impl Plot for Landscape {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        if self.v.is_empty() {
            return empty(root, TITLE, "no identifiable state to place");
        }
        let (low, high) = padded_range(self.v.iter().copied());
        // Headroom for the legend box above the highest state.
        let y = (low, high + 0.3 * (high - low));
        let x = padded_range(self.x.iter().copied());
        let offset = EDGE_OFFSET * (x.1 - x.0);
        let mut chart = ChartBuilder::on(root)
            .caption(TITLE, text_style(22))
            .margin(16)
            .x_label_area_size(30)
            .y_label_area_size(72)
            .build_cartesian_2d(x.0..x.1, y.0..y.1)
            .map_err(fail)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc(self.x_label)
            .y_desc("V")
            .label_style(text_style(15))
            .axis_desc_style(text_style(17))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(fail)?;
        let (green, red) = (RGBColor(44, 160, 44), RGBColor(214, 39, 40));
        for &(a, b, t) in &self.edges {
            let colour = if self.v[b] < self.v[a] { green } else { red };
            let width = 1 + (8.0 * t).round() as u32;
            // f→g and g→f side by side rather than on top of each other.
            let side = if a < b { offset } else { -offset };
            chart
                .draw_series(std::iter::once(PathElement::new(
                    [(self.x[a] + side, self.v[a]), (self.x[b] + side, self.v[b])],
                    colour.mix(0.5).stroke_width(width),
                )))
                .map_err(fail)?;
        }
        let most = self.visits.iter().copied().max().unwrap_or(1).max(1) as f64;
        chart
            .draw_series(self.v.iter().enumerate().map(|(i, &v)| {
                let radius = 3 + (6.0 * (self.visits[i] as f64 / most).sqrt()).round() as u32;
                Circle::new((self.x[i], v), radius, RGBColor(40, 40, 40).filled())
            }))
            .map_err(fail)?;
        chart
            .draw_series(self.v.iter().enumerate().take(LABELLED).map(|(i, &v)| {
                EmptyElement::at((self.x[i], v))
                    + Text::new(short(&self.names[i]), (9, -16), text_style(13))
            }))
            .map_err(fail)?;
        let mut lines = vec![
            format!(
                "{} states, {} arcs (T ≥ 0.05): downhill green, uphill red",
                grouped(self.v.len()),
                grouped(self.edges.len())
            ),
            format!("width ∝ T; the {LABELLED} most visited named"),
        ];
        lines.extend(self.notes.iter().cloned());
        text_box(root, &chart, Corner::TopRight, &lines)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::check;
    use super::*;
    use crate::graph::GraphBuilder;

    fn graph(states: u32) -> TransitionGraph {
        let mut b = GraphBuilder::default();
        for s in 0..states {
            b.intern(&format!("<state {s} & \"quoted\">"));
        }
        for s in 0..states {
            let t = (s + 1) % states;
            b.add(s, t, 3 + s as u64 % 4, 0).unwrap();
            b.add(t, s, 2, 0).unwrap();
        }
        b.finish()
    }

    #[test]
    fn edges_are_coloured_by_slope_and_placed_deterministically() {
        let g = graph(6);
        let value: Vec<Option<f64>> = (0..6).map(|s| Some(s as f64)).collect();
        let l = landscape(&g, &value, None);
        assert_eq!(l.v.len(), 6);
        assert_eq!(l.edges.len(), 12);
        assert!(
            l.edges.windows(2).all(|w| w[0].2 <= w[1].2),
            "weakest first"
        );
        let t_total: f64 = l.edges.iter().map(|e| e.2).sum();
        assert!((t_total - 6.0).abs() < 1e-12, "each state's T sums to one");
        let visits = |name: &String| {
            let s = g.names.iter().position(|n| n == name).unwrap();
            (g.out_count[s] as f64).log10()
        };
        assert!(l.names.iter().zip(&l.x).all(|(n, &x)| x == visits(n)));
        assert_eq!(l.x_label, "log10 visits N(f)");
        assert!(l.notes.is_empty());
        let figure = render("t", TITLE, String::new(), &l).unwrap();
        check(&figure);
        // V rises along the ring 0→1→…→5: six arcs go uphill (red), six downhill (green).
        let edges = |colour: &str| {
            let stroke = format!("stroke=\"#{colour}\" stroke-opacity=\"0.500\"");
            figure.svg.matches(&stroke).count()
        };
        assert_eq!((edges("2ca02c"), edges("d62728")), (6, 6));
        assert!(
            figure
                .svg
                .contains("&lt;state 0 &amp; &quot;quoted&quot;&gt;"),
            "escaped names"
        );
    }

    #[test]
    fn large_graphs_are_thinned_and_say_so_and_null_states_are_left_out() {
        let g = graph(250);
        let mut value: Vec<Option<f64>> = (0..250).map(|s| Some((s % 17) as f64)).collect();
        value[0] = None;
        let l = landscape(&g, &value, None);
        assert_eq!(l.v.len(), MAX_NODES);
        assert!(!l.names.contains(&g.names[0]));
        assert_eq!(
            l.notes,
            ["showing 200 of 249 identifiable states, the most visited (thinned for drawing)"]
        );
        check(&render("t", TITLE, String::new(), &l).unwrap());
        let none = landscape(&g, &vec![None; 250], None);
        check(&render("t", TITLE, String::new(), &none).unwrap());
    }

    /// With scores, only scored states are placed, at their score; arcs with T < 0.05 are cut.
    #[test]
    fn scores_place_the_states_and_weak_arcs_are_cut() {
        let mut b = GraphBuilder::default();
        let s: Vec<u32> = ["a", "b", "c"].iter().map(|n| b.intern(n)).collect();
        for (f, g, n) in [
            (0, 1, 99),
            (0, 2, 1),
            (1, 0, 50),
            (2, 0, 50),
            (1, 2, 50),
            (2, 1, 50),
        ] {
            b.add(s[f], s[g], n, 0).unwrap();
        }
        let g = b.finish();
        let value = vec![Some(0.0), Some(1.0), Some(2.0)];
        let all = landscape(&g, &value, Some(&[Some(-3.0), Some(0.5), Some(2.0)]));
        assert_eq!(all.x_label, "score (--state-score)");
        let at = |name: &str| all.x[all.names.iter().position(|n| n == name).unwrap()];
        assert_eq!((at("a"), at("b"), at("c")), (-3.0, 0.5, 2.0));
        // a→c has T = 0.01: the five other arcs are drawn.
        assert_eq!(all.edges.len(), 5);
        let some = landscape(&g, &value, Some(&[Some(1.0), None, Some(2.0)]));
        assert_eq!(some.names, ["a", "c"]);
        check(&render("t", TITLE, String::new(), &some).unwrap());
    }
}
