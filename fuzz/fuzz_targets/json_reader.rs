//! Feeds the bytes to `detbal::io::load` (through `detbal_fuzz::load_as`) as a `.json` file
//! (the reference database's records).
//! Asserts `Ok` or an `Err` whose message names the file; a panic is a crash.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| detbal_fuzz::load_as("json", data));
