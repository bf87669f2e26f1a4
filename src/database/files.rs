//! The one way Amparo writes a file: the key file, the settings, the unlock
//! counter, a sync bundle, an export or a report.
//!
//! The bytes go to a hidden file beside the name asked for (`.NAME.partial`),
//! readable by its owner only, are synced to disk, and the file is then renamed
//! over the name and the folder synced: a crash or a full disk leaves the old file
//! or the whole new one, never half of either, and a failed write removes what it
//! started.

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

/// Write a whole file through `write`, which gets a buffered writer; see the module
/// documentation for what a crash leaves.
pub fn write_atomic_with<T, E: From<std::io::Error>>(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<T, E>,
) -> Result<T, E> {
    let tmp = partial_path(path);
    let result = (|| {
        let mut out = BufWriter::new(create_private(&tmp)?);
        let value = write(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
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
}
