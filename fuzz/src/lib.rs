//! Shared by the file targets: writes the fuzz input to a file and loads it with
//! [`detbal::io::load`] ([`load_as`]), or reads it as one run of `detbal compare`
//! ([`compare_as`]).

use detbal::compare::{Thresholds, compare, text};
use detbal::io::{LoadOptions, load};
use serde_json::Value;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
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

/// The valid run that [`compare_as`] compares the fuzzed one with: `detbal analyze` of
/// `fuzz/data/compare_base/log.csv`.
const BASE_REPORT: &[u8] = include_bytes!("../data/compare_base/report.json");
const BASE_POTENTIALS: &[u8] = include_bytes!("../data/compare_base/potentials.parquet");

/// Writes `bytes` as the `potentials.parquet` of a run directory, with a `report.json` derived
/// from a hash of the same bytes (most often the valid base report unchanged; else with its
/// numbers, attractors or schema version altered, or truncated), and compares that run with the
/// valid base run (as old, as new, or with itself), as `detbal compare` does: `compare`, then
/// its JSON and its text. Asserts `Ok`, or an `Err` whose message names the fuzzed run's
/// directory; a panic (outside the Parquet containment of `compare`) is a crash.
pub fn compare_as(bytes: &[u8]) {
    let root = scratch_dir();
    let (base, fuzzed) = (root.join("base"), root.join("fuzzed"));
    static BASE: Once = Once::new();
    BASE.call_once(|| {
        std::fs::create_dir_all(&base).expect("cannot create the base run");
        std::fs::write(base.join("report.json"), BASE_REPORT).expect("cannot write the base run");
        std::fs::write(base.join("potentials.parquet"), BASE_POTENTIALS)
            .expect("cannot write the base run");
        std::fs::create_dir_all(&fuzzed).expect("cannot create the fuzzed run");
    });
    // FNV-1a: any mutation of the bytes may change the report and the setting.
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    std::fs::write(fuzzed.join("potentials.parquet"), bytes).expect("cannot write the fuzz input");
    std::fs::write(fuzzed.join("report.json"), derived_report(hash))
        .expect("cannot write the fuzz input");
    let (old, new): (&Path, &Path) = match hash % 3 {
        0 => (&base, &fuzzed),
        1 => (&fuzzed, &base),
        _ => (&fuzzed, &fuzzed),
    };
    let bit = |i: u32| (hash >> (40 + i)) & 1 == 1;
    let limits = Thresholds {
        rms: bit(0).then_some(0.1),
        max: bit(1).then_some(0.5),
        r_drop: bit(2).then_some(0.05),
    };
    let top = (hash >> 48) as usize % 12;
    keep_caught_panics();
    let compared = std::panic::catch_unwind(|| {
        compare(old, new, top, limits).map(|c| {
            let json = serde_json::to_string_pretty(&c).expect("comparison serialises");
            (json, text(&c), c.exit_code())
        })
    });
    let compared = compared.unwrap_or_else(|_| {
        let panic = LAST_PANIC.with(|p| p.take()).unwrap_or_default();
        eprintln!("detbal::compare panicked: {panic}");
        std::process::abort()
    });
    if let Err(e) = compared {
        let message = e.to_string();
        if !message.contains(&*fuzzed.to_string_lossy()) {
            eprintln!("the error does not name the fuzzed run's file: {message}");
            std::process::abort()
        }
    }
}

/// The fuzzed run's report.json: the base report, altered by `hash` half of the time.
fn derived_report(hash: u64) -> Vec<u8> {
    let mut report: Value = serde_json::from_slice(BASE_REPORT).expect("the base report is JSON");
    let pointers = [
        "/pairs/pearson_r",
        "/pairs/chi2",
        "/pairs/ndf",
        "/verdict/p_value",
        "/cycles/p_value",
        "/entropy_production/nats_per_transition",
    ];
    let pick = (hash >> 8) as usize % pointers.len();
    match (hash >> 4) % 8 {
        // Numbers anywhere in f64 (non-finite ones serialise as null), or null.
        4 => {
            for (i, pointer) in pointers.iter().enumerate() {
                let bits = hash.rotate_left(11 * i as u32);
                let value = match bits % 4 {
                    0 => Value::Null,
                    1 => Value::from(f64::from_bits(bits)),
                    2 => Value::from(bits as i64),
                    _ => Value::from((bits % 2001) as f64 / 1000.0 - 1.0),
                };
                if let Some(slot) = report.pointer_mut(pointer) {
                    *slot = value;
                }
            }
        }
        // One key read missing or of the wrong type.
        5 => {
            if let Some(slot) = report.pointer_mut(pointers[pick]) {
                *slot = if (hash >> 12) & 1 == 1 {
                    Value::from("0.5")
                } else {
                    Value::Object(Default::default())
                };
            }
        }
        // Attractors: missing, not an array, names missing or of another type, or many.
        6 => {
            let listed = match (hash >> 12) & 3 {
                0 => Value::Null,
                1 => Value::from(vec![Value::from(1), Value::Null]),
                2 => Value::from(vec![serde_json::json!({"name": 3}), serde_json::json!({})]),
                _ => Value::from(
                    (0..(hash >> 16) % 64)
                        .map(|i| serde_json::json!({ "name": format!("s{i}") }))
                        .collect::<Vec<_>>(),
                ),
            };
            if let Some(slot) = report.pointer_mut("/attractors/listed") {
                *slot = listed;
            }
        }
        7 => match (hash >> 12) & 1 {
            0 => {
                if let Some(o) = report.as_object_mut() {
                    o.remove("schema_version");
                }
            }
            _ => {
                let text = serde_json::to_vec(&report).expect("the report serialises");
                return text[..(hash >> 16) as usize % text.len()].to_vec();
            }
        },
        _ => {}
    }
    serde_json::to_vec_pretty(&report).expect("the report serialises")
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
