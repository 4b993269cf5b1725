//! CSV files with a header row, read with arrow-csv into the same record batches as Parquet.
//!
//! Every column is read as text, so that numeric-looking state names stay as written (`007` is
//! not `7`); the count and step columns are then parsed here as integers, which lets a bad value
//! be reported with its line and column. Lines are physical lines of the file (from 1, the header
//! is line 1): a quoted field holding a line break makes a record span several, so an error's
//! line is found by scanning the file again, only when there is an error.

use super::table::{Kind, Layout};
use super::{Handle, Sink};
use crate::error::{Error, Result};
use arrow::array::{Array, ArrayRef, AsArray, Int64Array, UInt64Array};
use arrow::csv::ReaderBuilder;
use arrow::csv::reader::Format;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::error::ArrowError;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

/// Rows per batch, as for Parquet.
const BATCH_ROWS: usize = 64 * 1024;

/// Reads one CSV file into `sink`.
pub(super) fn read(path: &Path, handle: &Handle, sink: &mut Sink) -> Result<()> {
    let (header, _) = Format::default()
        .with_header(true)
        .infer_schema(BufReader::new(handle.reader_at(0)), Some(0))
        .map_err(|e| {
            Error::bad_input(path, format!("cannot read the CSV header: {e}")).at("line 1")
        })?;

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
    sink.begin_file(path, &layout, None)?;

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
        .build(handle.reader_at(0))
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
        // Physical line of row `i` of this batch (only asked for on an error).
        let locate = |i: usize| format!("line {}", physical_line(handle, file_row + i as u64));
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
        if sink.read_again {
            break;
        }
        file_row += batch.num_rows() as u64;
    }
    Ok(())
}

/// The physical line where data record `record` of the CSV file `path` starts, the file opened
/// again (for errors found after the file was read).
pub(super) fn line_of(path: &Path, record: u64) -> u64 {
    Handle::open(path).map_or(record + 2, |handle| physical_line(&handle, record))
}

/// The physical line (from 1) where data record `record` (from 0, after the header) starts, by
/// reading the file again with the same CSV grammar (`csv-core`'s, as arrow-csv's). Without a
/// position (the file changed under us, which the handle should prevent), the record's number
/// as if every record took one line.
fn physical_line(handle: &Handle, record: u64) -> u64 {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(BufReader::new(handle.reader_at(0)));
    let mut row = ::csv::ByteRecord::new();
    // Record 0 is the header.
    for _ in 0..=record + 1 {
        match reader.read_byte_record(&mut row) {
            Ok(true) => {}
            _ => return record + 2,
        }
    }
    row.position().map_or(record + 2, |p| p.line())
}

/// Parses a text column of integers (nulls stay null) as `Int64`, or as `UInt64` when a value
/// is past `i64::MAX` and none is negative (counts take the whole u64 range, as in Parquet); on
/// failure, the first bad row.
fn parse_integers(array: &ArrayRef) -> std::result::Result<ArrayRef, usize> {
    let texts = array.as_string::<i32>();
    let values = texts
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Some(text) => text.trim().parse::<i128>().map(Some).map_err(|_| i),
            None => Ok(None),
        })
        .collect::<std::result::Result<Vec<Option<i128>>, usize>>()?;
    let signed = |v: &Option<i128>| v.is_none_or(|v| i64::try_from(v).is_ok());
    if values.iter().all(signed) {
        return Ok(Arc::new(
            values
                .iter()
                .map(|v| v.map(|v| v as i64))
                .collect::<Int64Array>(),
        ));
    }
    let unsigned = |v: &Option<i128>| v.is_none_or(|v| u64::try_from(v).is_ok());
    if values.iter().all(unsigned) {
        return Ok(Arc::new(
            values
                .iter()
                .map(|v| v.map(|v| v as u64))
                .collect::<UInt64Array>(),
        ));
    }
    // Negative values beside ones past i64::MAX, or values past 64 bits: the first such value
    // that fits neither, else the first negative one (no column type holds both).
    let bad = values.iter().position(|v| !signed(v) && !unsigned(v));
    Err(bad.unwrap_or_else(|| values.iter().position(|v| !unsigned(v)).unwrap_or(0)))
}
