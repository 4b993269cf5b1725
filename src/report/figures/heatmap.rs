//! The per-group potential correlation heatmap: Pearson `r` of the potentials of every two
//! groups over the states they share, coloured from blue (−1) through white to red (+1), each
//! cell labelled with `r` and the number of shared states when it is large enough to read;
//! undefined correlations (fewer than two shared states, or no spread) are grey "n/a".

use super::*;
use plotters::style::FontTransform;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Most groups drawn (the first ones); the figure says when there are more.
const MAX_GROUPS: usize = 40;
/// Smallest cell, in pixels, that gets its numbers written in it.
const LABELLED_CELL: i32 = 44;

struct Heatmap<'a> {
    labels: &'a [String],
    matrix: &'a [Vec<Option<f64>>],
    shared: &'a [Vec<usize>],
}

const TITLE: &str = "Potential correlation between groups";

/// The figure `group_correlation`: `matrix[i][j]` is the Pearson correlation of the potentials
/// of groups `labels[i]` and `labels[j]` over their `shared[i][j]` common states (`None` when
/// undefined). Fails when the sizes disagree.
pub fn correlation_heatmap(
    labels: &[String],
    matrix: &[Vec<Option<f64>>],
    shared: &[Vec<usize>],
) -> Result<Figure, String> {
    let k = labels.len();
    if matrix.len() != k
        || shared.len() != k
        || matrix.iter().any(|row| row.len() != k)
        || shared.iter().any(|row| row.len() != k)
    {
        return Err(format!(
            "correlation heatmap: {k} labels need a {k} × {k} matrix and shared-state counts"
        ));
    }
    let caption = "Pearson correlation of the fitted potentials of every two groups over the \
                   states identifiable in both, in the largest component of each (number in brackets); a potential that transcends \
                   groups gives red (r near 1) everywhere."
        .to_string();
    render(
        "group_correlation",
        TITLE,
        caption,
        &Heatmap {
            labels,
            matrix,
            shared,
        },
    )
}

/// Diverging blue–white–red colour of `r ∈ [−1, 1]`.
fn colour(r: f64) -> RGBColor {
    let t = r.clamp(-1.0, 1.0);
    let (end, s) = if t < 0.0 {
        ((33.0, 102.0, 172.0), -t)
    } else {
        ((178.0, 24.0, 43.0), t)
    };
    let mix = |e: f64| (255.0 + (e - 255.0) * s).round() as u8;
    RGBColor(mix(end.0), mix(end.1), mix(end.2))
}

/// Where the grid lies, in pixels.
struct Grid {
    /// Groups drawn.
    k: usize,
    /// Left and top edges of the grid.
    left: i32,
    top: i32,
    /// The grid's side and one cell's.
    side: i32,
    cell: i32,
    /// Font size of the numbers in a cell.
    number_size: u32,
}

impl Heatmap<'_> {
    /// The grid of the first `k` groups, with room for their longest label left of the rows and
    /// above the columns.
    fn grid<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        k: usize,
    ) -> Result<Grid, String> {
        let mut label_width = 0;
        for label in &self.labels[..k] {
            let size = root.estimate_text_size(&super::landscape::short(label), &text_style(13));
            label_width = label_width.max(size.map_err(fail)?.0 as i32);
        }
        let (left, top) = (30 + label_width, 80 + label_width);
        let side = (900 - left - 150).min(640 - top - 20);
        let cell = side / k as i32;
        Ok(Grid {
            k,
            // Centre the grid and its colour scale when the labels leave room.
            left: left.max((900 - side - 110) / 2),
            top,
            side,
            cell,
            number_size: (cell / 4).clamp(11, 18) as u32,
        })
    }

    /// Group `i`'s label left of its row and above its column.
    fn axis_labels<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        g: &Grid,
        i: usize,
    ) -> Result<(), String> {
        let label = super::landscape::short(&self.labels[i]);
        let row_y = g.top + i as i32 * g.cell + g.cell / 2;
        let right = Pos::new(HPos::Right, VPos::Center);
        root.draw(&Text::new(
            label.clone(),
            (g.left - 8, row_y),
            text_style(13).pos(right),
        ))
        .map_err(fail)?;
        let col_x = g.left + i as i32 * g.cell + g.cell / 2;
        let up = text_style(13)
            .pos(Pos::new(HPos::Left, VPos::Center))
            .transform(FontTransform::Rotate270);
        root.draw(&Text::new(label, (col_x, g.top - 8), up))
            .map_err(fail)
    }

    /// Cell `(i, j)`: its colour and, when it is large enough, `r` and the shared states.
    fn cell<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        g: &Grid,
        (i, j): (usize, usize),
    ) -> Result<(), String> {
        let cell = g.cell;
        let (x, y) = (g.left + j as i32 * cell, g.top + i as i32 * cell);
        let r = self.matrix[i][j].filter(|r| r.is_finite());
        let fill = r.map_or(RGBColor(200, 200, 200), colour);
        root.draw(&Rectangle::new(
            [(x, y), (x + cell, y + cell)],
            fill.filled(),
        ))
        .map_err(fail)?;
        root.draw(&Rectangle::new(
            [(x, y), (x + cell, y + cell)],
            WHITE.stroke_width(1),
        ))
        .map_err(fail)?;
        if cell < LABELLED_CELL {
            return Ok(());
        }
        let ink = if r.is_some_and(|r| r.abs() > 0.6) {
            WHITE
        } else {
            BLACK
        };
        let centred = Pos::new(HPos::Center, VPos::Center);
        let style = text_style(g.number_size).pos(centred).color(&ink);
        let (cx, cy, gap) = (x + cell / 2, y + cell / 2, g.number_size as i32 * 2 / 3);
        root.draw(&Text::new(num(r, 2), (cx, cy - gap), style.clone()))
            .map_err(fail)?;
        let n = format!("({})", grouped(self.shared[i][j]));
        root.draw(&Text::new(n, (cx, cy + gap), style))
            .map_err(fail)
    }
}

/// The colour scale right of the grid, from +1 at the top to −1 at the bottom.
fn colour_scale<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, g: &Grid) -> Result<(), String> {
    let (top, side) = (g.top, g.side);
    let (bar_x, steps) = (g.left + side + 40, 40);
    for s in 0..steps {
        let r = 1.0 - 2.0 * s as f64 / (steps - 1) as f64;
        let y = top + s * side / steps;
        root.draw(&Rectangle::new(
            [(bar_x, y), (bar_x + 22, top + (s + 1) * side / steps)],
            colour(r).filled(),
        ))
        .map_err(fail)?;
    }
    let left_mid = Pos::new(HPos::Left, VPos::Center);
    for (r, y) in [("+1", top), ("0", top + side / 2), ("−1", top + side)] {
        root.draw(&Text::new(
            format!("r = {r}"),
            (bar_x + 28, y),
            text_style(13).pos(left_mid),
        ))
        .map_err(fail)?;
    }
    Ok(())
}

impl Plot for Heatmap<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        if self.labels.is_empty() {
            return empty(root, TITLE, "no groups to compare");
        }
        let centred = Pos::new(HPos::Center, VPos::Center);
        root.draw(&Text::new(TITLE, (450, 26), text_style(22).pos(centred)))
            .map_err(fail)?;
        root.draw(&Text::new(
            "each cell: Pearson r (states shared by the two groups)",
            (450, 54),
            text_style(14).pos(centred),
        ))
        .map_err(fail)?;
        let g = self.grid(root, self.labels.len().min(MAX_GROUPS))?;
        for i in 0..g.k {
            self.axis_labels(root, &g, i)?;
            for j in 0..g.k {
                self.cell(root, &g, (i, j))?;
            }
        }
        colour_scale(root, &g)?;
        if let Some(note) = thinning_note(g.k, self.labels.len(), "groups") {
            root.draw(&Text::new(note, (20, 620), text_style(14)))
                .map_err(fail)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::check;
    use super::*;

    #[test]
    fn colours_run_blue_white_red() {
        assert_eq!(colour(0.0), RGBColor(255, 255, 255));
        assert_eq!(colour(1.0), RGBColor(178, 24, 43));
        assert_eq!(colour(-1.0), RGBColor(33, 102, 172));
        assert_eq!(colour(7.0), colour(1.0));
    }

    #[test]
    fn draws_values_counts_and_undefined_cells() {
        let labels: Vec<String> = ["gpt <4o>", "claude & co", "llama"]
            .map(String::from)
            .to_vec();
        let matrix = vec![
            vec![Some(1.0), Some(0.91), None],
            vec![Some(0.91), Some(1.0), Some(-0.2)],
            vec![None, Some(-0.2), Some(1.0)],
        ];
        let shared = vec![vec![120, 80, 1], vec![80, 95, 40], vec![1, 40, 60]];
        let figure = correlation_heatmap(&labels, &matrix, &shared).unwrap();
        check(&figure);
        for text in [
            "0.91",
            "(80)",
            "n/a",
            "-0.20",
            "gpt &lt;4o&gt;",
            "claude &amp; co",
        ] {
            assert!(
                figure.svg.contains(&format!("aria-label=\"{text}\"")),
                "{text}"
            );
        }
        assert!(
            figure.svg.contains("matrix(0 -1 1 0 "),
            "rotated column labels"
        );
        assert!(correlation_heatmap(&labels, &matrix[..2], &shared).is_err());
    }

    #[test]
    fn many_or_no_groups() {
        let k = 50;
        let labels: Vec<String> = (0..k).map(|i| format!("g{i}")).collect();
        let matrix = vec![vec![Some(0.5); k]; k];
        let shared = vec![vec![3; k]; k];
        let figure = correlation_heatmap(&labels, &matrix, &shared).unwrap();
        check(&figure);
        assert!(
            figure
                .svg
                .contains("showing 40 of 50 groups (thinned for drawing)")
        );
        check(&correlation_heatmap(&[], &[], &[]).unwrap());
    }
}
