//! `report.json`: every number of the analysis, under the key names of the output contract.

use super::{SCHEMA_VERSION, Verdict};
use crate::analyze::Analysis;
use serde_json::{Value, json};

pub fn report_json(a: &Analysis) -> Value {
    let g = &a.graph;
    let sccs = crate::graph::strongly_connected_components(g, |_| true);
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
            "sccs": sccs.count(),
            "largest_scc": sccs.largest(),
        },
        "fit": a.fit,
        "pairs": a.pair_test,
        "cycles": a.cycle_test,
        "entropy_production": a.entropy,
        "verification": a.verification,
        "verdict": Verdict::of(a),
    })
}
