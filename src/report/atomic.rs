//! Writing outputs so that a reader never sees a half-written file or directory, and a failed
//! run never destroys a previous one.
//!
//! - [`write_atomic`]: one file, written under a temporary sibling name and renamed into place.
//! - [`write_dir_atomic`]: a whole output directory `DIR`, written into the sibling
//!   `DIR.tmp-<pid>` and then swapped in. On Linux the swap is one `renameat2(RENAME_EXCHANGE)`:
//!   `DIR` names the old directory until, in one step, it names the new one, so a process killed
//!   at any instant leaves `DIR` whole, old or new (tests/output_safety.rs kills runs to show
//!   it). The old outputs, now at `DIR.tmp-<pid>`, are removed afterwards. Elsewhere, or on a
//!   file system without the exchange, `DIR` is renamed to `DIR.old-<pid>` and the new directory
//!   to `DIR`: a kill between the two renames leaves no `DIR`, but the previous outputs whole in
//!   `DIR.old-<pid>`. On any failure the temporary directory is removed and the previous `DIR`
//!   is left (or put back) as it was.
//! - Leftovers of a killed run (`DIR.tmp-<pid>`, `DIR.old-<pid>` of a process that no longer
//!   exists) are removed by the next run that writes `DIR`.
//!
//! An existing `DIR` is replaced only when it is empty or a detbal output (its `report.json` has
//! a `schema_version`), or with `force`; a `DIR` that is not a directory is never replaced.

use crate::error::{Error, Result};
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

/// Writes the file `path` through a temporary sibling (`.NAME.tmp-<pid>`) and a rename.
pub(crate) fn write_atomic(
    path: &Path,
    write: impl FnOnce(fs::File) -> std::result::Result<(), String>,
) -> Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| write_error(path, "not a file name"))?;
    let temporary = path.with_file_name(suffixed(".", name, "tmp"));
    let fail = |message: String| {
        let _ = fs::remove_file(&temporary);
        write_error(path, message)
    };
    let file = fs::File::create(&temporary).map_err(|e| fail(e.to_string()))?;
    write(file).map_err(&fail)?;
    fs::rename(&temporary, path).map_err(|e| fail(e.to_string()))
}

/// Fills a new directory with `write` and puts it in place of `dir` (see the module docs).
pub(crate) fn write_dir_atomic(
    dir: &Path,
    force: bool,
    write: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let name = dir.file_name().ok_or_else(|| {
        write_error(
            dir,
            "an output directory needs a name (not `.`, `..` or `/`), e.g. -o detbal-out",
        )
    })?;
    let exists = check_replaceable(dir, force)?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| write_error(dir, e.to_string()))?;
    }
    remove_leftovers(dir, name);
    let staging = dir.with_file_name(suffixed("", name, "tmp"));
    // A leftover of an earlier process with the same id: ours to clear.
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir(&staging)
        .map_err(|e| write_error(dir, format!("cannot create {}: {e}", staging.display())))?;
    let result = write(&staging).and_then(|()| swap_in(&staging, dir, name, exists));
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    result
}

/// Whether `dir` exists; an error when it may not be replaced.
fn check_replaceable(dir: &Path, force: bool) -> Result<bool> {
    let metadata = match fs::metadata(dir) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(write_error(dir, e.to_string())),
    };
    if !metadata.is_dir() {
        return Err(write_error(
            dir,
            "it exists and is not a directory\n  hint: remove it or choose another --output",
        ));
    }
    let mut entries = fs::read_dir(dir).map_err(|e| write_error(dir, e.to_string()))?;
    if force || entries.next().is_none() || is_detbal_output(dir) {
        return Ok(true);
    }
    Err(write_error(
        dir,
        "the directory is not empty and is not a detbal output (no report.json with a \
         schema_version), so it is left alone\n  hint: choose another --output, or pass --force \
         to replace the directory and everything in it",
    ))
}

/// Whether `dir/report.json` is a JSON object with a `schema_version`.
fn is_detbal_output(dir: &Path) -> bool {
    fs::read(dir.join("report.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .is_some_and(|report| report.get("schema_version").is_some())
}

/// Puts the complete `staging` directory at `dir`, keeping the previous `dir` until it is there.
fn swap_in(staging: &Path, dir: &Path, name: &std::ffi::OsStr, exists: bool) -> Result<()> {
    if !exists {
        return fs::rename(staging, dir).map_err(|e| write_error(dir, e.to_string()));
    }
    if exchange(staging, dir).is_ok() {
        // `staging` now holds the previous outputs.
        let _ = fs::remove_dir_all(staging);
        return Ok(());
    }
    let old = dir.with_file_name(suffixed("", name, "old"));
    let _ = fs::remove_dir_all(&old);
    fs::rename(dir, &old).map_err(|e| write_error(dir, e.to_string()))?;
    if let Err(e) = fs::rename(staging, dir) {
        let _ = fs::rename(&old, dir);
        return Err(write_error(dir, e.to_string()));
    }
    // The new outputs are in place; a leftover old copy would only waste space.
    let _ = fs::remove_dir_all(&old);
    Ok(())
}

/// Swaps the two paths in one step (Linux `renameat2(RENAME_EXCHANGE)`).
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes());
    let (a, b) = (c_path(a)?, c_path(b)?);
    // SAFETY: both paths are NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// Removes `NAME.tmp-<pid>` and `NAME.old-<pid>` siblings of `dir` left by processes that no
/// longer exist.
fn remove_leftovers(dir: &Path, name: &std::ffi::OsStr) {
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
    let Ok(entries) = fs::read_dir(parent.unwrap_or(Path::new("."))) else {
        return;
    };
    let name = name.to_string_lossy();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        let pid = [".tmp-", ".old-"].iter().find_map(|tag| {
            let rest = file_name.strip_prefix(name.as_ref())?.strip_prefix(tag)?;
            rest.parse::<u32>().ok()
        });
        if pid.is_some_and(|pid| pid != std::process::id() && !process_exists(pid)) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Whether a process with this id exists; `true` when that cannot be known.
#[cfg(unix)]
fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(not(unix))]
fn process_exists(_: u32) -> bool {
    true
}

/// `{prefix}{name}.{tag}-{pid}`.
fn suffixed(prefix: &str, name: &std::ffi::OsStr, tag: &str) -> OsString {
    let mut out = OsString::from(prefix);
    out.push(name);
    out.push(format!(".{tag}-{}", std::process::id()));
    out
}

fn write_error(path: &Path, message: impl Into<String>) -> Error {
    Error::Write {
        path: PathBuf::from(path),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn previous_output(dir: &Path) {
        fs::create_dir_all(dir).unwrap();
        fs::write(
            dir.join("report.json"),
            r#"{"schema_version": 1, "run": "old"}"#,
        )
        .unwrap();
    }

    fn siblings(parent: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(parent)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_failed_write_leaves_the_previous_directory_and_no_temporary() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("out");
        previous_output(&dir);
        let error = write_dir_atomic(&dir, false, |staging| {
            fs::write(staging.join("report.json"), "{}").unwrap();
            Err(write_error(&staging.join("pairs.parquet"), "disk full"))
        })
        .unwrap_err();
        assert!(error.to_string().contains("disk full"), "{error}");
        assert_eq!(siblings(root.path()), ["out"]);
        assert!(
            fs::read_to_string(dir.join("report.json"))
                .unwrap()
                .contains("old")
        );
    }

    #[test]
    fn a_complete_write_replaces_the_previous_directory() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("out");
        previous_output(&dir);
        fs::write(dir.join("stale.parquet"), "x").unwrap();
        write_dir_atomic(&dir, false, |staging| {
            write_atomic(&staging.join("report.json"), |mut f| {
                std::io::Write::write_all(&mut f, br#"{"schema_version": 1}"#)
                    .map_err(|e| e.to_string())
            })
        })
        .unwrap();
        assert_eq!(siblings(root.path()), ["out"]);
        assert_eq!(siblings(&dir), ["report.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn leftovers_of_dead_processes_are_removed_and_live_ones_kept() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("out");
        previous_output(&dir);
        // A process that has exited (and been reaped) left a staging and an old directory.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        for tag in ["tmp", "old"] {
            previous_output(&root.path().join(format!("out.{tag}-{dead}")));
        }
        // One of a live process (this test's parent) stays: it may be writing.
        let live = root
            .path()
            .join(format!("out.tmp-{}", std::os::unix::process::parent_id()));
        previous_output(&live);
        let unrelated = root.path().join(format!("outside.tmp-{dead}"));
        previous_output(&unrelated);
        write_dir_atomic(&dir, false, |staging| {
            fs::write(staging.join("report.json"), r#"{"schema_version": 1}"#)
                .map_err(|e| write_error(staging, e.to_string()))
        })
        .unwrap();
        let live_name = live.file_name().unwrap().to_string_lossy().into_owned();
        let mut expected = vec!["out".to_string(), live_name, format!("outside.tmp-{dead}")];
        expected.sort();
        assert_eq!(siblings(root.path()), expected);
        assert_eq!(siblings(&dir), ["report.json"]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_exchange_swaps_two_directories_in_one_step() {
        let root = tempfile::tempdir().unwrap();
        let (a, b) = (root.path().join("a"), root.path().join("b"));
        fs::create_dir(&a).unwrap();
        fs::write(a.join("from_a"), "").unwrap();
        fs::create_dir(&b).unwrap();
        exchange(&a, &b).unwrap();
        assert_eq!(siblings(&b), ["from_a"]);
        assert!(siblings(&a).is_empty());
    }

    #[test]
    fn other_directories_are_replaced_only_with_force() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("photos");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("cat.jpg"), "meow").unwrap();
        let error = write_dir_atomic(&dir, false, |_| Ok(())).unwrap_err();
        assert!(error.to_string().contains("--force"), "{error}");
        assert_eq!(siblings(&dir), ["cat.jpg"]);
        write_dir_atomic(&dir, true, |_| Ok(())).unwrap();
        assert!(siblings(&dir).is_empty());
    }
}
