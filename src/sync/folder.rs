//! A sync folder: a USB stick or a shared folder where every laptop leaves its
//! bundles and picks up the others'. Bundles are named
//! `amparo-<device code>-<UTC time>.amparosync`; reading the folder merges every
//! bundle another laptop left there (skipping those whose changes are all here
//! already), and one bad file never stops the others.

use super::ImportSummary;
use serde::Serialize;
use serde_json::{Map, Value};

pub const EXTENSION: &str = "amparosync";
pub(crate) const FOLDER_KEY: &str = "sync_folder";

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
