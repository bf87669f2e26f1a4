//! Users, roles, restricted cases, recovery, slowed-down unlocks, the audit chain,
//! and removed words that leave no trace in the file.

use super::*;
use crate::database::{DatabaseError, PLAINTEXT_FOR_TESTS};
use crate::repositories::audit::{Action, AuditQuery, Problem};
use crate::repositories::cases::ListQuery;
use crate::repositories::users::Role;
use crate::sample;
use serde_json::{json, Value};

const ADMIN_PASS: &str = "correct horse battery staple";
const ROSA_PASS: &str = "rosa camina por el río";
const LUIS_PASS: &str = "luis lee libros de noche";
const SUPER_PASS: &str = "supervisión con calma 42";

fn setup() -> Setup {
    Setup {
        org: "Casa Amparo".into(),
        device_code: "TX3".into(),
        user: "Ana Admin".into(),
        passphrase: String::from(ADMIN_PASS).into(),
        locale: "en".into(),
    }
}

/// A store with an administrator (open), two caseworkers and a supervisor.
fn team() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let mut admin = Store::create(dir.path(), &setup(), KdfParams::INSECURE_FOR_TESTS).unwrap();
    admin.add_user("Rosa", Role::Caseworker, ROSA_PASS).unwrap();
    admin.add_user("Luis", Role::Caseworker, LUIS_PASS).unwrap();
    admin.add_user("Sara", Role::Supervisor, SUPER_PASS).unwrap();
    (dir, admin)
}

fn id_of(case: &Value) -> String {
    case["id"].as_str().unwrap().to_string()
}

fn user_id(store: &Store, name: &str) -> String {
    store.users().unwrap().into_iter().find(|u| u.name == name).unwrap().id
}

/// The sample case, restricted, assigned to `to` (a user id; its recorder when
/// `None`), with the alias Golondrina.
fn restricted_case(to: Option<&str>) -> Value {
    let mut c = sample::full_case();
    c["restricted"] = json!(true);
    if let Some(to) = to {
        c["assigned_to"] = json!(to);
    }
    c["people"][0]["alias"] = json!("Golondrina");
    c
}

fn actions(store: &Store) -> Vec<String> {
    let mut rows = store.audit_list(&AuditQuery { limit: Some(500), ..Default::default() }).unwrap();
    rows.reverse();
    rows.into_iter().map(|r| r.action).collect()
}

#[test]
fn each_user_unlocks_with_their_own_passphrase_and_role() {
    let (dir, admin) = team();
    drop(admin);
    for (pass, name, role) in [
        (ADMIN_PASS, "Ana Admin", Role::Administrator),
        (ROSA_PASS, "Rosa", Role::Caseworker),
        (SUPER_PASS, "Sara", Role::Supervisor),
    ] {
        let s = Store::open(dir.path(), pass).unwrap();
        assert_eq!((s.session().user_name.as_str(), s.session().role), (name, role));
        // Next time this user's seal is tried first; the file holds the id, not the name.
        assert_eq!(Settings::load(dir.path()).last_user.as_deref(), Some(s.session().user_id.as_str()));
        let settings = std::fs::read_to_string(dir.path().join(SETTINGS_FILE)).unwrap();
        assert!(!settings.contains(name), "{settings}");
    }
    // Naming the user: another user's passphrase is simply wrong.
    assert!(Store::open_as(dir.path(), Some("rosa"), ROSA_PASS).is_ok());
    assert!(matches!(
        Store::open_as(dir.path(), Some("Luis"), ROSA_PASS),
        Err(StoreError::Database(DatabaseError::WrongPassphrase))
    ));
    // The key file names nobody.
    let kf = std::fs::read_to_string(dir.path().join(KEY_FILE)).unwrap();
    assert!(!kf.contains("Rosa") && !kf.contains("Ana"));
}

#[test]
fn only_administrators_manage_users_and_policies() {
    let (dir, admin) = team();
    assert_eq!(admin.users().unwrap().len(), 4);
    drop(admin);
    for pass in [ROSA_PASS, SUPER_PASS] {
        let mut s = Store::open(dir.path(), pass).unwrap();
        let refused = |r: Result<(), StoreError>| matches!(r, Err(StoreError::RoleRequired(Role::Administrator)));
        assert!(refused(s.add_user("Eve", Role::Administrator, "a long enough phrase").map(|_| ())));
        assert!(refused(s.remove_user("Luis")));
        assert!(refused(s.set_role("Luis", Role::Supervisor)));
        assert!(refused(s.set_passphrase(Some("Luis"), "a long enough phrase")));
        assert!(refused(s.set_policy(&policy::Policy { idle_lock_minutes: 60, retention_months: None })));
        assert_eq!(s.policy().unwrap(), policy::Policy::default());
    }
    let mut admin = Store::open(dir.path(), ADMIN_PASS).unwrap();
    admin.set_policy(&policy::Policy { idle_lock_minutes: 2, retention_months: Some(84) }).unwrap();
    assert_eq!(admin.policy().unwrap().idle_lock_minutes, 2);
    let err = admin.set_policy(&policy::Policy { idle_lock_minutes: 61, retention_months: None }).unwrap_err();
    assert_eq!(err.localized("es"), "Algunas respuestas necesitan revisión (1).");
    // Names are unique; passphrases are too, since the passphrase says who unlocks.
    let e = admin.add_user("rosa", Role::Caseworker, "another long phrase").unwrap_err();
    assert!(matches!(&e, StoreError::Invalid(v) if v.0[0].error == crate::intake::FieldError::NameTaken));
    let e = admin.add_user("Eva", Role::Caseworker, ROSA_PASS).unwrap_err();
    assert!(matches!(&e, StoreError::Invalid(v) if v.0[0].error == crate::intake::FieldError::PassphraseInUse));
    // The store keeps an administrator.
    assert!(matches!(admin.remove_user("Ana Admin"), Err(StoreError::CannotRemoveSelf)));
    assert!(matches!(admin.set_role("Ana Admin", Role::Caseworker), Err(StoreError::LastAdministrator)));
    admin.set_role("Sara", Role::Administrator).unwrap();
    admin.set_role("Ana Admin", Role::Supervisor).unwrap();
    assert_eq!(admin.session().role, Role::Supervisor);
}

#[test]
fn removing_a_user_or_changing_a_passphrase_touches_only_their_key() {
    let (dir, mut admin) = team();
    let case = admin.create_case(sample::full_case(), None).unwrap();
    admin.remove_user("Luis").unwrap();
    assert!(matches!(Store::open(dir.path(), LUIS_PASS), Err(StoreError::Database(DatabaseError::WrongPassphrase))));
    assert!(admin.users().unwrap().iter().all(|u| u.name != "Luis"));
    // Rosa changes her own passphrase: the old one stops working, the data is the same.
    drop(admin);
    let mut rosa = Store::open(dir.path(), ROSA_PASS).unwrap();
    rosa.set_passphrase(None, "una frase nueva y larga").unwrap();
    drop(rosa);
    assert!(Store::open(dir.path(), ROSA_PASS).is_err());
    let rosa = Store::open(dir.path(), "una frase nueva y larga").unwrap();
    assert_eq!(rosa.get_case(&id_of(&case)).unwrap()["people"], case["people"]);
    // Nobody else's seal changed.
    assert!(Store::open(dir.path(), SUPER_PASS).is_ok());
}

#[test]
fn a_restricted_case_opens_only_for_its_assigned_user_and_supervisors() {
    let (dir, mut admin) = team();
    let rosa_id = user_id(&admin, "Rosa");
    let case = admin.create_case(restricted_case(Some(&rosa_id)), None).unwrap();
    let open_case = admin.create_case(sample::full_case(), None).unwrap();
    let id = id_of(&case);
    let number = case["case_number"].as_str().unwrap().to_string();
    drop(admin);

    let mut luis = Store::open(dir.path(), LUIS_PASS).unwrap();
    assert!(matches!(luis.get_case(&id), Err(StoreError::Restricted)));
    assert!(matches!(luis.get_case_by_number(&number), Err(StoreError::Restricted)));
    assert!(matches!(luis.update_case(&id, sample::full_case(), None), Err(StoreError::Restricted)));
    assert!(matches!(luis.add_note(&id, "hola", None), Err(StoreError::Restricted)));
    assert!(matches!(luis.set_fields(&number, &[("status".into(), "Closed".into())]), Err(StoreError::Restricted)));
    // Listed by number only, never found by name.
    let rows = luis.list_cases(&ListQuery::default()).unwrap();
    let row = rows.iter().find(|r| r.id == id).unwrap();
    assert!(row.locked && row.restricted && row.alias.is_none());
    let found = luis.list_cases(&ListQuery { text: "Golondrina".into(), ..Default::default() }).unwrap();
    assert!(found.is_empty());
    // Caseworkers do not export, import or read the audit trail.
    assert!(matches!(luis.export_jsonl(Vec::new()), Err(StoreError::RoleRequired(Role::Supervisor))));
    assert!(matches!(luis.verify_audit(), Err(StoreError::RoleRequired(Role::Supervisor))));
    // An open case is open to every caseworker, but only supervisors reassign it.
    let mut edit = luis.get_case(&id_of(&open_case)).unwrap();
    edit["assigned_to"] = json!(luis.session().user_id);
    let e = luis.update_case(&id_of(&open_case), edit, None).unwrap_err();
    assert!(matches!(&e, StoreError::Invalid(v) if v.0[0].path == "assigned_to"));
    drop(luis);

    let mut rosa = Store::open(dir.path(), ROSA_PASS).unwrap();
    assert_eq!(rosa.get_case(&id).unwrap()["people"][0]["alias"], "Golondrina");
    rosa.add_note(&id, "Llamó desde un teléfono seguro.", Some("es")).unwrap();
    let found = rosa.list_cases(&ListQuery { text: "Golondrina".into(), ..Default::default() }).unwrap();
    assert_eq!(found.len(), 1);
    assert!(!found[0].locked);
    // The assigned user may lift the restriction; an edit that omits it keeps it.
    let mut edit = rosa.get_case(&id).unwrap();
    edit.as_object_mut().unwrap().remove("restricted");
    assert_eq!(rosa.update_case(&id, edit, None).unwrap()["restricted"], true);
    drop(rosa);

    let sara = Store::open(dir.path(), SUPER_PASS).unwrap();
    assert_eq!(sara.get_case(&id).unwrap()["restricted"], true);
    assert!(!sara.list_cases(&ListQuery::default()).unwrap().iter().any(|r| r.locked));
    // Every look, refused or not, is in the trail, with the case id.
    let views = sara.audit_list(&AuditQuery { action: Some("View".into()), ..Default::default() }).unwrap();
    assert!(views.iter().any(|v| v.case_id.as_deref() == Some(id.as_str()) && v.detail["refused"] == true));
    assert!(views.iter().filter(|v| v.case_number.as_deref() == Some(number.as_str())).count() >= 4);
}

/// What someone who is not entitled reads of a restricted case with her own
/// passphrase and SQL: the data key opens every table, so the store is left
/// unencrypted here and the test reads every file as she could. None of the
/// case's personal words is anywhere; those entitled read them all.
#[test]
fn a_caseworkers_key_opens_no_restricted_cases_personal_fields_with_direct_sql() {
    PLAINTEXT_FOR_TESTS.set(true);
    let (dir, mut admin) = team();
    let (rosa_id, luis_id) = (user_id(&admin, "Rosa"), user_id(&admin, "Luis"));
    let mut c = restricted_case(Some(&rosa_id));
    c["notes"] = json!([{ "text": "Vive con su tía en Zempoala", "language": "es" }]);
    let id = id_of(&admin.create_case(c, None).unwrap());
    drop(admin);
    let mut rosa = Store::open(dir.path(), ROSA_PASS).unwrap();
    assert_eq!(rosa.get_case(&id).unwrap()["people"][0]["given_name"], "Xóchitl");
    rosa.add_note(&id, "Llamó desde Tlacotalpan", Some("es")).unwrap();
    let mut edit = rosa.get_case(&id).unwrap();
    edit["people"][0]["alias"] = json!("Colibrí");
    rosa.update_case(&id, edit.clone(), None).unwrap();
    // An edit she has not finished is kept, sealed, for her alone.
    edit["people"][0]["alias"] = json!("Huitzilin");
    let draft = rosa.save_draft(None, Some(&id), &edit).unwrap();
    assert_eq!(rosa.get_draft(&draft).unwrap()["people"][0]["alias"], "Huitzilin");
    assert_eq!(rosa.list_drafts().unwrap()[0].alias.as_deref(), Some("Huitzilin"));
    drop(rosa);

    let words = [
        "Golondrina",
        "Colibrí",
        "Huitzilin",
        "Xóchitl",
        "Quetzalli",
        "2009-02-03",
        "525512345678",
        "rosa@example.org",
        "girasol",
        "Mañanas",
        "Tenancingo",
        "HSI Houston",
        "Zempoala",
        "Tlacotalpan",
    ];
    let d = dir.path().to_path_buf();
    for w in words {
        assert_eq!(raw_contains(&d, w), Vec::<String>::new(), "{w}");
    }
    // Codes stay readable, for the fact sheet.
    assert!(!raw_contains(&d, "DebtBondage").is_empty());
    // And her own key pair opens no key of the case.
    let luis = Store::open(dir.path(), LUIS_PASS).unwrap();
    assert!(luis.case_keys(&id).unwrap().is_empty());
    assert!(matches!(luis.get_case(&id), Err(StoreError::Restricted)));
    drop(luis);

    // Those entitled read everything, notes included, and find it by any word.
    let mut sara = Store::open(dir.path(), SUPER_PASS).unwrap();
    let case = sara.get_case(&id).unwrap();
    assert_eq!(case["people"][0]["alias"], "Colibrí");
    assert_eq!(case["safety"]["code_word"], "girasol");
    assert_eq!(case["safety"]["danger_level"], "High");
    assert_eq!(case["trafficking_events"][0]["place"]["city"], "Tenancingo");
    let notes: Vec<&str> = case["notes"].as_array().unwrap().iter().map(|n| n["text"].as_str().unwrap()).collect();
    assert_eq!(notes, ["Vive con su tía en Zempoala", "Llamó desde Tlacotalpan"]);
    let found = sara.list_cases(&ListQuery { text: "tlacotalpan".into(), ..Default::default() }).unwrap();
    assert_eq!(
        found.iter().map(|r| (r.id.clone(), r.alias.clone())).collect::<Vec<_>>(),
        [(id.clone(), Some("Colibrí".to_string()))]
    );

    // Exported by a supervisor it is whole; imported into another store it is
    // sealed there too.
    let mut file = Vec::new();
    sara.export_jsonl(&mut file).unwrap();
    let text = String::from_utf8(file.clone()).unwrap();
    assert!(text.contains("Xóchitl") && text.contains("Tlacotalpan"));
    let (other_dir, mut other) = team();
    let imported = other.import_jsonl(&file[..], false, &mut |_| {}).unwrap();
    assert_eq!(imported.imported, 1);
    assert_eq!(other.get_case(&id).unwrap()["notes"][1]["text"], "Llamó desde Tlacotalpan");
    drop(other);
    for w in words {
        assert_eq!(raw_contains(other_dir.path(), w), Vec::<String>::new(), "imported: {w}");
    }

    // Reassigned to Luis: his to open now, no longer Rosa's.
    let mut moved = case.clone();
    moved["assigned_to"] = json!(luis_id);
    sara.update_case(&id, moved, None).unwrap();
    drop(sara);
    let rosa = Store::open(dir.path(), ROSA_PASS).unwrap();
    assert!(rosa.case_keys(&id).unwrap().is_empty(), "her seals are withdrawn");
    assert!(matches!(rosa.get_case(&id), Err(StoreError::Restricted)));
    drop(rosa);
    let luis = Store::open(dir.path(), LUIS_PASS).unwrap();
    assert_eq!(luis.get_case(&id).unwrap()["people"][0]["given_name"], "Xóchitl");
    drop(luis);
    for w in words {
        assert_eq!(raw_contains(&d, w), Vec::<String>::new(), "after the new key: {w}");
    }

    // Lifted: in the clear again, notes back where everyone reads and finds them.
    let mut sara = Store::open(dir.path(), SUPER_PASS).unwrap();
    let mut lifted = sara.get_case(&id).unwrap();
    lifted["restricted"] = json!(false);
    sara.update_case(&id, lifted, None).unwrap();
    drop(sara);
    let rosa = Store::open(dir.path(), ROSA_PASS).unwrap();
    let case = rosa.get_case(&id).unwrap();
    assert_eq!(case["notes"].as_array().unwrap().len(), 2);
    let found = rosa.list_cases(&ListQuery { text: "Zempoala".into(), ..Default::default() }).unwrap();
    assert_eq!(found.len(), 1);
    assert!(!raw_contains(&d, "Xóchitl").is_empty());
    PLAINTEXT_FOR_TESTS.set(false);
}

/// A restricted case is never lost to a forgotten passphrase, and reaches those
/// who become entitled to it after it was restricted.
#[test]
fn a_restricted_case_survives_a_recovery_and_reaches_a_supervisor_added_later() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut admin = Store::create(d, &setup(), KdfParams::INSECURE_FOR_TESTS).unwrap();
    let recovery = admin.take_recovery_key().unwrap();
    let id = id_of(&admin.create_case(restricted_case(None), None).unwrap());
    admin.add_user("Sara", Role::Supervisor, SUPER_PASS).unwrap();
    drop(admin);
    // Added after the case was sealed: the key reaches her at the next unlock of
    // someone who holds it.
    let sara = Store::open(d, SUPER_PASS).unwrap();
    assert!(sara.case_keys(&id).unwrap().is_empty());
    // Until then she is told so, never shown sealed bytes.
    let e = sara.get_case(&id).unwrap_err();
    assert!(matches!(e, StoreError::NoCaseKey), "{e:?}");
    for lang in ["en", "es"] {
        let m = crate::i18n::tr(lang, e.i18n_key(), &e.args());
        assert!(!m.contains("error.") && m.len() > 40, "{lang}: {m}");
    }
    drop(sara);
    drop(Store::open(d, ADMIN_PASS).unwrap());
    let sara = Store::open(d, SUPER_PASS).unwrap();
    assert_eq!(sara.get_case(&id).unwrap()["people"][0]["alias"], "Golondrina");
    drop(sara);
    // The administrator forgets her passphrase: the recovery key opens the case
    // for her, and her unfinished edit of it.
    let mut admin = Store::open(d, ADMIN_PASS).unwrap();
    let mut edit = admin.get_case(&id).unwrap();
    edit["people"][0]["alias"] = json!("Huitzilin");
    let draft = admin.save_draft(None, Some(&id), &edit).unwrap();
    drop(admin);
    let mut admin = Store::recover(d, &recovery, "Ana Admin", "a brand new passphrase").unwrap();
    assert_eq!(admin.get_case(&id).unwrap()["people"][0]["alias"], "Golondrina");
    assert_eq!(admin.get_draft(&draft).unwrap()["people"][0]["alias"], "Huitzilin");
    // A renewed recovery key holds the case too, and the old one no longer does.
    let renewed = admin.renew_recovery_key().unwrap();
    drop(admin);
    assert!(matches!(
        Store::recover(d, &recovery, "Ana Admin", "yet another long phrase"),
        Err(StoreError::WrongRecoveryKey)
    ));
    let admin = Store::recover(d, &renewed, "Ana Admin", "yet another long phrase").unwrap();
    assert_eq!(admin.get_case(&id).unwrap()["people"][0]["given_name"], "Xóchitl");
}

/// Every word the search index holds, as it holds them (FTS5's own vocabulary).
fn index_terms(store: &Store) -> Vec<String> {
    let c = store.conn();
    c.execute_batch("CREATE VIRTUAL TABLE IF NOT EXISTS temp.terms USING fts5vocab(main, cases_fts, 'row')").unwrap();
    let mut st = c.prepare("SELECT term FROM temp.terms").unwrap();
    let terms = st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    terms
}

/// Issue 13: the search index is readable by anyone holding the store's key, so a
/// restricted case's names, places and notes are never in it, only its number.
/// Those who may open the case still find it by any of them; restricting an
/// indexed case takes its words out, lifting the restriction puts them back.
#[test]
fn a_restricted_case_keeps_its_words_out_of_the_search_index() {
    let (dir, mut admin) = team();
    let mut c = restricted_case(Some(&user_id(&admin, "Rosa")));
    c["intake_place"]["city"] = json!("Tlacotalpan");
    let case = admin.create_case(c, None).unwrap();
    let (id, number) = (id_of(&case), case["case_number"].as_str().unwrap().to_string());
    admin.add_note(&id, "Su prima vive en Zempoala.", Some("es")).unwrap();
    let words = ["golondrina", "tlacotalpan", "zempoala", "xochitl"];
    let terms = index_terms(&admin);
    assert!(terms.iter().all(|t| !words.contains(&t.as_str())), "{terms:?}");
    assert!(terms.contains(&"2026".to_string()) || terms.iter().any(|t| number.to_lowercase().contains(t.as_str())));
    drop(admin);

    let find = |s: &Store, text: &str| -> Vec<String> {
        s.list_cases(&ListQuery { text: text.into(), ..Default::default() })
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect()
    };
    let rosa = Store::open(dir.path(), ROSA_PASS).unwrap();
    for typed in ["Golondrina", "golon", "TLACOTALPAN", "zempo", "Xóchitl", "xochitl golondrina", number.as_str()] {
        assert_eq!(find(&rosa, typed), vec![id.clone()], "{typed}");
    }
    assert!(find(&rosa, "golondrina houstonia").is_empty(), "every word must match");
    drop(rosa);
    let luis = Store::open(dir.path(), LUIS_PASS).unwrap();
    assert!(find(&luis, "Golondrina").is_empty() && find(&luis, "zempoala").is_empty());
    drop(luis);

    let mut sara = Store::open(dir.path(), SUPER_PASS).unwrap();
    assert_eq!(find(&sara, "Zempoala"), vec![id.clone()]);
    let mut open = sara.get_case(&id).unwrap();
    open["restricted"] = json!(false);
    sara.update_case(&id, open, None).unwrap();
    assert!(index_terms(&sara).contains(&"golondrina".to_string()), "lifted: indexed again");
    let mut closed = sara.get_case(&id).unwrap();
    closed["restricted"] = json!(true);
    sara.update_case(&id, closed, None).unwrap();
    let terms = index_terms(&sara);
    assert!(terms.iter().all(|t| !words.contains(&t.as_str())), "restricted again: {terms:?}");
    assert_eq!(find(&sara, "golondrina"), vec![id]);
}

/// A store whose index was filled before restricted cases were kept out of it
/// loses their words at its next unlock.
#[test]
fn a_store_indexed_before_loses_its_restricted_words_at_unlock() {
    let (dir, mut admin) = team();
    let mut c = sample::full_case();
    c["people"][0]["alias"] = json!("Golondrina");
    admin.create_case(c, None).unwrap();
    // As an older Amparo restricted it: indexed, and in the clear.
    by_hand(
        &admin,
        "UPDATE cases SET restricted = 1, data = json_set(data, '$.restricted', json('true'));
         DELETE FROM meta WHERE key = 'fts_restricted_out_at'",
    );
    assert!(index_terms(&admin).contains(&"golondrina".to_string()));
    drop(admin);
    let admin = Store::open(dir.path(), ADMIN_PASS).unwrap();
    assert!(!index_terms(&admin).contains(&"golondrina".to_string()));
}

/// What the app offers comes from the same rules the saves check: a caseworker may
/// restrict only the cases assigned to her and assign none; supervisors do both and
/// settle conflicts; only administrators administer.
#[test]
fn rights_say_what_each_role_may_do_with_each_case() {
    let (dir, mut admin) = team();
    let rosa_id = user_id(&admin, "Rosa");
    let mut c = sample::full_case();
    c["assigned_to"] = json!(rosa_id);
    let hers = id_of(&admin.create_case(c, None).unwrap());
    let other = id_of(&admin.create_case(sample::full_case(), None).unwrap());
    let admin_rights = admin.rights();
    assert!(admin_rights.supervise && admin_rights.administer);
    assert_eq!(admin_rights.roles, ["Caseworker", "Supervisor", "Administrator"]);
    drop(admin);

    let rosa = Store::open(dir.path(), ROSA_PASS).unwrap();
    assert!(!rosa.rights().supervise && !rosa.rights().administer);
    let on_hers = rosa.case_rights_of(&hers).unwrap();
    assert_eq!((on_hers.restrict, on_hers.assign, on_hers.resolve_conflicts), (true, false, false));
    assert!(!rosa.case_rights_of(&other).unwrap().restrict);
    assert!(matches!(rosa.case_rights_of("no-such-case"), Err(StoreError::NotFound(Thing::Case, _))));
    // What the rights refuse, the save refuses too.
    let mut edit = rosa.get_case(&other).unwrap();
    edit["restricted"] = json!(true);
    drop(rosa);
    let mut rosa = Store::open(dir.path(), ROSA_PASS).unwrap();
    let e = rosa.update_case(&other, edit, None).unwrap_err();
    assert!(matches!(&e, StoreError::Invalid(v) if v.0[0].path == "restricted"), "{e:?}");
    drop(rosa);

    let sara = Store::open(dir.path(), SUPER_PASS).unwrap();
    assert!(sara.rights().supervise && !sara.rights().administer);
    let r = sara.case_rights_of(&other).unwrap();
    assert!(r.restrict && r.assign && r.resolve_conflicts);
}

#[test]
fn drafts_belong_to_whoever_typed_them() {
    let (dir, admin) = team();
    drop(admin);
    let mut rosa = Store::open(dir.path(), ROSA_PASS).unwrap();
    let d = rosa.save_draft(None, None, &json!({"people": [{"alias": "Luna"}]})).unwrap();
    drop(rosa);
    let mut luis = Store::open(dir.path(), LUIS_PASS).unwrap();
    assert!(luis.list_drafts().unwrap().is_empty());
    assert!(matches!(luis.get_draft(&d), Err(StoreError::NotFound(..))));
    assert!(luis.save_draft(Some(&d), None, &json!({})).is_err());
    luis.delete_draft(&d).unwrap();
    drop(luis);
    let mut rosa = Store::open(dir.path(), ROSA_PASS).unwrap();
    assert_eq!(rosa.get_draft(&d).unwrap()["people"][0]["alias"], "Luna");
    // A draft kept before there were users (schema 1) is anyone's to resume, and
    // becomes the draft of the one who does.
    rosa.conn()
        .execute("INSERT INTO drafts (id, created_at, updated_at, data) VALUES ('old', 'x', 'x', '{}')", [])
        .unwrap();
    rosa.save_draft(Some("old"), None, &json!({"people": [{"alias": "Sol"}]})).unwrap();
    drop(rosa);
    let luis = Store::open(dir.path(), LUIS_PASS).unwrap();
    assert!(matches!(luis.get_draft("old"), Err(StoreError::NotFound(..))));
}

fn set_retry_after_in_the_past(dir: &std::path::Path) {
    let mut f = throttle::load(dir);
    f.retry_after = Some(Utc::now() - chrono::Duration::seconds(1));
    std::fs::write(dir.join(throttle::THROTTLE_FILE), serde_json::to_vec(&f).unwrap()).unwrap();
}

#[test]
fn wrong_passphrases_open_nothing_slow_down_and_are_audited() {
    let (dir, admin) = team();
    drop(admin);
    let d = dir.path();
    for _ in 0..throttle::FREE_ATTEMPTS {
        assert!(matches!(
            Store::open(d, "not the passphrase"),
            Err(StoreError::Database(DatabaseError::WrongPassphrase))
        ));
    }
    // The third wrong one sets a wait; within it even the right passphrase is refused
    // (so guessing cannot go faster), with the seconds to wait.
    let third = Store::open(d, "still not the passphrase").unwrap_err();
    assert!(matches!(third, StoreError::Database(DatabaseError::WrongPassphraseWait { seconds: 2 })), "{third:?}");
    assert_eq!(third.localized("en"), "That passphrase did not open the store. Please wait 2 seconds, then try again.");
    let err = Store::open(d, ADMIN_PASS).unwrap_err();
    let StoreError::Database(DatabaseError::Throttled { seconds }) = err else { panic!("{err:?}") };
    assert!((1..=2).contains(&seconds), "{seconds}");
    assert_eq!(
        err.localized("es"),
        format!("Demasiados intentos que no funcionaron. Espere {seconds} segundos e inténtelo de nuevo.")
    );
    // The next wrong one waits longer.
    set_retry_after_in_the_past(d);
    assert!(Store::open(d, "wrong again").is_err());
    let Err(StoreError::Database(DatabaseError::Throttled { seconds: longer })) = Store::open(d, ADMIN_PASS) else {
        panic!()
    };
    assert!(longer > seconds, "{longer} > {seconds}");
    // A wrong recovery key counts the same.
    set_retry_after_in_the_past(d);
    let fake = keys::new_recovery_key();
    assert!(matches!(Store::recover(d, &fake, "Ana Admin", "a new long phrase"), Err(StoreError::WrongRecoveryKey)));
    assert!(matches!(Store::open(d, ADMIN_PASS), Err(StoreError::Database(DatabaseError::Throttled { .. }))));
    // Once the wait is over, the right passphrase opens, and the trail shows the five
    // failures (no user: nobody was identified) before the unlock.
    set_retry_after_in_the_past(d);
    let store = Store::open(d, ADMIN_PASS).unwrap();
    let rows = store.audit_list(&AuditQuery::default()).unwrap();
    assert_eq!(rows[0].action, "Unlock");
    assert!(rows[1..6].iter().all(|r| r.action == "FailedUnlock" && r.user_id.is_none()), "{:?}", &rows[1..6]);
    assert_eq!(throttle::load(d).count, 0);
    assert!(store.verify_audit().unwrap().problem.is_none());
}

#[test]
fn the_recovery_key_lets_an_administrator_set_a_new_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let mut admin = Store::create(dir.path(), &setup(), KdfParams::INSECURE_FOR_TESTS).unwrap();
    let key = admin.take_recovery_key().unwrap();
    assert!(admin.take_recovery_key().is_none(), "shown once");
    admin.add_user("Rosa", Role::Caseworker, ROSA_PASS).unwrap();
    let case = admin.create_case(sample::full_case(), None).unwrap();
    drop(admin);
    assert!(!std::fs::read_to_string(dir.path().join(KEY_FILE)).unwrap().contains(key.as_str()));
    let d = dir.path();
    let typed = key.to_lowercase().replace('-', " ");
    assert!(matches!(Store::recover(d, &typed, "Rosa", "a new long phrase"), Err(StoreError::NotAdministrator(_))));
    let e = Store::recover(d, "ABCDE-12345", "Ana Admin", "a new long phrase").unwrap_err();
    assert!(matches!(&e, StoreError::Invalid(v) if v.0[0].path == "recovery_key"));
    let e = Store::recover(d, &typed, "Ana Admin", "short").unwrap_err();
    assert!(matches!(&e, StoreError::Invalid(v) if v.0[0].path == "passphrase"));
    let store = Store::recover(d, &typed, "ana admin", "a brand new passphrase").unwrap();
    assert_eq!(store.session().user_name, "Ana Admin");
    assert_eq!(store.get_case(&id_of(&case)).unwrap()["people"], case["people"]);
    assert!(actions(&store).ends_with(&["Recover".to_string(), "PassphraseChanged".into(), "View".into()]));
    drop(store);
    assert!(Store::open(d, ADMIN_PASS).is_err());
    assert!(Store::open(d, "a brand new passphrase").is_ok());
    let mut rosa = Store::open(d, ROSA_PASS).unwrap();
    // A lost or exposed key is replaced by an administrator; the old one stops working.
    assert!(matches!(rosa.renew_recovery_key(), Err(StoreError::RoleRequired(Role::Administrator))));
    drop(rosa);
    let mut admin = Store::open(d, "a brand new passphrase").unwrap();
    let renewed = admin.renew_recovery_key().unwrap();
    assert_ne!(*renewed, *key);
    drop(admin);
    assert!(matches!(
        Store::recover(d, &key, "Ana Admin", "yet another long phrase"),
        Err(StoreError::WrongRecoveryKey)
    ));
    assert!(Store::recover(d, &renewed, "Ana Admin", "yet another long phrase").is_ok());
}

/// Tamper with the audit table directly, as someone holding the key could.
fn tamper(store: &Store, sql: &str) {
    let c = store.conn();
    c.execute_batch(
        "DROP TRIGGER IF EXISTS audit_append_only_update; DROP TRIGGER IF EXISTS audit_append_only_delete;",
    )
    .unwrap();
    c.execute_batch(sql).unwrap();
}

/// A store with a dozen entries of its own.
fn audited() -> (tempfile::TempDir, Store) {
    let (dir, mut admin) = team();
    let case = admin.create_case(sample::full_case(), None).unwrap();
    admin.add_note(&id_of(&case), "Segunda visita.", Some("es")).unwrap();
    admin.get_case(&id_of(&case)).unwrap();
    admin.record(Action::Print, Some(&id_of(&case)), json!({ "document": "case" })).unwrap();
    admin.record(Action::Lock, None, json!({})).unwrap();
    assert!(admin.verify_audit().unwrap().problem.is_none());
    (dir, admin)
}

#[test]
fn the_audit_trail_refuses_edits_and_names_the_first_tampered_entry() {
    let (_dir, store) = audited();
    let v = store.verify_audit().unwrap();
    assert_eq!((v.entries, v.devices), (9, 1));
    // The triggers stop casual edits.
    assert!(store.conn().execute("UPDATE audit SET action = 'View' WHERE device_seq = 3", []).is_err());
    assert!(store.conn().execute("DELETE FROM audit WHERE device_seq = 3", []).is_err());

    let cases: Vec<(&str, Problem)> = vec![
        ("UPDATE audit SET action = 'View' WHERE device_seq = 5", Problem::Altered { device: "TX3".into(), number: 5 }),
        (
            "UPDATE audit SET at = '2020-01-01T00:00:00.000Z' WHERE device_seq = 1",
            Problem::Altered { device: "TX3".into(), number: 1 },
        ),
        ("UPDATE audit SET user_id = NULL WHERE device_seq = 9", Problem::Altered { device: "TX3".into(), number: 9 }),
        ("DELETE FROM audit WHERE device_seq = 4", Problem::Missing { device: "TX3".into(), number: 4 }),
        ("DELETE FROM audit WHERE device_seq = 9", Problem::Missing { device: "TX3".into(), number: 9 }),
        ("DELETE FROM audit WHERE device_seq = 1", Problem::Missing { device: "TX3".into(), number: 1 }),
        // Swap the local order of two entries.
        (
            "UPDATE audit SET seq = 100000 WHERE device_seq = 6;
             UPDATE audit SET seq = seq - 1 WHERE device_seq = 7;
             UPDATE audit SET seq = (SELECT seq FROM audit WHERE device_seq = 7) + 1 WHERE device_seq = 6;",
            Problem::OutOfOrder { device: "TX3".into(), number: 7 },
        ),
    ];
    for (sql, expected) in cases {
        let (_dir, store) = audited();
        tamper(&store, sql);
        let v = store.verify_audit().unwrap();
        assert_eq!(v.problem.as_ref(), Some(&expected), "{sql}");
        let msg = expected.localized("en");
        assert!(msg.contains(&format!(" {} ", expected.number())) && msg.contains("TX3"), "{msg}");
    }
    // Rewriting an entry and its hash does not help: the next one no longer follows.
    let (_dir, store) = audited();
    let sql = format!("SELECT {} FROM audit WHERE device_seq = 5", crate::repositories::audit::ENTRY_COLUMNS);
    let mut e = store.conn().query_row(&sql, [], crate::repositories::audit::entry).unwrap();
    e.action = "View".into();
    let rehashed = e.rehash_for_tests();
    tamper(&store, &format!("UPDATE audit SET action = 'View', hash = '{rehashed}' WHERE device_seq = 5"));
    assert_eq!(store.verify_audit().unwrap().problem, Some(Problem::Broken { device: "TX3".into(), number: 6 }));
}

#[test]
fn an_entry_whose_ids_are_not_as_this_store_writes_them_reads_back_as_it_came() {
    use crate::repositories::audit::{self, Entry, ENTRY_COLUMNS, GENESIS};
    let (_dir, store) = audited();
    // Another laptop's entry, its ids and hash in a shape this store never writes.
    let mut e = Entry {
        seq: 0,
        id: "01A2434F-E658-72D3-A419-84BE4E68184E".into(),
        device_id: "laptop-of-another-version".into(),
        device_seq: 1,
        at: "2026-12-01T10:00:00.000Z".into(),
        user_id: Some("not-a-uuid".into()),
        action: "View".into(),
        case_id: None,
        detail: "{}".into(),
        prev_hash: GENESIS.to_uppercase(),
        hash: String::new(),
    };
    e.hash = e.rehash_for_tests();
    audit::insert(store.conn(), &e).unwrap();
    let sql = format!("SELECT {ENTRY_COLUMNS} FROM audit WHERE device_id = ?1");
    let back = store.conn().query_row(&sql, [crate::database::stored_id(&e.device_id)], audit::entry).unwrap();
    assert_eq!(Entry { seq: 0, ..back }, e);
    // This store's own entries take 16 bytes an id and 32 a hash.
    let own: i64 = store
        .conn()
        .query_row("SELECT count(*) FROM audit WHERE length(id) = 16 AND length(hash) = 32", [], |r| r.get(0))
        .unwrap();
    assert!(own > 3, "{own}");
}

#[test]
fn audit_entries_hold_ids_and_codes_never_names_or_case_text() {
    let (_dir, store) = audited();
    let c = store.conn();
    let sql = format!("SELECT {} FROM audit", crate::repositories::audit::ENTRY_COLUMNS);
    let mut st = c.prepare(&sql).unwrap();
    let all: Vec<String> = st
        .query_map([], crate::repositories::audit::entry)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            format!("{} {} {} {}", e.user_id.unwrap_or_default(), e.action, e.case_id.unwrap_or_default(), e.detail)
        })
        .collect();
    let case = sample::full_case();
    let words = [
        case["people"][0]["alias"].as_str().unwrap(),
        case["people"][0]["given_name"].as_str().unwrap(),
        "Rosa",
        "Ana Admin",
        "Segunda visita",
    ];
    for entry in &all {
        for w in words {
            assert!(!entry.contains(w), "{w} in {entry}");
        }
    }
    // What a supervisor reads: actions in order, with who and which case.
    let rows = store.audit_list(&AuditQuery { action: Some("AddNote".into()), ..Default::default() }).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].user_name.as_deref(), Some("Ana Admin"));
    assert_eq!(rows[0].device_code.as_deref(), Some("TX3"));
    assert!(rows[0].case_number.is_some());
    assert_eq!(
        actions(&store),
        ["UserAdded", "UserAdded", "UserAdded", "UserAdded", "Create", "AddNote", "View", "Print", "Lock"]
    );
    // Each action the audit screen offers to filter by has its label in both languages.
    for a in Action::ALL {
        assert_eq!(Action::parse(a.code()), Some(*a));
        for locale in ["en", "es"] {
            assert!(crate::i18n::try_t(locale, &a.label_key()).is_some(), "{locale} lacks {}", a.label_key());
        }
    }
}

/// A word as the search index keeps it: lowercased, accents folded.
fn folded(word: &str) -> String {
    word.to_lowercase()
        .chars()
        .map(|c| match c {
            'á' | 'à' | 'ä' | 'â' => 'a',
            'é' | 'è' | 'ë' | 'ê' => 'e',
            'í' | 'ì' | 'ï' | 'î' => 'i',
            'ó' | 'ò' | 'ö' | 'ô' => 'o',
            'ú' | 'ù' | 'ü' | 'û' => 'u',
            'ñ' => 'n',
            c => c,
        })
        .collect()
}

/// Every place a word could be left on disk by the store, as written, lowercased
/// or folded like the search index keeps it.
fn raw_contains(dir: &std::path::Path, word: &str) -> Vec<String> {
    let forms = [word.to_string(), word.to_lowercase(), folded(word)];
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        let bytes = std::fs::read(&p).unwrap();
        for form in &forms {
            if bytes.windows(form.len()).any(|w| w == form.as_bytes()) {
                hits.push(format!("{} ({form})", p.display()));
            }
        }
    }
    hits
}

#[test]
fn a_removed_person_leaves_no_byte_in_the_database_or_wal() {
    // Unencrypted, so that the test can see what a key holder would see.
    PLAINTEXT_FOR_TESTS.set(true);
    let (dir, mut admin) = team();
    let mut c = sample::full_case();
    let mut second = c["people"][0].clone();
    second["role"] = json!("Companion");
    second["alias"] = json!("Quetzalcoatlita");
    second["given_name"] = json!("Xochiquetzalli");
    second.as_object_mut().unwrap().remove("id");
    c["people"].as_array_mut().unwrap().push(second);
    c["people"][0]["alias"] = json!("Mariposaazul");
    let case = admin.create_case(c, None).unwrap();
    let d = dir.path().to_path_buf();
    // The test can see names: both are in the raw files now.
    assert!(!raw_contains(&d, "Xochiquetzalli").is_empty());
    assert!(!raw_contains(&d, "Mariposaazul").is_empty());
    let mut edit = case.clone();
    edit["people"].as_array_mut().unwrap().pop();
    admin.update_case(&id_of(&case), edit, None).unwrap();
    for word in ["Xochiquetzalli", "Quetzalcoatlita"] {
        assert_eq!(raw_contains(&d, word), Vec::<String>::new(), "{word}");
    }
    assert!(!raw_contains(&d, "Mariposaazul").is_empty(), "the person who stays is still there");
    // An alias overwritten leaves nothing of the old one either.
    let number = case["case_number"].as_str().unwrap();
    admin.set_fields(number, &[("people.0.alias".into(), "Colibrí".into())]).unwrap();
    assert_eq!(raw_contains(&d, "Mariposaazul"), Vec::<String>::new(), "the overwritten alias");
    // And search no longer finds the removed name.
    let q = ListQuery { text: "Quetzalcoatlita".into(), ..Default::default() };
    assert!(admin.list_cases(&q).unwrap().is_empty());
    PLAINTEXT_FOR_TESTS.set(false);
}

fn consent(scope: &str, decision: &str, given: chrono::NaiveDate, expires: chrono::NaiveDate) -> Value {
    json!({ "scope": scope, "decision": decision, "explained_in": "es",
            "given_at": given.format("%Y-%m-%d").to_string(), "expires_at": expires.format("%Y-%m-%d").to_string() })
}

#[test]
fn consents_are_validated_and_stamped_with_who_recorded_them() {
    let (dir, mut admin) = team();
    let today = crate::repositories::cases::today();
    let day = chrono::Duration::days(1);
    let mut c = sample::full_case();
    c["consents"] = json!([
        { "scope": "ShareWithReferralOrganisation", "decision": "Granted", "explained_in": "es", "given_at": "2026-01-10" },
        { "scope": "StoreData", "decision": "Granted", "explained_in": "es",
          "given_at": "2026-01-10", "expires_at": "2026-01-09" },
        { "decision": "Granted", "given_at": "Unknown" }
    ]);
    let e = admin.create_case(c, None).unwrap_err();
    let StoreError::Invalid(v) = e else { panic!() };
    let got: Vec<(String, &str)> = v.0.iter().map(|i| (i.path.clone(), i.error.i18n_key())).collect();
    assert_eq!(
        got,
        [
            ("consents.0.expires_at".into(), "error.field.consent_needs_expiry"),
            ("consents.1.expires_at".into(), "error.field.expiry_before_given"),
            ("consents.2.scope".into(), "error.field.required"),
            ("consents.2.explained_in".into(), "error.field.required"),
            ("consents.2.given_at".into(), "error.field.required"),
        ]
    );
    // A valid consent gets an id and the recording user, whatever the form claims.
    let mut c = sample::full_case();
    let mut k = consent("ShareWithReferralOrganisation", "Granted", today - day, today + day * 90);
    k["recorded_by"] = json!("someone-else");
    c["consents"] = json!([k]);
    let saved = admin.create_case(c, None).unwrap();
    let ana = admin.session().user_id.clone();
    assert_eq!(saved["consents"][0]["recorded_by"], json!(ana));
    assert!(saved["consents"][0]["id"].is_string());
    // Rosa edits the case (the form drops recorded_by): Ana stays the recorder of the
    // first consent, Rosa becomes the recorder of the one she adds.
    drop(admin);
    let mut rosa = Store::open(dir.path(), ROSA_PASS).unwrap();
    let mut edit = saved.clone();
    edit["consents"][0].as_object_mut().unwrap().remove("recorded_by");
    edit["consents"].as_array_mut().unwrap().push(consent("FollowUpContact", "Declined", today, today));
    let after = rosa.update_case(&id_of(&saved), edit, None).unwrap();
    assert_eq!(after["consents"][0]["recorded_by"], json!(ana));
    assert_eq!(after["consents"][1]["recorded_by"], json!(rosa.session().user_id));
}

#[test]
fn sharing_a_case_needs_a_matching_unexpired_consent() {
    use crate::consent::{ConsentError, Sharing};
    let (_dir, mut admin) = team();
    let today = crate::repositories::cases::today();
    let day = chrono::Duration::days(1);
    // Intake never depends on consent: a case without any saves.
    let case = admin.create_case(sample::full_case(), None).unwrap();
    let id = id_of(&case);
    let e = admin.share_case(&id, Sharing::Referral).unwrap_err();
    assert!(matches!(e, StoreError::Consent(ConsentError::Missing(Sharing::Referral))));
    assert_eq!(
        e.localized("es"),
        "No hay un consentimiento vigente para compartir con una organización a la que se canaliza. Registre primero la decisión de la persona sobreviviente en la sección Consentimientos."
    );
    // Granted for law enforcement only: still no referral.
    let mut edit = case.clone();
    edit["consents"] = json!([consent("ShareWithLawEnforcement", "Granted", today - day * 10, today + day * 10)]);
    admin.update_case(&id, edit.clone(), None).unwrap();
    assert!(admin.share_case(&id, Sharing::Referral).is_err());
    assert_eq!(admin.share_case(&id, Sharing::LawEnforcement).unwrap()["people"], case["people"]);
    // Granted for referral: allowed, with the names.
    edit["consents"].as_array_mut().unwrap().push(consent(
        "ShareWithReferralOrganisation",
        "Granted",
        today - day * 10,
        today,
    ));
    admin.update_case(&id, edit.clone(), None).unwrap();
    assert_eq!(admin.share_case(&id, Sharing::Referral).unwrap()["people"][0]["given_name"], "Xóchitl");
    // Expired yesterday: refused again, naming the date.
    let last = edit["consents"].as_array().unwrap().len() - 1;
    edit["consents"][last] = consent("ShareWithReferralOrganisation", "Granted", today - day * 10, today - day);
    admin.update_case(&id, edit.clone(), None).unwrap();
    let e = admin.share_case(&id, Sharing::Referral).unwrap_err();
    let on = (today - day).format("%Y-%m-%d").to_string();
    assert!(matches!(&e, StoreError::Consent(ConsentError::Expired { on: o, .. }) if *o == on));
    assert!(e.localized("en").contains(&on), "{}", e.localized("en"));
    // Declined later: refused.
    edit["consents"][last] = consent("ShareWithLawEnforcement", "Declined", today, today);
    admin.update_case(&id, edit, None).unwrap();
    assert!(matches!(
        admin.share_case(&id, Sharing::LawEnforcement),
        Err(StoreError::Consent(ConsentError::Declined(_)))
    ));
    // Every attempt is in the trail, refused or not, with the scope.
    let exports = admin.audit_list(&AuditQuery { action: Some("Export".into()), ..Default::default() }).unwrap();
    assert_eq!(exports.len(), 6);
    assert_eq!(exports.iter().filter(|e| e.detail["refused"] == true).count(), 4);
}

#[test]
fn a_purge_removes_expired_closed_cases_and_leaves_no_byte_of_them() {
    PLAINTEXT_FOR_TESTS.set(true);
    let (dir, mut admin) = team();
    let mut old = sample::full_case();
    old["people"][0]["alias"] = json!("Tlacuache");
    old["people"][0]["given_name"] = json!("Yaretzi");
    old["status"] = json!("Closed");
    let old = admin.create_case(old, None).unwrap();
    admin.add_note(&id_of(&old), "Llamó Zenaida desde Ojinaga.", Some("es")).unwrap();
    admin.save_draft(None, Some(&id_of(&old)), &json!({"people": [{"alias": "Tlacuache"}]})).unwrap();
    let mut recent = sample::full_case();
    recent["status"] = json!("Closed");
    let recent = admin.create_case(recent, None).unwrap();
    let active = admin.create_case(sample::full_case(), None).unwrap();
    // Closed three years ago, by the store's own clock.
    admin
        .conn()
        .execute("UPDATE cases SET closed_at = '2023-01-15T10:00:00.000Z' WHERE id = ?1", [id_of(&old)])
        .unwrap();
    let today = crate::repositories::cases::today();
    assert!(admin.purge_candidates(today).unwrap().is_empty(), "no retention set: nothing expires");
    admin.set_policy(&policy::Policy { idle_lock_minutes: 5, retention_months: Some(24) }).unwrap();
    assert_eq!(admin.purge_candidates(today).unwrap(), vec![id_of(&old)]);
    let d = dir.path().to_path_buf();
    assert!(!raw_contains(&d, "Yaretzi").is_empty(), "the test can see the name before the purge");

    let rosa_dir = d.clone();
    drop(admin);
    let mut rosa = Store::open(&rosa_dir, ROSA_PASS).unwrap();
    assert!(matches!(rosa.purge_expired(today), Err(StoreError::RoleRequired(Role::Administrator))));
    drop(rosa);
    let mut admin = Store::open(&d, ADMIN_PASS).unwrap();
    assert_eq!(admin.purge_expired(today).unwrap().cases, 1);
    assert!(matches!(admin.get_case(&id_of(&old)), Err(StoreError::NotFound(..))));
    assert!(admin.get_case(&id_of(&recent)).is_ok() && admin.get_case(&id_of(&active)).is_ok());
    for word in ["Yaretzi", "Tlacuache", "Zenaida", "Ojinaga"] {
        assert_eq!(raw_contains(&d, word), Vec::<String>::new(), "{word}");
    }
    assert!(!raw_contains(&d, "Xóchitl").is_empty(), "the cases that stay are still there");
    // One audit entry, with ids and a count only; the other cases' notes stay append-only.
    let purges = admin.audit_list(&AuditQuery { action: Some("Purge".into()), ..Default::default() }).unwrap();
    assert_eq!(purges.len(), 1);
    assert_eq!(purges[0].detail, json!({ "cases": 1, "ids": [id_of(&old)] }));
    admin.add_note(&id_of(&active), "nota", None).unwrap();
    assert!(admin.conn().execute("DELETE FROM notes WHERE case_id = ?1", [id_of(&active)]).is_err());
    assert!(admin.verify_audit().unwrap().problem.is_none());
    assert_eq!(admin.purge_expired(today).unwrap().cases, 0);
    PLAINTEXT_FOR_TESTS.set(false);
}

#[test]
fn closing_a_case_starts_its_retention_clock_and_reopening_stops_it() {
    let (_dir, mut admin) = team();
    let case = admin.create_case(sample::full_case(), None).unwrap();
    let id = id_of(&case);
    let closed_at = |s: &Store| -> Option<String> {
        s.conn().query_row("SELECT closed_at FROM cases WHERE id = ?1", [&id], |r| r.get(0)).unwrap()
    };
    assert_eq!(closed_at(&admin), None);
    admin.set_fields(case["case_number"].as_str().unwrap(), &[("status".into(), "Closed".into())]).unwrap();
    let first = closed_at(&admin).unwrap();
    admin.add_note(&id, "cierre", None).unwrap();
    admin.set_fields(case["case_number"].as_str().unwrap(), &[("status".into(), "ClosedReferred".into())]).unwrap();
    assert_eq!(closed_at(&admin).as_ref(), Some(&first), "a closed case stays closed since the first day");
    admin.set_fields(case["case_number"].as_str().unwrap(), &[("status".into(), "FollowUp".into())]).unwrap();
    assert_eq!(closed_at(&admin), None);
}

/// A seal changed on disk is "damaged", never a wrong passphrase: it does not lock
/// the other users out, it is opened from the key file's copy when that is whole,
/// and with both damaged the unlock says so without counting a wrong attempt.
#[test]
fn a_damaged_seal_says_damaged_and_locks_no_one_else_out() {
    let (dir, admin) = team();
    drop(admin);
    let d = dir.path();
    let damage = |file: &str, user_is_admin: bool| {
        let path = d.join(file);
        let mut kf: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let seals = kf["keys"].as_array_mut().unwrap();
        let i = if user_is_admin { 0 } else { 1 };
        let sealed = seals[i]["sealed"].as_str().unwrap().to_string();
        let flipped = format!("{}{}", if sealed.starts_with('0') { '1' } else { '0' }, &sealed[1..]);
        seals[i]["sealed"] = json!(flipped);
        std::fs::write(&path, serde_json::to_vec(&kf).unwrap()).unwrap();
    };
    // Rosa's seal damaged in keys.json: the administrator still unlocks, and so
    // does Rosa, from the copy.
    damage(crate::database::KEY_FILE, false);
    assert!(Store::open(d, ADMIN_PASS).is_ok());
    assert!(Store::open(d, ROSA_PASS).is_ok(), "opened from the copy");
    // Damaged in the copy too: Rosa is told the key file is damaged, and no wrong
    // attempt is counted; the administrator is not locked out.
    damage(crate::database::keys::KEY_COPY_FILE, false);
    let before = crate::database::throttle::load(d).at.len();
    let e = Store::open(d, ROSA_PASS).unwrap_err();
    assert!(matches!(e, StoreError::Database(DatabaseError::KeyFile(_))), "{e:?}");
    assert_eq!(crate::database::throttle::load(d).at.len(), before, "not a wrong attempt");
    assert!(Store::open(d, ADMIN_PASS).is_ok());
}

/// Direct SQL on the store, as anyone who holds the data key could.
fn by_hand(store: &Store, sql: &str) {
    store.conn().execute_batch(sql).unwrap();
}

fn user<'a>(users: &'a [crate::repositories::users::User], name: &str) -> &'a crate::repositories::users::User {
    users.iter().find(|u| u.name == name).unwrap()
}

/// A caseworker who makes herself administrator with one UPDATE gets no rights
/// from it: her row's role is not signed. The administrators see it, and the
/// trail says so; an administrator choosing the role signs it again.
#[test]
fn a_role_changed_by_direct_sql_gives_no_rights_and_is_reported() {
    let (dir, admin) = team();
    by_hand(&admin, "UPDATE users SET role = 'Administrator' WHERE name = 'Rosa'");
    drop(admin);
    let d = dir.path();
    let mut rosa = Store::open(d, ROSA_PASS).unwrap();
    assert_eq!(rosa.session().role, Role::Caseworker);
    assert!(!rosa.rights().administer && !rosa.rights().supervise);
    assert!(matches!(
        rosa.add_user("Eva", Role::Administrator, "eva escribe poemas"),
        Err(StoreError::RoleRequired(_))
    ));
    assert!(matches!(rosa.set_role("Rosa", Role::Administrator), Err(StoreError::RoleRequired(_))));
    drop(rosa);
    let mut admin = Store::open(d, ADMIN_PASS).unwrap();
    let users = admin.users().unwrap();
    let r = user(&users, "Rosa");
    assert_eq!((r.role, r.signed, r.claimed_role), (Role::Caseworker, false, Some(Role::Administrator)));
    assert!(users.iter().filter(|u| u.name != "Rosa").all(|u| u.signed), "the others' grants still verify");
    assert!(actions(&admin).contains(&"RoleRefused".to_string()));
    admin.set_role("Rosa", Role::Supervisor).unwrap();
    drop(admin);
    let rosa = Store::open(d, ROSA_PASS).unwrap();
    assert_eq!(rosa.session().role, Role::Supervisor, "signed again by an administrator");
}

/// A user written in by hand, with a seal of the data key of her own in the key
/// file, unlocks as nothing more than a caseworker, however her row is filled.
#[test]
fn a_user_added_by_hand_unlocks_with_no_more_than_a_caseworkers_rights() {
    let (dir, admin) = team();
    let d = dir.path();
    let ana = admin.users().unwrap().into_iter().find(|u| u.name == "Ana Admin").unwrap();
    // Her row copies the administrator's grant, signature and all.
    by_hand(
        &admin,
        &format!(
            "INSERT INTO users (id, name, role, created_at, granted_by, granted_at, grant_sig)
               SELECT 'mallory', 'Mallory', 'Administrator', created_at, granted_by, granted_at, grant_sig
                 FROM users WHERE id = '{}'",
            ana.id
        ),
    );
    let mut kf = KeyFile::read(&d.join(KEY_FILE)).unwrap();
    let secrets = keys::UserSecrets::generate(None);
    let pass = "mallory tiene la llave";
    kf.keys.push(keys::wrap_with(&admin.key, &secrets.to_bytes(), "mallory", pass, admin.kdf).unwrap());
    kf.write(&d.join(KEY_FILE)).unwrap();
    drop(admin);
    let mallory = Store::open(d, pass).unwrap();
    assert_eq!(mallory.session().role, Role::Caseworker);
    drop(mallory);
    let admin = Store::open(d, ADMIN_PASS).unwrap();
    let users = admin.users().unwrap();
    assert_eq!(user(&users, "Mallory").claimed_role, Some(Role::Administrator));
    assert!(!user(&users, "Mallory").signed);
}

/// Someone with the data key and code of her own replaces the authority and signs
/// herself an administrator with it. Every seal names the authority it was made
/// with, so the administrator's unlock finds it changed and gives no one more than
/// a caseworker's rights; the recovery key, which holds the real authority, puts it
/// back, and her forged grant is refused again.
#[test]
fn a_replaced_authority_is_found_out_and_the_recovery_key_puts_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut admin = Store::create(dir.path(), &setup(), KdfParams::INSECURE_FOR_TESTS).unwrap();
    let recovery = admin.take_recovery_key().unwrap();
    admin.add_user("Rosa", Role::Caseworker, ROSA_PASS).unwrap();
    let rosa_id = user(&admin.users().unwrap(), "Rosa").id.clone();
    let forged = crate::repositories::users::Authority::generate();
    crate::repositories::users::set_authority(admin.conn(), &forged).unwrap();
    crate::repositories::users::grant(admin.conn(), &forged, &rosa_id, Role::Administrator, &rosa_id).unwrap();
    drop(admin);
    let d = dir.path();
    let ana = Store::open(d, ADMIN_PASS).unwrap();
    assert_eq!(ana.session().role, Role::Caseworker, "her seal names another authority");
    drop(ana);
    let rosa = Store::open(d, ROSA_PASS).unwrap();
    assert_eq!(rosa.session().role, Role::Caseworker, "Rosa's own seal names the real one too");
    drop(rosa);
    let ana = Store::recover(d, &recovery, "Ana Admin", "a brand new passphrase").unwrap();
    assert_eq!(ana.session().role, Role::Administrator);
    let users = ana.users().unwrap();
    assert_eq!((user(&users, "Rosa").role, user(&users, "Rosa").signed), (Role::Caseworker, false));
    assert!(actions(&ana).iter().filter(|a| *a == "RoleRefused").count() >= 2);
    drop(ana);
    assert_eq!(Store::open(d, "a brand new passphrase").unwrap().session().role, Role::Administrator);
}

/// Roles are signed by the administrators who hold the authority: one promoted
/// can sign (add a user), one demoted no longer holds it, and a passphrase an
/// administrator sets for someone else comes with new key pairs, signed.
#[test]
fn administrators_sign_roles_and_a_demoted_one_no_longer_can() {
    let (dir, mut admin) = team();
    let d = dir.path();
    admin.set_role("Sara", Role::Administrator).unwrap();
    admin.set_passphrase(Some("Rosa"), "rosa tiene frase nueva").unwrap();
    drop(admin);
    let rosa = Store::open(d, "rosa tiene frase nueva").unwrap();
    assert_eq!(rosa.session().role, Role::Caseworker);
    assert!(user(&rosa.users().unwrap(), "Rosa").signed);
    drop(rosa);
    let mut sara = Store::open(d, SUPER_PASS).unwrap();
    assert!(sara.authority.is_some());
    sara.add_user("Eva", Role::Supervisor, "eva escribe poemas").unwrap();
    sara.set_role("Ana Admin", Role::Supervisor).unwrap();
    drop(sara);
    let mut ana = Store::open(d, ADMIN_PASS).unwrap();
    assert_eq!(ana.session().role, Role::Supervisor);
    assert!(ana.authority.is_none());
    assert!(matches!(ana.set_role("Ana Admin", Role::Administrator), Err(StoreError::RoleRequired(_))));
    drop(ana);
    assert_eq!(Store::open(d, "eva escribe poemas").unwrap().session().role, Role::Supervisor);
}

/// A store from before role grants (seals with the data key alone, rows without
/// keys or signatures, no authority) keeps everyone's role: caseworkers who unlock
/// first make their key pairs; the first administrator to unlock signs every role
/// as it stands; from then on a role changed by hand gives no rights. Its recovery
/// seal, which holds no authority, still recovers, and is sealed again with one.
#[test]
fn a_store_from_before_grants_signs_its_roles_at_an_administrators_unlock() {
    let dir = tempfile::tempdir().unwrap();
    let mut admin = Store::create(dir.path(), &setup(), KdfParams::INSECURE_FOR_TESTS).unwrap();
    let recovery = admin.take_recovery_key().unwrap();
    admin.add_user("Rosa", Role::Caseworker, ROSA_PASS).unwrap();
    admin.add_user("Sara", Role::Supervisor, SUPER_PASS).unwrap();
    let d = dir.path();
    // As a store from before was: seals of the data key alone, nothing signed.
    by_hand(
        &admin,
        "UPDATE users SET sign_key = NULL, kx_key = NULL, granted_by = NULL, granted_at = NULL, grant_sig = NULL;
         DELETE FROM authority_seals; DELETE FROM meta WHERE key = 'authority_key';",
    );
    let ids: Vec<(String, String)> = admin.users().unwrap().into_iter().map(|u| (u.name, u.id)).collect();
    let id = |n: &str| ids.iter().find(|(name, _)| name == n).unwrap().1.clone();
    let kdf = admin.kdf;
    let kf = KeyFile {
        format: keys::KEY_FILE_FORMAT.into(),
        store_id: KeyFile::read(&d.join(KEY_FILE)).unwrap().store_id,
        keys: [("Ana Admin", ADMIN_PASS), ("Rosa", ROSA_PASS), ("Sara", SUPER_PASS)]
            .iter()
            .map(|(n, p)| keys::wrap(&admin.key, &id(n), p, kdf).unwrap())
            .collect(),
        recovery: Some(keys::wrap(&admin.key, keys::RECOVERY_ID, &recovery, kdf).unwrap()),
    };
    kf.write(&d.join(KEY_FILE)).unwrap();
    drop(admin);
    let sara = Store::open(d, SUPER_PASS).unwrap();
    assert_eq!(sara.session().role, Role::Supervisor, "unsigned, as every role was before");
    drop(sara);
    let ana = Store::open(d, ADMIN_PASS).unwrap();
    assert_eq!(ana.session().role, Role::Administrator);
    assert!(ana.authority.is_some());
    assert!(ana.users().unwrap().iter().all(|u| u.signed));
    drop(ana);
    for (pass, role) in
        [(ROSA_PASS, Role::Caseworker), (SUPER_PASS, Role::Supervisor), (ADMIN_PASS, Role::Administrator)]
    {
        assert_eq!(Store::open(d, pass).unwrap().session().role, role);
    }
    let ana = Store::open(d, ADMIN_PASS).unwrap();
    assert!(ana.users().unwrap().iter().all(|u| u.signed && !u.keys_pending), "everyone's keys are signed now");
    by_hand(&ana, "UPDATE users SET role = 'Administrator' WHERE name = 'Rosa'");
    drop(ana);
    assert_eq!(Store::open(d, ROSA_PASS).unwrap().session().role, Role::Caseworker);
    // The old recovery seal holds no authority: recovering makes a new one,
    // signs the roles as they verify, and seals the recovery key again.
    let ana = Store::recover(d, &recovery, "Ana Admin", "a brand new passphrase").unwrap();
    let users = ana.users().unwrap();
    assert_eq!(user(&users, "Sara").role, Role::Supervisor);
    assert_eq!(user(&users, "Rosa").role, Role::Caseworker);
    drop(ana);
    let (_, extra) =
        keys::unwrap_with(KeyFile::read(&d.join(KEY_FILE)).unwrap().recovery.as_ref().unwrap(), &recovery).unwrap();
    assert_eq!(extra.len(), 64, "the recovery seal holds the authority and its own X25519 secret now");
    assert_eq!(Store::open(d, SUPER_PASS).unwrap().session().role, Role::Supervisor);
}
