//! The potential histogram: identifiable `V` (per-component centred) of the states seen more than
//! once, in the bins of [`crate::stats::distribution`], with its Gaussian fit. Drawn from all
//! values, never thinned; nothing is computed here.

use super::*;
use crate::stats::distribution::{Histogram as Bins, PotentialDistribution};
use std::f64::consts::PI;

struct Histogram {
    /// The computed distribution (`None`: fewer than two states to draw).
    distribution: Option<PotentialDistribution>,
    /// States not drawn (not identifiable, or seen once).
    missing: usize,
}

const TITLE: &str = "Potential distribution";

pub(super) fn figure(a: &Analysis) -> Result<Figure, String> {
    let drawn = a.potential_distribution.as_ref().map_or(0, |d| d.states);
    let caption = "Identifiable potentials V of the states seen more than once (centred to mean \
                   zero in each strongly connected component), with the Gaussian fitted to the \
                   histogram by least squares (report.json: potential_distribution). States \
                   without a finite minimiser of the action are not identifiable and not drawn."
        .to_string();
    let plot = Histogram {
        distribution: a.potential_distribution.clone(),
        missing: a.potential.value.len() - drawn,
    };
    render("potential_histogram", TITLE, caption, &plot)
}

/// The curve drawn: the histogram fit, or without one the moments' normal scaled to the counts.
fn curve(d: &PotentialDistribution) -> Option<(f64, f64, f64)> {
    match &d.histogram_fit {
        Some(h) => Some((h.amplitude, h.gaussian.mean, h.gaussian.sd)),
        None => {
            let m = &d.moments;
            let peak = d.states as f64 * d.histogram.width / (m.sd * (2.0 * PI).sqrt());
            (m.sd > 0.0).then_some((peak, m.mean, m.sd))
        }
    }
}

impl Plot for Histogram {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let Some(d) = &self.distribution else {
            return empty(
                root,
                TITLE,
                &format!(
                    "fewer than two identifiable states seen more than once ({} states)",
                    grouped(self.missing)
                ),
            );
        };
        let Bins {
            low: lo,
            width,
            counts,
        } = &d.histogram;
        let (lo, width) = (*lo, *width);
        let curve = curve(d);
        let gauss = |v: f64| {
            curve.map_or(0.0, |(a, mu, sd)| {
                a * (-(v - mu).powi(2) / (2.0 * sd * sd)).exp()
            })
        };
        let hi = lo + width * counts.len() as f64;
        let top = counts.iter().copied().max().unwrap_or(1) as f64;
        let peak = curve.map_or(0.0, |c| c.0);
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
        if curve.is_some() {
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
        let g = d.histogram_fit.as_ref().map_or(&d.moments, |h| &h.gaussian);
        let mut lines = vec![
            format!("N = {} states", grouped(d.states)),
            format!("Gaussian: μ = {:.3} ± {:.3}", g.mean, g.mean_se),
            format!("σ = {:.3} ± {:.3}", g.sd, g.sd_se),
        ];
        if self.missing > 0 {
            lines.push(format!("{} not drawn", grouped(self.missing)));
        }
        text_box(root, &chart, Corner::TopRight, &lines)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::check;
    use super::*;
    use crate::stats::distribution::{Gaussian, histogram};

    fn distribution(values: &[f64]) -> PotentialDistribution {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        PotentialDistribution {
            states: values.len(),
            moments: Gaussian {
                mean,
                mean_se: sd / n.sqrt(),
                sd,
                sd_se: sd / (2.0 * n).sqrt(),
            },
            histogram_fit: None,
            histogram: histogram(values),
        }
    }

    #[test]
    fn the_histogram_and_its_gaussian_draw_with_their_numbers() {
        let values: Vec<f64> = (0..400).map(|i| ((i * 37) % 101) as f64 / 10.0).collect();
        let plot = Histogram {
            distribution: Some(distribution(&values)),
            missing: 3,
        };
        let figure = render("t", TITLE, String::new(), &plot).unwrap();
        check(&figure);
        assert!(figure.svg.contains("aria-label=\"N = 400 states\""));
        assert!(figure.svg.contains("3 not drawn"));
    }

    #[test]
    fn no_and_constant_potentials_draw() {
        let none = Histogram {
            distribution: None,
            missing: 5,
        };
        let figure = render("t", TITLE, String::new(), &none).unwrap();
        check(&figure);
        assert!(figure.svg.contains("fewer than two identifiable states"));
        let constant = Histogram {
            distribution: Some(distribution(&[0.0; 4])),
            missing: 0,
        };
        check(&render("t", TITLE, String::new(), &constant).unwrap());
    }
}
