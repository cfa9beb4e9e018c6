//! Atomic file replacement: write a temporary file beside the target, then rename it over the
//! target. Readers see either the old file or the complete new one, never a half-written file,
//! and a failed or interrupted write leaves the target untouched. A folder of several files (a
//! training checkpoint) is replaced the same way, as one unit ([`replace_folder`]), and is
//! also flushed to disk before it takes the old folder's place, so that even a crash of the
//! machine leaves a whole checkpoint, old or new. Single files are not flushed (as NumPy's and
//! PyTorch's saves are not): waiting for the disk would double the time of writing an output.
//!
//! Temporary names are `.<name>.<pid>.<n>.tmp`. A process killed in the middle of a write
//! leaves one behind; the next write to the same target removes those whose process is gone.

use crate::error::IoError;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes temporary files made by concurrent writers in one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically: the data goes to a temporary file in the same folder,
/// which is renamed over `path`. On any failure the target is unchanged and the
/// temporary file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Like [`write_atomic`], but the content is produced by `fill`, which writes into a buffered
/// writer; this lets large outputs be streamed without first building them in memory. If `fill`
/// returns an error the target is unchanged.
pub fn write_atomic_with<F>(path: &Path, fill: F) -> Result<(), IoError>
where
    F: FnOnce(&mut BufWriter<File>) -> io::Result<()>,
{
    let write_err = |detail: String| IoError::Write {
        path: path.to_path_buf(),
        detail,
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| write_err("the path does not name a file".into()))?;
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !folder.is_dir() {
        return Err(write_err(format!(
            "folder {} does not exist",
            folder.display()
        )));
    }

    remove_stale(&folder, &file_name.to_string_lossy());
    let (tmp_path, file) = create_temp(&folder, &file_name.to_string_lossy())
        .map_err(|e| write_err(format!("cannot create a temporary file: {e}")))?;

    let result = fill_and_flush(file, fill).and_then(|()| replace_file(&tmp_path, path));
    if let Err(e) = result {
        // Best effort: the temporary file is ours and must not be left behind.
        let _ = fs::remove_file(&tmp_path);
        return Err(write_err(e.to_string()));
    }
    Ok(())
}

/// Creates a fresh, uniquely named hidden file `.<name>.<pid>.<n>.tmp` in `folder`.
fn create_temp(folder: &Path, name: &str) -> io::Result<(PathBuf, File)> {
    let pid = std::process::id();
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let candidate = folder.join(format!(".{name}.{pid}.{n}.tmp"));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(f) => return Ok((candidate, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Removes temporary files and folders (`.<name>.<pid>.<n>.tmp`) that a write to `name` in
/// `folder` left behind when its process was killed. Best effort: errors are ignored.
fn remove_stale(folder: &Path, name: &str) {
    let Ok(entries) = fs::read_dir(folder) else {
        return;
    };
    let prefix = format!(".{name}.");
    let own = std::process::id();
    for entry in entries.flatten() {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        let Some(rest) = file
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(".tmp"))
        else {
            continue;
        };
        let Some(pid) = rest.split('.').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != own && !process_alive(pid) {
            let path = entry.path();
            let _ = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
        }
    }
}

/// Whether process `pid` still runs (Linux: it has a `/proc` entry). Elsewhere every process
/// counts as running, so nothing another process may still be writing is removed.
fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// Replaces the folder `dir` (or creates it) with one that `fill` writes, as a unit: `fill`
/// gets a fresh temporary folder beside `dir` and writes every file into it; once it returns,
/// the new folder takes `dir`'s place in one step (Linux: an atomic exchange of the two
/// names; elsewhere two renames in a row) and the old one is removed. An interrupt at any
/// moment leaves either the old folder or the new one at `dir`. `dir` must hold only
/// `allowed` files, so that no other file of the user's is ever removed.
pub fn replace_folder<F>(dir: &Path, allowed: &[&str], fill: F) -> Result<(), IoError>
where
    F: FnOnce(&Path) -> Result<(), IoError>,
{
    let write_err = |detail: String| IoError::Write {
        path: dir.to_path_buf(),
        detail,
    };
    let name = dir
        .file_name()
        .ok_or_else(|| write_err("the path does not name a folder".into()))?
        .to_string_lossy()
        .into_owned();
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(write_err(format!(
            "folder {} does not exist",
            parent.display()
        )));
    }
    if dir.exists() {
        let entries = fs::read_dir(dir).map_err(|e| write_err(e.to_string()))?;
        for entry in entries {
            let entry = entry.map_err(|e| write_err(e.to_string()))?;
            let file = entry.file_name().to_string_lossy().into_owned();
            if !allowed.contains(&file.as_str()) {
                return Err(write_err(format!(
                    "it holds `{file}`, which is not part of a checkpoint; give the checkpoint a folder of its own"
                )));
            }
        }
    }
    remove_stale(&parent, &name);
    let pid = std::process::id();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = parent.join(format!(".{name}.{pid}.{n}.tmp"));
    fs::create_dir(&tmp).map_err(|e| write_err(format!("cannot create {}: {e}", tmp.display())))?;
    let result = fill(&tmp).and_then(|()| {
        sync_files(&tmp).map_err(|e| write_err(format!("cannot flush the checkpoint: {e}")))?;
        sync_folder(&tmp);
        swap_into_place(&tmp, dir).map_err(|e| write_err(e.to_string()))
    });
    // After a swap `tmp` holds the old folder; after a failure, the partial new one.
    let _ = fs::remove_dir_all(&tmp);
    sync_folder(&parent);
    result
}

/// Puts the folder `new` at `dir`, leaving the old `dir` (if any) at `new`.
fn swap_into_place(new: &Path, dir: &Path) -> io::Result<()> {
    if !dir.exists() {
        return fs::rename(new, dir);
    }
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        renameat_with(CWD, new, CWD, dir, RenameFlags::EXCHANGE).map_err(io::Error::from)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let old = new.with_extension("old");
        fs::rename(dir, &old)?;
        fs::rename(new, dir)?;
        fs::rename(&old, new)
    }
}

/// Puts the file `new` at `path`. On Linux an existing file is exchanged with the new one in
/// one step and then removed: ext4 flushes a file renamed over another to disk on the spot,
/// which would cost a write of 16 MB about as long again as writing it.
fn replace_file(new: &Path, path: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        if path.is_file() && renameat_with(CWD, new, CWD, path, RenameFlags::EXCHANGE).is_ok() {
            // The new file is in place; a failure to remove the old one leaves a temporary
            // file that the next write to `path` removes.
            let _ = fs::remove_file(new);
            return Ok(());
        }
    }
    fs::rename(new, path)
}

/// Runs `fill` on a buffered writer over `file` and flushes it.
fn fill_and_flush<F>(file: File, fill: F) -> io::Result<()>
where
    F: FnOnce(&mut BufWriter<File>) -> io::Result<()>,
{
    let mut w = BufWriter::with_capacity(1 << 20, file);
    fill(&mut w)?;
    w.flush()
}

/// Flushes every file of `folder` to disk.
fn sync_files(folder: &Path) -> io::Result<()> {
    for entry in fs::read_dir(folder)? {
        let path = entry?.path();
        if path.is_file() {
            OpenOptions::new().write(true).open(&path)?.sync_all()?;
        }
    }
    Ok(())
}

/// Makes the rename itself durable where the platform allows (unix); failures are ignored
/// because the data is already safely in place.
fn sync_folder(folder: &Path) {
    #[cfg(unix)]
    if let Ok(dir) = File::open(folder) {
        let _ = dir.sync_all();
    }
    #[cfg(not(unix))]
    let _ = folder;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leftovers(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn stale_temporary_files_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log.csv");
        // A pid past the kernel's limit (2^22) never runs.
        let stale = dir.path().join(".log.csv.4194999.0.tmp");
        let live = dir
            .path()
            .join(format!(".log.csv.{}.7.tmp", std::process::id()));
        let other = dir.path().join(".other.csv.4194999.0.tmp");
        for f in [&stale, &live, &other] {
            fs::write(f, b"partial").unwrap();
        }
        write_atomic(&p, b"done").unwrap();
        assert!(!stale.exists() || !cfg!(target_os = "linux"));
        assert!(live.exists() && other.exists());
    }

    #[test]
    fn a_folder_is_replaced_as_a_unit() {
        let dir = tempfile::tempdir().unwrap();
        let ck = dir.path().join("ck");
        let files = ["a", "b"];
        for round in 0..3u8 {
            replace_folder(&ck, &files, |tmp| {
                for f in files {
                    fs::write(tmp.join(f), [round]).map_err(|e| IoError::Write {
                        path: tmp.join(f),
                        detail: e.to_string(),
                    })?;
                }
                Ok(())
            })
            .unwrap();
            assert_eq!(fs::read(ck.join("a")).unwrap(), [round]);
            assert_eq!(fs::read(ck.join("b")).unwrap(), [round]);
        }
        assert_eq!(leftovers(dir.path()), vec!["ck"]);
        // A failed fill leaves the old folder as it was and nothing beside it.
        let err = replace_folder(&ck, &files, |tmp| {
            fs::write(tmp.join("a"), [9]).unwrap();
            Err(IoError::Write {
                path: tmp.to_path_buf(),
                detail: "simulated".into(),
            })
        });
        assert!(err.is_err());
        assert_eq!(fs::read(ck.join("a")).unwrap(), [2]);
        assert_eq!(leftovers(dir.path()), vec!["ck"]);
        // A folder holding other files is never replaced.
        fs::write(ck.join("notes.txt"), b"mine").unwrap();
        let err = replace_folder(&ck, &files, |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("notes.txt"), "{err}");
        assert!(ck.join("notes.txt").exists());
    }

    #[test]
    fn writes_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.bin");
        write_atomic(&p, b"first").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"first");
        write_atomic(&p, b"second, longer").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"second, longer");
        assert_eq!(leftovers(dir.path()), vec!["out.bin"]);
    }

    #[test]
    fn missing_folder_is_an_error_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("no_such_folder").join("out.bin");
        let err = write_atomic(&p, b"x").unwrap_err();
        assert!(matches!(err, IoError::Write { .. }), "{err}");
        assert!(err.to_string().contains("out.bin"));
        assert!(!p.exists());
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn failed_fill_keeps_old_file_and_removes_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("keep.txt");
        fs::write(&p, b"old contents").unwrap();
        let err = write_atomic_with(&p, |w| {
            w.write_all(b"partial new data")?;
            Err(io::Error::other("simulated failure"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("simulated failure"), "{err}");
        assert_eq!(fs::read(&p).unwrap(), b"old contents");
        assert_eq!(leftovers(dir.path()), vec!["keep.txt"]);
    }

    #[test]
    fn target_that_is_a_folder_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub");
        fs::create_dir(&p).unwrap();
        fs::write(p.join("inner"), b"x").unwrap();
        assert!(write_atomic(&p, b"data").is_err());
        assert!(p.is_dir());
        assert_eq!(leftovers(dir.path()), vec!["sub"]);
    }

    #[test]
    fn bare_file_name_uses_current_folder_check() {
        // A path with no file name at all cannot be written.
        assert!(matches!(
            write_atomic(Path::new("/"), b"x"),
            Err(IoError::Write { .. })
        ));
    }
}
