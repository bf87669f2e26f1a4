//! Sync between laptops of one organisation: invitations, bundles, merge, conflicts,
//! bad bundles, and convergence under any schedule (a property test).

use super::*;
use crate::changelog::hlc;
use crate::database::keys::KdfParams;
use crate::sample;
use crate::store::{Setup, Store, StoreError};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::json;

const PASS: &str = "correct horse battery staple";

fn setup(code: &str) -> Setup {
    Setup {
        org: "Casa Amparo".into(),
        device_code: code.into(),
        user: format!("Admin {code}"),
        passphrase: String::from(PASS).into(),
        locale: "en".into(),
    }
}

/// The first laptop and `n - 1` more joined to its organisation by invitation.
fn laptops(n: usize) -> (Vec<tempfile::TempDir>, Vec<Store>) {
    let mut dirs = vec![tempfile::tempdir().unwrap()];
    let first = Store::create(dirs[0].path(), &setup("L0"), KdfParams::INSECURE_FOR_TESTS).unwrap();
    let (invitation, passphrase) = first.invite().unwrap();
    let mut stores = vec![first];
    for i in 1..n {
        dirs.push(tempfile::tempdir().unwrap());
        let s = Store::join(
            dirs[i].path(),
            &invitation,
            &passphrase,
            &setup(&format!("L{i}")),
            KdfParams::INSECURE_FOR_TESTS,
        )
        .unwrap();
        stores.push(s);
    }
    (dirs, stores)
}

fn export(s: &mut Store) -> Vec<u8> {
    export_with(s, false)
}

/// A bundle of every change the laptop holds (its own and those it received).
fn export_all(s: &mut Store) -> Vec<u8> {
    export_with(s, true)
}

fn export_with(s: &mut Store, all: bool) -> Vec<u8> {
    let mut out = Vec::new();
    s.sync_export(all, |b| {
        out = b.to_vec();
        Ok(())
    })
    .unwrap();
    out
}

fn import(s: &mut Store, b: &[u8]) -> Result<ImportSummary, StoreError> {
    s.sync_import(b, &mut |_, _| {})
}

/// Every case as its JSON export, by id: what "the same cases" means.
fn cases(s: &Store) -> BTreeMap<String, Value> {
    let mut out = Vec::new();
    s.export_jsonl(&mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| (v["id"].as_str().unwrap().to_string(), v))
        .collect()
}

fn change_count(s: &Store) -> i64 {
    crate::changelog::all(s.conn()).unwrap().len() as i64
}

fn id_of(case: &Value) -> String {
    case["id"].as_str().unwrap().to_string()
}

fn set(s: &mut Store, case: &Value, path: &str, value: &str) -> Value {
    let number = case["case_number"].as_str().unwrap();
    s.set_fields(number, &[(path.to_string(), value.to_string())]).unwrap()
}

#[test]
fn a_case_travels_to_another_laptop_and_back_unchanged() {
    let (_d, mut l) = laptops(2);
    let case = l[0].create_case(sample::full_case(), None).unwrap();
    l[0].add_note(&id_of(&case), "Llamó desde Ojinaga.", Some("es")).unwrap();
    let b = export(&mut l[0]);
    let s = import(&mut l[1], &b).unwrap();
    assert_eq!((s.new_cases, s.updated_cases, s.conflicts), (1, 0, 0));
    assert_eq!(cases(&l[0]), cases(&l[1]));
    // The fact sheet counts merged cases like saved ones.
    let q = crate::report::ReportQuery::default();
    assert_eq!(l[1].fact_sheet(&q).unwrap(), l[0].fact_sheet(&q).unwrap());
    assert_eq!(l[1].fact_sheet(&q).unwrap().cases, crate::report::Count::Exact(1));
    // Search works on the receiving laptop too.
    let q = crate::repositories::cases::ListQuery { text: "Ojinaga".into(), ..Default::default() };
    assert_eq!(l[1].list_cases(&q).unwrap().len(), 1);
    // The first laptop's audit trail came along, named by its device code, and
    // every chain still verifies.
    let trail = l[1].audit_list(&Default::default()).unwrap();
    assert!(trail.iter().any(|r| r.device_code.as_deref() == Some("L0") && r.action == "Create"));
    assert!(l[1].verify_audit().unwrap().problem.is_none());
    // Again, and in the other direction: nothing new, nothing changes.
    assert_eq!(import(&mut l[1], &b).unwrap().changes, 0);
    let back = export(&mut l[1]);
    assert_eq!(import(&mut l[0], &back).unwrap().new_cases, 0);
    assert_eq!(cases(&l[0]), cases(&l[1]));
    // What the app shows: what each laptop last got from the other.
    let st = l[0].sync_status().unwrap();
    assert_eq!(st.peers.len(), 1);
    assert_eq!(st.peers[0].device_code, "L1");
    assert_eq!(st.unexported_changes, 0);
}

/// The bytes of every row of a laptop's change log.
fn raw_log(s: &Store) -> Vec<Vec<u8>> {
    let mut st = s.conn().prepare("SELECT fields FROM change_log").unwrap();
    st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

fn log_holds(s: &Store, text: &str) -> bool {
    raw_log(s).iter().any(|r| r.windows(text.len()).any(|w| w == text.as_bytes()))
}

/// A laptop's changes as they read back: who, which number, which field, what value.
fn changes_read(s: &Store) -> Vec<(String, i64, String, Option<Value>)> {
    let mut all: Vec<_> =
        changelog::all(s.conn()).unwrap().into_iter().map(|c| (c.device, c.seq, c.field, c.value)).collect();
    all.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    all
}

#[test]
fn a_case_that_arrives_by_sync_stores_its_values_once_and_travels_on_unchanged() {
    let (_d, mut l) = laptops(3);
    let case = l[0].create_case(sample::full_case(), None).unwrap();
    let id = id_of(&case);
    l[0].add_note(&id, "Llamó desde Ojinaga.", Some("es")).unwrap();
    set(&mut l[0], &case, "people.0.alias", "Mariposa");
    let b = export(&mut l[0]);
    assert_eq!(import(&mut l[1], &b).unwrap().new_cases, 1);
    // The receiving laptop holds the names and the note in the case's row and the
    // notes table; its log only says so, and reads them back from there.
    for word in ["Quetzalli Ramírez", "Mariposa", "Ojinaga"] {
        assert!(!log_holds(&l[1], word), "{word} stored twice");
    }
    assert_eq!(changes_read(&l[1]), changes_read(&l[0]));
    // Passed on to a third laptop from there (every change it holds), nothing is lost.
    let b1 = export_all(&mut l[1]);
    assert_eq!(import(&mut l[2], &b1).unwrap().new_cases, 1);
    assert_eq!(cases(&l[2]), cases(&l[0]));
    assert_eq!(changes_read(&l[2]), changes_read(&l[0]));
    // Edited where it was written and merged again: the new value shows, the old
    // one is gone from the receiving laptop's log too.
    set(&mut l[0], &case, "people.0.alias", "Luna");
    let b = export(&mut l[0]);
    assert_eq!(import(&mut l[1], &b).unwrap().updated_cases, 1);
    assert_eq!(cases(&l[1]), cases(&l[0]));
    assert_eq!(changes_read(&l[1]), changes_read(&l[0]));
    assert!(!log_holds(&l[1], "Mariposa") && !l[1].get_case(&id).unwrap().to_string().contains("Mariposa"));
    // Edited on two laptops at once: the value that loses is kept for review on
    // the laptop whose row showed it (now from the log), and both agree.
    set(&mut l[1], &case, "people.0.alias", "Sol");
    set(&mut l[2], &case, "people.0.alias", "Estrella");
    let (b1, b2) = (export(&mut l[1]), export(&mut l[2]));
    import(&mut l[1], &b2).unwrap();
    import(&mut l[2], &b1).unwrap();
    assert_eq!(cases(&l[1]), cases(&l[2]));
    assert_eq!(l[1].conflicts().unwrap().len(), 1);
    let values: Vec<Value> = l[1].case_conflicts(&id).unwrap()[0].values.iter().map(|v| v.value.clone()).collect();
    assert!(values.contains(&json!("Sol")) && values.contains(&json!("Estrella")), "{values:?}");
    // A row that lost a value its log points to is damage, never a silent blank.
    l[2].conn().execute("UPDATE cases SET data = json_remove(data, '$.people[0].family_name')", []).unwrap();
    assert!(matches!(changelog::all(l[2].conn()), Err(DatabaseError::Damaged { table: "cases" })));
}

#[test]
fn imports_and_merges_keep_the_fact_sheets_running_counts_exact() {
    // An import and a merge add their cases' shares of the counts all at once,
    // at their end: new cases, edited ones (moved to another month, closed,
    // their people replaced) and one case edited twice in one bundle.
    let (_d, mut l) = laptops(2);
    let mut lines = String::new();
    for seed in 0..30 {
        lines.push_str(&serde_json::to_string(&sample::generated(seed)).unwrap());
        lines.push('\n');
    }
    assert_eq!(l[0].import_jsonl(lines.as_bytes(), false, &mut |_| {}).unwrap().imported, 30);
    crate::report::tests::assert_counts_agree(&l[0]);
    l[1].create_case(sample::generated(100), None).unwrap();
    let b = export(&mut l[0]);
    assert_eq!(import(&mut l[1], &b).unwrap().new_cases, 30);
    crate::report::tests::assert_counts_agree(&l[1]);
    let numbers: Vec<String> = cases(&l[0]).values().map(|c| c["case_number"].as_str().unwrap().into()).collect();
    for (i, number) in numbers.iter().enumerate().take(9) {
        let edit = match i % 3 {
            0 => ("intake_date", "2019-02-03"),
            1 => ("status", "Closed"),
            _ => ("venues", "TruckStop,Agriculture"),
        };
        l[0].set_fields(number, &[(edit.0.to_string(), edit.1.to_string())]).unwrap();
    }
    l[0].set_fields(&numbers[0], &[("venues".to_string(), "HotelMotel".to_string())]).unwrap();
    let b = export(&mut l[0]);
    assert_eq!(import(&mut l[1], &b).unwrap().updated_cases, 9);
    crate::report::tests::assert_counts_agree(&l[1]);
    let q = crate::report::ReportQuery::default();
    let (mine, theirs) = (l[0].fact_sheet(&q).unwrap(), l[1].fact_sheet(&q).unwrap());
    assert_eq!(theirs.cases, crate::report::Count::Exact(31));
    assert_eq!(theirs.venues.len(), mine.venues.len());
}

#[test]
fn concurrent_edits_merge_field_by_field_and_keep_the_losing_value() {
    let (_d, mut l) = laptops(2);
    let case = l[0].create_case(sample::full_case(), None).unwrap();
    let b = export(&mut l[0]);
    import(&mut l[1], &b).unwrap();
    // Offline on both: different fields, and the same field.
    set(&mut l[0], &case, "intake_channel", "Hotline");
    set(&mut l[1], &case, "status", "FollowUp");
    set(&mut l[0], &case, "people.0.alias", "Mariposa");
    set(&mut l[1], &case, "people.0.alias", "Golondrina");
    assert!(l[0].unexported_cases().unwrap().contains(&id_of(&case)));
    let (b0, b1) = (export(&mut l[0]), export(&mut l[1]));
    let s1 = import(&mut l[1], &b0).unwrap();
    let s0 = import(&mut l[0], &b1).unwrap();
    assert_eq!((s0.updated_cases, s0.conflicts, s1.conflicts), (1, 1, 1));
    let (c0, c1) = (cases(&l[0]), cases(&l[1]));
    assert_eq!(c0, c1, "both laptops show the same case");
    let merged = &c0[&id_of(&case)];
    assert_eq!(merged["intake_channel"], "Hotline");
    assert_eq!(merged["status"], "FollowUp");
    // One winner, the same on both; the other value kept, with who and where.
    let conflicts = l[0].conflicts().unwrap();
    assert_eq!(conflicts, l[1].conflicts().unwrap());
    assert_eq!(conflicts.len(), 1);
    let c = &conflicts[0];
    assert_eq!(c.path, "people.0.alias");
    assert_eq!(c.values[0].value, merged["people"][0]["alias"]);
    let mut both: Vec<&str> = c.values.iter().map(|v| v.value.as_str().unwrap()).collect();
    both.sort();
    assert_eq!(both, ["Golondrina", "Mariposa"]);
    let mut devices: Vec<&str> = c.values.iter().map(|v| v.device_code.as_str()).collect();
    devices.sort();
    assert_eq!(devices, ["L0", "L1"]);
    // A supervisor keeps the one that lost; the resolution travels too.
    let loser = c.values[1].clone();
    l[1].resolve_conflict(&id_of(&case), &c.field, &Resolution::Keep(loser.choice.clone())).unwrap();
    assert!(l[1].conflicts().unwrap().is_empty());
    let b1 = export(&mut l[1]);
    import(&mut l[0], &b1).unwrap();
    assert!(l[0].conflicts().unwrap().is_empty());
    let (c0, c1) = (cases(&l[0]), cases(&l[1]));
    assert_eq!(c0, c1);
    assert_eq!(c0[&id_of(&case)]["people"][0]["alias"], loser.value);
    // An edit made after seeing the other laptop's value is no conflict.
    set(&mut l[0], &case, "people.0.alias", "Colibrí");
    let b0 = export(&mut l[0]);
    assert_eq!(import(&mut l[1], &b0).unwrap().conflicts, 0);
    assert_eq!(cases(&l[1])[&id_of(&case)]["people"][0]["alias"], "Colibrí");
}

#[test]
fn a_typed_resolution_is_checked_like_any_save() {
    let (_d, mut l) = laptops(2);
    let case = l[0].create_case(sample::full_case(), None).unwrap();
    let b = export(&mut l[0]);
    import(&mut l[1], &b).unwrap();
    set(&mut l[0], &case, "status", "FollowUp");
    set(&mut l[1], &case, "status", "Closed");
    let b1 = export(&mut l[1]);
    import(&mut l[0], &b1).unwrap();
    let c = &l[0].conflicts().unwrap()[0];
    let bad = l[0].resolve_conflict(&id_of(&case), &c.field, &Resolution::Value("Perhaps".into()));
    assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");
    assert_eq!(l[0].conflicts().unwrap().len(), 1, "a refused resolution changes nothing");
    let ok = l[0].resolve_conflict(&id_of(&case), &c.field, &Resolution::Value("Active".into())).unwrap();
    assert_eq!(ok["status"], "Active");
    assert!(l[0].conflicts().unwrap().is_empty());
    let unknown = l[0].resolve_conflict(&id_of(&case), &c.field, &Resolution::Keep("x:1".into()));
    assert!(matches!(unknown, Err(StoreError::Sync(SyncError::NoConflict))));
}

#[test]
fn a_caseworker_cannot_resolve_or_list_conflicts() {
    let (_d, mut l) = laptops(1);
    l[0].add_user("Rosa", crate::repositories::users::Role::Caseworker, "rosa camina por el río").unwrap();
    let dir = l[0].dir().to_path_buf();
    let mut rosa = Store::open(&dir, "rosa camina por el río").unwrap();
    assert!(matches!(rosa.conflicts(), Err(StoreError::RoleRequired(_))));
    let r = rosa.resolve_conflict("x", "status", &Resolution::Value("Active".into()));
    assert!(matches!(r, Err(StoreError::RoleRequired(_))));
    assert!(rosa.invite().is_err(), "only administrators invite");
}

/// Files of a data folder that hold `word` (on an unencrypted store, so the test
/// sees what a key holder would).
fn raw_contains(dir: &std::path::Path, word: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| std::fs::read(p).unwrap().windows(word.len()).any(|w| w == word.as_bytes()))
        .map(|p| p.display().to_string())
        .collect()
}

#[test]
fn removals_and_purges_reach_every_laptop() {
    crate::database::PLAINTEXT_FOR_TESTS.set(true);
    let (_d, mut l) = laptops(2);
    let mut c = sample::full_case();
    let mut second = c["people"][0].clone();
    second["role"] = json!("Companion");
    second["alias"] = json!("Quetzalcoatlita");
    second.as_object_mut().unwrap().remove("id");
    c["people"].as_array_mut().unwrap().push(second);
    c["status"] = json!("Closed");
    let case = l[0].create_case(c, None).unwrap();
    let b = export(&mut l[0]);
    import(&mut l[1], &b).unwrap();
    let mut edit = case.clone();
    edit["people"].as_array_mut().unwrap().pop();
    l[0].update_case(&id_of(&case), edit, None).unwrap();
    let b = export(&mut l[0]);
    assert_eq!(import(&mut l[1], &b).unwrap().updated_cases, 1);
    let people = case["people"].as_array().unwrap().len();
    assert_eq!(cases(&l[1])[&id_of(&case)]["people"].as_array().unwrap().len(), people - 1);
    let q = crate::repositories::cases::ListQuery { text: "Quetzalcoatlita".into(), ..Default::default() };
    assert!(l[1].list_cases(&q).unwrap().is_empty());
    // Its words are gone from the receiving laptop's files too (case, log, index, WAL).
    for s in &l {
        assert_eq!(raw_contains(s.dir(), "Quetzalcoatlita"), Vec::<String>::new());
    }
    let kept = case["people"][0]["alias"].as_str().unwrap().to_string();
    assert!(!raw_contains(l[1].dir(), &kept).is_empty(), "the test can see words that stay");
    // A purge on the first laptop removes the case on the second.
    l[0].set_policy(&crate::store::policy::Policy { idle_lock_minutes: 5, retention_months: Some(1) }).unwrap();
    l[0].conn().execute("UPDATE cases SET closed_at = '2020-01-01T00:00:00.000Z'", []).unwrap();
    assert_eq!(l[0].purge_expired(crate::repositories::cases::today()).unwrap().cases, 1);
    let b = export(&mut l[0]);
    assert_eq!(import(&mut l[1], &b).unwrap().removed_cases, 1);
    assert!(cases(&l[1]).is_empty());
    let q = crate::report::ReportQuery::default();
    assert_eq!(l[1].fact_sheet(&q).unwrap().venues, vec![], "a purged case counts nowhere");
    // An edit made offline on the second laptop does not bring it back anywhere.
    let b_old = b.clone();
    import(&mut l[1], &b_old).unwrap();
    assert!(cases(&l[0]).is_empty() && cases(&l[1]).is_empty());
    for s in &l {
        assert_eq!(raw_contains(s.dir(), &kept), Vec::<String>::new(), "purged words left in {}", s.dir().display());
    }
    crate::database::PLAINTEXT_FOR_TESTS.set(false);
}

#[test]
fn bad_bundles_are_refused_whole() {
    let (_d, mut l) = laptops(2);
    for _ in 0..3 {
        l[0].create_case(sample::full_case(), None).unwrap();
    }
    let good = export(&mut l[0]);
    let before = change_count(&l[1]);
    let refused = |s: &mut Store, b: &[u8]| {
        let r = import(s, b);
        assert!(r.is_err(), "accepted a bad bundle");
        r.unwrap_err()
    };
    assert!(matches!(refused(&mut l[1], b"hello"), StoreError::Sync(SyncError::NotABundle)));
    assert!(matches!(refused(&mut l[1], &good[..good.len() - 1]), StoreError::Sync(SyncError::Damaged)));
    assert!(matches!(refused(&mut l[1], &good[..good.len() / 2]), StoreError::Sync(SyncError::Damaged)));
    // One bit flipped: in the header (bound as associated data) and in the body.
    for at in [20, good.len() / 2, good.len() - 3] {
        let mut b = good.clone();
        b[at] ^= 0x10;
        assert!(import(&mut l[1], &b).is_err(), "bit {at}");
    }
    // Another organisation's bundle.
    let other_dir = tempfile::tempdir().unwrap();
    let mut other = Store::create(other_dir.path(), &setup("ZZ"), KdfParams::INSECURE_FOR_TESTS).unwrap();
    other.create_case(sample::full_case(), None).unwrap();
    let foreign = export(&mut other);
    assert!(matches!(refused(&mut l[1], &foreign), StoreError::Sync(SyncError::ForeignOrg)));
    // A newer format, even with a header that is otherwise in order.
    let (mut header, end) = bundle::read_signed(&good).unwrap();
    header.format = bundle::FORMAT + 1;
    let h = serde_json::to_vec(&header).unwrap();
    let mut newer = bundle::MAGIC.to_vec();
    newer.extend_from_slice(&(h.len() as u32).to_le_bytes());
    newer.extend_from_slice(&h);
    newer.extend_from_slice(&good[end..]);
    assert!(matches!(refused(&mut l[1], &newer), StoreError::Sync(SyncError::NewerFormat { .. })));
    assert_eq!(change_count(&l[1]), before, "nothing of a refused bundle was applied");
    assert!(cases(&l[1]).is_empty());
    assert_eq!(import(&mut l[1], &good).unwrap().new_cases, 3);
    // Every refusal has a message in both languages.
    for e in [
        SyncError::NotABundle,
        SyncError::Damaged,
        SyncError::ForeignOrg,
        SyncError::NewerFormat { found: 2, supported: 1 },
    ] {
        for lang in ["en", "es"] {
            let m = crate::i18n::tr(lang, e.i18n_key(), &e.args());
            assert!(!m.contains("error.") && !m.contains("%{"), "{lang}: {m}");
        }
    }
}

#[test]
fn invitations_need_their_passphrase_and_a_free_device_code() {
    let (dirs, l) = laptops(2);
    let (inv, pass) = l[0].invite().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wrong = Store::join(dir.path(), &inv, "AAAAA-AAAAA-AAAAA-AAAAA", &setup("L9"), KdfParams::INSECURE_FOR_TESTS);
    assert!(matches!(wrong, Err(StoreError::Sync(SyncError::WrongInvitePassphrase))));
    let taken = Store::join(dir.path(), &inv, &pass, &setup("l0"), KdfParams::INSECURE_FOR_TESTS);
    assert!(matches!(taken, Err(StoreError::Invalid(_))), "{taken:?}");
    assert!(!Store::exists(dir.path()), "nothing was set up");
    let garbage = Store::join(dir.path(), b"{}", &pass, &setup("L9"), KdfParams::INSECURE_FOR_TESTS);
    assert!(matches!(garbage, Err(StoreError::Sync(SyncError::NotAnInvitation))));
    // Typed loosely (lower case, spaces) it still works.
    let loose = pass.to_lowercase().replace('-', " ");
    let s = Store::join(dir.path(), &inv, &loose, &setup("L9"), KdfParams::INSECURE_FOR_TESTS).unwrap();
    assert_eq!(s.session().org, "Casa Amparo");
    // A lost invitation names no organisation.
    assert!(!String::from_utf8_lossy(&inv).contains("Casa Amparo"));
    drop(dirs);
}

#[test]
fn every_laptop_joined_by_invitation_checks_roles_with_one_authority() {
    use crate::repositories::users::authority;
    let (dirs, l) = laptops(3);
    let first = authority(l[0].conn()).unwrap().expect("a new store has an authority");
    for s in &l[1..] {
        assert_eq!(authority(s.conn()).unwrap().as_deref(), Some(first.as_str()));
    }
    // What the org key, which every laptop holds, opens of an invitation does not
    // carry the authority's secret: only the one-time passphrase does.
    let (inv, pass) = l[0].invite().unwrap();
    let parsed: org::Invitation = serde_json::from_slice(&inv).unwrap();
    let (_, _, key) = org::keys(l[1].conn()).unwrap();
    let about = org::open_about(&parsed.about, &key, &parsed.org_id).expect("opens with the org key");
    let secret = {
        let opened = org::open_invitation(&inv, &pass).unwrap();
        hex::encode(opened.authority.expect("sealed under the passphrase").to_bytes().as_ref())
    };
    assert!(!serde_json::to_string(&about).unwrap().contains(&secret));
    assert!(!String::from_utf8_lossy(&inv).contains(&secret));
    // An invitation from an Amparo before shared authorities still joins, with an
    // authority of its own.
    let mut older = parsed.clone();
    let typed = crate::database::keys::normalize_code(&pass, org::INVITE_GROUPS).unwrap();
    older.key = crate::database::keys::wrap(&key, &parsed.key.user_id, &typed, KdfParams::INSECURE_FOR_TESTS).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let old = Store::join(
        dir.path(),
        &serde_json::to_vec(&older).unwrap(),
        &pass,
        &setup("L8"),
        KdfParams::INSECURE_FOR_TESTS,
    )
    .unwrap();
    let own = authority(old.conn()).unwrap().expect("an authority of its own");
    assert_ne!(own, first);
    drop(dirs);
}

fn elsewhere(s: &Store) -> Vec<(String, crate::repositories::users::Role)> {
    s.members_elsewhere().unwrap()
}

#[test]
fn users_and_their_signed_roles_travel_with_sync_and_only_as_signed() {
    use crate::repositories::users::{self, Role};
    let (dirs, mut l) = laptops(3);
    let sofia = l[1].add_user("Sofía", Role::Supervisor, "another good passphrase").unwrap();
    // L1 -> L0 -> L2: L2 never meets L1 and still learns of her.
    let b = export(&mut l[1]);
    assert_eq!(import(&mut l[0], &b).unwrap().members, 2, "L1's administrator and Sofía");
    let b = export(&mut l[0]);
    import(&mut l[2], &b).unwrap();
    for s in [&l[0], &l[2]] {
        let known = elsewhere(s);
        assert!(known.contains(&("Sofía".to_string(), Role::Supervisor)), "{known:?}");
        assert!(known.contains(&("Admin L1".to_string(), Role::Administrator)), "{known:?}");
    }
    // Known, not able to unlock here: no seal of this laptop's key is hers.
    let tried = Store::open(dirs[0].path(), "another good passphrase");
    assert!(matches!(tried, Err(StoreError::Database(crate::database::DatabaseError::WrongPassphrase))));
    // A role raised by hand on L0 is not believed, and is not passed on.
    l[0].conn().execute("UPDATE members SET role = 'Administrator' WHERE user_id = ?1", [&sofia.id]).unwrap();
    assert!(!elsewhere(&l[0]).iter().any(|(n, _)| n == "Sofía"));
    assert!(!users::members_to_send(l[0].conn()).unwrap().iter().any(|m| m.id == sofia.id));
    // Nor is a record forged in a bundle: a role changed, or signed by another
    // organisation's authority.
    let mut forged = users::members_to_send(l[1].conn()).unwrap();
    let fresh = tempfile::tempdir().unwrap();
    let stranger = Store::create(fresh.path(), &setup("X1"), KdfParams::INSECURE_FOR_TESTS).unwrap();
    let mut foreign = users::members_to_send(stranger.conn()).unwrap();
    for m in &mut forged {
        m.role = "Administrator".into();
    }
    forged.append(&mut foreign);
    let tx = l[2].conn().unchecked_transaction().unwrap();
    assert_eq!(users::take_members(&tx, &forged).unwrap(), 0);
    drop(tx);
    // Hers again on L0 from L1's next bundle (the hand-made row does not check, so
    // the signed one replaces it).
    let old = export(&mut l[1]);
    import(&mut l[0], &old).unwrap();
    assert!(elsewhere(&l[0]).contains(&("Sofía".to_string(), Role::Supervisor)));
    // A removal is signed and travels; an older bundle never brings her back.
    l[1].remove_user("Sofía").unwrap();
    let b = export(&mut l[1]);
    assert_eq!(import(&mut l[0], &b).unwrap().members, 1);
    assert!(!elsewhere(&l[0]).iter().any(|(n, _)| n == "Sofía"));
    import(&mut l[0], &old).unwrap();
    assert!(!elsewhere(&l[0]).iter().any(|(n, _)| n == "Sofía"), "a replayed grant undoes no removal");
    drop(dirs);
}

#[test]
fn a_store_from_before_sync_brings_its_cases_into_the_log() {
    let (_d, mut l) = laptops(2);
    let case = l[0].create_case(sample::full_case(), None).unwrap();
    // As if written before the change log existed.
    l[0].conn().execute_batch("DELETE FROM change_log; DELETE FROM meta WHERE key = 'sync_log_since';").unwrap();
    let dir = l[0].dir().to_path_buf();
    let reopened = Store::open(&dir, PASS).unwrap();
    l[0] = reopened;
    assert!(change_count(&l[0]) > 10);
    let b = export(&mut l[0]);
    import(&mut l[1], &b).unwrap();
    assert_eq!(cases(&l[1])[&id_of(&case)], cases(&l[0])[&id_of(&case)]);
}

// ---------------------------------------------------------------------------------
// Convergence under any schedule.

#[derive(Debug, Clone)]
enum Op {
    Create { laptop: usize, seed: u64 },
    EditAlias { laptop: usize, case: usize },
    Status { laptop: usize, case: usize, status: usize },
    AddPerson { laptop: usize, case: usize },
    RemovePerson { laptop: usize, case: usize },
    Note { laptop: usize, case: usize },
    Purge { laptop: usize, case: usize },
    Export { laptop: usize },
    Import { laptop: usize, bundle: usize, truncate: bool },
}

fn op(n: usize) -> impl Strategy<Value = Op> {
    let l = 0..n;
    prop_oneof![
        3 => (l.clone(), any::<u64>()).prop_map(|(laptop, seed)| Op::Create { laptop, seed }),
        4 => (l.clone(), 0..8usize).prop_map(|(laptop, case)| Op::EditAlias { laptop, case }),
        2 => (l.clone(), 0..64usize, 0..4usize).prop_map(|(laptop, case, status)| Op::Status { laptop, case, status }),
        1 => (l.clone(), 0..64usize).prop_map(|(laptop, case)| Op::AddPerson { laptop, case }),
        1 => (l.clone(), 0..64usize).prop_map(|(laptop, case)| Op::RemovePerson { laptop, case }),
        2 => (l.clone(), 0..64usize).prop_map(|(laptop, case)| Op::Note { laptop, case }),
        1 => (l.clone(), 0..64usize).prop_map(|(laptop, case)| Op::Purge { laptop, case }),
        3 => l.clone().prop_map(|laptop| Op::Export { laptop }),
        5 => (l, 0..64usize, prop::bool::weighted(0.1))
            .prop_map(|(laptop, bundle, truncate)| Op::Import { laptop, bundle, truncate }),
    ]
}

/// 3 to 5 laptops; at least 25 cases each run, so that a CI run merges over 1,000.
fn scenario() -> impl Strategy<Value = (usize, Vec<Op>)> {
    (3..=5usize).prop_flat_map(|n| {
        let creates = prop::collection::vec((0..n, any::<u64>()), 25..30)
            .prop_map(|v| v.into_iter().map(|(laptop, seed)| Op::Create { laptop, seed }).collect::<Vec<_>>());
        (Just(n), creates, prop::collection::vec(op(n), 40..90)).prop_map(|(n, mut first, rest)| {
            // Interleave: cases keep being created while others are edited and synced.
            let mut ops = Vec::with_capacity(first.len() + rest.len());
            let mut rest = rest.into_iter();
            while let Some(c) = first.pop() {
                ops.push(c);
                ops.extend(rest.by_ref().take(2));
            }
            ops.extend(rest);
            (n, ops)
        })
    })
}

fn cases_from_env(default: u32) -> u32 {
    std::env::var("AMPARO_SYNC_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What one run did, so the test can show it tested something.
#[derive(Default)]
struct Stats {
    cases: usize,
    conflicts: usize,
    refused: usize,
}

/// Every value written, and every value someone saw and replaced, per case and field.
#[derive(Default)]
struct Written {
    values: BTreeMap<(String, String), BTreeSet<String>>,
    replaced: BTreeMap<(String, String), BTreeSet<String>>,
}

/// The primary person's alias field, by item id (a stable name across laptops).
fn alias_field(case: &Value) -> Option<(String, String)> {
    let p = case["people"].as_array()?.iter().find(|p| p["role"] == "PotentialVictim")?;
    Some((format!("people.{}.alias", p["id"].as_str()?), p["alias"].as_str().unwrap_or_default().to_string()))
}

fn run(n: usize, ops: &[Op]) -> Result<Stats, TestCaseError> {
    let mut stats = Stats::default();
    let mut counter = 0usize;
    let (_dirs, mut l) = laptops(n);
    let mut ids: Vec<String> = Vec::new();
    let mut bundles: Vec<Vec<u8>> = Vec::new();
    let mut w = Written::default();
    let statuses = ["Active", "FollowUp", "Closed", "ClosedReferred"];
    for op in ops {
        let pick = |i: usize, ids: &Vec<String>| (!ids.is_empty()).then(|| ids[i % ids.len()].clone());
        match op.clone() {
            Op::Create { laptop, seed } => {
                let c = l[laptop].create_case(sample::generated(seed), None).unwrap();
                stats.cases += 1;
                ids.push(id_of(&c));
            }
            Op::EditAlias { laptop, case } | Op::Status { laptop, case, .. } => {
                let Some(id) = pick(case, &ids) else { continue };
                let Ok(current) = l[laptop].get_case(&id) else { continue };
                let (field, value) = match op {
                    Op::Status { status, .. } => ("status".to_string(), statuses[*status].to_string()),
                    _ => {
                        let Some((f, _)) = alias_field(&current) else { continue };
                        counter += 1;
                        (f, format!("alias {counter}"))
                    }
                };
                let (old, path) = if field == "status" {
                    (current["status"].as_str().unwrap_or_default().to_string(), "status".to_string())
                } else {
                    let (_, old) = alias_field(&current).unwrap();
                    let idx = current["people"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .position(|p| p["role"] == "PotentialVictim")
                        .unwrap();
                    (old, format!("people.{idx}.alias"))
                };
                let number = current["case_number"].as_str().unwrap();
                if l[laptop].set_fields(number, &[(path, value.clone())]).is_ok() {
                    w.replaced.entry((id.clone(), field.clone())).or_default().insert(old);
                    w.values.entry((id, field)).or_default().insert(value);
                }
            }
            Op::AddPerson { laptop, case } => {
                let Some(id) = pick(case, &ids) else { continue };
                let Ok(mut current) = l[laptop].get_case(&id) else { continue };
                current["people"].as_array_mut().unwrap().push(json!({"role": "Companion", "alias": "Acompañante"}));
                l[laptop].update_case(&id, current, None).unwrap();
            }
            Op::RemovePerson { laptop, case } => {
                let Some(id) = pick(case, &ids) else { continue };
                let Ok(mut current) = l[laptop].get_case(&id) else { continue };
                let people = current["people"].as_array_mut().unwrap();
                if let Some(i) = people.iter().position(|p| p["role"] != "PotentialVictim") {
                    people.remove(i);
                    l[laptop].update_case(&id, current, None).unwrap();
                }
            }
            Op::Note { laptop, case } => {
                let Some(id) = pick(case, &ids) else { continue };
                let _ = l[laptop].add_note(&id, "nota de seguimiento", Some("es"));
            }
            Op::Purge { laptop, case } => {
                let Some(id) = pick(case, &ids) else { continue };
                let s = &mut l[laptop];
                if s.get_case(&id).is_err() {
                    continue;
                }
                s.set_policy(&crate::store::policy::Policy { idle_lock_minutes: 5, retention_months: Some(1) })
                    .unwrap();
                let closed = s.get_case(&id).unwrap()["status"].as_str().unwrap().starts_with("Closed");
                if closed {
                    s.conn()
                        .execute("UPDATE cases SET closed_at = '2020-01-01T00:00:00.000Z' WHERE id = ?1", [&id])
                        .unwrap();
                    s.purge_expired(crate::repositories::cases::today()).unwrap();
                }
            }
            Op::Export { laptop } => bundles.push(export(&mut l[laptop])),
            Op::Import { laptop, bundle, truncate } => {
                if bundles.is_empty() {
                    continue;
                }
                let b = &bundles[bundle % bundles.len()];
                if truncate {
                    let before = change_count(&l[laptop]);
                    prop_assert!(import(&mut l[laptop], &b[..b.len() * 2 / 3]).is_err());
                    stats.refused += 1;
                    prop_assert_eq!(change_count(&l[laptop]), before);
                } else {
                    import(&mut l[laptop], b).unwrap();
                }
            }
        }
    }
    // A full exchange: every laptop sends to every other, twice (the first round
    // also tells each laptop what the others hold).
    for _ in 0..2 {
        let out: Vec<Vec<u8>> = (0..n).map(|i| export(&mut l[i])).collect();
        for (i, b) in out.iter().enumerate() {
            for (j, s) in l.iter_mut().enumerate() {
                if i != j {
                    import(s, b).unwrap();
                }
            }
        }
    }
    let reference = cases(&l[0]);
    let conflicts = l[0].conflicts().unwrap();
    stats.conflicts = conflicts.len();
    for (k, s) in l.iter().enumerate().skip(1) {
        let other = cases(s);
        let (a, b): (BTreeSet<&String>, BTreeSet<&String>) = (reference.keys().collect(), other.keys().collect());
        prop_assert_eq!(a, b, "laptop {} holds other cases than laptop 0", k);
        for (id, c) in &reference {
            prop_assert!(
                other[id] == *c,
                "laptop {} differs on {}: {}\nlaptop 0: {}\nlaptop {}: {}",
                k,
                id,
                differences(c, &other[id]),
                log_of(&l[0], id),
                k,
                log_of(s, id)
            );
        }
        prop_assert_eq!(&s.conflicts().unwrap(), &conflicts);
        prop_assert!(s.verify_audit().unwrap().problem.is_none());
    }
    // Every value written is current, kept as a conflict, or was replaced by someone
    // who saw it (or its person or case is gone).
    for ((id, field), values) in &w.values {
        let Some(case) = reference.get(id) else { continue };
        let current = if field == "status" {
            case["status"].as_str().map(str::to_string)
        } else {
            let item = field.split('.').nth(1).unwrap();
            let Some(p) = case["people"].as_array().unwrap().iter().find(|p| p["id"] == item) else { continue };
            p["alias"].as_str().map(str::to_string)
        };
        let kept: BTreeSet<String> = conflicts
            .iter()
            .filter(|c| c.case_id == *id && c.field == *field)
            .flat_map(|c| c.values.iter().filter_map(|v| v.value.as_str().map(str::to_string)))
            .collect();
        let replaced = w.replaced.get(&(id.clone(), field.clone())).cloned().unwrap_or_default();
        for v in values {
            prop_assert!(
                current.as_deref() == Some(v.as_str()) || kept.contains(v) || replaced.contains(v),
                "{} {}: value {:?} was lost (current {:?}, conflicts {:?})",
                id,
                field,
                v,
                current,
                kept
            );
        }
    }
    Ok(stats)
}

/// A case's alias and status changes as one laptop holds them (for failure messages).
fn log_of(s: &Store, id: &str) -> String {
    let mut log: Vec<_> = crate::changelog::all(s.conn())
        .unwrap()
        .into_iter()
        .filter(|c| c.id == id && (c.field.ends_with("alias") || c.field == "status"))
        .collect();
    log.sort_by(|a, b| (&a.field, a.hlc).cmp(&(&b.field, b.hlc)));
    log.iter()
        .map(|c| {
            let parents: Vec<String> = c.parents.iter().map(|(d, n)| format!("{}:{n}", &d[30..])).collect();
            format!("{} {}:{} h{} p{:?} {:?}", c.field, &c.device[30..], c.seq, c.hlc & 0xffffff, parents, c.value)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level keys where two versions of a case differ, with both values.
fn differences(a: &Value, b: &Value) -> String {
    let empty = serde_json::Map::new();
    let (a, b) = (a.as_object().unwrap_or(&empty), b.as_object().unwrap_or(&empty));
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| format!("{k}: {:?} / {:?}", a.get(k), b.get(k)))
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn laptops_converge_whatever_the_schedule() {
    use proptest::test_runner::{Config, TestRunner};
    let mut runner = TestRunner::new(Config { cases: cases_from_env(40), max_shrink_iters: 50, ..Config::default() });
    let total = std::cell::RefCell::new(Stats::default());
    runner
        .run(&scenario(), |(n, ops)| {
            let s = run(n, &ops)?;
            let mut t = total.borrow_mut();
            t.cases += s.cases;
            t.conflicts += s.conflicts;
            t.refused += s.refused;
            Ok(())
        })
        .unwrap();
    let t = total.into_inner();
    eprintln!(
        "merged {} cases, {} open conflicts at the end, {} truncated bundles refused",
        t.cases, t.conflicts, t.refused
    );
    // The property is not vacuous: enough cases, real conflicts, real refusals.
    assert!(t.cases >= 1000, "only {} cases", t.cases);
    assert!(t.conflicts > 0 && t.refused > 0);
}

#[test]
fn a_sync_folder_carries_bundles_both_ways_and_skips_what_is_here() {
    let (_d, mut l) = laptops(2);
    let usb = tempfile::tempdir().unwrap();
    let f = usb.path().to_str().unwrap();
    assert!(matches!(l[0].export_to_folder(), Err(StoreError::Invalid(_))), "no folder chosen yet");
    assert!(matches!(l[0].set_sync_folder("/no/such/folder"), Err(StoreError::Invalid(_))));
    for s in l.iter() {
        s.set_sync_folder(f).unwrap();
    }
    let case = l[0].create_case(sample::full_case(), None).unwrap();
    // A folder that went away (the stick was pulled): refused, and the case still
    // says it has changes not yet exported.
    let gone = tempfile::tempdir().unwrap();
    l[0].set_sync_folder(gone.path().to_str().unwrap()).unwrap();
    drop(gone);
    assert!(l[0].export_to_folder().is_err());
    assert!(l[0].unexported_cases().unwrap().contains(&id_of(&case)));
    l[0].set_sync_folder(f).unwrap();
    // A write that fails half-way (the stick pulled while writing): the same.
    let failed = l[0].sync_export(false, |_| Err(std::io::Error::other("device removed").into()));
    assert!(matches!(failed, Err(StoreError::Database(crate::database::DatabaseError::Io(_)))));
    assert!(l[0].unexported_cases().unwrap().contains(&id_of(&case)));
    let (name, summary) = l[0].export_to_folder().unwrap();
    assert!(l[0].unexported_cases().unwrap().is_empty());
    assert!(name.starts_with("L0-") || name.starts_with("amparo-L0-"), "{name}");
    assert!(summary.changes > 0);
    std::fs::write(usb.path().join("junk.amparosync"), b"not a bundle").unwrap();
    let mut seen = Vec::new();
    let results = l[1].import_folder(&mut |f, n, _, _| seen.push((f, n))).unwrap();
    assert_eq!(results.len(), 2);
    let ours = results.iter().find(|r| r.file == name).unwrap();
    assert_eq!(ours.summary.as_ref().unwrap().new_cases, 1);
    let junk = results.iter().find(|r| r.file == "junk.amparosync").unwrap();
    assert_eq!(junk.error.as_ref().unwrap().0, "error.sync.not_a_bundle");
    assert!(seen.contains(&(2, 2)), "progress reached the end: {seen:?}");
    // Read again: the bundle is recognised as already here, without opening it.
    let again = l[1].import_folder(&mut |_, _, _, _| {}).unwrap();
    assert!(again.iter().find(|r| r.file == name).unwrap().already_here);
    // The first laptop skips its own bundle.
    let own = l[0].import_folder(&mut |_, _, _, _| {}).unwrap();
    assert!(own.iter().find(|r| r.file == name).unwrap().already_here);
    assert_eq!(cases(&l[1])[&id_of(&case)], cases(&l[0])[&id_of(&case)]);
}

/// Run `f` as if this laptop's clock were `hours` off.
fn with_clock_off<T>(hours: i64, f: impl FnOnce() -> T) -> T {
    hlc::SKEW_MS_FOR_TESTS.set(hours * 3_600_000);
    let out = f();
    hlc::SKEW_MS_FOR_TESTS.set(0);
    out
}

#[test]
fn a_laptop_whose_clock_is_off_still_converges_and_keeps_causality() {
    let (_d, mut l) = laptops(2);
    let case = l[0].create_case(sample::full_case(), None).unwrap();
    let b = export(&mut l[0]);
    import(&mut l[1], &b).unwrap();
    // The first laptop's clock runs 20 hours ahead; its edit reaches the second.
    with_clock_off(20, || set(&mut l[0], &case, "people.0.alias", "Adelantada"));
    let b = export(&mut l[0]);
    import(&mut l[1], &b).unwrap();
    // The second laptop, with a right clock, changes the value after seeing it: its
    // change must win (it knowingly replaced the other), not lose to a clock.
    set(&mut l[1], &case, "people.0.alias", "Corregida");
    let b = export(&mut l[1]);
    let s = import(&mut l[0], &b).unwrap();
    assert_eq!(s.conflicts, 0);
    for s in &l {
        assert_eq!(cases(s)[&id_of(&case)]["people"][0]["alias"], "Corregida");
    }
    // And its clock moved past what it received, so its change also sorts after.
    let newest = |device: &str| -> i64 {
        crate::changelog::all(l[0].conn()).unwrap().iter().filter(|c| c.device == device).map(|c| c.hlc).max().unwrap()
    };
    assert!(newest(&l[1].session().device_id) > newest(&l[0].session().device_id));
    // A laptop hours behind: concurrent edits still give one winner on both and keep
    // the other value.
    with_clock_off(-3, || set(&mut l[0], &case, "status", "FollowUp"));
    set(&mut l[1], &case, "status", "Closed");
    let (b0, b1) = (with_clock_off(-3, || export(&mut l[0])), export(&mut l[1]));
    with_clock_off(-3, || import(&mut l[0], &b1)).unwrap();
    import(&mut l[1], &b0).unwrap();
    assert_eq!(cases(&l[0]), cases(&l[1]));
    assert_eq!(l[0].conflicts().unwrap(), l[1].conflicts().unwrap());
    assert_eq!(l[0].conflicts().unwrap().len(), 1);
}

#[test]
fn a_bundle_from_a_clock_more_than_a_day_ahead_is_refused_whole() {
    let (_d, mut l) = laptops(2);
    let case = with_clock_off(30, || l[0].create_case(sample::full_case(), None).unwrap());
    let b = export(&mut l[0]);
    let e = import(&mut l[1], &b).unwrap_err();
    assert_eq!(e.i18n_key(), "error.sync.clock_ahead");
    assert!(!cases(&l[1]).contains_key(&id_of(&case)), "nothing of it was applied");
    // Once this laptop's own clock has caught up, the same bundle applies.
    with_clock_off(29, || import(&mut l[1], &b)).unwrap();
    assert!(cases(&l[1]).contains_key(&id_of(&case)));
}

/// The directory travels like cases: an added organisation, an edited hotline and
/// an imported list reach the other laptop, and an edit there comes back; the
/// newest value of a field wins.
#[test]
fn the_directory_travels_with_sync() {
    use crate::repositories::directory::DirectoryQuery;
    let (_d, mut s) = laptops(2);
    let (a, b) = s.split_at_mut(1);
    let (a, b) = (&mut a[0], &mut b[0]);
    let shelter = a
        .save_directory_entry(
            None,
            json!({"name": "Albergue Nazareth", "country": "MX", "subdivision": "MX-BCN", "services": ["Shelter"]}),
        )
        .unwrap();
    let hotline = crate::repositories::directory::SEEDS[0].0;
    let mut us = a.directory_entry(hotline).unwrap().data;
    us.insert("notes".into(), json!("Interpreters in 200+ languages"));
    a.save_directory_entry(Some(hotline), Value::Object(us)).unwrap();
    a.import_directory_csv("name,country,city\nCentro Fray Julián Garcés,MX,Tlaxcala\n".as_bytes()).unwrap();

    let summary = import(b, &export(a)).unwrap();
    assert_eq!(summary.directory_entries, 3);
    let names = |s: &Store| -> Vec<String> {
        s.directory(&DirectoryQuery::default())
            .unwrap()
            .iter()
            .map(|e| e.data["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(b), names(a));
    assert_eq!(b.directory_entry(hotline).unwrap().data["notes"], "Interpreters in 200+ languages");
    assert_eq!(b.directory_entry(&shelter.id).unwrap().data, shelter.data);

    // B edits the shelter; A edits its city meanwhile; both reach both.
    let mut on_b = b.directory_entry(&shelter.id).unwrap().data;
    on_b.insert("phone".into(), json!("+526646800000"));
    b.save_directory_entry(Some(&shelter.id), Value::Object(on_b)).unwrap();
    let mut on_a = a.directory_entry(&shelter.id).unwrap().data;
    on_a.insert("city".into(), json!("Tijuana"));
    a.save_directory_entry(Some(&shelter.id), Value::Object(on_a)).unwrap();
    import(a, &export(b)).unwrap();
    import(b, &export(a)).unwrap();
    for s in [&*a, &*b] {
        let e = s.directory_entry(&shelter.id).unwrap().data;
        assert_eq!((e["phone"].as_str(), e["city"].as_str()), (Some("+526646800000"), Some("Tijuana")));
    }
    // A field cleared on one laptop is cleared on the other.
    let mut cleared = a.directory_entry(hotline).unwrap().data;
    cleared.remove("notes");
    a.save_directory_entry(Some(hotline), Value::Object(cleared)).unwrap();
    import(b, &export(a)).unwrap();
    assert!(b.directory_entry(hotline).unwrap().data.get("notes").is_none());
    assert_eq!(b.directory_entry(hotline).unwrap().data["phone"], "+18883737888");
}

/// Open a bundle with its organisation's key, let `edit` change it, and seal and
/// sign it again as `signer`: what someone holding the organisation key could do.
/// A case written on the first laptop and sent to the second, then `edits` made
/// on the first: the case, the first laptop's next bundle, and its signer (to
/// reforge that bundle).
fn edited_after_sync(l: &mut [Store], edits: &[(&str, &str)]) -> (Value, Vec<u8>, identity::Identity) {
    let case = l[0].create_case(sample::full_case(), None).unwrap();
    let b = export(&mut l[0]);
    import(&mut l[1], &b).unwrap();
    for (path, value) in edits {
        set(&mut l[0], &case, path, value);
    }
    let next = export(&mut l[0]);
    let me = identity::load(l[0].conn()).unwrap();
    (case, next, me)
}

fn reforge(
    reader: &Store,
    good: &[u8],
    signer: &identity::Identity,
    edit: impl FnOnce(&mut bundle::Header, &mut bundle::Body),
) -> Vec<u8> {
    let (org_id, _, key) = org::keys(reader.conn()).unwrap();
    let (mut header, mut body) = bundle::open(good, &org_id, &key).unwrap();
    header.sign_key = signer.sign_key();
    header.kx_key = signer.kx_key();
    edit(&mut header, &mut body);
    bundle::seal(&header, &body, &key, signer).unwrap()
}

/// Holding the organisation key (a stolen laptop, an old invitation) is not
/// enough to write for a laptop: a bundle in its name signed by another key, a
/// bundle from a revoked laptop, and one whose activity log was rewritten are
/// refused whole, with a message in both languages.
#[test]
fn forged_bundles_are_refused_whole() {
    let (_d, mut l) = laptops(2);
    let case = l[0].create_case(sample::full_case(), None).unwrap();
    let good = export(&mut l[0]);
    import(&mut l[1], &good).unwrap();
    let mut edit = case.clone();
    edit["status"] = json!("Closed");
    l[0].update_case(&id_of(&case), edit, None).unwrap();
    let next = export(&mut l[0]);
    let before = change_count(&l[1]);

    // In l0's name, signed by a key that is not l0's: a purge of the case.
    let thief = identity::Identity::generate();
    let purge = reforge(&l[1], &next, &thief, |_, body| {
        for c in &mut body.changes {
            c.field = crate::changelog::flat::PURGED.into();
            c.value = Some(json!(true));
        }
    });
    let e = import(&mut l[1], &purge).unwrap_err();
    assert!(matches!(e, StoreError::Sync(SyncError::WrongSigner { ref device_code }) if device_code == "L0"), "{e:?}");
    assert_eq!(change_count(&l[1]), before);
    assert!(cases(&l[1]).contains_key(&id_of(&case)), "the case is still there");

    // Its own activity log, rewritten and re-hashed by l0 itself (a tampered laptop).
    let me = identity::load(l[0].conn()).unwrap();
    let poisoned = reforge(&l[1], &next, &me, |_, body| {
        // Its newest entry: one the reader does not hold yet.
        let e = body.audit.iter_mut().max_by_key(|e| e.device_seq).expect("an entry to rewrite");
        e.prev_hash = crate::repositories::audit::GENESIS.into();
        e.hash = e.rehash_for_tests();
    });
    let e = import(&mut l[1], &poisoned).unwrap_err();
    assert!(matches!(e, StoreError::Sync(SyncError::AuditChain { .. })), "{e:?}");
    assert_eq!(change_count(&l[1]), before, "nothing of it was applied");

    // Once l0 is revoked here, even its genuine bundles are refused.
    let l0 = l[0].session().device_id.clone();
    l[1].conn().execute("UPDATE sync_devices SET revoked_at = '2026-12-03' WHERE device_id = ?1", [&l0]).unwrap();
    let e = import(&mut l[1], &next).unwrap_err();
    assert!(matches!(e, StoreError::Sync(SyncError::Revoked { .. })), "{e:?}");
    assert_eq!(change_count(&l[1]), before);

    for e in [
        SyncError::WrongSigner { device_code: "L0".into() },
        SyncError::Revoked { device_code: "L0".into() },
        SyncError::AuditChain { device_code: "L0".into() },
        SyncError::Unsigned { device_code: "L0".into() },
    ] {
        for lang in ["en", "es"] {
            let m = crate::i18n::tr(lang, e.i18n_key(), &e.args());
            assert!(!m.contains("error.") && !m.contains("%{") && m.contains("L0"), "{lang}: {m}");
        }
    }
}

/// A bundle of an older, unsigned format is refused with a message that says to
/// update the laptop that wrote it, not that it is damaged.
#[test]
fn an_unsigned_bundle_of_an_older_format_is_refused() {
    let (_d, mut l) = laptops(2);
    l[0].create_case(sample::full_case(), None).unwrap();
    let good = export(&mut l[0]);
    let (mut header, end) = bundle::read_signed(&good).unwrap();
    header.format = 2;
    let h = serde_json::to_vec(&header).unwrap();
    let mut old = bundle::MAGIC.to_vec();
    old.extend_from_slice(&(h.len() as u32).to_le_bytes());
    old.extend_from_slice(&h);
    old.extend_from_slice(&good[end..good.len() - identity::SIGNATURE_LEN]);
    let e = import(&mut l[1], &old).unwrap_err();
    assert!(matches!(e, StoreError::Sync(SyncError::Unsigned { ref device_code }) if device_code == "L0"), "{e:?}");
}

use hub::Transport as _;

/// A hub in memory, keeping batches by device and number as the real one does:
/// for what the laptop does with what a hub gives it.
#[derive(Default)]
struct MemoryHub(std::cell::RefCell<BTreeMap<(String, i64), Vec<u8>>>, std::cell::RefCell<Vec<Vec<u8>>>);

struct Via<'a>(&'a MemoryHub, String);

impl hub::Transport for Via<'_> {
    fn push(&mut self, number: i64, bytes: &[u8]) -> Result<(), SyncError> {
        self.0 .0.borrow_mut().insert((self.1.clone(), number), bytes.to_vec());
        Ok(())
    }
    fn list(&mut self, since: &bundle::Vector, limit: usize) -> Result<Vec<hub::Listed>, SyncError> {
        let all = self.0 .0.borrow();
        // In order of arrival, roughly, as a real hub gives them: by number across devices.
        let mut above: Vec<_> = all.iter().filter(|((d, n), _)| *n > since.get(d).copied().unwrap_or(0)).collect();
        above.sort_by_key(|((d, n), _)| (*n, d.clone()));
        Ok(above
            .into_iter()
            .take(limit)
            .map(|((d, n), b)| hub::Listed { device: d.clone(), number: *n, sha256: hub::sha256_hex(b) })
            .collect())
    }
    fn fetch(&mut self, device: &str, number: i64) -> Result<Vec<u8>, SyncError> {
        self.0 .0.borrow().get(&(device.to_string(), number)).cloned().ok_or(SyncError::Damaged)
    }
    fn epochs(&mut self, since: u32) -> Result<Vec<Vec<u8>>, SyncError> {
        Ok(self.0 .1.borrow().iter().skip(since as usize).cloned().collect())
    }
    fn put_epoch(&mut self, number: u32, bytes: &[u8]) -> Result<(), SyncError> {
        let mut held = self.0 .1.borrow_mut();
        // As the real hub: numbers follow each other, and one taken stays taken.
        if number as usize != held.len() + 1 {
            return Err(SyncError::HubRefused { reason: "out_of_order".into() });
        }
        held.push(bytes.to_vec());
        Ok(())
    }
    fn revoke(&mut self, device: &str) -> Result<i64, SyncError> {
        let batches = self.0 .0.borrow();
        Ok(batches.keys().filter(|(d, _)| d == device).map(|(_, n)| *n).max().unwrap_or(0))
    }
}

fn via<'a>(hub: &'a MemoryHub, s: &Store) -> Via<'a> {
    Via(hub, s.session().device_id.clone())
}

fn hub_sync(hub: &MemoryHub, s: &mut Store) -> Result<hub::HubSummary, StoreError> {
    let mut t = via(hub, s);
    s.hub_sync(&mut t, &mut |_, _| {})
}

/// Whom a restricted case's key may be sealed to: its caseworker and every
/// supervisor and administrator, on this laptop and the others, by signed records.
#[test]
fn a_restricted_case_is_sealed_to_its_caseworker_and_every_supervisor_by_signed_records() {
    use crate::repositories::restricted::entitled;
    use crate::repositories::users::Role;
    let (_d, mut l) = laptops(2);
    let dana = l[0].add_user("Dana", Role::Caseworker, "another good passphrase").unwrap();
    let carla = l[0].add_user("Carla", Role::Caseworker, "yet another passphrase").unwrap();
    let sofia = l[1].add_user("Sofía", Role::Supervisor, "a third good passphrase").unwrap();
    let tomas = l[1].add_user("Tomás", Role::Caseworker, "a fourth good passphrase").unwrap();
    let b = export(&mut l[1]);
    import(&mut l[0], &b).unwrap();
    let ids = |s: &Store, assigned: Option<&str>| -> Vec<String> {
        let mut ids: Vec<String> = entitled(s.conn(), assigned).unwrap().into_iter().map(|r| r.user_id).collect();
        ids.sort();
        ids
    };
    let admins: Vec<String> = [&l[0], &l[1]].iter().map(|s| s.session().user_id.clone()).collect();
    // And this laptop's recovery key, so that a forgotten passphrase loses no case.
    let recovery = crate::repositories::restricted::recovery_id(&l[0].session().device_id);
    let mut want = vec![admins[0].clone(), admins[1].clone(), dana.id.clone(), sofia.id.clone(), recovery];
    want.sort();
    assert_eq!(ids(&l[0], Some(&dana.id)), want, "assigned to Dana");
    // Assigned to a caseworker of the other laptop: hers too, not Dana's.
    let got = ids(&l[0], Some(&tomas.id));
    assert!(got.contains(&tomas.id) && !got.contains(&dana.id), "{got:?}");
    // A role raised with SQL seals nothing to her.
    l[0].conn().execute("UPDATE users SET role = 'Supervisor' WHERE id = ?1", [&carla.id]).unwrap();
    assert!(!ids(&l[0], None).contains(&carla.id));
    // Nor does a removed supervisor keep a place.
    l[1].remove_user("Sofía").unwrap();
    let b = export(&mut l[1]);
    import(&mut l[0], &b).unwrap();
    assert!(!ids(&l[0], None).contains(&sofia.id));
}

/// How many rows of the case's tables hold this word, as anyone with the data key
/// could count them with SQL.
fn rows_with(s: &Store, word: &str) -> i64 {
    // The log's rows are bytes: compared as bytes, without regard to case.
    let lower = word.to_lowercase().into_bytes();
    let mut st = s.conn().prepare("SELECT fields FROM change_log").unwrap();
    let in_log = st
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .filter(|b| b.as_ref().unwrap().to_ascii_lowercase().windows(lower.len()).any(|w| w == lower.as_slice()))
        .count() as i64;
    let like = format!("%{word}%");
    in_log
        + s.conn()
            .query_row(
                "SELECT (SELECT count(*) FROM cases WHERE data LIKE ?1 OR alias LIKE ?1)
                  + (SELECT count(*) FROM notes WHERE text LIKE ?1)",
                [like],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
}

#[test]
fn a_restricted_case_opens_on_another_laptop_only_for_those_entitled() {
    use crate::repositories::users::Role;
    let (dirs, mut l) = laptops(2);
    l[1].add_user("Sofía", Role::Supervisor, "a good supervisor passphrase").unwrap();
    l[1].add_user("Tomás", Role::Caseworker, "a good caseworker passphrase").unwrap();
    let b = export(&mut l[1]);
    import(&mut l[0], &b).unwrap();
    let mut c = sample::full_case();
    c["restricted"] = json!(true);
    c["people"][0]["alias"] = json!("Golondrina");
    let id = id_of(&l[0].create_case(c, None).unwrap());
    let b = export(&mut l[0]);
    import(&mut l[1], &b).unwrap();
    assert_eq!(rows_with(&l[1], "Golondrina"), 0, "sealed on the laptop it reached");
    assert_eq!(l[1].get_case(&id).unwrap()["people"][0]["alias"], "Golondrina", "its administrator opens it");
    let (l1_dir, l1) = (dirs[1].path().to_path_buf(), l.remove(1));
    drop(l1);
    let tomas = Store::open(&l1_dir, "a good caseworker passphrase").unwrap();
    assert!(tomas.case_keys(&id).unwrap().is_empty());
    assert!(matches!(tomas.get_case(&id), Err(StoreError::Restricted)));
    drop(tomas);
    let mut sofia = Store::open(&l1_dir, "a good supervisor passphrase").unwrap();
    assert_eq!(sofia.get_case(&id).unwrap()["people"][0]["given_name"], "Xóchitl");
    sofia.add_note(&id, "Habló con Tlacotalpan", Some("es")).unwrap();
    let b = export(&mut sofia);
    import(&mut l[0], &b).unwrap();
    let notes = l[0].get_case(&id).unwrap()["notes"].clone();
    assert!(notes.to_string().contains("Tlacotalpan"), "{notes}");
    assert_eq!(rows_with(&l[0], "Tlacotalpan") + rows_with(&sofia, "Tlacotalpan"), 0);

    // A laptop that had not heard of the restriction yet writes in the clear:
    // sealed by the first entitled person whose laptop takes it, then everywhere.
    let open_case = id_of(&l[0].create_case(sample::full_case(), None).unwrap());
    let b = export(&mut l[0]);
    import(&mut sofia, &b).unwrap();
    let mut restrict = l[0].get_case(&open_case).unwrap();
    restrict["restricted"] = json!(true);
    l[0].update_case(&open_case, restrict, None).unwrap();
    let mut edit = sofia.get_case(&open_case).unwrap();
    edit["people"][0]["alias"] = json!("Paloma");
    sofia.update_case(&open_case, edit, None).unwrap();
    let b = export(&mut sofia);
    import(&mut l[0], &b).unwrap();
    assert_eq!(l[0].get_case(&open_case).unwrap()["people"][0]["alias"], "Paloma");
    assert_eq!(rows_with(&l[0], "Paloma"), 0, "sealed where it arrived");
    let b = export(&mut l[0]);
    import(&mut sofia, &b).unwrap();
    assert_eq!(rows_with(&sofia, "Paloma"), 0, "and blanked where it was written");
    assert_eq!(sofia.get_case(&open_case).unwrap()["people"][0]["alias"], "Paloma");
    drop(dirs);
}

/// A purge leaves no key of a restricted case either: kept, it would still open
/// the case's sealed values in batches a hub holds.
#[test]
fn a_purged_restricted_case_leaves_no_key_on_any_laptop() {
    let (_d, mut l) = laptops(2);
    // The first laptop knows the second's administrator, so seals to her too.
    let b = export(&mut l[1]);
    import(&mut l[0], &b).unwrap();
    let mut c = sample::full_case();
    c["restricted"] = json!(true);
    c["status"] = json!("Closed");
    l[0].create_case(c, None).unwrap();
    let before = export(&mut l[0]);
    import(&mut l[1], &before).unwrap();
    let keys = |s: &Store| -> i64 {
        crate::changelog::all(s.conn())
            .unwrap()
            .iter()
            .filter(|c| c.entity == crate::changelog::CASE_KEY && c.value.is_some())
            .count() as i64
    };
    assert!(keys(&l[0]) > 0 && keys(&l[1]) > 0, "the test sees the keys");
    l[0].set_policy(&crate::store::policy::Policy { idle_lock_minutes: 5, retention_months: Some(1) }).unwrap();
    l[0].conn().execute("UPDATE cases SET closed_at = '2020-01-01T00:00:00.000Z'", []).unwrap();
    assert_eq!(l[0].purge_expired(crate::repositories::cases::today()).unwrap().cases, 1);
    assert_eq!(keys(&l[0]), 0);
    // Meanwhile the other laptop, not knowing, hands the case on: a new key. It
    // reaches the laptop that purged the case, and is not kept there.
    let id = cases(&l[1]).into_keys().next().unwrap();
    let mut moved = l[1].get_case(&id).unwrap();
    moved["assigned_to"] = json!(l[1].session().user_id);
    l[1].update_case(&id_of(&moved), moved, None).unwrap();
    let b = export(&mut l[1]);
    import(&mut l[0], &b).unwrap();
    assert_eq!(keys(&l[0]), 0, "a key arriving for a purged case");
    let b = export(&mut l[0]);
    import(&mut l[1], &b).unwrap();
    assert_eq!(keys(&l[1]), 0);
}

/// Through a hub too: a supervisor added on one laptop, and her removal, reach
/// the others in its batches.
#[test]
fn users_travel_through_the_hub() {
    use crate::repositories::users::Role;
    let (_d, mut l) = laptops(2);
    let memory = MemoryHub::default();
    hub_sync(&memory, &mut l[0]).unwrap();
    l[1].add_user("Sofía", Role::Supervisor, "another good passphrase").unwrap();
    hub_sync(&memory, &mut l[1]).unwrap();
    hub_sync(&memory, &mut l[0]).unwrap();
    assert!(elsewhere(&l[0]).contains(&("Sofía".to_string(), Role::Supervisor)), "{:?}", elsewhere(&l[0]));
    l[1].remove_user("Sofía").unwrap();
    hub_sync(&memory, &mut l[1]).unwrap();
    hub_sync(&memory, &mut l[0]).unwrap();
    assert!(!elsewhere(&l[0]).iter().any(|(n, _)| n == "Sofía"));
}

/// An insider laptop's forged batch (its activity log rewritten) is refused with
/// its device named, and holds back nothing of the other laptops'.
#[test]
fn one_refused_batch_holds_back_only_its_device() {
    let (_d, mut l) = laptops(3);
    let memory = MemoryHub::default();
    let first = l[0].create_case(sample::full_case(), None).unwrap();
    hub_sync(&memory, &mut l[0]).unwrap();
    // Listed after the forged batch 1 of l1, whatever the device ids.
    let second = l[0].create_case(sample::full_case(), None).unwrap();
    hub_sync(&memory, &mut l[0]).unwrap();
    l[1].create_case(sample::full_case(), None).unwrap();
    assert_eq!(l[1].hub_prepare().unwrap(), 1);
    let (number, good) = hub::next_unacknowledged(l[1].conn()).unwrap().unwrap();
    let signer = identity::load(l[1].conn()).unwrap();
    let forged = reforge(&l[1], &good, &signer, |_, body| body.audit[0].detail = r#"{"rewritten":true}"#.into());
    via(&memory, &l[1]).push(number, &forged).unwrap();

    let e = hub_sync(&memory, &mut l[2]).unwrap_err();
    assert!(matches!(&e, StoreError::Sync(SyncError::AuditChain { device_code }) if device_code == "L1"), "{e:?}");
    let held = cases(&l[2]);
    assert!(
        held.contains_key(&id_of(&first)) && held.contains_key(&id_of(&second)),
        "the other laptop's cases arrived"
    );
    assert_eq!(held.len(), 2, "nothing of the forged batch was applied");
    // The honest batch, once the hub holds it, is taken.
    via(&memory, &l[1]).push(number, &good).unwrap();
    hub_sync(&memory, &mut l[2]).unwrap();
    assert_eq!(cases(&l[2]).len(), 3);
}

/// What an insider with the key can do with SQL on her laptop: drop the
/// append-only triggers, delete `n` of the laptop's own entries after its first
/// two, and re-number and re-hash the rest, anchored head included, so that
/// the laptop's own check finds nothing.
fn rewrite_trail(s: &Store, n: usize) {
    use crate::repositories::audit::{self, entry, Entry, ENTRY_COLUMNS, GENESIS, HEAD_KEY};
    let (c, me) = (s.conn(), s.session().device_id.clone());
    c.execute_batch("DROP TRIGGER audit_append_only_update; DROP TRIGGER audit_append_only_delete;").unwrap();
    let sql = format!("SELECT {ENTRY_COLUMNS} FROM audit WHERE device_id = ?1 ORDER BY device_seq");
    let mut own: Vec<Entry> = c
        .prepare(&sql)
        .unwrap()
        .query_map([crate::database::stored_id(&me)], entry)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    c.execute("DELETE FROM audit WHERE device_id = ?1", [crate::database::stored_id(&me)]).unwrap();
    own.drain(2..2 + n);
    let mut prev = GENESIS.to_string();
    for (i, e) in own.iter_mut().enumerate() {
        (e.device_seq, e.prev_hash) = (i as i64 + 1, prev);
        e.hash = e.rehash_for_tests();
        prev = e.hash.clone();
        audit::insert(c, e).unwrap();
    }
    crate::database::set_meta(c, HEAD_KEY, &format!("{}:{prev}", own.len())).unwrap();
}

/// The issue's finding: a caseworker deleted her entries and re-chained the
/// trail, and `audit verify` said intact. One laptop alone still cannot tell
/// (the README says so), but the next sync does, on the laptop holding the
/// earlier copy: the bundle is refused with the laptop named, and the proof
/// stays in its `audit verify` after the refusal. The rewritten laptop, sent
/// another laptop's copy of its log, shows it too.
#[test]
fn a_trail_rewritten_on_one_laptop_is_found_out_at_the_next_sync() {
    use crate::repositories::audit::Problem;
    let (_d, mut l) = laptops(2);
    for _ in 0..3 {
        l[0].create_case(sample::full_case(), None).unwrap();
    }
    let b = export(&mut l[0]);
    import(&mut l[1], &b).unwrap();
    let b = export(&mut l[1]);
    import(&mut l[0], &b).unwrap();
    let before = change_count(&l[1]);
    rewrite_trail(&l[0], 3);
    assert_eq!(l[0].verify_audit().unwrap().problem, None, "alone, the laptop cannot tell");
    l[0].create_case(sample::full_case(), None).unwrap();

    let b = export(&mut l[0]);
    let e = import(&mut l[1], &b).unwrap_err();
    assert!(
        matches!(&e, StoreError::Sync(SyncError::AuditRewritten { device_code, .. }) if device_code == "L0"),
        "{e:?}"
    );
    assert_eq!(change_count(&l[1]), before, "nothing of it was taken");
    let problem = l[1].verify_audit().unwrap().problem;
    assert!(matches!(&problem, Some(Problem::Rewritten { device, .. }) if device == "L0"), "{problem:?}");
    for lang in ["en", "es"] {
        let m = crate::i18n::tr(lang, e.i18n_key(), &e.args());
        assert!(!m.contains("error.") && !m.contains("%{") && m.contains("L0"), "{lang}: {m}");
        let p = problem.as_ref().unwrap();
        let m = crate::i18n::tr(lang, p.i18n_key(), &p.args());
        assert!(!m.contains("audit.") && !m.contains("%{") && m.contains("L0"), "{lang}: {m}");
    }

    // L1's whole copy, L0's entries among them, read on L0.
    let all = export_all(&mut l[1]);
    import(&mut l[0], &all).unwrap();
    let problem = l[0].verify_audit().unwrap().problem;
    assert!(matches!(&problem, Some(Problem::Rewritten { device, number: 3 }) if device == "L0"), "{problem:?}");
}

/// Through a hub the same: the rewritten laptop's batch is refused, held back
/// alone, and the proof stays.
#[test]
fn a_trail_rewritten_before_a_hub_batch_is_found_out() {
    use crate::repositories::audit::Problem;
    let (_d, mut l) = laptops(2);
    let memory = MemoryHub::default();
    for _ in 0..3 {
        l[0].create_case(sample::full_case(), None).unwrap();
    }
    hub_sync(&memory, &mut l[0]).unwrap();
    hub_sync(&memory, &mut l[1]).unwrap();
    rewrite_trail(&l[0], 2);
    l[0].create_case(sample::full_case(), None).unwrap();
    hub_sync(&memory, &mut l[0]).unwrap();
    let e = hub_sync(&memory, &mut l[1]).unwrap_err();
    assert!(
        matches!(&e, StoreError::Sync(SyncError::AuditRewritten { device_code, .. }) if device_code == "L0"),
        "{e:?}"
    );
    assert_eq!(cases(&l[1]).len(), 3, "nothing of the rewritten laptop's new batch was taken");
    let problem = l[1].verify_audit().unwrap().problem;
    assert!(matches!(&problem, Some(Problem::Rewritten { device, .. }) if device == "L0"), "{problem:?}");
}

/// A hub that is down, or takes a push and its answer is lost, or answers; and
/// that, as the real one, refuses other bytes under a batch number it holds.
#[derive(Clone, Copy, PartialEq)]
enum Line {
    Down,
    AnswerLost,
    Up,
}

struct Flaky<'a>(Via<'a>, Line);

impl hub::Transport for Flaky<'_> {
    fn push(&mut self, number: i64, bytes: &[u8]) -> Result<(), SyncError> {
        let unreachable = || SyncError::HubUnreachable { url: "https://127.0.0.1:9".into() };
        if self.1 == Line::Down {
            return Err(unreachable());
        }
        let held = self.0 .0 .0.borrow().get(&(self.0 .1.clone(), number)).cloned();
        if held.is_some_and(|h| h != bytes) {
            return Err(SyncError::HubRefused { reason: "batch_conflict".into() });
        }
        self.0.push(number, bytes)?;
        if self.1 == Line::AnswerLost {
            return Err(unreachable());
        }
        Ok(())
    }
    fn list(&mut self, since: &bundle::Vector, limit: usize) -> Result<Vec<hub::Listed>, SyncError> {
        self.0.list(since, limit)
    }
    fn fetch(&mut self, device: &str, number: i64) -> Result<Vec<u8>, SyncError> {
        self.0.fetch(device, number)
    }
    fn epochs(&mut self, since: u32) -> Result<Vec<Vec<u8>>, SyncError> {
        self.0.epochs(since)
    }
    fn put_epoch(&mut self, number: u32, bytes: &[u8]) -> Result<(), SyncError> {
        self.0.put_epoch(number, bytes)
    }
    fn revoke(&mut self, device: &str) -> Result<i64, SyncError> {
        self.0.revoke(device)
    }
}

/// What a batch waiting in the outbox says, opened with the organisation key
/// (as someone holding the store's key could), lowercased.
fn outbox_words(s: &Store) -> String {
    let (org_id, _, key) = org::keys(s.conn()).unwrap();
    let mut st = s.conn().prepare("SELECT bytes FROM hub_outbox").unwrap();
    let sealed: Vec<Vec<u8>> = st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    sealed
        .iter()
        .filter(|b| !b.is_empty())
        .map(|b| format!("{:?}", bundle::open(b, &org_id, &key).unwrap().1).to_lowercase())
        .collect()
}

/// The hub took a batch but its answer was lost, and then the caseworker
/// replaced a value: the batch waiting to be sent again no longer holds the
/// old value, even opened with the key. Sent again, the hub's answer that it
/// holds the first sealing counts as arrived, and the other laptop ends with
/// the new value.
#[test]
fn a_batch_waiting_for_the_hub_keeps_no_replaced_value() {
    let (_d, mut l) = laptops(2);
    let memory = MemoryHub::default();
    let case = l[0].create_case(sample::full_case(), None).unwrap();
    let case = set(&mut l[0], &case, "people.0.alias", "Zacnite Canario");
    let mut line = Flaky(via(&memory, &l[0]), Line::AnswerLost);
    let lost = l[0].hub_sync(&mut line, &mut |_, _| {}).unwrap_err();
    assert!(matches!(lost, StoreError::Sync(SyncError::HubUnreachable { .. })), "{lost:?}");
    assert!(outbox_words(&l[0]).contains("zacnite"), "the batch waits for an answer");

    set(&mut l[0], &case, "people.0.alias", "Z. C.");
    assert!(!outbox_words(&l[0]).contains("zacnite"), "the replaced alias is gone at once");
    assert_eq!(l[0].hub_waiting().unwrap().1, 1, "still one batch to send");
    // Sealed again before it is sent: the rest of the batch is still there.
    line.1 = Line::Down;
    l[0].hub_sync(&mut line, &mut |_, _| {}).unwrap_err();
    let words = outbox_words(&l[0]);
    assert!(words.contains("xóchitl") && !words.contains("zacnite"), "{words}");

    line.1 = Line::Up;
    l[0].hub_sync(&mut line, &mut |_, _| {}).unwrap();
    assert_eq!(l[0].hub_waiting().unwrap(), (0, 0), "the hub's first copy counts as arrived");
    hub_sync(&memory, &mut l[1]).unwrap();
    assert_eq!(cases(&l[1]), cases(&l[0]));
    assert_eq!(cases(&l[1])[&id_of(&case)]["people"][0]["alias"], "Z. C.");
}

/// A revoked laptop can read nothing written after its revocation: the next key
/// epoch is sealed to the others only. What it pushed before is still taken, older
/// batches stay readable, a laptop that enrols late gets every key it needs, and a
/// forged key change is refused.
#[test]
fn a_revoked_laptop_reads_nothing_written_after_it() {
    let (_d, mut l) = laptops(4);
    let memory = MemoryHub::default();
    let settings = hub::HubSettings { url: "https://hub.test".into(), fingerprint: "00".into() };
    l[0].set_hub(&settings).unwrap();
    // Every laptop but L3 has synced once, so the administrator's knows their keys.
    for s in l.iter_mut().take(3) {
        hub_sync(&memory, s).unwrap();
    }
    hub_sync(&memory, &mut l[0]).unwrap();
    // L2 pushes a case, then is stolen and revoked before anyone pulled it.
    let before = l[2].create_case(sample::full_case(), None).unwrap();
    hub_sync(&memory, &mut l[2]).unwrap();
    let (l2, l2_code) = (l[2].session().device_id.clone(), l[2].session().device_code.clone());
    let mut t = via(&memory, &l[0]);
    l[0].hub_revoke(&mut t, &l2, &l2_code).unwrap();
    assert_eq!(org::keys(l[0].conn()).unwrap().1, 1, "the administrator writes under the new key");

    hub_sync(&memory, &mut l[1]).unwrap();
    assert_eq!(org::keys(l[1].conn()).unwrap().1, 1);
    assert!(cases(&l[1]).contains_key(&id_of(&before)), "what L2 pushed before its revocation is taken");
    let after = l[1].create_case(sample::full_case(), None).unwrap();
    hub_sync(&memory, &mut l[1]).unwrap();
    let newest = memory.0.borrow().iter().rfind(|((d, _), _)| *d == l[1].session().device_id).unwrap().1.clone();
    assert_eq!(bundle::read_signed(&newest).unwrap().0.epoch, 1);

    // The revoked laptop, even holding the epoch record and the batch, opens nothing.
    let record = memory.1.borrow()[0].clone();
    let tx = l[2].conn().unchecked_transaction().unwrap();
    epoch::apply(&tx, &record).unwrap();
    assert!(org::key_of(&tx, 1).unwrap().is_none(), "the new key was not sealed to the revoked laptop");
    let e = exchange::merge(&tx, &l2, &newest, &mut |_, _| {}).unwrap_err();
    assert!(matches!(e, SyncError::EpochKey { .. }), "{e:?}");
    drop(tx);
    // Nor through a folder: its bundles are refused where the revocation is known.
    l[2].create_case(sample::full_case(), None).unwrap();
    let stolen = export(&mut l[2]);
    let e = import(&mut l[1], &stolen).unwrap_err();
    assert!(matches!(e, StoreError::Sync(SyncError::Revoked { .. })), "{e:?}");

    // L3 enrolled before the change but never synced: it cannot read what was
    // written since, and says so; the administrator's laptop makes another epoch
    // for it, with the older keys, so it then reads everything.
    let e = hub_sync(&memory, &mut l[3]).unwrap_err();
    assert!(matches!(&e, StoreError::Sync(SyncError::EpochKey { device_code }) if device_code == "L1"), "{e:?}");
    hub_sync(&memory, &mut l[0]).unwrap();
    assert_eq!(memory.1.borrow().len(), 2);
    hub_sync(&memory, &mut l[3]).unwrap();
    let seen = cases(&l[3]);
    assert!(seen.contains_key(&id_of(&before)) && seen.contains_key(&id_of(&after)), "L3 reads old and new");

    // A laptop invited after the change gets every key in its invitation.
    let (invitation, passphrase) = l[0].invite().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut late =
        Store::join(dir.path(), &invitation, &passphrase, &setup("L5"), KdfParams::INSECURE_FOR_TESTS).unwrap();
    hub_sync(&memory, &mut late).unwrap();
    assert!(cases(&late).contains_key(&id_of(&after)) && cases(&late).contains_key(&id_of(&before)));

    // A key change not made by a laptop of the organisation (no proof of the old
    // key), or altered after it was signed, is refused and changes nothing.
    let outsider = identity::Identity::generate();
    let forge = |maker: &str| {
        let mut r = epoch::read(&record).unwrap();
        (r.number, r.maker) = (2, maker.to_string());
        r.seals.clear();
        r.sign_key = outsider.sign_key();
        let mut forged = serde_json::to_vec(&r).unwrap();
        let sig = outsider.sign(&forged);
        forged.extend_from_slice(&sig);
        forged
    };
    let tx = l[1].conn().unchecked_transaction().unwrap();
    let e = epoch::apply(&tx, &forge("a-device-nobody-knows")).unwrap_err();
    assert!(matches!(e, SyncError::EpochForged { .. }), "{e:?}");
    let e = epoch::apply(&tx, &forge(&l[0].session().device_id)).unwrap_err();
    assert!(matches!(e, SyncError::WrongSigner { .. }), "in the administrator's name: {e:?}");
    let mut altered = memory.1.borrow()[1].clone();
    altered[40] ^= 1;
    assert!(epoch::apply(&tx, &altered).is_err());
    for e in [SyncError::EpochKey { device_code: "L0".into() }, SyncError::EpochForged { device_code: "L0".into() }] {
        for lang in ["en", "es"] {
            let m = crate::i18n::tr(lang, e.i18n_key(), &e.args());
            assert!(!m.contains("error.") && !m.contains("%{") && m.contains("L0"), "{lang}: {m}");
        }
    }
}

/// A value another laptop wrote that this laptop's form does not accept (a status
/// code it does not know: a newer form, or a tampered laptop) never becomes the
/// case's value: the one it was written over stays, the case can still be saved,
/// and the value waits for review, where it cannot be kept as it is.
#[test]
fn a_value_the_form_does_not_accept_is_held_for_review() {
    let (_d, mut l) = laptops(2);
    let (case, next, me) = edited_after_sync(&mut l, &[("status", "Closed")]);
    let bogus = reforge(&l[1], &next, &me, |_, body| {
        let c =
            body.changes.iter_mut().filter(|c| c.field == "status").max_by_key(|c| c.seq).expect("the status change");
        c.value = Some(json!("Bogus"));
    });
    let summary = import(&mut l[1], &bogus).unwrap();
    assert_eq!(summary.conflicts, 1, "the held value is there to review");
    let id = id_of(&case);
    assert_eq!(cases(&l[1])[&id]["status"], "Active", "the value it was written over stays");

    let listed = l[1].conflicts().unwrap();
    let held: Vec<_> = listed[0].values.iter().filter(|v| v.held).collect();
    assert_eq!((listed[0].field.as_str(), held.len(), &held[0].value), ("status", 1, &json!("Bogus")));
    let keep = l[1].resolve_conflict(&id, "status", &Resolution::Keep(held[0].choice.clone()));
    let Err(StoreError::Invalid(why)) = keep else { panic!("kept as it is: {keep:?}") };
    assert_eq!(why.paths(), ["status"], "the message sits by the field");

    // The case is still editable, and its other fields are untouched.
    let edited = set(&mut l[1], &case, "people.0.alias", "Garza");
    assert_eq!((edited["status"].as_str(), edited["people"][0]["alias"].as_str()), (Some("Active"), Some("Garza")));
    let settled = l[1].resolve_conflict(&id, "status", &Resolution::Value("FollowUp".into())).unwrap();
    assert_eq!(settled["status"], "FollowUp");
    assert!(l[1].conflicts().unwrap().is_empty());

    // Where it was written (l0), its own save stands; the two agree once l0 hears.
    let b = export(&mut l[1]);
    import(&mut l[0], &b).unwrap();
    assert_eq!(cases(&l[0])[&id]["status"], "FollowUp");
}

/// What no form could have written (a 1 MB alias, a list where a status goes) is
/// refused whole, naming the laptop and the field, before anything is written.
#[test]
fn a_value_beyond_any_form_refuses_the_batch_naming_device_and_field() {
    let (_d, mut l) = laptops(2);
    let (case, next, me) = edited_after_sync(&mut l, &[("people.0.alias", "Garza"), ("status", "Closed")]);
    let before = change_count(&l[1]);
    let huge = reforge(&l[1], &next, &me, |_, body| {
        let c =
            body.changes.iter_mut().filter(|c| c.field.ends_with(".alias")).max_by_key(|c| c.seq).expect("the alias");
        c.value = Some(json!("x".repeat(1_000_000)));
    });
    let listed = reforge(&l[1], &next, &me, |_, body| {
        let c =
            body.changes.iter_mut().filter(|c| c.field == "status").max_by_key(|c| c.seq).expect("the status change");
        c.value = Some(json!(["Closed", "Active"]));
    });
    for (bytes, field) in [(huge, "people.alias"), (listed, "status")] {
        let e = import(&mut l[1], &bytes).unwrap_err();
        let StoreError::Sync(e @ SyncError::OutOfBounds { .. }) = e else { panic!("{e:?}") };
        for lang in ["en", "es"] {
            let m = crate::i18n::tr(lang, e.i18n_key(), &e.args());
            assert!(m.contains("L0") && m.contains(field) && !m.contains("%{"), "{lang}: {m}");
        }
        assert_eq!(change_count(&l[1]), before, "nothing of it was applied");
    }
    assert_eq!(cases(&l[1])[&id_of(&case)]["status"], "Active");
    // The genuine batch still applies.
    import(&mut l[1], &next).unwrap();
    assert_eq!(cases(&l[1])[&id_of(&case)]["status"], "Closed");
}

/// A merge puts the search entries of the cases it brings into the index in
/// batches: on the other laptop every case is found, on either side of a
/// batch's end, and the index agrees with its text.
#[test]
fn every_case_a_large_bundle_brings_is_found_and_the_index_checks() {
    let (_d, mut l) = laptops(2);
    let text: String = (0..2050).map(|i| serde_json::to_string(&sample::generated(i)).unwrap() + "\n").collect();
    assert_eq!(l[0].import_jsonl(text.as_bytes(), false, &mut |_| {}).unwrap().imported, 2050);
    let b = export(&mut l[0]);
    assert_eq!(import(&mut l[1], &b).unwrap().new_cases, 2050);
    let numbers: Vec<String> = cases(&l[0]).values().map(|c| c["case_number"].as_str().unwrap().to_string()).collect();
    for number in numbers.iter().step_by(97) {
        let q = crate::repositories::cases::ListQuery { text: number.clone(), ..Default::default() };
        let found = l[1].list_cases(&q).unwrap();
        assert_eq!(found.iter().map(|c| c.case_number.as_str()).collect::<Vec<_>>(), [number.as_str()]);
    }
    l[1].conn().execute("INSERT INTO cases_fts (cases_fts, rank) VALUES ('integrity-check', 1)", []).unwrap();
    let indexed: i64 = l[1].conn().query_row("SELECT count(*) FROM cases_fts", [], |r| r.get(0)).unwrap();
    assert_eq!(indexed, 2050);
}

/// A laptop not yet upgraded writes the codes of the 2020 draft of HTCDS ("Male",
/// "Threats"). An upgraded laptop shows them as they are now, holds none of them
/// back, counts them in its fact sheet, and passes the changes on as written.
#[test]
fn codes_of_a_laptop_not_yet_upgraded_show_as_they_are_now_and_travel_on_as_written() {
    let (_d, mut l) = laptops(3);
    let (case, next, me) = edited_after_sync(
        &mut l,
        &[
            ("people.0.gender", "Masculine"),
            ("methods_of_control", "DebtBondage, PhysicalThreats, PsychoactiveSubstance"),
            ("venues", "Construction"),
        ],
    );
    let old = reforge(&l[1], &next, &me, |_, body| {
        for c in body.changes.iter_mut() {
            if c.field.ends_with(".gender") && c.value == Some(json!("Masculine")) {
                c.value = Some(json!("Male"));
            }
            if c.field == "methods_of_control" && c.value.is_some() {
                c.value = Some(json!(["DebtBondage", "Threats", "PsychoactiveSubstances"]));
            }
            // A field that form had: the kinds of labour exploitation.
            if c.field == "venues" && c.value == Some(json!(["Construction"])) {
                (c.field, c.value, c.parents) =
                    ("type_of_labour_exploitation".into(), Some(json!(["Construction"])), vec![]);
            }
        }
    });
    let summary = import(&mut l[1], &old).unwrap();
    assert_eq!(summary.conflicts, 0, "nothing held back: the codes are known, as they were");
    let id = id_of(&case);
    let shown = &cases(&l[1])[&id];
    assert_eq!(shown["people"][0]["gender"], "Masculine");
    assert_eq!(shown["methods_of_control"], json!(["DebtBondage", "PhysicalThreats", "PsychoactiveSubstance"]));
    assert_eq!(shown["threat_targets"], json!(["Children", "Family"]), "still asked: the threats are physical");
    assert_eq!(
        shown["forced_labour_industry"],
        json!(["T_ActivitiesOfHouseholdsAsEmployers", "F_Construction"]),
        "a field of that form, read into this one's"
    );
    assert!(shown.get("type_of_labour_exploitation").is_none());
    assert_eq!(l[1].fact_sheet(&Default::default()).unwrap().demographics.male, crate::report::Count::Exact(1));
    // The log keeps what was written, and so does the next laptop's.
    let writer = l[0].session().device_id.clone();
    let as_written = |s: &Store| {
        let all = crate::changelog::all(s.conn()).unwrap();
        let gender = all.iter().filter(|c| c.field.ends_with(".gender") && c.device == writer).max_by_key(|c| c.seq);
        gender.and_then(|c| c.value.clone())
    };
    assert_eq!(as_written(&l[1]), Some(json!("Male")));
    // Every change it holds, passed on to a third laptop.
    let passed = export_all(&mut l[1]);
    import(&mut l[2], &passed).unwrap();
    assert_eq!(as_written(&l[2]), Some(json!("Male")));
    assert_eq!(cases(&l[2])[&id]["people"][0]["gender"], "Masculine");
    // An edit made where it was upgraded goes back as it is now.
    set(&mut l[1], &case, "people.0.alias", "Garza");
    let back = export(&mut l[1]);
    import(&mut l[0], &back).unwrap();
    assert_eq!(cases(&l[0])[&id]["people"][0]["gender"], "Masculine");
}

/// Two laptops that write the same value at once, one still with the draft's code
/// (`Male`) and one with its code now (`Masculine`), agree: no conflict to review.
/// Two that write different values still disagree.
#[test]
fn the_same_value_in_an_old_code_and_a_new_one_is_no_conflict() {
    let (_d, mut l) = laptops(2);
    let (case, next, me) = edited_after_sync(&mut l, &[("people.0.gender", "Masculine"), ("status", "Closed")]);
    let old = reforge(&l[1], &next, &me, |_, body| {
        for c in body.changes.iter_mut().filter(|c| c.field.ends_with(".gender") && c.value == Some(json!("Masculine")))
        {
            c.value = Some(json!("Male"));
        }
    });
    // Meanwhile, on the other laptop, the same answer, and another status.
    set(&mut l[1], &case, "people.0.gender", "Masculine");
    set(&mut l[1], &case, "status", "FollowUp");
    let summary = import(&mut l[1], &old).unwrap();
    let listed: Vec<String> = l[1].conflicts().unwrap().into_iter().map(|c| c.field).collect();
    assert_eq!(listed, ["status"], "the gender agrees; the status does not");
    assert_eq!(summary.conflicts, 1);
    assert_eq!(cases(&l[1])[&id_of(&case)]["people"][0]["gender"], "Masculine");
}
