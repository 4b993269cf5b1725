//! Inputs on which a fuzz target (`fuzz/`, run by `scripts/fuzz.sh`) found a panic, kept as the
//! minimised files under `tests/data/fuzz/`: each must now load to an error that names the file
//! and the place in it, never a panic (nor a hang).

use crate::support::{detbal, fixture};
use detbal::io::{LoadOptions, load};

/// Loads `tests/data/fuzz/<name>`, which must fail with a message naming the file and each of
/// `expected`.
fn rejected(name: &str, expected: &[&str]) {
    let path = fixture("fuzz").join(name);
    let message = load(&[path], &LoadOptions::default())
        .map(|_| ())
        .expect_err("the input should be rejected")
        .to_string();
    for part in [name].iter().chain(expected) {
        assert!(message.contains(part), "{part:?} missing from:\n{message}");
    }
}

/// `parquet_reader`: a footer whose column chunk has a negative offset or length made the
/// parquet crate panic (`ColumnChunkMetaData::byte_range`) while planning the read.
#[test]
fn parquet_column_chunk_with_a_negative_offset() {
    rejected(
        "negative_chunk_offset.parquet",
        &[
            "row group 0",
            "negative offset",
            "not a readable Parquet file",
        ],
    );
}

/// `parquet_reader`: a data page that declares no values but holds bytes made the parquet crate's
/// plain byte-array decoder divide by zero; `io` turns a panic of the Parquet reader into an error.
/// Since `parquet_page_header_past_its_chunk`, `io`'s page check refuses its page header first
/// (a varint longer than 10 bytes), before the parquet crate reads it.
#[test]
fn parquet_page_without_values() {
    rejected(
        "page_without_values.parquet",
        &[
            "not a readable Parquet file",
            "the page header at byte 70 cannot be read",
        ],
    );
}

/// `parquet_reader`: definition levels running past their buffer made arrow-buffer's bit
/// iterator assert (`offset + len out of bounds`) inside the parquet crate's level decoder. Since
/// `parquet_page_header_past_its_chunk`, `io`'s page check refuses its second page header first
/// (it runs past the end of the file).
#[test]
fn parquet_definition_levels_out_of_bounds() {
    rejected(
        "def_levels_out_of_bounds.parquet",
        &[
            "not a readable Parquet file",
            "the page header at byte 282 cannot be read",
        ],
    );
}

/// Through the binary the same input is a clean error: exit code 1 and no panic message.
#[test]
fn the_binary_reports_a_parquet_reader_panic_as_an_error() {
    let path = fixture("fuzz/page_without_values.parquet");
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("out");
    let out = detbal(
        &[
            "analyze",
            path.to_str().unwrap(),
            "--drop-null-states",
            "-o",
            out.to_str().unwrap(),
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains("not a readable Parquet file"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Loads `tests/data/fuzz/<name>` as [`rejected`] does, on a thread, so that a hang fails.
fn rejected_in_time(name: &'static str, expected: &'static [&'static str]) {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        rejected(name, expected);
        sender.send(()).unwrap();
    });
    receiver
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("loading should end within a minute, with an error");
}

/// `parquet_reader` (a timeout): a page header holding a Thrift map of booleans that claims
/// 2^63 entries made `io`'s page check skip booleans without reading a byte, looping for ever.
/// A list, set or map of booleans in a page header is now refused at once (the parquet crate too
/// skips such booleans without reading), so the page check stops at its page.
#[test]
fn parquet_page_header_with_a_map_of_booleans() {
    rejected_in_time(
        "map_of_booleans.parquet",
        &[
            "row group 0, column `state`",
            "the page header at byte 180 cannot be read",
        ],
    );
}

/// `parquet_reader` (a timeout): a page header running past the end of its column chunk, into
/// a Thrift list of up to 2^31 fixed-size values: `io`'s page check gave up on the header and
/// left it to the parquet crate, whose Thrift skip does not stop at the end of the bytes. A page
/// header that the check cannot read is now the file's error.
#[test]
fn parquet_page_header_past_its_chunk() {
    rejected_in_time(
        "page_header_past_its_chunk.parquet",
        &[
            "row group 0, column `source`",
            "the page header at byte 4 cannot be read",
        ],
    );
}
