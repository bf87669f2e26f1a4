//! Sync through the hub, for the person unlocked (see [`crate::sync::hub`]).
//!
//! A sync is a run of steps, each either the network's or the database's, never
//! both: [`sync`] takes the store only for one step's database work (one batch
//! made, acknowledged or merged, each its own transaction), through [`Shared`].
//! So the desktop app, whose unlocked store sits behind a mutex, syncs in the
//! background while a caseworker goes on working: a save waits for one batch's
//! merge at most, never for the hub. A sync cut off anywhere loses nothing, and
//! the next one goes on from there.

use super::{Store, StoreError};
use crate::repositories::audit::{self, Action};
use crate::repositories::users::Role;
use crate::sync::*;
use serde_json::json;
use std::cell::RefCell;
use std::collections::{BTreeSet, VecDeque};
use std::sync::Mutex;

/// A store a sync takes for one step at a time.
pub trait Shared {
    fn with<T>(&self, step: impl FnOnce(&mut Store) -> Result<T, StoreError>) -> Result<T, StoreError>;
}

/// The desktop app's unlocked store (none while the window is locked: then the
/// sync stops at its next step, with [`StoreError::Locked`]).
impl Shared for Mutex<Option<Store>> {
    fn with<T>(&self, step: impl FnOnce(&mut Store) -> Result<T, StoreError>) -> Result<T, StoreError> {
        // A command that panicked holding the lock left the store as its last
        // committed transaction: still whole.
        let mut guard = self.lock().unwrap_or_else(|p| p.into_inner());
        step(guard.as_mut().ok_or(StoreError::Locked)?)
    }
}

/// A store this caller alone holds (the CLI, the tests).
pub struct Exclusive<'a>(RefCell<&'a mut Store>);

impl<'a> Exclusive<'a> {
    pub fn new(store: &'a mut Store) -> Self {
        Exclusive(RefCell::new(store))
    }
}

impl Shared for Exclusive<'_> {
    fn with<T>(&self, step: impl FnOnce(&mut Store) -> Result<T, StoreError>) -> Result<T, StoreError> {
        step(&mut self.0.borrow_mut())
    }
}

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
        let tx = crate::database::write_tx(self.conn())?;
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

    /// This laptop's changes the hub has not acknowledged (sealed in a batch or
    /// not yet), and the batches sealed and waiting to be sent.
    pub fn hub_waiting(&self) -> Result<(i64, i64), StoreError> {
        Ok(hub::waiting(self.conn(), &self.session().device_id)?)
    }

    /// Per device id, the last person who changed something on it, as far as this
    /// laptop knows: what a list of the hub's laptops shows as their user.
    pub fn device_users(&self) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
        Ok(crate::sync::exchange::last_users(self.conn())?)
    }

    /// Push what the hub lacks, then pull what this laptop lacks, in pages (see
    /// [`sync`]). `progress(done, total)` counts batches pulled of those listed so far.
    pub fn hub_sync(
        &mut self,
        transport: &mut dyn hub::Transport,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<hub::HubSummary, StoreError> {
        sync(&Exclusive(RefCell::new(self)), transport, progress)
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
        revoke(&Exclusive(RefCell::new(self)), transport, device, device_code)
    }

    /// Seal what this laptop made since its last batch into batches for the hub,
    /// without the network: they wait in the outbox, byte for byte, until the hub
    /// acknowledged them. Returns how many it sealed.
    pub fn hub_prepare(&mut self) -> Result<usize, StoreError> {
        let me = self.session().device_id.clone();
        let code = self.session().device_code.clone();
        let mut made = 0;
        loop {
            let tx = crate::database::write_tx(self.conn())?;
            let more = hub::make_batch(&tx, &me, &code)?;
            tx.commit()?;
            if !more {
                return Ok(made);
            }
            made += 1;
        }
    }
}

/// Push what the hub lacks, then pull what this laptop lacks, in pages, taking
/// the store one step at a time. A batch refused (damaged, or an insider's
/// forgery) holds back only its device: the others' batches still arrive, and the
/// refusal is said at the end; it is not marked pulled, so it is tried again.
pub fn sync(
    store: &impl Shared,
    transport: &mut dyn hub::Transport,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<hub::HubSummary, StoreError> {
    let mut summary = hub::HubSummary::default();
    take_epochs(store, transport)?;
    summary.pushed_batches += push(store, transport)?;
    let mut listed_total = 0;
    let mut refused: Option<SyncError> = None;
    let mut held_back: BTreeSet<String> = BTreeSet::new();
    loop {
        let mut since = store.with(|s| Ok(hub::since(s.conn(), &s.session().device_id)?))?;
        for device in &held_back {
            since.insert(device.clone(), i64::MAX);
        }
        let page = transport.list(&since, hub::PAGE)?;
        if page.is_empty() {
            break;
        }
        listed_total += page.len();
        // Fetched several at a time (one exchange, not one per batch), each
        // merged in its own transaction as it comes.
        let mut queue: VecDeque<((String, i64), Vec<u8>)> = VecDeque::new();
        for (i, listed) in page.iter().enumerate() {
            if held_back.contains(&listed.device) {
                continue;
            }
            while queue.front().is_some_and(|((d, _), _)| held_back.contains(d)) {
                queue.pop_front();
            }
            if queue.front().map(|(k, _)| (k.0.as_str(), k.1)) != Some((listed.device.as_str(), listed.number)) {
                let wanted: Vec<hub::Listed> =
                    page[i..].iter().filter(|l| !held_back.contains(&l.device)).cloned().collect();
                let got = transport.fetch_many(&wanted)?;
                queue = wanted.into_iter().map(|l| (l.device, l.number)).zip(got).collect();
            }
            let (_, bytes) = queue.pop_front().ok_or(SyncError::Damaged)?;
            let applied = store.with(|s| {
                let me = s.session().device_id.clone();
                let tx = crate::database::write_tx(s.conn())?;
                let applied = if hub::sha256_hex(&bytes) == listed.sha256 {
                    hub::apply(&tx, &me, listed, &bytes, &mut |_, _| {})
                } else {
                    Err(SyncError::Damaged)
                };
                match applied {
                    Ok(got) => {
                        tx.commit()?;
                        Ok(Ok(got))
                    }
                    Err(SyncError::Database(e)) => Err(SyncError::Database(e).into()),
                    Err(e) => {
                        drop(tx);
                        exchange::keep_evidence(s.conn(), &e)?;
                        Ok(Err(e))
                    }
                }
            })?;
            match applied {
                Ok(got) => {
                    summary.pulled_batches += 1;
                    summary.imported.add(&got);
                    progress(summary.pulled_batches, listed_total);
                }
                Err(e) => {
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
        store.with(|s| {
            let tx = crate::database::write_tx(s.conn())?;
            let (me, user) = (&s.session().device_id, &s.session().user_id);
            audit::append(&tx, me, Some(user), Action::HubSync, None, detail, None)?;
            tx.commit()?;
            crate::database::fold_wal(s.conn())?;
            // What arrived in the clear for a restricted case is sealed now, and
            // goes out sealed with the push below.
            s.seal_restricted()?;
            Ok(())
        })?;
        // The entry just written goes too, so that nothing of this laptop's waits.
        summary.pushed_batches += push(store, transport)?;
    }
    // A laptop that enrolled after the newest key epoch cannot read what is
    // sealed under it: an administrator's laptop makes the next one for it.
    let rekey = store.with(|s| {
        let hub_admin = crate::database::meta(s.conn(), hub::ADMIN_KEY)?.is_some();
        Ok(hub_admin && s.session().role >= Role::Administrator && epoch::leaves_out_someone(s.conn())?)
    })?;
    if rekey {
        new_epoch(store, transport, None)?;
    }
    match refused {
        Some(e) => Err(e.into()),
        None => Ok(summary),
    }
}

/// Revoke a laptop (administrators), taking the store one step at a time: see
/// [`Store::hub_revoke`].
pub fn revoke(
    store: &impl Shared,
    transport: &mut dyn hub::Transport,
    device: &str,
    device_code: &str,
) -> Result<(), StoreError> {
    store.with(|s| s.require(Role::Administrator))?;
    let last_batch = transport.revoke(device)?;
    let gone = epoch::Revoked { code: device_code.to_string(), last_batch };
    new_epoch(store, transport, Some((device, gone)))
}

/// Take in the key epoch records the hub holds and this laptop lacks.
fn take_epochs(store: &impl Shared, transport: &mut dyn hub::Transport) -> Result<(), StoreError> {
    let since = store.with(|s| Ok(epoch::latest_record(s.conn())?))?;
    let records = transport.epochs(since)?;
    store.with(|s| {
        for record in &records {
            let tx = crate::database::write_tx(s.conn())?;
            epoch::apply(&tx, record)?;
            tx.commit()?;
        }
        Ok(())
    })
}

/// Make the next key epoch, revoking a device too if given, and keep it once the
/// hub took it (so two administrators can never make two of one number).
fn new_epoch(
    store: &impl Shared,
    transport: &mut dyn hub::Transport,
    revoke: Option<(&str, epoch::Revoked)>,
) -> Result<(), StoreError> {
    take_epochs(store, transport)?;
    let code = revoke.as_ref().map(|(_, r)| r.code.clone());
    let bytes = store.with(|s| {
        let session = s.session();
        Ok(epoch::make(s.conn(), (&session.device_id, &session.device_code), revoke)?)
    })?;
    let number = epoch::read(&bytes)?.number;
    transport.put_epoch(number, &bytes)?;
    store.with(|s| {
        let session = s.session().clone();
        let tx = crate::database::write_tx(s.conn())?;
        epoch::apply(&tx, &bytes)?;
        let (action, detail) = match code {
            Some(code) => (Action::DeviceRevoked, json!({ "device": code, "epoch": number })),
            None => (Action::KeyEpoch, json!({ "epoch": number })),
        };
        audit::append(&tx, &session.device_id, Some(&session.user_id), action, None, detail, None)?;
        tx.commit()?;
        Ok(())
    })
}

/// Seal what this laptop made into batches, and push every one the hub has not
/// acknowledged. Returns how many it pushed.
/// One batch sealed at a time, each when the one before was acknowledged: while
/// the hub does not answer, at most one batch waits sealed (the one that may have
/// reached it), and what is not sealed yet stays only in the change log, where a
/// purge or a replaced value leaves nothing.
fn push(store: &impl Shared, transport: &mut dyn hub::Transport) -> Result<usize, StoreError> {
    let mut pushed = 0;
    loop {
        let next = store.with(|s| {
            let (me, code) = (s.session().device_id.clone(), s.session().device_code.clone());
            let tx = crate::database::write_tx(s.conn())?;
            hub::reseal_emptied(&tx, &me)?;
            if hub::next_unacknowledged(&tx)?.is_none() {
                hub::make_batch(&tx, &me, &code)?;
            }
            let next = hub::next_unacknowledged(&tx)?;
            tx.commit()?;
            Ok(next)
        })?;
        let Some((number, bytes)) = next else { return Ok(pushed) };
        match transport.push(number, &bytes) {
            Ok(()) => {}
            // Sealed again since a push whose answer was lost: the hub holds the first sealing.
            Err(SyncError::HubRefused { reason })
                if reason == "batch_conflict" && store.with(|s| Ok(hub::was_resealed(s.conn(), number)?))? => {}
            Err(e) => return Err(e.into()),
        }
        store.with(|s| Ok(hub::acknowledged(s.conn(), &s.session().device_id, number)?))?;
        pushed += 1;
    }
}
