//! Every number that reaches a report must be finite: a NaN or infinity is an error naming the
//! quantity, never a silent `null` in report.json or a NaN in a table.

use super::Analysis;
use crate::error::{Error, Result};

/// The first non-finite number of `a`, as an error naming it; `Ok` when there is none.
pub(super) fn check(a: &Analysis) -> Result<()> {
    match scalars(a)
        .into_iter()
        .chain(table_values(a))
        .find(|(_, x)| !x.is_finite())
    {
        Some((name, x)) => Err(Error::Numerical(format!(
            "{name} is {x}; no report is written"
        ))),
        None => Ok(()),
    }
}

/// The report.json numbers, by key (an absent optional number counts as finite).
fn scalars(a: &Analysis) -> Vec<(&'static str, f64)> {
    let optional = |x: Option<f64>| x.unwrap_or(0.0);
    let (pt, ct, e) = (&a.pair_test, &a.cycle_test, &a.entropy);
    let mut scalars = vec![
        ("fit.action", a.fit.action),
        ("fit.grad_norm", a.fit.grad_norm),
        ("pairs.pearson_r", optional(pt.pearson_r)),
        ("pairs.chi2_ndf_reference", optional(pt.chi2_ndf_reference)),
        ("pairs.chi2", pt.chi2),
        ("verdict.statistic", a.verdict_test.statistic),
        ("verdict.quasi_symmetry.deviance", a.verdict_test.deviance),
        ("verdict.p_value", optional(a.verdict_test.p_value)),
        ("pairs.p_value", optional(pt.p_value)),
        ("pairs.slope", optional(pt.slope)),
        ("cycles.chi2_ndf_reference", optional(ct.chi2_ndf_reference)),
        ("cycles.chi2", ct.chi2),
        ("cycles.p_value", optional(ct.p_value)),
        (
            "entropy_production.nats_per_transition",
            e.nats_per_transition,
        ),
        (
            "entropy_production.cycle_sum_nats_per_transition",
            e.cycle_sum_nats_per_transition,
        ),
        (
            "entropy_production.stationary_residual",
            e.stationary_residual,
        ),
        ("entropy_production.null_mean", optional(e.null_mean)),
        ("entropy_production.null_sd", optional(e.null_sd)),
        ("entropy_production.excess", optional(e.excess)),
        ("entropy_production.excess_z", optional(e.excess_z)),
    ];
    scalars.extend(pt.slope_ci.iter().flatten().map(|&x| ("pairs.slope_ci", x)));
    if let Some(d) = &a.potential_distribution {
        let fits = std::iter::once(&d.moments).chain(d.histogram_fit.as_ref().map(|h| &h.gaussian));
        for g in fits {
            scalars.extend([
                ("potential_distribution: mean", g.mean),
                ("potential_distribution: mean_se", g.mean_se),
                ("potential_distribution: sd", g.sd),
                ("potential_distribution: sd_se", g.sd_se),
            ]);
        }
    }
    for t in a.resampling.iter().flat_map(|r| &r.tests) {
        scalars.push(("permutation.observed", t.observed));
        scalars.extend(t.null.iter().map(|&x| ("nulls.parquet: statistic", x)));
    }
    scalars
}

/// The Parquet tables' numbers, by file and column.
fn table_values(a: &Analysis) -> impl Iterator<Item = (&'static str, f64)> + '_ {
    let potentials = a
        .potential
        .value
        .iter()
        .flatten()
        .map(|&x| ("potentials.parquet: potential", x));
    let pairs = a.pairs.iter().flat_map(|p| {
        [
            ("pairs.parquet: log_ratio", p.x),
            ("pairs.parquet: potential_difference", p.y),
            ("pairs.parquet: sigma", p.sigma),
        ]
    });
    let triangles = a.triangles.iter().flat_map(|t| {
        [
            ("cycles.parquet: affinity", t.affinity),
            ("cycles.parquet: z", t.z),
            ("cycles.parquet: p_value", t.p_value),
        ]
    });
    let fluxes = a.fundamental_cycles.iter().flat_map(|c| {
        [
            ("fundamental_cycles.parquet: affinity", c.affinity),
            ("fundamental_cycles.parquet: flux", c.flux),
        ]
    });
    potentials.chain(pairs).chain(triangles).chain(fluxes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::{AnalyzeSettings, analyze_graph};
    use crate::backend::cpu::CpuBackend;
    use crate::graph::GraphBuilder;
    use crate::io::InputSummary;
    use std::time::Instant;

    #[test]
    fn a_non_finite_number_is_an_error_naming_it() {
        let mut b = GraphBuilder::default();
        let s: Vec<u32> = ["a", "b", "c"].iter().map(|n| b.intern(n)).collect();
        for (row, &(f, g, n)) in [
            (0, 1, 4),
            (1, 0, 2),
            (1, 2, 3),
            (2, 1, 3),
            (2, 0, 5),
            (0, 2, 1),
        ]
        .iter()
        .enumerate()
        {
            b.add(s[f], s[g], n, row as u64).unwrap();
        }
        let cpu = CpuBackend::new("test");
        let settings = AnalyzeSettings::default();
        let mut a = analyze_graph(
            b.finish(),
            InputSummary::default(),
            &cpu,
            &settings,
            0.0,
            Instant::now(),
        )
        .unwrap();
        assert!(check(&a).is_ok());
        a.triangles[0].z = f64::NAN;
        let err = check(&a).unwrap_err().to_string();
        assert!(err.contains("cycles.parquet: z is NaN"), "{err}");
    }
}
