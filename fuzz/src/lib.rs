//! Shared by the file targets: writes the fuzz input to a file and loads it with
//! [`detbal::io::load`].

use detbal::io::{LoadOptions, load};
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::{Once, OnceLock};

/// Loads `bytes` as a file named `input.<extension>` and asserts the outcome: `Ok`, or an `Err`
/// whose message names the file; otherwise, or when a panic escapes `load`, it aborts: the crash
/// the fuzzer reports.
///
/// Null states are dropped (`--drop-null-states`) so that rows after a null are reached too.
pub fn load_as(extension: &str, bytes: &[u8]) {
    let path = scratch_dir().join(format!("input.{extension}"));
    std::fs::write(&path, bytes).expect("cannot write the fuzz input");
    let opts = LoadOptions {
        drop_null_states: true,
        ..LoadOptions::default()
    };
    keep_caught_panics();
    let loaded = std::panic::catch_unwind(|| load(std::slice::from_ref(&path), &opts));
    let loaded = loaded.unwrap_or_else(|_| {
        let panic = LAST_PANIC.with(|p| p.take()).unwrap_or_default();
        eprintln!("detbal::io::load panicked: {panic}");
        std::process::abort()
    });
    if let Err(e) = loaded {
        let message = e.to_string();
        if !message.contains(&*path.to_string_lossy()) {
            eprintln!("the error does not name the file: {message}");
            std::process::abort()
        }
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

thread_local! {
    /// The last panic's location and message, printed if it escapes `load`.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// libFuzzer's panic hook aborts on every panic, even one that is caught, but `detbal::io` catches
/// the parquet crate's panics on malformed pages and reports them as the file's error. So the hook
/// only records the panic, and [`load_as`] aborts (a crash) when one escapes `load`.
fn keep_caught_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let location = info.location().map(|l| l.to_string()).unwrap_or_default();
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
                .unwrap_or("");
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{location}: {message}")));
        }));
    });
}
