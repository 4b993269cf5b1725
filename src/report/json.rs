//! `report.json`: every number of the analysis, under the key names of the output contract.

use super::{SCHEMA_VERSION, Verdict};
use crate::analyze::Analysis;
use crate::groups::GroupAnalyses;
use crate::pipeline::Analyses;
use crate::stats::cycles::Squares;
use serde_json::{Value, json};

/// Fundamental cycles listed in `report.json` (all of them are in `fundamental_cycles.parquet`).
const LISTED_CYCLES: usize = 20;

/// `report.json` of the whole log, with the `groups` section under `--group-by`.
pub fn report_json(run: &Analyses) -> Value {
    analysis_json(&run.pooled, run.groups.as_ref())
}

/// `report.json` of one analysis; `groups` is null without `groups`.
pub(super) fn analysis_json(a: &Analysis, groups: Option<&GroupAnalyses>) -> Value {
    let mut report = analysis_fields(a, groups);
    unsign_zeros(&mut report);
    report
}

/// Every `-0.0` in `value` written as `0.0` (an empty sum in Rust is `-0.0`: a log without a
/// reciprocal pair printed `"chi2": -0.0`).
fn unsign_zeros(value: &mut Value) {
    match value {
        Value::Number(n) if n.as_f64().is_some_and(|x| x == 0.0 && x.is_sign_negative()) => {
            *value = json!(0.0);
        }
        Value::Array(items) => items.iter_mut().for_each(unsign_zeros),
        Value::Object(fields) => fields.values_mut().for_each(unsign_zeros),
        _ => {}
    }
}

fn analysis_fields(a: &Analysis, groups: Option<&GroupAnalyses>) -> Value {
    let g = &a.graph;
    json!({
        "schema_version": SCHEMA_VERSION,
        "detbal_version": env!("CARGO_PKG_VERSION"),
        "input": {
            "paths": a.input.paths,
            "files": a.input.files,
            "format": a.input.format,
            "rows": a.input.rows,
            "dropped_rows": a.input.dropped_rows,
            "dropped_reasons": a.input.dropped_reasons.iter().map(|(why, n)| json!({"reason": why, "rows": n})).collect::<Vec<_>>(),
            "runs": a.input.runs,
            "run_memory": a.input.run_memory,
            "hash": a.input.content_hash,
        },
        "settings": a.settings,
        "device": a.device,
        "timings": a.timings,
        "graph": {
            "states": g.n_states(),
            "edges": g.n_edges(),
            "transitions": g.transitions(),
            "self_transitions": g.self_transitions(),
            "reciprocal_pairs": g.reciprocal_pairs().count(),
            "sccs": a.strong_components.count,
            "largest_scc": a.strong_components.largest,
        },
        "fit": a.fit,
        "potential_distribution": a.potential_distribution,
        "pairs": a.pair_test,
        "cycles": with_keys(json!(a.cycle_test), json!({
            "fundamental_cycles": fundamental_cycles(a),
            "chordless_4_cycles": a.squares.as_ref().map(|s| squares(a, s)),
        })),
        "entropy_production": a.entropy,
        "attractors": {
            "count": a.attractors.len(),
            "listed": a.attractors.iter().take(crate::stats::attractors::LISTED).collect::<Vec<_>>(),
        },
        "verification": a.verification,
        "permutation": a.resampling.as_ref().map(|r| permutation(a, r)),
        "groups": groups.map_or(Value::Null, super::groups::json),
        "verdict": with_keys(json!(Verdict::of(a)), json!({"quasi_symmetry": a.verdict_test})),
    })
}

/// `object` with the keys of `extra` added.
fn with_keys(mut object: Value, extra: Value) -> Value {
    if let (Value::Object(o), Value::Object(e)) = (&mut object, extra) {
        o.extend(e);
    }
    object
}

/// How many fundamental cycles, how long, and the ones producing the most entropy (`J_c A_c`).
fn fundamental_cycles(a: &Analysis) -> Value {
    let cs = &a.fundamental_cycles;
    let mut order: Vec<usize> = (0..cs.len()).collect();
    order.sort_by(|&i, &j| {
        let production = |k: usize| cs[k].flux * cs[k].affinity;
        production(j).total_cmp(&production(i)).then(i.cmp(&j))
    });
    let lengths = cs.iter().map(|c| c.states.len());
    json!({
        "count": cs.len(),
        "mean_length": (!cs.is_empty()).then(|| lengths.clone().sum::<usize>() as f64 / cs.len() as f64),
        "max_length": lengths.max(),
        "largest_production": order.iter().take(LISTED_CYCLES).map(|&i| {
            let c = &cs[i];
            json!({
                "cycle": c.states.iter().map(|&s| &a.graph.names[s as usize]).collect::<Vec<_>>(),
                "affinity": c.affinity,
                "flux": c.flux,
            })
        }).collect::<Vec<_>>(),
    })
}

/// With `--max-cycle-len 4`: how many chordless 4-cycles, and the first ones listed.
fn squares(a: &Analysis, s: &Squares) -> Value {
    json!({
        "count": s.count,
        "listed": s.listed.iter().map(|q| json!({
            "cycle": q.states.map(|f| &a.graph.names[f as usize]),
            "affinity": q.affinity,
            "variance": q.variance,
            "z": q.z,
        })).collect::<Vec<_>>(),
    })
}

/// The resampling stage: the explanatory-power test (null samples in nulls.parquet), bootstrap
/// intervals of V (per identifiable state), held-out check.
fn permutation(a: &Analysis, r: &crate::stats::permutation::Resampling) -> Value {
    let bootstrap = r.bootstrap.as_ref().map(|b| {
        with_keys(
            json!(b),
            json!({
                "potential": b.potential.iter().enumerate().filter_map(|(f, i)| i.map(|i| json!({
                    "state": a.graph.names[f],
                    "potential": a.potential.value[f],
                    "low": i.low,
                    "high": i.high,
                    "resamples": i.resamples,
                }))).collect::<Vec<_>>(),
            }),
        )
    });
    json!({
        "seed": r.settings.seed,
        "resamples": r.settings.permutations,
        "tests": r.tests,
        "bootstrap": bootstrap,
        "holdout": r.holdout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_zeros_are_written_without_their_sign() {
        let mut value =
            json!({"a": -0.0, "b": [1.5, -0.0, {"c": -0.0}], "d": -2.0, "e": 0, "f": 0.0});
        unsign_zeros(&mut value);
        let text = serde_json::to_string(&value).unwrap();
        assert_eq!(
            text,
            r#"{"a":0.0,"b":[1.5,0.0,{"c":0.0}],"d":-2.0,"e":0,"f":0.0}"#
        );
    }
}
