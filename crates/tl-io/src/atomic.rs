//! Atomic file replacement: write a temporary file beside the target, flush it to disk, then
//! rename it over the target. Readers see either the old file or the complete new one, never a
//! half-written file, and a failed write leaves the target untouched.

use crate::error::IoError;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes temporary files made by concurrent writers in one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically: the data goes to a temporary file in the same folder,
/// is fsynced, and is renamed over `path`. On any failure the target is unchanged and the
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

    let (tmp_path, file) = create_temp(&folder, &file_name.to_string_lossy())
        .map_err(|e| write_err(format!("cannot create a temporary file: {e}")))?;

    let result = fill_and_sync(file, fill).and_then(|()| fs::rename(&tmp_path, path));
    if let Err(e) = result {
        // Best effort: the temporary file is ours and must not be left behind.
        let _ = fs::remove_file(&tmp_path);
        return Err(write_err(e.to_string()));
    }
    sync_folder(&folder);
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

/// Runs `fill` on a buffered writer over `file`, flushes, and fsyncs the data.
fn fill_and_sync<F>(file: File, fill: F) -> io::Result<()>
where
    F: FnOnce(&mut BufWriter<File>) -> io::Result<()>,
{
    let mut w = BufWriter::with_capacity(1 << 20, file);
    fill(&mut w)?;
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()
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
