//! Sync with the hub in the background: shortly after a save, and every few
//! minutes for what the other laptops sent, while the window is unlocked and the
//! hub answers. The core does the sync ([`amparo::store::hub::sync`]), taking the
//! store one step at a time, so work in the window goes on meanwhile; this only
//! decides when, and keeps what the header shows.

use crate::commands::{AppState, CommandError};
use amparo::store::{hub, StoreError};
use amparo::sync::hub::HubSummary;
use amparo::sync::SyncError;
use amparo_hub::client::HubClient;
use serde::Serialize;
use std::time::{Duration, Instant};
use tauri::{AppHandle, Manager, Runtime};

/// How often to pull what other laptops sent, unless `AMPARO_SYNC_INTERVAL_SECONDS`
/// says otherwise (the tests make it short).
const INTERVAL: Duration = Duration::from_secs(180);
/// How often to look whether something waits to be sent: "shortly after a save".
const TICK: Duration = Duration::from_secs(5);

/// What the header and the Sync screen show of the hub.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HubState {
    /// This laptop has a hub; without one the header says nothing of it.
    pub connected: bool,
    pub url: Option<String>,
    pub fingerprint: Option<String>,
    pub syncing: bool,
    /// The hub did not answer at the last try.
    pub offline: bool,
    /// Changes made here that the hub does not have yet.
    pub waiting: i64,
    /// When the last sync ended well (UTC, RFC 3339).
    pub last_synced: Option<String>,
    /// What the last sync did.
    pub last: Option<HubSummary>,
    /// Why the last sync failed (a revoked laptop, a changed certificate…), as
    /// the window shows any error.
    pub error: Option<CommandError>,
    /// Batches pulled of those listed so far, for the progress bar.
    pub done: usize,
    pub total: usize,
}

fn interval() -> Duration {
    std::env::var("AMPARO_SYNC_INTERVAL_SECONDS")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map_or(INTERVAL, Duration::from_secs)
}

/// Look at the store without waiting for it: a command holding it means the
/// person is working, and the next tick will do. The hub, if any, and the
/// changes waiting for it.
fn peek(state: &AppState) -> Option<(Option<amparo::sync::hub::HubSettings>, i64)> {
    let guard = state.store.try_lock().ok()?;
    let store = guard.as_ref()?;
    let settings = store.hub_settings().ok()?;
    let waiting = if settings.is_some() { store.hub_waiting().map_or(0, |w| w.0) } else { 0 };
    Some((settings, waiting))
}

/// Refresh what the header shows of the store (hub or not, changes waiting).
pub fn refresh(state: &AppState) {
    let Some((settings, waiting)) = peek(state) else { return };
    update(state, |h| {
        h.connected = settings.is_some();
        h.url = settings.as_ref().map(|s| s.url.clone());
        h.fingerprint = settings.map(|s| s.fingerprint);
        h.waiting = waiting;
    });
}

fn update(state: &AppState, f: impl FnOnce(&mut HubState)) {
    if let Ok(mut h) = state.hub.lock() {
        f(&mut h);
    }
}

/// Sync now (the background, or the *Sync now* button): one at a time.
pub fn sync_now(state: &AppState) -> Result<HubSummary, CommandError> {
    let _one = state.syncing.lock().unwrap_or_else(|p| p.into_inner());
    update(state, |h| (h.syncing, h.done, h.total) = (true, 0, 0));
    let result = run(state);
    let now = amparo::database::now_utc();
    update(state, |h| {
        h.syncing = false;
        match &result {
            Ok(summary) => {
                (h.offline, h.error, h.last_synced, h.last) = (false, None, Some(now), Some(summary.clone()));
            }
            // Locked half-way: nothing went wrong, the next unlock goes on.
            Err(StoreError::Locked) => {}
            Err(e) => {
                h.offline = matches!(e, StoreError::Sync(SyncError::HubUnreachable { .. }));
                h.error = Some(CommandError::from_ref(e));
            }
        }
    });
    refresh(state);
    result.map_err(CommandError::from)
}

fn run(state: &AppState) -> Result<HubSummary, StoreError> {
    use amparo::store::hub::Shared;
    let (mut client, token) = state.store.with(|s| Ok((HubClient::for_store(s)?, s.hub_enrolment()?)))?;
    // A laptop that joined with a hub invitation enrols first (over the network,
    // without holding the store).
    if let Some(token) = token {
        let code = state.store.with(|s| Ok(s.session().device_code.clone()))?;
        client.enrol(&token, &code)?;
        state.store.with(|s| s.hub_enrolled())?;
    }
    let mut progress = |done, total| update(state, |h| (h.done, h.total) = (done, total));
    hub::sync(&state.store, &mut client, &mut progress)
}

/// Seconds past the window's own idle lock before the shell locks the store
/// itself (the window locks first, unless its page hangs).
const IDLE_GRACE_S: u64 = 15;

/// Lock the store if the window has asked for nothing a person did for longer
/// than the idle lock and its grace (`now` is the time to judge by). Returns
/// whether it locked.
pub fn enforce_idle(state: &AppState, now: Instant) -> bool {
    let Ok((last, Some(limit))) = state.activity.lock().map(|a| *a) else { return false };
    if now.saturating_duration_since(last) < Duration::from_secs(u64::from(limit) + IDLE_GRACE_S) {
        return false;
    }
    let mut guard = state.store.lock().unwrap_or_else(|p| p.into_inner());
    match guard.take() {
        Some(store) => {
            // Closing records the lock in the activity log; a failure to record
            // does not keep the store open.
            let _ = store.close(amparo::repositories::audit::Action::Lock);
            true
        }
        None => false,
    }
}

/// Fold the WAL into the database while no command holds the store, so that the
/// person's next save does not pay for it (a command holding it means she is
/// working: the next tick will do).
pub fn checkpoint(state: &AppState) {
    let Ok(guard) = state.store.try_lock() else { return };
    if let Some(store) = guard.as_ref() {
        // A checkpoint that cannot finish now (a read under way) finishes later.
        let _ = store.checkpoint();
    }
}

/// The background loop, for the life of the app.
pub fn start<R: Runtime>(app: AppHandle<R>) {
    let spawned = std::thread::Builder::new().name("hub-sync".into()).spawn(move || {
        let every = interval();
        let tick = TICK.min(every);
        let mut next_pull = Instant::now();
        // After a failure (the hub unreachable), the next try waits a whole interval.
        let mut next_try = Instant::now();
        loop {
            std::thread::sleep(tick);
            let state = app.state::<AppState>();
            if enforce_idle(&state, Instant::now()) {
                continue;
            }
            checkpoint(&state);
            let Some((settings, waiting)) = peek(&state) else { continue };
            let connected = settings.is_some();
            update(&state, |h| (h.connected, h.waiting) = (connected, waiting));
            let now = Instant::now();
            if !connected || now < next_try || (waiting == 0 && now < next_pull) {
                continue;
            }
            next_pull = now + every;
            next_try = if sync_now(&state).is_ok() { now } else { now + every };
        }
    });
    if spawned.is_err() {
        // Without the thread, *Sync now* still works; nothing personal to say here.
        eprintln!("Amparo: background sync could not start");
    }
}
