//! The database layer: the data folder, the encrypted SQLite file in it, and the
//! few small files beside it. Everything above works on a [`Connection`] or a
//! transaction this layer opened; nothing here knows what a case, a user or a sync
//! bundle is.
//!
//! - [`open`]: open the database file with its data key and our durability
//!   settings, refuse a newer schema, and migrate to the latest ([`schema`]);
//! - [`keys`]: the data key, sealed per user under Argon2id, and the recovery key;
//! - [`throttle`]: the wait after wrong passphrases (a file, since a failed unlock
//!   has no key to write into the database);
//! - [`meta`] and [`set_meta`]: the one key–value table every layer keeps its
//!   settings in;
//! - [`files`]: the one way a file is written: beside its name, synced, renamed.
//!
//! Every error here is a [`DatabaseError`], and each says what to do next.

pub mod files;
pub mod keys;
pub mod schema;
pub mod throttle;

use crate::i18n::Localized;
use chrono::{SecondsFormat, Utc};
use keys::DataKey;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

pub const DB_FILE: &str = "amparo.db";
pub const KEY_FILE: &str = "keys.json";
pub const SETTINGS_FILE: &str = "settings.json";

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("the passphrase is not correct")]
    WrongPassphrase,
    #[error("too many wrong attempts: wait {seconds} s")]
    Throttled { seconds: u64 },
    #[error("the passphrase is not correct; wait {seconds} s before the next attempt")]
    WrongPassphraseWait { seconds: u64 },
    #[error("the key file is damaged ({0})")]
    KeyFile(String),
    /// The file does not open with this key: damaged, or not an Amparo store.
    #[error("the store file is damaged or is not an Amparo store")]
    NotAStore,
    #[error("the store was written by a newer Amparo (schema {found}, this one knows {supported})")]
    TooNew { found: usize, supported: usize },
    /// A row the store wrote itself no longer reads: never taken as an empty value.
    #[error("a row of {table} is damaged")]
    Damaged { table: &'static str },
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("file error: {0}")]
    Io(#[from] std::io::Error),
}

impl Localized for DatabaseError {
    fn i18n_key(&self) -> &'static str {
        match self {
            DatabaseError::WrongPassphrase => "error.store.wrong_passphrase",
            DatabaseError::Throttled { .. } => "error.store.throttled",
            DatabaseError::WrongPassphraseWait { .. } => "error.store.wrong_passphrase_wait",
            DatabaseError::KeyFile(_) => "error.store.key_file",
            DatabaseError::NotAStore => "error.store.corrupt",
            DatabaseError::TooNew { .. } => "error.store.too_new",
            DatabaseError::Damaged { .. } => "error.store.damaged_row",
            DatabaseError::Sql(e) if is_busy(e) => "error.store.busy",
            DatabaseError::Sql(e) if is_damaged(e) => "error.store.corrupt",
            DatabaseError::Sql(_) => "error.store.db",
            DatabaseError::Migration(_) => "error.store.migration",
            DatabaseError::Io(_) => "error.store.io",
        }
    }
    fn args(&self) -> Vec<(&'static str, String)> {
        match self {
            DatabaseError::Throttled { seconds } | DatabaseError::WrongPassphraseWait { seconds } => {
                vec![("seconds", seconds.to_string())]
            }
            DatabaseError::TooNew { found, supported } => {
                vec![("found", found.to_string()), ("supported", supported.to_string())]
            }
            DatabaseError::Damaged { table } => vec![("table", (*table).to_string())],
            // Database and file errors can carry paths and SQL; never case data.
            DatabaseError::Sql(e) => vec![("detail", e.to_string())],
            DatabaseError::Migration(e) => vec![("detail", e.to_string())],
            DatabaseError::Io(e) => vec![("detail", e.to_string())],
            DatabaseError::KeyFile(d) => vec![("detail", d.clone())],
            DatabaseError::WrongPassphrase | DatabaseError::NotAStore => vec![],
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

pub fn db_path(dir: &Path) -> PathBuf {
    dir.join(DB_FILE)
}

/// Has this data folder been set up? (The database, and the key file or its copy.)
pub fn exists(dir: &Path) -> bool {
    has_keys(dir) && dir.join(DB_FILE).is_file()
}

/// The key file or its copy is there.
pub fn has_keys(dir: &Path) -> bool {
    dir.join(KEY_FILE).is_file() || dir.join(keys::KEY_COPY_FILE).is_file()
}

/// Setup is under way (or crashed part-way): what lets it run again.
pub const SETUP_PENDING: &str = "setup.pending";

/// The data folder, made if missing, readable by its owner only.
pub fn ensure_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Now, in UTC, as every table stores it.
pub fn now_utc() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A new id: a UUIDv7, time-ordered and made offline.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// How an id is stored where there are many (the audit trail, the log's
/// entities; schema 20): a UUID as [`new_id`] writes it in 16 bytes, anything else
/// (from another laptop) as the text it came as. A query that looks a row up by
/// id passes the id this way.
pub fn stored_id(id: &str) -> rusqlite::types::Value {
    match uuid::Uuid::parse_str(id) {
        Ok(u) if u.hyphenated().to_string() == id => rusqlite::types::Value::Blob(u.as_bytes().to_vec()),
        _ => rusqlite::types::Value::Text(id.to_string()),
    }
}

/// An id column written by [`stored_id`], as the text it was.
pub fn id_at(r: &rusqlite::Row, i: usize) -> rusqlite::Result<String> {
    use rusqlite::types::ValueRef;
    let bad = || rusqlite::Error::InvalidColumnType(i, "id".into(), rusqlite::types::Type::Blob);
    match r.get_ref(i)? {
        ValueRef::Text(t) => String::from_utf8(t.to_vec()).map_err(|_| bad()),
        ValueRef::Blob(b) => Ok(uuid::Uuid::from_slice(b).map_err(|_| bad())?.hyphenated().to_string()),
        _ => Err(bad()),
    }
}

#[cfg(test)]
thread_local! {
    /// Tests that look for removed words in the raw file bytes turn encryption off
    /// for their thread: through encryption, every word would look removed.
    pub(crate) static PLAINTEXT_FOR_TESTS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Open the database file and apply the key and our durability settings.
fn open_connection(path: &Path, key: &DataKey) -> Result<Connection, DatabaseError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    // SQLCipher logs a page that does not decrypt ("hmac check failed") to
    // stderr; the store says it in the user's language instead.
    conn.execute_batch("PRAGMA cipher_log_level = NONE;")?;
    #[cfg(test)]
    let encrypt = !PLAINTEXT_FOR_TESTS.get();
    #[cfg(not(test))]
    let encrypt = true;
    if encrypt {
        // A raw key (x'..') skips SQLCipher's own PBKDF2: our key is already random.
        let pragma = Zeroizing::new(format!("x'{}'", hex::encode(key.as_ref())));
        conn.pragma_update(None, "key", pragma.as_str())?;
    }
    // Before the first statement: another program (the app, the CLI) may be
    // writing, and the first read must wait for it like any other.
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // The first read proves the key; SQLCipher reports a wrong one as "not a
    // database". A store busy past the timeout is busy, never "damaged".
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)).map_err(|e| {
        if is_busy(&e) {
            DatabaseError::Sql(e)
        } else {
            DatabaseError::NotAStore
        }
    })?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // A large import or merge grows the WAL to its size; after the next
    // checkpoint the file is cut back to this instead of staying that large.
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Every statement is prepared once per connection: a save alone runs dozens,
    // and rusqlite keeps sixteen by default, so most were parsed again on every
    // save.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Decrypted pages kept in memory: with SQLite's 2 MiB the pages a save writes
    // push out those the case list reads, and every list decrypted its pages
    // from the file again (2.4 ms instead of 0.11 ms at 3,000 cases).
    conn.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)?;
    // Sorts and temporary indexes stay in memory: no plaintext temp files.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Freed space is overwritten: a removed person or purged case leaves no old
    // page content behind, even to someone holding the key.
    conn.pragma_update(None, "secure_delete", "ON")?;
    Ok(conn)
}

/// How much a connection keeps of the store's pages in memory (KiB): 32 MiB.
const PAGE_CACHE_KIB: i64 = 32 << 10;

/// How many prepared statements a connection keeps.
const STATEMENT_CACHE: usize = 256;

/// The most a WAL keeps on disk once checkpointed (bytes): 16 MiB.
const JOURNAL_SIZE_LIMIT: i64 = 16 << 20;

/// How long a write waits for another writer (the app and the CLI on one store)
/// before saying the store is busy.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Is this the store being busy (another writer past the timeout)?
pub fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

/// Is this a page of the store that does not read (damaged, or not decrypting)?
pub fn is_damaged(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase))
}

/// A write transaction. It takes the write lock at its start (`BEGIN
/// IMMEDIATE`), waiting its turn behind another writer: a transaction that read
/// first and then wrote could find the lock taken meanwhile and fail at once.
pub fn write_tx(conn: &Connection) -> Result<rusqlite::Transaction<'_>, DatabaseError> {
    Ok(rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?)
}

/// A new database file in `dir`, at the latest schema.
pub fn create(dir: &Path, key: &DataKey) -> Result<Connection, DatabaseError> {
    let mut conn = open_connection(&db_path(dir), key)?;
    schema::migrations().to_latest(&mut conn)?;
    Ok(conn)
}

/// Open the database in `dir` with the data key: check the schema is one we know,
/// and bring it up to date.
pub fn open(dir: &Path, key: &DataKey) -> Result<Connection, DatabaseError> {
    let mut conn = open_connection(&db_path(dir), key)?;
    let found = schema_version(&conn)?;
    if found > schema::latest_version() {
        return Err(DatabaseError::TooNew { found, supported: schema::latest_version() });
    }
    schema::migrations().to_latest(&mut conn)?;
    Ok(conn)
}

/// The schema version the file is at.
pub fn schema_version(conn: &Connection) -> Result<usize, DatabaseError> {
    let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    usize::try_from(v).map_err(|_| DatabaseError::Damaged { table: "user_version" })
}

/// Fold the WAL into the (securely deleting) database file and empty it: after a
/// write that removed words (a person, a replaced value, a purged case), the WAL
/// still holds the pages from before it.
pub fn fold_wal(conn: &Connection) -> Result<(), DatabaseError> {
    conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
    Ok(())
}

/// Copy what the WAL holds into the database file without waiting for anyone
/// (a passive checkpoint): done when the person is idle, so that a save seldom
/// finds the WAL full and pays for the copy itself. Returns the frames in the
/// WAL and those now in the database.
pub fn checkpoint(conn: &Connection) -> Result<(i64, i64), DatabaseError> {
    Ok(conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get(1)?, r.get(2)?)))?)
}

/// A value of the `meta` table, if set.
pub fn meta(conn: &Connection, key: &str) -> Result<Option<String>, DatabaseError> {
    Ok(conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")?.query_row([key], |r| r.get(0)).optional()?)
}

/// A number kept in the `meta` table, 0 while unset; anything else is damage.
pub fn meta_number(conn: &Connection, key: &str) -> Result<i64, DatabaseError> {
    match meta(conn, key)? {
        None => Ok(0),
        Some(v) => v.parse().map_err(|_| DatabaseError::Damaged { table: "meta" }),
    }
}

/// A value of the `meta` table that setup always writes: missing is damage.
pub fn required_meta(conn: &Connection, key: &str) -> Result<String, DatabaseError> {
    meta(conn, key)?.ok_or(DatabaseError::Damaged { table: "meta" })
}

/// Set a value of the `meta` table.
pub fn set_meta(conn: &Connection, key: &str, value: &str) -> Result<(), DatabaseError> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute([key, value])?;
    Ok(())
}

/// For reading rows: the JSON the store wrote into column `column`; anything else
/// is a conversion failure, which [`read_error`] reports as a damaged row.
pub fn json_column<T: serde::de::DeserializeOwned>(column: usize, text: &str) -> rusqlite::Result<T> {
    serde_json::from_str(text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, Box::new(e)))
}

/// For reading rows: a value that does not convert to what the store wrote is a
/// damaged row of `table`; any other failure is the database's.
pub fn read_error(table: &'static str) -> impl Fn(rusqlite::Error) -> DatabaseError {
    move |e| match e {
        rusqlite::Error::FromSqlConversionFailure(..) | rusqlite::Error::InvalidColumnType(..) => {
            DatabaseError::Damaged { table }
        }
        e => DatabaseError::Sql(e),
    }
}
