//! Feeds the bytes to `detbal::compare::compare` (through `detbal_fuzz::compare_as`) as the
//! `potentials.parquet` of one run, with a `report.json` derived from the same bytes, beside a
//! valid run (`fuzz/data/compare_base/`): compare's readers of report.json and of the potentials
//! table, then its JSON and text.
//! Asserts `Ok` or an `Err` whose message names the fuzzed run's file; a panic is a crash.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| detbal_fuzz::compare_as(data));
