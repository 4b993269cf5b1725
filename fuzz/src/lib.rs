//! Shared by the file targets: writes the fuzz input to a file and loads it with
//! [`detbal::io::load`].

use detbal::io::{LoadOptions, load};
use std::path::PathBuf;
use std::sync::OnceLock;

/// Loads `bytes` as a file named `input.<extension>` and asserts the outcome: `Ok`, or an `Err`
/// whose message names the file. A panic anywhere below is the crash the fuzzer reports.
///
/// Null states are dropped (`--drop-null-states`) so that rows after a null are reached too.
pub fn load_as(extension: &str, bytes: &[u8]) {
    let path = scratch_dir().join(format!("input.{extension}"));
    std::fs::write(&path, bytes).expect("cannot write the fuzz input");
    let opts = LoadOptions {
        drop_null_states: true,
        ..LoadOptions::default()
    };
    if let Err(e) = load(std::slice::from_ref(&path), &opts) {
        let message = e.to_string();
        assert!(
            message.contains(&*path.to_string_lossy()),
            "the error does not name the file: {message}"
        );
    }
}

/// One directory per process, under `$TMPDIR` (`scripts/fuzz.sh` points it at a directory it
/// removes afterwards).
fn scratch_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("detbal-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("cannot create the fuzz scratch directory");
        dir
    })
}
