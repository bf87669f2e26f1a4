//! Tauri commands: each takes its arguments, calls one core function, and maps the
//! error. No SQL, no rules, no strings built here: errors travel as an i18n key,
//! its arguments and, for invalid input, the field issues, and the UI shows them in
//! its current language.
//!
//! Commands are `async` so that Argon2 (unlock) and disk writes never run on the
//! window's main thread.

use amparo::database::keys::KdfParams;
use amparo::i18n::{self, Localized};
use amparo::intake::Issue;
use amparo::repositories::audit::{Action, AuditQuery, AuditRow, Verification};
use amparo::repositories::cases::{CaseSummary, ListQuery};
use amparo::repositories::drafts::DraftSummary;
use amparo::repositories::users::{Role, User};
use amparo::store::policy::{Policy, PurgeReport};
use amparo::store::{self, CaseRights, Rights, Session, Settings, Setup, Store, StoreError};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use tauri::{AppHandle, Manager, Runtime, State};
// Passphrases and recovery keys typed in the window are wiped from memory once used.
use zeroize::Zeroizing;

pub struct AppState {
    pub dir: PathBuf,
    pub kdf: KdfParams,
    pub store: Mutex<Option<Store>>,
    /// Seconds of idleness before the window locks, when shorter than the store's
    /// policy (`AMPARO_IDLE_LOCK_SECONDS`: for trying auto-lock without waiting a
    /// minute; it can only make the app lock sooner).
    pub idle_lock_seconds: Option<u32>,
    /// How far a sync import has come, for the progress bar (apart from the store's
    /// lock, which the import holds).
    pub sync_progress: Mutex<SyncProgress>,
    /// What the header shows of the hub (kept by the background sync).
    pub hub: Mutex<crate::background::HubState>,
    /// Held by the one sync with the hub that may run at a time.
    pub syncing: Mutex<()>,
    /// When the window last asked for something a person did (not the header's
    /// polling), and after how many seconds without it the shell locks the store
    /// itself: the window's own idle lock cannot run if its page hangs.
    pub activity: Mutex<(std::time::Instant, Option<u32>)>,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct SyncProgress {
    pub file: usize,
    pub files: usize,
    pub cases: usize,
    pub total: usize,
}

impl AppState {
    pub fn new(dir: PathBuf, kdf: KdfParams) -> Self {
        let idle_lock_seconds =
            std::env::var("AMPARO_IDLE_LOCK_SECONDS").ok().and_then(|s| s.trim().parse().ok()).filter(|s| *s > 0);
        AppState {
            dir,
            kdf,
            store: Mutex::new(None),
            idle_lock_seconds,
            sync_progress: Mutex::default(),
            hub: Mutex::default(),
            syncing: Mutex::new(()),
            activity: Mutex::new((std::time::Instant::now(), None)),
        }
    }
}

/// What the UI receives when a command fails.
#[derive(Debug, Clone, Serialize)]
pub struct CommandError {
    pub key: String,
    pub args: Map<String, Value>,
    pub issues: Vec<Issue>,
}

impl CommandError {
    fn plain(key: &str) -> Self {
        CommandError { key: key.into(), args: Map::new(), issues: vec![] }
    }
}

impl CommandError {
    pub fn from_ref(e: &StoreError) -> Self {
        let args = e.args().into_iter().map(|(k, v)| (k.to_string(), Value::String(v))).collect();
        let issues = match e {
            StoreError::Invalid(v) => v.0.clone(),
            _ => vec![],
        };
        CommandError { key: e.i18n_key().into(), args, issues }
    }
}

impl From<StoreError> for CommandError {
    fn from(e: StoreError) -> Self {
        CommandError::from_ref(&e)
    }
}

type Res<T> = Result<T, CommandError>;

/// The person did something in the window.
fn active(state: &AppState) {
    if let Ok(mut a) = state.activity.lock() {
        a.0 = std::time::Instant::now();
    }
}

/// Run `f` on the unlocked store.
fn with_store<T>(state: &AppState, f: impl FnOnce(&mut Store) -> Result<T, StoreError>) -> Res<T> {
    active(state);
    let mut guard = state.store.lock().map_err(|_| CommandError::plain("error.store.busy"))?;
    let store = guard.as_mut().ok_or(StoreError::Locked)?;
    Ok(f(store)?)
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub initialized: bool,
    pub unlocked: bool,
    /// The language chosen for this laptop, if any.
    pub locale: Option<String>,
    /// The operating system's language, as a first suggestion.
    pub system_locale: String,
    pub session: Option<Session>,
    pub passphrase_min: usize,
}

#[tauri::command(async)]
pub fn app_status(state: State<'_, AppState>) -> Res<Status> {
    let guard = state.store.lock().map_err(|_| CommandError::plain("error.store.busy"))?;
    Ok(Status {
        initialized: Store::exists(&state.dir),
        unlocked: guard.is_some(),
        locale: Settings::load(&state.dir).locale,
        system_locale: i18n::system_locale().into(),
        session: guard.as_ref().map(|s| s.session().clone()),
        passphrase_min: store::PASSPHRASE_MIN,
    })
}

#[tauri::command(async)]
pub fn translations(locale: String) -> BTreeMap<String, String> {
    i18n::table(&locale)
}

#[tauri::command(async)]
pub fn set_locale(state: State<'_, AppState>, locale: String) -> Res<String> {
    let l = i18n::normalize_locale(&locale).to_string();
    Settings { locale: Some(l.clone()), ..Settings::load(&state.dir) }.save(&state.dir)?;
    Ok(l)
}

#[tauri::command(async)]
pub fn form_definition() -> Value {
    amparo::form::definition_json()
}

/// Which of the form's fields the skip logic hides for these values (the core's
/// rule, so the window never decides it).
#[tauri::command]
pub fn hidden_fields(case: Value) -> Vec<String> {
    amparo::form::hidden_paths(&case)
}

#[derive(Debug, Serialize)]
pub struct StrengthHint {
    pub strength: store::Strength,
    pub key: &'static str,
}

#[tauri::command(async)]
pub fn passphrase_strength(passphrase: String) -> StrengthHint {
    let s = store::passphrase_strength(&passphrase);
    StrengthHint { strength: s, key: s.i18n_key() }
}

/// What the window needs once it is unlocked.
#[derive(Debug, Serialize)]
pub struct Unlocked {
    pub session: Session,
    /// What this person may do: the window offers just that.
    pub rights: Rights,
    /// Seconds without input before the window locks.
    pub idle_lock_seconds: u32,
    /// Right after setup only: the recovery key, to show once.
    pub recovery_key: Option<String>,
}

/// Open a store (new or existing) and keep it as this window's unlocked store.
fn start_session(state: &AppState, open: impl FnOnce() -> Result<Store, StoreError>) -> Res<Unlocked> {
    let mut guard = state.store.lock().map_err(|_| CommandError::plain("error.store.busy"))?;
    let mut store = open()?;
    let session = store.session().clone();
    let rights = store.rights();
    let policy = store.policy()?.idle_lock_minutes * 60;
    let idle_lock_seconds = state.idle_lock_seconds.map_or(policy, |s| s.min(policy));
    let recovery_key = store.take_recovery_key().map(|k| k.to_string());
    *guard = Some(store);
    if let Ok(mut a) = state.activity.lock() {
        *a = (std::time::Instant::now(), Some(idle_lock_seconds));
    }
    Ok(Unlocked { session, rights, idle_lock_seconds, recovery_key })
}

/// Joining an organisation at first start: the invitation file and its passphrase.
#[derive(Debug, serde::Deserialize)]
pub struct Join {
    pub file: String,
    pub passphrase: Zeroizing<String>,
}

#[tauri::command(async)]
pub fn setup(state: State<'_, AppState>, setup: Setup, join: Option<Join>) -> Res<Unlocked> {
    match join {
        None => start_session(&state, || Store::create(&state.dir, &setup, state.kdf)),
        Some(j) => {
            let code = j.passphrase;
            let invitation = std::fs::read(j.file.trim()).map_err(|_| {
                let e = amparo::intake::Issue::new("invitation_file", amparo::intake::FieldError::NotAFile);
                StoreError::Invalid(amparo::intake::ValidationErrors(vec![e]))
            })?;
            // With a hub invitation, enrolled first: a device code the hub knows
            // is refused next to its field, before anything is written.
            start_session(&state, || {
                amparo_hub::laptop::join(&state.dir, &invitation, &code, &setup, state.kdf).map(|(s, _)| s)
            })
        }
    }
}

#[tauri::command(async)]
pub fn unlock(state: State<'_, AppState>, passphrase: String) -> Res<Unlocked> {
    let passphrase = Zeroizing::new(passphrase);
    start_session(&state, || Store::open(&state.dir, &passphrase))
}

/// A forgotten passphrase: the recovery key and an administrator's name set a new one.
#[tauri::command(async)]
pub fn recover(state: State<'_, AppState>, recovery_key: String, user: String, passphrase: String) -> Res<Unlocked> {
    let (recovery_key, passphrase) = (Zeroizing::new(recovery_key), Zeroizing::new(passphrase));
    start_session(&state, || Store::recover(&state.dir, &recovery_key, &user, &passphrase))
}

/// Close the store, recording why. Locking a locked window is not an error.
fn close_store(state: &AppState, action: Action) -> Res<()> {
    // Even if a command panicked while holding the lock, the store must close.
    let mut guard = state.store.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(store) = guard.take() {
        store.close(action)?;
    }
    Ok(())
}

#[tauri::command(async)]
pub fn lock(state: State<'_, AppState>) -> Res<()> {
    close_store(&state, Action::Lock)
}

/// Quick exit: the window has already hidden everything. Give it a neutral title,
/// clear the clipboard if it still holds something copied from Amparo (`copied`),
/// and lock the store.
#[tauri::command(async)]
pub fn quick_exit<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    title: String,
    copied: Vec<String>,
) -> Res<()> {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.set_title(&title);
    }
    crate::clipboard::clear_if_ours(&app, copied);
    close_store(&state, Action::QuickExit)
}

/// Back from the neutral screen: the window's own title again.
#[tauri::command(async)]
pub fn restore_title<R: Runtime>(app: AppHandle<R>) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.set_title("Amparo");
    }
}

/// Record a print (of a case, or a client document) in the audit trail.
#[tauri::command(async)]
pub fn record_print(state: State<'_, AppState>, case_id: Option<String>, document: String) -> Res<()> {
    // Only a short code travels to the trail.
    let document: String = document.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(40).collect();
    with_store(&state, |s| s.record(Action::Print, case_id.as_deref(), serde_json::json!({ "document": document })))
}

#[tauri::command(async)]
pub fn list_users(state: State<'_, AppState>) -> Res<Vec<User>> {
    with_store(&state, |s| s.users())
}

fn parse_role(role: &str) -> Res<Role> {
    Role::parse(role).ok_or_else(|| CommandError::plain("error.store.bad_request"))
}

#[tauri::command(async)]
pub fn add_user(state: State<'_, AppState>, name: String, role: String, passphrase: String) -> Res<User> {
    let passphrase = Zeroizing::new(passphrase);
    let role = parse_role(&role)?;
    with_store(&state, |s| s.add_user(&name, role, &passphrase))
}

#[tauri::command(async)]
pub fn remove_user(state: State<'_, AppState>, name: String) -> Res<()> {
    with_store(&state, |s| s.remove_user(&name))
}

#[tauri::command(async)]
pub fn set_role(state: State<'_, AppState>, name: String, role: String) -> Res<()> {
    let role = parse_role(&role)?;
    with_store(&state, |s| s.set_role(&name, role))
}

#[tauri::command(async)]
pub fn set_passphrase(state: State<'_, AppState>, name: Option<String>, passphrase: String) -> Res<()> {
    let passphrase = Zeroizing::new(passphrase);
    with_store(&state, |s| s.set_passphrase(name.as_deref(), &passphrase))
}

#[tauri::command(async)]
pub fn get_policy(state: State<'_, AppState>) -> Res<Policy> {
    with_store(&state, |s| s.policy())
}

#[tauri::command(async)]
pub fn set_policy(state: State<'_, AppState>, policy: Policy) -> Res<()> {
    with_store(&state, |s| s.set_policy(&policy))
}

#[tauri::command(async)]
pub fn audit_list(state: State<'_, AppState>, query: AuditQuery) -> Res<Vec<AuditRow>> {
    with_store(&state, |s| s.audit_list(&query))
}

#[tauri::command(async)]
pub fn audit_verify(state: State<'_, AppState>) -> Res<Verification> {
    with_store(&state, |s| s.verify_audit())
}

/// The fact sheet: counts only, for a period and filters.
#[tauri::command(async)]
pub fn fact_sheet(state: State<'_, AppState>, query: amparo::report::ReportQuery) -> Res<amparo::report::FactSheet> {
    with_store(&state, |s| s.fact_sheet(&query))
}

/// De-identified records for partners, saved as CSV in a folder (supervisors).
#[tauri::command(async)]
pub fn deidentified_export(
    state: State<'_, AppState>,
    query: amparo::report::ReportQuery,
    folder: String,
) -> Res<amparo::report::deid::Saved> {
    with_store(&state, |s| s.deidentified_to_folder(&query, &folder))
}

/// The directory entries that match (everyone).
#[tauri::command(async)]
pub fn directory_search(
    state: State<'_, AppState>,
    query: amparo::repositories::directory::DirectoryQuery,
) -> Res<Vec<amparo::repositories::directory::Entry>> {
    with_store(&state, |s| s.directory(&query))
}

/// Add (no id) or change a directory entry.
#[tauri::command(async)]
pub fn save_directory_entry(
    state: State<'_, AppState>,
    id: Option<String>,
    entry: Value,
) -> Res<amparo::repositories::directory::Entry> {
    with_store(&state, |s| s.save_directory_entry(id.as_deref(), entry))
}

/// Import organisations from a CSV file on this computer.
#[tauri::command(async)]
pub fn import_directory(
    state: State<'_, AppState>,
    file: String,
) -> Res<amparo::repositories::directory::ImportReport> {
    with_store(&state, |s| s.import_directory_file(&file))
}

/// Identified cases in HTCDS columns, of the period and filters the fact sheet
/// shows, saved in a folder (supervisors; consent-gated).
#[tauri::command(async)]
pub fn htcds_export(
    state: State<'_, AppState>,
    query: amparo::report::ReportQuery,
    folder: String,
    format: String,
) -> Res<amparo::htcds::Saved> {
    with_store(&state, |s| s.htcds_to_folder(&folder, &format, &query))
}

/// Which of our fields fills each HTCDS column, for the help beside the export.
#[tauri::command]
pub fn htcds_columns() -> Vec<amparo::htcds::ColumnHelp> {
    amparo::htcds::column_help()
}

/// Cases from an HTCDS CSV file on this computer (supervisors).
#[tauri::command(async)]
pub fn htcds_import(state: State<'_, AppState>, file: String) -> Res<amparo::htcds::HtcdsImport> {
    with_store(&state, |s| s.htcds_import_file(&file))
}

/// Refer a case to an organisation of the directory.
#[tauri::command(async)]
pub fn create_referral(state: State<'_, AppState>, id: String, referral: amparo::referral::NewReferral) -> Res<Value> {
    with_store(&state, |s| s.create_referral(&id, &referral))
}

/// Move a referral to another status.
#[tauri::command(async)]
pub fn set_referral_status(state: State<'_, AppState>, id: String, referral_id: String, status: String) -> Res<Value> {
    with_store(&state, |s| s.set_referral_status(&id, &referral_id, &status))
}

/// A case with its personal details, for a printout to share: only with consent.
#[tauri::command(async)]
pub fn share_case(state: State<'_, AppState>, id: String, sharing: String) -> Res<Value> {
    let sharing =
        amparo::consent::Sharing::parse(&sharing).ok_or_else(|| CommandError::plain("error.store.bad_request"))?;
    with_store(&state, |s| s.share_case(&id, sharing))
}

/// A new recovery key, to show once (administrators).
#[tauri::command(async)]
pub fn renew_recovery_key(state: State<'_, AppState>) -> Res<String> {
    with_store(&state, |s| s.renew_recovery_key().map(|k| k.to_string()))
}

/// How many closed cases a purge would remove now.
#[tauri::command(async)]
pub fn purge_preview(state: State<'_, AppState>) -> Res<usize> {
    with_store(&state, |s| Ok(s.purge_candidates(amparo::repositories::cases::today())?.len()))
}

#[tauri::command(async)]
pub fn purge(state: State<'_, AppState>) -> Res<PurgeReport> {
    with_store(&state, |s| s.purge_expired(amparo::repositories::cases::today()))
}

/// The sync screen: this laptop, the other laptops, the folder.
#[derive(Debug, Serialize)]
pub struct SyncState {
    pub status: amparo::sync::SyncStatus,
    pub folder: Option<String>,
}

#[tauri::command(async)]
pub fn sync_state(state: State<'_, AppState>) -> Res<SyncState> {
    with_store(&state, |s| Ok(SyncState { status: s.sync_status()?, folder: s.sync_folder()? }))
}

#[tauri::command(async)]
pub fn set_sync_folder(state: State<'_, AppState>, folder: String) -> Res<()> {
    with_store(&state, |s| s.set_sync_folder(&folder))
}

#[derive(Debug, Serialize)]
pub struct Exported {
    pub file: String,
    pub summary: amparo::sync::ExportSummary,
}

#[tauri::command(async)]
pub fn sync_export(state: State<'_, AppState>) -> Res<Exported> {
    with_store(&state, |s| s.export_to_folder().map(|(file, summary)| Exported { file, summary }))
}

#[tauri::command(async)]
pub fn sync_import(state: State<'_, AppState>) -> Res<Vec<amparo::sync::folder::FileResult>> {
    let report = |p: SyncProgress| {
        if let Ok(mut g) = state.sync_progress.lock() {
            *g = p;
        }
    };
    report(SyncProgress::default());
    with_store(&state, |s| {
        s.import_folder(&mut |file, files, cases, total| report(SyncProgress { file, files, cases, total }))
    })
}

#[tauri::command(async)]
pub fn sync_progress(state: State<'_, AppState>) -> SyncProgress {
    state.sync_progress.lock().map(|g| *g).unwrap_or_default()
}

/// A case's sync state for its view: changes not yet exported, open conflicts.
#[derive(Debug, Serialize)]
pub struct CaseSync {
    pub unexported: bool,
    pub conflicts: Vec<amparo::sync::Conflict>,
}

#[tauri::command(async)]
pub fn case_sync(state: State<'_, AppState>, id: String) -> Res<CaseSync> {
    with_store(&state, |s| Ok(CaseSync { unexported: s.is_unexported(&id)?, conflicts: s.case_conflicts(&id)? }))
}

/// What this person may do with a case: restrict, assign, settle its conflicts.
#[tauri::command(async)]
pub fn case_rights(state: State<'_, AppState>, id: String) -> Res<CaseRights> {
    with_store(&state, |s| s.case_rights_of(&id))
}

/// Settle a conflict (supervisors): keep a value (`keep`) or type a new one (`value`).
#[tauri::command(async)]
pub fn resolve_conflict(
    state: State<'_, AppState>,
    id: String,
    field: String,
    keep: Option<String>,
    value: Option<String>,
) -> Res<Value> {
    let how = match (keep, value) {
        (Some(k), _) => amparo::sync::Resolution::Keep(k),
        (None, Some(v)) => amparo::sync::Resolution::Value(v),
        (None, None) => return Err(CommandError::plain("error.store.bad_request")),
    };
    with_store(&state, |s| s.resolve_conflict(&id, &field, &how))
}

#[derive(Debug, Serialize)]
pub struct Invitation {
    pub file: String,
    pub passphrase: String,
}

/// Invite a laptop (administrators): the invitation goes into the sync folder; the
/// passphrase is shown once, to give separately.
#[tauri::command(async)]
pub fn org_invite(state: State<'_, AppState>) -> Res<Invitation> {
    with_store(&state, |s| {
        // With a hub, the new laptop enrols itself with a one-time token.
        let hub = amparo_hub::laptop::hub_invite(s)?;
        let (file, passphrase) = s.invite_to_folder(hub)?;
        Ok(Invitation { file, passphrase: passphrase.to_string() })
    })
}

/// A person is at the window (keys, pointer), whatever it asks of the store: the
/// shell's own idle lock waits.
#[tauri::command(async)]
pub fn activity(state: State<'_, AppState>) {
    active(&state);
}

/// The hub as the header shows it: connected or not, changes waiting, offline,
/// last synced, and the last sync's progress or refusal.
#[tauri::command(async)]
pub fn hub_status(state: State<'_, AppState>) -> crate::background::HubState {
    crate::background::refresh(&state);
    state.hub.lock().map(|h| h.clone()).unwrap_or_default()
}

/// *Sync now*: push what the hub lacks, pull what this laptop lacks.
#[tauri::command(async)]
pub fn sync_now(state: State<'_, AppState>) -> Res<amparo::sync::hub::HubSummary> {
    crate::background::sync_now(&state)
}

/// Connect this organisation to a new hub (administrators): its address, and the
/// fingerprint and setup code it printed at its first start.
#[tauri::command(async)]
pub fn hub_connect(
    state: State<'_, AppState>,
    url: String,
    fingerprint: String,
    setup_code: String,
) -> Res<amparo::sync::hub::HubSettings> {
    with_store(&state, |s| amparo_hub::laptop::connect(s, &url, &fingerprint, &setup_code))
}

/// A laptop as the Sync screen lists it (no keys, no organisation id).
#[derive(Debug, Serialize)]
pub struct DeviceRow {
    pub code: String,
    /// The last person who changed something on it, as this laptop has heard.
    pub user: Option<String>,
    /// Unix seconds, shown in the UI language's format.
    pub enrolled_at: i64,
    pub last_seen: Option<i64>,
    pub revoked_at: Option<i64>,
    /// This laptop.
    pub me: bool,
}

/// The laptops enrolled with the hub.
#[tauri::command(async)]
pub fn hub_devices(state: State<'_, AppState>) -> Res<Vec<DeviceRow>> {
    let (me, users) = with_store(&state, |s| Ok((s.session().device_id.clone(), s.device_users()?)))?;
    let list = amparo_hub::laptop::devices(&state.store)?;
    Ok(list
        .into_iter()
        .map(|d| DeviceRow {
            me: d.id == me,
            user: users.get(&d.id).cloned(),
            code: d.code,
            enrolled_at: d.enrolled_at,
            last_seen: d.last_seen,
            revoked_at: d.revoked_at,
        })
        .collect())
}

/// Revoke a laptop (administrators): the hub refuses it, and what is written
/// from now on is sealed under a key it does not get.
#[tauri::command(async)]
pub fn hub_revoke(state: State<'_, AppState>, code: String) -> Res<String> {
    let _one = state.syncing.lock().unwrap_or_else(|p| p.into_inner());
    Ok(amparo_hub::laptop::revoke(&state.store, &code)?)
}

#[tauri::command(async)]
pub fn list_cases(state: State<'_, AppState>, query: ListQuery) -> Res<Vec<CaseSummary>> {
    with_store(&state, |s| s.list_cases(&query))
}

#[tauri::command(async)]
pub fn get_case(state: State<'_, AppState>, id: String) -> Res<Value> {
    with_store(&state, |s| s.get_case(&id))
}

#[derive(Debug, Serialize)]
pub struct Check {
    /// The case as it would be saved, derived values filled in.
    pub case: Value,
    pub issues: Vec<Issue>,
}

/// Validate without saving, for checks as the user types.
#[tauri::command(async)]
pub fn check_case(state: State<'_, AppState>, case: Value) -> Res<Check> {
    with_store(&state, |s| {
        let (case, issues) = s.check_case(case);
        Ok(Check { case, issues })
    })
}

#[tauri::command(async)]
pub fn create_case(state: State<'_, AppState>, case: Value, draft_id: Option<String>) -> Res<Value> {
    with_store(&state, |s| s.create_case(case, draft_id.as_deref()))
}

#[tauri::command(async)]
pub fn update_case(state: State<'_, AppState>, id: String, case: Value, draft_id: Option<String>) -> Res<Value> {
    with_store(&state, |s| s.update_case(&id, case, draft_id.as_deref()))
}

#[tauri::command(async)]
pub fn add_note(state: State<'_, AppState>, id: String, text: String, language: Option<String>) -> Res<Value> {
    with_store(&state, |s| s.add_note(&id, &text, language.as_deref()))
}

#[tauri::command(async)]
pub fn save_draft(state: State<'_, AppState>, id: Option<String>, case_id: Option<String>, data: Value) -> Res<String> {
    with_store(&state, |s| s.save_draft(id.as_deref(), case_id.as_deref(), &data))
}

#[tauri::command(async)]
pub fn list_drafts(state: State<'_, AppState>) -> Res<Vec<DraftSummary>> {
    with_store(&state, |s| s.list_drafts())
}

#[tauri::command(async)]
pub fn get_draft(state: State<'_, AppState>, id: String) -> Res<Value> {
    with_store(&state, |s| s.get_draft(&id))
}

#[tauri::command(async)]
pub fn delete_draft(state: State<'_, AppState>, id: String) -> Res<()> {
    with_store(&state, |s| s.delete_draft(&id))
}
