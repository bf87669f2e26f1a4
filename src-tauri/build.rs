// Our commands go through Tauri's ACL like plugin commands do: each gets an
// `allow-<name>` permission and `capabilities/main.json` grants exactly these, with
// no core or plugin permissions besides. Keep this list equal to the handler list
// in src/lib.rs (a test checks the capability against it).
const COMMANDS: &[&str] = &[
    "app_status",
    "htcds_import",
    "htcds_export",
    "set_referral_status",
    "create_referral",
    "import_directory",
    "save_directory_entry",
    "directory_search",
    "deidentified_export",
    "fact_sheet",
    "translations",
    "set_locale",
    "form_definition",
    "passphrase_strength",
    "setup",
    "unlock",
    "list_cases",
    "get_case",
    "check_case",
    "create_case",
    "update_case",
    "add_note",
    "save_draft",
    "list_drafts",
    "get_draft",
    "delete_draft",
    "recover",
    "lock",
    "quick_exit",
    "restore_title",
    "record_print",
    "list_users",
    "add_user",
    "remove_user",
    "set_role",
    "set_passphrase",
    "get_policy",
    "set_policy",
    "audit_list",
    "audit_verify",
    "share_case",
    "purge_preview",
    "purge",
    "renew_recovery_key",
    "sync_state",
    "set_sync_folder",
    "sync_export",
    "sync_import",
    "sync_progress",
    "case_sync",
    "case_rights",
    "hidden_fields",
    "resolve_conflict",
    "org_invite",
];

fn main() {
    let attrs = tauri_build::Attributes::new().app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attrs) {
        panic!("tauri build step failed: {e:#}");
    }
}
