//! Users, roles and passphrases for the person unlocked (see
//! [`crate::repositories::users`] for the roles' rights).

use super::{Store, StoreError, PASSPHRASE_MIN};
use crate::database::keys::{self, KeyFile};
use crate::database::{now_utc, KEY_FILE};
use crate::form::TEXT_MAX;
use crate::intake::{FieldError, Issue, ValidationErrors};
use crate::repositories::audit::{self, Action};
use crate::repositories::users::{self, Role, User};

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

impl Store {
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
        let mut kf = self.key_file()?;
        let user = User { id: crate::database::new_id(), name: name.to_string(), role, created_at: now_utc() };
        check_unique(&kf, &user.id, passphrase)?;
        let wrapped = keys::wrap(&self.key, &user.id, passphrase, self.kdf)?;
        // The user's row first: a key without a row could never unlock (and a row
        // without a key is mended by setting a passphrase).
        let tx = crate::database::write_tx(&self.conn)?;
        users::insert(&tx, &user)?;
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
        let tx = crate::database::write_tx(&self.conn)?;
        users::remove(&tx, &user.id)?;
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
        let tx = crate::database::write_tx(&self.conn)?;
        users::set_role(&tx, &user.id, role)?;
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
        }
        Ok(())
    }

    /// Set a new passphrase: one's own (`name` None or one's own name), or anyone's
    /// for an administrator. Only that user's sealed key changes.
    pub fn set_passphrase(&mut self, name: Option<&str>, passphrase: &str) -> Result<(), StoreError> {
        let user_id = match name.map(str::trim).filter(|n| !n.is_empty()) {
            Some(n) => {
                let u = self.user_named(n)?;
                if u.id != self.session.user_id {
                    self.require(Role::Administrator)?;
                }
                u.id
            }
            None => self.session.user_id.clone(),
        };
        check_passphrase(passphrase)?;
        let mut kf = self.key_file()?;
        check_unique(&kf, &user_id, passphrase)?;
        let wrapped = keys::wrap(&self.key, &user_id, passphrase, self.kdf)?;
        kf.keys.retain(|w| w.user_id != user_id);
        kf.keys.push(wrapped);
        kf.write(&self.dir.join(KEY_FILE))?;
        let tx = crate::database::write_tx(&self.conn)?;
        let detail = json!({ "user": user_id });
        let me = &self.session.user_id;
        audit::append(&tx, &self.session.device_id, Some(me), Action::PassphraseChanged, None, detail, None)?;
        tx.commit()?;
        Ok(())
    }

    /// A new recovery key (administrators), to show once: the old one stops working.
    /// For a lost or exposed key, and for stores set up before recovery keys existed.
    pub fn renew_recovery_key(&mut self) -> Result<zeroize::Zeroizing<String>, StoreError> {
        self.require(Role::Administrator)?;
        let key = keys::new_recovery_key();
        let mut kf = self.key_file()?;
        kf.recovery = Some(keys::wrap(&self.key, keys::RECOVERY_ID, &key, self.kdf)?);
        kf.write(&self.dir.join(KEY_FILE))?;
        let tx = crate::database::write_tx(&self.conn)?;
        let me = Some(self.session.user_id.as_str());
        audit::append(&tx, &self.session.device_id, me, Action::RecoveryKeyRenewed, None, json!({}), None)?;
        tx.commit()?;
        Ok(key)
    }

    /// The name of a user by id (for "assigned to" and note authors), removed or not.
    pub fn user_name(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(users::name_of(&self.conn, id)?)
    }
}
