//! Sync for the person unlocked: writing and reading bundles (to a file or the
//! sync folder), the status, invitations, and conflicts to review, on the change
//! log and the bundles of [`crate::sync`].

use super::{Store, StoreError};
use crate::changelog::{self, flat, hlc};
use crate::database::{self, now_utc};
use crate::repositories::audit::{self, Action};
use crate::repositories::cases::{materialize, Merged};
use crate::repositories::users::Role;
use crate::sync::bundle::{self, Body, Header};
use crate::sync::folder::{FileResult, EXTENSION, FOLDER_KEY};
use crate::sync::*;
use rusqlite::params;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

impl Store {
    /// Write a bundle with every change (and audit entry) the laptops this one has
    /// heard from may not have yet; with `all`, every change it holds. `write` puts
    /// the bytes where they go; only once it succeeded do the cases stop saying
    /// "not yet exported". Any user may sync: the bundle is the organisation's own,
    /// sealed under its key.
    pub fn sync_export(
        &mut self,
        all: bool,
        write: impl FnOnce(&[u8]) -> Result<(), StoreError>,
    ) -> Result<ExportSummary, StoreError> {
        let me = self.session().device_id.clone();
        let conn = self.conn();
        let (org_id, key) = org::keys(conn)?;
        let floor_c = if all { None } else { floors(conn, &me, "has_changes")? };
        let floor_a = if all { None } else { floors(conn, &me, "has_audit")? };
        let mut body = Body { devices: devices(conn)?, ..Default::default() };
        let mut header = Header {
            format: bundle::FORMAT,
            org: org_id,
            device: me.clone(),
            device_code: self.session().device_code.clone(),
            created_at: now_utc(),
            changes: BTreeMap::new(),
            audit: BTreeMap::new(),
            has_changes: vector(conn, "changes")?,
            has_audit: vector(conn, "audit")?,
        };
        let (changes, ranges) =
            rows_above(conn, "changes", changelog::CHANGE_COLUMNS, floor_c.as_ref(), changelog::change, |c| c.seq)?;
        (body.changes, header.changes) = (changes, ranges);
        let (entries, ranges) =
            rows_above(conn, "audit", audit::ENTRY_COLUMNS, floor_a.as_ref(), audit::entry, |e| e.device_seq)?;
        (body.audit, header.audit) = (entries, ranges);
        // Changes after a gap are in the body (the ranges cover them) but not in
        // `has_changes`: the reader still knows to send what comes before them.
        let bytes = bundle::seal(&header, &body, &key).map_err(StoreError::from)?;
        let cases: BTreeSet<&str> = body.changes.iter().map(|c| c.id.as_str()).collect();
        let summary =
            ExportSummary { changes: body.changes.len(), audit_entries: body.audit.len(), cases: cases.len() };
        let own_last = header.has_changes.get(&me).copied().unwrap_or(0);
        write(&bytes)?;
        let tx = self.conn().unchecked_transaction()?;
        database::set_meta(&tx, EXPORTED_KEY, &own_last.to_string())?;
        tx.execute("DELETE FROM unexported", [])?;
        let detail = json!({ "changes": summary.changes, "cases": summary.cases });
        audit::append(&tx, &me, Some(&self.session().user_id), Action::SyncExport, None, detail, None)?;
        tx.commit()?;
        Ok(summary)
    }

    /// Read a bundle and merge it. Every check comes before anything is written, and
    /// everything is written in one transaction: a refused bundle leaves no trace
    /// but the message. `progress(done, total)` is called per case merged.
    pub fn sync_import(
        &mut self,
        bytes: &[u8],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<ImportSummary, StoreError> {
        let me = self.session().device_id.clone();
        let user = self.session().user_id.clone();
        let (org_id, key) = org::keys(self.conn())?;
        let (header, body) = bundle::open(bytes, &org_id, &key)?;
        let tx = self.conn().unchecked_transaction()?;
        if let Some(latest) = body.changes.iter().map(|c| c.hlc).max() {
            let now = changelog::read_hlc(&tx)?;
            changelog::write_hlc(&tx, hlc::observe(now, latest, hlc::physical_now()))?;
        }
        let mut summary = ImportSummary { device_code: header.device_code.clone(), ..Default::default() };
        let mut touched = BTreeSet::new();
        let mut touched_directory = BTreeSet::new();
        let mut purged_here: BTreeMap<String, bool> = BTreeMap::new();
        let mut changes = body.changes;
        changes.sort_by(|a, b| (a.hlc, &a.device, a.seq).cmp(&(b.hlc, &b.device, b.seq)));
        for mut c in changes {
            if c.entity == changelog::DIRECTORY {
                if changelog::insert(&tx, &c)? {
                    summary.changes += 1;
                    touched_directory.insert(c.id);
                }
                continue;
            }
            let gone = match purged_here.get(&c.id) {
                Some(g) => *g,
                None => {
                    let g: bool =
                        tx.query_row("SELECT EXISTS (SELECT 1 FROM purged_cases WHERE case_id = ?1)", [&c.id], |r| {
                            r.get(0)
                        })?;
                    purged_here.insert(c.id.clone(), g);
                    g
                }
            };
            // A purged case's words never come back; the change's identity is kept.
            if gone && c.field != flat::PURGED {
                c.value = None;
            }
            if changelog::insert(&tx, &c)? {
                summary.changes += 1;
                touched.insert(c.id);
            }
        }
        let total = touched.len();
        for (i, id) in touched.iter().enumerate() {
            let (merged, open) = materialize(&tx, id)?;
            match merged {
                Merged::New => summary.new_cases += 1,
                Merged::Updated => summary.updated_cases += 1,
                Merged::Removed => summary.removed_cases += 1,
                Merged::Unchanged | Merged::Waiting => {}
            }
            summary.conflicts += open.len();
            progress(i + 1, total);
        }
        for id in &touched_directory {
            crate::repositories::directory::materialize(&tx, id)?;
            summary.directory_entries += 1;
        }
        // Audit entries: each device's chain grows only at its end, so it stays
        // verifiable; later entries come again with the next bundle.
        let mut entries = body.audit;
        entries.sort_by(|a, b| (&a.device_id, a.device_seq).cmp(&(&b.device_id, b.device_seq)));
        for e in entries.iter().filter(|e| e.device_id != me) {
            let last: i64 = tx.query_row(
                "SELECT coalesce(max(device_seq), 0) FROM audit WHERE device_id = ?1",
                [&e.device_id],
                |r| r.get(0),
            )?;
            if e.device_seq == last + 1 {
                audit::insert(&tx, e)?;
            }
        }
        for (id, code) in &body.devices {
            tx.execute(
                "INSERT INTO sync_devices (device_id, device_code) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                [id, code],
            )?;
        }
        if header.device != me {
            let has_c = serde_json::to_string(&header.has_changes).map_err(StoreError::encode)?;
            let has_a = serde_json::to_string(&header.has_audit).map_err(StoreError::encode)?;
            tx.execute(
                "INSERT INTO sync_peers (device_id, device_code, has_changes, has_audit, bundle_written_at, imported_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (device_id) DO UPDATE SET device_code = excluded.device_code,
                    has_changes = excluded.has_changes, has_audit = excluded.has_audit,
                    bundle_written_at = excluded.bundle_written_at, imported_at = excluded.imported_at
                 WHERE excluded.bundle_written_at >= sync_peers.bundle_written_at",
                params![header.device, header.device_code, has_c, has_a, header.created_at, now_utc()],
            )?;
        }
        let detail = json!({
            "device": header.device, "changes": summary.changes, "new": summary.new_cases,
            "updated": summary.updated_cases, "removed": summary.removed_cases, "conflicts": summary.conflicts,
        });
        audit::append(&tx, &me, Some(&user), Action::SyncImport, None, detail, None)?;
        tx.commit()?;
        // Replaced values, removed people and purged cases were blanked: fold the WAL
        // into the (securely deleting) database so their words do not linger.
        self.conn().pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
        Ok(summary)
    }

    /// This laptop's sync state: what it has not exported, and each other laptop.
    pub fn sync_status(&self) -> Result<SyncStatus, StoreError> {
        let conn = self.conn();
        let me = &self.session().device_id;
        let exported: i64 = match database::meta(conn, EXPORTED_KEY)? {
            None => 0,
            Some(v) => v.parse().map_err(|_| database::DatabaseError::Damaged { table: "meta" })?,
        };
        let unexported: i64 = conn.query_row(
            "SELECT count(*) FROM changes WHERE device_id = ?1 AND device_seq > ?2",
            params![me, exported],
            |r| r.get(0),
        )?;
        let mut st = conn.prepare(
            "SELECT device_id, device_code, bundle_written_at, imported_at FROM sync_peers ORDER BY device_code",
        )?;
        let rows = st
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut peers = Vec::new();
        for (id, code, written, imported) in rows {
            let held = changelog::contiguous(conn, "changes", &id)?;
            peers.push(Peer {
                device_code: code,
                bundle_written_at: written,
                imported_at: imported,
                changes_held: held,
            });
        }
        Ok(SyncStatus { device_code: self.session().device_code.clone(), unexported_changes: unexported, peers })
    }

    /// Has this case changed here since the last bundle was written?
    pub fn is_unexported(&self, case_id: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT EXISTS (SELECT 1 FROM unexported WHERE case_id = ?1)", [case_id], |r| r.get(0))?)
    }

    /// Ids of cases with changes made here and not yet written into a bundle.
    pub fn unexported_cases(&self) -> Result<BTreeSet<String>, StoreError> {
        let mut st = self.conn().prepare_cached("SELECT case_id FROM unexported")?;
        let ids = st.query_map([], |r| r.get(0))?.collect::<Result<BTreeSet<_>, _>>()?;
        Ok(ids)
    }

    fn conflicts_where(&self, case_id: Option<&str>) -> Result<Vec<Conflict>, StoreError> {
        let conn = self.conn();
        let codes = devices(conn)?;
        let mut st = conn.prepare(
            "SELECT o.entity_id, o.field, c.case_number, c.data FROM open_conflicts o JOIN cases c ON c.id = o.entity_id
             WHERE ?1 IS NULL OR o.entity_id = ?1 ORDER BY c.case_number, o.field",
        )?;
        let rows = st
            .query_map([case_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::new();
        for (id, field, number, data) in rows {
            let fields = changelog::load(conn, changelog::CASE, &id)?;
            let Some(state) = fields.get(&field) else { continue };
            let data: serde_json::Map<String, Value> = serde_json::from_str(&data).unwrap_or_default();
            if !state.is_conflict() {
                continue;
            }
            let values = state
                .heads()
                .into_iter()
                .filter_map(|c| {
                    Some(ConflictValue {
                        choice: format!("{}:{}", c.device, c.seq),
                        value: c.value.clone()?,
                        device_code: codes.get(&c.device).cloned().unwrap_or_else(|| c.device.clone()),
                        user: c.user_name.clone(),
                        at: hlc::to_rfc3339(c.hlc),
                    })
                })
                .collect::<Vec<_>>();
            if values.len() > 1 {
                out.push(Conflict {
                    case_id: id,
                    case_number: number,
                    path: flat::display_path(&field, &data),
                    field,
                    values,
                });
            }
        }
        Ok(out)
    }

    /// Every open conflict (supervisors).
    pub fn conflicts(&self) -> Result<Vec<Conflict>, StoreError> {
        self.require(Role::Supervisor)?;
        self.conflicts_where(None)
    }

    /// The open conflicts of one case, for whoever may open it.
    pub fn case_conflicts(&self, case_id: &str) -> Result<Vec<Conflict>, StoreError> {
        let case = self.load_case_unchecked(case_id)?;
        self.check_open(&case)?;
        self.conflicts_where(Some(case_id))
    }

    /// Settle a conflict (supervisors): keep one of its values or type a new one.
    /// The resolution is a change like any other, so it reaches every laptop.
    pub fn resolve_conflict(&mut self, case_id: &str, field: &str, how: &Resolution) -> Result<Value, StoreError> {
        self.require(Role::Supervisor)?;
        let conflict =
            self.conflicts_where(Some(case_id))?.into_iter().find(|c| c.field == field).ok_or(SyncError::NoConflict)?;
        let session = self.session().clone();
        let tx = self.conn().unchecked_transaction()?;
        let fields = changelog::load(&tx, changelog::CASE, case_id)?;
        let state = fields.get(field).ok_or(SyncError::NoConflict)?;
        let value = match how {
            Resolution::Keep(choice) => {
                conflict.values.iter().find(|v| v.choice == *choice).ok_or(SyncError::NoSuchChoice)?.value.clone()
            }
            Resolution::Value(raw) => {
                // Typed like `amparo set`, and checked like any save.
                let mut case = self.load_case_unchecked(case_id)?;
                crate::intake::assign(&mut case, &conflict.path, raw)
                    .map_err(|i| crate::intake::ValidationErrors(vec![i]))?;
                let prepared = crate::intake::prepare(case, crate::repositories::cases::today())?;
                let data = prepared.as_object().cloned().unwrap_or_default();
                flat::flatten(&data, &changelog::winners(&fields)).get(field).cloned().unwrap_or(Value::Null)
            }
        };
        let mut w = changelog::Writer::begin(&tx, session.author())?;
        changelog::resolve(&tx, &mut w, case_id, field, state, &value)?;
        // Who changed the case last, and when: recorded like any other save.
        let meta = ["updated_at", "updated_by"];
        let before: flat::Flat =
            changelog::winners(&fields).into_iter().filter(|(k, _)| meta.contains(&k.as_str())).collect();
        let after: flat::Flat =
            [("updated_at".to_string(), now_utc().into()), ("updated_by".to_string(), session.user_id.clone().into())]
                .into();
        changelog::record_case(&tx, &mut w, case_id, &fields, &before, &after)?;
        materialize(&tx, case_id)?;
        let detail = json!({ "field": field });
        audit::append(
            &tx,
            &session.device_id,
            Some(&session.user_id),
            Action::ConflictResolved,
            Some(case_id),
            detail,
            None,
        )?;
        tx.commit()?;
        self.conn().pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
        self.load_case_unchecked(case_id)
    }
}

impl Store {
    /// Invite a new laptop into this organisation (administrators): the invitation
    /// file's content and the one-time passphrase to give with it.
    pub fn invite(&self) -> Result<(Vec<u8>, zeroize::Zeroizing<String>), StoreError> {
        self.require(Role::Administrator)?;
        let (inv, passphrase) = org::invite(self.conn(), &self.session().org, self.kdf())?;
        let bytes = serde_json::to_vec_pretty(&inv).map_err(StoreError::encode)?;
        self.record(Action::OrgInvite, None, json!({}))?;
        Ok((bytes, passphrase))
    }

    /// First start of a laptop joining an organisation: set up the store as usual
    /// (its own data key, device and first user) with the organisation's id, name and
    /// sync key from the invitation. Refused before anything is written when the
    /// invitation or its passphrase is wrong, or the device code is taken.
    pub fn join(
        dir: &std::path::Path,
        invitation: &[u8],
        invite_passphrase: &str,
        setup: &crate::store::Setup,
        kdf: crate::database::keys::KdfParams,
    ) -> Result<Store, StoreError> {
        let inv = org::open_invitation(invitation, invite_passphrase)?;
        let code = setup.device_code.trim().to_uppercase();
        if inv.about.device_codes.iter().any(|c| c.eq_ignore_ascii_case(&code)) {
            let e = crate::intake::Issue::new("device_code", crate::intake::FieldError::DeviceCodeTaken { code });
            return Err(crate::intake::ValidationErrors(vec![e]).into());
        }
        let setup = crate::store::Setup { org: inv.about.org.clone(), ..setup.clone() };
        let store = Store::create(dir, &setup, kdf)?;
        org::adopt(store.conn(), &inv.org_id, &inv.key, &inv.about.org)?;
        Ok(store)
    }
}

impl Store {
    /// The folder this laptop syncs through, if one was chosen.
    pub fn sync_folder(&self) -> Result<Option<String>, StoreError> {
        Ok(crate::database::meta(self.conn(), FOLDER_KEY)?)
    }

    pub fn set_sync_folder(&self, folder: &str) -> Result<(), StoreError> {
        let folder = folder.trim();
        crate::store::check_folder(Path::new(folder))?;
        Ok(crate::database::set_meta(self.conn(), FOLDER_KEY, folder)?)
    }

    fn folder(&self) -> Result<PathBuf, StoreError> {
        let f = PathBuf::from(self.sync_folder()?.unwrap_or_default());
        crate::store::check_folder(&f)?;
        Ok(f)
    }

    /// Write a bundle into the sync folder. Written beside its name and renamed, so
    /// another laptop never reads half a bundle.
    pub fn export_to_folder(&mut self) -> Result<(String, ExportSummary), StoreError> {
        let folder = self.folder()?;
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ");
        let name = format!("amparo-{}-{stamp}.{EXTENSION}", self.session().device_code);
        let summary =
            self.sync_export(false, |bytes| crate::store::write_into_folder(&folder, &name, bytes).map(drop))?;
        Ok((name, summary))
    }

    /// Merge every bundle other laptops left in the sync folder, oldest first.
    /// `progress(file index, file count, cases done, cases total)`.
    pub fn import_folder(
        &mut self,
        progress: &mut dyn FnMut(usize, usize, usize, usize),
    ) -> Result<Vec<FileResult>, StoreError> {
        let folder = self.folder()?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().and_then(|x| x.to_str()) == Some(EXTENSION))
            .collect();
        files.sort();
        let me = self.session().device_id.clone();
        let mut out = Vec::new();
        let count = files.len();
        for (i, path) in files.iter().enumerate() {
            let file = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            let mut result = FileResult { file, summary: None, already_here: false, error: None };
            let outcome = std::fs::read(path).map_err(StoreError::from).and_then(|bytes| {
                // Our own bundles, and those with nothing new, need no key and no work.
                if let Ok((h, _)) = bundle::read_header(&bytes) {
                    if h.device == me || self.holds_all(&h)? {
                        return Ok(None);
                    }
                }
                self.sync_import(&bytes, &mut |d, t| progress(i, count, d, t)).map(Some)
            });
            match outcome {
                Ok(Some(s)) => result.summary = Some(s),
                Ok(None) => result.already_here = true,
                Err(e) => {
                    use crate::i18n::Localized;
                    let args = e.args().into_iter().map(|(k, v)| (k.to_string(), Value::String(v))).collect();
                    result.error = Some((e.i18n_key().to_string(), args));
                }
            }
            progress(i + 1, count, 0, 0);
            out.push(result);
        }
        Ok(out)
    }

    /// Write an invitation into the sync folder (administrators); the passphrase is
    /// for the caller to show once.
    pub fn invite_to_folder(&self) -> Result<(String, zeroize::Zeroizing<String>), StoreError> {
        let folder = self.folder()?;
        let (bytes, passphrase) = self.invite()?;
        let name = format!("amparo-invitation-{}.json", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"));
        std::fs::write(folder.join(&name), bytes)?;
        Ok((folder.join(&name).display().to_string(), passphrase))
    }

    /// Does this laptop hold every change and audit entry a bundle's header lists?
    fn holds_all(&self, h: &bundle::Header) -> Result<bool, StoreError> {
        for (table, ranges) in [("changes", &h.changes), ("audit", &h.audit)] {
            for (device, (_, last)) in ranges {
                if crate::changelog::contiguous(self.conn(), table, device)? < *last {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}
