//! The terminal summary: what was read, what was fitted, what describes the log, and last the
//! verdict, one block per part. Every line is wrapped to a width ([`width`]: `COLUMNS`, else
//! the terminal's, else [`PIPED_WIDTH`]); a block's continuation lines are indented under its
//! text. report.html shows the same text at [`PIPED_WIDTH`].

use super::Verdict;
use crate::analyze::Analysis;
use crate::groups::GroupAnalyses;
use crate::pipeline::Analyses;

/// `12345678` → `12,345,678`.
pub(crate) fn thousands(n: impl Into<u64>) -> String {
    let digits = n.into().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `n` of a thing, the noun in the plural unless `n` is 1: `1 row`, `12,345 rows`.
pub(crate) fn counted(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    format!("{} {noun}{}", thousands(n), if n == 1 { "" } else { "s" })
}

/// A state or group name as a terminal should show it: control characters (an ANSI escape
/// sequence in a name would recolour or rewrite the screen) are shown escaped, `\u{1b}`.
pub fn printable(name: &str) -> std::borrow::Cow<'_, str> {
    if name.chars().any(char::is_control) {
        name.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect::<String>()
            .into()
    } else {
        name.into()
    }
}

/// A significance level as the user wrote it, `0.01`, or `1e-20` when small (`{}` would spell
/// out every zero).
pub(crate) fn level(alpha: f64) -> String {
    if alpha >= 1e-4 {
        alpha.to_string()
    } else {
        format!("{alpha:e}")
    }
}

/// A p-value as people read it.
pub fn p_text(p: Option<f64>) -> String {
    match p {
        Some(p) if p < 1e-300 => "p < 1e-300".into(),
        Some(p) if p < 1e-3 => format!("p = {p:.1e}"),
        Some(p) => format!("p = {p:.3}"),
        None => "no p-value (no degrees of freedom)".into(),
    }
}

/// Width of the summary when standard output is not a terminal and `COLUMNS` is unset; the
/// width of report.html's summary box.
pub const PIPED_WIDTH: usize = 100;

/// Narrowest width the summary is wrapped to (a label and a few words).
const MIN_WIDTH: usize = 40;

/// Column where every block's text starts (labels are padded to it).
const INDENT: usize = 11;

/// The summary's width: `COLUMNS` when set, else the terminal's width when standard output is
/// a terminal, else [`PIPED_WIDTH`]; at least [`MIN_WIDTH`].
pub fn width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0)
        .or_else(terminal_columns)
        .unwrap_or(PIPED_WIDTH)
        .max(MIN_WIDTH)
}

#[cfg(unix)]
fn terminal_columns() -> Option<usize> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    // SAFETY: `winsize` is plain old data; TIOCGWINSZ writes one into it and reads nothing.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) };
    (rc == 0 && size.ws_col > 0).then_some(usize::from(size.ws_col))
}

#[cfg(not(unix))]
fn terminal_columns() -> Option<usize> {
    None
}

/// The summary being written: labelled rows wrapped to `width`.
pub(super) struct Text {
    pub(super) s: String,
    width: usize,
}

impl Text {
    fn new(width: usize) -> Text {
        Text {
            s: String::new(),
            width: width.max(MIN_WIDTH),
        }
    }

    /// A block's first row: `label` in the margin.
    pub(super) fn block(&mut self, label: &str, text: &str) {
        self.row(label, text);
    }

    /// A row inside a block, with a short `label` (at most 8 characters) indented under the
    /// block's.
    pub(super) fn sub(&mut self, label: &str, text: &str) {
        self.row(&format!("  {label}"), text);
    }

    /// A further row of a block, without a label.
    pub(super) fn more(&mut self, text: &str) {
        self.row("", text);
    }

    fn row(&mut self, label: &str, text: &str) {
        let label_width = label.chars().count();
        self.s.push_str(label);
        let mut column = label_width;
        if label_width < INDENT {
            self.s
                .extend(std::iter::repeat_n(' ', INDENT - label_width));
            column = INDENT;
        } else {
            self.s.push(' ');
            column += 1;
        }
        let mut first = true;
        for word in units(text) {
            let word: Vec<char> = word.chars().collect();
            if !first {
                if column + 1 + word.len() <= self.width {
                    self.s.push(' ');
                    column += 1;
                } else {
                    self.newline();
                    column = INDENT;
                }
            }
            // A word wider than a line (a long path or name) is cut across lines.
            let mut rest = &word[..];
            while column + rest.len() > self.width {
                let take = self.width.saturating_sub(column);
                self.s.extend(&rest[..take]);
                rest = &rest[take..];
                self.newline();
                column = INDENT;
            }
            self.s.extend(rest);
            column += rest.len();
            first = false;
        }
        self.s.push('\n');
    }

    fn newline(&mut self) {
        self.s.push('\n');
        self.s.extend(std::iter::repeat_n(' ', INDENT));
    }
}

/// The words of `text`, a relation kept whole (`X² = 5098.4`, `p < 1e-300`, `4.5e-4 ± 1e-5`):
/// a line never ends or starts at `=`, `<`, `≤` or `±`.
fn units(text: &str) -> Vec<String> {
    const RELATIONS: [&str; 4] = ["=", "<", "≤", "±"];
    let mut units: Vec<String> = Vec::new();
    let mut glue = false;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let relation = RELATIONS.contains(&word);
        match units.last_mut() {
            Some(last) if glue || relation => {
                last.push(' ');
                last.push_str(word);
            }
            _ => units.push(word.to_string()),
        }
        glue = relation;
    }
    units
}

/// `x` with `digits` decimals, never `-0.0` (a value that rounds to zero prints unsigned); from
/// 1e9 on in scientific notation (a Pearson X² at a near-certain fitted split can reach 1e23,
/// which would print as 24 digits).
pub(crate) fn num(x: f64, digits: usize) -> String {
    if x.abs() >= 1e9 {
        return sci(x, 3);
    }
    unsigned_zero(format!("{x:.digits$}"))
}

/// `x` in scientific notation with `digits` decimals, never `-0.000e0`.
fn sci(x: f64, digits: usize) -> String {
    unsigned_zero(format!("{x:.digits$e}"))
}

/// A statistic that cannot be negative (X², χ², an entropy): rounding noise below zero is 0.
fn nonneg(x: f64) -> f64 {
    if x <= 0.0 { 0.0 } else { x }
}

fn unsigned_zero(text: String) -> String {
    match text.strip_prefix('-') {
        Some(rest)
            if rest
                .split(['e', 'E'])
                .next()
                .is_some_and(|m| m.chars().all(|c| c == '0' || c == '.')) =>
        {
            rest.to_string()
        }
        _ => text,
    }
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or("n/a".into(), |x| num(x, digits))
}

/// The summary at the terminal's [`width`].
pub fn summary(run: &Analyses) -> String {
    summary_at(run, width())
}

/// The summary and its last line, `Outputs DIR`, at the terminal's [`width`].
pub fn summary_with_outputs(run: &Analyses, dir: &std::path::Path) -> String {
    let mut t = Text::new(width());
    body(&mut t, &run.pooled, run.groups.as_ref());
    t.block("Outputs", &dir.display().to_string());
    t.s
}

/// The summary wrapped to `width` columns.
pub fn summary_at(run: &Analyses, width: usize) -> String {
    let mut t = Text::new(width);
    body(&mut t, &run.pooled, run.groups.as_ref());
    t.s
}

/// Every block of the summary, the verdict last.
fn body(t: &mut Text, a: &Analysis, groups: Option<&GroupAnalyses>) {
    input(t, a);
    t.block(
        "Device",
        &format!(
            "{}: {} ({})",
            a.device.backend, a.device.adapter, a.device.reason
        ),
    );
    potential(t, a);
    paper_statistics(t, a);
    entropy(t, &a.entropy);
    if let Some(r) = &a.resampling {
        resampling(t, r);
    }
    if let Some(groups) = groups {
        super::groups::summary(t, groups);
    }
    if a.settings.paper {
        t.block(
            "Settings",
            "--paper: the reference's choices reproduced (observed exposure, its threshold, its \
             filters, its optimiser's stop, states in first-appearance order); its r depends on \
             the order of the rows",
        );
    }
    verdict(t, a);
}

/// What was read: the graph's sizes and the rows dropped, with why.
fn input(t: &mut Text, a: &Analysis) {
    let g = &a.graph;
    let mut input = format!(
        "{} ({} self), {}, {}, {}",
        counted(g.transitions(), "transition"),
        thousands(g.self_transitions()),
        counted(g.n_states() as u64, "state"),
        counted(g.n_edges() as u64, "edge"),
        counted(g.reciprocal_pairs().count() as u64, "reciprocal pair")
    );
    if a.input.dropped_rows > 0 {
        let reasons: Vec<String> = a
            .input
            .dropped_reasons
            .iter()
            .map(|(why, n)| format!("{}: {why}", thousands(*n)))
            .collect();
        input.push_str(&format!(
            "; {} dropped ({})",
            counted(a.input.dropped_rows, "row"),
            reasons.join("; ")
        ));
    }
    t.block("Input", &input);
}

/// The fit: estimator, identifiable states, convergence, extremes, and how well `V` explains
/// the pairs' log-ratios.
fn potential(t: &mut Text, a: &Analysis) {
    let (f, pt) = (&a.fit, &a.pair_test);
    let estimator =
        clap::ValueEnum::to_possible_value(&f.estimator).expect("every estimator has a name");
    t.block(
        "Potential",
        &format!(
            "{}: {} of {} identifiable in {}",
            estimator.get_name(),
            thousands((f.identifiable_states - f.prior_dominated_states) as u64),
            counted(a.graph.n_states() as u64, "state"),
            counted(f.components as u64, "component"),
        ),
    );
    if let Some(choice) = f.l2_choice.as_ref().filter(|c| c.l2 == 0.0) {
        t.more(&format!("ridge λ {}", choice.method));
    }
    if f.l2 > 0.0 {
        let how = f
            .l2_choice
            .as_ref()
            .map_or("fixed by --l2".to_owned(), |c| {
                format!("--l2 auto: {}", c.method)
            });
        let by_prior = match f.prior_dominated_states {
            0 => "no state valued mostly by the prior".to_owned(),
            1 => "1 more state valued mostly by the prior".to_owned(),
            n => format!(
                "{} more states valued mostly by the prior",
                thousands(n as u64)
            ),
        };
        t.more(&format!(
            "ridge λ = {} ({how}); {by_prior}",
            if f.l2 < 1e-2 {
                sci(f.l2, 2)
            } else {
                num(f.l2, 4)
            },
        ));
    }
    // The gradient norm on a short row of its own: its length never moves the wrapping.
    t.more(&format!(
        "{} after {} iterations, action {}, |∇|∞ = {:.1e}",
        if f.converged {
            "converged"
        } else {
            "NOT CONVERGED"
        },
        f.iterations,
        num(f.action, 6),
        f.grad_norm
    ));
    if let Some((low, high)) = extremes(a) {
        t.more(&format!("deepest attractor {low}; highest state {high}"));
    }
    t.more(&format!(
        "pair log-ratios on ΔV: slope {} [{}] (1 when V explains them; the interval takes V as \
         exact)",
        opt(pt.slope, 3),
        pt.slope_ci.map_or("n/a".into(), |[l, h]| format!(
            "{}, {}",
            num(l, 3),
            num(h, 3)
        ))
    ));
}

/// The paper's pair and loop statistics, descriptive.
fn paper_statistics(t: &mut Text, a: &Analysis) {
    let (pt, ct) = (&a.pair_test, &a.cycle_test);
    t.block("Paper's", "statistics, descriptive (not the test):");
    t.sub(
        "pairs",
        &format!(
            "r = {}, χ²/ndf = {} on {}",
            opt(pt.pearson_r, 3),
            opt(pt.chi2_ndf_reference.map(nonneg), 3),
            counted(pt.n as u64, "pair"),
        ),
    );
    t.sub(
        "loops",
        &format!(
            "χ²/ndf = {} on {} of {} reciprocal triangles",
            opt(ct.chi2_ndf_reference.map(nonneg), 3),
            thousands(ct.n as u64),
            thousands(ct.triangles as u64),
        ),
    );
}

/// The entropy production, and what detailed balance would give when the null was computed.
fn entropy(t: &mut Text, e: &crate::stats::entropy::EntropyProduction) {
    t.block(
        "Entropy",
        &format!(
            "{} nats per transition over {}; {} % of transitions one-way",
            sci(nonneg(e.nats_per_transition), 3),
            counted(e.reciprocal_pairs as u64, "reciprocal pair"),
            num(100.0 * nonneg(e.one_way_fraction), 1)
        ),
    );
    if let (Some(mean), Some(sd), Some(z)) = (e.null_mean, e.null_sd, e.excess_z) {
        t.more(&format!(
            "detailed balance would give {} ± {} here: excess {} ({} sd)",
            sci(nonneg(mean), 3),
            sci(nonneg(sd), 1),
            sci(e.nats_per_transition - mean, 3),
            num(z, 1),
        ));
    }
}

/// The verdict's block: the answer, then its test, calibration, pairs and where the log departs.
fn verdict(t: &mut Text, a: &Analysis) {
    let vt = &a.verdict_test;
    let alpha = a.settings.alpha;
    let verdict = Verdict::of(a);
    let headline = match verdict.rejected {
        Some(true) => format!("Detailed balance is rejected at α = {}.", level(alpha)),
        Some(false) => format!("Consistent with detailed balance at α = {}.", level(alpha)),
        None => verdict.sentence,
    };
    t.block("Verdict", &headline);
    if vt.p_value.is_some() {
        t.sub(
            "test",
            &format!(
                "quasi-symmetry of the pair splits: X² = {} on {} ndf, {}",
                num(nonneg(vt.statistic), 1),
                thousands(vt.ndf.max(0) as u64),
                verdict_p(vt)
            ),
        );
        let how = match vt.calibration {
            Some(c) if vt.resamples > 0 => {
                format!(
                    "{} ({})",
                    c.describe(),
                    counted(vt.resamples as u64, "refit")
                )
            }
            Some(c) => c.describe().to_string(),
            None => "no independent cycle".to_string(),
        };
        t.sub("p from", &how);
    }
    if let Some(warning) = unconverged(vt) {
        t.sub("warning", &warning);
    }
    t.sub(
        "on",
        &format!(
            "{} with ≥ {} transitions, {} of them one-way; deviance G² = {}",
            counted(vt.pairs as u64, "pair"),
            vt.min_transitions,
            thousands(vt.one_way_pairs as u64),
            num(nonneg(vt.deviance), 1)
        ),
    );
    lowered_threshold(t, a);
    run_memory(t, a);
    departures(t, a);
}

/// A caution when the runs step back more or less often than a Markov chain would
/// ([`crate::io::memory`]): the verdict's null is a Markov chain's.
fn run_memory(t: &mut Text, a: &Analysis) {
    let Some(m) = a.input.run_memory.as_ref().filter(|m| m.remembers) else {
        return;
    };
    let consequence = if m.ratio < 1.0 {
        "they keep their direction, and the p-value can be far too small"
    } else {
        "the p-value can be off (too large on the logs measured)"
    };
    t.sub(
        "caution",
        &format!(
            "runs step straight back {}× as often as a Markov chain with this kernel would              ({} of {} paths through {} busy states, z = {}): they remember more than their              current state, which the test's null does not; {consequence}",
            num(m.ratio, 2),
            thousands(m.back),
            thousands(m.paths),
            thousands(m.busy_states as u64),
            num(m.z, 1)
        ),
    );
}

/// The warning when one of the verdict's split fits stopped unconverged.
fn unconverged(vt: &crate::stats::quasi_symmetry::QuasiSymmetryTest) -> Option<String> {
    (!vt.converged).then(|| {
        format!(
            "the split fits did not all converge (observed fit: {}; {} of {} refits \
             unconverged): the p-value is unreliable",
            vt.fit_status,
            thousands(vt.unconverged_refits as u64),
            thousands(vt.resamples as u64)
        )
    })
}

/// A note when no pair at `--verdict-min-transitions` closed a cycle and the test ran at a
/// lower threshold.
fn lowered_threshold(t: &mut Text, a: &Analysis) {
    let (used, asked) = (
        a.verdict_test.min_transitions,
        a.settings.verdict.min_transitions,
    );
    if used >= asked {
        return;
    }
    let calibrated = crate::stats::quasi_symmetry::VerdictSettings::default().min_transitions;
    let consequence = if !a.verdict_test.decides {
        "where the test is not calibrated (liberal on sparse trajectories): the verdict does not \
         decide"
            .to_string()
    } else if used < calibrated {
        "so the calibration is approximate (liberal on sparse logs)".to_string()
    } else {
        format!("still ≥ {calibrated}, where the calibration was measured")
    };
    t.sub(
        "note",
        &format!(
            "no pair with ≥ {asked} transitions closes a cycle: the threshold was lowered to \
             {used}, {consequence}"
        ),
    );
}

/// Where the log departs from detailed balance: flagged pairs and triangles, and the
/// chordless 4-cycles when counted.
fn departures(t: &mut Text, a: &Analysis) {
    let (vt, ct) = (&a.verdict_test, &a.cycle_test);
    let flagged = if ct.flagged_exact {
        thousands(ct.flagged as u64)
    } else {
        format!(
            "{} to {}",
            thousands(ct.flagged as u64),
            thousands(ct.flagged_at_most as u64)
        )
    };
    let listed = if ct.limit_reached {
        format!(
            ", the {} most significant listed (--max-cycles)",
            thousands(ct.listed as u64)
        )
    } else {
        String::new()
    };
    t.sub(
        "where",
        &format!(
            "{} flagged at FDR {} (splits.parquet)",
            counted(vt.flagged_pairs as u64, "pair"),
            vt.fdr,
        ),
    );
    t.more(&format!(
        "{flagged} of {} triangles flagged at FDR {} (cycles.parquet{listed})",
        thousands(ct.triangles as u64),
        ct.fdr,
    ));
    if let Some(q) = &a.squares {
        t.sub(
            "4-cycles",
            &format!(
                "{} chordless reciprocal 4-cycles (--max-cycle-len 4), not in the test",
                thousands(q.count),
            ),
        );
        t.more(&format!(
            "the first {} listed in report.json (cycles.chordless_4_cycles)",
            thousands(q.listed.len() as u64)
        ));
    }
}

/// The verdict's p-value; at the Monte Carlo floor (no resample reached the observed
/// statistic, no tail fitted) a bound.
fn verdict_p(vt: &crate::stats::quasi_symmetry::QuasiSymmetryTest) -> String {
    use crate::stats::quasi_symmetry::Calibration;
    match vt.calibration {
        Some(Calibration::MonteCarlo | Calibration::SequentialMonteCarlo)
            if vt.exceedances == 0 && vt.resamples > 0 =>
        {
            format!("p ≤ 1/{}", thousands(vt.resamples as u64 + 1))
        }
        _ => p_text(vt.p_value),
    }
}

/// The lowest- and highest-potential identifiable states with their values.
fn extremes(a: &Analysis) -> Option<(String, String)> {
    let values = a
        .potential
        .value
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i, v)));
    let low = values.clone().min_by(|x, y| x.1.total_cmp(&y.1))?;
    let high = values.max_by(|x, y| x.1.total_cmp(&y.1))?;
    let label = |(i, v): (usize, f64)| {
        format!(
            "{} (V = {}, component {})",
            printable(&a.graph.names[i]),
            num(v, 2),
            a.potential.component[i]
        )
    };
    Some((label(low), label(high)))
}

/// One row per resampling result: the explanatory-power p-value (± its standard error), the
/// bootstrap intervals of V, the held-out check.
fn resampling(t: &mut Text, r: &crate::stats::permutation::Resampling) {
    if !r.tests.is_empty() {
        let tests: Vec<String> = r
            .tests
            .iter()
            .map(|t| {
                // At the Monte Carlo floor the p-value is a bound, not an estimate.
                let p = if t.exceed == 0 {
                    format!("p ≤ 1/{} (none reached it)", thousands(t.resamples + 1))
                } else {
                    format!("{} ± {:.1e}", p_text(Some(t.p_value)), t.p_value_se)
                };
                format!(
                    "{} {p} on {}",
                    t.test.replace('_', " "),
                    counted(t.items as u64, "item")
                )
            })
            .collect();
        t.block(
            "Resampled",
            &format!(
                "{} resamples, seed {}: {}",
                thousands(u64::from(r.settings.permutations)),
                r.settings.seed,
                tests.join("; ")
            ),
        );
    }
    match &r.bootstrap {
        Some(b) => {
            let not_converged = if b.not_converged > 0 {
                format!(
                    "; {} of the refits did NOT CONVERGE (their V kept: the best point reached)",
                    b.not_converged
                )
            } else {
                String::new()
            };
            t.block(
                "Bootstrap",
                &format!(
                    "{}, {} % intervals of V on {}{not_converged}",
                    counted(b.resamples, "refit"),
                    num(100.0 * b.level, 0),
                    counted(b.potential.iter().flatten().count() as u64, "state")
                ),
            );
        }
        None => t.block(
            "Bootstrap",
            "off (each refit costs a fit: --bootstrap 200 gives 90 % intervals of V)",
        ),
    }
    if let Some(h) = &r.holdout {
        t.block(
            "Held out",
            &format!(
                "V fitted on {} transitions, tested on {}: r = {}, slope {}",
                thousands(h.transitions_fit),
                thousands(h.transitions_test),
                opt(h.pearson_r, 3),
                opt(h.slope, 3),
            ),
        );
        t.more(&format!(
            "pair χ² = {} / {} ndf, {}; cycle χ² = {} / {} ndf, {}",
            num(nonneg(h.pair_chi2), 1),
            h.pair_ndf,
            p_text(h.pair_p_value),
            num(nonneg(h.cycle_chi2), 1),
            h.cycle_ndf,
            p_text(h.cycle_p_value)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_wrap_under_their_block_and_never_exceed_the_width() {
        let mut t = Text::new(40);
        t.block(
            "Verdict",
            "one two three four five six seven eight nine ten eleven twelve",
        );
        t.sub("where", &format!("{} end", "x".repeat(70)));
        for line in t.s.lines() {
            assert!(line.chars().count() <= 40, "{line:?}");
        }
        let lines: Vec<&str> = t.s.lines().collect();
        assert!(lines[0].starts_with("Verdict    one two"));
        assert!(lines[1].starts_with("           ") && !lines[1][11..].starts_with(' '));
        assert!(t.s.contains("  where    xxx"));
        let cut = t.s.split("  where").nth(1).unwrap();
        assert_eq!(cut.matches('x').count(), 70, "a long word is cut, not lost");
    }

    #[test]
    fn an_unconverged_verdict_fit_is_announced() {
        use crate::stats::quasi_symmetry::{DRIVEN_TRIANGLE, VerdictSettings, quasi_symmetry_test};
        let g = crate::graph::graph_of(&DRIVEN_TRIANGLE);
        let cpu = crate::backend::cpu::CpuBackend::new("test");
        let run = |max_newton_steps| {
            let settings = VerdictSettings {
                max_newton_steps,
                ..VerdictSettings::default()
            };
            quasi_symmetry_test(&g, &settings, 0.05, &cpu).unwrap().0
        };
        assert_eq!(unconverged(&run(200)), None);
        let stopped = run(0);
        let warning = unconverged(&stopped).expect("a warning");
        let refits = thousands(stopped.resamples as u64);
        assert!(
            warning.contains(&format!("{refits} of {refits} refits unconverged")),
            "{warning}"
        );
        assert!(warning.contains("iteration limit (0)"), "{warning}");
    }

    #[test]
    fn no_negative_zero() {
        assert_eq!(num(-1e-12, 1), "0.0");
        assert_eq!(num(-0.0, 3), "0.000");
        assert_eq!(num(-0.05, 1), "-0.1");
        assert_eq!(num(1.789e23, 1), "1.789e23");
        assert_eq!(num(999_999_999.04, 1), "999999999.0");
        assert_eq!(sci(-0.0, 3), "0.000e0");
        assert_eq!(sci(-2e-3, 1), "-2.0e-3");
        assert_eq!(num(nonneg(-1e-9), 1), "0.0");
        assert_eq!(sci(nonneg(-1e-9), 3), "0.000e0");
    }
}
