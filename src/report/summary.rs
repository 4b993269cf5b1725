//! The terminal summary: what was read, what was fitted, what the tests say, in ten lines.

use super::Verdict;
use crate::analyze::Analysis;
use std::fmt::Write;

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

/// A p-value as people read it.
pub fn p_text(p: Option<f64>) -> String {
    match p {
        Some(p) if p < 1e-300 => "p < 1e-300".into(),
        Some(p) if p < 1e-3 => format!("p = {p:.1e}"),
        Some(p) => format!("p = {p:.3}"),
        None => "no p-value (no degrees of freedom)".into(),
    }
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or("n/a".into(), |x| format!("{x:.digits$}"))
}

pub fn summary(a: &Analysis) -> String {
    let g = &a.graph;
    let f = &a.fit;
    let (pt, ct) = (&a.pair_test, &a.cycle_test);
    let mut s = String::new();
    let dropped = if a.input.dropped_rows > 0 {
        let reasons: Vec<String> = a
            .input
            .dropped_reasons
            .iter()
            .map(|(why, n)| format!("{}: {why}", thousands(*n)))
            .collect();
        format!(
            ", {} rows dropped ({})",
            thousands(a.input.dropped_rows),
            reasons.join("; ")
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        s,
        "Input      {} transitions ({} self), {} states, {} edges, {} reciprocal pairs{dropped}",
        thousands(g.transitions()),
        thousands(g.self_transitions()),
        thousands(g.n_states() as u64),
        thousands(g.n_edges() as u64),
        thousands(g.reciprocal_pairs().count() as u64)
    );
    let _ = writeln!(
        s,
        "Device     {}: {} ({})",
        a.device.backend, a.device.adapter, a.device.reason
    );
    let estimator =
        clap::ValueEnum::to_possible_value(&f.estimator).expect("every estimator has a name");
    let _ = writeln!(
        s,
        "Potential  {}: {} of {} states identifiable in {} component{}; {} after {} iterations (|∇|∞ = {:.1e}); action {:.6}",
        estimator.get_name(),
        thousands(f.identifiable_states as u64),
        thousands(g.n_states() as u64),
        f.components,
        if f.components == 1 { "" } else { "s" },
        if f.converged {
            "converged"
        } else {
            "NOT CONVERGED"
        },
        f.iterations,
        f.grad_norm,
        f.action
    );
    if let Some((low, high)) = extremes(a) {
        let _ = writeln!(
            s,
            "           deepest attractor {low}; highest state {high}"
        );
    }
    let vt = &a.verdict_test;
    let calibration = match vt.calibration {
        Some(c) if vt.resamples > 0 => format!("{}, {} refits", c.describe(), vt.resamples),
        Some(c) => c.describe().to_string(),
        None => "no independent cycle".to_string(),
    };
    let _ = writeln!(
        s,
        "Test       quasi-symmetry of the pair splits: X² = {:.1} on {} ndf ({} pairs with ≥ {} transitions, {} one-way; G² = {:.1}), {} ({calibration}); {} pairs flagged at FDR {}",
        vt.statistic,
        thousands(vt.ndf.max(0) as u64),
        thousands(vt.pairs as u64),
        vt.min_transitions,
        thousands(vt.one_way_pairs as u64),
        vt.deviance,
        p_text(vt.p_value),
        thousands(vt.flagged_pairs as u64),
        vt.fdr
    );
    let _ = writeln!(
        s,
        "Pairs      {} pairs: r = {}, χ²/ndf = {} (the paper's statistics); slope of log-ratio on ΔV {} [{}]",
        thousands(pt.n as u64),
        opt(pt.pearson_r, 3),
        opt(pt.chi2_ndf_reference, 3),
        opt(pt.slope, 3),
        pt.slope_ci
            .map_or("n/a".into(), |[l, h]| format!("{l:.3}, {h:.3}"))
    );
    let flagged = if ct.flagged_exact {
        ct.flagged.to_string()
    } else {
        format!(
            "{} to {}",
            thousands(ct.flagged as u64),
            thousands(ct.flagged_at_most as u64)
        )
    };
    let listed = if ct.limit_reached {
        format!(
            "; {} most significant listed (--max-cycles)",
            thousands(ct.listed as u64)
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        s,
        "Cycles     {} reciprocal triangles: χ²/ndf = {} on {} (the paper's statistic); {} flagged at FDR {}{}",
        thousands(ct.triangles as u64),
        opt(ct.chi2_ndf_reference, 3),
        thousands(ct.n as u64),
        flagged,
        ct.fdr,
        listed
    );
    let e = &a.entropy;
    let null = match (e.null_mean, e.null_sd, e.excess_z) {
        (Some(mean), Some(sd), Some(z)) => format!(
            "; {mean:.3e} ± {sd:.1e} expected under detailed balance at this sample size, excess {:.3e} ({z:.1} sd)",
            e.nats_per_transition - mean
        ),
        _ => String::new(),
    };
    let _ = writeln!(
        s,
        "Entropy    {:.3e} nats per transition over {} reciprocal pairs ({:.1} % of transitions on one-way arcs){null}",
        e.nats_per_transition,
        thousands(e.reciprocal_pairs as u64),
        100.0 * e.one_way_fraction
    );
    if let Some(r) = &a.resampling {
        resampling(&mut s, r);
    }
    if let Some(groups) = &a.groups {
        s.push_str(&super::groups::summary(groups));
    }
    let _ = writeln!(s, "Verdict    {}", Verdict::of(a).sentence);
    s
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
            "{} (V = {v:.2}, component {})",
            printable(&a.graph.names[i]),
            a.potential.component[i]
        )
    };
    Some((label(low), label(high)))
}

/// One line per resampling result: the explanatory-power p-value (± its standard error), the
/// bootstrap intervals of V, the held-out check.
fn resampling(s: &mut String, r: &crate::stats::permutation::Resampling) {
    if !r.tests.is_empty() {
        let tests: Vec<String> = r
            .tests
            .iter()
            .map(|t| {
                // At the Monte Carlo floor the p-value is a bound, not an estimate.
                let p = if t.exceed == 0 {
                    format!(
                        "p ≤ 1/{} (no resample reached it)",
                        thousands(t.resamples + 1)
                    )
                } else {
                    format!("{} ± {:.1e}", p_text(Some(t.p_value)), t.p_value_se)
                };
                format!(
                    "{} {p} ({} items)",
                    t.test.replace('_', " "),
                    thousands(t.items as u64)
                )
            })
            .collect();
        let _ = writeln!(
            s,
            "Resampled  {} resamples, seed {}: {}",
            thousands(u64::from(r.settings.permutations)),
            r.settings.seed,
            tests.join("; ")
        );
    }
    match &r.bootstrap {
        Some(b) => {
            let _ = writeln!(
                s,
                "Bootstrap  {} refits, {:.0} % intervals of V on {} states",
                b.resamples,
                100.0 * b.level,
                thousands(b.potential.iter().flatten().count() as u64)
            );
        }
        None => {
            let _ = writeln!(
                s,
                "Bootstrap  off (each refit costs a fit: --bootstrap 200 gives 90 % intervals of V)"
            );
        }
    }
    if let Some(h) = &r.holdout {
        let _ = writeln!(
            s,
            "Held out   V fitted on {} transitions, tested on {}: r = {}, slope {}; pair χ² = {:.1} / {} ndf, {}; cycle χ² = {:.1} / {} ndf, {}",
            thousands(h.transitions_fit),
            thousands(h.transitions_test),
            opt(h.pearson_r, 3),
            opt(h.slope, 3),
            h.pair_chi2,
            h.pair_ndf,
            p_text(h.pair_p_value),
            h.cycle_chi2,
            h.cycle_ndf,
            p_text(h.cycle_p_value)
        );
    }
}
