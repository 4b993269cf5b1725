//! The Parquet tables: `potentials.parquet` (one row per state), `pairs.parquet` (one row per
//! tested pair), `splits.parquet` (one row per pair of the verdict's test), `cycles.parquet` (one row per reciprocal triangle) and
//! `fundamental_cycles.parquet` (one row per Schnakenberg fundamental cycle: its states as a list,
//! chord first, its length, affinity and flux).

use crate::analyze::Analysis;
use crate::fit::Identifiability;
use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, ListBuilder, StringArray, StringBuilder, UInt32Array,
    UInt64Array,
};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::fs::File;
use std::sync::Arc;

pub(super) type Columns = Vec<(&'static str, ArrayRef)>;

/// The tables of one analysis, each with the name of its file (`NAME.parquet`): potentials,
/// pairs, splits, cycles, fundamental_cycles, and nulls when a resampling test ran. The Python
/// package hands the same batches over as `pyarrow.Table`s.
pub fn analysis_tables(a: &Analysis) -> Vec<(&'static str, RecordBatch)> {
    let mut tables = vec![
        ("potentials", potentials(a)),
        ("pairs", pairs(a)),
        ("splits", splits(a)),
        ("cycles", cycles(a)),
        ("fundamental_cycles", fundamental_cycles(a)),
    ];
    if let Some(r) = a.resampling.as_ref().filter(|r| !r.tests.is_empty()) {
        tables.push(("nulls", super::nulls::nulls(r)));
    }
    tables
        .into_iter()
        .map(|(name, columns)| {
            let batch = RecordBatch::try_from_iter(columns);
            (name, batch.expect("the columns of a table have one length"))
        })
        .collect()
}

pub(super) fn write(file: File, batch: &RecordBatch) -> Result<(), String> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut writer =
        ArrowWriter::try_new(file, batch.schema(), Some(props)).map_err(|e| e.to_string())?;
    writer.write(batch).map_err(|e| e.to_string())?;
    writer.close().map_err(|e| e.to_string())?;
    Ok(())
}

fn names(a: &Analysis, ids: impl Iterator<Item = u32>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(
        ids.map(|i| a.graph.names[i as usize].as_str()),
    ))
}

pub(super) fn f64s(values: impl Iterator<Item = f64>) -> ArrayRef {
    Arc::new(Float64Array::from_iter_values(values))
}

fn u64s(values: impl Iterator<Item = u64>) -> ArrayRef {
    Arc::new(UInt64Array::from_iter_values(values))
}

fn bools(values: impl Iterator<Item = bool>) -> ArrayRef {
    Arc::new(BooleanArray::from_iter(values.map(Some)))
}

fn potentials(a: &Analysis) -> Columns {
    let g = &a.graph;
    let p = &a.potential;
    let n = g.n_states() as u32;
    vec![
        ("state", names(a, 0..n)),
        ("potential", Arc::new(Float64Array::from(p.value.clone()))),
        // Set by the data: prior-dominated values are not identifiable.
        (
            "identifiable",
            bools(p.status.iter().map(|&s| s == Identifiability::Identifiable)),
        ),
        (
            "posterior_sd",
            Arc::new(Float64Array::from(p.posterior_sd.clone())),
        ),
        (
            "status",
            Arc::new(StringArray::from_iter_values(
                p.status.iter().map(|s| s.as_str()),
            )),
        ),
        (
            "component",
            Arc::new(UInt32Array::from(p.component.clone())),
        ),
        ("out_count", u64s(g.out_count.iter().copied())),
        ("in_count", u64s(g.in_count.iter().copied())),
        ("self_count", u64s(g.self_count.iter().copied())),
    ]
}

/// One row per pair of the verdict's test: the observed split, the fitted one and the
/// standardised residual with its p- and q-value.
fn splits(a: &Analysis) -> Columns {
    let rs = &a.splits;
    vec![
        ("source", names(a, rs.iter().map(|r| r.f))),
        ("target", names(a, rs.iter().map(|r| r.g))),
        ("n_forward", u64s(rs.iter().map(|r| r.n_fg))),
        ("n_backward", u64s(rs.iter().map(|r| r.n_gf))),
        ("expected_forward", f64s(rs.iter().map(|r| r.expected))),
        ("residual", f64s(rs.iter().map(|r| r.residual))),
        ("p_value", f64s(rs.iter().map(|r| r.p_value))),
        ("q_value", f64s(rs.iter().map(|r| r.q_value))),
    ]
}

fn pairs(a: &Analysis) -> Columns {
    let ps = &a.pairs;
    let out = |s: u32| a.graph.out_count[s as usize];
    vec![
        ("source", names(a, ps.iter().map(|p| p.f))),
        ("target", names(a, ps.iter().map(|p| p.g))),
        ("n_forward", u64s(ps.iter().map(|p| p.n_fg))),
        ("n_backward", u64s(ps.iter().map(|p| p.n_gf))),
        ("out_count_source", u64s(ps.iter().map(|p| out(p.f)))),
        ("out_count_target", u64s(ps.iter().map(|p| out(p.g)))),
        ("log_ratio", f64s(ps.iter().map(|p| p.x))),
        ("potential_difference", f64s(ps.iter().map(|p| p.y))),
        (
            "sigma_reference",
            f64s(ps.iter().map(|p| p.sigma_reference)),
        ),
        ("sigma", f64s(ps.iter().map(|p| p.sigma))),
        ("corrected", bools(ps.iter().map(|p| p.corrected))),
    ]
}

fn cycles(a: &Analysis) -> Columns {
    let ts = &a.triangles;
    let mut columns: Columns = vec![
        ("a", names(a, ts.iter().map(|t| t.states[0]))),
        ("b", names(a, ts.iter().map(|t| t.states[1]))),
        ("c", names(a, ts.iter().map(|t| t.states[2]))),
    ];
    for (i, name) in ["n_ab", "n_bc", "n_ca", "n_ac", "n_cb", "n_ba"]
        .into_iter()
        .enumerate()
    {
        columns.push((name, u64s(ts.iter().map(|t| t.counts[i]))));
    }
    columns.extend([
        ("forward", f64s(ts.iter().map(|t| t.forward))),
        ("backward", f64s(ts.iter().map(|t| t.backward))),
        ("affinity", f64s(ts.iter().map(|t| t.affinity))),
        (
            "variance_reference",
            f64s(ts.iter().map(|t| t.variance_reference)),
        ),
        ("variance", f64s(ts.iter().map(|t| t.variance))),
        ("z", f64s(ts.iter().map(|t| t.z))),
        ("p_value", f64s(ts.iter().map(|t| t.p_value))),
        (
            "q_value",
            Arc::new(Float64Array::from(
                ts.iter().map(|t| t.q_value).collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
        ("kept_reference", bools(ts.iter().map(|t| t.kept_reference))),
        ("corrected", bools(ts.iter().map(|t| t.corrected))),
    ]);
    columns
}

fn fundamental_cycles(a: &Analysis) -> Columns {
    let cs = &a.fundamental_cycles;
    let mut states = ListBuilder::new(StringBuilder::new());
    for c in cs {
        for &s in &c.states {
            states.values().append_value(&a.graph.names[s as usize]);
        }
        states.append(true);
    }
    vec![
        ("cycle", Arc::new(states.finish()) as ArrayRef),
        ("length", u64s(cs.iter().map(|c| c.states.len() as u64))),
        ("affinity", f64s(cs.iter().map(|c| c.affinity))),
        ("flux", f64s(cs.iter().map(|c| c.flux))),
    ]
}
