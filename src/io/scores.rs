//! `--state-score FILE`: a per-state number for the landscape's horizontal axis (the paper used
//! log10 of an expression's error). The file is CSV or Parquet (by extension) with the columns
//! `state` (text) and `score` (any number); each state at most once; states not in the log are
//! ignored, states of the log without a row have no score.

use crate::error::{Error, Result};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Float64Type};
use rustc_hash::FxHashMap;
use std::fs::File;
use std::path::Path;

/// The scores by state name.
pub type StateScores = FxHashMap<String, f64>;

/// Reads the score of each state from `path`.
pub fn read(path: &Path) -> Result<StateScores> {
    let file = File::open(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    let bad = |message: String| Error::bad_input(path, message);
    let batches: Vec<RecordBatch> = match path.extension().and_then(|e| e.to_str()) {
        Some("parquet") => {
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                .and_then(|b| b.build())
                .map_err(|e| bad(e.to_string()))?
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| bad(e.to_string()))?
        }
        Some("csv") => {
            let format = arrow::csv::reader::Format::default().with_header(true);
            let (schema, _) = format
                .infer_schema(
                    File::open(path).map_err(|e| bad(e.to_string()))?,
                    Some(1000),
                )
                .map_err(|e| bad(e.to_string()))?;
            arrow::csv::ReaderBuilder::new(schema.into())
                .with_format(format)
                .build(file)
                .map_err(|e| bad(e.to_string()))?
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| bad(e.to_string()))?
        }
        _ => {
            return Err(
                bad("expected a .csv or .parquet file of state scores".into())
                    .hint("columns `state` and `score`"),
            );
        }
    };
    let mut scores = StateScores::default();
    for batch in &batches {
        add_batch(batch, &mut scores).map_err(|e| match e {
            Error::BadInput { message, .. } => bad(message),
            other => other,
        })?;
    }
    Ok(scores)
}

fn add_batch(batch: &RecordBatch, scores: &mut StateScores) -> Result<()> {
    let column = |name: &str, to: &DataType| {
        if let Some(message) = super::table::repeated_column(&batch.schema(), name) {
            return Err(Error::bad_input("", message));
        }
        let array = batch
            .column_by_name(name)
            .ok_or_else(|| Error::bad_input("", format!("column `{name}` is missing")))?;
        let strict = CastOptions {
            safe: false,
            ..CastOptions::default()
        };
        cast_with_options(array, to, &strict).map_err(|_| {
            Error::bad_input(
                "",
                format!(
                    "column `{name}`: expected {}, found {}",
                    if name == "state" { "text" } else { "numbers" },
                    array.data_type()
                ),
            )
        })
    };
    let states = column("state", &DataType::Utf8)?;
    let values = column("score", &DataType::Float64)?;
    let (states, values) = (
        states.as_string::<i32>(),
        values.as_primitive::<Float64Type>(),
    );
    for row in 0..batch.num_rows() {
        if states.is_null(row) || values.is_null(row) || !values.value(row).is_finite() {
            return Err(Error::bad_input(
                "",
                format!("row {row}: a state and a finite score are expected"),
            ));
        }
        let name = states.value(row);
        if scores.insert(name.to_owned(), values.value(row)).is_some() {
            return Err(Error::bad_input(
                "",
                format!("column `state`: {name:?} has more than one score"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_scores_are_read_and_errors_name_the_column() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("s.csv");
        std::fs::write(&good, "state,score\na,1.5\nb,-2\n").unwrap();
        let s = read(&good).unwrap();
        assert_eq!((s["a"], s["b"], s.len()), (1.5, -2.0, 2));
        let twice = dir.path().join("t.csv");
        std::fs::write(&twice, "state,score\na,1\na,2\n").unwrap();
        let err = read(&twice).unwrap_err().to_string();
        assert!(
            err.contains("t.csv") && err.contains("more than one score"),
            "{err}"
        );
        let missing = dir.path().join("m.csv");
        std::fs::write(&missing, "state,value\na,1\n").unwrap();
        let err = read(&missing).unwrap_err().to_string();
        assert!(
            err.contains("m.csv") && err.contains("column `score` is missing"),
            "{err}"
        );
        let text = dir.path().join("x.csv");
        std::fs::write(&text, "state,score\na,high\n").unwrap();
        let err = read(&text).unwrap_err().to_string();
        assert!(err.contains("column `score`: expected numbers"), "{err}");
        let copies = dir.path().join("c.csv");
        std::fs::write(&copies, "state,score,score\na,1,2\n").unwrap();
        let err = read(&copies).unwrap_err().to_string();
        assert!(
            err.contains("expected one column `score`, found 2 (columns 2, 3)"),
            "{err}"
        );
    }
}
