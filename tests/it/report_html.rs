//! `report.html` and the figures, end to end: `detbal analyze` on the bundled sample and on the
//! reference parity fixture, then headless Chromium opens each report, which must log no
//! console message at all (the page has no script, so any message is the browser complaining),
//! and show every figure (an injected check reports each `<img>` loaded, decoded, 900 × 640
//! and laid out); its screenshot and the figures are kept under `target/ci-artifacts/` as CI
//! artefacts. Negative controls show both checks catch what they look for. Without Chromium
//! the browser tests say SKIP, or fail when `REQUIRE_CHROMIUM=1` (as `.ci/run` sets).

use crate::support::{self, fixture, sample, text};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The figures of every report; each resampling test adds its `null_<test>`.
const FIGURES: [&str; 4] = [
    "detailed_balance",
    "loop_balance",
    "potential_histogram",
    "landscape",
];

/// `target/ci-artifacts/NAME`.
fn artefacts_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("ci-artifacts")
        .join(name)
}

/// `target/ci-artifacts/NAME`, emptied.
fn artefacts(name: &str) -> PathBuf {
    let dir = artefacts_dir(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `detbal analyze INPUT ARGS -o DIR/out` and returns the output directory.
fn analyze(input: &Path, args: &[&str], dir: &Path) -> PathBuf {
    let out = dir.join("out");
    let run = support::analyze(&[input], &out, args);
    assert!(run.status.success(), "{}", text(&run.stderr));
    out
}

/// Width and height from a PNG header, after checking the signature.
fn png_size(path: &Path) -> (u32, u32) {
    let png = std::fs::read(path).unwrap();
    assert_eq!(
        &png[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is a PNG",
        path.display()
    );
    let be = |i: usize| u32::from_be_bytes(png[i..i + 4].try_into().unwrap());
    (be(16), be(20))
}

/// Checks the written figures and report without a browser; returns the figures' names.
fn check_files(out: &Path) -> Vec<String> {
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let names: Vec<String> = html
        .split("<figure id=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_string())
        .collect();
    for name in FIGURES {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
    let files = std::fs::read_dir(out.join("figures")).unwrap().count();
    assert_eq!(files, 2 * names.len(), "an SVG and a PNG per figure");
    for name in &names {
        let svg = std::fs::read_to_string(out.join(format!("figures/{name}.svg"))).unwrap();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"900\""));
        assert!(svg.contains("aria-label="), "{name}: text drawn");
        assert_eq!(
            png_size(&out.join(format!("figures/{name}.png"))),
            (900, 640)
        );
    }
    assert!(!html.contains("<script"), "no script");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no network"
    );
    let json = support::report(out);
    let verdict = json["verdict"]["sentence"].as_str().unwrap();
    let escaped = verdict.replace('<', "&lt;").replace('>', "&gt;");
    assert!(html.contains(&escaped), "the verdict sentence");
    // The summary box: the terminal's text at 100 columns, wrapped by the page too (no
    // horizontal scrolling).
    let summary = html
        .split("<h2>Summary</h2>\n<pre>")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .expect("the summary box");
    assert!(summary.contains("\nVerdict    "), "{summary}");
    for line in summary.lines() {
        let shown = line
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
            .replace("&quot;", "\"")
            .replace("&#39;", "'");
        assert!(shown.chars().count() <= 100, "{line}");
    }
    assert!(html.contains("white-space:pre-wrap"), "the box wraps");
    // A cycle row without a q-value says why.
    let cycles = html
        .split("<h2>Most significant cycles</h2>")
        .nth(1)
        .unwrap();
    let cycles = cycles.split("<h2>").next().unwrap();
    if cycles.contains("<td class=\"n\">–</td>") {
        assert!(
            cycles.contains("did not enter the corrected set"),
            "{cycles}"
        );
    }
    names
}

/// Rows `<tr><td>FIRST CELL</td>…` of the table in the report section titled `heading`.
fn first_cells<'a>(html: &'a str, heading: &str) -> Vec<&'a str> {
    let section = html
        .split(&format!("<h2>{heading}</h2>"))
        .nth(1)
        .unwrap_or_else(|| panic!("section {heading}"));
    let section = section.split("<h2>").next().unwrap();
    section
        .split("<tr><td>")
        .skip(1)
        .map(|row| row.split("</td>").next().unwrap())
        .collect()
}

/// The attractor and cycle tables against report.json (state names without markup).
fn check_tables(out: &Path) {
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let json = support::report(out);
    let attractors = &json["attractors"];
    let count = attractors["count"].as_u64().unwrap();
    assert!(
        count < 1000,
        "the expected text below has no thousands separator"
    );
    assert!(html.contains(&format!("<p>{count} local minima of the potential")));
    let expected: Vec<&str> = attractors["listed"]
        .as_array()
        .unwrap()
        .iter()
        .take(15)
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(first_cells(&html, "Attractor states"), expected);
    let triangles = json["cycles"]["triangles"].as_u64().unwrap();
    let cycles = first_cells(&html, "Most significant cycles");
    assert_eq!(cycles.len() as u64, triangles.min(15));
    for cycle in cycles {
        let states: Vec<&str> = cycle.split(" → ").collect();
        assert_eq!((states.len(), states[0]), (4, states[3]), "{cycle}");
    }
}

/// The Chromium binary, or `None` after a SKIP line (a failure with `REQUIRE_CHROMIUM=1`).
fn chromium(test: &str) -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join(name))
                    .find(|p| p.is_file())
            })
        });
    match found {
        Some(path) => Some(path),
        None if std::env::var("REQUIRE_CHROMIUM").as_deref() == Ok("1") => {
            panic!("REQUIRE_CHROMIUM=1 but no chromium on PATH")
        }
        None => {
            eprintln!("SKIP {test}: no chromium on PATH (apt-get install chromium)");
            None
        }
    }
}

/// Runs headless Chromium on `page` with `args` (own profile under `scratch`); returns
/// (stdout, stderr).
fn run_chromium(browser: &Path, scratch: &Path, page: &Path, args: &[&str]) -> (String, String) {
    let profile = tempfile::tempdir_in(scratch).unwrap();
    let out = Command::new("timeout")
        .arg("120")
        .arg(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.canonicalize().unwrap().display()))
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .expect("chromium runs");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "chromium failed:\n{stderr}");
    (stdout, stderr)
}

/// Console messages Chromium logged for the page (`…:CONSOLE…` lines of its log).
fn console_messages(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

/// Screenshot of `page`, `height` pixels tall, to `png`; returns the console messages logged
/// meanwhile.
fn screenshot(browser: &Path, scratch: &Path, page: &Path, png: &Path, height: u32) -> Vec<String> {
    let (_, stderr) = run_chromium(
        browser,
        scratch,
        page,
        &[
            &format!("--screenshot={}", png.display()),
            &format!("--window-size=1280,{height}"),
        ],
    );
    console_messages(&stderr)
        .into_iter()
        .map(String::from)
        .collect()
}

/// Window height that shows a whole report with `figures` figures (about 760 px each, the
/// rest for the summary and the tables).
fn page_height(figures: usize) -> u32 {
    3000 + 760 * figures as u32
}

/// Script appended to a copy of the page: after load, one line per image that is not
/// complete, decoded to 900 × 640 and laid out with a non-empty box, then the image count.
const VISIBILITY_CHECK: &str = r#"<script>
addEventListener("load", () => {
  const imgs = [...document.images];
  const bad = imgs.filter(i => {
    const box = i.getBoundingClientRect(), style = getComputedStyle(i);
    return !(i.complete && i.naturalWidth === 900 && i.naturalHeight === 640
      && box.width > 0 && box.height > 0 && style.display !== "none"
      && style.visibility === "visible" && Number(style.opacity) > 0);
  });
  const out = document.createElement("pre");
  out.id = "detbal-check";
  out.textContent = "images " + imgs.length + " not shown [" + bad.map(i => i.alt).join("|") + "]";
  document.body.appendChild(out);
});
</script>"#;

/// `(images, alt texts of those not shown)` of `page`, from the check in a copy of it.
fn figure_visibility(browser: &Path, scratch: &Path, page: &Path) -> (usize, String) {
    let html = std::fs::read_to_string(page).unwrap();
    let copy = scratch.join("visibility-check.html");
    let checked = html.replacen("</body>", &format!("{VISIBILITY_CHECK}</body>"), 1);
    std::fs::write(&copy, checked).unwrap();
    let (dom, _) = run_chromium(browser, scratch, &copy, &["--dump-dom"]);
    let _ = std::fs::remove_file(&copy);
    let line = dom
        .lines()
        .find_map(|l| l.split("<pre id=\"detbal-check\">images ").nth(1))
        .unwrap_or_else(|| panic!("the check ran:\n{dom}"));
    let (count, rest) = line.split_once(" not shown [").unwrap();
    let bad = rest.split_once("]</pre>").unwrap().0;
    (count.parse().unwrap(), bad.to_string())
}

/// Analyses `input`, checks the outputs, and checks the report in Chromium; keeps the figures
/// and the screenshot in `target/ci-artifacts/NAME`.
fn report_renders(name: &str, input: &Path, args: &[&str]) -> Vec<String> {
    let dir = artefacts(name);
    let out = analyze(input, args, &dir);
    let figures = check_files(&out);
    check_tables(&out);
    let Some(browser) = chromium(name) else {
        return figures;
    };
    let png = dir.join("report-screenshot.png");
    let height = page_height(figures.len());
    let messages = screenshot(&browser, &dir, &out.join("report.html"), &png, height);
    assert!(messages.is_empty(), "console messages: {messages:#?}");
    assert_eq!(png_size(&png), (1280, height));
    let (images, not_shown) = figure_visibility(&browser, &dir, &out.join("report.html"));
    assert_eq!((images, not_shown.as_str()), (figures.len(), ""));
    figures
}

#[test]
fn sample_report_renders_in_chromium() {
    let figures = report_renders("sample", &sample(), &["--permutations", "2000"]);
    assert!(
        figures.iter().any(|f| f.starts_with("null_")),
        "null distributions of the resampling tests: {figures:?}"
    );
}

#[test]
fn paper_parity_report_renders_in_chromium() {
    let fixture = fixture("paper_parity/parity_driven.parquet");
    report_renders("paper_parity", &fixture, &["--paper"]);
}

/// With `--group-by`, the report adds the correlation heatmap of the groups' potentials.
#[test]
fn grouped_report_shows_the_group_correlation_heatmap() {
    let raw = fixture("partitioned/raw.parquet");
    let figures = report_renders("grouped", &raw, &["--group-by", "group"]);
    assert!(
        figures.iter().any(|f| f == "group_correlation"),
        "{figures:?}"
    );
}

/// State names are markup-free text in the report, whatever they contain.
#[test]
fn hostile_state_names_are_escaped() {
    let dir = artefacts("hostile_names");
    let csv = dir.join("hostile.csv");
    let names = [
        "<script>console.error(1)</script>",
        "\"><img src=x onerror=alert(1)>",
        "a & b",
    ];
    let mut rows = String::from("source,target,count\n");
    for (i, a) in names.iter().enumerate() {
        for (j, b) in names.iter().enumerate() {
            if i != j {
                let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
                rows += &format!("{},{},{}\n", quote(a), quote(b), 5 + i + 2 * j);
            }
        }
    }
    std::fs::write(&csv, rows).unwrap();
    let out = analyze(&csv, &[], &dir);
    let figures = check_files(&out);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(!html.contains("<script"), "no raw script tag");
    assert!(!html.contains("<img src=x"), "no raw img tag");
    assert!(html.contains("&lt;script&gt;console.error(1)&lt;/script&gt;"));
    let Some(browser) = chromium("hostile_state_names_are_escaped") else {
        return;
    };
    let png = dir.join("report-screenshot.png");
    let height = page_height(figures.len());
    let messages = screenshot(&browser, &dir, &out.join("report.html"), &png, height);
    assert!(messages.is_empty(), "console messages: {messages:#?}");
    let (images, not_shown) = figure_visibility(&browser, &dir, &out.join("report.html"));
    assert_eq!((images, not_shown.as_str()), (figures.len(), ""));
}

/// The two browser checks catch a console error and a broken image.
#[test]
fn the_browser_checks_catch_errors_and_broken_figures() {
    let Some(browser) = chromium("the_browser_checks_catch_errors_and_broken_figures") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("bad.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>bad</title></head><body>\
         <img alt=\"missing\" src=\"missing.png\" width=\"900\" height=\"640\">\
         <script>console.error(\"planted error\")</script></body></html>",
    )
    .unwrap();
    let png = dir.path().join("bad.png");
    let messages = screenshot(&browser, dir.path(), &page, &png, 800);
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert!(messages[0].contains("planted error"));
    assert_eq!(
        figure_visibility(&browser, dir.path(), &page),
        (1, "missing".to_string())
    );
}

/// With `--state-score`, the landscape places every state at its score (the SVG's circles lie on
/// one increasing affine map of the scores), labels the axis as the score, and draws exactly the
/// arcs with `T ≥ 0.05` (the paper's layout); the report renders in Chromium. Without scores,
/// the axis is log10 of the visits.
#[test]
fn a_log_with_scores_draws_the_papers_landscape() {
    let dir = artefacts("scored_landscape_input");
    let (log, scores) = (dir.join("log.csv"), dir.join("scores.csv"));
    // Ten states on a ladder (i ⇄ i+1, i ⇄ i+3), some arcs rare beside long stays.
    let mut arcs: Vec<(usize, usize, u64)> = Vec::new();
    for i in 0..10 {
        for j in [i + 1, i + 3].into_iter().filter(|&j| j < 10) {
            arcs.push((i, j, 1 + (7 * i as u64 + 3 * j as u64) % 29));
            arcs.push((j, i, 1 + (5 * i as u64 + 11 * j as u64) % 31));
        }
        arcs.push((i, i, 5 * i as u64));
    }
    let rows: String = arcs
        .iter()
        .filter(|a| a.2 > 0)
        .map(|(f, g, n)| format!("s{f},s{g},{n}\n"))
        .collect();
    std::fs::write(&log, format!("source,target,count\n{rows}")).unwrap();
    let score = |s: usize| -3.0 + 0.7 * s as f64 + 0.05 * (s * s) as f64;
    let lines: String = (0..10).map(|s| format!("s{s},{}\n", score(s))).collect();
    std::fs::write(&scores, format!("state,score\n{lines}")).unwrap();
    let mut out_count = [0u64; 10];
    arcs.iter().for_each(|&(f, _, n)| out_count[f] += n);
    let qualified = (arcs.iter())
        .filter(|&&(f, g, n)| f != g && n as f64 / out_count[f] as f64 >= 0.05)
        .count();
    assert!(
        qualified < arcs.len() - 10,
        "the cut at T = 0.05 drops some arcs"
    );

    let scores = scores.to_str().unwrap();
    report_renders("scored_landscape", &log, &["--state-score", scores]);
    let out = artefacts_dir("scored_landscape").join("out");
    let svg = std::fs::read_to_string(out.join("figures/landscape.svg")).unwrap();
    assert!(svg.contains("aria-label=\"score (--state-score)\""));
    let legend = format!("aria-label=\"10 states, {qualified} arcs (T ≥ 0.05)");
    assert!(svg.contains(&legend), "{legend}");
    let arcs_drawn = ["stroke=\"#2ca02c\"", "stroke=\"#d62728\""]
        .iter()
        .map(|colour| svg.matches(colour).count())
        .sum::<usize>();
    assert_eq!(arcs_drawn, qualified);
    // Circles and name labels come in the same order (most visited first).
    let attribute = |tag: &str, name: &str| -> Vec<String> {
        svg.split(tag)
            .skip(1)
            .map(|rest| rest.split(&format!("{name}=\"")).nth(1).unwrap())
            .map(|rest| rest.split('"').next().unwrap().to_owned())
            .collect()
    };
    let cx: Vec<f64> = (attribute("<circle", "cx").iter())
        .map(|x| x.parse().unwrap())
        .collect();
    let named: Vec<f64> = (attribute("<path aria-label", "").iter())
        .filter_map(|label| label.strip_prefix('s')?.parse::<usize>().ok())
        .map(score)
        .collect();
    assert_eq!((cx.len(), named.len()), (10, 10));
    // cx = a + b·score to the pixel (cx is rounded to integers).
    let (lo, hi) = (0..10).fold((0, 0), |(lo, hi), i| {
        (
            if named[i] < named[lo] { i } else { lo },
            if named[i] > named[hi] { i } else { hi },
        )
    });
    let slope = (cx[hi] - cx[lo]) / (named[hi] - named[lo]);
    assert!(slope > 0.0, "higher scores to the right");
    for i in 0..10 {
        let predicted = cx[lo] + slope * (named[i] - named[lo]);
        assert!(
            (cx[i] - predicted).abs() <= 1.5,
            "state {i}: cx {} against {predicted}",
            cx[i]
        );
    }

    let plain = analyze(&log, &[], &artefacts("unscored_landscape"));
    let svg = std::fs::read_to_string(plain.join("figures/landscape.svg")).unwrap();
    assert!(svg.contains("aria-label=\"log10 visits N(f)\""));
}
