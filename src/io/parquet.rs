//! Parquet files, read as Arrow record batches with only the used columns projected.
//!
//! String state columns are requested as dictionaries: dictionary-encoded column chunks (what
//! writers produce by default) then arrive as keys plus one shared dictionary per chunk, which
//! [`NameIds`](super::table::NameIds) maps once, so the per-row work is an array lookup.

use super::Sink;
use super::table::{Kind, Layout};
use crate::error::{Error, Result};
use arrow::array::Array;
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::file::metadata::ParquetMetaData;
use std::cell::Cell;
use std::fs::File;
use std::io::Read;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;
use std::sync::Once;

/// Rows per batch: large enough to amortise per-batch work, small enough to stay in cache.
const BATCH_ROWS: usize = 64 * 1024;

/// Reads one Parquet file into `sink`.
///
/// The parquet crate panics on some malformed pages (found by the `parquet_reader` fuzz target: a
/// division by zero in its plain byte-array decoder on a page that declares no values but holds
/// bytes, definition levels read past their buffer); such a panic is this file's error. The dataset is not used after an error,
/// so the rows already added to `sink` do not matter.
pub(super) fn read(path: &Path, sink: &mut Sink) -> Result<()> {
    contained(|| read_file(path, sink)).unwrap_or_else(|panic| {
        let reason = panic
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("no message");
        Err(Error::bad_input(
            path,
            format!("not a readable Parquet file: the Parquet reader failed on it ({reason})"),
        ))
    })
}

thread_local! {
    /// Set while this thread runs [`contained`]: its panics are errors, not crashes to report.
    static CONTAINED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, catching a panic without the panic hook's "thread … panicked" message (which would
/// read as a crash next to the clean error); panics elsewhere still reach the previous hook.
fn contained<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CONTAINED.with(Cell::get) {
                previous(info);
            }
        }));
    });
    CONTAINED.with(|c| c.set(true));
    let result = std::panic::catch_unwind(AssertUnwindSafe(f));
    CONTAINED.with(|c| c.set(false));
    result
}

fn read_file(path: &Path, sink: &mut Sink) -> Result<()> {
    let file = File::open(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    let unreadable = |e: parquet::errors::ParquetError| {
        Error::bad_input(path, format!("not a readable Parquet file: {e}"))
    };
    // The reader checks the magic at the end only; a file with a valid footer but another start
    // would decode its first page from the wrong bytes.
    let mut magic = [0u8; 4];
    let start = (&file).read_exact(&mut magic);
    if start.is_err() || &magic != b"PAR1" {
        return Err(Error::bad_input(
            path,
            format!(
                "not a readable Parquet file: it starts with {:?}, not the magic bytes \"PAR1\"",
                String::from_utf8_lossy(&magic)
            ),
        ));
    }
    let metadata =
        ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).map_err(unreadable)?;
    check_chunks(metadata.metadata(), path)?;
    let layout = Layout::resolve(metadata.schema(), sink.opts, path)?;
    sink.begin_file(path, &layout)?;
    let metadata = keep_dictionaries(metadata, &layout);

    // First row (within the file) of each row group, to name where a row is.
    let mut starts = vec![0u64];
    for group in metadata.metadata().row_groups() {
        starts.push(starts.last().unwrap_or(&0) + group.num_rows().max(0) as u64);
    }
    let group_of = |row: u64| starts.partition_point(|&s| s <= row).saturating_sub(1);

    let mask = ProjectionMask::roots(metadata.parquet_schema(), layout.projection());
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, metadata)
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(unreadable)?;
    let positions = layout.positions();
    let mut file_row = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| {
            Error::bad_input(path, format!("cannot decode the Parquet data: {e}"))
                .at(format!("row group {}", group_of(file_row)))
        })?;
        let columns: Vec<&dyn Array> = positions
            .iter()
            .map(|&p| batch.column(p).as_ref())
            .collect();
        let locate = |i: usize| {
            let row = file_row + i as u64;
            format!("row group {}, row {row}", group_of(row))
        };
        sink.add_batch(path, &layout, &columns, &locate)?;
        file_row += batch.num_rows() as u64;
    }
    Ok(())
}

/// Checks what the reader assumes of the footer without checking it: every column chunk starts
/// and extends by a non-negative number of bytes (`ColumnChunkMetaData::byte_range` panics
/// otherwise, found by the `parquet_reader` fuzz target).
fn check_chunks(metadata: &ParquetMetaData, path: &Path) -> Result<()> {
    for (g, group) in metadata.row_groups().iter().enumerate() {
        for chunk in group.columns() {
            let start = chunk
                .dictionary_page_offset()
                .unwrap_or(chunk.data_page_offset());
            let length = chunk.compressed_size();
            if start < 0 || length < 0 {
                return Err(Error::bad_input(
                    path,
                    format!(
                        "not a readable Parquet file: the footer gives column `{}` a negative \
                         offset ({start}) or length ({length})",
                        chunk.column_path()
                    ),
                )
                .at(format!("row group {g}")));
            }
        }
    }
    Ok(())
}

/// Asks the reader for the text columns of `layout` as `Dictionary(Int32, Utf8)`. A schema the
/// reader refuses (possible only for unusual embedded types) just keeps the plain read.
fn keep_dictionaries(metadata: ArrowReaderMetadata, layout: &Layout) -> ArrowReaderMetadata {
    let schema = metadata.schema();
    let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let text = layout
                .columns
                .iter()
                .any(|c| c.index == i && c.kind == Kind::Text);
            let field = field.as_ref().clone();
            if text {
                field.with_data_type(dictionary.clone())
            } else {
                field
            }
        })
        .collect();
    let hinted = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    let options = ArrowReaderOptions::new().with_schema(hinted);
    ArrowReaderMetadata::try_new(metadata.metadata().clone(), options).unwrap_or(metadata)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::LoadOptions;
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use arrow::record_batch::RecordBatch;
    use parquet::arrow::ArrowWriter;

    #[test]
    fn text_state_columns_are_read_as_dictionaries() {
        let batch = RecordBatch::try_from_iter([
            (
                "source",
                Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef,
            ),
            ("target", Arc::new(Int64Array::from(vec![1, 2]))),
            ("note", Arc::new(StringArray::from(vec!["x", "y"]))),
        ])
        .unwrap();
        let file = tempfile::tempfile().unwrap();
        let mut writer =
            ArrowWriter::try_new(file.try_clone().unwrap(), batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();

        let metadata = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).unwrap();
        let path = Path::new("test.parquet");
        let layout = Layout::resolve(metadata.schema(), &LoadOptions::default(), path).unwrap();
        let schema = keep_dictionaries(metadata, &layout).schema().clone();
        let types: Vec<&DataType> = schema.fields().iter().map(|f| f.data_type()).collect();
        let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        assert_eq!(types, [&dictionary, &DataType::Int64, &DataType::Utf8]);
    }
}
