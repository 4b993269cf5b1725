//! The two surfaces every figure is drawn on, with the bundled font (DejaVu Sans,
//! `assets/fonts/`), so text is readable on a machine without any system font:
//! - SVG: [`SvgRef`], a plotters backend that writes each text as the font's glyph outlines
//!   (`<path>`), not as `<text>`: a viewer needs no font at all. (An embedded `@font-face`
//!   would add the 740 kB font to every file.) Each such path has the text as its
//!   `aria-label`, for screen readers, search and tests.
//! - PNG: [`Raster`], plotters' bitmap backend with its text drawn from the same outlines,
//!   anti-aliased by ab_glyph at sub-pixel pen positions (plotters' own bitmap text rounds
//!   every glyph to a whole pixel and drops its side bearing, which reads unevenly).
//!
//! Both place text as plotters measures it (`layout_box`: advances and kerning of the font),
//! so the charts' layout is the same on both surfaces.

use crate::report::markup::escape;
use ab_glyph::{Font, FontRef, OutlineCurve, PxScale, ScaleFont};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use plotters::style::{FontStyle, FontTransform};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};
use std::fmt::Write;
use std::sync::{LazyLock, Once};

/// DejaVu Sans (Bitstream Vera licence, `assets/fonts/LICENSE-DejaVu.txt`).
const FONT_BYTES: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
/// The family every figure asks for; plotters' defaults use it too.
pub(super) const FAMILY: &str = "sans-serif";

static FONT: LazyLock<FontRef<'static>> =
    LazyLock::new(|| FontRef::try_from_slice(FONT_BYTES).expect("the bundled font parses"));

/// Registers the bundled font with plotters, which measures text with it (chart layout).
fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if plotters::style::register_font(FAMILY, FontStyle::Normal, FONT_BYTES).is_err() {
            panic!("the bundled font parses");
        }
    });
}

/// Draws with `draw` on a `width × height` SVG canvas and returns the document.
pub(super) fn svg(
    (width, height): (u32, u32),
    draw: impl FnOnce(DrawingArea<SvgRef<'_>, plotters::coord::Shift>) -> Result<(), String>,
) -> Result<String, String> {
    register_font();
    let mut canvas = SvgCanvas {
        size: (width, height),
        body: String::new(),
    };
    draw(SvgRef(&mut canvas).into_drawing_area())?;
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\">\n{}</svg>\n",
        canvas.body
    ))
}

/// Draws with `draw` on a `width × height` RGB bitmap and returns it encoded as PNG.
pub(super) fn png(
    (width, height): (u32, u32),
    draw: impl FnOnce(DrawingArea<Raster<'_>, plotters::coord::Shift>) -> Result<(), String>,
) -> Result<Vec<u8>, String> {
    register_font();
    let mut rgb = vec![255u8; width as usize * height as usize * 3];
    draw(Raster(BitMapBackend::with_buffer(&mut rgb, (width, height))).into_drawing_area())?;
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(&rgb).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

/// A mutable borrow of an [`SvgCanvas`], itself a backend (so the canvas outlives the drawing).
pub(super) struct SvgRef<'a>(&'a mut SvgCanvas);

/// SVG document body built by plotters' drawing calls.
struct SvgCanvas {
    size: (u32, u32),
    body: String,
}

/// `fill="#rrggbb"` (or `stroke`) with its opacity when not opaque.
/// `x1,y1 x2,y2 …`: the `points` attribute of a polyline or polygon.
fn svg_points(points: impl IntoIterator<Item = BackendCoord>) -> String {
    let points: Vec<String> = points
        .into_iter()
        .map(|(x, y)| format!("{x},{y}"))
        .collect();
    points.join(" ")
}

/// The paint attributes of a shape: filled with the style's colour, or outlined by it.
fn fill_or_outline<S: BackendStyle>(s: &S, fill: bool) -> String {
    if fill {
        paint("fill", s.color())
    } else {
        format!(
            "fill=\"none\" {} stroke-width=\"{}\"",
            paint("stroke", s.color()),
            s.stroke_width()
        )
    }
}

fn paint(kind: &str, c: BackendColor) -> String {
    let (r, g, b) = c.rgb;
    if c.alpha >= 1.0 {
        format!("{kind}=\"#{r:02x}{g:02x}{b:02x}\"")
    } else {
        format!(
            "{kind}=\"#{r:02x}{g:02x}{b:02x}\" {kind}-opacity=\"{:.3}\"",
            c.alpha
        )
    }
}

type Drawn = Result<(), DrawingErrorKind<std::fmt::Error>>;

impl DrawingBackend for SvgRef<'_> {
    type ErrorType = std::fmt::Error;

    fn get_size(&self) -> (u32, u32) {
        self.0.size
    }

    fn ensure_prepared(&mut self) -> Drawn {
        Ok(())
    }

    fn present(&mut self) -> Drawn {
        Ok(())
    }

    fn draw_pixel(&mut self, (x, y): BackendCoord, color: BackendColor) -> Drawn {
        if color.alpha == 0.0 {
            return Ok(());
        }
        let fill = paint("fill", color);
        writeln!(
            self.0.body,
            "<rect x=\"{x}\" y=\"{y}\" width=\"1\" height=\"1\" {fill}/>"
        )
        .map_err(DrawingErrorKind::DrawingError)
    }

    fn draw_line<S: BackendStyle>(&mut self, from: BackendCoord, to: BackendCoord, s: &S) -> Drawn {
        if s.color().alpha == 0.0 {
            return Ok(());
        }
        writeln!(
            self.0.body,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" {} stroke-width=\"{}\"/>",
            from.0,
            from.1,
            to.0,
            to.1,
            paint("stroke", s.color()),
            s.stroke_width()
        )
        .map_err(DrawingErrorKind::DrawingError)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        a: BackendCoord,
        b: BackendCoord,
        s: &S,
        fill: bool,
    ) -> Drawn {
        if s.color().alpha == 0.0 {
            return Ok(());
        }
        let paint = fill_or_outline(s, fill);
        writeln!(
            self.0.body,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" {paint}/>",
            a.0.min(b.0),
            a.1.min(b.1),
            (b.0 - a.0).abs(),
            (b.1 - a.1).abs()
        )
        .map_err(DrawingErrorKind::DrawingError)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        s: &S,
    ) -> Drawn {
        if s.color().alpha == 0.0 {
            return Ok(());
        }
        let points = svg_points(path);
        writeln!(
            self.0.body,
            "<polyline points=\"{points}\" fill=\"none\" {} stroke-width=\"{}\"/>",
            paint("stroke", s.color()),
            s.stroke_width()
        )
        .map_err(DrawingErrorKind::DrawingError)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        (x, y): BackendCoord,
        radius: u32,
        s: &S,
        fill: bool,
    ) -> Drawn {
        if s.color().alpha == 0.0 {
            return Ok(());
        }
        let paint = fill_or_outline(s, fill);
        writeln!(
            self.0.body,
            "<circle cx=\"{x}\" cy=\"{y}\" r=\"{radius}\" {paint}/>"
        )
        .map_err(DrawingErrorKind::DrawingError)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vertices: I,
        s: &S,
    ) -> Drawn {
        if s.color().alpha == 0.0 {
            return Ok(());
        }
        let points = svg_points(vertices);
        writeln!(
            self.0.body,
            "<polygon points=\"{points}\" {}/>",
            paint("fill", s.color())
        )
        .map_err(DrawingErrorKind::DrawingError)
    }

    /// The text as one path of glyph outlines.
    fn draw_text<T: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &T,
        pos: BackendCoord,
    ) -> Drawn {
        if style.color().alpha == 0.0 || text.is_empty() {
            return Ok(());
        }
        let p = placement(text, style)?;
        let [a, b, c, d] = p.rotation;
        let mut path = String::new();
        for (_, outline, (x, y)) in glyphs(text, p.size, p.origin) {
            outline_path(&mut path, &outline, p.size, (x, y));
        }
        writeln!(
            self.0.body,
            "<path aria-label=\"{}\" transform=\"matrix({a} {b} {c} {d} {} {})\" d=\"{path}\" {}/>",
            escape(text),
            pos.0,
            pos.1,
            paint("fill", style.color())
        )
        .map_err(DrawingErrorKind::DrawingError)
    }
}

/// Where a text goes relative to its anchor point: the pen's start on the baseline and the
/// rotation, as plotters' bitmap backend lays it out (box from `layout_box`, baseline half a
/// font size below its top).
struct Placement {
    size: f32,
    origin: (f32, f32),
    /// `[a, b, c, d]`: a text point `(x, y)` lands at `(a x + c y, b x + d y)` from the anchor.
    rotation: [i32; 4],
}

fn placement<T: BackendTextStyle, E: std::error::Error + Send + Sync>(
    text: &str,
    style: &T,
) -> Result<Placement, DrawingErrorKind<E>> {
    let ((x0, y0), (x1, y1)) = style
        .layout_box(text)
        .map_err(|e| DrawingErrorKind::FontError(Box::new(e)))?;
    let (w, h) = (x1 - x0, y1 - y0);
    let dx = match style.anchor().h_pos {
        HPos::Left => 0,
        HPos::Right => -w,
        HPos::Center => -w / 2,
    };
    let dy = match style.anchor().v_pos {
        VPos::Top => 0,
        VPos::Center => -h / 2,
        VPos::Bottom => -h,
    };
    let size = style.size() as f32;
    Ok(Placement {
        size,
        origin: (dx as f32, dy as f32 + size / 2.0),
        rotation: match style.transform() {
            FontTransform::None => [1, 0, 0, 1],
            FontTransform::Rotate90 => [0, 1, -1, 0],
            FontTransform::Rotate180 => [-1, 0, 0, -1],
            FontTransform::Rotate270 => [0, -1, 1, 0],
        },
    })
}

/// Each glyph of `text` at `size` px with its outline and pen position, starting at `origin`;
/// advances and kerning as plotters measures them.
fn glyphs(
    text: &str,
    size: f32,
    origin: (f32, f32),
) -> impl Iterator<Item = (ab_glyph::GlyphId, ab_glyph::Outline, (f32, f32))> {
    let font = FONT.as_scaled(PxScale::from(size));
    let mut pen = origin.0;
    let mut previous = None;
    text.chars().filter_map(move |ch| {
        let id = FONT.glyph_id(ch);
        if let Some(p) = previous {
            pen += font.kern(p, id);
        }
        let at = pen;
        pen += font.h_advance(id);
        previous = Some(id);
        FONT.outline(id).map(|o| (id, o, (at, origin.1)))
    })
}

/// Appends the SVG path data of one glyph `outline` at `size` px with its origin at `(x, y)`.
fn outline_path(d: &mut String, outline: &ab_glyph::Outline, size: f32, (x, y): (f32, f32)) {
    let font = FONT.as_scaled(PxScale::from(size));
    let (sx, sy) = (font.h_scale_factor(), font.v_scale_factor());
    let at = |p: ab_glyph::Point| (x + p.x * sx, y - p.y * sy);
    let mut end: Option<(f32, f32)> = None;
    for curve in &outline.curves {
        let (start, rest): (_, Vec<(f32, f32)>) = match *curve {
            OutlineCurve::Line(p, q) => (at(p), vec![at(q)]),
            OutlineCurve::Quad(p, q, r) => (at(p), vec![at(q), at(r)]),
            OutlineCurve::Cubic(p, q, r, s) => (at(p), vec![at(q), at(r), at(s)]),
        };
        if end.is_none_or(|e| (e.0 - start.0).abs() + (e.1 - start.1).abs() > 1e-3) {
            if end.is_some() {
                d.push('Z');
            }
            let _ = write!(d, "M{:.2} {:.2}", start.0, start.1);
        }
        d.push_str(["L", "Q", "C"][rest.len() - 1]);
        let coords: Vec<String> = rest.iter().map(|(x, y)| format!("{x:.2} {y:.2}")).collect();
        d.push_str(&coords.join(" "));
        end = rest.last().copied();
    }
    if end.is_some() {
        d.push('Z');
    }
}

/// plotters' bitmap backend with text drawn from the bundled font's outlines (module docs).
pub(super) struct Raster<'a>(BitMapBackend<'a>);

type RasterDrawn = Result<(), DrawingErrorKind<plotters_bitmap::BitMapBackendError>>;

impl DrawingBackend for Raster<'_> {
    type ErrorType = plotters_bitmap::BitMapBackendError;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }

    fn ensure_prepared(&mut self) -> RasterDrawn {
        self.0.ensure_prepared()
    }

    fn present(&mut self) -> RasterDrawn {
        self.0.present()
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> RasterDrawn {
        self.0.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        a: BackendCoord,
        b: BackendCoord,
        s: &S,
    ) -> RasterDrawn {
        self.0.draw_line(a, b, s)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        a: BackendCoord,
        b: BackendCoord,
        s: &S,
        fill: bool,
    ) -> RasterDrawn {
        self.0.draw_rect(a, b, s, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        s: &S,
    ) -> RasterDrawn {
        self.0.draw_path(path, s)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        s: &S,
        fill: bool,
    ) -> RasterDrawn {
        self.0.draw_circle(center, radius, s, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vertices: I,
        s: &S,
    ) -> RasterDrawn {
        self.0.fill_polygon(vertices, s)
    }

    fn blit_bitmap(&mut self, pos: BackendCoord, size: (u32, u32), src: &[u8]) -> RasterDrawn {
        self.0.blit_bitmap(pos, size, src)
    }

    /// Each glyph rasterised by ab_glyph at its exact pen position, coverage as alpha.
    fn draw_text<T: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &T,
        pos: BackendCoord,
    ) -> RasterDrawn {
        let colour = style.color();
        if colour.alpha == 0.0 || text.is_empty() {
            return Ok(());
        }
        let p = placement(text, style)?;
        let [a, b, c, d] = p.rotation;
        let mut pixels = Vec::new();
        for (id, _, (x, y)) in glyphs(text, p.size, p.origin) {
            let glyph = id.with_scale_and_position(p.size, ab_glyph::point(x, y));
            if let Some(outlined) = FONT.outline_glyph(glyph) {
                let min = outlined.px_bounds().min;
                outlined.draw(|gx, gy, coverage| {
                    let (lx, ly) = (min.x as i32 + gx as i32, min.y as i32 + gy as i32);
                    pixels.push((pos.0 + a * lx + c * ly, pos.1 + b * lx + d * ly, coverage));
                });
            }
        }
        for (x, y, coverage) in pixels {
            if coverage > 0.0 {
                self.0
                    .draw_pixel((x, y), colour.mix(f64::from(coverage.min(1.0))))?;
            }
        }
        Ok(())
    }
}
