//! Input: reads transition logs into one [`TransitionGraph`] and an [`InputSummary`] of what
//! was read.
//!
//! Every later stage takes the graph and never looks at a file again, so all parsing, checking
//! and messages about the input live here. One call to [`load`] reads one dataset, whatever the
//! number of files it is split into.
//! [`load_stream`] reads a dataset that is already in memory as Arrow record batches (the
//! Python package's tables and data frames), through the same column rules and messages.
//!
//! **Inputs.** Each entry of `inputs` is a file, a directory (every `*.parquet`, `*.pq`, `*.csv`
//! and `*.json` below it, recursively, sorted by path; Hive-style `key=value/` folders are simply
//! walked, their keys are not turned into columns; names starting with `.` or `_` and detbal's
//! `*.truth.json` sidecars are skipped) or a glob pattern (matches with those extensions; `**`
//! is walked as a directory). Together they form one dataset: every file must have the same
//! layout, and row indices run on across files in order. Each file is read once (see
//! [`resolve_inputs`]: links, loops, overlapping inputs), and opened once: its length, hash and
//! rows come from one handle.
//!
//! **Forms** (docs/METHOD.md §1; one log row = one transition):
//! - *transitions* (Parquet or CSV): columns `source`, `target`, optional `count` (integer ≥ 1,
//!   default 1) and `run` (counted, see [`InputSummary::runs`]). States may be any Arrow string
//!   type, a dictionary of strings, or integers (named by their decimal text).
//! - *trajectory* (Parquet or CSV): `run`, `step`, `state`; within each run, rows ordered by
//!   `step` (each step once) give one transition per consecutive pair `f → g`. Chosen when a
//!   file has these columns but not `source` and `target`. Read in bounded memory, streamed or
//!   spilled to disk (see `trajectory.rs`); such a dataset may be read twice ([`load`]).
//! - *reference JSON*: the reference code's database, an array of records
//!   `{"target_expression": str, "source_expressions": [{"expression": str}, …], …}`; each source
//!   gives one transition `source → target`.
//!
//! The file type follows the extension (`.parquet`/`.pq`, `.csv`, `.json`); the form follows the
//! columns unless [`LoadOptions::format`] says otherwise. A null state is an error unless
//! [`LoadOptions::drop_null_states`] is set (a dropped trajectory step breaks its run). Locations
//! in messages: `row group g, row r` for Parquet (`r` counts from 0 within the file), `line n` for
//! CSV (the physical line, from 1, the header is line 1), `record i` for JSON (from 0).
//!
//! ```no_run
//! use detbal::io::{load, LoadOptions};
//! let log = load(&["runs/".into()], &LoadOptions::default())?;
//! println!("{} transitions from {} files", log.summary.transitions, log.summary.files);
//! # Ok::<(), detbal::error::Error>(())
//! ```

mod arrow_stream;
mod csv;
mod group;
mod json;
pub mod memory;
mod parquet;
pub mod scores;
mod spill;
mod table;
mod trajectory;

pub use arrow_stream::load_stream;
pub(crate) use parquet::contain as contain_parquet_panics;

use crate::error::{Error, Result};
use crate::graph::{GraphBuilder, StateOrder, TransitionGraph};
use crate::progress::{self, Progress, Unit};
use group::Groups;
use rustc_hash::{FxHashMap, FxHashSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use table::{Layout, NameIds};
use trajectory::Trajectory;

/// How to read the inputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InputFormat {
    /// From the extension, then the columns.
    #[default]
    Auto,
    /// One row per transition (Parquet or CSV).
    Transitions,
    /// One row per step of a run (Parquet or CSV).
    Trajectory,
    /// The reference code's JSON database, whatever the extension.
    ReferenceJson,
}

/// Settings of [`load`]: the form and the column names.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub format: InputFormat,
    pub source_column: String,
    pub target_column: String,
    pub count_column: String,
    pub run_column: String,
    pub step_column: String,
    pub state_column: String,
    /// Skip (and count) rows with a null state instead of failing.
    pub drop_null_states: bool,
    /// `--group-by`: also build one graph per value of this column or Hive partition key.
    pub group_column: Option<String>,
    /// Trajectory steps held in memory (about 100 bytes each) when the rows are not sorted by
    /// (run, step); more are spilled to temporary files (see `trajectory`'s module docs).
    pub trajectory_buffer_rows: usize,
    /// How the loaded graph numbers its states (not the groups' graphs).
    pub state_order: StateOrder,
}

/// Default of [`LoadOptions::trajectory_buffer_rows`]: about 200 MB.
pub const TRAJECTORY_BUFFER_ROWS: usize = 2_000_000;

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            format: InputFormat::Auto,
            source_column: "source".into(),
            target_column: "target".into(),
            count_column: "count".into(),
            run_column: "run".into(),
            step_column: "step".into(),
            state_column: "state".into(),
            drop_null_states: false,
            group_column: None,
            trajectory_buffer_rows: TRAJECTORY_BUFFER_ROWS,
            state_order: StateOrder::default(),
        }
    }
}

/// A loaded dataset.
#[derive(Clone, Debug)]
pub struct LoadedLog {
    pub graph: TransitionGraph,
    pub summary: InputSummary,
    /// With [`LoadOptions::group_column`]: each group's name and graph, sorted by name.
    pub groups: Vec<(String, TransitionGraph)>,
}

/// What was read, for the report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InputSummary {
    /// The files read, in order.
    pub paths: Vec<String>,
    pub files: usize,
    /// Rows read (records for JSON), dropped ones included.
    pub rows: u64,
    /// Transitions added to the graph (counts summed).
    pub transitions: u64,
    pub dropped_rows: u64,
    /// Why rows were dropped, with how many each.
    pub dropped_reasons: Vec<(String, u64)>,
    /// Distinct non-null runs, when the files have a run column.
    pub runs: Option<u64>,
    /// BLAKE3 of the files' bytes, concatenated in order, as hex.
    pub content_hash: String,
    /// File types and form, e.g. `parquet/transitions`, `csv+parquet/trajectory`, `json/reference`.
    pub format: String,
    /// How often the runs step straight back, against a Markov chain ([`memory`]); `None` for
    /// logs without an order to follow (counts, reference JSON) or without a busy state.
    pub run_memory: Option<memory::RunMemory>,
}

/// Reads `inputs` (files, directories or glob patterns) as one dataset.
pub fn load(inputs: &[PathBuf], opts: &LoadOptions) -> Result<LoadedLog> {
    let files = resolve_inputs(inputs)?;
    let log = match read_dataset(&files, opts, true)? {
        Some(log) => log,
        // A trajectory left the (run, step) order after some of its runs were added.
        None => read_dataset(&files, opts, false)?
            .expect("a trajectory read with every step buffered is read to the end"),
    };
    check_testable(&log, &files)?;
    Ok(log)
}

/// Reads `files` into one log; `None` when a trajectory read `in_order` turned out not to be in
/// order after some of its runs were added, and must be read again with `in_order` off.
fn read_dataset(
    files: &[PathBuf],
    opts: &LoadOptions,
    in_order: bool,
) -> Result<Option<LoadedLog>> {
    let mut sink = Sink::new(opts, in_order);
    let bytes = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len());
    sink.progress = progress::bar("load", bytes.sum(), Unit::Bytes);
    let mut hasher = blake3::Hasher::new();
    let mut types: Vec<&str> = Vec::new();
    // Row groups of transition Parquet files read so far but not aggregated yet: read in
    // parallel when another kind of file comes, or at the end.
    let mut pending = Vec::new();
    for path in files {
        let file_type = match read_file(path, opts, &mut sink, &mut hasher, &mut pending) {
            Ok(file_type) => file_type,
            // An error in an earlier row wins, as in a sequential read.
            Err(e) => return parquet::read_chunks(pending, &mut sink).and(Err(e)),
        };
        if sink.read_again {
            return Ok(None);
        }
        if !types.contains(&file_type.name()) {
            types.push(file_type.name());
        }
    }
    parquet::read_chunks(pending, &mut sink)?;
    types.sort_unstable();
    let form = match sink.layout.as_ref().map(|(_, layout)| layout.form) {
        Some(table::Form::Trajectory) => "trajectory",
        Some(table::Form::ReferenceJson) => "reference",
        _ => "transitions",
    };
    let format = format!("{}/{form}", types.join("+"));
    sink.finish(files, hasher.finalize().to_hex().to_string(), format)
        .map(Some)
}

/// One input file, opened once: its length, hash and content all come from this handle, so a
/// file replaced on disk while it is read is still read (and hashed) as the one file it was.
#[derive(Clone)]
pub(super) struct Handle {
    file: Arc<File>,
    /// The length when opened; reads never go past it.
    len: u64,
}

impl Handle {
    fn open(path: &Path) -> Result<Handle> {
        let read_error = |source| Error::Read {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(read_error)?;
        let len = file.metadata().map_err(read_error)?.len();
        Ok(Handle {
            file: Arc::new(file),
            len,
        })
    }

    pub(super) fn len(&self) -> u64 {
        self.len
    }

    /// A reader of the bytes from `start` to the length at opening, by positioned reads (which
    /// share no file offset, so readers on several threads do not disturb each other).
    pub(super) fn reader_at(&self, start: u64) -> At {
        At {
            file: self.file.clone(),
            pos: start.min(self.len),
            end: self.len,
        }
    }

    /// `length` bytes from `start`; an error past the length at opening (nothing is allocated
    /// for a range the file does not hold).
    pub(super) fn bytes(&self, start: u64, length: u64) -> std::io::Result<Vec<u8>> {
        if start.checked_add(length).is_none_or(|end| end > self.len) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "bytes {start}..{} asked for, past the end of the {}-byte file",
                    start.saturating_add(length),
                    self.len
                ),
            ));
        }
        let mut buffer = vec![0; length as usize];
        read_exact_at(&self.file, &mut buffer, start)?;
        Ok(buffer)
    }
}

/// A [`Read`] over a range of a [`Handle`]'s file, by positioned reads.
pub(super) struct At {
    file: Arc<File>,
    pos: u64,
    end: u64,
}

impl Read for At {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = (self.end - self.pos).min(buf.len() as u64) as usize;
        if left == 0 {
            return Ok(0);
        }
        let n = read_at(&self.file, &mut buf[..left], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Feeds the file's bytes, up to its length at opening, to `hasher` in blocks of
/// [`HASH_BLOCK`], each read in two halves at once and hashed on every core; an error if the
/// file ended early. `std::io::copy`'s 8 KiB reads and hashes, one after the other on one
/// core, took 0.3 s before the first row of a 339 MB file.
fn hash_contents(handle: &Handle, hasher: &mut blake3::Hasher) -> std::io::Result<()> {
    let mut block = vec![0; HASH_BLOCK.min(handle.len()) as usize];
    let mut start = 0;
    while start < handle.len() {
        let piece = &mut block[..HASH_BLOCK.min(handle.len() - start) as usize];
        let (first, second) = piece.split_at_mut(piece.len() / 2);
        let middle = start + first.len() as u64;
        let (first, second) = rayon::join(
            || read_exact_at(&handle.file, first, start),
            || read_exact_at(&handle.file, second, middle),
        );
        first.and(second)?;
        hasher.update_rayon(piece);
        start += piece.len() as u64;
    }
    Ok(())
}

/// Bytes read and hashed at a time ([`hash_contents`]).
const HASH_BLOCK: u64 = 4 << 20;

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match read_at(file, buf, offset) {
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the file ended early (changed while read?)",
                ));
            }
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Opens one input file once, hashes it and reads it into `sink` from that handle; the row
/// groups of a transitions Parquet file are only added to `pending`. Returns the file's type.
fn read_file(
    path: &Path,
    opts: &LoadOptions,
    sink: &mut Sink,
    hasher: &mut blake3::Hasher,
    pending: &mut Vec<parquet::Chunk>,
) -> Result<FileType> {
    let read_error = |source| Error::Read {
        path: path.to_owned(),
        source,
    };
    let handle = Handle::open(path)?;
    let file_type = FileType::of(path, opts.format)?;
    // JSON is parsed from memory: hash the very bytes parsed. Other files are hashed first.
    let json = match file_type {
        FileType::Json => {
            let bytes = handle.bytes(0, handle.len()).map_err(read_error)?;
            hasher.update(&bytes);
            Some(bytes)
        }
        _ => {
            hash_contents(&handle, hasher).map_err(read_error)?;
            None
        }
    };
    if handle.len() == 0 {
        return Err(Error::bad_input(
            path,
            format!(
                "the file is empty (0 bytes): expected {}",
                file_type.expected()
            ),
        ));
    }
    if !matches!(file_type, FileType::Parquet) {
        parquet::read_chunks(std::mem::take(pending), sink)?;
    }
    match (file_type, json) {
        (FileType::Parquet, _) => parquet::read(path, &handle, sink, pending)?,
        (FileType::Csv, _) => csv::read(path, &handle, sink)?,
        (FileType::Json, json) => json::read(path, &json.unwrap_or_default(), sink)?,
    }
    if !matches!(file_type, FileType::Parquet) {
        sink.progress.inc(handle.len());
    }
    Ok(file_type)
}

/// Fails when the dataset has no transition between two different states: detailed balance
/// compares `f → g` with `g → f`, so such a log (no rows, one state, only self-transitions) has
/// nothing to test and nothing to fit.
fn check_testable(log: &LoadedLog, files: &[PathBuf]) -> Result<()> {
    if log.graph.n_edges() > 0 {
        return Ok(());
    }
    let s = &log.summary;
    let found = if s.transitions == 0 {
        let dropped = match s.dropped_rows {
            0 => String::new(),
            n => format!(", all {n} dropped"),
        };
        format!("no transitions ({} rows read{dropped})", s.rows)
    } else {
        let states = log.graph.n_states();
        let plural = if states == 1 { "" } else { "s" };
        format!(
            "only self-transitions ({} of them, over {states} state{plural})",
            s.transitions
        )
    };
    let error = Error::bad_input(
        &files[0],
        format!("nothing to analyse: expected transitions between different states, found {found}"),
    )
    .hint("detailed balance compares the counts of f → g and g → f for states f ≠ g");
    Err(match files.len() {
        1 => error,
        n => error.at(format!("and the {} other files of the dataset", n - 1)),
    })
}

/// The container of one file.
#[derive(Clone, Copy)]
enum FileType {
    Parquet,
    Csv,
    Json,
}

/// Extensions of the files taken from directories and glob patterns.
const EXTENSIONS: [&str; 4] = ["parquet", "pq", "csv", "json"];

impl FileType {
    fn of(path: &Path, format: InputFormat) -> Result<FileType> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let file_type = match (format, extension.as_deref()) {
            (InputFormat::ReferenceJson, _) | (_, Some("json")) => FileType::Json,
            (_, Some("parquet" | "pq")) => FileType::Parquet,
            (_, Some("csv")) => FileType::Csv,
            _ => {
                return Err(Error::bad_input(
                    path,
                    "unknown file type: expected a .parquet, .pq, .csv or .json file",
                )
                .hint("rename the file, or pass --format reference-json for a JSON database"));
            }
        };
        if let (FileType::Json, InputFormat::Transitions | InputFormat::Trajectory) =
            (file_type, format)
        {
            return Err(Error::bad_input(
                path,
                "a .json file holds the reference JSON database, not transition or trajectory rows",
            )
            .hint("use Parquet or CSV for transition and trajectory rows"));
        }
        Ok(file_type)
    }

    /// What a file of this type should hold, for messages.
    fn expected(self) -> &'static str {
        match self {
            FileType::Parquet => "a Parquet file",
            FileType::Csv => "a CSV file with a header line",
            FileType::Json => "a JSON array of records",
        }
    }

    fn name(self) -> &'static str {
        match self {
            FileType::Parquet => "parquet",
            FileType::Csv => "csv",
            FileType::Json => "json",
        }
    }
}

/// The identity of a file or directory: device and inode where there are such, so that every
/// name of one file (symbolic links, hard links, `a/../a`) is the same key; the canonical path
/// elsewhere.
#[derive(Clone, PartialEq, Eq, Hash)]
enum FileId {
    #[cfg(unix)]
    Inode(u64, u64),
    #[allow(dead_code)]
    Path(PathBuf),
}

impl FileId {
    fn of(path: &Path) -> std::io::Result<FileId> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(path)?;
            Ok(FileId::Inode(m.dev(), m.ino()))
        }
        #[cfg(not(unix))]
        {
            std::fs::canonicalize(path).map(FileId::Path)
        }
    }
}

/// The files named by `inputs`, in order, each read once.
///
/// A file is one file whatever its names (symbolic and hard links, relative paths): within one
/// input (a directory or a pattern) it is taken at its first name in path order, and a directory
/// is walked once, so a link back into an ancestor (a loop) is never followed. The same file
/// reached from two inputs is an error naming both: the inputs overlap, which is a mistake to
/// tell, not a dataset to guess at (its rows would otherwise count twice, or silently once).
fn resolve_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    if inputs.is_empty() {
        return Err(Error::settings("no input files given"));
    }
    let mut files = Vec::new();
    // Each file's identity → the input (index) and the name it was first found under.
    let mut seen: FxHashMap<FileId, (usize, PathBuf)> = FxHashMap::default();
    for (i, input) in inputs.iter().enumerate() {
        let found = if input.is_dir() {
            let mut found = Vec::new();
            walk(input, &mut found, &mut FxHashSet::default())?;
            found
        } else if input.exists() {
            vec![input.clone()]
        } else if input.to_str().is_some_and(|s| s.contains(['*', '?', '['])) {
            glob_files(input)?
        } else if let Ok(target) = std::fs::read_link(input) {
            return Err(Error::bad_input(
                input,
                format!(
                    "a symbolic link to {}, which does not exist: expected a file or directory",
                    target.display()
                ),
            ));
        } else {
            let source =
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory");
            return Err(Error::Read {
                path: input.clone(),
                source,
            });
        };
        if found.is_empty() {
            let what = if input.is_dir() {
                "in this directory"
            } else {
                "matching this pattern"
            };
            return Err(Error::bad_input(
                input,
                format!("no .parquet, .pq, .csv or .json files {what}"),
            ));
        }
        for file in found {
            let id = FileId::of(&file).map_err(|source| Error::Read {
                path: file.clone(),
                source,
            })?;
            match seen.get(&id) {
                None => {
                    seen.insert(id, (i, file.clone()));
                    files.push(file);
                }
                // Another name of a file this input already gave: the same file, read once.
                Some((first, _)) if *first == i => {}
                Some((first, name)) => {
                    let via = |input: &Path, name: &Path| {
                        if input == name {
                            format!("`{}`", input.display())
                        } else {
                            format!("`{}` (from `{}`)", name.display(), input.display())
                        }
                    };
                    return Err(Error::bad_input(
                        &file,
                        format!(
                            "this file is named by two inputs: {} and {}",
                            via(&inputs[*first], name),
                            via(input, &file)
                        ),
                    )
                    .hint("each file is read once; drop one of the overlapping inputs"));
                }
            }
        }
    }
    Ok(files)
}

/// Data files below `dir`, sorted by path. `walked` holds the directories walked so far for this
/// input: one reached again (a link to an ancestor, or a second link to one directory) is
/// skipped, so loops end and no directory is read twice.
fn walk(dir: &Path, found: &mut Vec<PathBuf>, walked: &mut FxHashSet<FileId>) -> Result<()> {
    let read_error = |source| Error::Read {
        path: dir.to_owned(),
        source,
    };
    if !walked.insert(FileId::of(dir).map_err(read_error)?) {
        return Ok(());
    }
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.starts_with(['.', '_']) && !is_sidecar(name) {
            entries.push(path);
        }
    }
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, found, walked)?;
        } else if is_data_file(&path) {
            found.push(path);
        }
    }
    Ok(())
}

/// detbal's own side files, which directories and patterns skip: `detbal simulate -o
/// dir/log.parquet` writes its truth next to the log as `dir/log.truth.json`, and `dir` must
/// still be the simulated log alone. Named explicitly, such a file is read.
fn is_sidecar(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".truth.json")
}

fn is_data_file(path: &Path) -> bool {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    extension.is_some_and(|e| EXTENSIONS.contains(&e.as_str()))
}

/// Data files matching a glob pattern (directories it matches are walked), sorted by path.
///
/// A `**` component is not left to the glob crate, which follows directory links without
/// noticing loops: the part before it is globbed, the directories found are walked like
/// directory inputs, and what they hold is matched against the whole pattern.
fn glob_files(pattern: &Path) -> Result<Vec<PathBuf>> {
    let text = pattern.to_string_lossy();
    let invalid =
        |e: glob::PatternError| Error::bad_input(pattern, format!("invalid glob pattern: {e}"));
    let whole = glob::Pattern::new(&text).map_err(invalid)?;
    let recursive = pattern.components().position(|c| c.as_os_str() == "**");
    let base: PathBuf = match recursive {
        Some(at) => pattern.components().take(at).collect(),
        None => pattern.to_owned(),
    };
    let base_text = match base.as_os_str().is_empty() {
        true => ".".into(),
        false => base.to_string_lossy(),
    };
    let matches = glob::glob(&base_text).map_err(invalid)?;
    let mut found = Vec::new();
    let mut walked = FxHashSet::default();
    for m in matches {
        let path = m.map_err(|e| Error::Read {
            path: e.path().to_owned(),
            source: e.into(),
        })?;
        if recursive.is_some() {
            if path.is_dir() {
                let mut below = Vec::new();
                walk(&path, &mut below, &mut walked)?;
                let options = glob::MatchOptions::new();
                found.extend(below.into_iter().filter_map(|p| {
                    // `**/…` globs from `.`: match (and name) files without the `./`.
                    let p = match base.as_os_str().is_empty() {
                        true => p.strip_prefix(".").map(Path::to_owned).unwrap_or(p),
                        false => p,
                    };
                    whole.matches_path_with(&p, options).then_some(p)
                }));
            }
        } else if path.is_dir() {
            walk(&path, &mut found, &mut walked)?;
        } else if is_data_file(&path) && !is_sidecar(&path.to_string_lossy()) {
            found.push(path);
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}

/// Everything read so far, across files; the readers add to it.
struct Sink<'o> {
    opts: &'o LoadOptions,
    graph: GraphBuilder,
    states: NameIds,
    /// Run labels, only counted: a name table (no transitions are added to it).
    run_names: GraphBuilder,
    run_ids: NameIds,
    has_runs: bool,
    trajectory: Trajectory,
    /// Where the runs of the rows read so far stand, for [`memory`].
    paths: memory::PathScan,
    /// Set when a trajectory must be read again (see [`read_dataset`]): readers stop.
    read_again: bool,
    /// Per-group graphs, with `--group-by`.
    groups: Option<Groups>,
    /// The first file and its layout, which every other file must match.
    layout: Option<(PathBuf, Layout)>,
    /// Global row index of the next row: it orders the states (see [`GraphBuilder::add`]).
    next_row: u64,
    rows: u64,
    transitions: u64,
    dropped_rows: u64,
    dropped_reasons: Vec<(String, u64)>,
    /// The load bar, by bytes (Parquet: compressed row groups; CSV, JSON: whole files).
    progress: Progress,
}

impl<'o> Sink<'o> {
    /// An empty sink; `in_order`: add trajectory pairs as they come while rows are in order.
    fn new(opts: &'o LoadOptions, in_order: bool) -> Self {
        Sink {
            opts,
            graph: GraphBuilder::default(),
            states: NameIds::default(),
            run_names: GraphBuilder::default(),
            run_ids: NameIds::unnamed_integers(),
            has_runs: false,
            trajectory: Trajectory::new(opts.trajectory_buffer_rows, in_order),
            paths: memory::PathScan::default(),
            read_again: false,
            groups: opts.group_column.as_ref().map(|_| Groups::default()),
            layout: None,
            next_row: 0,
            rows: 0,
            transitions: 0,
            dropped_rows: 0,
            dropped_reasons: Vec::new(),
            progress: Progress::hidden(),
        }
    }

    /// Checks that the file at `path` has the dataset's layout (the first file's), before its
    /// rows are read; `row_groups`: the first row of each of its row groups (Parquet).
    fn begin_file(
        &mut self,
        path: &Path,
        layout: &Layout,
        row_groups: Option<Arc<Vec<u64>>>,
    ) -> Result<()> {
        match &self.layout {
            None => self.layout = Some((path.to_owned(), layout.clone())),
            Some((first, expected)) if expected.to_string() != layout.to_string() => {
                return Err(Error::bad_input(
                    path,
                    format!(
                        "schema ({layout}) differs from that of {} ({expected})",
                        first.display()
                    ),
                )
                .hint("all inputs form one dataset and need the same columns"));
            }
            Some(_) => {}
        }
        if layout.form == table::Form::Trajectory {
            self.trajectory.begin_file(path, self.next_row, row_groups);
        }
        Ok(())
    }

    /// An empty sink for the rows from global row `first_row` on, to be [`Sink::absorb`]ed.
    fn part(&self, first_row: u64) -> Sink<'o> {
        Sink {
            layout: self.layout.clone(),
            next_row: first_row,
            progress: self.progress.clone(),
            ..Sink::new(self.opts, true)
        }
    }

    /// Adds what `part` read: the rows that follow every row read into `self` so far.
    fn absorb(&mut self, part: Sink) -> Result<()> {
        let ids = self.graph.absorb(part.graph)?;
        self.paths.absorb(part.paths, &ids, &mut self.graph);
        self.run_names.absorb(part.run_names)?;
        self.run_ids.absorb_unnamed(part.run_ids);
        if let (Some(groups), Some(later)) = (&mut self.groups, part.groups) {
            groups.absorb(later)?;
        }
        self.has_runs |= part.has_runs;
        self.rows += part.rows;
        self.transitions += part.transitions;
        for (reason, n) in &part.dropped_reasons {
            self.dropped(reason, *n);
        }
        Ok(())
    }

    /// Counts `rows` dropped rows under `reason` (reasons listed in order of first drop).
    fn dropped(&mut self, reason: &str, rows: u64) {
        self.dropped_rows += rows;
        match self.dropped_reasons.iter_mut().find(|(r, _)| r == reason) {
            Some((_, n)) => *n += rows,
            None => self.dropped_reasons.push((reason.to_owned(), rows)),
        }
    }

    fn finish(
        mut self,
        files: &[PathBuf],
        content_hash: String,
        format: String,
    ) -> Result<LoadedLog> {
        let trajectory = std::mem::replace(&mut self.trajectory, Trajectory::new(1, false));
        let runs = match self.layout.as_ref().map(|(_, layout)| layout.form) {
            Some(table::Form::Trajectory) => {
                Some(trajectory.finish(|pairs, groups| self.add_pairs(pairs, groups))?)
            }
            _ => self
                .has_runs
                .then(|| self.run_ids.distinct(&self.run_names)),
        };
        let (graph, returns, ids) = self.graph.finish_with_returns(self.opts.state_order);
        let summary = InputSummary {
            run_memory: memory::measure(&graph, &returns, &ids),
            paths: files.iter().map(|p| p.display().to_string()).collect(),
            files: files.len(),
            rows: self.rows,
            transitions: self.transitions,
            dropped_rows: self.dropped_rows,
            dropped_reasons: self.dropped_reasons,
            runs,
            content_hash,
            format,
        };
        Ok(LoadedLog {
            graph,
            summary,
            groups: self.groups.map(Groups::finish).unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_hashed_as_its_bytes_in_one_piece() {
        let dir = tempfile::tempdir().unwrap();
        // Not a whole number of blocks, and an odd last block (split in unequal halves).
        let bytes: Vec<u8> = (0..HASH_BLOCK + 12_345)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        for len in [1, 7, HASH_BLOCK as usize, bytes.len()] {
            let path = dir.path().join(format!("{len}.bin"));
            std::fs::write(&path, &bytes[..len]).unwrap();
            let mut hasher = blake3::Hasher::new();
            hash_contents(&Handle::open(&path).unwrap(), &mut hasher).unwrap();
            assert_eq!(
                hasher.finalize(),
                blake3::hash(&bytes[..len]),
                "{len} bytes"
            );
        }
    }
}
