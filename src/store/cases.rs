//! Cases, notes and drafts for the person unlocked: who may open, assign and
//! restrict a case, validation and consent before a save, and the audit trail,
//! around the SQL of [`crate::repositories::cases`].

use super::{Store, StoreError, Thing};
use crate::database::{new_id, now_utc};
use crate::intake::{self, FieldError, Issue, ValidationErrors};
use crate::repositories::audit::{self, Action};
use crate::repositories::cases::*;
use crate::repositories::users::Role;
use chrono::NaiveDate;
use rusqlite::{params, OptionalExtension};
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
        let prepared = intake::prepare(case, self.today())?;
        let now = now_utc();
        let tx = self.conn.transaction()?;
        let saved = insert_case(&tx, &self.session, prepared, &now)?;
        if let Some(d) = draft_id {
            tx.execute("DELETE FROM drafts WHERE id = ?1", [d])?;
        }
        tx.commit()?;
        Ok(saved)
    }

    /// Replace a case's fields with `case` (the whole form). Notes already saved stay
    /// as they are; notes without an id are appended. Case number, id and creation
    /// time never change.
    pub fn update_case(&mut self, id: &str, case: Value, draft_id: Option<&str>) -> Result<Value, StoreError> {
        let existing = self.load_case("id", id)?;
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
            let supervisor = self.session.role >= Role::Supervisor;
            if m.get("assigned_to") != existing.get("assigned_to") && !supervisor {
                return Err(ValidationErrors(vec![Issue::new("assigned_to", FieldError::SupervisorOnly)]).into());
            }
            // Restricting or opening up a case: its supervisors or its assigned user.
            let restricted = |v: Option<&Value>| v.and_then(Value::as_bool).unwrap_or(false);
            let mine = existing.get("assigned_to").and_then(Value::as_str) == Some(self.session.user_id.as_str());
            if restricted(m.get("restricted")) != restricted(existing.get("restricted")) && !(supervisor || mine) {
                return Err(ValidationErrors(vec![Issue::new("restricted", FieldError::SupervisorOnly)]).into());
            }
            if !new_notes.is_empty() {
                m.insert("notes".into(), Value::Array(new_notes));
            }
        }
        stamp_consents(&mut case, Some(&existing), &self.session.user_id);
        crate::consent::check_new_referrals(&case, Some(&existing), self.today())?;
        let prepared = intake::prepare(case, self.today())?;
        let mut row = to_row(prepared);
        let now = now_utc();
        let case_number = existing.get("case_number").and_then(Value::as_str).unwrap_or_default().to_string();
        let changed = changed_fields(&existing, &row.data);
        let tx = self.conn.transaction()?;
        let seq: i64 = tx.query_row("SELECT seq FROM cases WHERE id = ?1", [id], |r| r.get(0))?;
        let notes: Vec<Value> = std::mem::take(&mut row.notes)
            .iter()
            .filter_map(Value::as_object)
            .map(|n| note_fields(n, &self.session, &now))
            .collect();
        let meta = [("updated_at", Value::from(now.clone())), ("updated_by", self.session.user_id.clone().into())];
        let row = reshape(id, log_case(&tx, &self.session, id, &row.data, &meta, &notes)?);
        let data = serde_json::to_string(&row.data).map_err(StoreError::encode)?;
        update_row(&tx, id, &row, &data, &now, &self.session.user_id)?;
        refresh_facts(&tx, seq, &data)?;
        let added_notes = notes.len();
        for n in notes.iter().filter_map(Value::as_object) {
            insert_note(&tx, id, n)?;
        }
        refresh_fts(&tx, seq, &case_number, &row.names, &row.places, &notes_text(&tx, seq)?)?;
        if let Some(d) = draft_id {
            tx.execute("DELETE FROM drafts WHERE id = ?1", [d])?;
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
            self.conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
        }
        self.load_case("id", id)
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
        let tx = self.conn.unchecked_transaction()?;
        let row: Option<(i64, String, String)> = tx
            .query_row("SELECT seq, case_number, data FROM cases WHERE id = ?1", [case_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let (seq, case_number, data) = row.ok_or_else(|| StoreError::NotFound(Thing::Case, case_id.to_string()))?;
        let data: Value =
            serde_json::from_str(&data).map_err(|_| crate::database::DatabaseError::Damaged { table: "cases" })?;
        self.check_open(&data)?;
        let saved = note_fields(&note, &self.session, &now);
        if let Some(n) = saved.as_object() {
            insert_note(&tx, case_id, n)?;
        }
        let meta = [("updated_at", Value::from(now.clone())), ("updated_by", self.session.user_id.clone().into())];
        let current = data.as_object().cloned().unwrap_or_default();
        log_case(&tx, &self.session, case_id, &current, &meta, std::slice::from_ref(&saved))?;
        tx.execute(
            "UPDATE cases SET updated_at = ?2, updated_by = ?3 WHERE id = ?1",
            params![case_id, now, self.session.user_id],
        )?;
        let (names, places) = fts_columns(&data);
        refresh_fts(&tx, seq, &case_number, &names, &places, &notes_text(&tx, seq)?)?;
        let me = Some(self.session.user_id.as_str());
        audit::append(&tx, &self.session.device_id, me, Action::AddNote, Some(case_id), json!({}), None)?;
        tx.commit()?;
        Ok(saved)
    }

    fn notes_of(&self, case_id: &str) -> Result<Vec<Value>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, text, language, author, created_at FROM notes WHERE case_id = ?1 ORDER BY created_at, id",
        )?;
        let notes = st
            .query_map([case_id], |r| Ok(note_json(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(notes)
    }

    /// May this user open this case? Restricted cases: its assigned user and
    /// supervisors only.
    fn may_open(&self, restricted: bool, assigned_to: Option<&str>) -> bool {
        !restricted || self.session.role >= Role::Supervisor || assigned_to == Some(self.session.user_id.as_str())
    }

    pub(crate) fn check_open(&self, case: &Value) -> Result<(), StoreError> {
        let restricted = case.get("restricted").and_then(Value::as_bool).unwrap_or(false);
        if self.may_open(restricted, case.get("assigned_to").and_then(Value::as_str)) {
            Ok(())
        } else {
            Err(StoreError::Restricted)
        }
    }

    /// A case by id or number, with no permission check and no audit entry: for the
    /// store's own use.
    pub(super) fn load_case(&self, column: &str, value: &str) -> Result<Value, StoreError> {
        let sql = format!("SELECT id, case_number, created_at, updated_at, data FROM cases WHERE {column} = ?1");
        let row: Option<(String, String, String, String, String)> = self
            .conn
            .query_row(&sql, [value], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .optional()?;
        let (id, number, created, updated, data) =
            row.ok_or_else(|| StoreError::NotFound(Thing::Case, value.to_string()))?;
        let data: Map<String, Value> =
            serde_json::from_str(&data).map_err(|_| crate::database::DatabaseError::Damaged { table: "cases" })?;
        let notes = self.notes_of(&id)?;
        Ok(assemble(id, number, data, notes, created, updated))
    }

    /// A case by id, for the core's own use (no permission check, no audit entry).
    pub(crate) fn load_case_unchecked(&self, id: &str) -> Result<Value, StoreError> {
        self.load_case("id", id)
    }

    /// Open a case to read it, as case JSON: refused for a restricted case this user
    /// may not open, and recorded in the audit trail.
    pub fn get_case(&self, id: &str) -> Result<Value, StoreError> {
        self.view_case("id", id)
    }

    /// The id of the case with this number (no permission needed: it reveals nothing).
    pub fn case_id(&self, case_number: &str) -> Result<String, StoreError> {
        self.conn
            .query_row("SELECT id FROM cases WHERE case_number = ?1", [case_number.trim().to_uppercase()], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::NotFound(Thing::Case, case_number.to_string()))
    }

    pub fn get_case_by_number(&self, case_number: &str) -> Result<Value, StoreError> {
        self.view_case("case_number", case_number)
    }

    fn view_case(&self, column: &str, value: &str) -> Result<Value, StoreError> {
        let case = self.load_case(column, value)?;
        let id = case.get("id").and_then(Value::as_str).unwrap_or_default();
        if let Err(e) = self.check_open(&case) {
            // A refused look is worth knowing about too.
            self.record(Action::View, Some(id), json!({ "refused": true }))?;
            return Err(e);
        }
        self.record(Action::View, Some(id), json!({}))?;
        Ok(case)
    }

    /// The case list, newest first, optionally searched and filtered by status.
    pub fn list_cases(&self, q: &ListQuery) -> Result<Vec<CaseSummary>, StoreError> {
        let limit = q.limit.unwrap_or(100).min(LIST_LIMIT_MAX) as i64;
        let offset = q.offset.unwrap_or(0) as i64;
        let status = q.status.as_deref().filter(|s| !s.is_empty());
        // ?1 = this user, ?2 = may open every case.
        const COLS: &str = "c.id, c.case_number, c.alias, c.status, c.intake_date, c.primary_language, c.updated_at,
             c.restricted, (c.restricted = 0 OR ?2 OR c.assigned_to = ?1),
             EXISTS (SELECT 1 FROM unexported u WHERE u.case_id = c.id)";
        let me = self.session.user_id.as_str();
        let all = self.session.role >= Role::Supervisor;
        let rows = match (fts_query(&q.text), status) {
            // A search matches names and notes: cases this user may not open must not
            // even show up in it.
            (Some(m), st) => {
                let sql = format!(
                    "SELECT {COLS} FROM cases_fts f JOIN cases c ON c.seq = f.rowid
                     WHERE cases_fts MATCH ?3 AND (?4 IS NULL OR c.status = ?4)
                       AND (c.restricted = 0 OR ?2 OR c.assigned_to = ?1)
                     ORDER BY f.rowid DESC LIMIT ?5 OFFSET ?6"
                );
                let mut st_ = self.conn.prepare_cached(&sql)?;
                let rows =
                    st_.query_map(params![me, all, m, st, limit, offset], summary)?.collect::<Result<Vec<_>, _>>()?;
                rows
            }
            (None, Some(st)) => {
                let sql =
                    format!("SELECT {COLS} FROM cases c WHERE c.status = ?3 ORDER BY c.seq DESC LIMIT ?4 OFFSET ?5");
                let mut st_ = self.conn.prepare_cached(&sql)?;
                let rows =
                    st_.query_map(params![me, all, st, limit, offset], summary)?.collect::<Result<Vec<_>, _>>()?;
                rows
            }
            (None, None) => {
                let sql = format!("SELECT {COLS} FROM cases c ORDER BY c.seq DESC LIMIT ?3 OFFSET ?4");
                let mut st_ = self.conn.prepare_cached(&sql)?;
                let rows = st_.query_map(params![me, all, limit, offset], summary)?.collect::<Result<Vec<_>, _>>()?;
                rows
            }
        };
        Ok(rows)
    }

    /// Scripted corrections: `assignments` are `(path, value)` pairs such as
    /// `("status", "Closed")` or `("people.0.alias", "Rosa")`; an empty value clears
    /// the field. The result is validated like any save.
    pub fn set_fields(&mut self, case_number: &str, assignments: &[(String, String)]) -> Result<Value, StoreError> {
        let mut case = self.load_case("case_number", case_number)?;
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
        if json.len() > DRAFT_MAX_BYTES {
            let e = FieldError::TooLong { max: DRAFT_MAX_BYTES };
            return Err(ValidationErrors(vec![Issue::new("", e)]).into());
        }
        let id = id.map(str::to_string).unwrap_or_else(new_id);
        let now = now_utc();
        // Another user's draft id is never overwritten: the update matches nothing.
        // A draft from before there were users becomes the draft of whoever resumes it.
        let n = self.conn.execute(
            "INSERT INTO drafts (id, case_id, created_at, updated_at, data, user_id) VALUES (?1, ?2, ?3, ?3, ?4, ?5)
             ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, data = excluded.data,
                                            user_id = excluded.user_id
             WHERE drafts.user_id IS excluded.user_id OR drafts.user_id IS NULL",
            params![id, case_id, now, json, self.session.user_id],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(Thing::Draft, id));
        }
        Ok(id)
    }

    pub fn list_drafts(&self) -> Result<Vec<DraftSummary>, StoreError> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT id, case_id, updated_at, data FROM drafts WHERE {MY_DRAFT} ORDER BY updated_at DESC"
        ))?;
        let rows = st
            .query_map([&self.session.user_id], |r| {
                let data: String = r.get(3)?;
                let v: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                let alias =
                    intake::primary_person(&v).and_then(|p| p.get("alias")).and_then(Value::as_str).map(str::to_string);
                Ok(DraftSummary { id: r.get(0)?, case_id: r.get(1)?, alias, updated_at: r.get(2)? })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    pub fn get_draft(&self, id: &str) -> Result<Value, StoreError> {
        let data: String = self
            .conn
            .query_row(
                &format!("SELECT data FROM drafts WHERE id = ?2 AND {MY_DRAFT}"),
                [&self.session.user_id, id],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(Thing::Draft, id.to_string()))?;
        serde_json::from_str(&data).map_err(|_| crate::database::DatabaseError::Damaged { table: "drafts" }.into())
    }

    pub fn delete_draft(&mut self, id: &str) -> Result<(), StoreError> {
        self.conn.execute(&format!("DELETE FROM drafts WHERE id = ?2 AND {MY_DRAFT}"), [&self.session.user_id, id])?;
        Ok(())
    }

    /// A case with its personal details, for sharing outside the organisation (a
    /// referral packet, law enforcement): only with the survivor's matching,
    /// unexpired consent, and recorded in the audit trail either way.
    pub fn share_case(&self, id: &str, sharing: crate::consent::Sharing) -> Result<Value, StoreError> {
        let case = self.load_case("id", id)?;
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
