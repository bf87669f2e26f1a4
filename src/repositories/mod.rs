//! Repositories: one per entity, each the SQL for that entity and how to rebuild it
//! from its changes in the change log. They work on a connection or a transaction
//! the caller holds and check no permission: the services above them
//! ([`crate::store`]) decide who may do what.
//!
//! - [`cases`]: cases, their notes, search entries and fact-sheet counts, and drafts;
//! - [`drafts`]: unfinished intakes, per user;
//! - [`facts`]: the fact-sheet counts kept per case, and the cases a report covers;
//! - [`incoming`]: what this laptop's form makes of a case's change from another laptop;
//! - [`directory`]: the organisations survivors can be referred to;
//! - [`audit`]: the hash-chained audit trail;
//! - [`restricted`]: restricted cases' keys, whom they are sealed to, and sealed values;
//! - [`users`]: roles and users.

pub mod audit;
pub mod cases;
pub mod directory;
pub mod drafts;
pub mod facts;
pub mod incoming;
pub mod restricted;
pub mod users;

use crate::changelog::Author;
use crate::database::DatabaseError;
use crate::i18n::Localized;
use crate::intake::ValidationErrors;
use serde::Serialize;
use users::Role;

/// Lower case without accents, for matching what someone types (the
/// search index folds the same way: `unicode61 remove_diacritics`).
pub fn fold(s: &str) -> String {
    s.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ä' | 'ã' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ñ' => 'n',
            c => c,
        })
        .collect()
}

/// What a repository write can refuse, beyond the database's own failures.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// The row would break a rule only the stored rows can check (an id or a case
    /// number already taken by another case).
    #[error("{0}")]
    Invalid(#[from] ValidationErrors),
    /// A case that arrived from another laptop has a number another case here
    /// already has: two laptops number their cases with the same device code.
    #[error("case number {number} is used by two different cases: two laptops share a device code")]
    CaseNumberTaken { number: String },
    #[error(transparent)]
    Database(#[from] DatabaseError),
}

impl From<rusqlite::Error> for RepositoryError {
    fn from(e: rusqlite::Error) -> Self {
        RepositoryError::Database(DatabaseError::Sql(e))
    }
}

impl Localized for RepositoryError {
    fn i18n_key(&self) -> &'static str {
        match self {
            RepositoryError::Invalid(_) => "error.store.invalid",
            RepositoryError::CaseNumberTaken { .. } => "error.sync.device_code_clash",
            RepositoryError::Database(e) => e.i18n_key(),
        }
    }
    fn args(&self) -> Vec<(&'static str, String)> {
        match self {
            RepositoryError::Invalid(e) => vec![("count", e.0.len().to_string())],
            RepositoryError::CaseNumberTaken { number } => vec![("number", number.clone())],
            RepositoryError::Database(e) => e.args(),
        }
    }
}

/// Who is working and on which laptop; read from the store at unlock.
#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub org: String,
    pub device_code: String,
    pub device_id: String,
    pub user_id: String,
    pub user_name: String,
    pub role: Role,
}

impl Session {
    /// Who writes the changes this session makes.
    pub fn author(&self) -> Author<'_> {
        Author { device: &self.device_id, user: &self.user_id, user_name: &self.user_name }
    }
}
