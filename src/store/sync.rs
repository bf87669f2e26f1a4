//! Sync for the person unlocked: writing and reading bundles (to a file or the
//! sync folder), the status, invitations, and conflicts to review, on the change
//! log and the bundles of [`crate::sync`].

use super::{Store, StoreError};
use crate::changelog::{self, flat};
use crate::database::now_utc;
use crate::repositories::audit::{self, Action};
use crate::repositories::cases::rebuild;
use crate::repositories::users::Role;
use crate::sync::bundle;
use crate::sync::exchange;
use crate::sync::folder::{FileResult, EXTENSION, FOLDER_KEY};
use crate::sync::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
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
        let written = exchange::write_bundle(self.conn(), &me, &self.session().device_code, all)?;
        let summary = written.summary;
        write(&written.bytes)?;
        let tx = crate::database::write_tx(self.conn())?;
        exchange::mark_exported(&tx, written.own_last)?;
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
        let tx = crate::database::write_tx(self.conn())?;
        let (summary, writer) = match exchange::merge(&tx, &me, bytes, progress) {
            Ok(merged) => merged,
            Err(refused) => {
                drop(tx);
                exchange::keep_evidence(self.conn(), &refused)?;
                return Err(refused.into());
            }
        };
        let detail = json!({
            "device": writer, "changes": summary.changes, "new": summary.new_cases,
            "updated": summary.updated_cases, "removed": summary.removed_cases, "conflicts": summary.conflicts,
        });
        audit::append(&tx, &me, Some(&user), Action::SyncImport, None, detail, None)?;
        tx.commit()?;
        // Replaced values, removed people and purged cases were blanked: fold the WAL
        // into the (securely deleting) database so their words do not linger.
        crate::database::fold_wal(self.conn())?;
        // What arrived in the clear for a restricted case is sealed now.
        self.seal_restricted()?;
        Ok(summary)
    }

    /// This laptop's sync state: what it has not exported, and each other laptop.
    pub fn sync_status(&self) -> Result<SyncStatus, StoreError> {
        Ok(exchange::status(self.conn(), &self.session().device_id, &self.session().device_code)?)
    }

    /// Has this case changed here since the last bundle was written?
    pub fn is_unexported(&self, case_id: &str) -> Result<bool, StoreError> {
        Ok(exchange::is_unexported(self.conn(), case_id)?)
    }

    /// Ids of cases with changes made here and not yet written into a bundle.
    pub fn unexported_cases(&self) -> Result<BTreeSet<String>, StoreError> {
        Ok(exchange::unexported_cases(self.conn())?)
    }

    fn conflicts_where(&self, case_id: Option<&str>) -> Result<Vec<Conflict>, StoreError> {
        let mut conflicts = exchange::conflicts(self.conn(), case_id)?;
        // A restricted case's values are sealed: shown opened to whoever holds its key.
        let mut keys: std::collections::BTreeMap<String, crate::repositories::restricted::Keys> = Default::default();
        for c in &mut conflicts {
            if !keys.contains_key(&c.case_id) {
                keys.insert(c.case_id.clone(), self.case_keys(&c.case_id)?);
            }
            let Some(k) = keys.get(&c.case_id) else { continue };
            for v in &mut c.values {
                v.value = k.open_in(&c.case_id, &c.field, &v.value);
            }
        }
        Ok(conflicts)
    }

    /// Every open conflict (supervisors).    /// Every open conflict (supervisors).
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
        let tx = crate::database::write_tx(self.conn())?;
        let fields = crate::repositories::incoming::fields(&tx, case_id)?;
        let state = fields.get(field).ok_or(SyncError::NoConflict)?;
        let value = match how {
            Resolution::Keep(choice) => {
                let kept = conflict.values.iter().find(|v| v.choice == *choice).ok_or(SyncError::NoSuchChoice)?;
                if kept.held {
                    // Kept as it is, it would be held again: the form says why not.
                    let today = crate::repositories::cases::today();
                    let why = crate::repositories::incoming::not_accepted(field, &kept.value, today)
                        .map(|i| crate::intake::Issue::new(conflict.path.clone(), i.error))
                        .into_iter()
                        .collect();
                    return Err(crate::intake::ValidationErrors(why).into());
                }
                kept.value.clone()
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
        let restricted = crate::repositories::cases::stored(&tx, case_id)?
            .is_some_and(|c| crate::repositories::restricted::is_restricted(&c.data));
        let value = match restricted {
            true => {
                let keys = self.case_keys(case_id)?;
                let key = keys.current().ok_or(StoreError::NoCaseKey)?;
                crate::repositories::restricted::seal_value(key, case_id, field, &value)?
            }
            false => value,
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
        // The row is rebuilt from the log below: nothing is marked as in it.
        changelog::log_case_diff(&tx, &mut w, case_id, &fields, &before, &after, None)?;
        rebuild(&tx, case_id)?;
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
        crate::database::fold_wal(self.conn())?;
        self.load_case_unchecked(case_id)
    }
}

impl Store {
    /// Invite a new laptop into this organisation (administrators): the invitation
    /// file's content and the one-time passphrase to give with it.
    pub fn invite(&self) -> Result<(Vec<u8>, zeroize::Zeroizing<String>), StoreError> {
        self.invite_with(None)
    }

    /// The same, with what the new laptop needs to enrol with the hub (the token
    /// already given to the hub by this laptop).
    pub fn invite_with(
        &self,
        hub: Option<hub::HubInvite>,
    ) -> Result<(Vec<u8>, zeroize::Zeroizing<String>), StoreError> {
        self.require(Role::Administrator)?;
        let (inv, passphrase) = org::invite(self.conn(), &self.session().org, hub, self.authority()?, self.kdf())?;
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
        let inv = Store::check_join(invitation, invite_passphrase, setup)?;
        Store::join_checked(dir, &inv, setup, kdf, None, false)
    }

    /// Everything joining checks before anything is written or sent: the
    /// invitation, its passphrase, the setup, and that the device code is free.
    pub fn check_join(
        invitation: &[u8],
        invite_passphrase: &str,
        setup: &crate::store::Setup,
    ) -> Result<org::Opened, StoreError> {
        let inv = org::open_invitation(invitation, invite_passphrase)?;
        let code = setup.device_code.trim().to_uppercase();
        if inv.about.device_codes.iter().any(|c| c.eq_ignore_ascii_case(&code)) {
            let e = crate::intake::Issue::new("device_code", crate::intake::FieldError::DeviceCodeTaken { code });
            return Err(crate::intake::ValidationErrors(vec![e]).into());
        }
        super::validate_setup(&crate::store::Setup { org: inv.about.org.clone(), ..setup.clone() })?;
        Ok(inv)
    }

    /// [`Store::join`] with an invitation [`Store::check_join`] opened (its
    /// passphrase costs an Argon2 run: once is enough), as a newcomer made
    /// beforehand if given, that tried to enrol with the hub before its store
    /// existed: once `enrolled`, no token waits in it.
    pub fn join_checked(
        dir: &std::path::Path,
        inv: &org::Opened,
        setup: &crate::store::Setup,
        kdf: crate::database::keys::KdfParams,
        newcomer: Option<identity::Newcomer>,
        enrolled: bool,
    ) -> Result<Store, StoreError> {
        let setup = crate::store::Setup { org: inv.about.org.clone(), ..setup.clone() };
        let store = Store::create_as(dir, &setup, kdf, newcomer, inv.authority.clone())?;
        org::adopt(store.conn(), inv)?;
        if let Some(h) = &inv.about.hub {
            // Enrolment needs the network: the caller does it, with the token kept
            // until the hub took it.
            hub::set_settings(
                store.conn(),
                &hub::HubSettings { url: h.url.clone(), fingerprint: h.fingerprint.clone() },
            )?;
            if !enrolled {
                crate::database::set_meta(store.conn(), hub::ENROL_TOKEN, &h.token)?;
            }
        }
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
                if let Ok((h, _)) = bundle::read_signed(&bytes) {
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

    /// Write an invitation into the sync folder (administrators), with what the
    /// new laptop needs to enrol with the hub if given; the passphrase is for the
    /// caller to show once.
    pub fn invite_to_folder(
        &self,
        hub: Option<hub::HubInvite>,
    ) -> Result<(String, zeroize::Zeroizing<String>), StoreError> {
        let folder = self.folder()?;
        let (bytes, passphrase) = self.invite_with(hub)?;
        let name = format!("amparo-invitation-{}.json", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"));
        let path = super::write_into_folder(&folder, &name, &bytes)?;
        Ok((path.display().to_string(), passphrase))
    }

    /// Does this laptop hold every change and audit entry a bundle's header lists?
    fn holds_all(&self, h: &bundle::Header) -> Result<bool, StoreError> {
        Ok(exchange::holds_all(self.conn(), h)?)
    }
}
