//! The potential histogram: identifiable `V` (per-component centred) in bins, with the Gaussian
//! of their mean and standard deviation (the maximum-likelihood normal) scaled to the counts.
//! Histograms are drawn from all values, never thinned.

use super::*;

struct Histogram {
    values: Vec<f64>,
    /// States without a value (not identifiable).
    missing: usize,
}

const TITLE: &str = "Potential distribution";

pub(super) fn figure(a: &Analysis) -> Result<Figure, String> {
    let values: Vec<f64> = a.potential.value.iter().flatten().copied().collect();
    let missing = a.potential.value.len() - values.len();
    let caption = "Identifiable potentials V (centred to mean zero in each strongly connected \
                   component) with the Gaussian of their mean and standard deviation. States \
                   without a finite minimiser of the action are not identifiable and not drawn."
        .to_string();
    render(
        "potential_histogram",
        TITLE,
        caption,
        &Histogram { values, missing },
    )
}

/// `bins` equal bins over `[lo, hi]` and their counts; `√n` bins clamped to 10–60.
pub(super) fn bin(values: &[f64]) -> (f64, f64, Vec<u64>) {
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5, lo + 0.5)
    };
    let bins = ((values.len() as f64).sqrt().ceil() as usize).clamp(10, 60);
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0u64; bins];
    for &v in values {
        counts[(((v - lo) / width) as usize).min(bins - 1)] += 1;
    }
    (lo, width, counts)
}

/// Mean and (maximum-likelihood) standard deviation.
fn moments(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

impl Plot for Histogram {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        if self.values.is_empty() {
            return empty(
                root,
                TITLE,
                &format!(
                    "no identifiable potential ({} states, none in a strongly connected component)",
                    grouped(self.missing)
                ),
            );
        }
        let (lo, width, counts) = bin(&self.values);
        let (mean, sd) = moments(&self.values);
        let n = self.values.len() as f64;
        let gauss = |v: f64| {
            n * width * (-(v - mean).powi(2) / (2.0 * sd * sd)).exp()
                / (sd * (2.0 * std::f64::consts::PI).sqrt())
        };
        let hi = lo + width * counts.len() as f64;
        let top = counts.iter().copied().max().unwrap_or(1) as f64;
        let peak = if sd > 0.0 { gauss(mean) } else { 0.0 };
        let mut chart = chart(
            root,
            TITLE,
            ("V", "states per bin"),
            (lo - width, hi + width),
            (0.0, 1.15 * top.max(peak)),
        )?;
        let fill = RGBColor(31, 119, 180).mix(0.55).filled();
        chart
            .draw_series(counts.iter().enumerate().map(|(i, &c)| {
                let x = lo + i as f64 * width;
                Rectangle::new([(x, 0.0), (x + width, c as f64)], fill)
            }))
            .map_err(fail)?;
        if sd > 0.0 {
            let steps = 200;
            chart
                .draw_series(LineSeries::new(
                    (0..=steps).map(|i| {
                        let v = lo - width + (hi - lo + 2.0 * width) * i as f64 / steps as f64;
                        (v, gauss(v))
                    }),
                    RGBColor(214, 39, 40).stroke_width(2),
                ))
                .map_err(fail)?;
        }
        let mut lines = vec![
            format!("N = {} identifiable states", grouped(self.values.len())),
            format!("Gaussian: μ = {mean:.3}, σ = {sd:.3}"),
        ];
        if self.missing > 0 {
            lines.push(format!(
                "{} not identifiable (not drawn)",
                grouped(self.missing)
            ));
        }
        text_box(root, &chart, Corner::TopRight, &lines)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::check;
    use super::*;

    #[test]
    fn bins_hold_every_value_and_the_fit_is_the_moments() {
        let values: Vec<f64> = (0..400).map(|i| ((i * 37) % 101) as f64 / 10.0).collect();
        let (lo, width, counts) = bin(&values);
        assert_eq!(counts.len(), 20);
        assert_eq!(lo, 0.0);
        assert!((width - 0.5).abs() < 1e-12);
        assert_eq!(counts.iter().sum::<u64>(), 400);
        let (mean, sd) = moments(&[1.0, 3.0]);
        assert_eq!((mean, sd), (2.0, 1.0));
        let figure = render("t", TITLE, String::new(), &Histogram { values, missing: 3 }).unwrap();
        check(&figure);
        assert!(
            figure
                .svg
                .contains("aria-label=\"N = 400 identifiable states\"")
        );
        assert!(figure.svg.contains("3 not identifiable (not drawn)"));
    }

    #[test]
    fn all_null_and_constant_potentials_draw() {
        let none = Histogram {
            values: vec![],
            missing: 5,
        };
        let figure = render("t", TITLE, String::new(), &none).unwrap();
        check(&figure);
        assert!(figure.svg.contains("no identifiable potential (5 states"));
        let constant = Histogram {
            values: vec![0.0; 4],
            missing: 0,
        };
        check(&render("t", TITLE, String::new(), &constant).unwrap());
    }
}
