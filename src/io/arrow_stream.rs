//! A dataset already in memory as an Arrow stream (the Python package hands over a
//! `pyarrow.Table`, a pandas or polars frame through the Arrow C stream interface), read through
//! the same [`Layout`] and [`Sink`] as a Parquet or CSV file, so every column rule and message is
//! the files'.
//!
//! The stream stands in for one file named `name` (`<pandas.DataFrame>`): in messages, where rows
//! are located as `row r` (from 0, across batches), and as the report's one input path. The
//! report counts no file and has no content hash (there are no file bytes); its format is
//! `arrow/transitions` or `arrow/trajectory`.

use super::table::{Form, Layout};
use super::{LoadOptions, LoadedLog, Sink, check_testable};
use crate::error::{Error, Result};
use arrow::array::Array;
use arrow::record_batch::RecordBatchReader;
use std::path::Path;

/// Reads the batches of `reader` as one dataset, `name` standing for its path in messages.
pub fn load_stream(
    reader: impl RecordBatchReader,
    name: &str,
    opts: &LoadOptions,
) -> Result<LoadedLog> {
    let path = Path::new(name);
    // A stream is read once: trajectory steps are buffered (and spilled) from the start, never
    // streamed on the hope that the rows are in order.
    let mut sink = Sink::new(opts, false);
    let layout = Layout::resolve(&reader.schema(), opts, path)?;
    sink.begin_file(path, &layout, None)?;
    let mut first_row = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| {
            Error::bad_input(path, format!("cannot read the Arrow stream: {e}"))
                .at(format!("after row {first_row}"))
        })?;
        let columns: Vec<&dyn Array> = layout
            .columns
            .iter()
            .map(|c| batch.column(c.index).as_ref())
            .collect();
        let locate = |i: usize| format!("row {}", first_row + i as u64);
        sink.add_batch(path, &layout, &columns, &locate)?;
        first_row += batch.num_rows() as u64;
    }
    let form = match layout.form {
        Form::Trajectory => "trajectory",
        _ => "transitions",
    };
    let paths = [path.to_owned()];
    let mut log = sink.finish(&paths, String::new(), format!("arrow/{form}"))?;
    check_testable(&log, &paths)?;
    log.summary.files = 0;
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Float64Array, StringArray, UInt64Array};
    use arrow::record_batch::{RecordBatch, RecordBatchIterator};
    use std::sync::Arc;

    fn stream(columns: Vec<(&str, ArrayRef)>) -> impl RecordBatchReader {
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let schema = batch.schema();
        // Two batches: rows are numbered across them.
        let (a, b) = (batch.slice(0, 2), batch.slice(2, batch.num_rows() - 2));
        RecordBatchIterator::new([Ok(a), Ok(b)], schema)
    }

    fn names(values: &[&str]) -> ArrayRef {
        Arc::new(StringArray::from(values.to_vec()))
    }

    #[test]
    fn a_stream_is_read_as_a_file_is() {
        let log = load_stream(
            stream(vec![
                ("source", names(&["a", "b", "a", "c"])),
                ("target", names(&["b", "a", "c", "a"])),
                ("count", Arc::new(UInt64Array::from(vec![3, 2, 1, 5]))),
            ]),
            "<test>",
            &LoadOptions::default(),
        )
        .unwrap();
        assert_eq!(log.summary.rows, 4);
        assert_eq!(log.summary.transitions, 11);
        assert_eq!(log.summary.format, "arrow/transitions");
        assert_eq!(log.summary.paths, ["<test>"]);
        assert_eq!(
            (log.summary.files, log.summary.content_hash.as_str()),
            (0, "")
        );
        assert_eq!(log.graph.n_edges(), 4);
    }

    #[test]
    fn a_bad_column_is_named_with_the_stream() {
        let error = load_stream(
            stream(vec![
                ("source", Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0]))),
                ("target", names(&["b", "a", "c"])),
            ]),
            "<pandas.DataFrame>",
            &LoadOptions::default(),
        )
        .err()
        .unwrap();
        assert_eq!(
            error.to_string(),
            "<pandas.DataFrame> (column `source`): expected a string or integer column, found Float64\n  \
             hint: counts, steps and integer names are whole numbers: cast the column to an integer type"
        );
    }

    #[test]
    fn a_bad_row_is_located_across_batches() {
        let error = load_stream(
            stream(vec![
                ("source", names(&["a", "b", "a"])),
                ("target", names(&["b", "a", "c"])),
                ("count", Arc::new(UInt64Array::from(vec![1, 1, 0]))),
            ]),
            "<pyarrow.Table>",
            &LoadOptions::default(),
        )
        .err()
        .unwrap();
        assert_eq!(
            error.to_string(),
            "<pyarrow.Table> (row 2, column `count`): expected a count ≥ 1, found 0"
        );
    }
}
