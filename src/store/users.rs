//! Users, roles and passphrases for the person unlocked (see
//! [`crate::repositories::users`] for the roles' rights).

use super::{Session, Store, StoreError, PASSPHRASE_MIN};
use crate::database::keys::{self, DataKey, KdfParams, KeyFile, UserSecrets, WrappedKey};
use crate::database::{now_utc, KEY_FILE};
use crate::form::TEXT_MAX;
use crate::intake::{FieldError, Issue, ValidationErrors};
use crate::repositories::audit::{self, Action};
use crate::repositories::users::{self, Authority, Role, User};
use rusqlite::Connection;

use serde_json::json;

/// Check a new passphrase's length; the issue is keyed `passphrase`.
pub(crate) fn check_passphrase(p: &str) -> Result<(), ValidationErrors> {
    if p.chars().count() < PASSPHRASE_MIN {
        return Err(ValidationErrors(vec![Issue::new(
            "passphrase",
            FieldError::PassphraseTooShort { min: PASSPHRASE_MIN },
        )]));
    }
    Ok(())
}

/// Refuse a passphrase that already opens someone else's key: unlocking decides who
/// is working by which key opens, so two users must never share one.
pub(crate) fn check_unique(kf: &KeyFile, user_id: &str, passphrase: &str) -> Result<(), StoreError> {
    for w in kf.keys.iter().filter(|w| w.user_id != user_id) {
        if keys::unwrap(w, passphrase).is_ok() {
            return Err(ValidationErrors(vec![Issue::new("passphrase", FieldError::PassphraseInUse)]).into());
        }
    }
    Ok(())
}

/// A user's seal: the data key and her secrets, under her passphrase.
pub(crate) fn seal(
    key: &DataKey,
    me: &UserSecrets,
    user_id: &str,
    passphrase: &str,
    kdf: KdfParams,
) -> Result<WrappedKey, StoreError> {
    Ok(keys::wrap_with(key, &me.to_bytes(), user_id, passphrase, kdf)?)
}

/// The recovery seal: the data key and the authority (so that a recovered
/// administrator can sign her own new keys).
pub(crate) fn recovery_seal(
    key: &DataKey,
    authority: Option<&Authority>,
    recovery_kx: Option<&x25519_dalek::StaticSecret>,
    recovery_key: &str,
    kdf: KdfParams,
) -> Result<WrappedKey, StoreError> {
    // The authority, then the recovery key's X25519 secret (restricted cases are
    // sealed to it): both or neither after the first, as `recovered_secrets` reads.
    let mut extra = zeroize::Zeroizing::new(Vec::new());
    if let Some(a) = authority {
        extra.extend_from_slice(a.to_bytes().as_ref());
        if let Some(kx) = recovery_kx {
            extra.extend_from_slice(&kx.to_bytes());
        }
    }
    Ok(keys::wrap_with(key, &extra, keys::RECOVERY_ID, recovery_key, kdf)?)
}

/// The recovery key's X25519 secret from its seal's extra, if it holds one.
pub(crate) fn recovered_kx(extra: &[u8]) -> Option<x25519_dalek::StaticSecret> {
    let bytes: [u8; 32] = extra.get(32..64)?.try_into().ok()?;
    Some(x25519_dalek::StaticSecret::from(bytes))
}

/// What an unlock made of the user's own keys and her role.
pub(crate) struct Settled {
    pub me: UserSecrets,
    pub authority: Option<Authority>,
    pub role: Role,
    /// Her seal must be written again (it had no secrets, or no authority yet).
    pub reseal: bool,
}

/// At unlock: check the user's own secrets (from her seal) against the store,
/// make her key pairs if her seal is from before them, and work out her role
/// from her grant. A store from before grants gets its authority at the first
/// unlock of an administrator, who signs everyone's role as it is then.
///
/// The authority her seal names is the one she was sealed with: a store whose
/// authority was replaced (or removed) since gives her no role but a
/// caseworker's, whatever its rows say. Audited as `RoleRefused`.
pub(crate) fn settle(conn: &Connection, session: &Session, extra: &[u8]) -> Result<Settled, StoreError> {
    let mut reseal = false;
    let mut tampered = false;
    let stored = users::authority(conn)?;
    let stored_bytes = stored.as_deref().and_then(|h| hex::decode(h).ok()).and_then(|b| <[u8; 32]>::try_from(b).ok());
    if stored.is_some() && stored_bytes.is_none() {
        tampered = true;
    }
    let me = match UserSecrets::from_bytes(extra)? {
        None => {
            reseal = true;
            UserSecrets::generate(stored_bytes)
        }
        Some(mut me) => {
            match (me.authority(), stored_bytes) {
                (None, Some(a)) => {
                    me.set_authority(a);
                    reseal = true;
                }
                (Some(mine), Some(a)) if mine != a && users::replaced_by_recovery(conn)? == Some(mine) => {
                    me.set_authority(a);
                    reseal = true;
                }
                (Some(mine), stored) if stored != Some(mine) => tampered = true,
                _ => {}
            }
            me
        }
    };
    let user = users::active_by_id(conn, &session.user_id)?.ok_or(StoreError::NoSuchUser(session.user_name.clone()))?;
    let tx = crate::database::write_tx(conn)?;
    match (&user.sign_key, &user.kx_key) {
        (Some(s), Some(k)) if *s == me.sign_key() && *k == me.kx_key() => {}
        (None, _) | (_, None) => users::set_keys(&tx, &user.id, &me.sign_key(), &me.kx_key())?,
        // Her row names keys other than those sealed to her: put there by hand.
        _ => tampered = true,
    }
    let mut authority = None;
    let mut me = me;
    if stored.is_none() && !tampered {
        let claimed = users::role_of_row(&tx, &user.id)?;
        if claimed == Role::Administrator {
            // A store from before grants: signed as it stands, by its first
            // administrator to unlock.
            let a = Authority::generate();
            users::set_authority(&tx, &a)?;
            for u in users::active(&tx)? {
                users::grant(&tx, &a, &u.id, users::role_of_row(&tx, &u.id)?, &user.id)?;
            }
            users::seal_authority(&tx, &user.id, &me.kx_key(), &a)?;
            me.set_authority(a.public());
            reseal = true;
            authority = Some(a);
        }
    }
    let now = users::active_by_id(&tx, &user.id)?.ok_or(StoreError::NoSuchUser(session.user_name.clone()))?;
    let role = if tampered { Role::Caseworker } else { now.role };
    if tampered || !now.signed {
        let claimed = now.claimed_role.unwrap_or(now.role);
        let detail = serde_json::json!({ "user": now.id, "role": claimed.code(), "authority_changed": tampered });
        audit::append(&tx, &session.device_id, Some(&now.id), Action::RoleRefused, None, detail, None)?;
    }
    if role == Role::Administrator && authority.is_none() {
        authority = users::open_authority(&tx, &user.id, &me)?;
    }
    if let Some(a) = &authority {
        certify(&tx, a, &user.id)?;
    }
    tx.commit()?;
    Ok(Settled { me, authority, role, reseal })
}

/// At a recovery: the authority from the recovery seal, put back if the store's
/// was replaced or removed since. A recovery seal from before grants holds
/// none: a new authority then signs each user's role as it verifies now (and
/// the recovery seal must be written again with it: the `bool`), and the one it
/// replaces is noted, so that seals naming it take the new one. (That note is a
/// row like any other: someone with the data key and code of her own could
/// write it too. It exists only for recovery keys made before signed roles;
/// renewing the recovery key once makes it unneeded.) Either way
/// every administrator gets the authority sealed to her again.
pub(crate) fn restore_authority(conn: &Connection, extra: &[u8], by: &str) -> Result<(Authority, bool), StoreError> {
    let (authority, fresh) = match extra.len() {
        0 => {
            let roles: Vec<(String, Role)> = users::active(conn)?.into_iter().map(|u| (u.id, u.role)).collect();
            let a = Authority::generate();
            // The users' seals name the authority this one replaces: each takes
            // the new one at her next unlock (see `settle`).
            if let Some(old) = users::authority(conn)? {
                users::set_replaced_by_recovery(conn, &old)?;
            }
            users::set_authority(conn, &a)?;
            for (id, role) in roles {
                users::grant(conn, &a, &id, role, by)?;
            }
            (a, true)
        }
        _ => {
            let a = Authority::from_bytes(extra.get(..32).unwrap_or(extra))
                .ok_or_else(|| crate::database::DatabaseError::KeyFile("recovery seal".into()))?;
            if users::authority(conn)?.as_deref() != Some(a.public_hex().as_str()) {
                users::set_authority(conn, &a)?;
            }
            (a, false)
        }
    };
    users::drop_all_authority_seals(conn)?;
    Ok((authority, fresh))
}

/// What an administrator's unlock puts right: grants signed before their
/// holders had key pairs are signed again with them, and administrators who
/// have key pairs get the authority sealed to them.
pub(crate) fn certify(conn: &Connection, authority: &Authority, by: &str) -> Result<(), StoreError> {
    for u in users::active(conn)? {
        if u.keys_pending {
            users::grant(conn, authority, &u.id, u.role, by)?;
        }
        if u.signed && u.role == Role::Administrator && !users::has_authority_seal(conn, &u.id)? {
            if let Some(kx) = &u.kx_key {
                users::seal_authority(conn, &u.id, kx, authority)?;
            }
        }
    }
    Ok(())
}

impl Store {
    /// The authority, to sign a grant: only an administrator whose own grant
    /// verifies holds it.
    pub(super) fn authority(&self) -> Result<&Authority, StoreError> {
        self.require(Role::Administrator)?;
        self.authority.as_ref().ok_or(StoreError::NoAuthority)
    }

    /// Refuse unless the current user has at least `role`.
    pub fn require(&self, role: Role) -> Result<(), StoreError> {
        if self.session.role >= role {
            Ok(())
        } else {
            Err(StoreError::RoleRequired(role))
        }
    }

    /// Everyone who can unlock this store, in the order they were added.
    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        Ok(users::active(&self.conn)?)
    }

    /// The organisation's users on its other laptops, as sync brought their
    /// signed grants: name and the role each proves (removed ones left out).
    pub fn members_elsewhere(&self) -> Result<Vec<(String, Role)>, StoreError> {
        let Some(authority) = users::authority(&self.conn)? else { return Ok(Vec::new()) };
        let members = users::members(&self.conn)?.into_iter().filter(|m| m.removed.is_none());
        Ok(members.filter_map(|m| Some((m.verified_role(&authority)?, m)).map(|(r, m)| (m.name, r))).collect())
    }

    fn user_named(&self, name: &str) -> Result<User, StoreError> {
        users::active_by_name(&self.conn, name)?.ok_or_else(|| StoreError::NoSuchUser(name.trim().to_string()))
    }

    fn key_file(&self) -> Result<KeyFile, StoreError> {
        Ok(KeyFile::read(&self.dir.join(KEY_FILE))?)
    }

    /// Add a user who will unlock with `passphrase` (administrators).
    pub fn add_user(&mut self, name: &str, role: Role, passphrase: &str) -> Result<User, StoreError> {
        self.require(Role::Administrator)?;
        let name = name.trim();
        let mut issues = Vec::new();
        if name.is_empty() {
            issues.push(Issue::new("name", FieldError::Required));
        } else if name.chars().count() > TEXT_MAX {
            issues.push(Issue::new("name", FieldError::TooLong { max: TEXT_MAX }));
        } else if self.user_named(name).is_ok() {
            issues.push(Issue::new("name", FieldError::NameTaken));
        }
        if let Err(e) = check_passphrase(passphrase) {
            issues.extend(e.0);
        }
        if !issues.is_empty() {
            return Err(ValidationErrors(issues).into());
        }
        let authority = self.authority()?;
        let mut kf = self.key_file()?;
        let secrets = UserSecrets::generate(Some(authority.public()));
        let user = User {
            id: crate::database::new_id(),
            name: name.to_string(),
            role,
            created_at: now_utc(),
            signed: true,
            claimed_role: None,
            keys_pending: false,
            sign_key: Some(secrets.sign_key()),
            kx_key: Some(secrets.kx_key()),
        };
        check_unique(&kf, &user.id, passphrase)?;
        let wrapped = seal(&self.key, &secrets, &user.id, passphrase, self.kdf)?;
        // The user's row first: a key without a row could never unlock (and a row
        // without a key is mended by setting a passphrase).
        let tx = crate::database::write_tx(&self.conn)?;
        users::insert(&tx, &user)?;
        users::grant(&tx, authority, &user.id, role, &self.session.user_id)?;
        if role == Role::Administrator {
            users::seal_authority(&tx, &user.id, &secrets.kx_key(), authority)?;
        }
        let detail = json!({ "user": user.id, "role": role.code() });
        audit::append(
            &tx,
            &self.session.device_id,
            Some(&self.session.user_id),
            Action::UserAdded,
            None,
            detail,
            None,
        )?;
        tx.commit()?;
        kf.keys.push(wrapped);
        kf.write(&self.dir.join(KEY_FILE))?;
        Ok(user)
    }

    fn administrators(&self) -> Result<usize, StoreError> {
        Ok(self.users()?.iter().filter(|u| u.role == Role::Administrator).count())
    }

    /// Remove a user: their sealed key goes, so their passphrase opens nothing any
    /// more. Their id stays on the cases and audit entries they wrote.
    pub fn remove_user(&mut self, name: &str) -> Result<(), StoreError> {
        self.require(Role::Administrator)?;
        let user = self.user_named(name)?;
        if user.id == self.session.user_id {
            return Err(StoreError::CannotRemoveSelf);
        }
        if user.role == Role::Administrator && self.administrators()? <= 1 {
            return Err(StoreError::LastAdministrator);
        }
        let authority = self.authority()?;
        let tx = crate::database::write_tx(&self.conn)?;
        users::remove(&tx, authority, &user.id, &self.session.user_id)?;
        let detail = json!({ "user": user.id });
        audit::append(
            &tx,
            &self.session.device_id,
            Some(&self.session.user_id),
            Action::UserRemoved,
            None,
            detail,
            None,
        )?;
        tx.commit()?;
        let mut kf = self.key_file()?;
        kf.keys.retain(|w| w.user_id != user.id);
        kf.write(&self.dir.join(KEY_FILE))?;
        Ok(())
    }

    /// Change a user's role (administrators). The last administrator stays one.
    pub fn set_role(&mut self, name: &str, role: Role) -> Result<(), StoreError> {
        self.require(Role::Administrator)?;
        let user = self.user_named(name)?;
        if user.role == Role::Administrator && role != Role::Administrator && self.administrators()? <= 1 {
            return Err(StoreError::LastAdministrator);
        }
        let authority = self.authority()?;
        let tx = crate::database::write_tx(&self.conn)?;
        users::grant(&tx, authority, &user.id, role, &self.session.user_id)?;
        match (&user.kx_key, role) {
            (Some(kx), Role::Administrator) => users::seal_authority(&tx, &user.id, kx, authority)?,
            // Promoted before she has key pairs: sealed at an administrator's
            // unlock after hers.
            (None, Role::Administrator) => {}
            _ => users::drop_authority_seal(&tx, &user.id)?,
        }
        let detail = json!({ "user": user.id, "role": role.code() });
        audit::append(
            &tx,
            &self.session.device_id,
            Some(&self.session.user_id),
            Action::RoleChanged,
            None,
            detail,
            None,
        )?;
        tx.commit()?;
        if user.id == self.session.user_id {
            self.session.role = role;
            if role != Role::Administrator {
                self.authority = None;
            }
        }
        Ok(())
    }

    /// Set a new passphrase: one's own (`name` None or one's own name), or anyone's
    /// for an administrator. Only that user's sealed key changes.
    pub fn set_passphrase(&mut self, name: Option<&str>, passphrase: &str) -> Result<(), StoreError> {
        let user = match name.map(str::trim).filter(|n| !n.is_empty()) {
            Some(n) => Some(self.user_named(n)?).filter(|u| u.id != self.session.user_id),
            None => None,
        };
        check_passphrase(passphrase)?;
        let user_id = user.as_ref().map_or_else(|| self.session.user_id.clone(), |u| u.id.clone());
        let mut kf = self.key_file()?;
        check_unique(&kf, &user_id, passphrase)?;
        let tx = crate::database::write_tx(&self.conn)?;
        let wrapped = match &user {
            None => seal(&self.key, &self.me, &user_id, passphrase, self.kdf)?,
            // Someone else's secrets are sealed under a passphrase this
            // administrator does not know: she gets new key pairs, signed now.
            Some(u) => {
                let authority = self.authority()?;
                let secrets = UserSecrets::generate(Some(authority.public()));
                users::set_keys(&tx, &u.id, &secrets.sign_key(), &secrets.kx_key())?;
                users::grant(&tx, authority, &u.id, u.role, &self.session.user_id)?;
                if u.role == Role::Administrator {
                    users::seal_authority(&tx, &u.id, &secrets.kx_key(), authority)?;
                }
                seal(&self.key, &secrets, &u.id, passphrase, self.kdf)?
            }
        };
        let detail = json!({ "user": user_id });
        let me = &self.session.user_id;
        audit::append(&tx, &self.session.device_id, Some(me), Action::PassphraseChanged, None, detail, None)?;
        // The rows first: a seal whose keys no row names would lock its user out.
        tx.commit()?;
        kf.keys.retain(|w| w.user_id != user_id);
        kf.keys.push(wrapped);
        kf.write(&self.dir.join(KEY_FILE))?;
        Ok(())
    }

    /// A new recovery key (administrators), to show once: the old one stops working.
    /// For a lost or exposed key, and for stores set up before recovery keys existed.
    pub fn renew_recovery_key(&mut self) -> Result<zeroize::Zeroizing<String>, StoreError> {
        self.require(Role::Administrator)?;
        let key = keys::new_recovery_key();
        let recovery_kx = x25519_dalek::StaticSecret::random_from_rng(rand::rngs::OsRng);
        let mut kf = self.key_file()?;
        kf.recovery = Some(recovery_seal(&self.key, self.authority.as_ref(), Some(&recovery_kx), &key, self.kdf)?);
        kf.write(&self.dir.join(KEY_FILE))?;
        let tx = crate::database::write_tx(&self.conn)?;
        crate::repositories::restricted::set_recovery_kx(&tx, &recovery_kx)?;
        let me = Some(self.session.user_id.as_str());
        audit::append(&tx, &self.session.device_id, me, Action::RecoveryKeyRenewed, None, json!({}), None)?;
        tx.commit()?;
        // The restricted cases' keys, sealed to the new recovery key.
        self.seal_restricted()?;
        Ok(key)
    }

    /// The name of a user by id (for "assigned to" and note authors), removed or not.
    pub fn user_name(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(users::name_of(&self.conn, id)?)
    }
}
