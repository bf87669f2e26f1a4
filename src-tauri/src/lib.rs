//! Amparo's desktop shell: one window, our own commands, a strict CSP. The work is
//! all in the `amparo` core; see `commands` for the thin layer between.

pub mod background;
mod clipboard;
pub mod commands;

use amparo::database::keys::KdfParams;
use commands::AppState;

/// The commands the window may call. `build.rs` lists the same names for the ACL.
#[macro_export]
macro_rules! handlers {
    () => {
        tauri::generate_handler![
            $crate::commands::app_status,
            $crate::commands::htcds_import,
            $crate::commands::htcds_export,
            $crate::commands::htcds_columns,
            $crate::commands::set_referral_status,
            $crate::commands::create_referral,
            $crate::commands::import_directory,
            $crate::commands::save_directory_entry,
            $crate::commands::directory_search,
            $crate::commands::deidentified_export,
            $crate::commands::fact_sheet,
            $crate::commands::translations,
            $crate::commands::set_locale,
            $crate::commands::form_definition,
            $crate::commands::passphrase_strength,
            $crate::commands::setup,
            $crate::commands::unlock,
            $crate::commands::list_cases,
            $crate::commands::get_case,
            $crate::commands::check_case,
            $crate::commands::create_case,
            $crate::commands::update_case,
            $crate::commands::add_note,
            $crate::commands::save_draft,
            $crate::commands::list_drafts,
            $crate::commands::get_draft,
            $crate::commands::delete_draft,
            $crate::commands::recover,
            $crate::commands::lock,
            $crate::commands::quick_exit,
            $crate::commands::restore_title,
            $crate::commands::record_print,
            $crate::commands::list_users,
            $crate::commands::add_user,
            $crate::commands::remove_user,
            $crate::commands::set_role,
            $crate::commands::set_passphrase,
            $crate::commands::get_policy,
            $crate::commands::set_policy,
            $crate::commands::audit_list,
            $crate::commands::audit_verify,
            $crate::commands::share_case,
            $crate::commands::purge_preview,
            $crate::commands::purge,
            $crate::commands::renew_recovery_key,
            $crate::commands::sync_state,
            $crate::commands::set_sync_folder,
            $crate::commands::sync_export,
            $crate::commands::sync_import,
            $crate::commands::sync_progress,
            $crate::commands::case_sync,
            $crate::commands::case_rights,
            $crate::commands::hidden_fields,
            $crate::commands::resolve_conflict,
            $crate::commands::org_invite,
            $crate::commands::hub_status,
            $crate::commands::sync_now,
            $crate::commands::hub_connect,
            $crate::commands::hub_devices,
            $crate::commands::hub_revoke,
            $crate::commands::activity,
        ]
    };
}

/// The app with its state and commands, on any runtime (the real one, or Tauri's
/// mock runtime in tests).
pub fn app<R: tauri::Runtime>(builder: tauri::Builder<R>, state: AppState) -> tauri::Builder<R> {
    builder.manage(state).invoke_handler(handlers!())
}

/// The compiled-in configuration, assets, CSP and capabilities.
pub fn context<R: tauri::Runtime>() -> tauri::Context<R> {
    tauri::generate_context!()
}

pub fn run() {
    let dir = amparo::database::default_data_dir();
    let builder = tauri::Builder::default().setup(|app| {
        background::start(app.handle().clone());
        Ok(())
    });
    let result = app(builder, AppState::new(dir, KdfParams::for_new_store())).run(context());
    if let Err(e) = result {
        eprintln!("Amparo could not start: {e}");
        std::process::exit(1);
    }
}
