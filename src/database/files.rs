//! The one way Amparo writes a file: the key file, the settings, the unlock
//! counter, a sync bundle, an export or a report.
//!
//! The bytes go to a file without a name in the folder of the one asked for (on
//! Linux, `O_TMPFILE`: a process killed while writing leaves nothing at all),
//! readable by its owner only, are synced to disk, and only then get a name beside
//! the one asked for (`.NAME.partial`) and are renamed over it, the folder synced:
//! a crash or a full disk leaves the old file or the whole new one, never half of
//! either, and a failed write removes what it started. Where the file system
//! cannot make a nameless file (a FAT USB stick), the hidden partial file has its
//! name from the start.

use super::DatabaseError;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

fn partial_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.partial"))
}

fn create_private(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Make a rename durable by syncing the folder that holds the file.
pub fn sync_dir(file: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        match File::open(dir).and_then(|d| d.sync_all()) {
            // Some file systems a sync folder lives on (network shares, some USB
            // sticks) cannot sync a folder; the file itself was synced already.
            Err(e) if matches!(e.kind(), std::io::ErrorKind::InvalidInput | std::io::ErrorKind::Unsupported) => {}
            other => other?,
        }
    }
    Ok(())
}

/// A file with no name yet in the folder of `path`, readable by its owner only.
#[cfg(target_os = "linux")]
fn create_nameless(path: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    OpenOptions::new().write(true).custom_flags(libc::O_TMPFILE).mode(0o600).open(dir).ok()
}

/// Give a nameless file the name `to`.
#[cfg(target_os = "linux")]
fn name_it(file: &File, to: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::io::AsRawFd;
    let from = std::ffi::CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
    let to = std::ffi::CString::new(to.as_os_str().as_bytes())?;
    // SAFETY: both are valid NUL-terminated paths that outlive the call.
    let r =
        unsafe { libc::linkat(libc::AT_FDCWD, from.as_ptr(), libc::AT_FDCWD, to.as_ptr(), libc::AT_SYMLINK_FOLLOW) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Write a whole file through `write`, which gets a buffered writer; see the module
/// documentation for what a crash leaves.
pub fn write_atomic_with<T, E: From<std::io::Error>>(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<T, E>,
) -> Result<T, E> {
    let tmp = partial_path(path);
    #[cfg(target_os = "linux")]
    let nameless = create_nameless(path);
    #[cfg(not(target_os = "linux"))]
    let nameless: Option<File> = None;
    let named_early = nameless.is_none();
    let result = (|| {
        let file = match nameless {
            Some(f) => f,
            None => create_private(&tmp)?,
        };
        let mut out = BufWriter::new(file);
        let value = write(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        if !named_early {
            #[cfg(target_os = "linux")]
            {
                // A partial left by an earlier crash in that one moment is stale.
                let _ = std::fs::remove_file(&tmp);
                name_it(&file, &tmp)?;
            }
        }
        drop(file);
        std::fs::rename(&tmp, path)?;
        sync_dir(path)?;
        Ok(value)
    })();
    if result.is_err() {
        // Best effort: the write already failed, and that is the error to report.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Write `bytes` as the whole file at `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, |out| out.write_all(bytes))
}

/// Replace a small JSON file beside the store.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<(), DatabaseError> {
    write_atomic_with(path, |out| {
        serde_json::to_writer(out, value).map_err(|e| DatabaseError::Io(std::io::Error::other(e)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_whole_private_and_nothing_is_left_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("export.jsonl");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new and longer").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new and longer");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        // A write that fails half-way leaves the old file and no partial one.
        let failed: Result<(), std::io::Error> = write_atomic_with(&path, |out| {
            out.write_all(b"half")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"new and longer");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("export.jsonl")]);
    }

    /// While a file is being written, nothing of it has a name: a process killed
    /// at that moment (an export of every case, say) leaves no plaintext behind.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_write_killed_half_way_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cases.jsonl");
        let seen = write_atomic_with(&path, |out| {
            out.write_all(&[b'x'; 100_000])?;
            out.flush()?;
            Ok::<_, std::io::Error>(std::fs::read_dir(dir.path()).unwrap().count())
        })
        .unwrap();
        assert_eq!(seen, 0, "nothing with a name while writing");
        assert_eq!(std::fs::read(&path).unwrap().len(), 100_000);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
