//! `report.html`: one self-contained page, readable offline and without fonts or scripts: the
//! verdict in one sentence, the terminal summary, every figure (PNG, inline as a data URI; the
//! SVGs sit beside it in `figures/`), the top attractor states, the most significant cycles,
//! and the settings and provenance of `report.json`. CSS is inline; there is no JavaScript and
//! no external reference. Every string from the data (state names, paths) is escaped.

use super::atomic::write_atomic;
use super::figures::{self, Figure};
use super::markup::escape;
use super::{PIPED_WIDTH, Verdict, p_text, summary_at};
use crate::analyze::Analysis;
use crate::error::{Error, Result};
use crate::pipeline::Analyses;
use base64::Engine;
use serde_json::Value;
use std::fmt::Write;
use std::path::Path;

/// Rows of the attractor and cycle tables.
const LISTED: usize = 15;

const STYLE: &str = "body{font-family:'DejaVu Sans',Verdana,sans-serif;margin:2em auto;\
max-width:960px;color:#222;line-height:1.4}h1{font-size:1.6em}h2{margin-top:1.8em;\
border-bottom:1px solid #ccc}pre{background:#f6f6f6;padding:.8em;white-space:pre-wrap;\
overflow-wrap:anywhere;font-size:.85em}.verdict{font-size:1.2em;padding:.6em .9em;border-left:6px solid}\
.rejected{border-color:#d62728;background:#fdecea}.consistent{border-color:#2ca02c;\
background:#eaf6ea}figure{margin:1.5em 0}figure img{max-width:100%;height:auto;\
border:1px solid #ddd}figcaption{font-size:.9em;color:#444}table{border-collapse:collapse;\
font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}\
td.n{text-align:right;font-variant-numeric:tabular-nums}.note{font-size:.9em;color:#444}";

/// Renders every figure of `run` into `dir/figures/` (SVG and PNG) and writes
/// `dir/report.html`.
pub(crate) fn write_report(run: &Analyses, json: &Value, dir: &Path) -> Result<()> {
    let report = dir.join("report.html");
    let figures = figures::figures(run).map_err(|message| Error::Write {
        path: report.clone(),
        message,
    })?;
    let figure_dir = dir.join("figures");
    std::fs::create_dir_all(&figure_dir).map_err(|e| Error::Write {
        path: figure_dir.clone(),
        message: e.to_string(),
    })?;
    let write = |name: String, bytes: &[u8]| {
        write_atomic(&figure_dir.join(name), |mut f| {
            std::io::Write::write_all(&mut f, bytes).map_err(|e| e.to_string())
        })
    };
    for f in &figures {
        write(format!("{}.svg", f.name), f.svg.as_bytes())?;
        write(format!("{}.png", f.name), &f.png)?;
    }
    let html = report_html(run, json, &figures);
    write_atomic(&report, |mut f| {
        std::io::Write::write_all(&mut f, html.as_bytes()).map_err(|e| e.to_string())
    })
}

/// The page for `run` with its rendered `figures`.
pub(crate) fn report_html(run: &Analyses, json: &Value, figures: &[Figure]) -> String {
    let analysis = &run.pooled;
    let verdict = Verdict::of(analysis);
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>detbal report: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>Detailed balance report</h1>\n<p>{}</p>\n<p class=\"verdict {}\">{}</p>\n\
         <h2>Summary</h2>\n<pre>{}</pre>\n",
        escape(&analysis.input.paths.join(", ")),
        escape(&format!(
            "detbal {} on {}",
            env!("CARGO_PKG_VERSION"),
            analysis.input.paths.join(", ")
        )),
        match verdict.rejected {
            Some(true) => "rejected",
            Some(false) => "consistent",
            None => "untestable",
        },
        escape(&verdict.sentence),
        escape(&summary_at(run, PIPED_WIDTH)),
    );
    h.push_str("<h2>Figures</h2>\n");
    for f in figures {
        let _ = write!(
            h,
            "<figure id=\"{name}\">\n<img src=\"data:image/png;base64,{}\" width=\"{}\" \
             height=\"{}\" alt=\"{title}\">\n<figcaption><b>{title}.</b> {} \
             (<code>figures/{name}.svg</code>, <code>.png</code>)</figcaption>\n</figure>\n",
            base64::engine::general_purpose::STANDARD.encode(&f.png),
            super::figures::SIZE.0,
            super::figures::SIZE.1,
            escape(&f.caption),
            name = escape(&f.name),
            title = escape(&f.title),
        );
    }
    attractors(&mut h, analysis);
    cycles(&mut h, analysis);
    h.push_str("<h2>Settings and provenance</h2>\n<table>\n");
    for key in ["detbal_version", "input", "device", "settings", "timings"] {
        flatten(&mut h, key, &json[key]);
    }
    h.push_str("</table>\n</body>\n</html>\n");
    h
}

/// The most visited local minima of `V` (`stats::attractors`).
fn attractors(h: &mut String, a: &Analysis) {
    let _ = write!(
        h,
        "<h2>Attractor states</h2>\n<p>{} local minima of the potential (no observed downhill \
         way out); the {} most visited, with the depth of the barrier to leave.</p>\n",
        super::thousands(a.attractors.len() as u64),
        LISTED.min(a.attractors.len())
    );
    if a.attractors.is_empty() {
        return;
    }
    h.push_str(
        "<table>\n<tr><th>state</th><th>V</th><th>depth</th><th>visits</th>\
         <th>component</th></tr>\n",
    );
    for at in a.attractors.iter().take(LISTED) {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"n\">{:.3}</td><td class=\"n\">{:.3}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&at.name),
            at.potential,
            at.depth,
            super::thousands(at.visits),
            at.component
        );
    }
    h.push_str("</table>\n");
}

/// The triangles with the smallest per-cycle p-values.
fn cycles(h: &mut String, a: &Analysis) {
    let mut order: Vec<usize> = (0..a.triangles.len()).collect();
    order.sort_by(|&i, &j| {
        let (s, t) = (&a.triangles[i], &a.triangles[j]);
        s.p_value
            .total_cmp(&t.p_value)
            .then(t.z.abs().total_cmp(&s.z.abs()))
            .then(i.cmp(&j))
    });
    let _ = write!(
        h,
        "<h2>Most significant cycles</h2>\n<p>{} reciprocal triangles; the {} with the \
         smallest p-value of <i>z</i> = A/√(Σ 1/n). Affinity A = log of the product of counts \
         one way over the other; q: Benjamini–Hochberg.</p>\n",
        super::thousands(a.cycle_test.triangles as u64),
        LISTED.min(a.triangles.len())
    );
    if order.is_empty() {
        return;
    }
    h.push_str("<table>\n<tr><th>cycle</th><th>A</th><th>z</th><th>p</th><th>q</th></tr>\n");
    for &i in order.iter().take(LISTED) {
        let t = &a.triangles[i];
        let name = |k: usize| escape(&a.graph.names[t.states[k] as usize]);
        let _ = writeln!(
            h,
            "<tr><td>{} → {} → {} → {}</td><td class=\"n\">{:.3}</td><td class=\"n\">{:.2}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            name(0),
            name(1),
            name(2),
            name(0),
            t.affinity,
            t.z,
            escape(p_text(Some(t.p_value)).trim_start_matches("p = ")),
            t.q_value.map_or("–".into(), |q| format!("{q:.2e}")),
        );
    }
    h.push_str("</table>\n");
    if order
        .iter()
        .take(LISTED)
        .any(|&i| a.triangles[i].q_value.is_none())
    {
        let _ = writeln!(
            h,
            "<p class=\"note\">q = –: the triangle has an arc with fewer than {} transitions \
             (<code>--min-count</code>), so it did not enter the corrected set (the cycle-space \
             χ² and the Benjamini–Hochberg correction); its p-value describes it alone.</p>",
            a.cycle_test.min_count
        );
    }
}

/// One table row per leaf of `value`, keyed by its dotted path.
fn flatten(h: &mut String, key: &str, value: &Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                flatten(h, &format!("{key}.{k}"), v);
            }
        }
        Value::Array(items) if items.iter().any(|v| v.is_object()) => {
            for (i, v) in items.iter().enumerate() {
                flatten(h, &format!("{key}[{i}]"), v);
            }
        }
        leaf => {
            let text = match leaf {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let _ = writeln!(
                h,
                "<tr><th>{}</th><td>{}</td></tr>",
                escape(key),
                escape(&text)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert(\"x\" & 'y')</script>"),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
    }
}
