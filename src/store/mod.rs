//! The encrypted case store: one SQLCipher database per laptop, in the data folder
//! (`AMPARO_DATA_DIR`, or the OS data folder), unlocked with a passphrase.
//!
//! Files in the data folder:
//! - `amparo.db` (and its `-wal`): every case, note and draft, encrypted page by page;
//! - `keys.json`: the data key, sealed per user (see [`keys`]);
//! - `settings.json`: the UI language only, needed before unlock.
//!
//! Every write goes through a method here, in one transaction, with UUIDv7 ids and UTC
//! timestamps, so that a change log can later be written in the same transaction.
//! The WAL is synced on every commit (`synchronous = FULL`): a save that returned
//! survives a power cut.

pub mod audit;
pub mod cases;
pub mod jsonl;
pub mod keys;
pub mod policy;
pub mod schema;
pub mod throttle;
pub mod users;

use crate::i18n::Localized;
use crate::intake::{FieldError, Issue, ValidationErrors};
use audit::Action;
use chrono::{SecondsFormat, Utc};
use keys::{DataKey, KdfParams, KeyFile};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::{Path, PathBuf};
use users::Role;
use zeroize::Zeroizing;

pub const DB_FILE: &str = "amparo.db";
pub const KEY_FILE: &str = "keys.json";
pub const SETTINGS_FILE: &str = "settings.json";
/// Shortest passphrase accepted at setup.
pub const PASSPHRASE_MIN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no Amparo store has been set up in {0}")]
    NotInitialized(PathBuf),
    #[error("an Amparo store already exists in {0}")]
    AlreadyInitialized(PathBuf),
    #[error("the passphrase is not correct")]
    WrongPassphrase,
    #[error("too many wrong attempts: wait {seconds} s")]
    Throttled { seconds: u64 },
    #[error("the passphrase is not correct; wait {seconds} s before the next attempt")]
    WrongPassphraseWait { seconds: u64 },
    #[error("the recovery key is not correct")]
    WrongRecoveryKey,
    #[error("this store has no recovery key")]
    NoRecoveryKey,
    #[error("this needs the {} role", .0.code())]
    RoleRequired(Role),
    #[error("this case is restricted")]
    Restricted,
    #[error("no user named {0}")]
    NoSuchUser(String),
    #[error("{0} is not an administrator")]
    NotAdministrator(String),
    #[error("you cannot remove yourself")]
    CannotRemoveSelf,
    #[error("the store needs at least one administrator")]
    LastAdministrator,
    #[error("{0}")]
    Consent(#[from] crate::consent::ConsentError),
    #[error("{0}")]
    Sync(#[from] crate::sync::SyncError),
    #[error("the key file is damaged ({0})")]
    KeyFile(String),
    #[error("the store file is damaged or is not an Amparo store")]
    Corrupt,
    #[error("the store was written by a newer Amparo (schema {found}, this one knows {supported})")]
    TooNew { found: usize, supported: usize },
    #[error("{0}")]
    Invalid(#[from] ValidationErrors),
    #[error("no case {0}")]
    NotFound(String),
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("file error: {0}")]
    Io(#[from] std::io::Error),
}

impl Localized for StoreError {
    fn i18n_key(&self) -> &'static str {
        match self {
            StoreError::NotInitialized(_) => "error.store.not_initialized",
            StoreError::AlreadyInitialized(_) => "error.store.already_initialized",
            StoreError::WrongPassphrase => "error.store.wrong_passphrase",
            StoreError::Throttled { .. } => "error.store.throttled",
            StoreError::WrongPassphraseWait { .. } => "error.store.wrong_passphrase_wait",
            StoreError::WrongRecoveryKey => "error.store.wrong_recovery_key",
            StoreError::NoRecoveryKey => "error.store.no_recovery_key",
            StoreError::RoleRequired(Role::Administrator) => "error.store.needs_administrator",
            StoreError::RoleRequired(_) => "error.store.needs_supervisor",
            StoreError::Restricted => "error.store.restricted",
            StoreError::NoSuchUser(_) => "error.store.no_such_user",
            StoreError::NotAdministrator(_) => "error.store.not_administrator",
            StoreError::CannotRemoveSelf => "error.store.cannot_remove_self",
            StoreError::LastAdministrator => "error.store.last_administrator",
            StoreError::Consent(e) => e.i18n_key(),
            StoreError::Sync(e) => e.i18n_key(),
            StoreError::KeyFile(_) => "error.store.key_file",
            StoreError::Corrupt => "error.store.corrupt",
            StoreError::TooNew { .. } => "error.store.too_new",
            StoreError::Invalid(_) => "error.store.invalid",
            StoreError::NotFound(_) => "error.store.not_found",
            StoreError::Db(_) => "error.store.db",
            StoreError::Migration(_) => "error.store.migration",
            StoreError::Io(_) => "error.store.io",
        }
    }
    fn args(&self) -> Vec<(&'static str, String)> {
        match self {
            StoreError::NotInitialized(p) | StoreError::AlreadyInitialized(p) => {
                vec![("path", p.display().to_string())]
            }
            StoreError::TooNew { found, supported } => {
                vec![("found", found.to_string()), ("supported", supported.to_string())]
            }
            StoreError::NotFound(n) => vec![("case", n.clone())],
            StoreError::Throttled { seconds } | StoreError::WrongPassphraseWait { seconds } => {
                vec![("seconds", seconds.to_string())]
            }
            StoreError::Consent(e) => e.args(),
            StoreError::Sync(e) => e.args(),
            StoreError::NoSuchUser(n) | StoreError::NotAdministrator(n) => vec![("name", n.clone())],
            StoreError::Invalid(e) => vec![("count", e.0.len().to_string())],
            // Database and file errors can carry paths and SQL; never case data.
            StoreError::Db(e) => vec![("detail", e.to_string())],
            StoreError::Migration(e) => vec![("detail", e.to_string())],
            StoreError::Io(e) => vec![("detail", e.to_string())],
            StoreError::KeyFile(d) => vec![("detail", d.clone())],
            _ => vec![],
        }
    }
}

/// The data folder: `AMPARO_DATA_DIR` if set, else `<OS data folder>/amparo`
/// (on Linux `~/.local/share/amparo`). The app and the CLI use the same one.
pub fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("AMPARO_DATA_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    dirs::data_dir().unwrap_or_else(|| PathBuf::from(".")).join("amparo")
}

/// Make a rename durable by syncing the folder that holds the file.
pub(crate) fn sync_dir(file: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    if let Some(dir) = file.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// A folder the user typed must be there; otherwise the message goes next to the
/// `folder` field.
pub fn check_folder(folder: &Path) -> Result<(), StoreError> {
    if folder.is_dir() {
        return Ok(());
    }
    let e = crate::intake::Issue::new("folder", crate::intake::FieldError::NotAFolder);
    Err(crate::intake::ValidationErrors(vec![e]).into())
}

/// Write `bytes` as `name` in the folder the user chose (a USB stick, a shared
/// drive): beside the name first and renamed, so nobody ever opens half a file. A
/// folder that is not there is refused next to the `folder` field.
pub fn write_into_folder(folder: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, StoreError> {
    check_folder(folder)?;
    let tmp = folder.join(format!(".{name}.partial"));
    std::fs::write(&tmp, bytes)?;
    let path = folder.join(name);
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

pub fn now_utc() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// What the first start asks for.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Setup {
    pub org: String,
    pub device_code: String,
    pub user: String,
    pub passphrase: String,
    #[serde(default)]
    pub locale: String,
}

/// How strong a passphrase looks: a hint, not a gate (the gate is the length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strength {
    TooShort,
    Weak,
    Fair,
    Strong,
}

impl Strength {
    pub fn i18n_key(self) -> &'static str {
        match self {
            Strength::TooShort => "setup.strength.too_short",
            Strength::Weak => "setup.strength.weak",
            Strength::Fair => "setup.strength.fair",
            Strength::Strong => "setup.strength.strong",
        }
    }
}

/// A rough estimate: length counts most (a long phrase of plain words is strong),
/// variety of characters a little, repeated characters against it.
pub fn passphrase_strength(p: &str) -> Strength {
    let len = p.chars().count();
    if len < PASSPHRASE_MIN {
        return Strength::TooShort;
    }
    let classes = [
        p.chars().any(char::is_lowercase),
        p.chars().any(char::is_uppercase),
        p.chars().any(|c| c.is_ascii_digit()),
        p.chars().any(|c| !c.is_alphanumeric()),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    let mut distinct: Vec<char> = p.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    let score = len + 3 * classes + distinct.len() / 2;
    if distinct.len() < 5 || score < 24 {
        Strength::Weak
    } else if score < 34 {
        Strength::Fair
    } else {
        Strength::Strong
    }
}

/// Check the setup answers; problems are keyed by the setup field they concern.
pub fn validate_setup(s: &Setup) -> Result<(), ValidationErrors> {
    let mut issues = Vec::new();
    let required = |v: &str, field: &str, issues: &mut Vec<Issue>| {
        if v.trim().is_empty() {
            issues.push(Issue::new(field, FieldError::Required));
        } else if v.trim().chars().count() > crate::form::TEXT_MAX {
            issues.push(Issue::new(field, FieldError::TooLong { max: crate::form::TEXT_MAX }));
        }
    };
    required(&s.org, "org", &mut issues);
    required(&s.user, "user", &mut issues);
    let code = s.device_code.trim();
    if code.is_empty() {
        issues.push(Issue::new("device_code", FieldError::Required));
    } else if !(2..=8).contains(&code.len()) || !code.bytes().all(|c| c.is_ascii_alphanumeric()) {
        issues.push(Issue::new("device_code", FieldError::DeviceCode));
    }
    if s.passphrase.chars().count() < PASSPHRASE_MIN {
        issues.push(Issue::new("passphrase", FieldError::PassphraseTooShort { min: PASSPHRASE_MIN }));
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(ValidationErrors(issues))
    }
}

/// Settings readable before unlock: the language, and the id (never the name) of
/// whoever unlocked last. Nothing about cases or people.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Settings {
    #[serde(default)]
    pub locale: Option<String>,
    /// Whose seal to try first: on a laptop mostly used by one person, unlocking
    /// then costs one Argon2id run instead of one per user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_user: Option<String>,
}

impl Settings {
    pub fn load(dir: &Path) -> Settings {
        std::fs::read(dir.join(SETTINGS_FILE)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }
    pub fn save(&self, dir: &Path) -> Result<(), StoreError> {
        ensure_dir(dir)?;
        write_json(&dir.join(SETTINGS_FILE), self)
    }
}

/// Replace a small JSON file beside the store: written next to it, then renamed, so
/// a crash leaves the old file or the new one.
pub(crate) fn write_json(path: &Path, value: &impl Serialize) -> Result<(), StoreError> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(value).map_err(|_| StoreError::Corrupt)?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn ensure_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
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

#[derive(Debug, Clone, Serialize)]
pub struct StoreInfo {
    pub path: String,
    pub schema_version: usize,
    pub latest_schema_version: usize,
    pub org: String,
    pub device_code: String,
    pub user: String,
    pub cases: i64,
    pub people: i64,
    pub notes: i64,
    pub drafts: i64,
}

pub struct Store {
    conn: Connection,
    dir: PathBuf,
    session: Session,
    /// Kept to seal it for new users and passphrases; wiped when the store drops.
    key: DataKey,
    /// The Argon2id cost new seals use: the one the current seal was made with.
    kdf: KdfParams,
    /// The recovery key made at setup, until it has been shown.
    fresh_recovery: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dir", &self.dir).finish_non_exhaustive()
    }
}

#[cfg(test)]
thread_local! {
    /// Tests that look for removed words in the raw file bytes turn encryption off
    /// for their thread: through encryption, every word would look removed.
    pub(crate) static PLAINTEXT_FOR_TESTS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Open the database file and apply the key and our durability settings.
fn open_connection(path: &Path, key: &keys::DataKey) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    #[cfg(test)]
    let encrypt = !PLAINTEXT_FOR_TESTS.get();
    #[cfg(not(test))]
    let encrypt = true;
    if encrypt {
        // A raw key (x'..') skips SQLCipher's own PBKDF2: our key is already random.
        let pragma = Zeroizing::new(format!("x'{}'", hex::encode(key.as_ref())));
        conn.pragma_update(None, "key", pragma.as_str())?;
    }
    // The first read proves the key; SQLCipher reports a wrong one as "not a database".
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))
        .map_err(|_| StoreError::Corrupt)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Sorts and temporary indexes stay in memory: no plaintext temp files.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Freed space is overwritten: a removed person or purged case leaves no old
    // page content behind, even to someone holding the key.
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

impl Store {
    pub fn db_path(dir: &Path) -> PathBuf {
        dir.join(DB_FILE)
    }

    /// Has this data folder been set up?
    pub fn exists(dir: &Path) -> bool {
        dir.join(KEY_FILE).is_file() && dir.join(DB_FILE).is_file()
    }

    /// First start: create the encrypted store, the organisation, this device and the
    /// first user. The key file is written last, so a crash part-way leaves a folder
    /// that `exists` still calls empty, and setup can simply run again.
    pub fn create(dir: &Path, setup: &Setup, kdf: KdfParams) -> Result<Store, StoreError> {
        validate_setup(setup)?;
        if Store::exists(dir) {
            return Err(StoreError::AlreadyInitialized(dir.to_path_buf()));
        }
        ensure_dir(dir)?;
        // A database without its key file is either a setup that crashed before the
        // key file was written, or a store whose key file was lost and may still be
        // restored from a backup. Never delete it: move it aside.
        let stamp = Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
        for leftover in [DB_FILE, "amparo.db-wal", "amparo.db-shm"] {
            let from = dir.join(leftover);
            if from.exists() {
                std::fs::rename(&from, dir.join(format!("{leftover}.orphaned-{stamp}")))?;
            }
        }
        let key = keys::new_data_key();
        let user_id = new_id();
        let store_id = new_id();
        let mut conn = open_connection(&Store::db_path(dir), &key)?;
        schema::migrations().to_latest(&mut conn)?;
        let session = Session {
            org: setup.org.trim().to_string(),
            device_code: setup.device_code.trim().to_uppercase(),
            device_id: new_id(),
            user_id: user_id.clone(),
            user_name: setup.user.trim().to_string(),
            role: Role::Administrator,
        };
        {
            let tx = conn.transaction()?;
            let now = now_utc();
            for (k, v) in [
                ("store_id", store_id.as_str()),
                ("org", session.org.as_str()),
                ("device_code", session.device_code.as_str()),
                ("device_id", session.device_id.as_str()),
                ("created_at", now.as_str()),
            ] {
                tx.execute("INSERT INTO meta (key, value) VALUES (?1, ?2)", (k, v))?;
            }
            tx.execute(
                "INSERT INTO users (id, name, role, created_at) VALUES (?1, ?2, ?3, ?4)",
                (&user_id, &session.user_name, Role::Administrator.code(), &now),
            )?;
            let detail = json!({ "user": user_id, "role": Role::Administrator.code() });
            audit::append(&tx, &session.device_id, Some(&user_id), Action::UserAdded, None, detail, None)?;
            tx.commit()?;
        }
        crate::sync::prepare(&mut conn)?;
        cases::backfill_facts(&mut conn)?;
        crate::directory::seed(&conn)?;
        let recovery = keys::new_recovery_key();
        let kf = KeyFile {
            format: keys::KEY_FILE_FORMAT.into(),
            store_id,
            keys: vec![keys::wrap(&key, &user_id, &setup.passphrase, kdf)?],
            recovery: Some(keys::wrap(&key, keys::RECOVERY_ID, &recovery, kdf)?),
        };
        kf.write(&dir.join(KEY_FILE))?;
        if !setup.locale.is_empty() {
            let locale = Some(crate::i18n::normalize_locale(&setup.locale).to_string());
            Settings { locale, last_user: Some(user_id.clone()) }.save(dir)?;
        }
        Ok(Store { conn, dir: dir.to_path_buf(), session, key, kdf, fresh_recovery: Some(recovery) })
    }

    /// The recovery key made at setup, once: the caller shows it and forgets it.
    pub fn take_recovery_key(&mut self) -> Option<Zeroizing<String>> {
        self.fresh_recovery.take()
    }

    /// Open the database with the data key: check the schema is one we know, and
    /// bring it up to date.
    fn connect(dir: &Path, key: &DataKey) -> Result<Connection, StoreError> {
        let mut conn = open_connection(&Store::db_path(dir), key)?;
        let found: usize =
            conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))?.try_into().unwrap_or(0);
        if found > schema::latest_version() {
            return Err(StoreError::TooNew { found, supported: schema::latest_version() });
        }
        schema::migrations().to_latest(&mut conn)?;
        crate::sync::prepare(&mut conn)?;
        cases::backfill_facts(&mut conn)?;
        crate::directory::seed(&conn)?;
        Ok(conn)
    }

    /// Build the session for an active user; `None` if the user was removed.
    fn session_for(conn: &Connection, user_id: &str) -> Result<Option<Session>, StoreError> {
        let meta = |k: &str| -> Result<String, StoreError> {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))
                .optional()?
                .ok_or(StoreError::Corrupt)
        };
        let user: Option<(String, String)> = conn
            .query_row("SELECT name, role FROM users WHERE id = ?1 AND removed_at IS NULL", [user_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let Some((user_name, role)) = user else { return Ok(None) };
        Ok(Some(Session {
            org: meta("org")?,
            device_code: meta("device_code")?,
            device_id: meta("device_id")?,
            user_id: user_id.to_string(),
            user_name,
            role: Role::parse(&role).unwrap_or(Role::Caseworker),
        }))
    }

    /// Audit an unlock, with the failed attempts since the last one, then clear them.
    fn record_unlock(&self, action: Action) -> Result<(), StoreError> {
        let failures = throttle::load(&self.dir).at;
        let tx = self.conn.unchecked_transaction()?;
        let device = &self.session.device_id;
        for at in &failures {
            audit::append(&tx, device, None, Action::FailedUnlock, None, json!({}), Some(at))?;
        }
        audit::append(&tx, device, Some(&self.session.user_id), action, None, json!({}), None)?;
        tx.commit()?;
        throttle::reset(&self.dir)
    }

    /// Lock: record it and close the database. Nothing of the store stays in memory.
    pub fn close(self, action: Action) -> Result<(), StoreError> {
        self.record(action, None, json!({}))
    }

    /// Unlock with a passphrase. Each user's passphrase opens only their own sealed
    /// key (two users never share one), so the key that opens says who is working.
    pub fn open(dir: &Path, passphrase: &str) -> Result<Store, StoreError> {
        Store::open_as(dir, None, passphrase)
    }

    /// Unlock as the user named `user`, if given: another user's passphrase is then
    /// as wrong as any other. Wrong attempts are counted and slowed down.
    pub fn open_as(dir: &Path, user: Option<&str>, passphrase: &str) -> Result<Store, StoreError> {
        if !Store::exists(dir) {
            return Err(StoreError::NotInitialized(dir.to_path_buf()));
        }
        throttle::check(dir)?;
        let kf = KeyFile::read(&dir.join(KEY_FILE))?;
        let mut settings = Settings::load(dir);
        let mut seals: Vec<&keys::WrappedKey> = kf.keys.iter().collect();
        // Stable: the last user first, the others in their order.
        seals.sort_by_key(|w| Some(&w.user_id) != settings.last_user.as_ref());
        let mut opened = None;
        for w in seals {
            match keys::unwrap(w, passphrase) {
                Ok(k) => {
                    opened = Some((k, w.user_id.clone(), w.params));
                    break;
                }
                Err(StoreError::WrongPassphrase) => continue,
                Err(e) => return Err(e),
            }
        }
        let Some((key, user_id, kdf)) = opened else {
            return Err(throttle::wrong_passphrase(dir));
        };
        let conn = Store::connect(dir, &key)?;
        let wanted = |s: &Session| user.is_none_or(|u| s.user_name.eq_ignore_ascii_case(u.trim()));
        // A removed user's key may outlive them if the key file could not be written.
        let Some(session) = Store::session_for(&conn, &user_id)?.filter(wanted) else {
            return Err(throttle::wrong_passphrase(dir));
        };
        let store = Store { conn, dir: dir.to_path_buf(), session, key, kdf, fresh_recovery: None };
        store.record_unlock(Action::Unlock)?;
        if settings.last_user.as_ref() != Some(&store.session.user_id) {
            settings.last_user = Some(store.session.user_id.clone());
            // Only a speed-up for next time: failing to note it is no reason to fail.
            let _ = settings.save(dir);
        }
        Ok(store)
    }

    /// A forgotten passphrase: with the recovery key, an administrator sets a new one.
    /// Wrong recovery keys are counted and slowed down like wrong passphrases.
    pub fn recover(dir: &Path, recovery_key: &str, admin: &str, new_passphrase: &str) -> Result<Store, StoreError> {
        if !Store::exists(dir) {
            return Err(StoreError::NotInitialized(dir.to_path_buf()));
        }
        throttle::check(dir)?;
        let Some(typed) = keys::normalize_recovery_key(recovery_key) else {
            return Err(ValidationErrors(vec![Issue::new("recovery_key", FieldError::RecoveryKeyFormat)]).into());
        };
        users::check_passphrase(new_passphrase)?;
        let kf = KeyFile::read(&dir.join(KEY_FILE))?;
        let sealed = kf.recovery.as_ref().ok_or(StoreError::NoRecoveryKey)?;
        let key = match keys::unwrap(sealed, &typed) {
            Ok(k) => k,
            Err(StoreError::WrongPassphrase) => {
                throttle::record_failure(dir)?;
                return Err(StoreError::WrongRecoveryKey);
            }
            Err(e) => return Err(e),
        };
        let conn = Store::connect(dir, &key)?;
        let found: Option<String> = conn
            .query_row(
                "SELECT id FROM users WHERE removed_at IS NULL AND name = ?1 COLLATE NOCASE",
                [admin.trim()],
                |r| r.get(0),
            )
            .optional()?;
        let user_id = found.ok_or_else(|| StoreError::NoSuchUser(admin.trim().to_string()))?;
        let session = Store::session_for(&conn, &user_id)?.ok_or(StoreError::Corrupt)?;
        if session.role != Role::Administrator {
            return Err(StoreError::NotAdministrator(admin.trim().to_string()));
        }
        let mut store = Store { conn, dir: dir.to_path_buf(), session, key, kdf: sealed.params, fresh_recovery: None };
        store.record_unlock(Action::Recover)?;
        store.set_passphrase(None, new_passphrase)?;
        Ok(store)
    }

    /// The Argon2id cost this store's keys are sealed with.
    pub(crate) fn kdf(&self) -> KdfParams {
        self.kdf
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn info(&self) -> Result<StoreInfo, StoreError> {
        let count = |sql: &str| -> Result<i64, StoreError> { Ok(self.conn.query_row(sql, [], |r| r.get(0))?) };
        let version: i64 = self.conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        Ok(StoreInfo {
            path: self.dir.display().to_string(),
            schema_version: usize::try_from(version).unwrap_or(0),
            latest_schema_version: schema::latest_version(),
            org: self.session.org.clone(),
            device_code: self.session.device_code.clone(),
            user: self.session.user_name.clone(),
            cases: count("SELECT count(*) FROM cases")?,
            people: count("SELECT coalesce(sum(json_array_length(data, '$.people')), 0) FROM cases")?,
            notes: count("SELECT count(*) FROM notes")?,
            drafts: count("SELECT count(*) FROM drafts")?,
        })
    }

    /// The database, for the other modules of the core (sync).
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub(crate) fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

/// A new store in a temporary folder, for the core's tests: organisation "Casa",
/// device TX3, administrator Ana with [`TEST_PASSPHRASE`].
#[cfg(test)]
pub(crate) fn test_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let setup = Setup {
        org: "Casa".into(),
        device_code: "TX3".into(),
        user: "Ana".into(),
        passphrase: TEST_PASSPHRASE.into(),
        locale: "en".into(),
    };
    let s = Store::create(dir.path(), &setup, KdfParams::INSECURE_FOR_TESTS).expect("store");
    (dir, s)
}

#[cfg(test)]
pub(crate) const TEST_PASSPHRASE: &str = "correct horse battery staple";

#[cfg(test)]
mod safety_tests;
#[cfg(test)]
mod tests;
