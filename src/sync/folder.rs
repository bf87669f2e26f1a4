//! A sync folder: a USB stick or a shared folder where every laptop leaves its
//! bundles and picks up the others'. Bundles are named
//! `amparo-<device code>-<UTC time>.amparosync`; reading the folder merges every
//! bundle another laptop left there (skipping those whose changes are all here
//! already), and one bad file never stops the others.

use super::bundle;
use super::{ExportSummary, ImportSummary};
use crate::store::{Store, StoreError};
use serde::Serialize;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

pub const EXTENSION: &str = "amparosync";
const FOLDER_KEY: &str = "sync_folder";

/// What reading one file of the folder did.
#[derive(Debug, Serialize)]
pub struct FileResult {
    pub file: String,
    /// Merged: what it brought.
    pub summary: Option<ImportSummary>,
    /// Every change in it was already here.
    pub already_here: bool,
    /// Refused: the message's key and arguments.
    pub error: Option<(String, Map<String, Value>)>,
}

impl Store {
    /// The folder this laptop syncs through, if one was chosen.
    pub fn sync_folder(&self) -> Result<Option<String>, StoreError> {
        Ok(crate::database::meta(self.conn(), FOLDER_KEY)?)
    }

    pub fn set_sync_folder(&self, folder: &str) -> Result<(), StoreError> {
        let folder = folder.trim();
        crate::store::check_folder(Path::new(folder))?;
        Ok(crate::database::set_meta(self.conn(), FOLDER_KEY, folder)?)
    }

    fn folder(&self) -> Result<PathBuf, StoreError> {
        let f = PathBuf::from(self.sync_folder()?.unwrap_or_default());
        crate::store::check_folder(&f)?;
        Ok(f)
    }

    /// Write a bundle into the sync folder. Written beside its name and renamed, so
    /// another laptop never reads half a bundle.
    pub fn export_to_folder(&mut self) -> Result<(String, ExportSummary), StoreError> {
        let folder = self.folder()?;
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ");
        let name = format!("amparo-{}-{stamp}.{EXTENSION}", self.session().device_code);
        let summary =
            self.sync_export(false, |bytes| crate::store::write_into_folder(&folder, &name, bytes).map(drop))?;
        Ok((name, summary))
    }

    /// Merge every bundle other laptops left in the sync folder, oldest first.
    /// `progress(file index, file count, cases done, cases total)`.
    pub fn import_folder(
        &mut self,
        progress: &mut dyn FnMut(usize, usize, usize, usize),
    ) -> Result<Vec<FileResult>, StoreError> {
        let folder = self.folder()?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().and_then(|x| x.to_str()) == Some(EXTENSION))
            .collect();
        files.sort();
        let me = self.session().device_id.clone();
        let mut out = Vec::new();
        let count = files.len();
        for (i, path) in files.iter().enumerate() {
            let file = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            let mut result = FileResult { file, summary: None, already_here: false, error: None };
            let outcome = std::fs::read(path).map_err(StoreError::from).and_then(|bytes| {
                // Our own bundles, and those with nothing new, need no key and no work.
                if let Ok((h, _)) = bundle::read_header(&bytes) {
                    if h.device == me || self.holds_all(&h)? {
                        return Ok(None);
                    }
                }
                self.sync_import(&bytes, &mut |d, t| progress(i, count, d, t)).map(Some)
            });
            match outcome {
                Ok(Some(s)) => result.summary = Some(s),
                Ok(None) => result.already_here = true,
                Err(e) => {
                    use crate::i18n::Localized;
                    let args = e.args().into_iter().map(|(k, v)| (k.to_string(), Value::String(v))).collect();
                    result.error = Some((e.i18n_key().to_string(), args));
                }
            }
            progress(i + 1, count, 0, 0);
            out.push(result);
        }
        Ok(out)
    }

    /// Write an invitation into the sync folder (administrators); the passphrase is
    /// for the caller to show once.
    pub fn invite_to_folder(&self) -> Result<(String, zeroize::Zeroizing<String>), StoreError> {
        let folder = self.folder()?;
        let (bytes, passphrase) = self.invite()?;
        let name = format!("amparo-invitation-{}.json", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"));
        std::fs::write(folder.join(&name), bytes)?;
        Ok((folder.join(&name).display().to_string(), passphrase))
    }

    /// Does this laptop hold every change and audit entry a bundle's header lists?
    fn holds_all(&self, h: &bundle::Header) -> Result<bool, StoreError> {
        for (table, ranges) in [("changes", &h.changes), ("audit", &h.audit)] {
            for (device, (_, last)) in ranges {
                if crate::changelog::contiguous(self.conn(), table, device)? < *last {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}
