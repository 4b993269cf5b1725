//! Parquet files, read as Arrow record batches with only the used columns projected, one row
//! group at a time (or a run of its rows: a file of fewer row groups than threads is cut into
//! pieces of rows, so that it too loads on every thread).
//!
//! String state columns are requested as dictionaries where the row group's pages hold
//! dictionary keys (what writers produce by default): they then arrive as keys plus one shared
//! dictionary per chunk, which [`NameIds`](super::table::NameIds) maps once, so the per-row work
//! is an array lookup. Column chunks with plain pages (a writer's dictionary overflowed: millions
//! of distinct names) are read as `Utf8View`, each row's name looked up once (see [`read_as`]).

use super::table::{Form, Kind, Layout};
use super::{At, Handle, Sink};
use crate::error::{Error, Result};
use arrow::array::Array;
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
    RowSelector,
};
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::metadata::{ColumnChunkMetaData, ParquetMetaData};
use parquet::file::reader::{ChunkReader, Length};
use rayon::prelude::*;
use std::cell::Cell;
use std::io::{BufReader, Read};
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
pub(super) fn read(
    path: &Path,
    handle: &Handle,
    sink: &mut Sink,
    pending: &mut Vec<Chunk>,
) -> Result<()> {
    contained(|| read_file(path, handle, sink, pending))
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
fn read_file(
    path: &Path,
    handle: &Handle,
    sink: &mut Sink,
    pending: &mut Vec<Chunk>,
) -> Result<()> {
    let source = Source(handle.clone());
    // The reader checks the magic at the end only; a file with a valid footer but another start
    // would decode its first page from the wrong bytes.
    let magic = handle.bytes(0, 4).unwrap_or_default();
    if magic != b"PAR1" {
        return Err(Error::bad_input(
            path,
            format!(
                "not a readable Parquet file: it starts with {:?}, not the magic bytes \"PAR1\"",
                String::from_utf8_lossy(&magic)
            ),
        ));
    }
    let metadata = ArrowReaderMetadata::load(&source, ArrowReaderOptions::new())
        .map_err(|e| unreadable(path, e))?;
    check_chunks(metadata.metadata(), handle.len(), path)?;
    let layout = Layout::resolve(metadata.schema(), sink.opts, path)?;
    let encoded = check_pages(metadata.metadata(), handle, &layout.projection(), path)?;

    // First row (within the file) of each row group, to name where a row is.
    let mut starts = vec![0u64];
    for group in metadata.metadata().row_groups() {
        starts.push(starts.last().unwrap_or(&0) + group.num_rows().max(0) as u64);
    }
    let file_rows = *starts.last().unwrap_or(&0);
    let starts = Arc::new(starts);
    sink.begin_file(path, &layout, Some(starts.clone()))?;
    let chunk = Chunk {
        path: path.to_owned(),
        source,
        metadata,
        layout,
        keys_only: Arc::new(encoded),
        starts,
        groups: 0..0,
        rows: 0..file_rows,
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
            rows: chunk.starts[g]..chunk.starts[g + 1],
            first_row,
            ..chunk.clone()
        });
    }
    sink.next_row += file_rows;
    Ok(())
}

/// Row groups of one transitions-form Parquet file, and where their rows sit in the dataset.
#[derive(Clone)]
pub(super) struct Chunk {
    path: PathBuf,
    /// The file, as opened once by [`super::read_file`].
    source: Source,
    metadata: ArrowReaderMetadata,
    layout: Layout,
    /// Per row group, the columns (roots) whose data pages all hold dictionary keys.
    keys_only: Arc<Vec<Vec<usize>>>,
    /// First row (within the file) of each row group, and the file's row count last.
    starts: Arc<Vec<u64>>,
    groups: Range<usize>,
    /// The rows to read, within the file; all of `groups` but where [`Chunk::split`] cut one
    /// row group into pieces.
    rows: Range<u64>,
    /// Global row index of the chunk's first row.
    first_row: u64,
}

impl Chunk {
    fn rows(&self) -> u64 {
        self.rows.end - self.rows.start
    }

    /// Compressed bytes of the chunk's rows (for the load bar), a row group's split in
    /// proportion to the rows.
    fn bytes(&self) -> u64 {
        let groups = self
            .groups
            .clone()
            .map(|g| self.metadata.metadata().row_group(g));
        let bytes: u64 = groups.map(|g| g.compressed_size().max(0) as u64).sum();
        let group_rows = self.starts[self.groups.end] - self.starts[self.groups.start];
        match group_rows {
            0 => bytes,
            all => (bytes as u128 * self.rows() as u128 / all as u128) as u64,
        }
    }

    /// The chunk (one row group) cut into `pieces` runs of consecutive rows, read apart and
    /// merged like row groups: a file of one large row group then loads on every thread.
    fn split(self, pieces: u64) -> Vec<Chunk> {
        let (start, rows) = (self.rows.start, self.rows());
        let pieces = pieces.clamp(1, rows.max(1));
        (0..pieces)
            .map(|i| {
                let (from, to) = (rows * i / pieces, rows * (i + 1) / pieces);
                Chunk {
                    rows: start + from..start + to,
                    first_row: self.first_row + from,
                    ..self.clone()
                }
            })
            .collect()
    }

    /// Adds the chunk's rows to `sink`, whose next row must be the chunk's first.
    fn read(&self, sink: &mut Sink) -> Result<()> {
        self.groups
            .clone()
            .try_for_each(|g| self.read_group(g, sink))
    }

    /// Adds the rows of row group `g`, read with its own choice of column types (see
    /// [`read_as`]).
    fn read_group(&self, g: usize, sink: &mut Sink) -> Result<()> {
        let path = self.path.as_path();
        let metadata = read_as(&self.metadata, &self.layout, &self.keys_only[g]);
        let mask = ProjectionMask::roots(metadata.parquet_schema(), self.layout.projection());
        let source = Source(self.source.0.clone());
        let group = self.starts[g]..self.starts[g + 1];
        let rows = group.start.max(self.rows.start)..group.end.min(self.rows.end);
        let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(source, metadata)
            .with_projection(mask)
            .with_row_groups(vec![g])
            .with_batch_size(BATCH_ROWS);
        if rows != group {
            // Pages before the piece are skipped by their headers (or the offset index).
            builder = builder.with_row_selection(RowSelection::from(vec![
                RowSelector::skip((rows.start - group.start) as usize),
                RowSelector::select((rows.end - rows.start) as usize),
            ]));
        }
        let reader = builder.build().map_err(|e| unreadable(path, e))?;
        let positions = self.layout.positions();
        let mut file_row = rows.start;
        for batch in reader {
            let batch = batch.map_err(|e| {
                Error::bad_input(path, format!("cannot decode the Parquet data: {e}"))
                    .at(format!("row group {g}"))
            })?;
            let columns: Vec<&dyn Array> = positions
                .iter()
                .map(|&p| batch.column(p).as_ref())
                .collect();
            let locate = |i: usize| format!("row group {g}, row {}", file_row + i as u64);
            sink.add_batch(path, &self.layout, &columns, &locate)?;
            if sink.read_again {
                break;
            }
            file_row += batch.num_rows() as u64;
        }
        Ok(())
    }
}

/// Rows below which pending chunks are read on the calling thread: splitting costs a merge.
const PARALLEL_ROWS: u64 = 4 * BATCH_ROWS as u64;

/// Reads `chunks` (consecutive in the dataset, starting at `sink`'s next row less their rows)
/// into `sink`: split into one contiguous run of row groups (or pieces of them, when there are
/// fewer row groups than threads) per thread, each aggregated into its
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
        threads
    };
    // Fewer row groups than threads: the large ones are cut into pieces of about rows/parts.
    let chunks: Vec<Chunk> = if (chunks.len() as u64) < parts {
        let piece = rows.div_ceil(parts);
        (chunks.into_iter())
            .flat_map(|chunk| {
                let pieces = chunk.rows().div_ceil(piece);
                chunk.split(pieces)
            })
            .collect()
    } else {
        chunks
    };
    let parts = parts.min(chunks.len() as u64);
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

/// The parquet crate's view of a [`Handle`]: positioned reads of the one open file, which never
/// allocate for bytes past its end (the crate's `File` reader allocates what a page header
/// claims before finding the file shorter).
#[derive(Clone)]
pub(super) struct Source(Handle);

impl Length for Source {
    fn len(&self) -> u64 {
        self.0.len()
    }
}

impl ChunkReader for Source {
    type T = BufReader<At>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(BufReader::new(self.0.reader_at(start)))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        let bytes = self.0.bytes(start, length as u64);
        bytes.map(bytes::Bytes::from).map_err(ParquetError::from)
    }
}

fn unreadable(path: &Path, e: parquet::errors::ParquetError) -> Error {
    Error::bad_input(path, format!("not a readable Parquet file: {e}"))
}

/// Checks what the reader assumes of the footer without checking it: every column chunk starts
/// and extends by a non-negative number of bytes (`ColumnChunkMetaData::byte_range` panics
/// otherwise, found by the `parquet_reader` fuzz target) and lies within the file; the row groups'
/// rows add up to the file's.
fn check_chunks(metadata: &ParquetMetaData, file_len: u64, path: &Path) -> Result<()> {
    let footer_error =
        |message: String| Error::bad_input(path, format!("not a readable Parquet file: {message}"));
    let mut rows = 0i64;
    for (g, group) in metadata.row_groups().iter().enumerate() {
        for chunk in group.columns() {
            let start = chunk
                .dictionary_page_offset()
                .unwrap_or(chunk.data_page_offset());
            let length = chunk.compressed_size();
            let name = chunk.column_path().string();
            if start < 0 || length < 0 {
                return Err(footer_error(format!(
                    "the footer gives column `{name}` a negative offset ({start}) or length \
                     ({length})"
                ))
                .at(format!("row group {g}, column `{name}`")));
            }
            // Past the leading magic, before the footer's length and trailing magic.
            let end = start as u64 + length as u64;
            if start < 4 || end > file_len.saturating_sub(8) {
                return Err(footer_error(format!(
                    "the footer puts column `{name}` at bytes {start}..{end}, outside the data of \
                     the {file_len}-byte file"
                ))
                .at(format!("row group {g}, column `{name}`")));
            }
        }
        if group.num_rows() < 0 {
            return Err(footer_error(format!(
                "the footer gives a negative number of rows ({})",
                group.num_rows()
            ))
            .at(format!("row group {g}")));
        }
        rows = rows.saturating_add(group.num_rows());
    }
    let claimed = metadata.file_metadata().num_rows();
    if claimed != rows {
        return Err(footer_error(format!(
            "the footer claims {claimed} rows, but its row groups hold {rows}"
        )));
    }
    Ok(())
}

/// Ratio of a page's uncompressed to compressed size beyond which its header is taken as corrupt:
/// above what the codecs reach on data that Parquet's own encodings have not already shrunk.
const MAX_RATIO: u64 = 1 << 16;
/// Uncompressed bytes any compressed page may claim, whatever its compressed size.
const MIN_PAGE_ALLOWANCE: u64 = 1 << 20;

/// Reads the header of every page of the column chunks read (the columns of `projection`, by
/// root index) and checks each page's sizes before the parquet crate reads it, which allocates
/// what a header claims: the compressed size must fit in what remains of the column chunk, the
/// uncompressed size in the chunk's uncompressed total and in what the codec could expand the
/// compressed bytes to. The data pages must hold the chunk's values, and a flat column one value
/// per row of its row group, so the footer's row counts are what the pages hold.
///
/// Returns, per row group, the roots of `projection` whose data pages all hold dictionary keys
/// (see [`read_as`]).
fn check_pages(
    metadata: &ParquetMetaData,
    handle: &Handle,
    projection: &[usize],
    path: &Path,
) -> Result<Vec<Vec<usize>>> {
    let schema = metadata.file_metadata().schema_descr();
    let mut encoded = Vec::with_capacity(metadata.num_row_groups());
    for (g, group) in metadata.row_groups().iter().enumerate() {
        let mut keys_only = projection.to_vec();
        for (c, chunk) in group.columns().iter().enumerate() {
            let root = schema.get_column_root_idx(c);
            if !projection.contains(&root) {
                continue;
            }
            let name = chunk.column_path().string();
            let corrupt = |message: String| {
                Error::bad_input(path, format!("not a readable Parquet file: {message}"))
                    .at(format!("row group {g}, column `{name}`"))
            };
            let flat = schema.column(c).max_rep_level() == 0;
            if flat && chunk.num_values() != group.num_rows() {
                return Err(corrupt(format!(
                    "the footer gives the row group {} rows, but the column {} values (one per \
                     row)",
                    group.num_rows(),
                    chunk.num_values()
                )));
            }
            if !check_chunk_pages(chunk, handle).map_err(corrupt)? {
                keys_only.retain(|&r| r != root);
            }
        }
        encoded.push(keys_only);
    }
    Ok(encoded)
}

/// Walks the page headers of one column chunk (see [`check_pages`]); whether all its data pages
/// hold dictionary keys. The error is the message of a corrupt chunk.
fn check_chunk_pages(
    chunk: &ColumnChunkMetaData,
    handle: &Handle,
) -> std::result::Result<bool, String> {
    let (start, length) = chunk.byte_range();
    let bounds = ChunkBounds {
        end: start + length,
        uncompressed: chunk.uncompressed_size().max(0) as u64,
        codec: chunk.compression(),
    };
    let end = bounds.end;
    let chunk_values = chunk.num_values().max(0) as u64;
    let (mut at, mut values, mut keys_only) = (start, 0u64, true);
    // As the parquet crate, up to the chunk's values: bytes after them are not read.
    while at < end && values < chunk_values {
        let mut reader = Compact::new(BufReader::new(handle.reader_at(at).take(end - at)));
        // A header that does not parse is this file's error here: the parquet crate's own reader
        // may loop for ever on it (a list of 2^31 doubles past the end of the file, or of
        // booleans, which it skips without reading a byte).
        let header = reader
            .page_header()
            .map_err(|e| format!("the page header at byte {at} cannot be read ({e})"))?;
        let body = at + reader.read;
        let compressed = bounds.page_size(&header, at, body)?;
        if let Some(n) = header.values {
            values = values.saturating_add(n.max(0) as u64);
        }
        if header.dictionary_keys == Some(false) {
            keys_only = false;
        }
        at = body + compressed;
    }
    if values != chunk_values {
        return Err(format!(
            "the footer gives the column {} values, but its pages hold {values}",
            chunk.num_values()
        ));
    }
    Ok(keys_only)
}

/// What bounds the sizes a page of one column chunk may claim.
struct ChunkBounds {
    /// The byte after the chunk.
    end: u64,
    /// The chunk's uncompressed bytes.
    uncompressed: u64,
    codec: Compression,
}

impl ChunkBounds {
    /// The compressed size of the page whose header starts at byte `at` and whose body at
    /// `body`, once both its sizes are found possible (else the message why not).
    fn page_size(
        &self,
        header: &PageHeader,
        at: u64,
        body: u64,
    ) -> std::result::Result<u64, String> {
        let (end, codec, chunk_uncompressed) = (self.end, self.codec, self.uncompressed);
        let (compressed, uncompressed) = (header.compressed, header.uncompressed);
        if compressed < 0 || uncompressed < 0 {
            return Err(format!(
                "the page at byte {at} claims a negative size ({compressed} bytes compressed, \
                 {uncompressed} uncompressed)"
            ));
        }
        let (compressed, uncompressed) = (compressed as u64, uncompressed as u64);
        if compressed > end - body {
            return Err(format!(
                "the page at byte {at} claims {compressed} bytes, but its column chunk has {} \
                 bytes left (it ends at byte {end})",
                end - body
            ));
        }
        let expandable = match codec {
            Compression::UNCOMPRESSED => compressed,
            _ => (compressed.saturating_mul(MAX_RATIO)).max(MIN_PAGE_ALLOWANCE),
        };
        if uncompressed > expandable.min(chunk_uncompressed) {
            return Err(format!(
                "the page at byte {at} claims {uncompressed} bytes uncompressed, more than its \
                 {compressed} {codec} bytes can hold or than the column chunk's \
                 {chunk_uncompressed} uncompressed bytes"
            ));
        }
        Ok(compressed)
    }
}

/// What [`check_pages`] needs of a Thrift `PageHeader`.
struct PageHeader {
    uncompressed: i64,
    compressed: i64,
    /// `num_values` of a data page (v1 or v2); `None` for dictionary and index pages.
    values: Option<i64>,
    /// Whether a data page's values are dictionary keys; `None` for other pages.
    dictionary_keys: Option<bool>,
}

/// A reader of the Thrift compact protocol, just enough to read a page header and skip the rest.
struct Compact<R> {
    reader: R,
    /// Bytes read so far.
    read: u64,
}

/// Structs nested deeper than this are taken as corrupt (a page header nests three deep).
const MAX_DEPTH: u32 = 16;

impl<R: Read> Compact<R> {
    fn new(reader: R) -> Self {
        Compact { reader, read: 0 }
    }

    fn byte(&mut self) -> std::io::Result<u8> {
        let mut b = [0u8];
        self.reader.read_exact(&mut b)?;
        self.read += 1;
        Ok(b[0])
    }

    fn varint(&mut self) -> std::io::Result<u64> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(invalid("a varint longer than 10 bytes"))
    }

    /// A zigzag-encoded integer.
    fn int(&mut self) -> std::io::Result<i64> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    /// The next field's id and type, `None` at the struct's end.
    fn field(&mut self, last: &mut i16) -> std::io::Result<Option<(i16, u8)>> {
        let b = self.byte()?;
        if b == 0 {
            return Ok(None);
        }
        let id = match b >> 4 {
            0 => i16::try_from(self.int()?).map_err(|_| invalid("a field id past i16"))?,
            delta => last.saturating_add(i16::from(delta)),
        };
        *last = id;
        Ok(Some((id, b & 0x0f)))
    }

    /// Skips a value of compact type `ty` (as a field: booleans have no bytes).
    fn skip(&mut self, ty: u8, depth: u32) -> std::io::Result<()> {
        if depth > MAX_DEPTH {
            return Err(invalid("structs nested too deep"));
        }
        match ty {
            1 | 2 => {}
            3 => {
                self.byte()?;
            }
            4..=6 => {
                self.varint()?;
            }
            7 => {
                for _ in 0..8 {
                    self.byte()?;
                }
            }
            8 => {
                let n = self.varint()?;
                let skipped = std::io::copy(&mut (&mut self.reader).take(n), &mut std::io::sink())?;
                self.read += skipped;
                if skipped != n {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
            }
            9 | 10 => {
                let b = self.byte()?;
                let n = match b >> 4 {
                    15 => self.varint()?,
                    n => u64::from(n),
                };
                let element = in_collection(b & 0x0f)?;
                for _ in 0..n {
                    self.skip(element, depth + 1)?;
                }
            }
            11 => {
                let n = self.varint()?;
                if n > 0 {
                    let types = self.byte()?;
                    let (key, value) = (in_collection(types >> 4)?, in_collection(types & 0x0f)?);
                    for _ in 0..n {
                        self.skip(key, depth + 1)?;
                        self.skip(value, depth + 1)?;
                    }
                }
            }
            // A UUID.
            13 => {
                for _ in 0..16 {
                    self.byte()?;
                }
            }
            12 => {
                let mut last = 0;
                while let Some((_, t)) = self.field(&mut last)? {
                    self.skip(t, depth + 1)?;
                }
            }
            t => return Err(invalid(&format!("unknown Thrift type {t}"))),
        }
        Ok(())
    }

    /// `num_values` and `encoding` of a data page header (v1: fields 1 and 2; v2: 1 and 4).
    fn data_page(&mut self, v2: bool) -> std::io::Result<(i64, Option<i64>)> {
        let (mut last, mut values, mut encoding) = (0, 0, None);
        let encoding_field = if v2 { 4 } else { 2 };
        while let Some((id, t)) = self.field(&mut last)? {
            match (id, t) {
                (1, 5) => values = self.int()?,
                (id, 5) if id == encoding_field => encoding = Some(self.int()?),
                _ => self.skip(t, 1)?,
            }
        }
        Ok((values, encoding))
    }

    /// A `PageHeader`: 1 type, 2 uncompressed_page_size, 3 compressed_page_size, 5 data page
    /// header, 7 dictionary page header, 8 data page header v2.
    fn page_header(&mut self) -> std::io::Result<PageHeader> {
        let (mut last, mut sizes, mut data) = (0, [None, None], None);
        while let Some((id, t)) = self.field(&mut last)? {
            match (id, t) {
                (2, 5) => sizes[0] = Some(self.int()?),
                (3, 5) => sizes[1] = Some(self.int()?),
                (5 | 8, 12) => data = Some(self.data_page(id == 8)?),
                _ => self.skip(t, 0)?,
            }
        }
        match sizes {
            [Some(uncompressed), Some(compressed)] => Ok(PageHeader {
                uncompressed,
                compressed,
                values: data.map(|(values, _)| values),
                dictionary_keys: data.map(|(_, encoding)| {
                    matches!(encoding, Some(PLAIN_DICTIONARY | RLE_DICTIONARY))
                }),
            }),
            _ => Err(invalid("no page sizes")),
        }
    }
}

/// The Thrift values of the two dictionary-key encodings of a data page.
const PLAIN_DICTIONARY: i64 = 2;
const RLE_DICTIONARY: i64 = 8;

/// The compact type `ty` of the elements of a list, set or map, refused when boolean: no page
/// header holds such a collection, and the parquet crate skips its elements without reading a
/// byte (so that it would read what follows otherwise than [`Compact`] did, or loop up to 2^31
/// times per collection); skipped as fields, booleans without bytes would loop up to 2^64 times.
fn in_collection(ty: u8) -> std::io::Result<u8> {
    match ty {
        1 | 2 => Err(invalid("a list, set or map of booleans")),
        t => Ok(t),
    }
}

fn invalid(message: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.to_owned())
}

/// The reader's view of a row group: the text columns of `layout` as `Dictionary(Int32, Utf8)`
/// where every data page holds dictionary keys (`keys_only`, by root index), so that each
/// dictionary value is mapped once (what writers produce by default); the others as `Utf8View`.
/// Past its size limit a writer's dictionary falls back to plain pages (millions of distinct
/// names): asked for a dictionary, the reader would then build one per batch by hashing every
/// value, before [`NameIds`](super::table::NameIds) hashes them again. A schema the reader
/// refuses (possible only for unusual embedded types) keeps the plain read.
fn read_as(
    metadata: &ArrowReaderMetadata,
    layout: &Layout,
    keys_only: &[usize],
) -> ArrowReaderMetadata {
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
            match (text, keys_only.contains(&i)) {
                (false, _) => field,
                (true, true) => field.with_data_type(dictionary.clone()),
                (true, false) => field.with_data_type(DataType::Utf8View),
            }
        })
        .collect();
    let hinted = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    let options = ArrowReaderOptions::new().with_schema(hinted);
    ArrowReaderMetadata::try_new(metadata.metadata().clone(), options)
        .unwrap_or_else(|_| metadata.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::LoadOptions;
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use arrow::record_batch::RecordBatch;
    use parquet::arrow::ArrowWriter;

    /// A page header whose field 4 is a map or a list of booleans claiming 2^63 entries: refused
    /// at once (skipping booleans without reading a byte looped 2^63 times; `fuzz_regressions`
    /// has the file). A list of doubles past the end of the bytes stops there.
    #[test]
    fn collections_of_booleans_and_truncated_lists_are_refused() {
        let huge = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
        let map = [&[0x4b][..], &huge, &[0x11, 1, 0]].concat();
        let list = [&[0x49, 0xf1][..], &huge, &[1, 0]].concat();
        for header in [map, list] {
            let mut reader = Compact::new(&header[..]);
            let error = reader
                .page_header()
                .err()
                .expect("the header should not parse");
            assert!(error.to_string().contains("of booleans"), "{error}");
        }
        let doubles = [&[0x49, 0xf7][..], &huge, &[0; 8]].concat();
        let error = Compact::new(&doubles[..]).page_header().err();
        assert_eq!(
            error.expect("the header should not parse").kind(),
            std::io::ErrorKind::UnexpectedEof
        );
    }

    #[test]
    fn text_state_columns_are_read_as_dictionaries_where_every_page_holds_keys() {
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
        let types = |keys_only: &[usize]| -> Vec<DataType> {
            let schema = read_as(&metadata, &layout, keys_only).schema().clone();
            schema
                .fields()
                .iter()
                .map(|f| f.data_type().clone())
                .collect()
        };
        let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        // Only the state column `source` is text; `note` is not read.
        assert_eq!(
            types(&[0, 1]),
            [dictionary, DataType::Int64, DataType::Utf8]
        );
        assert_eq!(
            types(&[1]),
            [DataType::Utf8View, DataType::Int64, DataType::Utf8]
        );
    }
}
