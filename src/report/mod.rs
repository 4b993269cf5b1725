//! Outputs of `detbal analyze`: `report.json`, the Parquet tables and the terminal summary.
//! Each file is written under a temporary name in the output directory and renamed into place,
//! so a reader never sees a half-written file.

mod json;
mod summary;
mod tables;

pub use json::report_json;
pub use summary::summary;

use crate::analyze::Analysis;
use crate::error::{Error, Result};
use std::path::Path;

/// Version of the `report.json` layout; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Writes every output file of `analysis` into `dir` (created if needed).
pub fn write_outputs(analysis: &Analysis, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Write {
        path: dir.into(),
        message: e.to_string(),
    })?;
    write_atomic(dir, "potentials.parquet", |f| {
        tables::write_potentials(analysis, f)
    })?;
    write_atomic(dir, "pairs.parquet", |f| tables::write_pairs(analysis, f))?;
    write_atomic(dir, "cycles.parquet", |f| tables::write_cycles(analysis, f))?;
    let json = serde_json::to_vec_pretty(&report_json(analysis)).expect("report serialises");
    write_atomic(dir, "report.json", |mut f| {
        std::io::Write::write_all(&mut f, &json).map_err(|e| e.to_string())
    })
}

/// Writes `dir/name` through a temporary file and a rename.
fn write_atomic(
    dir: &Path,
    name: &str,
    write: impl FnOnce(std::fs::File) -> std::result::Result<(), String>,
) -> Result<()> {
    let target = dir.join(name);
    let temporary = dir.join(format!(".{name}.tmp"));
    let fail = |message: String| {
        let _ = std::fs::remove_file(&temporary);
        Error::Write {
            path: target.clone(),
            message,
        }
    };
    let file = std::fs::File::create(&temporary).map_err(|e| fail(e.to_string()))?;
    write(file).map_err(&fail)?;
    std::fs::rename(&temporary, &target).map_err(|e| fail(e.to_string()))
}
