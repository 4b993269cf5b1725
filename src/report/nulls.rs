//! `nulls.parquet`: the null distributions of the resampling tests in long format, one row per
//! (test, resample): `test`, `resample`, `statistic`, and `observed` (the test's observed value,
//! repeated) so that a figure needs no other file.

use super::tables::{Columns, f64s};
use crate::stats::permutation::Resampling;
use arrow::array::{ArrayRef, StringArray, UInt32Array};
use std::sync::Arc;

pub(super) fn nulls(r: &Resampling) -> Columns {
    let rows = || {
        r.tests
            .iter()
            .flat_map(|t| t.null.iter().enumerate().map(move |(i, &x)| (t, i, x)))
    };
    vec![
        (
            "test",
            Arc::new(StringArray::from_iter_values(
                rows().map(|(t, _, _)| t.test),
            )) as ArrayRef,
        ),
        (
            "resample",
            Arc::new(UInt32Array::from_iter_values(
                rows().map(|(_, i, _)| i as u32),
            )),
        ),
        ("statistic", f64s(rows().map(|(_, _, x)| x))),
        ("observed", f64s(rows().map(|(t, _, _)| t.observed))),
    ]
}
