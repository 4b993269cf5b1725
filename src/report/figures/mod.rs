//! Figures of an analysis, each written as `figures/<name>.svg` and `figures/<name>.png` and
//! embedded in `report.html`:
//!
//! | name | what |
//! |---|---|
//! | `detailed_balance` | `β̂(V(f) − V(g))` against `log T(f→g)/T(g→f)` per pair, error bars, identity line, N, r, χ²/ndf |
//! | `loop_balance` | forward against backward log-transition sums per reciprocal triangle, error bars, flagged cycles in red |
//! | `potential_histogram` | identifiable potentials with the Gaussian of their mean and standard deviation |
//! | `landscape` | the most visited states placed by `V` (vertical), edges downhill green, uphill red, width ∝ `T` |
//! | `null_<test>` | each resampling test's null distribution with the observed value ([`null_distribution`]) |
//! | `group_correlation` | Pearson correlation of potentials between groups ([`correlation_heatmap`]) |
//!
//! Figures are functions of plain data (pairs, triangles, potentials, samples, matrices), drawn
//! by plotters on two surfaces ([`canvas`]): PNG, and SVG whose text is glyph outlines of the
//! bundled DejaVu Sans, so both read the same on a machine without fonts. Large data is thinned
//! for drawing only (a strided, deterministic subset of at most [`MAX_POINTS`] points or
//! [`MAX_NODES`] landscape states); every statistic printed on a figure is computed on all the
//! data, and a thinned figure says "showing k of N (thinned for drawing)".

mod canvas;
mod detailed_balance;
mod heatmap;
mod histogram;
mod landscape;
mod loops;
mod null_distribution;

pub use heatmap::correlation_heatmap;
pub use null_distribution::null_distribution;

use crate::analyze::Analysis;
use crate::pipeline::Analyses;
use canvas::FAMILY;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::fmt::Display;

/// Most points (pairs, triangles) drawn in one scatter plot.
pub const MAX_POINTS: usize = 5_000;
/// Most states drawn in the landscape.
pub const MAX_NODES: usize = 200;
/// Pixel size of every figure (SVG user units and PNG pixels alike).
pub const SIZE: (u32, u32) = (900, 640);

/// One rendered figure.
pub struct Figure {
    /// File stem under `figures/`.
    pub name: String,
    pub title: String,
    /// What is drawn, for the report (the figure itself carries its numbers).
    pub caption: String,
    pub svg: String,
    pub png: Vec<u8>,
}

/// A figure's drawing, the same on every plotters backend.
trait Plot {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

/// Renders `plot` as SVG and PNG.
fn render(
    name: &str,
    title: &str,
    caption: String,
    plot: &(impl Plot + Sync),
) -> Result<Figure, String> {
    let (svg, png) = rayon::join(
        || canvas::svg(SIZE, |root| on_white(&root, plot)),
        || canvas::png(SIZE, |root| on_white(&root, plot)),
    );
    Ok(Figure {
        name: name.to_string(),
        title: title.to_string(),
        caption,
        svg: svg?,
        png: png?,
    })
}

fn on_white<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    plot: &impl Plot,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(fail)?;
    plot.draw(root)?;
    root.present().map_err(fail)
}

/// Every figure of `run`, in report order: the four of the paper, one null distribution per
/// resampling test that ran, and with `--group-by` the groups' correlation heatmap.
pub fn figures(run: &Analyses) -> Result<Vec<Figure>, String> {
    let analysis = &run.pooled;
    let mut all = vec![
        detailed_balance::figure(analysis)?,
        loops::figure(analysis)?,
        histogram::figure(analysis)?,
        landscape::figure(analysis)?,
    ];
    for test in analysis.resampling.iter().flat_map(|r| &r.tests) {
        let title = format!("Null distribution, {} test", test.test.replace('_', " "));
        all.push(null_distribution(
            test.test,
            &test.null,
            test.observed,
            &title,
            test.statistic,
        )?);
    }
    if let Some(groups) = &run.groups {
        let (labels, matrix, shared) = groups.correlation_matrix();
        all.push(correlation_heatmap(&labels, &matrix, &shared)?);
    }
    Ok(all)
}

/// A plotters error as the message of a failed figure.
fn fail(e: impl Display) -> String {
    format!("drawing a figure: {e}")
}

/// At most `max` of `items`, evenly strided in their order (deterministic); all when fewer.
fn thin<T: Clone>(items: &[T], max: usize) -> Vec<T> {
    if items.len() <= max {
        return items.to_vec();
    }
    (0..max)
        .map(|i| items[i * items.len() / max].clone())
        .collect()
}

/// "showing k of N WHAT (thinned for drawing)" when `shown < total`.
fn thinning_note(shown: usize, total: usize, what: &str) -> Option<String> {
    (shown < total).then(|| {
        format!(
            "showing {} of {} {what} (thinned for drawing)",
            grouped(shown),
            grouped(total)
        )
    })
}

/// `12345` → `12,345`.
fn grouped(n: usize) -> String {
    super::thousands(n as u64)
}

/// `[lo, hi]` of the finite `values` with 5 % padding; `[-1, 1]` when there are none.
fn padded_range(values: impl IntoIterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return (-1.0, 1.0);
    }
    let pad = if hi > lo { 0.05 * (hi - lo) } else { 1.0 };
    (lo - pad, hi + pad)
}

fn text_style(size: u32) -> TextStyle<'static> {
    TextStyle::from((FAMILY, size).into_font()).color(&BLACK)
}

/// A chart with title, axis descriptions and mesh on `root`.
fn chart<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    x: (f64, f64),
    y: (f64, f64),
) -> Result<
    ChartContext<
        'a,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    String,
> {
    let mut chart = ChartBuilder::on(root)
        .caption(title, text_style(22))
        .margin(16)
        .x_label_area_size(56)
        .y_label_area_size(72)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)
        .map_err(fail)?;
    let (x_tick, y_tick) = (tick_format(x.1 - x.0), tick_format(y.1 - y.0));
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&x_tick)
        .y_label_formatter(&y_tick)
        .label_style(text_style(15))
        .axis_desc_style(text_style(17))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(fail)?;
    Ok(chart)
}

/// Tick labels with as many decimals as ticks about a tenth of `span` apart need (`35`, `2.5`,
/// `0.012`), and `0` for a rounded negative zero.
fn tick_format(span: f64) -> impl Fn(&f64) -> String {
    let step = span.abs() / 10.0;
    let decimals = if step > 0.0 && step.is_finite() {
        (-step.log10().floor()).clamp(0.0, 10.0) as usize
    } else {
        1
    };
    move |v: &f64| {
        let text = format!("{v:.decimals$}");
        if text
            .trim_start_matches('-')
            .chars()
            .all(|c| c == '0' || c == '.')
        {
            text.trim_start_matches('-').to_string()
        } else {
            text
        }
    }
}

/// Where a [`text_box`] sits in the plotting area.
#[derive(Clone, Copy)]
enum Corner {
    TopLeft,
    TopRight,
}

/// Lines of text in a framed white box in a corner of `chart`'s plotting area.
fn text_box<DB: DrawingBackend, X, Y>(
    root: &DrawingArea<DB, Shift>,
    chart: &ChartContext<'_, DB, Cartesian2d<X, Y>>,
    corner: Corner,
    lines: &[String],
) -> Result<(), String>
where
    X: plotters::coord::ranged1d::Ranged,
    Y: plotters::coord::ranged1d::Ranged,
{
    if lines.is_empty() {
        return Ok(());
    }
    let style = text_style(15);
    let mut width = 0;
    for line in lines {
        width = width.max(root.estimate_text_size(line, &style).map_err(fail)?.0 as i32);
    }
    let line_height = 20;
    let area = chart.plotting_area();
    let (x_range, y_range) = area.get_pixel_range();
    let (w, h) = (width + 14, lines.len() as i32 * line_height + 10);
    let left = match corner {
        Corner::TopLeft => x_range.start + 10,
        Corner::TopRight => x_range.end - 10 - w,
    };
    let top = y_range.start + 10;
    root.draw(&Rectangle::new(
        [(left, top), (left + w, top + h)],
        WHITE.mix(0.9).filled(),
    ))
    .map_err(fail)?;
    root.draw(&Rectangle::new(
        [(left, top), (left + w, top + h)],
        RGBColor(120, 120, 120).stroke_width(1),
    ))
    .map_err(fail)?;
    for (i, line) in lines.iter().enumerate() {
        root.draw(&Text::new(
            line.clone(),
            (left + 7, top + 6 + i as i32 * line_height),
            style.clone(),
        ))
        .map_err(fail)?;
    }
    Ok(())
}

/// A message in the middle of an empty figure ("no pairs to draw").
fn empty<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    message: &str,
) -> Result<(), String> {
    let (w, h) = root.dim_in_pixel();
    let centred = |size| {
        text_style(size).pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Center,
        ))
    };
    root.draw(&Text::new(
        title.to_string(),
        (w as i32 / 2, 30),
        centred(22),
    ))
    .map_err(fail)?;
    root.draw(&Text::new(
        message.to_string(),
        (w as i32 / 2, h as i32 / 2),
        centred(18),
    ))
    .map_err(fail)
}

/// A number with `digits` decimals, or "n/a".
fn num(x: Option<f64>, digits: usize) -> String {
    x.map_or("n/a".into(), |x| format!("{x:.digits$}"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Width and height from a PNG header, after checking the signature.
    pub fn png_size(png: &[u8]) -> (u32, u32) {
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
        let be = |i: usize| u32::from_be_bytes(png[i..i + 4].try_into().unwrap());
        (be(16), be(20))
    }

    /// Checks a rendered figure: a well-formed SVG and PNG of [`SIZE`], text as glyph paths,
    /// and not a blank image.
    pub fn check(figure: &Figure) {
        assert!(
            figure.svg.starts_with(
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"900\" height=\"640\""
            )
        );
        assert!(figure.svg.trim_end().ends_with("</svg>"));
        assert!(!figure.svg.contains("<text"), "text is drawn as outlines");
        assert!(figure.svg.contains("<path aria-label="), "some text");
        assert_eq!(png_size(&figure.png), SIZE);
        let decoder = png::Decoder::new(std::io::Cursor::new(&figure.png));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut buf).unwrap();
        assert!(buf.iter().any(|&b| b < 128), "dark pixels (text, axes)");
    }

    #[test]
    fn thinning_is_strided_deterministic_and_says_so() {
        let items: Vec<usize> = (0..10).collect();
        assert_eq!(thin(&items, 4), vec![0, 2, 5, 7]);
        assert_eq!(thin(&items, 20), items);
        assert_eq!(
            thinning_note(4, 12_345, "pairs").as_deref(),
            Some("showing 4 of 12,345 pairs (thinned for drawing)")
        );
        assert_eq!(thinning_note(10, 10, "pairs"), None);
    }

    #[test]
    fn tick_labels_have_the_decimals_their_spacing_needs() {
        assert_eq!(tick_format(40.0)(&35.0), "35");
        assert_eq!(tick_format(8.0)(&-2.0), "-2.0");
        assert_eq!(tick_format(0.05)(&0.012), "0.012");
        assert_eq!(tick_format(0.1)(&0.02), "0.02");
        assert_eq!(tick_format(8.0)(&-0.01), "0.0");
        assert_eq!(tick_format(0.0)(&1.0), "1.0");
    }

    #[test]
    fn ranges_pad_and_survive_degenerate_data() {
        assert_eq!(padded_range([0.0, 10.0]), (-0.5, 10.5));
        assert_eq!(padded_range([3.0]), (2.0, 4.0));
        assert_eq!(padded_range([f64::NAN]), (-1.0, 1.0));
        assert_eq!(padded_range(std::iter::empty()), (-1.0, 1.0));
    }
}
