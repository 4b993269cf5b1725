//! Feeds the bytes to `detbal::io::load` (through `detbal_fuzz::load_as`) as a `.parquet` file
//! (footer, schema, pages, dictionaries).
//! Asserts `Ok` or an `Err` whose message names the file; a panic is a crash.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| detbal_fuzz::load_as("parquet", data));
