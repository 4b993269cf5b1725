//! The tabular path shared by Parquet and CSV: which columns a file is read through
//! ([`Layout`]), how an Arrow column becomes state ids ([`NameIds`]), and how a batch of rows
//! becomes transitions ([`Sink::add_batch`]).
//!
//! Both readers hand over Arrow arrays, so every type rule and every message about a column's
//! content is written once, here. Names are never copied per row: strings are looked up as
//! `&str`, integers through a cache of their decimal text, dictionaries once per distinct value.

use super::spill::{RunKey, Spilled};
use super::trajectory::Added;
use super::{InputFormat, LoadOptions, Sink};
use crate::error::{Error, Result};
use crate::graph::GraphBuilder;
use arrow::array::{Array, ArrayRef, ArrowPrimitiveType, AsArray};
use arrow::datatypes::{
    DataType, Int8Type, Int16Type, Int32Type, Int64Type, Schema, UInt8Type, UInt16Type, UInt32Type,
    UInt64Type,
};
use arrow::util::display::array_value_to_string;
use rustc_hash::FxHashMap;
use std::fmt::{self, Write as _};
use std::path::Path;
use std::sync::Arc;

/// Id of a null name in the vectors [`NameIds::map`] fills.
pub(super) const NULL: u32 = u32::MAX;

/// How the rows of a file are turned into transitions.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Form {
    /// One row per transition `source → target` (optionally with a count).
    Transitions,
    /// One row per agent step; consecutive states of a run form the transitions.
    Trajectory,
    /// The reference code's JSON database (no columns).
    ReferenceJson,
}

/// What a column is used for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Role {
    Source,
    Target,
    Count,
    Run,
    Step,
    State,
    /// The `--group-by` column.
    Group,
}

/// The two column kinds a log may use: names (any string type) and integers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Kind {
    Text,
    Integer,
}

impl Kind {
    /// The kind of an Arrow type, or `None` when the reader cannot use it.
    pub(super) fn of(data_type: &DataType) -> Option<Kind> {
        match data_type {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Some(Kind::Text),
            DataType::Dictionary(key, value) if key.is_integer() => Kind::of(value),
            t if t.is_integer() => Some(Kind::Integer),
            _ => None,
        }
    }
}

/// One column a file is read through.
#[derive(Clone, Debug)]
pub(super) struct Column {
    pub role: Role,
    pub name: String,
    pub kind: Kind,
    /// Index in the file's schema.
    pub index: usize,
}

/// The form of a file and the columns it is read through, in role order
/// (`source, target[, count][, run][, group]` or `run, step, state[, group]`).
#[derive(Clone, Debug)]
pub(super) struct Layout {
    pub form: Form,
    pub columns: Vec<Column>,
    /// The group of every row of the file, from a Hive-style `key=value` folder in its path, when
    /// the `--group-by` key is not a column of the file.
    pub partition_group: Option<String>,
}

impl Layout {
    pub(super) fn reference_json() -> Self {
        Layout {
            form: Form::ReferenceJson,
            columns: Vec::new(),
            partition_group: None,
        }
    }

    /// Chooses the form of a table with `schema` and checks the types of the columns it uses.
    pub(super) fn resolve(schema: &Schema, opts: &LoadOptions, path: &Path) -> Result<Layout> {
        let has = |name: &str| schema.index_of(name).is_ok();
        let form = match opts.format {
            InputFormat::Trajectory => Form::Trajectory,
            InputFormat::Auto
                if !(has(&opts.source_column) && has(&opts.target_column))
                    && [&opts.run_column, &opts.step_column, &opts.state_column]
                        .into_iter()
                        .all(|c| has(c)) =>
            {
                Form::Trajectory
            }
            _ => Form::Transitions,
        };
        let mut wanted: Vec<(Role, &str, bool)> = match form {
            Form::Trajectory => vec![
                (Role::Run, &opts.run_column, true),
                (Role::Step, &opts.step_column, true),
                (Role::State, &opts.state_column, true),
            ],
            _ => vec![
                (Role::Source, &opts.source_column, true),
                (Role::Target, &opts.target_column, true),
                (Role::Count, &opts.count_column, false),
                (Role::Run, &opts.run_column, false),
            ],
        };
        let mut partition_group = None;
        if let Some(group) = &opts.group_column {
            partition_group = partition_value(path, group).filter(|_| !has(group));
            if partition_group.is_none() {
                wanted.push((Role::Group, group, true));
            }
        }
        let mut columns = Vec::with_capacity(wanted.len());
        for (role, name, required) in wanted {
            let Ok(index) = schema.index_of(name) else {
                if !required {
                    continue;
                }
                let error = missing_column(schema, name, opts.format, path);
                return Err(match role {
                    Role::Group => error.hint(format!(
                        "--group-by {name} takes the group from a column `{name}` or from a \
                         `{name}=VALUE` folder in the file's path (Hive-style partitions)"
                    )),
                    _ => error,
                });
            };
            if let Some(message) = repeated_column(schema, name) {
                return Err(Error::bad_input(path, message)
                    .at(format!("column `{name}`"))
                    .hint("rename or drop the copies: which one is meant cannot be told"));
            }
            let data_type = schema.field(index).data_type();
            let kind = Kind::of(data_type);
            let expected = match role {
                Role::Count | Role::Step => "an integer column",
                _ => "a string or integer column",
            };
            let kind = match (role, kind) {
                (Role::Count | Role::Step, Some(Kind::Integer)) => Kind::Integer,
                (Role::Count | Role::Step, _) | (_, None) => {
                    let error =
                        Error::bad_input(path, format!("expected {expected}, found {data_type}"))
                            .at(format!("column `{name}`"));
                    return Err(match type_hint(data_type) {
                        Some(hint) => error.hint(hint),
                        None => error,
                    });
                }
                (_, Some(kind)) => kind,
            };
            columns.push(Column {
                role,
                name: name.to_owned(),
                kind,
                index,
            });
        }
        Ok(Layout {
            form,
            columns,
            partition_group,
        })
    }

    /// Position in [`Layout::columns`] of the column with `role`.
    pub(super) fn find(&self, role: Role) -> Option<usize> {
        self.columns.iter().position(|c| c.role == role)
    }

    /// Distinct schema indices of the columns, ascending: the projection to read. Readers return
    /// projected columns in this order; [`Layout::positions`] maps each column into it.
    pub(super) fn projection(&self) -> Vec<usize> {
        let mut indices: Vec<usize> = self.columns.iter().map(|c| c.index).collect();
        indices.sort_unstable();
        indices.dedup();
        indices
    }

    /// For each column, its position in a batch read with [`Layout::projection`].
    pub(super) fn positions(&self) -> Vec<usize> {
        let projection = self.projection();
        self.columns
            .iter()
            .map(|c| projection.partition_point(|&i| i < c.index))
            .collect()
    }
}

/// Shown when files disagree, e.g. `transitions: source (text), target (text), count (integer)`.
impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let form = match self.form {
            Form::Transitions => "transitions",
            Form::Trajectory => "trajectory",
            Form::ReferenceJson => "reference JSON records",
        };
        f.write_str(form)?;
        for (i, c) in self.columns.iter().enumerate() {
            let kind = match c.kind {
                Kind::Text => "text",
                Kind::Integer => "integer",
            };
            write!(f, "{} {} ({kind})", if i == 0 { ":" } else { "," }, c.name)?;
        }
        Ok(())
    }
}

/// The value of the last Hive-style `key=value` folder of `path` (percent-escapes decoded, as
/// Spark, Hive and pyarrow write them), if there is one.
fn partition_value(path: &Path, key: &str) -> Option<String> {
    let folders = path.parent()?.components().rev();
    let value = folders
        .filter_map(|c| c.as_os_str().to_str())
        .find_map(|folder| folder.strip_prefix(key)?.strip_prefix('='))?;
    let mut bytes = Vec::with_capacity(value.len());
    let mut rest = value.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        let escaped = (b == b'%')
            .then(|| tail.get(..2))
            .flatten()
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match escaped {
            Some(decoded) => {
                bytes.push(decoded);
                rest = &tail[2..];
            }
            None => {
                bytes.push(b);
                rest = tail;
            }
        }
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// What is wrong when `schema` has more than one column `name` (readers would take the first).
pub(super) fn repeated_column(schema: &Schema, name: &str) -> Option<String> {
    let same: Vec<String> = (schema.fields().iter().enumerate())
        .filter(|(_, f)| f.name() == name)
        .map(|(i, _)| (i + 1).to_string())
        .collect();
    (same.len() > 1).then(|| {
        format!(
            "expected one column `{name}`, found {} (columns {})",
            same.len(),
            same.join(", ")
        )
    })
}

fn missing_column(schema: &Schema, name: &str, format: InputFormat, path: &Path) -> Error {
    let present: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("`{}`", f.name()))
        .collect();
    let present = if present.is_empty() {
        "none".to_owned()
    } else {
        present.join(", ")
    };
    let hint = match format {
        InputFormat::Auto => {
            "a transition log needs `source` and `target` columns (and may have `count`, `run`); \
             a trajectory log needs `run`, `step` and `state`; other column names can be set in \
             the load options (--source-column, --target-column, …)"
        }
        _ => "other column names can be set in the load options (--source-column, …)",
    };
    Error::bad_input(
        path,
        format!("missing column `{name}`; the columns present are {present}"),
    )
    .at(format!("column `{name}`"))
    .hint(hint)
}

/// Integer name → id. The keys are `i64`, in 16-byte slots, except the `u64`s above `i64::MAX`,
/// kept apart as `i128` (which holds every Arrow integer type, in 32-byte slots): a 1e8-row log's
/// 5 M run labels, one table per reading thread, were 480 MiB of the load's peak in `i128` slots.
#[derive(Default)]
struct IntIds {
    fits: FxHashMap<i64, u32>,
    beyond: FxHashMap<i128, u32>,
}

impl IntIds {
    fn len(&self) -> usize {
        self.fits.len() + self.beyond.len()
    }

    /// The id of `value`, made by `make` when it is new.
    fn get_or_insert_with(&mut self, value: i128, make: impl FnOnce() -> u32) -> u32 {
        match i64::try_from(value) {
            Ok(small) => *self.fits.entry(small).or_insert_with(make),
            Err(_) => *self.beyond.entry(value).or_insert_with(make),
        }
    }

    fn keys(&self) -> impl Iterator<Item = i128> + '_ {
        (self.fits.keys().map(|&v| i128::from(v))).chain(self.beyond.keys().copied())
    }

    /// Room for `more` keys: inserting one table's keys into another with the same (unseeded)
    /// hash, in the first's order, into a table still growing packs them into long probe runs.
    fn reserve(&mut self, more: &IntIds) {
        self.fits.reserve(more.fits.len());
        self.beyond.reserve(more.beyond.len());
    }
}

/// Dense ids for the names in Arrow columns of one namespace (states, or run labels).
#[derive(Default)]
pub(super) struct NameIds {
    /// Integer name → id, so that integer names are formatted once.
    ints: IntIds,
    /// Integers get ids of their own, without a name in the table: for run labels, which are
    /// only told apart, never printed (a dataset's run column has one kind in every file).
    unnamed_integers: bool,
    /// Recently seen dictionaries (kept alive, compared by pointer) and the ids of their values.
    dictionaries: Vec<(ArrayRef, Vec<u32>)>,
    text: String,
}

/// Dictionaries remembered at once: enough for every column of a layout.
const DICTIONARIES: usize = 4;

impl NameIds {
    /// Ids for labels that are only told apart (see [`NameIds::unnamed_integers`]).
    pub(super) fn unnamed_integers() -> Self {
        NameIds {
            unnamed_integers: true,
            ..NameIds::default()
        }
    }

    /// Distinct labels seen through `table` and as unnamed integers.
    pub(super) fn distinct(&self, table: &GraphBuilder) -> u64 {
        let unnamed = if self.unnamed_integers {
            self.ints.len()
        } else {
            0
        };
        (table.n_states() + unnamed) as u64
    }

    /// Adds the unnamed integers `later` saw (their ids are renumbered; taken whole by an empty
    /// table). On the 1e8-row llm-like log (5 M run labels, two reading threads) one key at a
    /// time into a growing table took 2.2 s of a 5.5 s load.
    pub(super) fn absorb_unnamed(&mut self, later: NameIds) {
        if self.ints.len() == 0 {
            self.ints = later.ints;
            return;
        }
        self.ints.reserve(&later.ints);
        for v in later.ints.keys() {
            let next = self.ints.len() as u32;
            self.ints.get_or_insert_with(v, || next);
        }
    }

    /// Replaces `out` with the id of each row's name in `table` ([`NULL`] for nulls). `array` must
    /// have a type for which [`Kind::of`] is `Some` (checked by [`Layout::resolve`]).
    pub(super) fn map(&mut self, array: &dyn Array, table: &mut GraphBuilder, out: &mut Vec<u32>) {
        match strings(array) {
            Some(names) => intern_rows(&[names], table, &mut [out]),
            None => self.map_encoded(array, table, out),
        }
    }

    /// [`NameIds::map`] of two columns of the same rows (sources and targets), which share
    /// the cache of recent names when both hold plain strings: consecutive transitions of a run
    /// chain (a row's source is the previous row's target), so most rows look one name up.
    pub(super) fn map_pair(
        &mut self,
        arrays: [&dyn Array; 2],
        table: &mut GraphBuilder,
        outs: [&mut Vec<u32>; 2],
    ) {
        let [a, b] = arrays;
        match (strings(a), strings(b)) {
            (Some(a), Some(b)) => intern_rows(&[a, b], table, &mut outs.map(|o| o)),
            _ => {
                let [out_a, out_b] = outs;
                self.map(a, table, out_a);
                self.map(b, table, out_b);
            }
        }
    }

    /// [`NameIds::map`] of dictionaries and integers.
    fn map_encoded(&mut self, array: &dyn Array, table: &mut GraphBuilder, out: &mut Vec<u32>) {
        out.clear();
        out.reserve(array.len());
        match array.data_type() {
            DataType::Dictionary(..) => {
                let dictionary = array.as_any_dictionary();
                if dictionary.values().is_empty() {
                    // No values: every row is null (`normalized_keys` panics on this).
                    out.resize(array.len(), NULL);
                    return;
                }
                let values = self.dictionary_ids(dictionary.values(), table);
                let keys = dictionary.normalized_keys();
                match dictionary.keys().nulls() {
                    None => out.extend(keys.iter().map(|&k| values[k])),
                    Some(nulls) => out.extend(
                        keys.iter()
                            .zip(nulls.iter())
                            .map(|(&k, ok)| if ok { values[k] } else { NULL }),
                    ),
                }
            }
            _ => {
                let (ints, text) = (&mut self.ints, &mut self.text);
                let unnamed = self.unnamed_integers;
                // Logs repeat a value row after row (a run's steps): no lookup for those.
                let mut last = None;
                let is_integer = for_each_int(array, |value| {
                    out.push(value.map_or(NULL, |v| match last {
                        Some((value, id)) if value == v => id,
                        _ => {
                            let next = ints.len() as u32;
                            let id = ints.get_or_insert_with(v, || {
                                if unnamed {
                                    return next;
                                }
                                text.clear();
                                write!(text, "{v}").expect("writing to a String cannot fail");
                                table.intern(text)
                            });
                            last = Some((v, id));
                            id
                        }
                    }))
                });
                debug_assert!(is_integer, "unchecked column type {}", array.data_type());
            }
        }
    }

    /// Ids of a dictionary's values, computed once per distinct dictionary array.
    fn dictionary_ids(&mut self, values: &ArrayRef, table: &mut GraphBuilder) -> &[u32] {
        let found = self
            .dictionaries
            .iter()
            .position(|(seen, _)| Arc::ptr_eq(seen, values));
        let at = match found {
            Some(at) => at,
            None => {
                let mut ids = Vec::new();
                self.map(values.as_ref(), table, &mut ids);
                if self.dictionaries.len() == DICTIONARIES {
                    self.dictionaries.remove(0);
                }
                self.dictionaries.push((values.clone(), ids));
                self.dictionaries.len() - 1
            }
        };
        &self.dictionaries[at].1
    }
}

/// What to do about a column of a type the reader refuses, where the type says it.
fn type_hint(data_type: &DataType) -> Option<&'static str> {
    match data_type {
        DataType::Dictionary(_, value) => type_hint(value),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Some(
            "the column holds bytes with no text type (as some writers store strings): write it \
             as a UTF-8 string column (pyarrow: pc.cast(column, pa.string()); Spark: read with \
             spark.sql.parquet.binaryAsString=true, or cast it to string)",
        ),
        t if t.is_floating()
            || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..)) =>
        {
            Some(
                "counts, steps and integer names are whole numbers: cast the column to an integer type",
            )
        }
        _ => None,
    }
}

/// The rows of a plain string array (Utf8, LargeUtf8, Utf8View); `None` for other types.
fn strings(array: &dyn Array) -> Option<Vec<Option<&str>>> {
    Some(match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().iter().collect(),
        DataType::LargeUtf8 => array.as_string::<i64>().iter().collect(),
        DataType::Utf8View => array.as_string_view().iter().collect(),
        _ => return None,
    })
}

/// Each row's run label (`None` for nulls): text as it is, integers by value. The labels are
/// only compared, never interned, so that no table grows with the number of runs.
fn run_keys(array: &dyn Array) -> Vec<Option<RunKey>> {
    let text = |t: Option<&str>| t.map(|t| RunKey::Text(t.into()));
    if let Some(names) = strings(array) {
        return names.into_iter().map(text).collect();
    }
    if let DataType::Dictionary(..) = array.data_type() {
        let dictionary = array.as_any_dictionary();
        if let Some(values) = strings(dictionary.values().as_ref()) {
            if values.is_empty() {
                // No values: every row is null (`normalized_keys` panics on this).
                return vec![None; array.len()];
            }
            let valid = |i: usize| dictionary.keys().is_valid(i);
            let keys = dictionary.normalized_keys();
            return (keys.iter().enumerate())
                .map(|(i, &k)| if valid(i) { text(values[k]) } else { None })
                .collect();
        }
    }
    let mut out = Vec::with_capacity(array.len());
    let is_integer = for_each_int(array, |v| out.push(v.map(RunKey::Int)));
    debug_assert!(is_integer, "unchecked column type {}", array.data_type());
    out
}

/// The last few distinct names of a batch, each with its place in the batch's list of names to
/// look up: a name equal to one of them (compared where it lies, in the batch, in cache) is not
/// looked up again. Consecutive transitions of a run chain (a row's source is the previous
/// row's target) and agents repeat states, so most rows of most logs look up one name or none.
#[derive(Default)]
struct Recent<'a> {
    names: [Option<(&'a str, u32)>; RECENT],
    next: usize,
}

/// Names [`Recent`] remembers.
const RECENT: usize = 4;

impl<'a> Recent<'a> {
    /// The place of `name` in `lookups`, added there unless it is a recent name.
    fn place(&mut self, name: &'a str, lookups: &mut Vec<&'a str>) -> u32 {
        // The most recent first: a chained row's source is the name placed just before.
        let newest_first = (1..=RECENT).map(|k| self.names[(self.next + RECENT - k) % RECENT]);
        let known = newest_first.flatten().find(|(seen, _)| *seen == name);
        if let Some((_, at)) = known {
            return at;
        }
        let at = lookups.len() as u32;
        lookups.push(name);
        self.names[self.next] = Some((name, at));
        self.next = (self.next + 1) % RECENT;
        at
    }
}

/// The run label of rows without one (their runs are told apart by ids only).
fn no_label(_row: usize) -> String {
    String::new()
}

/// Replaces each `outs[c]` with the ids of `columns[c]`'s names, interned row by row (a row's
/// columns in order), so that the first appearance of a name is its first row.
fn intern_rows(
    columns: &[Vec<Option<&str>>],
    table: &mut GraphBuilder,
    outs: &mut [&mut Vec<u32>],
) {
    let rows = columns.first().map_or(0, Vec::len);
    // Row by row, each cell's place in `lookups`, or NULL.
    let mut cells = Vec::with_capacity(rows * columns.len());
    let mut lookups = Vec::new();
    let mut recent = Recent::default();
    for i in 0..rows {
        for column in columns {
            cells.push(column[i].map_or(NULL, |name| recent.place(name, &mut lookups)));
        }
    }
    let mut ids = Vec::new();
    table.intern_all(&lookups, &mut ids);
    for (c, out) in outs.iter_mut().enumerate() {
        out.clear();
        let row_cells = cells.iter().skip(c).step_by(columns.len());
        out.extend(row_cells.map(|&at| if at == NULL { NULL } else { ids[at as usize] }));
    }
}

/// Calls `f` with each row of an integer array (`None` for nulls); false when `array` does not
/// hold integers.
fn for_each_int(array: &dyn Array, mut f: impl FnMut(Option<i128>)) -> bool {
    fn each<T>(array: &dyn Array, f: &mut impl FnMut(Option<i128>))
    where
        T: ArrowPrimitiveType,
        T::Native: Into<i128>,
    {
        array
            .as_primitive::<T>()
            .iter()
            .for_each(|v| f(v.map(Into::into)));
    }
    match array.data_type() {
        DataType::Int8 => each::<Int8Type>(array, &mut f),
        DataType::Int16 => each::<Int16Type>(array, &mut f),
        DataType::Int32 => each::<Int32Type>(array, &mut f),
        DataType::Int64 => each::<Int64Type>(array, &mut f),
        DataType::UInt8 => each::<UInt8Type>(array, &mut f),
        DataType::UInt16 => each::<UInt16Type>(array, &mut f),
        DataType::UInt32 => each::<UInt32Type>(array, &mut f),
        DataType::UInt64 => each::<UInt64Type>(array, &mut f),
        // Dictionary-encoded integers (pandas and pyarrow write them): each value once, then
        // the keys.
        DataType::Dictionary(_, value) if value.is_integer() => {
            let dictionary = array.as_any_dictionary();
            let values = dictionary_integers(dictionary.values().as_ref());
            if values.is_empty() {
                // No values: every row is null (`normalized_keys` panics on this).
                (0..array.len()).for_each(|_| f(None));
                return true;
            }
            let keys = dictionary.normalized_keys();
            match dictionary.keys().nulls() {
                None => keys.iter().for_each(|&k| f(values[k])),
                Some(nulls) => keys
                    .iter()
                    .zip(nulls.iter())
                    .for_each(|(&k, ok)| f(if ok { values[k] } else { None })),
            }
        }
        _ => return false,
    }
    true
}

/// The values of a dictionary of integers (not generic: it breaks [`for_each_int`]'s recursion).
fn dictionary_integers(values: &dyn Array) -> Vec<Option<i128>> {
    let mut out = Vec::with_capacity(values.len());
    for_each_int(values, |v| out.push(v));
    out
}

/// The values of an integer column converted by `convert`; on a null or a value `convert`
/// rejects, the first such row and the value's text.
fn integers<T>(
    array: &dyn Array,
    convert: impl Fn(i128) -> Option<T>,
) -> std::result::Result<Vec<T>, (usize, String)> {
    let mut out = Vec::with_capacity(array.len());
    let mut bad = None;
    for_each_int(array, |v| match v.and_then(&convert) {
        Some(v) => out.push(v),
        None => {
            let text = v.map_or_else(|| "null".to_owned(), |v| v.to_string());
            bad.get_or_insert((out.len(), text));
        }
    });
    bad.map_or(Ok(out), Err)
}

impl Sink<'_> {
    /// Adds the rows of one batch. `columns` are the batch's arrays in [`Layout::columns`] order;
    /// `locate(i)` names row `i` of the batch in its file (e.g. `row group 2, row 8193`).
    pub(super) fn add_batch(
        &mut self,
        path: &Path,
        layout: &Layout,
        columns: &[&dyn Array],
        locate: &dyn Fn(usize) -> String,
    ) -> Result<()> {
        let n = columns.first().map_or(0, |c| c.len());
        let at = |i: usize, c: usize| format!("{}, column `{}`", locate(i), layout.columns[c].name);
        // With --group-by: each row's group, from the column or the file's partition folder.
        let mut groups = Vec::new();
        if let Some(sink_groups) = &mut self.groups {
            match (layout.find(Role::Group), &layout.partition_group) {
                (Some(c), _) => {
                    sink_groups.map(columns[c], &mut groups);
                    if let Some(i) = groups.iter().position(|&g| g == NULL) {
                        return Err(Error::bad_input(path, "null group (--group-by)")
                            .at(at(i, c))
                            .hint("every row needs a value in the group column"));
                    }
                }
                (None, Some(name)) => groups = vec![sink_groups.id(name); n],
                (None, None) => unreachable!("Layout::resolve requires a group source"),
            }
        }
        match layout.form {
            Form::Trajectory => self.add_steps(path, columns, &groups, &at)?,
            _ => self.add_transitions(path, layout, columns, &groups, &at, locate)?,
        }
        self.next_row += n as u64;
        self.rows += n as u64;
        Ok(())
    }

    /// Adds a batch of trajectory rows (columns `run, step, state`; `groups`: each row's group,
    /// or none).
    fn add_steps(
        &mut self,
        path: &Path,
        columns: &[&dyn Array],
        groups: &[u32],
        at: &dyn Fn(usize, usize) -> String,
    ) -> Result<()> {
        let steps = integers(columns[1], |v| i64::try_from(v).ok()).map_err(|(i, value)| {
            let expected = "an integer step within the range of i64";
            Error::bad_input(path, format!("expected {expected}, found {value}")).at(at(i, 1))
        })?;
        let mut states = Vec::new();
        self.states.map(columns[2], &mut self.graph, &mut states);
        let runs = run_keys(columns[0]);
        let mut batch = Vec::with_capacity(runs.len());
        for (i, run) in runs.into_iter().enumerate() {
            let Some(run) = run else {
                return Err(Error::bad_input(path, "null run").at(at(i, 0)));
            };
            if states[i] == NULL {
                // Kept as a gap: no transition is made across it.
                self.null_state(path, "null state", || at(i, 2))?;
            }
            batch.push(Spilled {
                run,
                step: steps[i],
                state: states[i],
                row: self.next_row + i as u64,
                group: groups.get(i).copied().unwrap_or(NULL),
            });
        }
        match self.trajectory.add(batch)? {
            Added::Pairs(pairs, groups) => self.add_pairs(&pairs, &groups)?,
            Added::ReadAgain => self.read_again = true,
        }
        Ok(())
    }

    /// Adds trajectory pairs `(source, target, 1, row)`, each also to its group (`NULL`: none).
    pub(super) fn add_pairs(
        &mut self,
        pairs: &[(u32, u32, u64, u64)],
        groups: &[u32],
    ) -> Result<()> {
        self.graph.add_all(pairs).map_err(|(_, e)| e)?;
        // A run's pairs come in order, one run after another: consecutive pairs that chain
        // are taken as one run (see `memory`).
        for (i, &(source, target, ..)) in pairs.iter().enumerate() {
            self.paths
                .row((i, 0, source, target), no_label, &mut self.graph);
        }
        self.paths.end_batch(no_label);
        if let Some(sink_groups) = &mut self.groups {
            for (&(source, target, count, row), &g) in pairs.iter().zip(groups) {
                sink_groups.add(g, source, target, count, row, &self.graph)?;
            }
        }
        self.transitions += pairs.len() as u64;
        Ok(())
    }

    /// Adds a batch of transition rows (columns `source, target[, count][, run]`).
    fn add_transitions(
        &mut self,
        path: &Path,
        layout: &Layout,
        columns: &[&dyn Array],
        groups: &[u32],
        at: &dyn Fn(usize, usize) -> String,
        locate: &dyn Fn(usize) -> String,
    ) -> Result<()> {
        let mut runs = Vec::new();
        let run_column = layout.find(Role::Run).map(|c| columns[c]);
        if let Some(column) = run_column {
            self.run_ids.map(column, &mut self.run_names, &mut runs);
            self.has_runs = true;
        }
        // A run's label, for where a parallel read's parts meet (`memory::PathScan::absorb`).
        let label = |i: usize| match run_column {
            Some(column) => array_value_to_string(column, i).unwrap_or_default(),
            None => no_label(i),
        };
        let counts = match layout.find(Role::Count) {
            Some(c) => Some(
                integers(columns[c], |v| u64::try_from(v).ok().filter(|&v| v >= 1)).map_err(
                    |(i, value)| {
                        Error::bad_input(path, format!("expected a count ≥ 1, found {value}"))
                            .at(at(i, c))
                    },
                )?,
            ),
            None => None,
        };
        let (mut sources, mut targets) = (Vec::new(), Vec::new());
        self.states.map_pair(
            [columns[0], columns[1]],
            &mut self.graph,
            [&mut sources, &mut targets],
        );
        // Rows with both states, as the graph takes them, and their place in the batch.
        let mut adds = Vec::with_capacity(sources.len());
        let mut rows = Vec::with_capacity(sources.len());
        // Rows with counts are aggregates, in no order a run can be followed through.
        let ordered = counts.is_none();
        for (i, (&source, &target)) in sources.iter().zip(&targets).enumerate() {
            if source == NULL || target == NULL {
                let c = usize::from(source != NULL);
                self.null_state(path, "null source or target", || at(i, c))?;
                self.paths.cut();
                continue;
            }
            if ordered {
                let run = runs.get(i).copied().unwrap_or(0);
                self.paths
                    .row((i, run, source, target), label, &mut self.graph);
            }
            let count = counts.as_ref().map_or(1, |counts| counts[i]);
            adds.push((source, target, count, self.next_row + i as u64));
            rows.push(i);
        }
        self.paths.end_batch(label);
        self.graph.add_all(&adds).map_err(|(k, e)| match e {
            // The only failure: the counts' total overflows; say where.
            Error::Numerical(message) => Error::bad_input(path, message)
                .at(locate(rows[k]))
                .hint("the counts of a dataset must sum to at most 2^64 − 1 (u64)"),
            e => e,
        })?;
        if let Some(sink_groups) = &mut self.groups {
            for (&(source, target, count, row), &i) in adds.iter().zip(&rows) {
                sink_groups.add(groups[i], source, target, count, row, &self.graph)?;
            }
        }
        self.transitions += adds.iter().map(|a| a.2).sum::<u64>();
        Ok(())
    }

    /// A row with a null state: skipped and counted under `reason` with `drop_null_states`, an
    /// error otherwise.
    fn null_state(&mut self, path: &Path, reason: &str, at: impl Fn() -> String) -> Result<()> {
        if !self.opts.drop_null_states {
            return Err(Error::bad_input(path, reason)
                .at(at())
                .hint("pass --drop-null-states to skip rows with a null state"));
        }
        self.dropped(reason, 1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        DictionaryArray, Int64Array, LargeStringArray, StringArray, StringViewArray, UInt8Array,
        UInt64Array,
    };

    fn ids(array: &dyn Array) -> Vec<u32> {
        let mut out = Vec::new();
        NameIds::default().map(array, &mut GraphBuilder::default(), &mut out);
        out
    }

    #[test]
    fn every_string_type_maps_alike() {
        let names = [Some("b"), None, Some("a"), Some("b")];
        let expected = vec![0, NULL, 1, 0];
        assert_eq!(ids(&StringArray::from(names.to_vec())), expected);
        assert_eq!(ids(&LargeStringArray::from(names.to_vec())), expected);
        assert_eq!(ids(&StringViewArray::from(names.to_vec())), expected);
        let dictionary: DictionaryArray<arrow::datatypes::UInt8Type> = names.into_iter().collect();
        assert_eq!(ids(&dictionary), expected);
    }

    #[test]
    fn integers_are_named_by_their_decimal_text() {
        let mut table = GraphBuilder::default();
        let mut out = Vec::new();
        let mut names = NameIds::default();
        names.map(
            &Int64Array::from(vec![Some(-7), None, Some(12)]),
            &mut table,
            &mut out,
        );
        assert_eq!(out, [0, NULL, 1]);
        // The same number in another integer type is the same state.
        names.map(&UInt8Array::from(vec![12]), &mut table, &mut out);
        assert_eq!(out, [1]);
        assert_eq!(table.intern("-7"), 0);
        assert_eq!(table.n_states(), 2);
    }

    /// `u64`s above `i64::MAX` (kept in their own table) stay apart from the negative `i64`s with
    /// the same bits, and unnamed labels are counted once across absorbed parts.
    #[test]
    fn integers_beyond_i64_are_their_own_names() {
        let mut table = GraphBuilder::default();
        let mut out = Vec::new();
        let mut names = NameIds::default();
        names.map(
            &Int64Array::from(vec![-1, i64::MIN, i64::MAX]),
            &mut table,
            &mut out,
        );
        assert_eq!(out, [0, 1, 2]);
        names.map(
            &UInt64Array::from(vec![u64::MAX, 1 << 63, i64::MAX as u64, u64::MAX]),
            &mut table,
            &mut out,
        );
        assert_eq!(out, [3, 4, 2, 3]);
        assert_eq!(table.intern(&u64::MAX.to_string()), 3);
        let (mut first, mut second) = (NameIds::unnamed_integers(), NameIds::unnamed_integers());
        first.map(&UInt64Array::from(vec![u64::MAX, 5]), &mut table, &mut out);
        second.map(
            &UInt64Array::from(vec![5, 1 << 63, u64::MAX]),
            &mut table,
            &mut out,
        );
        first.absorb_unnamed(second);
        assert_eq!(first.ints.len(), 3);
        // An empty table takes the other's whole.
        let mut empty = NameIds::unnamed_integers();
        empty.absorb_unnamed(first);
        assert_eq!(empty.ints.len(), 3);
    }

    #[test]
    fn a_dictionary_is_mapped_once_and_reused() {
        let mut table = GraphBuilder::default();
        let mut names = NameIds::default();
        let mut out = Vec::new();
        let dictionary: DictionaryArray<Int32Type> = vec!["x", "y", "x"].into_iter().collect();
        names.map(&dictionary, &mut table, &mut out);
        let sliced = dictionary.slice(1, 2);
        names.map(&sliced, &mut table, &mut out);
        assert_eq!(out, [1, 0]);
        assert_eq!(names.dictionaries.len(), 1);
    }
}
