//! CSV files with a header row, read with arrow-csv into the same record batches as Parquet.
//!
//! Every column is read as text, so that numeric-looking state names stay as written (`007` is
//! not `7`); the count and step columns are then parsed here as integers, which lets a bad value
//! be reported with its line and column.

use super::Sink;
use super::table::{Kind, Layout};
use crate::error::{Error, Result};
use arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use arrow::csv::ReaderBuilder;
use arrow::csv::reader::Format;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::error::ArrowError;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

/// Rows per batch, as for Parquet.
const BATCH_ROWS: usize = 64 * 1024;

/// Reads one CSV file into `sink`.
pub(super) fn read(path: &Path, sink: &mut Sink) -> Result<()> {
    let read_error = |source| Error::Read {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(read_error)?;
    let (header, _) = Format::default()
        .with_header(true)
        .infer_schema(&mut file, Some(0))
        .map_err(|e| {
            Error::bad_input(path, format!("cannot read the CSV header: {e}")).at("line 1")
        })?;
    file.seek(SeekFrom::Start(0)).map_err(read_error)?;

    // The layout sees counts and steps as the integers they will be parsed into.
    let opts = sink.opts;
    let as_read = |integer: bool| {
        if integer {
            DataType::Int64
        } else {
            DataType::Utf8
        }
    };
    let logical = Schema::new(
        header
            .fields()
            .iter()
            .map(|f| {
                let integer = *f.name() == opts.count_column || *f.name() == opts.step_column;
                Field::new(f.name(), as_read(integer), true)
            })
            .collect::<Vec<_>>(),
    );
    let layout = Layout::resolve(&logical, opts, path)?;
    sink.begin_file(path, &layout)?;

    let text = Schema::new(
        header
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), DataType::Utf8, true))
            .collect::<Vec<_>>(),
    );
    let reader = ReaderBuilder::new(Arc::new(text))
        .with_header(true)
        .with_projection(layout.projection())
        .with_batch_size(BATCH_ROWS)
        .build(file)
        .map_err(|e| Error::bad_input(path, format!("cannot read CSV: {e}")))?;
    let positions = layout.positions();
    let mut file_row = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| {
            let message = match e {
                ArrowError::CsvError(m) | ArrowError::ParseError(m) => m,
                e => e.to_string(),
            };
            Error::bad_input(path, format!("invalid CSV: {message}"))
        })?;
        // Line of row `i` of this batch: the header is line 1.
        let locate = |i: usize| format!("line {}", file_row + i as u64 + 2);
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(positions.len());
        for (column, &p) in layout.columns.iter().zip(&positions) {
            let array = batch.column(p).clone();
            columns.push(match column.kind {
                Kind::Integer => parse_integers(&array).map_err(|i| {
                    let value = array.as_string::<i32>().value(i);
                    Error::bad_input(path, format!("expected an integer, found \"{value}\""))
                        .at(format!("{}, column `{}`", locate(i), column.name))
                })?,
                Kind::Text => array,
            });
        }
        let columns: Vec<&dyn Array> = columns.iter().map(|c| c.as_ref()).collect();
        sink.add_batch(path, &layout, &columns, &locate)?;
        file_row += batch.num_rows() as u64;
    }
    Ok(())
}

/// Parses a text column as `Int64` (nulls stay null); on failure, the first bad row.
fn parse_integers(array: &ArrayRef) -> std::result::Result<ArrayRef, usize> {
    let values = array
        .as_string::<i32>()
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Some(text) => text.trim().parse::<i64>().map(Some).map_err(|_| i),
            None => Ok(None),
        });
    Ok(Arc::new(
        values.collect::<std::result::Result<Int64Array, usize>>()?,
    ))
}
