//! Cases, notes and drafts for the person unlocked: who may open, assign and
//! restrict a case, validation and consent before a save, and the audit trail,
//! around the SQL of [`crate::repositories::cases`].

use super::{CaseRights, Store, StoreError, Thing};
use crate::database::keys::RestrictedKey;
use crate::database::{new_id, now_utc};
use crate::intake::{self, FieldError, Issue, ValidationErrors};
use crate::repositories::audit::{self, Action};
use crate::repositories::cases::*;
use crate::repositories::drafts::{self, DraftSummary};
use crate::repositories::restricted::{self, Keys, Opener};
use crate::repositories::users::Role;
use chrono::NaiveDate;
use serde_json::{json, Map, Value};

impl Store {
    fn today(&self) -> NaiveDate {
        today()
    }

    /// Save a new intake. Validates, assigns id, case number and timestamps, writes
    /// the case, its notes and its search entry, and removes the draft it came from:
    /// all in one transaction.
    pub fn create_case(&mut self, case: Value, draft_id: Option<&str>) -> Result<Value, StoreError> {
        let mut case = case;
        // The form never sets these; refuse to let it pretend to.
        if let Some(m) = case.as_object_mut() {
            for k in ["id", "case_number", "created_at", "updated_at"] {
                m.remove(k);
            }
            // A new intake is assigned to whoever records it; only supervisors assign
            // it to someone else.
            let me = Value::from(self.session.user_id.clone());
            let assigned = m.entry("assigned_to").or_insert_with(|| me.clone());
            if *assigned != me && self.session.role < Role::Supervisor {
                return Err(ValidationErrors(vec![Issue::new("assigned_to", FieldError::SupervisorOnly)]).into());
            }
        }
        stamp_consents(&mut case, None, &self.session.user_id);
        crate::consent::check_new_referrals(&case, None, self.today())?;
        let mut prepared = intake::prepare(case, self.today())?;
        let now = now_utc();
        let tx = crate::database::write_tx(&self.conn)?;
        let key = self.new_case_key(&tx, &mut prepared)?;
        let sealing = Sealing { open: &Keys::NONE, seal: key.as_ref(), follows: Follows::Row };
        let saved = insert_case(&tx, &self.session, prepared, &now, &sealing, None)?;
        if let Some(d) = draft_id {
            drafts::remove_saved(&tx, d)?;
        }
        tx.commit()?;
        match key {
            // What was written is sealed: read it back as its people see it.
            Some(_) => self.load_case(CaseKey::Id, saved.get("id").and_then(Value::as_str).unwrap_or_default()),
            None => Ok(saved),
        }
    }

    fn open_draft(&self, id: &str, stored: Value) -> Option<Value> {
        restricted::open_draft(id, stored, &self.session.user_id, self.me.kx())
    }

    /// The person unlocked, as something is sealed to her.
    pub(crate) fn me_as_recipient(&self) -> restricted::Recipient {
        restricted::Recipient { user_id: self.session.user_id.clone(), kx_key: self.me.kx_key() }
    }

    /// The person unlocked, as she opens sealed values.
    pub(crate) fn opener(&self) -> Opener<'_> {
        Opener { user_id: &self.session.user_id, kx: self.me.kx() }
    }

    /// The keys of a restricted case that this user holds.
    pub(crate) fn case_keys(&self, id: &str) -> Result<Keys, StoreError> {
        Ok(self.opener().keys(&self.conn, id)?)
    }

    /// A new key for a restricted case, sealed to everyone entitled to open it.
    /// Refused when that would not include this user: a role not signed here yet
    /// would otherwise seal the case to no one who can check it.
    fn rekey(
        &self,
        tx: &rusqlite::Connection,
        id: &str,
        assigned_to: Option<&str>,
    ) -> Result<RestrictedKey, StoreError> {
        let to = restricted::entitled(tx, assigned_to)?;
        if !to.iter().any(|r| r.user_id == self.session.user_id) {
            return Err(StoreError::CannotSeal);
        }
        Ok(restricted::rekey(tx, self.session.author(), id, &to)?)
    }

    /// A case about to be written for the first time (an intake, an import): if
    /// it is restricted, its id and a key for it.
    pub(crate) fn new_case_key(
        &self,
        tx: &rusqlite::Connection,
        case: &mut Value,
    ) -> Result<Option<RestrictedKey>, StoreError> {
        if !restricted::is_restricted(case) {
            return Ok(None);
        }
        let given = case.get("id").and_then(Value::as_str).filter(|s| uuid::Uuid::parse_str(s).is_ok());
        let id = match given {
            // A case already here is refused as a duplicate: its key is not touched.
            Some(id) if stored(tx, id)?.is_some() => return Ok(None),
            Some(id) => id.to_string(),
            None => new_id(),
        };
        case["id"] = json!(id);
        let assigned = case.get("assigned_to").and_then(Value::as_str).map(str::to_string);
        Ok(Some(self.rekey(tx, &id, assigned.as_deref())?))
    }

    /// Put right what this user can of the restricted cases she may open, at
    /// unlock and after a sync:
    /// - their current key sealed to everyone entitled who lacks it (a supervisor
    ///   added or met by sync, a key pair made new by a recovery, a new recovery key);
    /// - personal values in the clear sealed: a store from before they were, or
    ///   values written on a laptop that had not heard of the restriction yet. An
    ///   ordinary write, so the plaintext changes are blanked here and on every
    ///   laptop that takes it.
    ///
    /// Returns how many cases were written.
    pub(crate) fn seal_restricted(&mut self) -> Result<usize, StoreError> {
        let mut written = 0;
        let people = restricted::Entitled::load(&self.conn)?;
        for (id, assigned) in restricted_cases(&self.conn)? {
            if !self.may_open(true, assigned.as_deref()) {
                continue;
            }
            let current = crate::changelog::winners(&crate::changelog::load(&self.conn, crate::changelog::CASE, &id)?);
            let in_clear = current.iter().any(|(path, v)| restricted::in_clear(path, v));
            let to = people.to(assigned.as_deref());
            // Read first, opening nothing: an unlock with nothing to put right
            // writes nothing.
            if !in_clear && !restricted::lacks(&self.conn, &id, &to)? {
                continue;
            }
            let keys = self.case_keys(&id)?;
            // Someone lacks the key, but not from this user, who does not hold it.
            if !in_clear && keys.current().is_none() {
                continue;
            }
            let tx = crate::database::write_tx(&self.conn)?;
            let mut wrote = 0;
            if let Some(key) = keys.current() {
                wrote += restricted::grant(&tx, self.session.author(), &id, &[key], &to)?;
            }
            if in_clear {
                let fresh = match keys.current() {
                    Some(_) => None,
                    // Her role not signed here yet: left for someone who can seal it.
                    None => match self.rekey(&tx, &id, assigned.as_deref()) {
                        Ok(k) => Some(k),
                        Err(StoreError::CannotSeal) => continue,
                        Err(e) => return Err(e),
                    },
                };
                let Some(stored) = stored(&tx, &id)? else { continue };
                let data = stored.data.as_object().cloned().unwrap_or_default();
                // The row is rebuilt from the log just after.
                let sealing =
                    Sealing { open: &keys, seal: fresh.as_ref().or(keys.current()), follows: Follows::Nothing };
                log_case(&tx, &self.session, &id, &data, &[], &[], &sealing)?;
                rebuild(&tx, &id)?;
                let me = Some(self.session.user_id.as_str());
                audit::append(
                    &tx,
                    &self.session.device_id,
                    me,
                    Action::Update,
                    Some(&id),
                    json!({ "sealed": true }),
                    None,
                )?;
                wrote += 1;
            }
            if wrote > 0 {
                tx.commit()?;
                written += 1;
            }
        }
        if written > 0 {
            crate::database::fold_wal(&self.conn)?;
        }
        Ok(written)
    }

    /// How a write of a case that is stored with `keys` treats its personal values:
    /// a new key when it becomes restricted, changes hands, or this user holds no
    /// current key; the seals withdrawn when it is no longer restricted.
    fn write_key(
        &self,
        tx: &rusqlite::Connection,
        id: &str,
        keys: &Keys,
        before: (bool, Option<&str>),
        after: (bool, Option<&str>),
    ) -> Result<Option<RestrictedKey>, StoreError> {
        match (before.0, after.0) {
            (_, false) => {
                if before.0 {
                    restricted::withdraw(tx, self.session.author(), id)?;
                }
                Ok(None)
            }
            (true, true) if before.1 == after.1 && keys.current().is_some() => Ok(None),
            _ => Ok(Some(self.rekey(tx, id, after.1)?)),
        }
    }

    /// Replace a case's fields with `case` (the whole form). Notes already saved stay
    /// as they are; notes without an id are appended. Case number, id and creation
    /// time never change.
    pub fn update_case(&mut self, id: &str, case: Value, draft_id: Option<&str>) -> Result<Value, StoreError> {
        let existing = self.load_case(CaseKey::Id, id)?;
        self.check_open(&existing)?;
        let mut case = case;
        let new_notes: Vec<Value> = match case.as_object_mut().and_then(|m| m.remove("notes")) {
            Some(Value::Array(ns)) => ns.into_iter().filter(|n| n.get("id").is_none()).collect(),
            _ => Vec::new(),
        };
        if let Some(m) = case.as_object_mut() {
            for k in ["id", "case_number", "created_at", "updated_at", "format"] {
                m.remove(k);
            }
            // The form does not carry the assignment, the restriction or the
            // referrals; an edit keeps them.
            for k in ["assigned_to", "restricted", "referrals"] {
                if let (false, Some(a)) = (m.contains_key(k), existing.get(k)) {
                    m.insert(k.into(), a.clone());
                }
            }
            let rights = self.case_rights(&existing);
            if m.get("assigned_to") != existing.get("assigned_to") && !rights.assign {
                return Err(ValidationErrors(vec![Issue::new("assigned_to", FieldError::SupervisorOnly)]).into());
            }
            let restricted = |v: Option<&Value>| v.and_then(Value::as_bool).unwrap_or(false);
            if restricted(m.get("restricted")) != restricted(existing.get("restricted")) && !rights.restrict {
                return Err(ValidationErrors(vec![Issue::new("restricted", FieldError::SupervisorOnly)]).into());
            }
            if !new_notes.is_empty() {
                m.insert("notes".into(), Value::Array(new_notes));
            }
        }
        stamp_consents(&mut case, Some(&existing), &self.session.user_id);
        crate::consent::check_new_referrals(&case, Some(&existing), self.today())?;
        let prepared = intake::prepare(case, self.today())?;
        let row = to_row(prepared);
        let now = now_utc();
        let case_number = existing.get("case_number").and_then(Value::as_str).unwrap_or_default().to_string();
        let changed = changed_fields(&existing, &row.data);
        let tx = crate::database::write_tx(&self.conn)?;
        let keys = self.case_keys(id)?;
        let was = restricted::is_restricted(&existing);
        let before = (was, existing.get("assigned_to").and_then(Value::as_str));
        let fresh = self.write_key(&tx, id, &keys, before, (row.restricted, row.assigned_to.as_deref()))?;
        let seal = match (&fresh, row.restricted) {
            (Some(k), _) => Some(k),
            (None, true) => keys.current(),
            (None, false) => None,
        };
        let sealing = Sealing { open: &keys, seal, follows: Follows::Row };
        let (row, added_notes) = update(&tx, &self.session, id, row, &case_number, &now, &sealing)?;
        if let Some(d) = draft_id {
            drafts::remove_saved(&tx, d)?;
        }
        let detail = json!({ "fields": changed, "notes_added": added_notes });
        audit::append(
            &tx,
            &self.session.device_id,
            Some(&self.session.user_id),
            Action::Update,
            Some(id),
            detail,
            None,
        )?;
        tx.commit()?;
        // Someone who was removed from the case may not hold its words any longer:
        // the WAL still has the page images from before this save, so fold them into
        // the (securely deleting) database and empty it.
        if removes_anything(&existing, &row.data) {
            crate::database::fold_wal(&self.conn)?;
        }
        self.load_case(CaseKey::Id, id)
    }

    /// Append a note to a case.
    pub fn add_note(&mut self, case_id: &str, text: &str, language: Option<&str>) -> Result<Value, StoreError> {
        let mut note = Map::new();
        note.insert("text".into(), text.into());
        if let Some(l) = language.filter(|l| !l.is_empty()) {
            note.insert("language".into(), l.into());
        }
        // Validate the note with the same rules as the form, via a minimal case.
        let probe = serde_json::json!({ "people": [{ "role": "PotentialVictim" }], "notes": [note.clone()] });
        intake::validate(&probe, self.today())?;
        let now = now_utc();
        // Unchecked: the permission check below reads the store while it is open.
        let tx = crate::database::write_tx(&self.conn)?;
        let stored = stored(&tx, case_id)?.ok_or_else(|| StoreError::NotFound(Thing::Case, case_id.to_string()))?;
        self.check_open(&stored.data)?;
        let keys = self.case_keys(case_id)?;
        let restricted = restricted::is_restricted(&stored.data);
        let assigned = stored.data.get("assigned_to").and_then(Value::as_str);
        let fresh = self.write_key(&tx, case_id, &keys, (restricted, assigned), (restricted, assigned))?;
        let seal = fresh.as_ref().or(keys.current()).filter(|_| restricted);
        // A note leaves the row's data as it is: only the note and the stamps are
        // marked as written apart.
        let saved = append_note(
            &tx,
            &self.session,
            case_id,
            &stored,
            &note,
            &now,
            &Sealing { open: &keys, seal, follows: Follows::NotesAndStamps },
        )?;
        let me = Some(self.session.user_id.as_str());
        audit::append(&tx, &self.session.device_id, me, Action::AddNote, Some(case_id), json!({}), None)?;
        tx.commit()?;
        Ok(saved)
    }

    /// What the person unlocked may do with this case (the UI offers just that;
    /// every save checks it again).
    pub fn case_rights(&self, case: &Value) -> CaseRights {
        let supervisor = self.session.role >= Role::Supervisor;
        let mine = case.get("assigned_to").and_then(Value::as_str) == Some(self.session.user_id.as_str());
        // Restricting or opening up a case: its supervisors or its assigned user.
        CaseRights { restrict: supervisor || mine, assign: supervisor, resolve_conflicts: supervisor }
    }

    /// [`Store::case_rights`] of the case with this id, if this user may open it.
    pub fn case_rights_of(&self, id: &str) -> Result<CaseRights, StoreError> {
        // The row's fields are enough: no need to assemble its notes.
        let case = stored(&self.conn, id)?.ok_or_else(|| StoreError::NotFound(Thing::Case, id.to_string()))?;
        self.check_open(&case.data)?;
        Ok(self.case_rights(&case.data))
    }

    /// May this user open this case? Restricted cases: its assigned user and
    /// supervisors only.
    fn may_open(&self, restricted: bool, assigned_to: Option<&str>) -> bool {
        !restricted || self.session.role >= Role::Supervisor || assigned_to == Some(self.session.user_id.as_str())
    }

    pub(crate) fn check_open(&self, case: &Value) -> Result<(), StoreError> {
        let restricted = restricted::is_restricted(case);
        if self.may_open(restricted, case.get("assigned_to").and_then(Value::as_str)) {
            Ok(())
        } else {
            Err(StoreError::Restricted)
        }
    }

    /// A case by id or number, with no permission check and no audit entry: for the
    /// store's own use.
    pub(super) fn load_case(&self, key: CaseKey, value: &str) -> Result<Value, StoreError> {
        let mut case =
            load(&self.conn, key, value)?.ok_or_else(|| StoreError::NotFound(Thing::Case, value.to_string()))?;
        if restricted::is_restricted(&case) {
            // Opened with this user's keys; for anyone else it stays sealed (and
            // `check_open` refuses it before it is shown).
            let id = case.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
            let keys = self.case_keys(&id)?;
            if let Some(m) = case.as_object_mut() {
                keys.open_data(&id, m);
            }
            keys.open_notes(&self.conn, &id, &mut case)?;
        }
        Ok(case)
    }

    /// A case by id, for the core's own use (no permission check, no audit entry).
    pub(crate) fn load_case_unchecked(&self, id: &str) -> Result<Value, StoreError> {
        self.load_case(CaseKey::Id, id)
    }

    /// Open a case to read it, as case JSON: refused for a restricted case this user
    /// may not open, and recorded in the audit trail.
    pub fn get_case(&self, id: &str) -> Result<Value, StoreError> {
        self.view_case(CaseKey::Id, id)
    }

    /// The id of the case with this number (no permission needed: it reveals nothing).
    pub fn case_id(&self, case_number: &str) -> Result<String, StoreError> {
        id_of_number(&self.conn, case_number)?.ok_or_else(|| StoreError::NotFound(Thing::Case, case_number.to_string()))
    }

    pub fn get_case_by_number(&self, case_number: &str) -> Result<Value, StoreError> {
        self.view_case(CaseKey::Number, case_number)
    }

    fn view_case(&self, key: CaseKey, value: &str) -> Result<Value, StoreError> {
        let case = self.load_case(key, value)?;
        let id = case.get("id").and_then(Value::as_str).unwrap_or_default();
        if let Err(e) = self.check_open(&case) {
            // A refused look is worth knowing about too.
            self.record(Action::View, Some(id), json!({ "refused": true }))?;
            return Err(e);
        }
        // Entitled, but the case's key has not reached this laptop for her yet:
        // said so, rather than shown as sealed bytes.
        if restricted::holds_sealed(&case) {
            return Err(StoreError::NoCaseKey);
        }
        self.record(Action::View, Some(id), json!({}))?;
        Ok(case)
    }

    /// The case list, newest first, optionally searched and filtered by status.
    pub fn list_cases(&self, q: &ListQuery) -> Result<Vec<CaseSummary>, StoreError> {
        let sees_all = self.session.role >= Role::Supervisor;
        Ok(list(&self.conn, q, &self.opener(), sees_all)?)
    }

    /// Scripted corrections: `assignments` are `(path, value)` pairs such as
    /// `("status", "Closed")` or `("people.0.alias", "Rosa")`; an empty value clears
    /// the field. The result is validated like any save.
    pub fn set_fields(&mut self, case_number: &str, assignments: &[(String, String)]) -> Result<Value, StoreError> {
        let mut case = self.load_case(CaseKey::Number, case_number)?;
        self.check_open(&case)?;
        let id = case.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
        let mut issues = Vec::new();
        for (path, raw) in assignments {
            if let Err(i) = intake::assign(&mut case, path, raw) {
                issues.push(i);
            }
        }
        if !issues.is_empty() {
            return Err(ValidationErrors(issues).into());
        }
        self.update_case(&id, case, None)
    }

    /// Keep the form as it is now. Returns the draft's id (new when `id` is None).
    pub fn save_draft(&mut self, id: Option<&str>, case_id: Option<&str>, data: &Value) -> Result<String, StoreError> {
        let json = serde_json::to_string(data).map_err(StoreError::encode)?;
        if json.len() > drafts::DRAFT_MAX_BYTES {
            let e = FieldError::TooLong { max: drafts::DRAFT_MAX_BYTES };
            return Err(ValidationErrors(vec![Issue::new("", e)]).into());
        }
        let id = id.map(str::to_string).unwrap_or_else(new_id);
        // An unfinished edit of a restricted case is sealed like the case.
        let of_restricted = restricted::is_restricted;
        let restricted = of_restricted(data)
            || match case_id {
                Some(c) => stored(&self.conn, c)?.is_some_and(|s| of_restricted(&s.data)),
                None => false,
            };
        let json = match restricted {
            true => restricted::seal_draft(&self.conn, &id, &json, &self.me_as_recipient())?,
            false => json,
        };
        // Another user's draft id is never overwritten.
        if !drafts::save(&self.conn, &id, case_id, &json, &self.session.user_id)? {
            return Err(StoreError::NotFound(Thing::Draft, id));
        }
        Ok(id)
    }

    pub fn list_drafts(&self) -> Result<Vec<DraftSummary>, StoreError> {
        Ok(drafts::list(&self.conn, &self.session.user_id, &|id, v| self.open_draft(id, v))?)
    }

    pub fn get_draft(&self, id: &str) -> Result<Value, StoreError> {
        drafts::get(&self.conn, id, &self.session.user_id, &|id, v| self.open_draft(id, v))?
            .ok_or_else(|| StoreError::NotFound(Thing::Draft, id.to_string()))
    }

    pub fn delete_draft(&mut self, id: &str) -> Result<(), StoreError> {
        Ok(drafts::delete(&self.conn, id, &self.session.user_id)?)
    }

    /// A case with its personal details, for sharing outside the organisation (a
    /// referral packet, law enforcement): only with the survivor's matching,
    /// unexpired consent, and recorded in the audit trail either way.
    pub fn share_case(&self, id: &str, sharing: crate::consent::Sharing) -> Result<Value, StoreError> {
        let case = self.load_case(CaseKey::Id, id)?;
        self.check_open(&case)?;
        let consent_id = match crate::consent::check(&case, sharing, self.today()) {
            Ok(c) => c.get("id").cloned().unwrap_or(Value::Null),
            Err(e) => {
                self.record(Action::Export, Some(id), json!({ "scope": sharing.scope(), "refused": true }))?;
                return Err(e.into());
            }
        };
        self.record(Action::Export, Some(id), json!({ "scope": sharing.scope(), "consent": consent_id }))?;
        Ok(case)
    }

    /// Check a case without saving it (for validation as the user types).
    pub fn check_case(&self, case: Value) -> (Value, Vec<Issue>) {
        intake::check(case, self.today())
    }
}
