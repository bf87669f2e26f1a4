//! The services bound to a session: [`Store`] is the store unlocked by one person,
//! and every operation the app and the CLI call is a method of it, checking that
//! person's rights, the rules and consent, and recording the audit trail, around
//! the repositories and the sync layer below.
//!
//! Files in the data folder (see [`crate::database`]):
//! - `amparo.db` (and its `-wal`): every case, note and draft, encrypted page by page;
//! - `keys.json`: the data key, sealed per user (see [`crate::database::keys`]);
//! - `settings.json`: the UI language and who unlocked last, needed before unlock.
//!
//! Every write is one transaction, with UUIDv7 ids and UTC timestamps, and its
//! change-log rows in the same transaction. The WAL is synced on every commit
//! (`synchronous = FULL`): a save that returned survives a power cut.

mod audit;
mod cases;
mod directory;
pub mod hub;
pub mod jsonl;
pub mod policy;
mod sync;
mod users;

use crate::database::keys::{self, DataKey, KdfParams, KeyFile};
use crate::database::{self, files, throttle, DatabaseError, KEY_FILE, SETTINGS_FILE};
use crate::i18n::Localized;
use crate::intake::{FieldError, Issue, ValidationErrors};
use crate::repositories;
use crate::repositories::audit::Action;
use crate::repositories::users::{Role, User};
pub use crate::repositories::Session;
use chrono::Utc;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;
/// Shortest passphrase accepted at setup.
pub const PASSPHRASE_MIN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no Amparo store has been set up in {0}")]
    NotInitialized(PathBuf),
    #[error("an Amparo store already exists in {0}")]
    AlreadyInitialized(PathBuf),
    /// A database is there but not its key files: restored from a backup, not
    /// replaced by a new store.
    #[error("the store in {0} has lost its key file")]
    KeysMissing(PathBuf),
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
    /// An administrator whose role is signed but who does not hold the
    /// authority yet (promoted before she had key pairs).
    #[error("your administrator role cannot sign roles on this laptop yet")]
    NoAuthority,
    /// Restricting would seal the case to no one this laptop can check, this
    /// user included (her role is not signed here yet).
    #[error("this case cannot be sealed on this laptop yet")]
    CannotSeal,
    /// A restricted case's key has not reached this laptop for this user.
    #[error("this restricted case's key is not on this laptop for you yet")]
    NoCaseKey,
    #[error("{0}")]
    Consent(#[from] crate::consent::ConsentError),
    #[error("{0}")]
    Sync(#[from] crate::sync::SyncError),
    /// A value could not be written as JSON or text (a bug, never the user's input).
    #[error("could not write this down ({0})")]
    Encode(String),
    #[error("{0}")]
    Invalid(#[from] ValidationErrors),
    /// Nothing of this kind with this id or number (or not one this user may see).
    #[error("no {kind} {id}", kind = .0.code(), id = .1)]
    NotFound(Thing, String),
    /// The window was locked while something ran in the background (a sync).
    #[error("Amparo is locked")]
    Locked,
    #[error(transparent)]
    Database(#[from] DatabaseError),
}

// The database's own failures, raised by SQL and file calls anywhere above it.
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(DatabaseError::Sql(e))
    }
}

/// What a [`StoreError::NotFound`] was looking for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thing {
    Case,
    Draft,
    DirectoryEntry,
    Referral,
    /// A laptop enrolled with the hub, by its device code.
    Device,
}

impl Thing {
    pub fn code(self) -> &'static str {
        match self {
            Thing::Case => "case",
            Thing::Draft => "draft",
            Thing::DirectoryEntry => "directory entry",
            Thing::Referral => "referral",
            Thing::Device => "device",
        }
    }

    fn not_found_key(self) -> &'static str {
        match self {
            Thing::Case => "error.store.not_found.case",
            Thing::Draft => "error.store.not_found.draft",
            Thing::DirectoryEntry => "error.store.not_found.directory_entry",
            Thing::Referral => "error.store.not_found.referral",
            Thing::Device => "error.store.not_found.device",
        }
    }
}

impl StoreError {
    /// For `map_err` on a serialisation that failed.
    pub fn encode(e: impl std::fmt::Display) -> StoreError {
        StoreError::Encode(e.to_string())
    }
}

impl From<crate::repositories::RepositoryError> for StoreError {
    fn from(e: crate::repositories::RepositoryError) -> Self {
        use crate::repositories::RepositoryError as R;
        match e {
            R::Invalid(v) => StoreError::Invalid(v),
            R::CaseNumberTaken { number } => StoreError::Sync(crate::sync::SyncError::DeviceCodeClash { number }),
            R::Database(e) => StoreError::Database(e),
        }
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Database(DatabaseError::Io(e))
    }
}

impl Localized for StoreError {
    fn i18n_key(&self) -> &'static str {
        match self {
            StoreError::NotInitialized(_) => "error.store.not_initialized",
            StoreError::AlreadyInitialized(_) => "error.store.already_initialized",
            StoreError::KeysMissing(_) => "error.store.keys_missing",
            StoreError::WrongRecoveryKey => "error.store.wrong_recovery_key",
            StoreError::NoRecoveryKey => "error.store.no_recovery_key",
            StoreError::RoleRequired(Role::Administrator) => "error.store.needs_administrator",
            StoreError::RoleRequired(_) => "error.store.needs_supervisor",
            StoreError::Restricted => "error.store.restricted",
            StoreError::NoSuchUser(_) => "error.store.no_such_user",
            StoreError::NotAdministrator(_) => "error.store.not_administrator",
            StoreError::CannotRemoveSelf => "error.store.cannot_remove_self",
            StoreError::LastAdministrator => "error.store.last_administrator",
            StoreError::NoAuthority => "error.store.no_authority",
            StoreError::CannotSeal => "error.store.cannot_seal",
            StoreError::NoCaseKey => "error.store.no_case_key",
            StoreError::Consent(e) => e.i18n_key(),
            StoreError::Sync(e) => e.i18n_key(),
            StoreError::Encode(_) => "error.store.encode",
            StoreError::Locked => "error.store.locked",
            StoreError::Invalid(_) => "error.store.invalid",
            StoreError::NotFound(thing, _) => thing.not_found_key(),
            StoreError::Database(e) => e.i18n_key(),
        }
    }
    fn args(&self) -> Vec<(&'static str, String)> {
        match self {
            StoreError::NotInitialized(p) | StoreError::AlreadyInitialized(p) | StoreError::KeysMissing(p) => {
                vec![("path", p.display().to_string())]
            }
            StoreError::NotFound(_, id) => vec![("id", id.clone())],
            StoreError::Consent(e) => e.args(),
            StoreError::Sync(e) => e.args(),
            StoreError::NoSuchUser(n) | StoreError::NotAdministrator(n) => vec![("name", n.clone())],
            StoreError::Invalid(e) => vec![("count", e.0.len().to_string())],
            StoreError::Encode(d) => vec![("detail", d.clone())],
            StoreError::Database(e) => e.args(),
            _ => vec![],
        }
    }
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
    let path = folder.join(name);
    files::write_atomic(&path, bytes)?;
    Ok(path)
}

/// What the first start asks for.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Setup {
    pub org: String,
    pub device_code: String,
    pub user: String,
    /// Wiped from memory when the setup is dropped; never printed by `Debug`.
    pub passphrase: Zeroizing<String>,
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
        database::ensure_dir(dir)?;
        Ok(files::write_json(&dir.join(SETTINGS_FILE), self)?)
    }
}

/// What the person unlocked may do, for the UI to offer just that: the core checks
/// every call again, whatever the UI offered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rights {
    /// Restricted cases, assignments, conflicts, imports and exports, reports for
    /// partners, the audit trail.
    pub supervise: bool,
    /// Users, policies, invitations, the recovery key, purges.
    pub administer: bool,
    /// The roles a user can have, lowest first (what the users screen offers).
    pub roles: Vec<&'static str>,
    /// The actions the audit trail records (what its screen filters by).
    pub audit_actions: Vec<&'static str>,
}

/// What the person unlocked may do with one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CaseRights {
    /// Restrict it or open it up: supervisors and the person it is assigned to.
    pub restrict: bool,
    /// Give it to someone: supervisors.
    pub assign: bool,
    /// Settle its sync conflicts: supervisors.
    pub resolve_conflicts: bool,
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
    /// The unlocked user's own key pairs (from her seal).
    me: keys::UserSecrets,
    /// The key that signs role grants, for an administrator whose grant verifies.
    authority: Option<repositories::users::Authority>,
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

impl Store {
    /// Has this data folder been set up?
    pub fn exists(dir: &Path) -> bool {
        database::exists(dir)
    }

    /// First start: create the encrypted store, the organisation, this device and the
    /// first user. The key file is written last, so a crash part-way leaves a folder
    /// that `exists` still calls empty, and setup can simply run again.
    pub fn create(dir: &Path, setup: &Setup, kdf: KdfParams) -> Result<Store, StoreError> {
        Store::create_as(dir, setup, kdf, None, None)
    }

    /// The same, as a newcomer made beforehand (its device id and key pairs), and
    /// with the organisation's role authority when joining one.
    pub(crate) fn create_as(
        dir: &Path,
        setup: &Setup,
        kdf: KdfParams,
        newcomer: Option<crate::sync::identity::Newcomer>,
        authority: Option<repositories::users::Authority>,
    ) -> Result<Store, StoreError> {
        validate_setup(setup)?;
        if Store::exists(dir) {
            return Err(StoreError::AlreadyInitialized(dir.to_path_buf()));
        }
        database::ensure_dir(dir)?;
        // A database without its key files is a setup of ours that crashed before
        // they were written (it left its mark), or a store whose key files were
        // lost and may be restored from a backup: that one is never touched, and
        // the person is told what to do. Ours is moved aside, never deleted.
        let pending = dir.join(database::SETUP_PENDING);
        if dir.join(database::DB_FILE).exists() && !database::has_keys(dir) {
            if !pending.exists() {
                return Err(StoreError::KeysMissing(dir.to_path_buf()));
            }
            let stamp = Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
            for leftover in [database::DB_FILE, "amparo.db-wal", "amparo.db-shm"] {
                let from = dir.join(leftover);
                if from.exists() {
                    std::fs::rename(&from, dir.join(format!("{leftover}.orphaned-{stamp}")))?;
                }
            }
        }
        files::write_atomic(&pending, b"")?;
        let key = keys::new_data_key();
        let authority = authority.unwrap_or_else(repositories::users::Authority::generate);
        let me = keys::UserSecrets::generate(Some(authority.public()));
        let recovery_kx = x25519_dalek::StaticSecret::random_from_rng(rand::rngs::OsRng);
        let user_id = database::new_id();
        let store_id = database::new_id();
        let mut conn = database::create(dir, &key)?;
        let session = Session {
            org: setup.org.trim().to_string(),
            device_code: setup.device_code.trim().to_uppercase(),
            device_id: newcomer.as_ref().map_or_else(database::new_id, |n| n.device_id.clone()),
            user_id: user_id.clone(),
            user_name: setup.user.trim().to_string(),
            role: Role::Administrator,
        };
        {
            let tx = crate::database::write_tx(&conn)?;
            let now = database::now_utc();
            for (k, v) in [
                ("store_id", store_id.as_str()),
                ("org", session.org.as_str()),
                ("device_code", session.device_code.as_str()),
                ("device_id", session.device_id.as_str()),
                ("created_at", now.as_str()),
            ] {
                database::set_meta(&tx, k, v)?;
            }
            let first = User {
                id: user_id.clone(),
                name: session.user_name.clone(),
                role: Role::Administrator,
                created_at: now.clone(),
                signed: true,
                claimed_role: None,
                keys_pending: false,
                sign_key: Some(me.sign_key()),
                kx_key: Some(me.kx_key()),
            };
            repositories::users::insert(&tx, &first)?;
            repositories::users::set_authority(&tx, &authority)?;
            repositories::users::grant(&tx, &authority, &user_id, Role::Administrator, &user_id)?;
            repositories::users::seal_authority(&tx, &user_id, &me.kx_key(), &authority)?;
            repositories::restricted::set_recovery_kx(&tx, &recovery_kx)?;
            let detail = json!({ "user": user_id, "role": Role::Administrator.code() });
            repositories::audit::append(
                &tx,
                &session.device_id,
                Some(&user_id),
                Action::UserAdded,
                None,
                detail,
                None,
            )?;
            if let Some(n) = &newcomer {
                crate::sync::identity::keep(&tx, &n.identity)?;
            }
            tx.commit()?;
        }
        crate::sync::ensure_ready(&mut conn)?;
        repositories::cases::backfill_facts(&mut conn)?;
        repositories::cases::backfill_fts(&mut conn)?;
        repositories::directory::seed(&conn)?;
        let recovery = keys::new_recovery_key();
        let kf = KeyFile {
            format: keys::KEY_FILE_FORMAT.into(),
            store_id,
            keys: vec![users::seal(&key, &me, &user_id, &setup.passphrase, kdf)?],
            recovery: Some(users::recovery_seal(&key, Some(&authority), Some(&recovery_kx), &recovery, kdf)?),
        };
        kf.write(&dir.join(KEY_FILE))?;
        std::fs::remove_file(&pending)?;
        if !setup.locale.is_empty() {
            let locale = Some(crate::i18n::normalize_locale(&setup.locale).to_string());
            Settings { locale, last_user: Some(user_id.clone()) }.save(dir)?;
        }
        Ok(Store {
            conn,
            dir: dir.to_path_buf(),
            session,
            key,
            me,
            authority: Some(authority),
            kdf,
            fresh_recovery: Some(recovery),
        })
    }

    /// Fold the WAL into the database while no one waits (the shell calls it
    /// when the person is idle): a save then seldom pays for a checkpoint.
    /// Returns the frames the WAL held and those now in the database.
    pub fn checkpoint(&self) -> Result<(i64, i64), StoreError> {
        Ok(database::checkpoint(&self.conn)?)
    }

    /// The recovery key made at setup, once: the caller shows it and forgets it.
    pub fn take_recovery_key(&mut self) -> Option<Zeroizing<String>> {
        self.fresh_recovery.take()
    }

    /// Open the database with the data key: check the schema is one we know, and
    /// bring it up to date.
    fn connect(dir: &Path, key: &DataKey) -> Result<Connection, StoreError> {
        let mut conn = database::open(dir, key)?;
        crate::changelog::carry_over(&mut conn)?;
        crate::sync::ensure_ready(&mut conn)?;
        repositories::cases::upgrade_codes(&mut conn)?;
        repositories::cases::backfill_facts(&mut conn)?;
        repositories::cases::backfill_fts(&mut conn)?;
        repositories::directory::seed(&conn)?;
        Ok(conn)
    }

    /// Build the session for an active user; `None` if the user was removed.
    fn session_for(conn: &Connection, user_id: &str) -> Result<Option<Session>, StoreError> {
        let meta = |k: &str| database::required_meta(conn, k);
        let Some(user) = repositories::users::active_by_id(conn, user_id)? else { return Ok(None) };
        Ok(Some(Session {
            org: meta("org")?,
            device_code: meta("device_code")?,
            device_id: meta("device_id")?,
            user_id: user.id,
            user_name: user.name,
            role: user.role,
        }))
    }

    /// Audit an unlock, with the failed attempts since the last one, then clear them.
    fn record_unlock(&self, action: Action) -> Result<(), StoreError> {
        let failures = throttle::load(&self.dir).at;
        let tx = crate::database::write_tx(&self.conn)?;
        let device = &self.session.device_id;
        for at in &failures {
            repositories::audit::append(&tx, device, None, Action::FailedUnlock, None, json!({}), Some(at))?;
        }
        repositories::audit::append(&tx, device, Some(&self.session.user_id), action, None, json!({}), None)?;
        tx.commit()?;
        Ok(throttle::reset(&self.dir)?)
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
        let mut seals: Vec<keys::WrappedKey> = kf.keys.clone();
        // A seal damaged in the key file may be whole in its copy: tried after.
        if let Ok(copy) = KeyFile::read_copy(&dir.join(KEY_FILE)) {
            seals.extend(copy.keys.into_iter().filter(|c| !kf.keys.iter().any(|k| k.sealed == c.sealed)));
        }
        // Stable: the last user first, the others in their order.
        seals.sort_by_key(|w| Some(&w.user_id) != settings.last_user.as_ref());
        let mut opened = None;
        let mut damaged = None;
        for w in &seals {
            match keys::unwrap_with(w, passphrase) {
                Ok((k, extra)) => {
                    opened = Some((k, extra, w.user_id.clone(), w.params));
                    break;
                }
                Err(DatabaseError::WrongPassphrase) => continue,
                // One damaged seal must not lock everyone else out.
                Err(e) => damaged = Some(e),
            }
        }
        let Some((key, extra, user_id, kdf)) = opened else {
            // Said as damaged, and not counted as a wrong attempt: whoever can
            // change the key file can also reset the count kept beside it.
            if let Some(e) = damaged {
                return Err(e.into());
            }
            return Err(throttle::wrong_passphrase(dir).into());
        };
        let conn = Store::connect(dir, &key)?;
        let wanted = |s: &Session| user.is_none_or(|u| s.user_name.eq_ignore_ascii_case(u.trim()));
        // A removed user's key may outlive them if the key file could not be written.
        let Some(mut session) = Store::session_for(&conn, &user_id)?.filter(wanted) else {
            return Err(throttle::wrong_passphrase(dir).into());
        };
        let settled = users::settle(&conn, &session, &extra)?;
        session.role = settled.role;
        if settled.reseal {
            let mut kf = kf;
            kf.keys.retain(|w| w.user_id != user_id);
            kf.keys.push(users::seal(&key, &settled.me, &user_id, passphrase, kdf)?);
            kf.write(&dir.join(KEY_FILE))?;
        }
        let mut store = Store {
            conn,
            dir: dir.to_path_buf(),
            session,
            key,
            me: settled.me,
            authority: settled.authority,
            kdf,
            fresh_recovery: None,
        };
        store.record_unlock(Action::Unlock)?;
        store.seal_restricted()?;
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
        let (key, extra) = match keys::unwrap_with(sealed, &typed) {
            Ok(opened) => opened,
            Err(DatabaseError::WrongPassphrase) => {
                throttle::record_failure(dir)?;
                return Err(StoreError::WrongRecoveryKey);
            }
            Err(e) => return Err(e.into()),
        };
        let kdf = sealed.params;
        let conn = Store::connect(dir, &key)?;
        let found = repositories::users::active_by_name(&conn, admin)?;
        let user_id = found.map(|u| u.id).ok_or_else(|| StoreError::NoSuchUser(admin.trim().to_string()))?;
        users::check_unique(&kf, &user_id, new_passphrase)?;
        // The authority first: the roles are checked against the one the
        // recovery key holds, not one that may have been put in its place.
        let tx = database::write_tx(&conn)?;
        let (authority, reseal_recovery) = users::restore_authority(&tx, &extra, &user_id)?;
        let session =
            Store::session_for(&tx, &user_id)?.ok_or_else(|| StoreError::NoSuchUser(admin.trim().to_string()))?;
        if session.role != Role::Administrator {
            return Err(StoreError::NotAdministrator(admin.trim().to_string()));
        }
        // Her old secrets are sealed under the passphrase she lost: new ones.
        let me = keys::UserSecrets::generate(Some(authority.public()));
        repositories::users::set_keys(&tx, &user_id, &me.sign_key(), &me.kx_key())?;
        repositories::users::grant(&tx, &authority, &user_id, Role::Administrator, &user_id)?;
        users::certify(&tx, &authority, &user_id)?;
        // The restricted cases' keys the recovery key holds, sealed to her new
        // key pair: a forgotten passphrase loses no case.
        let recovery_kx = users::recovered_kx(&extra);
        if let Some(rkx) = &recovery_kx {
            let device = database::required_meta(&tx, "device_id")?;
            let recovery = repositories::restricted::recovery_id(&device);
            let opener = repositories::restricted::Opener { user_id: &recovery, kx: rkx };
            let her = [repositories::restricted::Recipient { user_id: user_id.clone(), kx_key: me.kx_key() }];
            for (case_id, _) in repositories::cases::restricted_cases(&tx)? {
                let keys = opener.keys(&tx, &case_id)?;
                repositories::restricted::grant(&tx, session.author(), &case_id, &keys.all(), &her)?;
            }
            // Her unfinished edits of restricted cases too.
            for (draft, case_id, stored) in repositories::drafts::stored_of(&tx, &user_id)? {
                if !repositories::restricted::is_sealed_draft(&stored) {
                    continue;
                }
                let Some(typed) = repositories::restricted::open_draft(&draft, stored, &recovery, rkx) else {
                    continue;
                };
                let json = serde_json::to_string(&typed).map_err(StoreError::encode)?;
                let sealed = repositories::restricted::seal_draft(&tx, &draft, &json, &her[0])?;
                repositories::drafts::save(&tx, &draft, case_id.as_deref(), &sealed, &user_id)?;
            }
        }
        // A recovery seal from before it held the authority or its own X25519
        // key is made again with them.
        let fresh_kx = match (&recovery_kx, reseal_recovery) {
            (Some(_), false) => None,
            _ => Some(x25519_dalek::StaticSecret::random_from_rng(rand::rngs::OsRng)),
        };
        if let Some(kx) = &fresh_kx {
            repositories::restricted::set_recovery_kx(&tx, kx)?;
        }
        tx.commit()?;
        let mut kf = kf;
        kf.keys.retain(|w| w.user_id != user_id);
        kf.keys.push(users::seal(&key, &me, &user_id, new_passphrase, kdf)?);
        if let Some(kx) = &fresh_kx {
            kf.recovery = Some(users::recovery_seal(&key, Some(&authority), Some(kx), &typed, kdf)?);
        }
        kf.write(&dir.join(KEY_FILE))?;
        let mut store = Store {
            conn,
            dir: dir.to_path_buf(),
            session,
            key,
            me,
            authority: Some(authority),
            kdf,
            fresh_recovery: None,
        };
        store.record_unlock(Action::Recover)?;
        store.record(Action::PassphraseChanged, None, json!({ "user": store.session.user_id }))?;
        store.seal_restricted()?;
        Ok(store)
    }

    /// The Argon2id cost this store's keys are sealed with.
    pub(crate) fn kdf(&self) -> KdfParams {
        self.kdf
    }

    /// See [`Rights`].
    pub fn rights(&self) -> Rights {
        Rights {
            supervise: self.session.role >= Role::Supervisor,
            administer: self.session.role >= Role::Administrator,
            roles: Role::ALL.iter().map(|r| r.code()).collect(),
            audit_actions: Action::ALL.iter().map(|a| a.code()).collect(),
        }
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn info(&self) -> Result<StoreInfo, StoreError> {
        let counts = repositories::cases::counts(&self.conn)?;
        Ok(StoreInfo {
            path: self.dir.display().to_string(),
            schema_version: database::schema_version(&self.conn)?,
            latest_schema_version: database::schema::latest_version(),
            org: self.session.org.clone(),
            device_code: self.session.device_code.clone(),
            user: self.session.user_name.clone(),
            cases: counts.cases,
            people: counts.people,
            notes: counts.notes,
            drafts: repositories::drafts::count(&self.conn)?,
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
        passphrase: String::from(TEST_PASSPHRASE).into(),
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
