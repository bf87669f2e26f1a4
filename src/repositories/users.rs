//! Users and roles on a shared laptop.
//!
//! Each user unlocks with their own passphrase: the data key is sealed once per user
//! in `keys.json`, so adding a user or changing a passphrase re-encrypts nothing, and
//! removing a user drops their sealed key. Roles are checked here, in the core API,
//! whatever the UI shows:
//!
//! - **Caseworker**: records intakes; opens and edits every case that is not
//!   restricted, and restricted cases assigned to them; sees only their own drafts.
//! - **Supervisor**: also opens restricted cases, assigns cases, imports and exports,
//!   and reads the audit trail.
//! - **Administrator**: also manages users and the store's policies.
//!
//! A role is what the user's *grant* says: her id, name, role and public keys,
//! signed by the store's [`Authority`], whose secret only administrators (and
//! the recovery key) can open. Whoever holds the data key can change a row, but
//! not sign it: an unsigned role gives a caseworker's rights, and is shown to
//! administrators.

use crate::database::{now_utc, DatabaseError};
use ed25519_dalek::Signer;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    Caseworker,
    Supervisor,
    Administrator,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Caseworker, Role::Supervisor, Role::Administrator];
    pub fn code(self) -> &'static str {
        match self {
            Role::Caseworker => "Caseworker",
            Role::Supervisor => "Supervisor",
            Role::Administrator => "Administrator",
        }
    }
    pub fn parse(code: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.code().eq_ignore_ascii_case(code.trim()))
    }
    pub fn label_key(self) -> String {
        format!("user.role.{}", self.code())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    pub id: String,
    pub name: String,
    /// The role this user has: the one in her grant, if its signature verifies;
    /// Caseworker otherwise.
    pub role: Role,
    pub created_at: String,
    /// False when her grant's signature does not verify against the authority:
    /// the row was written or changed by hand. Administrators are shown it.
    pub signed: bool,
    /// The role her row claims, when it is not signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claimed_role: Option<Role>,
    /// Her public keys are not yet in her grant (she made them after it was
    /// signed, in a store from before them): an administrator's unlock signs them.
    #[serde(skip)]
    pub keys_pending: bool,
    #[serde(skip)]
    pub sign_key: Option<String>,
    #[serde(skip)]
    pub kx_key: Option<String>,
}

pub(crate) fn role_of(code: &str) -> Role {
    // An unknown code (a newer Amparo's role) gets the least rights.
    Role::parse(code).unwrap_or(Role::Caseworker)
}

/// `meta` key of the authority's public key (hex Ed25519).
const AUTHORITY_KEY: &str = "authority_key";
const GRANT_FORMAT: &str = "amparo.grant/1";

/// What an administrator signs to give a user her role: bound to the authority,
/// the user's id and name, and her public keys (empty in a grant made before she
/// had them).
pub(crate) struct Grant<'a> {
    pub user_id: &'a str,
    pub name: &'a str,
    pub role: Role,
    pub sign_key: &'a str,
    pub kx_key: &'a str,
    pub granted_by: &'a str,
    pub granted_at: &'a str,
}

impl Grant<'_> {
    fn message(&self, authority: &str) -> Vec<u8> {
        [GRANT_FORMAT, authority, self.user_id, self.name, self.role.code(), self.sign_key, self.kx_key]
            .iter()
            .chain([&self.granted_by, &self.granted_at])
            .flat_map(|part| part.as_bytes().iter().copied().chain([0u8]))
            .collect()
    }

    fn verifies(&self, authority: &str, signature: &str) -> bool {
        let Ok(sig) = hex::decode(signature) else { return false };
        crate::database::keys::verify(authority, &self.message(authority), &sig)
    }
}

/// The key that signs role grants. Its public half is in `meta`; its secret is
/// sealed to each administrator's X25519 key and to the recovery key, never kept
/// in the clear, so holding the data key is not enough to sign.
#[derive(Clone)]
pub struct Authority(ed25519_dalek::SigningKey);

impl Authority {
    pub fn generate() -> Authority {
        Authority(ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// From the 32 bytes [`Authority::to_bytes`] gave; `None` if not 32.
    pub fn from_bytes(bytes: &[u8]) -> Option<Authority> {
        let seed: zeroize::Zeroizing<[u8; 32]> = zeroize::Zeroizing::new(bytes.try_into().ok()?);
        Some(Authority(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    pub fn to_bytes(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.0.to_bytes())
    }

    pub fn public(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    pub fn public_hex(&self) -> String {
        hex::encode(self.public())
    }

    fn sign(&self, grant: &Grant) -> String {
        hex::encode(self.0.sign(&grant.message(&self.public_hex())).to_bytes())
    }
}

/// The authority's public key, if this store has one (stores from before role
/// grants have none until an administrator unlocks).
pub(crate) fn authority(conn: &Connection) -> Result<Option<String>, DatabaseError> {
    crate::database::meta(conn, AUTHORITY_KEY)
}

pub(crate) fn set_authority(conn: &Connection, authority: &Authority) -> Result<(), DatabaseError> {
    crate::database::set_meta(conn, AUTHORITY_KEY, &authority.public_hex())
}

const REPLACED_BY_RECOVERY: &str = "authority_replaced_by_recovery";

/// The authority a recovery with an old recovery key replaced, if any.
pub(crate) fn replaced_by_recovery(conn: &Connection) -> Result<Option<[u8; 32]>, DatabaseError> {
    let hexed = crate::database::meta(conn, REPLACED_BY_RECOVERY)?;
    Ok(hexed.and_then(|h| hex::decode(h).ok()).and_then(|b| b.try_into().ok()))
}

pub(crate) fn set_replaced_by_recovery(conn: &Connection, old: &str) -> Result<(), DatabaseError> {
    crate::database::set_meta(conn, REPLACED_BY_RECOVERY, old)
}

fn authority_context(user_id: &str) -> String {
    format!("amparo.authority/1:{user_id}")
}

/// Seal the authority to an administrator's X25519 key (hex).
pub(crate) fn seal_authority(
    conn: &Connection,
    user_id: &str,
    kx_key: &str,
    authority: &Authority,
) -> Result<(), DatabaseError> {
    let sealed = crate::database::keys::seal_to(kx_key, &authority_context(user_id), authority.to_bytes().as_ref())
        .ok_or(DatabaseError::Damaged { table: "users" })?;
    conn.prepare_cached(
        "INSERT INTO authority_seals (user_id, sealed) VALUES (?1, ?2)
         ON CONFLICT (user_id) DO UPDATE SET sealed = excluded.sealed",
    )?
    .execute(params![user_id, sealed])?;
    Ok(())
}

/// The authority, if it is sealed to this user and is the store's.
pub(crate) fn open_authority(
    conn: &Connection,
    user_id: &str,
    mine: &crate::database::keys::UserSecrets,
) -> Result<Option<Authority>, DatabaseError> {
    let Some(expected) = authority(conn)? else { return Ok(None) };
    let sealed: Option<String> = conn
        .prepare_cached("SELECT sealed FROM authority_seals WHERE user_id = ?1")?
        .query_row([user_id], |r| r.get(0))
        .optional()?;
    let Some(sealed) = sealed else { return Ok(None) };
    let opened = crate::database::keys::open_sealed(mine.kx(), &authority_context(user_id), &sealed)
        .and_then(|bytes| Authority::from_bytes(&bytes));
    Ok(opened.filter(|a| a.public_hex() == expected))
}

pub(crate) fn drop_authority_seal(conn: &Connection, user_id: &str) -> Result<(), DatabaseError> {
    conn.prepare_cached("DELETE FROM authority_seals WHERE user_id = ?1")?.execute([user_id])?;
    Ok(())
}

/// Before the authority is sealed afresh to every administrator.
pub(crate) fn drop_all_authority_seals(conn: &Connection) -> Result<(), DatabaseError> {
    conn.prepare_cached("DELETE FROM authority_seals")?.execute([])?;
    Ok(())
}

/// Does this user hold a seal of the authority?
pub(crate) fn has_authority_seal(conn: &Connection, user_id: &str) -> Result<bool, DatabaseError> {
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM authority_seals WHERE user_id = ?1)")?
        .query_row([user_id], |r| r.get(0))?)
}

/// Sign `role` for a user, with her public keys as her row holds them, and
/// write the grant into her row.
pub(crate) fn grant(
    conn: &Connection,
    authority: &Authority,
    user_id: &str,
    role: Role,
    granted_by: &str,
) -> Result<(), DatabaseError> {
    let (name, sign_key, kx_key): (String, Option<String>, Option<String>) = conn
        .prepare_cached("SELECT name, sign_key, kx_key FROM users WHERE id = ?1")?
        .query_row([user_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let granted_at = now_utc();
    let g = Grant {
        user_id,
        name: &name,
        role,
        sign_key: sign_key.as_deref().unwrap_or(""),
        kx_key: kx_key.as_deref().unwrap_or(""),
        granted_by,
        granted_at: &granted_at,
    };
    let sig = authority.sign(&g);
    conn.prepare_cached("UPDATE users SET role = ?2, granted_by = ?3, granted_at = ?4, grant_sig = ?5 WHERE id = ?1")?
        .execute(params![user_id, role.code(), granted_by, granted_at, sig])?;
    Ok(())
}

/// The role a user's row claims, signed or not.
pub(crate) fn role_of_row(conn: &Connection, user_id: &str) -> Result<Role, DatabaseError> {
    let code: String =
        conn.prepare_cached("SELECT role FROM users WHERE id = ?1")?.query_row([user_id], |r| r.get(0))?;
    Ok(role_of(&code))
}

/// Set a user's public keys (her grant must then be signed again to cover them).
pub(crate) fn set_keys(conn: &Connection, user_id: &str, sign_key: &str, kx_key: &str) -> Result<(), DatabaseError> {
    conn.prepare_cached("UPDATE users SET sign_key = ?2, kx_key = ?3 WHERE id = ?1")?
        .execute(params![user_id, sign_key, kx_key])?;
    Ok(())
}

/// Everyone who can unlock this store, in the order they were added, each with
/// the role her grant proves.
pub(crate) fn active(conn: &Connection) -> Result<Vec<User>, DatabaseError> {
    let authority = authority(conn)?;
    let mut st = conn.prepare_cached(
        "SELECT id, name, role, created_at, sign_key, kx_key, granted_by, granted_at, grant_sig
           FROM users WHERE removed_at IS NULL ORDER BY created_at, name",
    )?;
    let rows = st
        .query_map([], |r| {
            let row: [Option<String>; 9] = [
                Some(r.get(0)?),
                Some(r.get(1)?),
                Some(r.get(2)?),
                Some(r.get(3)?),
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
            ];
            Ok(row)
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows.into_iter().map(|row| verified(authority.as_deref(), row)).collect())
}

fn verified(authority: Option<&str>, row: [Option<String>; 9]) -> User {
    let [id, name, role, created_at, sign_key, kx_key, granted_by, granted_at, sig] = row;
    let (id, name, created_at) = (id.unwrap_or_default(), name.unwrap_or_default(), created_at.unwrap_or_default());
    let claimed = role_of(role.as_deref().unwrap_or_default());
    let mut user = User {
        id,
        name,
        role: claimed,
        created_at,
        signed: true,
        claimed_role: None,
        keys_pending: false,
        sign_key,
        kx_key,
    };
    // A store from before grants: the roles are as they were until an
    // administrator's unlock signs them.
    let Some(authority) = authority else { return user };
    let (Some(by), Some(at), Some(sig)) = (granted_by, granted_at, sig) else {
        user.signed = false;
        user.claimed_role = Some(claimed);
        user.role = Role::Caseworker;
        return user;
    };
    let signs = |sign_key: &str, kx_key: &str| {
        let g = Grant {
            user_id: &user.id,
            name: &user.name,
            role: claimed,
            sign_key,
            kx_key,
            granted_by: &by,
            granted_at: &at,
        };
        g.verifies(authority, &sig)
    };
    let keys = (user.sign_key.clone().unwrap_or_default(), user.kx_key.clone().unwrap_or_default());
    if signs(&keys.0, &keys.1) {
        return user;
    }
    if signs("", "") {
        user.keys_pending = true;
        return user;
    }
    user.signed = false;
    user.claimed_role = Some(claimed);
    user.role = Role::Caseworker;
    user
}

/// The user with this id, unless removed.
pub(crate) fn active_by_id(conn: &Connection, id: &str) -> Result<Option<User>, DatabaseError> {
    Ok(active(conn)?.into_iter().find(|u| u.id == id))
}

/// The user with this name (case does not matter), unless removed.
pub(crate) fn active_by_name(conn: &Connection, name: &str) -> Result<Option<User>, DatabaseError> {
    Ok(active(conn)?.into_iter().find(|u| u.name.eq_ignore_ascii_case(name.trim())))
}

/// A new user's row, with her public keys; her grant is signed by [`grant`].
pub(crate) fn insert(conn: &Connection, user: &User) -> Result<(), DatabaseError> {
    conn.prepare_cached(
        "INSERT INTO users (id, name, role, created_at, sign_key, kx_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![user.id, user.name, user.role.code(), user.created_at, user.sign_key, user.kx_key])?;
    Ok(())
}

/// Mark a user removed (the row stays: the audit trail and notes name them), with
/// the removal signed so that the organisation's other laptops take it too.
pub(crate) fn remove(conn: &Connection, authority: &Authority, id: &str, by: &str) -> Result<(), DatabaseError> {
    let at = now_utc();
    let sig = hex::encode(authority.0.sign(&removal_message(&authority.public_hex(), id, by, &at)).to_bytes());
    conn.prepare_cached("UPDATE users SET removed_at = ?2, removed_by = ?3, removal_sig = ?4 WHERE id = ?1")?
        .execute(params![id, at, by, sig])?;
    drop_authority_seal(conn, id)
}

/// The name of a user by id, removed or not.
pub(crate) fn name_of(conn: &Connection, id: &str) -> Result<Option<String>, DatabaseError> {
    Ok(conn.prepare_cached("SELECT name FROM users WHERE id = ?1")?.query_row([id], |r| r.get(0)).optional()?)
}

const REMOVAL_FORMAT: &str = "amparo.removal/1";

fn removal_message(authority: &str, user_id: &str, by: &str, at: &str) -> Vec<u8> {
    [REMOVAL_FORMAT, authority, user_id, by, at]
        .iter()
        .flat_map(|part| part.as_bytes().iter().copied().chain([0u8]))
        .collect()
}

/// A user of the organisation as her signed grant says: what travels with sync
/// (her public keys and role, never her seal), so that another laptop knows whom
/// a restricted case may be sealed to. Checked against the authority each time
/// it is read: with the data key a row can be written, not signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: String,
    pub name: String,
    pub role: String,
    pub sign_key: String,
    pub kx_key: String,
    pub granted_by: String,
    pub granted_at: String,
    pub sig: String,
    /// Signed by an administrator when she removed the user: final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<Removal>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removal {
    pub by: String,
    pub at: String,
    pub sig: String,
}

/// The most members a bundle may name: far above any organisation's staff.
pub const MEMBERS_MAX: usize = 10_000;

impl Member {
    /// The role her grant proves, if everything the record says checks against
    /// `authority` (a grant without public keys cannot be sealed to: refused).
    pub fn verified_role(&self, authority: &str) -> Option<Role> {
        let role = Role::parse(&self.role).filter(|r| r.code() == self.role)?;
        if self.sign_key.is_empty() || self.kx_key.is_empty() {
            return None;
        }
        let grant = Grant {
            user_id: &self.id,
            name: &self.name,
            role,
            sign_key: &self.sign_key,
            kx_key: &self.kx_key,
            granted_by: &self.granted_by,
            granted_at: &self.granted_at,
        };
        let removal_checks = self.removed.as_ref().is_none_or(|r| {
            hex::decode(&r.sig).is_ok_and(|sig| {
                crate::database::keys::verify(authority, &removal_message(authority, &self.id, &r.by, &r.at), &sig)
            })
        });
        (grant.verifies(authority, &self.sig) && removal_checks).then_some(role)
    }

    /// Sizes and shapes any Amparo writes; anything else is refused unread.
    fn within_bounds(&self) -> bool {
        let hex_of = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        let time = |s: &str| s.len() <= 40 && chrono::DateTime::parse_from_rfc3339(s).is_ok();
        let id = |s: &str| (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        id(&self.id)
            && id(&self.granted_by)
            && !self.name.trim().is_empty()
            && self.name.chars().count() <= crate::form::TEXT_MAX
            && !self.name.chars().any(char::is_control)
            && self.role.len() <= 32
            && hex_of(&self.sign_key, 64)
            && hex_of(&self.kx_key, 64)
            && hex_of(&self.sig, 128)
            && time(&self.granted_at)
            && self.removed.as_ref().is_none_or(|r| id(&r.by) && time(&r.at) && hex_of(&r.sig, 128))
    }

    /// Of two checked records of one user, does this one stand? A removal is
    /// final; otherwise the later grant (so an old grant sent again never undoes
    /// a newer one).
    fn supersedes(&self, held: &Member) -> bool {
        match (&self.removed, &held.removed) {
            (Some(_), None) => true,
            (None, Some(_)) => false,
            _ => (&self.granted_at, &self.sig) > (&held.granted_at, &held.sig),
        }
    }
}

const MEMBER_COLUMNS: &str =
    "user_id, name, role, sign_key, kx_key, granted_by, granted_at, grant_sig, removed_by, removed_at, removal_sig";

fn member_row(r: &rusqlite::Row) -> rusqlite::Result<Member> {
    let removed =
        match (r.get::<_, Option<String>>(8)?, r.get::<_, Option<String>>(9)?, r.get::<_, Option<String>>(10)?) {
            (Some(by), Some(at), Some(sig)) => Some(Removal { by, at, sig }),
            _ => None,
        };
    Ok(Member {
        id: r.get(0)?,
        name: r.get(1)?,
        role: r.get(2)?,
        sign_key: r.get(3)?,
        kx_key: r.get(4)?,
        granted_by: r.get(5)?,
        granted_at: r.get(6)?,
        sig: r.get(7)?,
        removed,
    })
}

/// Users of the organisation's other laptops whose records check, removed ones
/// included (their removal is what is passed on).
pub(crate) fn members(conn: &Connection) -> Result<Vec<Member>, DatabaseError> {
    let Some(authority) = authority(conn)? else { return Ok(Vec::new()) };
    let mut st = conn.prepare_cached(&format!("SELECT {MEMBER_COLUMNS} FROM members ORDER BY name, user_id"))?;
    let rows = st.query_map([], member_row)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows.into_iter().filter(|m| m.verified_role(&authority).is_some()).collect())
}

/// What this laptop passes on: its own users' signed grants and removals, and
/// every other laptop's it holds, so that they reach laptops that never meet.
pub(crate) fn members_to_send(conn: &Connection) -> Result<Vec<Member>, DatabaseError> {
    let Some(authority) = authority(conn)? else { return Ok(Vec::new()) };
    let mut st = conn.prepare_cached(
        "SELECT id, name, role, sign_key, kx_key, granted_by, granted_at, grant_sig, removed_by, removed_at, removal_sig
           FROM users WHERE grant_sig IS NOT NULL AND sign_key IS NOT NULL AND kx_key IS NOT NULL",
    )?;
    let own = st.query_map([], member_row)?.collect::<Result<Vec<_>, _>>()?;
    let mut all: Vec<Member> = own.into_iter().filter(|m| m.verified_role(&authority).is_some()).collect();
    all.extend(members(conn)?);
    Ok(all)
}

/// Take what a bundle says about the organisation's users: each record that
/// checks against this laptop's authority and stands over what is held. Records
/// that do not check (another authority's, or forged) are left out; this
/// laptop's own users are its own to change. Returns how many were taken.
pub(crate) fn take_members(conn: &Connection, incoming: &[Member]) -> Result<usize, DatabaseError> {
    let Some(authority) = authority(conn)? else { return Ok(0) };
    let mut taken = 0;
    for m in incoming {
        if !m.within_bounds() || m.verified_role(&authority).is_none() {
            continue;
        }
        let local: bool = conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM users WHERE id = ?1)")?
            .query_row([&m.id], |r| r.get(0))?;
        if local {
            continue;
        }
        let held = conn
            .query_row(&format!("SELECT {MEMBER_COLUMNS} FROM members WHERE user_id = ?1"), [&m.id], member_row)
            .optional()?;
        if held.is_some_and(|h| h.verified_role(&authority).is_some() && !m.supersedes(&h)) {
            continue;
        }
        let removed = m.removed.as_ref();
        conn.execute(
            &format!(
                "INSERT OR REPLACE INTO members ({MEMBER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            ),
            params![
                m.id,
                m.name,
                m.role,
                m.sign_key,
                m.kx_key,
                m.granted_by,
                m.granted_at,
                m.sig,
                removed.map(|r| &r.by),
                removed.map(|r| &r.at),
                removed.map(|r| &r.sig),
            ],
        )?;
        taken += 1;
    }
    Ok(taken)
}
