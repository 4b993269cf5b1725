//! A resampling test's null distribution: a histogram of the statistic over the null samples
//! (all of them; histograms are never thinned) with the observed value as a vertical line, and
//! how many samples reach it.

use super::*;
use crate::stats::distribution::histogram;

struct Null<'a> {
    samples: &'a [f64],
    observed: f64,
    title: &'a str,
    statistic: &'a str,
}

/// The figure `null_<name>` of `samples` (non-finite ones are left out and counted) and the
/// `observed` value of `statistic` (the axis label), titled `title`.
pub fn null_distribution(
    name: &str,
    samples: &[f64],
    observed: f64,
    title: &str,
    statistic: &str,
) -> Result<Figure, String> {
    let caption = format!(
        "Distribution of {statistic} over the resampled null datasets (histogram) and its \
         value on the data (red line). The share of null samples at or above the observed \
         value is the resampling p-value's numerator."
    );
    render(
        &format!("null_{name}"),
        title,
        caption,
        &Null {
            samples,
            observed,
            title,
            statistic,
        },
    )
}

/// Finite samples, and how many of them are `≥ observed`.
fn exceeding(samples: &[f64], observed: f64) -> (Vec<f64>, usize) {
    let finite: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
    let above = finite.iter().filter(|&&v| v >= observed).count();
    (finite, above)
}

impl Plot for Null<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let (finite, above) = exceeding(self.samples, self.observed);
        if finite.is_empty() {
            return empty(root, self.title, "no finite null sample to draw");
        }
        let bins = histogram(&finite);
        let (lo, width, counts) = (bins.low, bins.width, bins.counts);
        let hi = lo + width * counts.len() as f64;
        let x = padded_range([lo, hi, self.observed]);
        let top = counts.iter().copied().max().unwrap_or(1) as f64;
        let mut chart = chart(
            root,
            self.title,
            (self.statistic, "null samples per bin"),
            x,
            (0.0, 1.35 * top),
        )?;
        let fill = RGBColor(120, 120, 120).mix(0.55).filled();
        chart
            .draw_series(counts.iter().enumerate().map(|(i, &c)| {
                let x = lo + i as f64 * width;
                Rectangle::new([(x, 0.0), (x + width, c as f64)], fill)
            }))
            .map_err(fail)?;
        if self.observed.is_finite() {
            chart
                .draw_series(LineSeries::new(
                    [(self.observed, 0.0), (self.observed, 1.35 * top)],
                    RGBColor(214, 39, 40).stroke_width(3),
                ))
                .map_err(fail)?;
        }
        let mut lines = vec![
            format!("observed = {:.4}", self.observed),
            format!(
                "{} of {} null samples ≥ observed",
                grouped(above),
                grouped(finite.len())
            ),
        ];
        if finite.len() < self.samples.len() {
            lines.push(format!(
                "{} non-finite samples left out",
                grouped(self.samples.len() - finite.len())
            ));
        }
        // The box on the side away from the observed line.
        let corner = if self.observed > (x.0 + x.1) / 2.0 {
            Corner::TopLeft
        } else {
            Corner::TopRight
        };
        text_box(root, &chart, corner, &lines)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::check;
    use super::*;

    #[test]
    fn marks_the_observed_value_and_counts_the_samples_reaching_it() {
        let samples: Vec<f64> = (0..1000).map(|i| (i % 100) as f64 / 10.0).collect();
        assert_eq!(exceeding(&samples, 9.0).1, 100);
        let figure = null_distribution(
            "pairs",
            &samples,
            9.0,
            "Pairwise χ², permutation null",
            "χ²",
        )
        .unwrap();
        assert_eq!(figure.name, "null_pairs");
        check(&figure);
        assert!(
            figure
                .svg
                .contains("aria-label=\"100 of 1,000 null samples ≥ observed\"")
        );
        assert!(figure.svg.contains("aria-label=\"observed = 9.0000\""));
        // The observed value far outside the null still lies inside the axis.
        let far = null_distribution("far", &samples, 250.0, "t", "χ²").unwrap();
        assert!(far.svg.contains("0 of 1,000 null samples"));
    }

    #[test]
    fn empty_and_non_finite_samples_draw() {
        check(&null_distribution("e", &[], 1.0, "t", "χ²").unwrap());
        let figure = null_distribution("n", &[1.0, f64::NAN, 2.0], f64::NAN, "t", "χ²").unwrap();
        check(&figure);
        assert!(figure.svg.contains("1 non-finite samples left out"));
    }
}
