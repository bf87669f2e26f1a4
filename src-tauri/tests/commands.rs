//! The commands through Tauri's mock runtime, with the real context: the same
//! capability and ACL as the app, no display needed.

use amparo::database::keys::KdfParams;
use amparo_app::commands::AppState;
use serde_json::{json, Value};
use tauri::test::{get_ipc_response, mock_builder, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::WebviewWindow;

struct Harness {
    _app: tauri::App<tauri::test::MockRuntime>,
    window: WebviewWindow<tauri::test::MockRuntime>,
    _dir: tempfile::TempDir,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let state = AppState::new(dir.path().join("data"), KdfParams::INSECURE_FOR_TESTS);
    let app = amparo_app::app(mock_builder(), state).build(amparo_app::context()).unwrap();
    let window = match tauri::Manager::get_webview_window(&app, "main") {
        Some(w) => w,
        None => tauri::WebviewWindowBuilder::new(&app, "main", Default::default()).build().unwrap(),
    };
    Harness { _app: app, window, _dir: dir }
}

impl Harness {
    fn call(&self, cmd: &str, body: Value) -> Result<Value, Value> {
        get_ipc_response(
            &self.window,
            InvokeRequest {
                cmd: cmd.into(),
                callback: tauri::ipc::CallbackFn(0),
                error: tauri::ipc::CallbackFn(1),
                url: "tauri://localhost".parse().unwrap(),
                body: tauri::ipc::InvokeBody::Json(body),
                headers: Default::default(),
                invoke_key: INVOKE_KEY.to_string(),
            },
        )
        .map(|b| b.deserialize::<Value>().unwrap())
    }
    fn ok(&self, cmd: &str, body: Value) -> Value {
        self.call(cmd, body).unwrap_or_else(|e| panic!("{cmd} failed: {e}"))
    }
}

fn setup_body() -> Value {
    json!({"setup": {"org": "Casa Amparo", "device_code": "TX3", "user": "Ana", "passphrase": "correct horse battery staple", "locale": "es"}})
}

#[test]
fn first_start_setup_then_cases_through_the_commands() {
    let h = harness();
    let st = h.ok("app_status", json!({}));
    assert_eq!((st["initialized"].as_bool(), st["unlocked"].as_bool()), (Some(false), Some(false)));
    // Locked: case commands refuse, with a key the UI can translate.
    let e = h.call("list_cases", json!({"query": {}})).unwrap_err();
    assert_eq!(e["key"], "error.store.locked");

    let unlocked = h.ok("setup", setup_body());
    assert_eq!(unlocked["session"]["device_code"], "TX3");
    assert_eq!(unlocked["session"]["role"], "Administrator");
    // The recovery key comes once, with the setup; the default idle lock is 5 minutes.
    assert_eq!(unlocked["recovery_key"].as_str().unwrap().len(), 47);
    assert_eq!(unlocked["idle_lock_seconds"], 300);
    let st = h.ok("app_status", json!({}));
    assert_eq!(
        (st["initialized"].as_bool(), st["unlocked"].as_bool(), st["locale"].as_str()),
        (Some(true), Some(true), Some("es"))
    );

    let saved = h.ok("create_case", json!({"case": amparo::sample::full_case(), "draftId": null}));
    let number = saved["case_number"].as_str().unwrap();
    let rows = h.ok("list_cases", json!({"query": {"text": "rosa"}}));
    assert_eq!(rows[0]["case_number"], number);
    assert_eq!(rows[0]["alias"], "Rosa");
    let got = h.ok("get_case", json!({"id": saved["id"]}));
    assert_eq!(got, saved);
    let note = h.ok("add_note", json!({"id": saved["id"], "text": "Cita el lunes", "language": "es"}));
    assert_eq!(note["author"], "Ana");
}

#[test]
fn invalid_input_comes_back_as_field_issues_with_keys() {
    let h = harness();
    let e = h
        .call("setup", json!({"setup": {"org": "", "device_code": "T", "user": "Ana", "passphrase": "short"}}))
        .unwrap_err();
    let paths: Vec<&str> = e["issues"].as_array().unwrap().iter().map(|i| i["path"].as_str().unwrap()).collect();
    assert_eq!(paths, vec!["org", "device_code", "passphrase"]);
    assert_eq!(e["issues"][2]["error"]["key"], "error.field.passphrase_too_short");
    assert_eq!(e["issues"][2]["error"]["args"]["min"], "12");
    h.ok("setup", setup_body());
    let mut case = amparo::sample::full_case();
    case["people"][0]["birth_date"] = json!("2999-01-01");
    let c = h.ok("check_case", json!({"case": case}));
    assert_eq!(c["issues"][0]["path"], "people.0.birth_date");
    assert_eq!(c["issues"][0]["error"]["key"], "error.field.date_in_future");
    // Derived values are there even while another field has a problem.
    assert_eq!(c["case"]["people"][1]["majority_at_intake"], "Minor");
    let e = h.call("create_case", json!({"case": case, "draftId": null})).unwrap_err();
    assert_eq!(e["key"], "error.store.invalid");
    // A valid check returns the derived values for the form to show.
    let ok = h.ok("check_case", json!({"case": amparo::sample::full_case()}));
    assert_eq!(ok["issues"], json!([]));
    assert_eq!(ok["case"]["people"][0]["majority_at_intake"], "Minor");
    // The window asks the core which follow-up questions to show.
    let hidden =
        h.ok("hidden_fields", json!({"case": {"trafficking_type": "Labour", "people": [{"role": "DependentChild"}]}}));
    let hidden: Vec<&str> = hidden.as_array().unwrap().iter().filter_map(|p| p.as_str()).collect();
    assert!(hidden.contains(&"type_of_sex_exploitation") && !hidden.contains(&"forced_labour_industry"), "{hidden:?}");
    assert!(!hidden.contains(&"people.0.in_trafficker_control"), "{hidden:?}");
}

#[test]
fn drafts_and_unlock_through_the_commands() {
    let h = harness();
    h.ok("setup", setup_body());
    let id = h.ok(
        "save_draft",
        json!({"id": null, "caseId": null, "data": {"people": [{"role": "PotentialVictim", "alias": "Paty"}]}}),
    );
    let drafts = h.ok("list_drafts", json!({}));
    assert_eq!(drafts[0]["alias"], "Paty");
    assert_eq!(h.ok("get_draft", json!({"id": id}))["people"][0]["alias"], "Paty");
    h.ok("delete_draft", json!({"id": id}));
    assert_eq!(h.ok("list_drafts", json!({})), json!([]));
    let e = h.call("unlock", json!({"passphrase": "wrong wrong wrong"})).unwrap_err();
    assert_eq!(e["key"], "error.store.wrong_passphrase");
    let again = h.ok("unlock", json!({"passphrase": "correct horse battery staple"}));
    assert_eq!(again["recovery_key"], Value::Null);
}

#[test]
fn lock_quick_exit_users_and_the_audit_trail_through_the_commands() {
    let h = harness();
    h.ok("setup", setup_body());
    h.ok("add_user", json!({"name": "Rosa", "role": "Caseworker", "passphrase": "rosa camina por el río"}));
    h.ok("create_case", json!({"case": amparo::sample::full_case(), "draftId": null}));
    let e = h.call("add_user", json!({"name": "rosa", "role": "Caseworker", "passphrase": "x"})).unwrap_err();
    let keys: Vec<&str> = e["issues"].as_array().unwrap().iter().map(|i| i["error"]["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["error.field.name_taken", "error.field.passphrase_too_short"]);
    h.ok("set_policy", json!({"policy": {"idle_lock_minutes": 2, "retention_months": null}}));
    h.ok("lock", json!({}));
    assert_eq!(h.call("list_cases", json!({"query": {}})).unwrap_err()["key"], "error.store.locked");
    // Locking twice is harmless.
    h.ok("lock", json!({}));

    let rosa = h.ok("unlock", json!({"passphrase": "rosa camina por el río"}));
    assert_eq!((rosa["session"]["role"].as_str(), rosa["idle_lock_seconds"].as_u64()), (Some("Caseworker"), Some(120)));
    // The window offers what the core says this person may do, on the app and on a case.
    let rights = &rosa["rights"];
    assert_eq!((&rights["supervise"], &rights["administer"]), (&json!(false), &json!(false)));
    assert_eq!(rights["roles"], json!(["Caseworker", "Supervisor", "Administrator"]));
    assert!(rights["audit_actions"].as_array().unwrap().iter().any(|a| a == "QuickExit"), "{rights}");
    let theirs = h.ok("list_cases", json!({"query": {}}))[0]["id"].clone();
    assert_eq!(
        h.ok("case_rights", json!({"id": theirs})),
        json!({"restrict": false, "assign": false, "resolve_conflicts": false})
    );
    let e = h.call("add_user", json!({"name": "Eve", "role": "Administrator", "passphrase": "a long enough phrase"}));
    assert_eq!(e.unwrap_err()["key"], "error.store.needs_administrator");
    assert_eq!(h.call("audit_list", json!({"query": {}})).unwrap_err()["key"], "error.store.needs_supervisor");
    h.ok("quick_exit", json!({"title": "Untitled", "copied": []}));
    assert_eq!(h.ok("app_status", json!({}))["unlocked"], false);

    h.ok("unlock", json!({"passphrase": "correct horse battery staple"}));
    let rows = h.ok("audit_list", json!({"query": {"limit": 5}}));
    let actions: Vec<&str> = rows.as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["Unlock", "QuickExit", "Unlock", "Lock", "PolicyChanged"]);
    assert_eq!(rows[1]["user_name"], "Rosa");
    let v = h.ok("audit_verify", json!({}));
    assert_eq!(v["problem"], Value::Null);
    let users = h.ok("list_users", json!({}));
    assert_eq!(users.as_array().unwrap().len(), 2);
    h.ok("remove_user", json!({"name": "Rosa"}));
    h.ok("lock", json!({}));
    let e = h.call("unlock", json!({"passphrase": "rosa camina por el río"})).unwrap_err();
    assert_eq!(e["key"], "error.store.wrong_passphrase");
}

#[test]
fn translations_and_form_definition_come_from_the_core() {
    let h = harness();
    let es = h.ok("translations", json!({"locale": "es"}));
    assert_eq!(es["nav.new_intake"], "Nueva admisión");
    let en = h.ok("translations", json!({"locale": "en"}));
    assert_eq!(en.as_object().unwrap().len(), es.as_object().unwrap().len());
    let def = h.ok("form_definition", json!({}));
    let people = &def["sections"][1]["fields"][0];
    assert_eq!(people["kind"], "list");
    let alias = people["item"].as_array().unwrap().iter().find(|f| f["key"] == "alias").unwrap();
    assert_eq!((alias["pii"].as_bool(), alias["label"].as_str()), (Some(true), Some("field.people.alias")));
    assert_eq!(h.ok("passphrase_strength", json!({"passphrase": "abc"}))["key"], "setup.strength.too_short");
}

#[test]
fn the_window_may_call_nothing_but_our_commands() {
    let h = harness();
    // Core plugin commands are not granted by our capability.
    for cmd in ["plugin:window|close", "plugin:event|listen", "plugin:webview|print", "plugin:path|resolve_directory"] {
        let e = h.call(cmd, json!({})).unwrap_err();
        assert!(e.to_string().to_lowercase().contains("not allowed"), "{cmd}: {e}");
    }
    // And the capability grants exactly the commands build.rs declares.
    let cap: Value = serde_json::from_str(include_str!("../capabilities/main.json")).unwrap();
    let build = include_str!("../build.rs");
    let declared: Vec<String> = build
        .lines()
        .filter_map(|l| l.trim().strip_prefix('"').and_then(|l| l.strip_suffix("\",")))
        .map(|c| format!("allow-{}", c.replace('_', "-")))
        .collect();
    assert_eq!(
        cap["permissions"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect::<Vec<_>>(),
        declared
    );
    // …which are the handlers the app registers, one for one.
    let handlers: Vec<String> = include_str!("../src/lib.rs")
        .lines()
        .filter_map(|l| l.trim().strip_prefix("$crate::commands::").and_then(|l| l.strip_suffix(',')))
        .map(|c| format!("allow-{}", c.replace('_', "-")))
        .collect();
    assert_eq!(handlers, declared);
    assert_eq!(declared.len(), 61);
}

#[test]
fn the_csp_allows_no_remote_or_inline_sources() {
    let conf: Value = serde_json::from_str(include_str!("../tauri.conf.json")).unwrap();
    let csp = &conf["app"]["security"]["csp"];
    for (directive, value) in csp.as_object().unwrap() {
        let v = value.as_str().unwrap();
        assert!(!v.contains("unsafe-inline") && !v.contains("unsafe-eval"), "{directive}: {v}");
        assert!(!v.contains("https:") && !v.contains('*'), "{directive}: {v}");
    }
    assert_eq!(csp["script-src"], "'self'");
    assert_eq!(csp["default-src"], "'self'");
    assert_eq!(conf["app"]["windows"].as_array().unwrap().len(), 1);
}

#[test]
fn the_ui_never_builds_html_from_strings() {
    // Text reaches the page through textContent and text nodes only; these would
    // parse a string as HTML (and run whatever a hostile alias carried).
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui");
    let mut files = vec![dir.join("index.html")];
    let mut folders = vec![dir.join("js")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 5, "{files:?}");
    for f in files {
        let src = std::fs::read_to_string(&f).unwrap();
        let code: String = src.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
        for api in
            ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "<script>"]
        {
            assert!(!code.contains(api), "{} uses {api}", f.display());
        }
    }
}

/// Two app states (two laptops) through the commands: invite into the folder, join
/// at setup (a wrong invitation passphrase comes back as its key), write and read
/// bundles, progress, a case's sync state and a resolution.
#[test]
fn sync_through_a_folder_with_the_commands() {
    let (a, b) = (harness(), harness());
    let usb = tempfile::tempdir().unwrap();
    let folder = usb.path().to_str().unwrap();
    a.ok("setup", setup_body());
    let e = a.call("set_sync_folder", json!({"folder": "/no/such/folder"})).unwrap_err();
    assert_eq!(e["issues"][0]["error"]["key"], "error.field.not_a_folder");
    a.ok("set_sync_folder", json!({"folder": folder}));
    let inv = a.ok("org_invite", json!({}));
    let file = inv["file"].as_str().unwrap();
    assert!(std::path::Path::new(file).is_file());
    let join_setup = json!({"org": "-", "device_code": "TX4", "user": "Berta", "passphrase": "otra frase bastante larga", "locale": "es"});
    let e = b
        .call("setup", json!({"setup": join_setup, "join": {"file": file, "passphrase": "AAAAA-AAAAA-AAAAA-AAAAA"}}))
        .unwrap_err();
    assert_eq!(e["key"], "error.sync.wrong_invite_passphrase");
    let e =
        b.call("setup", json!({"setup": join_setup, "join": {"file": "/nope.json", "passphrase": "x"}})).unwrap_err();
    assert_eq!(e["issues"][0]["path"], "invitation_file");
    let joined = b.ok("setup", json!({"setup": join_setup, "join": {"file": file, "passphrase": inv["passphrase"]}}));
    assert_eq!(joined["session"]["org"], "Casa Amparo");
    b.ok("set_sync_folder", json!({"folder": folder}));

    let case = a.ok("create_case", json!({"case": amparo::sample::full_case(), "draftId": null}));
    let id = case["id"].as_str().unwrap();
    assert_eq!(a.ok("case_sync", json!({"id": id}))["unexported"], true);
    let listed = a.ok("list_cases", json!({"query": {}}));
    assert_eq!(listed[0]["unexported"], true);
    let out = a.ok("sync_export", json!({}));
    assert!(out["file"].as_str().unwrap().starts_with("amparo-TX3-"));
    assert_eq!(a.ok("case_sync", json!({"id": id}))["unexported"], false);
    let read = b.ok("sync_import", json!({}));
    let files = read.as_array().unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["summary"]["new_cases"], 1);
    let p = b.ok("sync_progress", json!({}));
    assert_eq!((p["file"].as_u64(), p["files"].as_u64()), (Some(1), Some(1)));
    let state = b.ok("sync_state", json!({}));
    assert_eq!(state["folder"], folder);
    assert_eq!(state["status"]["peers"][0]["device_code"], "TX3");

    // The same field on both; the conflict, then a resolution by a supervisor.
    let mut edit = case.clone();
    edit["status"] = json!("FollowUp");
    a.ok("update_case", json!({"id": id, "case": edit, "draftId": null}));
    let mut other = b.ok("get_case", json!({"id": id}));
    other["status"] = json!("Closed");
    b.ok("update_case", json!({"id": id, "case": other, "draftId": null}));
    a.ok("sync_export", json!({}));
    b.ok("sync_import", json!({}));
    let cs = b.ok("case_sync", json!({"id": id}));
    let conflict = &cs["conflicts"][0];
    assert_eq!(conflict["path"], "status");
    assert_eq!(conflict["values"].as_array().unwrap().len(), 2);
    assert_eq!(
        b.call("resolve_conflict", json!({"id": id, "field": "status"})).unwrap_err()["key"],
        "error.store.bad_request"
    );
    let bad = b.call("resolve_conflict", json!({"id": id, "field": "status", "value": "Nope"})).unwrap_err();
    assert_eq!(bad["issues"][0]["error"]["key"], "error.field.unknown_code");
    let done = b.ok("resolve_conflict", json!({"id": id, "field": "status", "keep": conflict["values"][1]["choice"]}));
    assert_eq!(done["status"], conflict["values"][1]["value"]);
    assert!(b.ok("case_sync", json!({"id": id}))["conflicts"].as_array().unwrap().is_empty());
}

/// Reports, directory, referrals and the partner exports through the commands:
/// answers as the UI reads them, refusals as keys next to their fields.
#[test]
fn report_directory_referrals_and_exports_through_the_commands() {
    let h = harness();
    h.ok("setup", setup_body());
    let case = json!({"format": "amparo.case/1", "intake_date": "2026-03-14", "status": "Active", "venues": ["HotelMotel"],
        "people": [{"role": "PotentialVictim", "gender": "Female", "age_estimate": 30, "preferred_language": "es"}],
        "needs": [{"service": "Shelter", "status": "Identified"}]});
    let saved = h.ok("create_case", json!({"case": case, "draftId": null}));

    let sheet = h.ok("fact_sheet", json!({"query": {}}));
    assert_eq!((sheet["cases"].as_u64(), sheet["demographics"]["female"].as_u64()), (Some(1), Some(1)));
    assert_eq!(h.ok("fact_sheet", json!({"query": {"k": 11}}))["cases"], "<11");
    let e = h.call("fact_sheet", json!({"query": {"from": "2026-05-01", "to": "2026-01-01"}})).unwrap_err();
    assert_eq!(
        (e["issues"][0]["path"].as_str(), e["issues"][0]["error"]["key"].as_str()),
        (Some("to"), Some("error.field.end_before_start"))
    );

    let e = h.call("deidentified_export", json!({"query": {}, "folder": "/no/such/folder"})).unwrap_err();
    assert_eq!(e["issues"][0]["path"], "folder");
    let folder = tempfile::tempdir().unwrap();
    let out = h.ok("deidentified_export", json!({"query": {"k": 2}, "folder": folder.path()}));
    assert_eq!((out["records"].as_u64(), out["dropped"].as_u64()), (Some(0), Some(1)));
    assert!(folder.path().join(out["file"].as_str().unwrap()).is_file());
    let out = h.ok("htcds_export", json!({"query": {}, "folder": folder.path(), "format": "json"}));
    assert_eq!((out["cases"].as_u64(), out["left_out"].as_u64()), (Some(0), Some(1)));
    // Of a period, as the fact sheet: none outside it, and a period backwards is
    // refused next to its field.
    let out = h.ok("htcds_export", json!({"query": {"from": "2099-01-01"}, "folder": folder.path(), "format": "csv"}));
    assert_eq!((out["cases"].as_u64(), out["left_out"].as_u64()), (Some(0), Some(0)));
    let e = h
        .call(
            "htcds_export",
            json!({"query": {"from": "2026-02-01", "to": "2026-01-01"}, "folder": folder.path(), "format": "csv"}),
        )
        .unwrap_err();
    assert_eq!(e["issues"][0]["path"], "to");
    let help = h.ok("htcds_columns", json!({}));
    let gender = help.as_array().unwrap().iter().find(|c| c["column"] == "prs_Gender").unwrap();
    assert_eq!(gender["fields"], json!(["field.people.gender"]));
    let e = h.call("htcds_import", json!({"file": "/no/such/file.csv"})).unwrap_err();
    assert_eq!(e["issues"][0]["path"], "file");

    let hotlines = h.ok("directory_search", json!({"query": {"text": "trata"}}));
    assert_eq!(hotlines.as_array().unwrap().len(), 1);
    let e = h
        .call("save_directory_entry", json!({"id": null, "entry": {"name": "X", "country": "MX", "phone": "123"}}))
        .unwrap_err();
    assert_eq!(e["issues"][0]["path"], "phone");
    let org = h.ok(
        "save_directory_entry",
        json!({"id": null, "entry": {"name": "Albergue", "country": "MX", "services": ["Shelter"]}}),
    );
    let e = h.call("import_directory", json!({"file": "/no/such.csv"})).unwrap_err();
    assert_eq!(e["issues"][0]["path"], "file");

    let need = saved["needs"][0]["id"].clone();
    let e = h
        .call("create_referral", json!({"id": saved["id"], "referral": {"organisation": org["id"], "service": "Shelter", "shares_pii": true}}))
        .unwrap_err();
    assert_eq!(e["key"], "error.consent.missing.referral");
    let r = h.ok(
        "create_referral",
        json!({"id": saved["id"], "referral": {"organisation": org["id"], "service": "Shelter", "shares_pii": false, "need": need}}),
    );
    assert_eq!((r["status"].as_str(), r["organisation_name"].as_str()), (Some("Pending"), Some("Albergue")));
    let moved = h.ok("set_referral_status", json!({"id": saved["id"], "referralId": r["id"], "status": "Completed"}));
    assert_eq!(moved["status"], "Completed");
    assert_eq!(h.ok("get_case", json!({"id": saved["id"]}))["needs"][0]["status"], "Referred");
}

/// The shell locks the store itself once the window has shown no sign of a person
/// for longer than the idle lock (and a grace): a hung page cannot keep it open.
#[test]
fn the_shell_locks_an_idle_store_even_if_the_page_hangs() {
    let h = harness();
    h.ok("setup", setup_body());
    let state = tauri::Manager::state::<amparo_app::commands::AppState>(&h._app);
    let now = std::time::Instant::now();
    assert!(!amparo_app::background::enforce_idle(&state, now), "just unlocked");
    h.ok("activity", json!({}));
    assert_eq!(h.ok("app_status", json!({}))["unlocked"], json!(true));
    let later = std::time::Instant::now() + std::time::Duration::from_secs(24 * 3600);
    assert!(amparo_app::background::enforce_idle(&state, later), "locked by the shell");
    assert_eq!(h.ok("app_status", json!({}))["unlocked"], json!(false));
    let e = h.call("list_cases", json!({"query": {}})).unwrap_err();
    assert_eq!(e["key"], "error.store.locked");
}
