//! The loop-balance scatter: per reciprocal triangle, the forward sum `Σ log T` around it
//! against the backward one, each with its error bar `√(Σ 1/n)` over its three arcs;
//! Kolmogorov's criterion puts every point on the identity line. Triangles flagged by the
//! Benjamini–Hochberg procedure are red.

use super::*;
use crate::stats::cycles::{CycleTest, Triangle};

struct LoopScatter<'a> {
    /// `(forward, backward, σ_forward, σ_backward, flagged)` of the drawn triangles.
    points: Vec<(f64, f64, f64, f64, bool)>,
    test: &'a CycleTest,
    note: Option<String>,
}

const TITLE: &str = "Loop balance per triangle";

pub(super) fn figure(a: &Analysis) -> Result<Figure, String> {
    let caption = format!(
        "Each reciprocal triangle (all six arcs observed): sum of log T(f→g) around it one way \
         (horizontal) and the other way (vertical), with error bars √(Σ 1/n) over its three \
         arcs. Kolmogorov's criterion puts the points on the identity line (grey); red: \
         flagged at FDR {} (Benjamini–Hochberg on the per-cycle z).",
        a.cycle_test.fdr
    );
    render(
        "loop_balance",
        TITLE,
        caption,
        &scatter(&a.triangles, &a.cycle_test),
    )
}

fn scatter<'a>(triangles: &[Triangle], test: &'a CycleTest) -> LoopScatter<'a> {
    let shown = thin(triangles, MAX_POINTS);
    let points = shown
        .iter()
        .map(|t| {
            let inverse = |k: usize| 1.0 / t.counts[k] as f64;
            let (fwd, bwd) = (
                (0..3).map(inverse).sum::<f64>(),
                (3..6).map(inverse).sum::<f64>(),
            );
            let flagged = t.q_value.is_some_and(|q| q <= test.fdr);
            (t.forward, t.backward, fwd.sqrt(), bwd.sqrt(), flagged)
        })
        .collect();
    LoopScatter {
        points,
        test,
        note: thinning_note(shown.len(), triangles.len(), "triangles"),
    }
}

impl Plot for LoopScatter<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        if self.points.is_empty() {
            return empty(root, TITLE, "no reciprocal triangle (no cycle to test)");
        }
        let range = padded_range(
            self.points
                .iter()
                .flat_map(|p| [p.0 - p.2, p.0 + p.2, p.1 - p.3, p.1 + p.3]),
        );
        let mut chart = chart(
            root,
            TITLE,
            ("forward Σ log T (a→b→c→a)", "backward Σ log T (a→c→b→a)"),
            range,
            range,
        )?;
        chart
            .draw_series(LineSeries::new(
                [(range.0, range.0), (range.1, range.1)],
                RGBColor(90, 90, 90).stroke_width(2),
            ))
            .map_err(fail)?;
        let (blue, red) = (RGBColor(31, 119, 180), RGBColor(214, 39, 40));
        // Flagged triangles last, on top.
        for flagged in [false, true] {
            let colour = if flagged { red } else { blue };
            let points = || self.points.iter().filter(move |p| p.4 == flagged);
            let style = colour.mix(0.35).stroke_width(1);
            chart
                .draw_series(points().map(|&(f, b, _, sb, _)| {
                    ErrorBar::new_vertical(f, b - sb, b, b + sb, style, 4)
                }))
                .map_err(fail)?;
            chart
                .draw_series(points().map(|&(f, b, sf, _, _)| {
                    ErrorBar::new_horizontal(b, f - sf, f, f + sf, style, 4)
                }))
                .map_err(fail)?;
            chart
                .draw_series(points().map(|&(f, b, ..)| Circle::new((f, b), 2, colour.filled())))
                .map_err(fail)?;
        }
        let t = self.test;
        let mut lines = vec![
            format!(
                "{} triangles, {} kept by the reference filters",
                grouped(t.triangles),
                grouped(t.n)
            ),
            format!("χ²/ndf (reference) = {}", num(t.chi2_ndf_reference, 3)),
            format!(
                "cycle space: χ² = {:.1} / {} ndf, {}",
                t.chi2,
                t.ndf,
                crate::report::p_text(t.p_value)
            ),
            if t.flagged_exact {
                format!("{} flagged at FDR {} (red)", grouped(t.flagged), t.fdr)
            } else {
                format!(
                    "{} to {} flagged at FDR {} (red)",
                    grouped(t.flagged),
                    grouped(t.flagged_at_most),
                    t.fdr
                )
            },
        ];
        if t.limit_reached {
            lines.push(format!(
                "the {} most significant shown (--max-cycles)",
                grouped(t.listed)
            ));
        }
        lines.extend(self.note.clone());
        text_box(root, &chart, Corner::TopLeft, &lines)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::check;
    use super::*;

    fn test(triangles: usize) -> CycleTest {
        CycleTest {
            n: triangles,
            chi2_ndf_reference: Some(2.0),
            triangles,
            n_corrected: triangles,
            chi2: 12.5,
            ndf: 7,
            p_value: Some(0.085),
            flagged: 1,
            flagged_exact: true,
            flagged_at_most: 1,
            flags_fit_listed: true,
            p_at_most_fdr: 1,
            listed: triangles,
            limit_reached: false,
            fdr: 0.05,
            min_count: 5,
        }
    }

    fn triangle(i: usize) -> Triangle {
        let counts = [4, 5, 6, 5, 4, 8 + (i % 5) as u64];
        Triangle {
            states: [0, 1, 2],
            counts,
            forward: -3.0 + (i % 11) as f64 * 0.1,
            backward: -3.2 + (i % 13) as f64 * 0.1,
            affinity: 0.2,
            variance_reference: 1.0,
            variance: 1.0,
            z: 0.2,
            p_value: 0.8,
            q_value: Some(if i == 3 { 0.01 } else { 0.9 }),
            kept_reference: true,
            corrected: true,
        }
    }

    #[test]
    fn error_bars_are_the_per_direction_count_sums() {
        let ts: Vec<Triangle> = (0..8).map(triangle).collect();
        let t = test(8);
        let s = scatter(&ts, &t);
        let expected = (1.0f64 / 5.0 + 1.0 / 4.0 + 1.0 / 10.0).sqrt();
        assert!((s.points[2].3 - expected).abs() < 1e-12);
        assert_eq!(s.points.iter().filter(|p| p.4).count(), 1);
        let figure = render("t", TITLE, String::new(), &s).unwrap();
        check(&figure);
        assert!(
            figure
                .svg
                .contains("aria-label=\"1 flagged at FDR 0.05 (red)\"")
        );
        assert!(!figure.svg.contains("thinned for drawing"));
    }

    #[test]
    fn thinned_and_empty() {
        let ts: Vec<Triangle> = (0..MAX_POINTS * 2).map(triangle).collect();
        let t = test(ts.len());
        let figure = render("t", TITLE, String::new(), &scatter(&ts, &t)).unwrap();
        assert!(
            figure
                .svg
                .contains("showing 5,000 of 10,000 triangles (thinned for drawing)")
        );
        check(&render("t", TITLE, String::new(), &scatter(&[], &test(0))).unwrap());
    }
}
