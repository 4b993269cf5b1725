//! The detailed-balance scatter: per tested pair, `β(V(f) − V(g))` (horizontal) against
//! `log T(f→g)/T(g→f)` (vertical) with its binomial error bar; detailed balance puts every
//! point on the identity line. `β` is the fitted slope `β̂` of the pairwise test, or 1 when
//! there is none; the figure and the caption say which.

use super::*;
use crate::stats::detailed_balance::{Pair, PairTest};

struct Scatter<'a> {
    /// `(β̂ y, x, σ)` of the drawn pairs.
    points: Vec<(f64, f64, f64)>,
    beta: Option<f64>,
    test: &'a PairTest,
    note: Option<String>,
}

const TITLE: &str = "Detailed balance per pair";

pub(super) fn figure(a: &Analysis) -> Result<Figure, String> {
    let scatter = scatter(&a.pairs, &a.pair_test);
    let caption = format!(
        "Each reciprocal pair tested (n(f→g) > 1 and n(g→f) > 1, both states identifiable): \
         horizontal β(V(f) − V(g)) with {}, vertical the log ratio of transition \
         probabilities with its binomial standard error. Detailed balance puts the points on \
         the identity line (grey).",
        match scatter.beta {
            Some(b) => format!("β = {b:.3}, the weighted slope β̂ of the pairwise test"),
            None => "β = 1 (the pairwise test has no fitted slope)".into(),
        }
    );
    render("detailed_balance", TITLE, caption, &scatter)
}

fn scatter<'a>(pairs: &[Pair], test: &'a PairTest) -> Scatter<'a> {
    let beta = test.slope;
    let b = beta.unwrap_or(1.0);
    let shown = thin(pairs, MAX_POINTS);
    Scatter {
        points: shown.iter().map(|p| (b * p.y, p.x, p.sigma)).collect(),
        beta,
        test,
        note: thinning_note(shown.len(), pairs.len(), "pairs"),
    }
}

impl Plot for Scatter<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        if self.points.is_empty() {
            return empty(
                root,
                TITLE,
                "no pair with counts in both directions to draw",
            );
        }
        let x = padded_range(self.points.iter().map(|p| p.0));
        let y = padded_range(self.points.iter().flat_map(|p| [p.1 - p.2, p.1 + p.2]));
        let mut chart = chart(
            root,
            TITLE,
            ("β (V(f) − V(g))", "log T(f→g) / T(g→f)"),
            x,
            y,
        )?;
        let (lo, hi) = (x.0.max(y.0), x.1.min(y.1));
        if lo < hi {
            chart
                .draw_series(LineSeries::new(
                    [(lo, lo), (hi, hi)],
                    RGBColor(90, 90, 90).stroke_width(2),
                ))
                .map_err(fail)?;
        }
        let colour = RGBColor(31, 119, 180);
        chart
            .draw_series(self.points.iter().map(|&(x, y, s)| {
                ErrorBar::new_vertical(x, y - s, y, y + s, colour.mix(0.35).stroke_width(1), 4)
            }))
            .map_err(fail)?;
        chart
            .draw_series(
                self.points
                    .iter()
                    .map(|&(x, y, _)| Circle::new((x, y), 2, colour.filled())),
            )
            .map_err(fail)?;
        let t = self.test;
        let mut lines = vec![
            match self.beta {
                Some(b) => format!("β = {b:.3}, the pairwise fitted slope"),
                None => "β = 1 (no fitted slope)".to_string(),
            },
            format!("N = {} pairs", grouped(t.n)),
            format!("r = {}", num(t.pearson_r, 3)),
            format!("χ²/ndf (reference) = {}", num(t.chi2_ndf_reference, 3)),
            format!(
                "χ²/ndf (corrected, {} pairs) = {}",
                grouped(t.n_corrected),
                num((t.ndf > 0).then(|| t.chi2 / t.ndf as f64), 3)
            ),
        ];
        lines.extend(self.note.clone());
        text_box(root, &chart, Corner::TopLeft, &lines)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::check;
    use super::*;

    fn test(n: usize, slope: Option<f64>) -> PairTest {
        PairTest {
            n,
            pearson_r: Some(0.9),
            chi2_ndf_reference: Some(1.25),
            n_corrected: n,
            chi2: 30.0,
            ndf: 20,
            p_value: Some(0.07),
            correlation_origin: None,
            slope,
            slope_ci: None,
            min_count: 5,
        }
    }

    fn pair(i: usize) -> Pair {
        let y = (i % 97) as f64 / 20.0 - 2.0;
        Pair {
            f: 0,
            g: 1,
            n_fg: 10,
            n_gf: 12,
            x: y + 0.1 * ((i % 7) as f64 - 3.0),
            y,
            sigma_reference: 0.5,
            sigma: 0.4,
            corrected: true,
        }
    }

    #[test]
    fn draws_the_statistics_and_a_thinning_note_only_when_thinned() {
        let pairs: Vec<Pair> = (0..30).map(pair).collect();
        let t = test(30, Some(0.95));
        let s = scatter(&pairs, &t);
        assert_eq!(s.points.len(), 30);
        assert!((s.points[5].0 - 0.95 * pairs[5].y).abs() < 1e-12);
        assert_eq!(s.note, None);
        let figure = render("t", TITLE, String::new(), &s).unwrap();
        check(&figure);
        for text in [
            "β = 0.950, the pairwise fitted slope",
            "N = 30 pairs",
            "r = 0.900",
            "χ²/ndf (reference) = 1.250",
            "χ²/ndf (corrected, 30 pairs) = 1.500",
        ] {
            assert!(
                figure.svg.contains(&format!("aria-label=\"{text}\"")),
                "{text}"
            );
        }
        assert!(!figure.svg.contains("thinned"));

        let many: Vec<Pair> = (0..MAX_POINTS + 1234).map(pair).collect();
        let t = test(many.len(), None);
        let s = scatter(&many, &t);
        assert_eq!(s.points.len(), MAX_POINTS);
        assert_eq!(
            s.note.as_deref(),
            Some("showing 5,000 of 6,234 pairs (thinned for drawing)")
        );
        assert_eq!(s.points[1].0, many[1].y, "β = 1 without a slope");
        let figure = render("t", TITLE, String::new(), &s).unwrap();
        check(&figure);
        assert!(figure.svg.contains("β = 1 (no fitted slope)"));
        assert!(
            figure
                .svg
                .contains("showing 5,000 of 6,234 pairs (thinned for drawing)")
        );
    }

    #[test]
    fn no_pairs_is_a_figure_saying_so() {
        let t = test(0, None);
        check(&render("t", TITLE, String::new(), &scatter(&[], &t)).unwrap());
    }
}
