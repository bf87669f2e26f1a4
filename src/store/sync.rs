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
        let tx = self.conn().unchecked_transaction()?;
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
        let tx = self.conn().unchecked_transaction()?;
        let (summary, writer) = exchange::merge(&tx, &me, bytes, progress)?;
        let detail = json!({
            "device": writer, "changes": summary.changes, "new": summary.new_cases,
            "updated": summary.updated_cases, "removed": summary.removed_cases, "conflicts": summary.conflicts,
        });
        audit::append(&tx, &me, Some(&user), Action::SyncImport, None, detail, None)?;
        tx.commit()?;
        // Replaced values, removed people and purged cases were blanked: fold the WAL
        // into the (securely deleting) database so their words do not linger.
        crate::database::fold_wal(self.conn())?;
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
        Ok(exchange::conflicts(self.conn(), case_id)?)
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
        let tx = self.conn().unchecked_transaction()?;
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
        let mut w = changelog::Writer::begin(&tx, session.author())?;
        changelog::resolve(&tx, &mut w, case_id, field, state, &value)?;
        // Who changed the case last, and when: recorded like any other save.
        let meta = ["updated_at", "updated_by"];
        let before: flat::Flat =
            changelog::winners(&fields).into_iter().filter(|(k, _)| meta.contains(&k.as_str())).collect();
        let after: flat::Flat =
            [("updated_at".to_string(), now_utc().into()), ("updated_by".to_string(), session.user_id.clone().into())]
                .into();
        changelog::log_case_diff(&tx, &mut w, case_id, &fields, &before, &after)?;
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
        let (inv, passphrase) = org::invite(self.conn(), &self.session().org, hub, self.kdf())?;
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
        org::adopt(store.conn(), &inv)?;
        if let Some(h) = &inv.about.hub {
            // Enrolment needs the network: the caller does it, with the token kept
            // until the hub took it.
            hub::set_settings(
                store.conn(),
                &hub::HubSettings { url: h.url.clone(), fingerprint: h.fingerprint.clone() },
            )?;
            crate::database::set_meta(store.conn(), hub::ENROL_TOKEN, &h.token)?;
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

    /// Write an invitation into the sync folder (administrators); the passphrase is
    /// for the caller to show once.
    pub fn invite_to_folder(&self) -> Result<(String, zeroize::Zeroizing<String>), StoreError> {
        let folder = self.folder()?;
        let (bytes, passphrase) = self.invite()?;
        let name = format!("amparo-invitation-{}.json", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"));
        let path = super::write_into_folder(&folder, &name, &bytes)?;
        Ok((path.display().to_string(), passphrase))
    }

    /// Does this laptop hold every change and audit entry a bundle's header lists?
    fn holds_all(&self, h: &bundle::Header) -> Result<bool, StoreError> {
        Ok(exchange::holds_all(self.conn(), h)?)
    }
}

/// Sync through the hub, for the person unlocked (see [`crate::sync::hub`]).
impl Store {
    /// This laptop's hub, if it is connected to one.
    pub fn hub_settings(&self) -> Result<Option<hub::HubSettings>, StoreError> {
        Ok(hub::settings(self.conn())?)
    }

    /// Remember the hub this laptop syncs with, once it registered the organisation
    /// there (administrators: the fingerprint they give is the one the laptop will
    /// trust, and the hub takes key changes from this laptop).
    pub fn set_hub(&mut self, settings: &hub::HubSettings) -> Result<(), StoreError> {
        self.require(Role::Administrator)?;
        let me = self.session().device_id.clone();
        let tx = self.conn().unchecked_transaction()?;
        hub::set_settings(&tx, settings)?;
        crate::database::set_meta(&tx, hub::ADMIN_KEY, "1")?;
        audit::append(&tx, &me, Some(&self.session().user_id), Action::HubConnected, None, json!({}), None)?;
        tx.commit()?;
        Ok(())
    }

    /// The organisation's id (not its name): how the hub files its batches.
    pub fn org_id(&self) -> Result<String, StoreError> {
        Ok(crate::sync::org::keys(self.conn())?.0)
    }

    /// The enrolment token of a laptop that joined with a hub invitation and is
    /// not enrolled yet.
    pub fn hub_enrolment(&self) -> Result<Option<String>, StoreError> {
        Ok(crate::database::meta(self.conn(), hub::ENROL_TOKEN)?)
    }

    /// The hub took this laptop's token: it is enrolled.
    pub fn hub_enrolled(&mut self) -> Result<(), StoreError> {
        Ok(hub::enrolled(self.conn())?)
    }

    /// This laptop's device identity, to sign its requests to the hub.
    pub fn hub_signer(&self) -> Result<identity::Identity, StoreError> {
        Ok(identity::load(self.conn())?)
    }

    /// This laptop's changes in no batch yet, and batches the hub has not acknowledged.
    pub fn hub_waiting(&self) -> Result<(i64, i64), StoreError> {
        Ok(hub::waiting(self.conn(), &self.session().device_id)?)
    }

    /// Push what the hub lacks, then pull what this laptop lacks, in pages. Each
    /// batch made, acknowledged or merged is its own transaction, so a sync cut off
    /// anywhere loses nothing and the next one goes on from there.
    /// `progress(done, total)` counts batches pulled of those listed so far.
    pub fn hub_sync(
        &mut self,
        transport: &mut dyn hub::Transport,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<hub::HubSummary, StoreError> {
        let me = self.session().device_id.clone();
        let mut summary = hub::HubSummary::default();
        self.hub_epochs(transport)?;
        summary.pushed_batches += self.hub_push(transport)?;
        let mut listed_total = 0;
        // A batch refused (damaged, or an insider's forgery) holds back only its
        // device: the others' batches still arrive, and the refusal is said at the
        // end. The refused one is not marked pulled, so it is tried again next time.
        let mut refused: Option<SyncError> = None;
        let mut held_back: BTreeSet<String> = BTreeSet::new();
        loop {
            let mut since = hub::since(self.conn(), &me)?;
            for device in &held_back {
                since.insert(device.clone(), i64::MAX);
            }
            let page = transport.list(&since, hub::PAGE)?;
            if page.is_empty() {
                break;
            }
            listed_total += page.len();
            for listed in page {
                if held_back.contains(&listed.device) {
                    continue;
                }
                let bytes = transport.fetch(&listed.device, listed.number)?;
                let tx = self.conn().unchecked_transaction()?;
                let applied = if hub::sha256_hex(&bytes) == listed.sha256 {
                    hub::apply(&tx, &me, &listed, &bytes, &mut |_, _| {})
                } else {
                    Err(SyncError::Damaged)
                };
                match applied {
                    Ok(got) => {
                        tx.commit()?;
                        summary.pulled_batches += 1;
                        summary.imported.add(&got);
                        progress(summary.pulled_batches, listed_total);
                    }
                    Err(SyncError::Database(e)) => return Err(SyncError::Database(e).into()),
                    Err(e) => {
                        drop(tx);
                        held_back.insert(listed.device.clone());
                        refused.get_or_insert(e);
                    }
                }
            }
        }
        if summary.imported.changes > 0 {
            let i = &summary.imported;
            let detail = json!({
                "batches": summary.pulled_batches, "changes": i.changes, "new": i.new_cases,
                "updated": i.updated_cases, "removed": i.removed_cases, "conflicts": i.conflicts,
            });
            let tx = self.conn().unchecked_transaction()?;
            audit::append(&tx, &me, Some(&self.session().user_id), Action::HubSync, None, detail, None)?;
            tx.commit()?;
            crate::database::fold_wal(self.conn())?;
            // The entry just written goes too, so that nothing of this laptop's waits.
            summary.pushed_batches += self.hub_push(transport)?;
        }
        // A laptop that enrolled after the newest key epoch cannot read what is
        // sealed under it: an administrator's laptop makes the next one for it.
        let hub_admin = crate::database::meta(self.conn(), hub::ADMIN_KEY)?.is_some();
        if hub_admin && self.session().role >= Role::Administrator && epoch::leaves_out_someone(self.conn())? {
            self.hub_new_epoch(transport, None)?;
        }
        match refused {
            Some(e) => Err(e.into()),
            None => Ok(summary),
        }
    }

    /// Take in the key epoch records the hub holds and this laptop lacks.
    fn hub_epochs(&mut self, transport: &mut dyn hub::Transport) -> Result<(), StoreError> {
        let since = epoch::latest_record(self.conn())?;
        for record in transport.epochs(since)? {
            let tx = self.conn().unchecked_transaction()?;
            epoch::apply(&tx, &record)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// Make the next key epoch, revoking a device too if given, and keep it once
    /// the hub took it (so two administrators can never make two of one number).
    fn hub_new_epoch(
        &mut self,
        transport: &mut dyn hub::Transport,
        revoke: Option<(&str, epoch::Revoked)>,
    ) -> Result<(), StoreError> {
        self.hub_epochs(transport)?;
        let session = self.session().clone();
        let code = revoke.as_ref().map(|(_, r)| r.code.clone());
        let bytes = epoch::make(self.conn(), (&session.device_id, &session.device_code), revoke)?;
        let number = epoch::read(&bytes)?.number;
        transport.put_epoch(number, &bytes)?;
        let tx = self.conn().unchecked_transaction()?;
        epoch::apply(&tx, &bytes)?;
        let (action, detail) = match code {
            Some(code) => (Action::DeviceRevoked, json!({ "device": code, "epoch": number })),
            None => (Action::KeyEpoch, json!({ "epoch": number })),
        };
        audit::append(&tx, &session.device_id, Some(&session.user_id), action, None, detail, None)?;
        tx.commit()?;
        Ok(())
    }

    /// Revoke a laptop (administrators): the hub refuses it from now on, and a new
    /// organisation key is sealed to every other laptop, so it can read nothing
    /// written after this. Its batches the hub already held are still taken.
    /// Safe to run again if it was cut off half-way.
    pub fn hub_revoke(
        &mut self,
        transport: &mut dyn hub::Transport,
        device: &str,
        device_code: &str,
    ) -> Result<(), StoreError> {
        self.require(Role::Administrator)?;
        let last_batch = transport.revoke(device)?;
        let gone = epoch::Revoked { code: device_code.to_string(), last_batch };
        self.hub_new_epoch(transport, Some((device, gone)))
    }

    /// Seal what this laptop made since its last batch into batches for the hub,
    /// without the network: they wait in the outbox, byte for byte, until the hub
    /// acknowledged them. Returns how many it sealed.
    pub fn hub_prepare(&mut self) -> Result<usize, StoreError> {
        let me = self.session().device_id.clone();
        let code = self.session().device_code.clone();
        let mut made = 0;
        loop {
            let tx = self.conn().unchecked_transaction()?;
            let more = hub::make_batch(&tx, &me, &code)?;
            tx.commit()?;
            if !more {
                return Ok(made);
            }
            made += 1;
        }
    }

    /// Seal what this laptop made into batches, and push every one the hub has not
    /// acknowledged. Returns how many it pushed.
    fn hub_push(&mut self, transport: &mut dyn hub::Transport) -> Result<usize, StoreError> {
        self.hub_prepare()?;
        let mut pushed = 0;
        while let Some((number, bytes)) = hub::next_unacknowledged(self.conn())? {
            transport.push(number, &bytes)?;
            hub::acknowledged(self.conn(), number)?;
            pushed += 1;
        }
        Ok(pushed)
    }
}
