//! Tables in and out through the Arrow C stream interface (the PyCapsule protocol,
//! `__arrow_c_stream__`): pyarrow, pandas and polars hand their columns over without a copy,
//! and the analysis' tables come back as `pyarrow.Table`s over detbal's own buffers.
//!
//! Why not `arrow-pyarrow` or `pyo3-arrow`: the first is built on PyO3 0.29, the second on
//! arrow 59, either a second copy of a large dependency; the protocol itself is a capsule
//! holding one `FFI_ArrowArrayStream`, which arrow's `ffi` feature reads and writes.

use arrow::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};
use arrow::record_batch::{RecordBatch, RecordBatchIterator};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyList, PyString, PyTuple};
use std::ffi::CStr;
use std::path::PathBuf;

/// The capsule name of the protocol's streams.
const STREAM: &CStr = c"arrow_array_stream";

/// What `detbal.analyze` was given.
pub enum Source {
    /// Files, directories or glob patterns (none: the `--config` file's `inputs`).
    Paths(Vec<PathBuf>),
    /// One table in memory, `name` (`<pandas.DataFrame>`) standing for its path in messages.
    Stream {
        reader: RecordBatchStreamReader,
        name: String,
    },
}

impl Source {
    /// A path, a list of paths, or anything with `__arrow_c_stream__` (a pandas DataFrame
    /// without it, from pandas before 2.2, goes through `pyarrow.Table.from_pandas`).
    pub fn of(source: Option<&Bound<'_, PyAny>>) -> PyResult<Source> {
        let Some(source) = source else {
            return Ok(Source::Paths(Vec::new()));
        };
        if source.is_instance_of::<PyString>() || source.hasattr("__fspath__")? {
            return Ok(Source::Paths(vec![source.extract()?]));
        }
        if source.is_instance_of::<PyList>() || source.is_instance_of::<PyTuple>() {
            let paths: PyResult<Vec<PathBuf>> = source.try_iter()?.map(|p| p?.extract()).collect();
            return paths.map(Source::Paths).map_err(|_| wrong_type(source));
        }
        let name = type_name(source)?;
        let table = if source.hasattr("__arrow_c_stream__")? {
            source.clone()
        } else if name == "<pandas.DataFrame>" {
            let pyarrow = source.py().import("pyarrow")?;
            pyarrow
                .getattr("Table")?
                .call_method1("from_pandas", (source,))?
        } else {
            return Err(wrong_type(source));
        };
        let capsule = table.call_method0("__arrow_c_stream__")?;
        let capsule = capsule.cast::<PyCapsule>()?;
        let stream = capsule
            .pointer_checked(Some(STREAM))?
            .cast::<FFI_ArrowArrayStream>();
        // SAFETY: the capsule holds a stream (its name says so); `from_raw` moves it out and
        // leaves a released one, which the capsule's destructor then skips.
        let reader = unsafe { RecordBatchStreamReader::from_raw(stream.as_ptr()) }
            .map_err(|e| crate::DetbalError::new_err(format!("{name}: {e}")))?;
        Ok(Source::Stream { reader, name })
    }

    /// The positional inputs of the command line: the paths, or the table's name as a stand-in
    /// (the parser requires an input; the table is read instead).
    pub fn positionals(&self) -> Vec<std::ffi::OsString> {
        match self {
            Source::Paths(paths) => paths.iter().map(|p| p.clone().into()).collect(),
            Source::Stream { name, .. } => vec![name.into()],
        }
    }
}

/// `<pandas.DataFrame>`: the object's top-level module and type.
fn type_name(object: &Bound<'_, PyAny>) -> PyResult<String> {
    let t = object.get_type();
    let module = t.module()?.to_string();
    let root = module.split('.').next().unwrap_or_default();
    Ok(format!("<{root}.{}>", t.qualname()?))
}

fn wrong_type(source: &Bound<'_, PyAny>) -> PyErr {
    let t = source
        .get_type()
        .name()
        .map_or_else(|_| "?".into(), |n| n.to_string());
    PyTypeError::new_err(format!(
        "detbal.analyze: the source must be a path, a list of paths, a glob pattern, or a table \
         with __arrow_c_stream__ (pyarrow.Table, pandas.DataFrame, polars.DataFrame), not {t}"
    ))
}

/// One record batch offered through `__arrow_c_stream__`, for `pyarrow.table(...)`.
#[pyclass(frozen)]
struct BatchStream(RecordBatch);

#[pymethods]
impl BatchStream {
    /// The batch as a stream capsule. A requested schema is ignored, as the protocol allows:
    /// the table keeps its own types.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let reader = RecordBatchIterator::new([Ok(self.0.clone())], self.0.schema());
        PyCapsule::new_with_value(py, FFI_ArrowArrayStream::new(Box::new(reader)), STREAM)
    }
}

/// `batch` as a `pyarrow.Table` sharing its buffers.
pub fn table<'py>(py: Python<'py>, batch: &RecordBatch) -> PyResult<Bound<'py, PyAny>> {
    let stream = Bound::new(py, BatchStream(batch.clone()))?;
    py.import("pyarrow")?.call_method1("table", (stream,))
}
