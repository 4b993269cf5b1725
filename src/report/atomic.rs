//! Writing outputs so that a reader never sees a half-written file or directory, and a failed
//! run never destroys a previous one.
//!
//! - [`write_atomic`]: one file, written under a temporary sibling name and renamed into place.
//! - [`write_dir_atomic`]: a whole output directory `DIR`, written into the sibling
//!   `DIR.tmp-<pid>` and then swapped in. On Linux the swap is one `renameat2(RENAME_EXCHANGE)`:
//!   `DIR` names the old directory until, in one step, it names the new one, so a process killed
//!   at any instant leaves `DIR` whole, old or new (tests/it/output_safety.rs kills runs to show
//!   it). The old outputs, now at `DIR.tmp-<pid>`, are removed afterwards. Elsewhere, or on a
//!   file system without the exchange, `DIR` is renamed to `DIR.old-<pid>` and the new directory
//!   to `DIR`: a kill between the two renames leaves no `DIR`, but the previous outputs whole in
//!   `DIR.old-<pid>`. On any failure the temporary directory is removed and the previous `DIR`
//!   is left (or put back) as it was.
//! - Leftovers of a killed run (`DIR.tmp-<pid>`, `DIR.old-<pid>` of a process that no longer
//!   exists) are removed by the next run that writes `DIR`.
//!
//!
//! **What may be replaced.** Every output directory gets a manifest, [`MANIFEST`], written last
//! into the staging directory (so it is swapped in with the files it lists): the detbal version
//! and every file written, by relative path, with its size and BLAKE3 hash. An existing `DIR` is
//! replaced only when it is empty, or when everything in it is listed in its manifest, unchanged
//! (a subset is fine: a listed file that was removed since costs nothing). A file or folder not
//! listed, a listed file whose size or hash differs, a link, or a missing or unreadable manifest
//! (outputs of detbal 0.1.0 and earlier have none) makes `DIR` foreign: refused, naming the first
//! foreign entry, unless `force`. A `DIR` that is not a directory is never replaced.
//!
//! **Inputs.** [`check_inputs_outside`] refuses, with or without `force`, an output directory
//! that is or contains one of the run's inputs (compared as canonical paths); the caller runs it
//! before anything is computed, and [`crate::report::write_outputs`] again before writing.

use crate::error::{Error, Result};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

/// The manifest of an output directory: what detbal wrote there (see the module docs).
pub const MANIFEST: &str = ".detbal-manifest.json";
/// Version of the manifest's layout.
const MANIFEST_VERSION: u64 = 1;

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
    let result = write(&staging)
        .and_then(|()| write_manifest(&staging))
        .and_then(|()| swap_in(&staging, dir, name, exists));
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    result
}

/// An error when `dir` may not be replaced (see the module docs): checked again when it is.
pub(crate) fn check_output(dir: &Path, force: bool) -> Result<()> {
    check_replaceable(dir, force).map(drop)
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
    if force || entries.next().is_none() {
        return Ok(true);
    }
    let Err(foreign) = check_detbal_output(dir) else {
        return Ok(true);
    };
    Err(write_error(
        dir,
        format!(
            "the directory is not a detbal output ({foreign}), so it is left alone\n  hint: \
             detbal replaces only a directory holding nothing but the files listed in its \
             {MANIFEST}; outputs of detbal 0.1.0 and earlier have no manifest and count as \
             foreign. Choose another --output, or pass --force to replace the directory and \
             everything in it"
        ),
    ))
}

/// `Ok` when everything in `dir` is listed, unchanged, in its manifest; else the first foreign
/// entry (in path order) or what is wrong with the manifest.
fn check_detbal_output(dir: &Path) -> std::result::Result<(), String> {
    let (listed, unlisted) = match read_manifest(dir) {
        Ok(listed) => (listed, None),
        // Without a manifest everything is foreign; the message names the first entry too.
        Err(why) => (BTreeMap::new(), Some(why)),
    };
    // Folders that hold a listed file.
    let mut folders: Vec<&str> = Vec::new();
    for path in listed.keys() {
        let mut at = 0;
        while let Some(slash) = path[at..].find('/') {
            folders.push(&path[..at + slash]);
            at += slash + 1;
        }
    }
    let mut first_foreign = None;
    let visit = &mut |relative: &str, path: &Path, kind: EntryKind| -> bool {
        let foreign = match kind {
            EntryKind::Dir if folders.contains(&relative) => return true,
            EntryKind::Dir => format!("`{relative}/` is not listed in its {MANIFEST}"),
            EntryKind::File => match listed.get(relative) {
                None if relative == MANIFEST => return true,
                None => format!("`{relative}` is not listed in its {MANIFEST}"),
                Some(entry) => match file_entry(path) {
                    Ok(found) if found == *entry => return true,
                    Ok(_) => format!("`{relative}` was changed after detbal wrote it"),
                    Err(e) => format!("`{relative}` cannot be read: {e}"),
                },
            },
            EntryKind::Other => {
                format!("`{relative}` is a link or special file, not a detbal output")
            }
        };
        first_foreign = Some(foreign);
        false
    };
    walk(dir, "", visit).map_err(|e| format!("it cannot be read: {e}"))?;
    match (unlisted, first_foreign) {
        (Some(why), Some(first)) => Err(format!(
            "{why}, so all of it counts as foreign, starting with {}",
            first.split(" is not listed").next().unwrap_or(&first)
        )),
        (Some(why), None) => Err(why),
        (None, Some(first)) => Err(first),
        (None, None) => Ok(()),
    }
}

/// Size and hash of a listed file, as the manifest holds them.
#[derive(Debug, PartialEq, Eq)]
struct FileEntry {
    size: u64,
    blake3: String,
}

fn file_entry(path: &Path) -> std::io::Result<FileEntry> {
    let mut hasher = blake3::Hasher::new();
    let size = std::io::copy(&mut fs::File::open(path)?, &mut hasher)?;
    Ok(FileEntry {
        size,
        blake3: hasher.finalize().to_hex().to_string(),
    })
}

/// The files listed in `dir`'s manifest, by relative path.
fn read_manifest(dir: &Path) -> std::result::Result<BTreeMap<String, FileEntry>, String> {
    let bytes = match fs::read(dir.join(MANIFEST)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("it has no {MANIFEST}"));
        }
        Err(e) => return Err(format!("its {MANIFEST} cannot be read: {e}")),
    };
    let invalid = || format!("its {MANIFEST} is not a valid detbal manifest");
    let manifest: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if manifest.get("manifest_version").and_then(Value::as_u64) != Some(MANIFEST_VERSION) {
        return Err(invalid());
    }
    let files = manifest
        .get("files")
        .and_then(Value::as_array)
        .ok_or_else(invalid)?;
    let mut listed = BTreeMap::new();
    for file in files {
        let field = |key: &str| file.get(key).ok_or_else(invalid);
        let path = field("path")?.as_str().ok_or_else(invalid)?;
        let entry = FileEntry {
            size: field("size")?.as_u64().ok_or_else(invalid)?,
            blake3: field("blake3")?.as_str().ok_or_else(invalid)?.to_string(),
        };
        listed.insert(path.to_string(), entry);
    }
    Ok(listed)
}

/// Writes `dir`'s manifest: every file below `dir` (all written by this run).
fn write_manifest(dir: &Path) -> Result<()> {
    let mut files = Vec::new();
    let mut failure = None;
    let visit = &mut |relative: &str, path: &Path, kind: EntryKind| -> bool {
        if !matches!(kind, EntryKind::File) || relative == MANIFEST {
            return true;
        }
        match file_entry(path) {
            Ok(FileEntry { size, blake3 }) => {
                files.push(json!({ "path": relative, "size": size, "blake3": blake3 }));
                true
            }
            Err(e) => {
                failure = Some(write_error(path, e.to_string()));
                false
            }
        }
    };
    walk(dir, "", visit).map_err(|e| write_error(dir, e.to_string()))?;
    if let Some(error) = failure {
        return Err(error);
    }
    let manifest = json!({
        "manifest_version": MANIFEST_VERSION,
        "about": "files written by detbal; detbal replaces this directory only while it holds \
                  nothing else and these files are unchanged",
        "detbal_version": env!("CARGO_PKG_VERSION"),
        "files": files,
    });
    let bytes = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
    write_atomic(&dir.join(MANIFEST), |mut f| {
        std::io::Write::write_all(&mut f, &bytes).map_err(|e| e.to_string())
    })
}

#[derive(Clone, Copy)]
enum EntryKind {
    File,
    Dir,
    Other,
}

/// Calls `visit` on every entry below `dir` (relative paths joined with `/`, sorted, a folder
/// before its contents), without following links, while `visit` returns `true`. Returns whether
/// every entry was visited.
fn walk(
    dir: &Path,
    prefix: &str,
    visit: &mut dyn FnMut(&str, &Path, EntryKind) -> bool,
) -> std::io::Result<bool> {
    let mut entries: Vec<(String, PathBuf)> = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        entries.push((name, entry.path()));
    }
    entries.sort();
    for (name, path) in entries {
        let relative = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let file_type = fs::symlink_metadata(&path)?.file_type();
        let kind = if file_type.is_dir() {
            EntryKind::Dir
        } else if file_type.is_file() {
            EntryKind::File
        } else {
            EntryKind::Other
        };
        if !visit(&relative, &path, kind) {
            return Ok(false);
        }
        if matches!(kind, EntryKind::Dir) && !walk(&path, &relative, visit)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// An error when the output directory `dir` is, or contains, one of `inputs` (files,
/// directories or glob patterns; the `--config` file counts too): replacing `dir` would delete
/// it. Paths are compared canonicalised (links resolved); an input that is itself a link is
/// also compared by where the link lies. Checked whatever `--force` says.
pub(crate) fn check_inputs_outside(dir: &Path, inputs: &[PathBuf]) -> Result<()> {
    // What does not exist holds no input.
    let Ok(output) = fs::canonicalize(dir) else {
        return Ok(());
    };
    for input in inputs {
        let exists = fs::symlink_metadata(input).is_ok();
        let found: Vec<PathBuf> = if exists {
            vec![input.clone()]
        } else if input.to_str().is_some_and(|s| s.contains(['*', '?', '['])) {
            glob::glob(&input.to_string_lossy())
                .map(|paths| paths.flatten().collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        for path in found {
            let resolved = fs::canonicalize(&path).ok();
            // Where the entry itself lies (a link inside `dir` pointing elsewhere is still
            // inside `dir`).
            let placed = match (path.parent(), path.file_name()) {
                (Some(parent), Some(name)) => {
                    let parent = if parent.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        parent
                    };
                    fs::canonicalize(parent).ok().map(|p| p.join(name))
                }
                _ => None,
            };
            if [resolved, placed]
                .into_iter()
                .flatten()
                .any(|p| p.starts_with(&output))
            {
                let relation = if fs::canonicalize(&path).is_ok_and(|p| p == output) {
                    "is"
                } else {
                    "contains"
                };
                return Err(write_error(
                    dir,
                    format!(
                        "the output directory {relation} the input {}, which replacing it would \
                         delete; nothing was computed or written (choose an --output that holds \
                         no input; --force does not change this)",
                        path.display()
                    ),
                ));
            }
        }
    }
    Ok(())
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

    /// A detbal output of an earlier run: report.json, `figures/a.svg` and the manifest.
    fn previous_output(dir: &Path) {
        fs::create_dir_all(dir.join("figures")).unwrap();
        fs::write(
            dir.join("report.json"),
            r#"{"schema_version": 1, "run": "old"}"#,
        )
        .unwrap();
        fs::write(dir.join("figures/a.svg"), "<svg/>").unwrap();
        write_manifest(dir).unwrap();
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
        write_dir_atomic(&dir, false, |staging| {
            write_atomic(&staging.join("report.json"), |mut f| {
                std::io::Write::write_all(&mut f, br#"{"schema_version": 1}"#)
                    .map_err(|e| e.to_string())
            })
        })
        .unwrap();
        assert_eq!(siblings(root.path()), ["out"]);
        assert_eq!(siblings(&dir), [MANIFEST, "report.json"]);
        // The new manifest lists what this run wrote, and only that.
        let listed = read_manifest(&dir).unwrap();
        assert_eq!(listed.keys().collect::<Vec<_>>(), ["report.json"]);
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
        assert_eq!(siblings(&dir), [MANIFEST, "report.json"]);
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
        assert_eq!(siblings(&dir), [MANIFEST]);
    }

    #[test]
    fn only_files_listed_unchanged_in_the_manifest_make_a_detbal_output() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("out");
        previous_output(&dir);
        assert_eq!(check_detbal_output(&dir), Ok(()));
        // A subset of the listed files: nothing foreign to lose.
        fs::remove_file(dir.join("figures/a.svg")).unwrap();
        assert_eq!(check_detbal_output(&dir), Ok(()));
        previous_output(&dir);
        let foreign = |dir: &Path| check_detbal_output(dir).unwrap_err();
        fs::create_dir(dir.join("src")).unwrap();
        assert!(
            foreign(&dir).contains("`src/` is not listed"),
            "{}",
            foreign(&dir)
        );
        fs::remove_dir(dir.join("src")).unwrap();
        fs::write(dir.join("figures/notes.txt"), "mine").unwrap();
        assert!(foreign(&dir).contains("`figures/notes.txt` is not listed"));
        fs::remove_file(dir.join("figures/notes.txt")).unwrap();
        fs::write(
            dir.join("report.json"),
            r#"{"schema_version": 1, "run": "edited"}"#,
        )
        .unwrap();
        assert!(foreign(&dir).contains("`report.json` was changed"));
        fs::write(dir.join(MANIFEST), "{}").unwrap();
        assert!(foreign(&dir).contains("not a valid detbal manifest"));
        fs::remove_file(dir.join(MANIFEST)).unwrap();
        assert!(foreign(&dir).contains("has no .detbal-manifest.json"));
    }
}
