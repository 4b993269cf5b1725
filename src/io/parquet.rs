//! Parquet files, read as Arrow record batches with only the used columns projected.
//!
//! String state columns are requested as dictionaries: dictionary-encoded column chunks (what
//! writers produce by default) then arrive as keys plus one shared dictionary per chunk, which
//! [`NameIds`](super::table::NameIds) maps once, so the per-row work is an array lookup.

use super::Sink;
use super::table::{Form, Kind, Layout};
use crate::error::{Error, Result};
use arrow::array::Array;
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::file::metadata::ParquetMetaData;
use rayon::prelude::*;
use std::cell::Cell;
use std::fs::File;
use std::io::Read;
use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Once;

/// Rows per batch: large enough to amortise per-batch work, small enough to stay in cache.
const BATCH_ROWS: usize = 64 * 1024;

/// Reads one Parquet file into `sink`, or for transitions adds its row groups to `pending`.
///
/// The parquet crate panics on some malformed pages (found by the `parquet_reader` fuzz target: a
/// division by zero in its plain byte-array decoder on a page that declares no values but holds
/// bytes, definition levels read past their buffer); such a panic is this file's error. The dataset is not used after an error,
/// so the rows already added to `sink` do not matter.
pub(super) fn read(path: &Path, sink: &mut Sink, pending: &mut Vec<Chunk>) -> Result<()> {
    contained(|| read_file(path, sink, pending))
        .unwrap_or_else(|panic| Err(panic_error(path, panic)))
}

/// Runs `read`, a read of the Parquet file `path` outside the loader (`detbal compare`), under
/// the same containment as [`read`]: a panic of the parquet crate is this file's error.
pub(crate) fn contain<T>(path: &Path, read: impl FnOnce() -> Result<T>) -> Result<T> {
    contained(read).unwrap_or_else(|panic| Err(panic_error(path, panic)))
}

/// The error for a panic of the parquet crate while reading `path`.
fn panic_error(path: &Path, panic: Box<dyn std::any::Any + Send>) -> Error {
    let reason = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message");
    Error::bad_input(
        path,
        format!("not a readable Parquet file: the Parquet reader failed on it ({reason})"),
    )
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

/// Reads one Parquet file: its footer now, and its rows now (trajectories) or as [`Chunk`]s
/// added to `pending` (transitions), which [`read_chunks`] aggregates in parallel.
fn read_file(path: &Path, sink: &mut Sink, pending: &mut Vec<Chunk>) -> Result<()> {
    let file = open(path)?;
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
    let metadata = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
        .map_err(|e| unreadable(path, e))?;
    check_chunks(metadata.metadata(), path)?;
    let layout = Layout::resolve(metadata.schema(), sink.opts, path)?;
    sink.begin_file(path, &layout)?;
    let metadata = keep_dictionaries(metadata, &layout);

    // First row (within the file) of each row group, to name where a row is.
    let mut starts = vec![0u64];
    for group in metadata.metadata().row_groups() {
        starts.push(starts.last().unwrap_or(&0) + group.num_rows().max(0) as u64);
    }
    let file_rows = *starts.last().unwrap_or(&0);
    let chunk = Chunk {
        path: path.to_owned(),
        metadata,
        layout,
        starts: Arc::new(starts),
        groups: 0..0,
        first_row: sink.next_row,
    };
    if chunk.layout.form == Form::Trajectory {
        // A run may continue in any later row: trajectories are read in order, in one sink.
        let groups = 0..chunk.metadata.metadata().num_row_groups();
        return Chunk { groups, ..chunk }.read(sink);
    }
    for g in 0..chunk.metadata.metadata().num_row_groups() {
        let first_row = sink.next_row + chunk.starts[g];
        pending.push(Chunk {
            groups: g..g + 1,
            first_row,
            starts: chunk.starts.clone(),
            metadata: chunk.metadata.clone(),
            layout: chunk.layout.clone(),
            path: chunk.path.clone(),
        });
    }
    sink.next_row += file_rows;
    Ok(())
}

/// Row groups of one transitions-form Parquet file, and where their rows sit in the dataset.
pub(super) struct Chunk {
    path: PathBuf,
    metadata: ArrowReaderMetadata,
    layout: Layout,
    /// First row (within the file) of each row group, and the file's row count last.
    starts: Arc<Vec<u64>>,
    groups: Range<usize>,
    /// Global row index of the chunk's first row.
    first_row: u64,
}

impl Chunk {
    fn rows(&self) -> u64 {
        self.starts[self.groups.end] - self.starts[self.groups.start]
    }

    /// Compressed bytes of the chunk's row groups (for the load bar).
    fn bytes(&self) -> u64 {
        let groups = self
            .groups
            .clone()
            .map(|g| self.metadata.metadata().row_group(g));
        groups.map(|g| g.compressed_size().max(0) as u64).sum()
    }

    /// Adds the chunk's rows to `sink`, whose next row must be the chunk's first.
    fn read(&self, sink: &mut Sink) -> Result<()> {
        let path = self.path.as_path();
        let group_of = |row: u64| self.starts.partition_point(|&s| s <= row).saturating_sub(1);
        let mask = ProjectionMask::roots(self.metadata.parquet_schema(), self.layout.projection());
        let reader =
            ParquetRecordBatchReaderBuilder::new_with_metadata(open(path)?, self.metadata.clone())
                .with_projection(mask)
                .with_row_groups(self.groups.clone().collect())
                .with_batch_size(BATCH_ROWS)
                .build()
                .map_err(|e| unreadable(path, e))?;
        let positions = self.layout.positions();
        let mut file_row = self.starts[self.groups.start];
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
            sink.add_batch(path, &self.layout, &columns, &locate)?;
            file_row += batch.num_rows() as u64;
        }
        Ok(())
    }
}

/// Rows below which pending chunks are read on the calling thread: splitting costs a merge.
const PARALLEL_ROWS: u64 = 4 * BATCH_ROWS as u64;

/// Reads `chunks` (consecutive in the dataset, starting at `sink`'s next row less their rows)
/// into `sink`: split into one contiguous run of row groups per thread, each aggregated into its
/// own partial sink, merged in dataset order so the result equals a sequential read. On errors in
/// several chunks, the first in dataset order is returned, as a sequential read would.
pub(super) fn read_chunks(chunks: Vec<Chunk>, sink: &mut Sink) -> Result<()> {
    let rows: u64 = chunks.iter().map(Chunk::rows).sum();
    let threads = rayon::current_num_threads() as u64;
    let Some(first_row) = chunks.first().map(|c| c.first_row) else {
        return Ok(());
    };
    let parts = if rows < PARALLEL_ROWS || threads < 2 {
        1
    } else {
        threads.min(chunks.len() as u64)
    };
    // Contiguous runs of chunks with about rows/parts rows each.
    let mut runs: Vec<&[Chunk]> = Vec::new();
    let (mut begin, mut taken) = (0, 0u64);
    for (i, chunk) in chunks.iter().enumerate() {
        taken += chunk.rows();
        if taken * parts >= rows * (runs.len() as u64 + 1) || i + 1 == chunks.len() {
            runs.push(&chunks[begin..=i]);
            begin = i + 1;
        }
    }
    let read_run = |run: &[Chunk], part: &mut Sink| -> Result<()> {
        run.iter().try_for_each(|chunk| contained_read(chunk, part))
    };
    let next_row = sink.next_row;
    if runs.len() == 1 {
        sink.next_row = first_row;
        let result = read_run(runs[0], sink);
        sink.next_row = next_row;
        return result;
    }
    let results: Vec<Result<Sink>> = runs
        .par_iter()
        .map(|run| {
            let mut part = sink.part(run[0].first_row);
            read_run(run, &mut part).map(|()| part)
        })
        .collect();
    for part in results {
        sink.absorb(part?)?;
    }
    Ok(())
}

/// [`Chunk::read`] with the parquet crate's panics contained (see [`read`]).
fn contained_read(chunk: &Chunk, sink: &mut Sink) -> Result<()> {
    contained(|| chunk.read(sink)).unwrap_or_else(|panic| Err(panic_error(&chunk.path, panic)))?;
    sink.progress.inc(chunk.bytes());
    Ok(())
}

fn open(path: &Path) -> Result<File> {
    File::open(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })
}

fn unreadable(path: &Path, e: parquet::errors::ParquetError) -> Error {
    Error::bad_input(path, format!("not a readable Parquet file: {e}"))
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
