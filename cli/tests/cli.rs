//! The `amparo` binary as an administrator's script would use it.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

const PASS: &str = "una frase bastante larga";

fn amparo(dir: &Path, args: &[&str]) -> Output {
    amparo_env(dir, args, &[("AMPARO_PASSPHRASE", PASS)])
}

fn amparo_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_amparo"));
    cmd.args(args).env("AMPARO_DATA_DIR", dir).env("AMPARO_LOCALE", "en").env_remove("AMPARO_PASSPHRASE");
    // New stores are sealed at the test cost: these tests are about the CLI, not
    // Argon2 (`init_seals_at_the_shipped_cost` checks the real one).
    cmd.env("AMPARO_INSECURE_TEST_KDF", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run amparo")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn err(o: &Output) -> String {
    assert!(!o.status.success(), "should have failed: {}", String::from_utf8_lossy(&o.stdout));
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn init(dir: &Path) {
    ok(&amparo(dir, &["init", "--org", "Casa Amparo", "--device", "TX3", "--user", "Ana"]));
}

fn write_jsonl(path: &Path, cases: &[Value]) {
    let text: String = cases.iter().map(|c| serde_json::to_string(c).unwrap() + "\n").collect();
    std::fs::write(path, text).unwrap();
}

/// Without the test switch, the binary seals a new store at the shipped Argon2id
/// cost (64 MiB, 3 passes), and that store unlocks.
#[test]
fn init_seals_at_the_shipped_cost() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let o = amparo_env(
        &dir,
        &["init", "--org", "Casa Amparo", "--device", "TX3", "--user", "Ana"],
        &[("AMPARO_PASSPHRASE", PASS), ("AMPARO_INSECURE_TEST_KDF", "0")],
    );
    ok(&o);
    let keys: Value = serde_json::from_slice(&std::fs::read(dir.join("keys.json")).unwrap()).unwrap();
    for seal in keys["keys"].as_array().unwrap().iter().chain([&keys["recovery"]]) {
        assert_eq!(seal["params"], serde_json::json!({"m_kib": 65536, "t": 3, "p": 1}), "{seal}");
    }
    let info = ok(&amparo_env(&dir, &["info"], &[("AMPARO_PASSPHRASE", PASS), ("AMPARO_INSECURE_TEST_KDF", "0")]));
    assert!(info.contains("Cases: 0"), "{info}");
}

#[test]
fn import_a_thousand_cases_search_and_export_them_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    init(&dir);
    let cases: Vec<Value> = (0..1000).map(amparo::sample::generated).collect();
    let file = tmp.path().join("cases.jsonl");
    write_jsonl(&file, &cases);
    let out = ok(&amparo(&dir, &["import", file.to_str().unwrap()]));
    assert!(out.contains("1000 cases imported"), "{out}");
    let info = ok(&amparo(&dir, &["info"]));
    assert!(info.contains("Cases: 1000"), "{info}");
    let v = amparo::database::schema::latest_version();
    assert!(info.contains(&format!("Schema version: {v} / {v}")), "{info}");

    // Search finds exactly the cases whose alias is "Chabela" (ignoring the other
    // fields that could also match that word, which generated cases never use).
    let expected =
        cases.iter().filter(|c| c["people"].as_array().unwrap().iter().any(|p| p["alias"] == "Chabela")).count();
    let found = ok(&amparo(&dir, &["search", "chabe"]));
    assert_eq!(found.lines().count(), expected);
    assert!(expected > 10);

    let export = tmp.path().join("export.jsonl");
    ok(&amparo(&dir, &["export", "--out", export.to_str().unwrap()]));
    let exported: Vec<Value> =
        std::fs::read_to_string(&export).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(exported.len(), 1000);
    for (i, (e, c)) in exported.iter().zip(&cases).enumerate() {
        assert_eq!(&amparo::sample::without_assigned(e), c, "case {i}");
        assert!(e["case_number"].as_str().unwrap().starts_with("TX3-"));
    }
    // Export to standard output gives the same lines.
    let stdout = ok(&amparo(&dir, &["export"]));
    assert_eq!(stdout, std::fs::read_to_string(&export).unwrap());
}

#[test]
fn a_bad_import_names_line_and_field_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    init(&dir);
    let mut cases: Vec<Value> = (0..5).map(amparo::sample::generated).collect();
    cases[2]["people"][0]["safe_phone"] = "555-1234".into();
    let file = tmp.path().join("bad.jsonl");
    write_jsonl(&file, &cases);
    let e = err(&amparo(&dir, &["import", file.to_str().unwrap()]));
    assert!(e.contains("Nothing was imported: 1 lines"), "{e}");
    assert!(e.contains("line 3, people.0.safe_phone: Please enter the number in international format"), "{e}");
    assert_eq!(ok(&amparo(&dir, &["list"])), "");
    // In Spanish too.
    let e = err(&amparo_env(
        &dir,
        &["import", file.to_str().unwrap()],
        &[("AMPARO_PASSPHRASE", PASS), ("AMPARO_LOCALE", "es")],
    ));
    assert!(e.contains("línea 3, people.0.safe_phone: Escriba el número en formato internacional"), "{e}");
    // With --skip-invalid the others go in, and the bad one is listed.
    let o = amparo(&dir, &["import", "--skip-invalid", file.to_str().unwrap()]);
    assert!(ok(&o).contains("4 cases imported"));
    assert!(String::from_utf8_lossy(&o.stderr).contains("line 3"));
    assert_eq!(ok(&amparo(&dir, &["list"])).lines().count(), 4);
}

#[test]
fn show_set_and_list_by_status() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    init(&dir);
    let file = tmp.path().join("one.jsonl");
    write_jsonl(&file, &[amparo::sample::full_case()]);
    ok(&amparo(&dir, &["import", file.to_str().unwrap()]));
    let line = ok(&amparo(&dir, &["list"]));
    let number = line.split('\t').next().unwrap().to_string();
    let o =
        ok(&amparo(&dir, &["set", &number, "status=Closed", "people.0.alias=Lupita", "venues=HotelMotel,TruckStop"]));
    assert!(o.contains(&format!("Case {number} updated")));
    let shown: Value = serde_json::from_str(&ok(&amparo(&dir, &["show", &number]))).unwrap();
    assert_eq!(shown["status"], "Closed");
    assert_eq!(shown["people"][0]["alias"], "Lupita");
    assert_eq!(shown["venues"], serde_json::json!(["HotelMotel", "TruckStop"]));
    assert_eq!(ok(&amparo(&dir, &["list", "--status", "Closed"])).lines().count(), 1);
    assert_eq!(ok(&amparo(&dir, &["list", "--status", "Active"])).lines().count(), 0);
    let e = err(&amparo(&dir, &["set", &number, "people.0.birth_date=2999-01-01"]));
    assert!(e.contains("people.0.birth_date: Please check this date: it is in the future."), "{e}");
    let e = err(&amparo(&dir, &["set", &number, "status"]));
    assert!(e.contains("Expected FIELD=VALUE"), "{e}");
    let e = err(&amparo(&dir, &["show", "TX3-1999-0001"]));
    assert!(e.contains("Case TX3-1999-0001 was not found."), "{e}");
}

#[test]
fn failures_exit_non_zero_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let e = err(&amparo(&dir, &["list"]));
    assert!(e.contains("has not been set up"), "{e}");
    init(&dir);
    let e = err(&amparo(&dir, &["init", "--org", "X", "--device", "AB", "--user", "Y"]));
    assert!(e.contains("already set up"), "{e}");
    let e = err(&amparo_env(&dir, &["list"], &[("AMPARO_PASSPHRASE", "not the passphrase")]));
    assert!(e.contains("That passphrase did not open the store."), "{e}");
    // No passphrase and no terminal: say how to give one instead of hanging.
    let e = err(&amparo_env(&dir, &["list"], &[]));
    assert!(e.contains("AMPARO_PASSPHRASE"), "{e}");
    let e = err(&amparo(&dir, &["import", "/nonexistent/file.jsonl"]));
    assert!(e.contains("Cannot open /nonexistent/file.jsonl"), "{e}");
    let other = tmp.path().join("other");
    let e = err(&amparo(&other, &["init", "--org", "X", "--device", "A-B", "--user", "Y"]));
    assert!(e.contains("device_code: Please use 2 to 8 letters or digits"), "{e}");
}

const ROSA: &str = "rosa camina por el río";

#[test]
fn users_roles_recovery_and_the_audit_trail_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let created = ok(&amparo(&dir, &["init", "--org", "Casa Amparo", "--device", "TX3", "--user", "Ana"]));
    assert!(created.contains("shown only this once"), "{created}");
    assert!(created.contains("nobody can recover the data"), "{created}");
    let key = created.lines().map(str::trim).find(|l| l.len() == 47 && l.split('-').count() == 8).unwrap().to_string();
    let as_ana = |args: &[&str], extra: &[(&str, &str)]| {
        let mut env = vec![("AMPARO_PASSPHRASE", PASS), ("AMPARO_USER", "Ana")];
        env.extend_from_slice(extra);
        amparo_env(&dir, args, &env)
    };
    let as_rosa = |args: &[&str]| amparo_env(&dir, args, &[("AMPARO_PASSPHRASE", ROSA), ("AMPARO_USER", "Rosa")]);

    let o = ok(&as_ana(&["user", "add", "Rosa", "--role", "caseworker"], &[("AMPARO_NEW_PASSPHRASE", ROSA)]));
    assert!(o.contains("Rosa can now unlock Amparo"), "{o}");
    // Two users: a script must say who it is.
    let e = err(&amparo(&dir, &["list"]));
    assert!(e.contains("AMPARO_USER"), "{e}");
    let users = ok(&as_rosa(&["user", "list"]));
    assert!(users.contains("Ana\tAdministrator") && users.contains("Rosa\tCaseworker"), "{users}");
    // Rosa works with a caseworker's rights.
    ok(&as_rosa(&["list"]));
    let e = err(&as_rosa(&["user", "add", "Eve"]));
    assert!(e.contains("Only an administrator can do this."), "{e}");
    let e = err(&as_rosa(&["audit", "verify"]));
    assert!(e.contains("Only a supervisor or an administrator"), "{e}");
    let e = err(&as_rosa(&["export"]));
    assert!(e.contains("Only a supervisor or an administrator"), "{e}");
    // Rosa's passphrase is not Ana's.
    let e = err(&amparo_env(&dir, &["list"], &[("AMPARO_PASSPHRASE", ROSA), ("AMPARO_USER", "Ana")]));
    assert!(e.contains("That passphrase did not open the store."), "{e}");
    let e = err(&as_ana(&["user", "add", "Eve", "--role", "Boss"], &[]));
    assert!(e.contains("Unknown role"), "{e}");

    let v = ok(&as_ana(&["audit", "verify"], &[]));
    assert!(v.contains("The audit trail is intact") && v.contains("1 device"), "{v}");
    let failed = ok(&as_ana(&["audit", "list", "--action", "FailedUnlock"], &[]));
    assert_eq!(failed.lines().count(), 1, "{failed}");
    assert!(failed.contains("\tTX3\t") && failed.contains("\t-\tFailedUnlock"), "{failed}");

    // Ana forgets her passphrase; the recovery key (typed loosely) restores her access.
    let typed = key.to_lowercase().replace('-', " ");
    let o = amparo_env(
        &dir,
        &["recover", "--user", "Ana"],
        &[("AMPARO_RECOVERY_KEY", &typed), ("AMPARO_NEW_PASSPHRASE", "ana recuerda otra frase")],
    );
    assert!(ok(&o).contains("Access restored: Ana"));
    let e = err(&as_ana(&["list"], &[]));
    assert!(e.contains("did not open"), "{e}");
    let new_ana = [("AMPARO_PASSPHRASE", "ana recuerda otra frase"), ("AMPARO_USER", "Ana")];
    // A new recovery key replaces the old one.
    let renewed = ok(&amparo_env(&dir, &["recovery-key"], &new_ana));
    let new_key = renewed.lines().map(str::trim).find(|l| l.len() == 47).unwrap().to_string();
    assert_ne!(new_key, key);
    let again = [("AMPARO_RECOVERY_KEY", key.as_str()), ("AMPARO_NEW_PASSPHRASE", "ana recuerda otra frase")];
    let e = err(&amparo_env(&dir, &["recover", "--user", "Ana"], &again));
    assert!(e.contains("recovery key did not open"), "{e}");
    let recovered = ok(&amparo_env(&dir, &["audit", "list", "--action", "Recover"], &new_ana));
    assert_eq!(recovered.lines().count(), 1);
    // Removing Rosa ends her access.
    ok(&amparo_env(&dir, &["user", "remove", "Rosa"], &new_ana));
    let e = err(&as_rosa(&["list"]));
    assert!(e.contains("did not open"), "{e}");
    ok(&amparo_env(&dir, &["list"], &[("AMPARO_PASSPHRASE", "ana recuerda otra frase")]));
}

#[test]
fn share_needs_consent_and_policies_and_purge_are_for_administrators() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    init(&dir);
    let mut with = amparo::sample::full_case();
    with["consents"] = serde_json::json!([{ "scope": "ShareWithReferralOrganisation", "decision": "Granted",
        "explained_in": "es", "given_at": "2026-01-05", "expires_at": "2099-12-31" }]);
    let file = tmp.path().join("two.jsonl");
    write_jsonl(&file, &[with, amparo::sample::full_case()]);
    ok(&amparo(&dir, &["import", file.to_str().unwrap()]));
    let numbers: Vec<String> =
        ok(&amparo(&dir, &["list"])).lines().map(|l| l.split('\t').next().unwrap().to_string()).collect();
    let (without, with) = (&numbers[0], &numbers[1]);
    let shared: Value = serde_json::from_str(&ok(&amparo(&dir, &["share", with, "--for", "referral"]))).unwrap();
    assert_eq!(shared["people"][0]["given_name"], "Xóchitl");
    let e = err(&amparo(&dir, &["share", without, "--for", "referral"]));
    assert!(e.contains("no consent in force to share with a referral organization"), "{e}");
    let e = err(&amparo(&dir, &["share", with, "--for", "law-enforcement"]));
    assert!(e.contains("share with law enforcement"), "{e}");
    let e = err(&amparo(&dir, &["share", with, "--for", "the press"]));
    assert!(e.contains("--for referral"), "{e}");

    let p = ok(&amparo(&dir, &["policy", "--retention-months", "24", "--idle-minutes", "3"]));
    assert!(p.contains("Locks after 3 idle minutes.") && p.contains("kept 24 months"), "{p}");
    let e = err(&amparo(&dir, &["policy", "--idle-minutes", "90"]));
    assert!(e.contains("idle_lock_minutes: ") && e.contains("60"), "{e}");
    assert!(ok(&amparo(&dir, &["purge", "--dry-run"])).contains("0 closed cases"));
    assert!(ok(&amparo(&dir, &["purge"])).contains("0 closed cases were removed"));
}

/// Two laptops of one organisation exchange bundles from the command line: invite,
/// join, export, import, a conflict listed and resolved, bad bundles refused.
#[test]
fn two_laptops_sync_through_bundle_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let file = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    init(&a);
    let invite = ok(&amparo(&a, &["org", "invite", "--out", &file("invite.json")]));
    let code = invite.split_whitespace().last().unwrap().to_string();
    assert_eq!(code.len(), 23, "{invite}");
    // A wrong invitation passphrase, then a device code already taken: nothing set up.
    let join = |code: &str, device: &str| {
        amparo_env(
            &b,
            &["init", "--join", &file("invite.json"), "--device", device, "--user", "Berta"],
            &[("AMPARO_PASSPHRASE", "otra frase bastante larga"), ("AMPARO_INVITE_PASSPHRASE", code)],
        )
    };
    assert!(err(&join("AAAAA-AAAAA-AAAAA-AAAAA", "TX4")).contains("invitation passphrase is not correct"));
    assert!(err(&join(&code, "tx3")).contains("already uses the device code TX3"));
    let joined = ok(&join(&code, "TX4"));
    assert!(joined.contains("joined Casa Amparo as device TX4"), "{joined}");
    let bpass = [("AMPARO_PASSPHRASE", "otra frase bastante larga")];

    write_jsonl(&tmp.path().join("cases.jsonl"), &(0..20).map(amparo::sample::generated).collect::<Vec<_>>());
    ok(&amparo(&a, &["import", &file("cases.jsonl")]));
    let out = ok(&amparo(&a, &["sync", "export", "--out", &file("a1.bundle")]));
    assert!(out.contains("of 20 cases written"), "{out}");
    let out = ok(&amparo_env(&b, &["sync", "import", &file("a1.bundle")], &bpass));
    assert!(out.contains("From TX3: 20 new cases, 0 updated, 0 removed, 0 conflicts"), "{out}");
    // Again: nothing new.
    let out = ok(&amparo_env(&b, &["sync", "import", &file("a1.bundle")], &bpass));
    assert!(out.contains("0 new cases, 0 updated"), "{out}");

    // The same field edited on both laptops.
    ok(&amparo(&a, &["set", "TX3-2026-0001", "people.0.alias=Mariposa"]));
    ok(&amparo_env(&b, &["set", "TX3-2026-0001", "people.0.alias=Golondrina"], &bpass));
    ok(&amparo_env(&b, &["sync", "export", "--out", &file("b1.bundle")], &bpass));
    let out = ok(&amparo(&a, &["sync", "import", &file("b1.bundle")]));
    assert!(out.contains("0 new cases, 1 updated, 0 removed, 1 conflicts"), "{out}");
    let listed: Value = serde_json::from_str(&ok(&amparo(&a, &["conflicts", "--format", "json"]))).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["path"], "people.0.alias");
    let text = ok(&amparo(&a, &["conflicts"]));
    assert!(text.contains("Mariposa") && text.contains("Golondrina") && text.contains("TX4"), "{text}");
    ok(&amparo(&a, &["conflicts", "resolve", "TX3-2026-0001", "people.0.alias", "--value", "Colibrí"]));
    let none = amparo(&a, &["conflicts"]);
    assert!(ok(&none).is_empty() && String::from_utf8_lossy(&none.stderr).contains("No open conflicts"));
    ok(&amparo(&a, &["sync", "export", "--out", &file("a2.bundle")]));
    ok(&amparo_env(&b, &["sync", "import", &file("a2.bundle")], &bpass));
    let shown: Value = serde_json::from_str(&ok(&amparo_env(&b, &["show", "TX3-2026-0001"], &bpass))).unwrap();
    assert_eq!(shown["people"][0]["alias"], "Colibrí");
    let status = ok(&amparo_env(&b, &["sync", "status"], &bpass));
    assert!(status.contains("TX3: last bundle written"), "{status}");

    // A damaged bundle: refused, with a message, and a non-zero exit.
    let mut bytes = std::fs::read(file("a2.bundle")).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 1;
    std::fs::write(file("bad.bundle"), &bytes).unwrap();
    let e = err(&amparo_env(&b, &["sync", "import", &file("bad.bundle")], &bpass));
    assert!(e.contains("damaged or was altered") && e.contains("Nothing of it was applied"), "{e}");
    let es = err(&amparo_env(&b, &["sync", "import", &file("invite.json")], &[bpass[0], ("AMPARO_LOCALE", "es")]));
    assert!(es.contains("no es un paquete de sincronización"), "{es}");
}

/// The fact sheet from the command line: JSON with the documented keys, CSV with the
/// same numbers, the shareable mode, and bad input refused in the user's language.
#[test]
fn the_fact_sheet_as_json_and_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    init(&dir);
    let cases: Vec<Value> = (0..300).map(amparo::sample::generated).collect();
    let file = tmp.path().join("cases.jsonl");
    write_jsonl(&file, &cases);
    ok(&amparo(&dir, &["import", file.to_str().unwrap()]));
    let json: Value = serde_json::from_str(&ok(&amparo(&dir, &["report"]))).unwrap();
    for key in ["cases", "potential_victims", "venues", "demographics", "nationality", "recruiter_relation"] {
        assert!(json.get(key).is_some(), "{key} missing: {json}");
    }
    assert_eq!(json["cases"], 300);
    let victims: usize = cases
        .iter()
        .map(|c| c["people"].as_array().unwrap().iter().filter(|p| p["role"] == "PotentialVictim").count())
        .sum();
    assert_eq!(json["potential_victims"], victims);
    let females = cases
        .iter()
        .filter(|c| {
            c["people"].as_array().unwrap().iter().any(|p| p["role"] == "PotentialVictim" && p["gender"] == "Feminine")
        })
        .count();
    assert_eq!(json["demographics"]["female"], females);
    let venues = json["venues"].as_array().unwrap();
    assert!(venues.windows(2).all(|w| w[0]["cases"].as_u64() >= w[1]["cases"].as_u64()), "most cases first");
    // The same numbers as CSV, whatever the language of the messages.
    let csv =
        ok(&amparo_env(&dir, &["report", "--format", "csv"], &[("AMPARO_PASSPHRASE", PASS), ("AMPARO_LOCALE", "es")]));
    assert!(csv.starts_with(&format!("section,code,cases\ncases,,300\npotential_victims,,{victims}\n")), "{csv}");
    assert!(csv.contains(&format!("demographics,female,{females}\n")));
    // A period, and the shareable mode with a threshold above every count.
    let one_year: Value =
        serde_json::from_str(&ok(&amparo(&dir, &["report", "--from", "2020-01-01", "--to", "2020-12-31"]))).unwrap();
    let in_2020 = cases.iter().filter(|c| c["intake_date"].as_str().unwrap().starts_with("2020")).count();
    assert_eq!(one_year["cases"], in_2020);
    let shared: Value = serde_json::from_str(&ok(&amparo(&dir, &["report", "--shareable", "--k", "1000"]))).unwrap();
    assert_eq!(shared["cases"], "<1000");
    assert!(err(&amparo(&dir, &["report", "--from", "ayer"])).contains("is not a date like 2026-03-14"));
    assert!(err(&amparo(&dir, &["report", "--k", "5"])).contains("add one of them"));
    // De-identified records, to a file, with what was left out said on the terminal.
    let records = tmp.path().join("partners.csv");
    let o = amparo(&dir, &["report", "--deidentified", "--k", "2", "--out", records.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let said = String::from_utf8_lossy(&o.stderr).to_string();
    let csv = std::fs::read_to_string(&records).unwrap();
    let written = csv.lines().count() - 1;
    assert!(csv.starts_with("record,intake_month,"), "{csv}");
    assert!(said.contains(&format!("{written} de-identified records written")), "{said}");
    let dropped: usize = said.split(". ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert_eq!(written + dropped, victims, "{said}");
    for c in &cases {
        for p in c["people"].as_array().unwrap() {
            for key in ["given_name", "family_name", "safe_phone"] {
                if let Some(v) = p[key].as_str() {
                    assert!(!csv.contains(v), "{key} {v} in the de-identified export");
                }
            }
        }
    }
    assert!(err(&amparo(&dir, &["report", "--format", "xml"])).contains("Unknown format"));
}

/// The directory from the command line: the hotlines, an import that names its bad
/// rows (in Spanish too) and then adds everything, and search by words and codes.
#[test]
fn the_directory_lists_imports_and_searches() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    init(&dir);
    let listed = ok(&amparo(&dir, &["directory", "list"]));
    assert!(
        listed.contains("Línea Nacional contra la Trata de Personas\tMX\t\t\tSafetyPlanning;Other\t+528005533000\tes")
    );
    assert!(listed.contains("National Human Trafficking Hotline\tUS"));
    let csv = tmp.path().join("orgs.csv");
    std::fs::write(
        &csv,
        "name,country,subdivision,city,services,phone,languages\n\
         Casa Amiga,MX,MX-CHH,Ciudad Juárez,Shelter;Legal,+526566158571,es\n\
         Sin teléfono,MX,,,Shelter,6561234,es\n",
    )
    .unwrap();
    let e = err(&amparo_env(
        &dir,
        &["directory", "import", csv.to_str().unwrap()],
        &[("AMPARO_PASSPHRASE", PASS), ("AMPARO_LOCALE", "es")],
    ));
    assert!(e.contains("No se importó nada: 1 filas tienen problemas."), "{e}");
    assert!(e.contains("línea 3, phone:"), "{e}");
    std::fs::write(&csv, std::fs::read_to_string(&csv).unwrap().replace(",6561234,", ",+526561234567,")).unwrap();
    assert!(ok(&amparo(&dir, &["directory", "import", csv.to_str().unwrap()])).contains("2 organizations added"));
    let found = ok(&amparo(&dir, &["directory", "list", "juarez"]));
    assert_eq!(found.lines().count(), 1, "{found}");
    assert!(found.starts_with("Casa Amiga\tMX\tMX-CHH\tCiudad Juárez"));
    let json: Value =
        serde_json::from_str(&ok(&amparo(&dir, &["directory", "list", "--service", "Shelter", "--format", "json"])))
            .unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    assert_eq!(json[0]["subdivision"], "MX-CHH");
}

/// HTCDS from the command line: only consented cases leave, and the file goes
/// into another laptop's store; a bad cell is named by line and column.
#[test]
fn htcds_export_and_import() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    init(&a);
    init(&b);
    let consented = serde_json::json!({"format": "amparo.case/1", "intake_date": "2026-02-01", "status": "Active",
        "people": [{"role": "PotentialVictim", "given_name": "Lupe", "gender": "Female", "nationality": ["MX"]}],
        "consents": [{"scope": "ShareWithReferralOrganisation", "decision": "Granted", "explained_in": "es",
                      "given_at": "2026-01-10", "expires_at": "2099-01-01"},
                     {"scope": "StoreData", "decision": "Granted", "explained_in": "es", "given_at": "2026-01-10"}]});
    let mut without = consented.clone();
    without["consents"] = serde_json::json!([]);
    without["people"][0]["given_name"] = serde_json::json!("Nadie");
    let file = tmp.path().join("cases.jsonl");
    write_jsonl(&file, &[consented, without]);
    ok(&amparo(&a, &["import", file.to_str().unwrap()]));
    let csv = tmp.path().join("htcds.csv");
    let o = amparo(&a, &["htcds", "export", "--out", csv.to_str().unwrap()]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("Cases exported: 1. Left out because"));
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with("prs_FirstName,prs_SecondName,prs_Birthdate,prs_Gender,prs_Citizenship,"), "{text}");
    assert!(text.contains("Lupe") && !text.contains("Nadie"), "{text}");
    let o = amparo(&b, &["htcds", "import", csv.to_str().unwrap()]);
    assert!(ok(&o).contains("1"));
    // What the import does not bring in is said, not silently dropped.
    assert!(String::from_utf8_lossy(&o.stderr).contains("Columns not read: con_Consent."), "{o:?}");
    let json: Value = serde_json::from_str(&ok(&amparo(&a, &["htcds", "export", "--format", "json"]))).unwrap();
    assert_eq!(json[0]["prs_Gender"], "Feminine", "HTCDS 2.0's value name");
    assert_eq!(json[0]["amp_Gender"], "Feminine", "our code, in our own column (the 2020 draft's Female, read as now)");
    std::fs::write(&csv, "cas_Status,prs_Gender\nActive,Mujer\n").unwrap();
    let e = err(&amparo(&b, &["htcds", "import", csv.to_str().unwrap()]));
    assert!(e.contains("line 2, prs_Gender:"), "{e}");
}

/// Two laptops through a hub on loopback, as the README says to set it up: the
/// first connects with the hub's fingerprint and setup code, the second joins with
/// an invitation that enrols it, both sync, and a revoked laptop is refused.
#[test]
fn two_laptops_sync_through_a_hub_and_one_is_revoked() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = amparo_hub::run::Background::start(&tmp.path().join("hub"), None, "127.0.0.1:0").unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let file = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    init(&a);
    let code = hub.setup_code.clone().unwrap();
    let wrong =
        err(&amparo(&a, &["hub", "connect", &hub.url, "--fingerprint", &"00".repeat(32), "--setup-code", &code]));
    assert!(wrong.contains("different certificate"), "{wrong}");
    let out = ok(&amparo(&a, &["hub", "connect", &hub.url, "--fingerprint", &hub.fingerprint, "--setup-code", &code]));
    assert!(out.contains("Connected to the hub"), "{out}");
    let invite = ok(&amparo(&a, &["org", "invite", "--out", &file("invite.json")]));
    let passphrase = invite.split_whitespace().last().unwrap().to_string();
    let bpass = [("AMPARO_PASSPHRASE", "otra frase bastante larga")];
    let joined = ok(&amparo_env(
        &b,
        &["init", "--join", &file("invite.json"), "--device", "TX4", "--user", "Berta"],
        &[bpass[0], ("AMPARO_INVITE_PASSPHRASE", &passphrase)],
    ));
    assert!(joined.contains("enrolled with the hub"), "{joined}");

    write_jsonl(&tmp.path().join("cases.jsonl"), &(0..5).map(amparo::sample::generated).collect::<Vec<_>>());
    ok(&amparo(&a, &["import", &file("cases.jsonl")]));
    let status = ok(&amparo(&a, &["sync", "status"]));
    assert!(status.contains(&format!("Hub: {}", hub.url)) && status.contains("(0 batches sealed"), "{status}");
    assert!(!status.contains("; 0 changes the hub"), "the import waits to be sent: {status}");
    let out = ok(&amparo(&a, &["sync", "now"]));
    assert!(out.contains("Sent 1 batches and received 0"), "{out}");
    let status = ok(&amparo(&a, &["sync", "status"]));
    assert!(status.contains("; 0 changes the hub does not have yet (0 batches sealed"), "{status}");
    let out = ok(&amparo_env(&b, &["sync", "now"], &bpass));
    assert!(out.contains("5 new cases"), "{out}");
    ok(&amparo_env(&b, &["set", "TX3-2026-0001", "status=Closed"], &bpass));
    ok(&amparo_env(&b, &["sync", "now"], &bpass));
    ok(&amparo(&a, &["sync", "now"]));
    let shown: Value = serde_json::from_str(&ok(&amparo(&a, &["show", "TX3-2026-0001"]))).unwrap();
    assert_eq!(shown["status"], "Closed");

    let listed = ok(&amparo(&a, &["devices", "list"]));
    assert!(listed.contains("TX3") && listed.contains("TX4") && listed.contains("active"), "{listed}");
    // Whose each laptop is comes from what this laptop has heard (the hub knows
    // no names: the canary tests of its data folder show that).
    let line = |code: &str| listed.lines().find(|l| l.starts_with(code)).unwrap_or_default().to_string();
    assert!(line("TX4").contains("Berta") && !line("TX3").contains("Berta"), "{listed}");
    ok(&amparo(&a, &["devices", "revoke", "tx4"]));
    let refused = err(&amparo_env(&b, &["sync", "now"], &[bpass[0], ("AMPARO_LOCALE", "es")]));
    assert!(refused.contains("revocada"), "{refused}");
    assert!(ok(&amparo(&a, &["devices", "list"])).contains("revoked"));
}

/// A damaged page of the store: the message says so in the user's language, and
/// nothing of SQLCipher's own logging reaches the terminal.
#[test]
fn a_damaged_store_says_so_without_sqlcipher_noise() {
    let tmp = tempfile::tempdir().unwrap();
    init(tmp.path());
    let db = tmp.path().join("amparo.db");
    let mut bytes = std::fs::read(&db).unwrap();
    bytes[4096 + 100..4096 + 164].fill(0);
    std::fs::write(&db, bytes).unwrap();
    let e = err(&amparo(tmp.path(), &["list"]));
    assert!(!e.contains("hmac") && !e.contains("sqlcipher") && !e.contains("ERROR CORE"), "{e}");
    assert!(e.contains("damaged") && e.contains("backup"), "{e}");
}
