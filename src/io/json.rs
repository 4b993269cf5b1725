//! The reference code's JSON database: an array of records
//! `{"target_expression": str, "source_expressions": [{"expression": str}, …], …}`; each source
//! gives one transition `source → target` (a self-transition when they are equal), other keys are
//! ignored. The row index of a transition is its running index, so states come out in the
//! reference code's node order.
//!
//! Records are visited one by one while parsing (nothing is collected), and names are borrowed
//! from the file's bytes unless they contain escapes.

use super::Sink;
use super::table::Layout;
use crate::error::{Error, Result};
use serde::Deserialize;
use serde::de::{self, Deserializer as _, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;
use std::path::Path;

/// The expected shape of a record, for messages.
const RECORD: &str =
    "{\"target_expression\": string, \"source_expressions\": [{\"expression\": string}, …]}";

#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    target_expression: Cow<'a, str>,
    #[serde(borrow)]
    source_expressions: Vec<Source<'a>>,
}

#[derive(Deserialize)]
struct Source<'a> {
    #[serde(borrow)]
    expression: Cow<'a, str>,
}

/// Reads one JSON database, `bytes` (the whole file, as hashed), into `sink`. A leading UTF-8
/// byte order mark is skipped, as for CSV.
pub(super) fn read(path: &Path, bytes: &[u8], sink: &mut Sink) -> Result<()> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Some(group) = &sink.opts.group_column {
        return Err(Error::bad_input(
            path,
            format!("--group-by {group}: the reference JSON database has no columns to group by"),
        )
        .hint("convert it to a transitions table with a group column, or split it by group"));
    }
    sink.begin_file(path, &Layout::reference_json(), None)?;
    let mut records = Records { sink, index: None };
    let mut parser = serde_json::Deserializer::from_slice(bytes);
    let parsed = parser
        .deserialize_seq(&mut records)
        .and_then(|()| parser.end());
    parsed.map_err(|e| match records.index {
        Some(i) => Error::bad_input(path, format!("{e}; a record must look like {RECORD}"))
            .at(format!("record {i}")),
        None => Error::bad_input(path, e.to_string()).at("top level"),
    })
}

/// Adds records to the sink as they are parsed; `index` is the record being read.
struct Records<'s, 'o> {
    sink: &'s mut Sink<'o>,
    index: Option<u64>,
}

impl<'de> Visitor<'de> for &mut Records<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a JSON array of records {RECORD}")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        let sink = &mut *self.sink;
        let mut index = 0;
        self.index = Some(index);
        while let Some(record) = seq.next_element::<Record<'de>>()? {
            let target = sink.graph.intern(&record.target_expression);
            for source in &record.source_expressions {
                let source = sink.graph.intern(&source.expression);
                sink.graph
                    .add(source, target, 1, sink.next_row)
                    .map_err(de::Error::custom)?;
                sink.next_row += 1;
                sink.transitions += 1;
            }
            sink.rows += 1;
            index += 1;
            self.index = Some(index);
        }
        self.index = None;
        Ok(())
    }
}
