use super::*;
use crate::database::{schema, DatabaseError, DB_FILE};
use crate::repositories::cases::ListQuery;
use crate::sample;
use serde_json::{json, Value};

const PASS: &str = "correct horse battery staple";

fn setup() -> Setup {
    Setup {
        org: "Casa Amparo".into(),
        device_code: "tx3".into(),
        user: "Ana Gestora".into(),
        passphrase: String::from(PASS).into(),
        locale: "es".into(),
    }
}

fn new_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path(), &setup(), KdfParams::INSECURE_FOR_TESTS).unwrap();
    (dir, store)
}

fn numbers(rows: &[crate::repositories::cases::CaseSummary]) -> Vec<&str> {
    rows.iter().map(|r| r.case_number.as_str()).collect()
}

fn search(store: &Store, text: &str) -> Vec<String> {
    let q = ListQuery { text: text.into(), ..Default::default() };
    store.list_cases(&q).unwrap().into_iter().map(|r| r.case_number).collect()
}

#[test]
fn setup_creates_an_encrypted_store_that_reopens_with_the_passphrase() {
    let (dir, store) = new_store();
    assert_eq!(store.session().device_code, "TX3");
    drop(store);
    assert!(Store::exists(dir.path()));
    let store = Store::open(dir.path(), PASS).unwrap();
    assert_eq!(store.session().org, "Casa Amparo");
    assert_eq!(store.session().user_name, "Ana Gestora");
    let info = store.info().unwrap();
    assert_eq!(info.schema_version, schema::latest_version());
    assert_eq!(info.cases, 0);
    assert_eq!(Settings::load(dir.path()).locale.as_deref(), Some("es"));
}

#[test]
fn a_wrong_passphrase_opens_nothing() {
    let (dir, store) = new_store();
    drop(store);
    let err = Store::open(dir.path(), "correct horse battery stapler").unwrap_err();
    assert!(matches!(err, StoreError::Database(DatabaseError::WrongPassphrase)), "{err:?}");
    assert_eq!(
        err.localized("es"),
        "Esa frase de contraseña no abrió el archivo de casos. Revísela e inténtelo de nuevo."
    );
    // Without the key, SQLite sees no database at all.
    let plain = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    assert!(plain.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)).is_err());
}

/// A setup that reaches a log or an error report (its `Debug`) says nothing of
/// the passphrase, and the window's answers still read as they did.
#[test]
fn a_setup_never_prints_its_passphrase() {
    let printed = format!("{:?}", setup());
    assert!(printed.contains("Ana Gestora") && !printed.contains(PASS), "{printed}");
    let read: Setup = serde_json::from_value(json!({
        "org": "Casa Amparo", "device_code": "tx3", "user": "Ana", "passphrase": PASS, "locale": "es"
    }))
    .unwrap();
    assert_eq!(read.passphrase.as_str(), PASS);
}

#[test]
fn setup_refuses_bad_answers_by_field_and_a_second_setup() {
    let dir = tempfile::tempdir().unwrap();
    let bad = Setup {
        org: " ".into(),
        device_code: "TX-3".into(),
        user: "".into(),
        passphrase: String::from("short").into(),
        locale: "".into(),
    };
    let err = Store::create(dir.path(), &bad, KdfParams::INSECURE_FOR_TESTS).unwrap_err();
    let StoreError::Invalid(v) = err else { panic!("{err:?}") };
    assert_eq!(v.paths(), vec!["org", "user", "device_code", "passphrase"]);
    assert!(!Store::exists(dir.path()));
    Store::create(dir.path(), &setup(), KdfParams::INSECURE_FOR_TESTS).unwrap();
    assert!(matches!(
        Store::create(dir.path(), &setup(), KdfParams::INSECURE_FOR_TESTS),
        Err(StoreError::AlreadyInitialized(_))
    ));
}

#[test]
fn setup_never_deletes_a_database_whose_key_file_is_missing() {
    let (dir, mut store) = new_store();
    store.create_case(sample::full_case(), None).unwrap();
    drop(store);
    // The key file deleted by mistake: its copy opens the store, and the file is back.
    std::fs::remove_file(dir.path().join(KEY_FILE)).unwrap();
    assert!(Store::exists(dir.path()));
    let s = Store::open(dir.path(), PASS).unwrap();
    assert_eq!(s.info().unwrap().cases, 1);
    drop(s);
    assert!(dir.path().join(KEY_FILE).is_file(), "written again from the copy");
    // A damaged key file: the same.
    std::fs::write(dir.path().join(KEY_FILE), b"{ damaged").unwrap();
    assert_eq!(Store::open(dir.path(), PASS).unwrap().info().unwrap().cases, 1);
    // Both gone: the folder is not "never set up", and setup does not move the
    // store aside; it says what to do.
    std::fs::remove_file(dir.path().join(KEY_FILE)).unwrap();
    std::fs::remove_file(dir.path().join(keys::KEY_COPY_FILE)).unwrap();
    assert!(!Store::exists(dir.path()));
    let old_db = std::fs::read(dir.path().join(DB_FILE)).unwrap();
    let e = Store::create(dir.path(), &setup(), KdfParams::INSECURE_FOR_TESTS).unwrap_err();
    assert!(matches!(e, StoreError::KeysMissing(_)), "{e:?}");
    for lang in ["en", "es"] {
        let m = crate::i18n::tr(lang, e.i18n_key(), &e.args());
        assert!(m.contains("keys.json") && m.contains("amparo.db") && !m.contains("%{"), "{lang}: {m}");
    }
    assert!(std::fs::read(dir.path().join(DB_FILE)).unwrap() == old_db, "the store is untouched");
}

/// A setup of ours that crashed before its key files were written can simply
/// run again: its half-made database is moved aside, never deleted.
#[test]
fn a_setup_that_crashed_part_way_can_run_again() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(DB_FILE), b"half a setup").unwrap();
    std::fs::write(dir.path().join(crate::database::SETUP_PENDING), b"").unwrap();
    Store::create(dir.path(), &setup(), KdfParams::INSECURE_FOR_TESTS).unwrap();
    let kept: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("amparo.db.orphaned-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::read(dir.path().join(&kept[0])).unwrap(), b"half a setup");
    assert!(!dir.path().join(crate::database::SETUP_PENDING).exists());
}

#[test]
fn passphrase_strength_grows_with_length_and_variety() {
    assert_eq!(passphrase_strength("abc"), Strength::TooShort);
    assert_eq!(passphrase_strength("aaaaaaaaaaaaaa"), Strength::Weak);
    assert_eq!(passphrase_strength("password1234"), Strength::Weak);
    assert_eq!(passphrase_strength("girasol-Luna-27"), Strength::Fair);
    assert_eq!(passphrase_strength("correct horse battery staple"), Strength::Strong);
}

#[test]
fn every_field_round_trips() {
    let (_dir, mut store) = new_store();
    let saved = store.create_case(sample::full_case(), None).unwrap();
    let number = saved["case_number"].as_str().unwrap().to_string();
    assert!(number.starts_with("TX3-") && number.ends_with("-0001"), "{number}");
    let back = store.get_case_by_number(&number).unwrap();
    assert_eq!(back, saved);
    let mut expected = sample::full_case();
    expected["assigned_to"] = json!(store.session().user_id);
    assert_eq!(sample::without_assigned(&back), expected);
    // Store-assigned values are there.
    assert!(uuid::Uuid::parse_str(back["id"].as_str().unwrap()).is_ok());
    assert_eq!(back["people"][0]["majority_at_intake"], "Minor");
    assert_eq!(back["people"][1]["majority_at_intake"], "Minor");
    assert_eq!(back["notes"][0]["author"], "Ana Gestora");
    assert!(back["people"][0]["id"].is_string() && back["needs"][1]["id"].is_string());
    // And it survives closing and reopening.
    drop(store);
    let store = Store::open(_dir.path(), PASS).unwrap();
    assert_eq!(store.get_case_by_number(&number).unwrap(), saved);
}

#[test]
fn invalid_cases_are_refused_and_nothing_is_written() {
    let (_dir, mut store) = new_store();
    let mut c = sample::full_case();
    c["people"][0]["safe_phone"] = json!("55 1234 5678");
    let err = store.create_case(c, None).unwrap_err();
    let StoreError::Invalid(v) = err else { panic!() };
    assert_eq!(v.paths(), vec!["people.0.safe_phone"]);
    assert_eq!(store.info().unwrap().cases, 0);
}

/// Does `needle` occur anywhere in the store's files?
fn files_contain(dir: &std::path::Path, needle: &str) -> Vec<String> {
    let mut hits = vec![];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        for pattern in [needle.as_bytes().to_vec(), needle.encode_utf16().flat_map(u16::to_le_bytes).collect()] {
            if bytes.windows(pattern.len()).any(|w| w == pattern.as_slice()) {
                hits.push(path.display().to_string());
            }
        }
    }
    hits
}

#[test]
fn no_survivor_name_is_readable_in_the_database_or_wal() {
    let (dir, mut store) = new_store();
    let mut c = sample::full_case();
    c["people"][0]["given_name"] = json!("Xochiquetzal");
    c["people"][0]["family_name"] = json!("Tlapaltecatl");
    c["people"][0]["alias"] = json!("Mariposa");
    c["notes"] = json!([{"text": "Vive con Tlapaltecatl en Pasadena", "language": "es"}]);
    let saved = store.create_case(c, None).unwrap();
    store.add_note(saved["id"].as_str().unwrap(), "Xochiquetzal llamó", Some("es")).unwrap();
    store.save_draft(None, None, &json!({"people": [{"alias": "Mariposa", "given_name": "Xochiquetzal"}]})).unwrap();
    assert!(dir.path().join("amparo.db-wal").exists(), "the WAL is where fresh writes live");
    for name in ["Xochiquetzal", "Tlapaltecatl", "Mariposa", "Pasadena", "girasol"] {
        assert_eq!(files_contain(dir.path(), name), Vec::<String>::new(), "{name} readable");
    }
    // After a checkpoint moves everything into the main file, still nothing.
    store.conn().execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    drop(store);
    for name in ["Xochiquetzal", "Tlapaltecatl", "Mariposa"] {
        assert_eq!(files_contain(dir.path(), name), Vec::<String>::new(), "{name} readable");
    }
}

#[test]
fn an_acknowledged_save_survives_a_crash() {
    let (dir, mut store) = new_store();
    let saved = store.create_case(sample::generated(7), None).unwrap();
    // Copy the files as they are on disk while the store is still open, never closed
    // or checkpointed: what a power cut leaves behind.
    let copy = tempfile::tempdir().unwrap();
    for f in [DB_FILE, "amparo.db-wal", KEY_FILE] {
        std::fs::copy(dir.path().join(f), copy.path().join(f)).unwrap();
    }
    std::mem::forget(store);
    let reopened = Store::open(copy.path(), PASS).unwrap();
    assert_eq!(reopened.get_case(saved["id"].as_str().unwrap()).unwrap(), saved);
}

#[test]
fn the_list_is_newest_first_and_search_finds_numbers_names_cities_and_notes() {
    let (_dir, mut store) = new_store();
    let mut a = sample::full_case();
    a["status"] = json!("Closed");
    let a = store.create_case(a, None).unwrap();
    let mut b = sample::generated(1);
    b["people"] =
        json!([{"role": "PotentialVictim", "alias": "Lupita", "given_name": "Guadalupe", "family_name": "Núñez"}]);
    b["intake_place"] = json!({"country": "US", "subdivision": "US-GA", "city": "Atlanta"});
    b["notes"] = json!([{"text": "Necesita abogada de inmigración", "language": "es"}]);
    b["status"] = json!("Active");
    let b = store.create_case(b, None).unwrap();
    let (na, nb) = (a["case_number"].as_str().unwrap(), b["case_number"].as_str().unwrap());
    let all = store.list_cases(&ListQuery::default()).unwrap();
    assert_eq!(numbers(&all), vec![nb, na]);
    assert_eq!(all[0].alias.as_deref(), Some("Lupita"));
    assert_eq!(search(&store, "lupi"), vec![nb]);
    assert_eq!(search(&store, "Nunez"), vec![nb], "diacritics are folded");
    assert_eq!(search(&store, "xochitl"), vec![na]);
    assert_eq!(search(&store, "atlan"), vec![nb]);
    assert_eq!(search(&store, "abogada"), vec![nb]);
    assert_eq!(search(&store, &nb[..8]), vec![nb, na], "case number prefix");
    assert_eq!(search(&store, nb), vec![nb]);
    assert_eq!(search(&store, "Rosa Houston"), vec![na]);
    assert_eq!(search(&store, "Rosa Atlanta"), Vec::<String>::new());
    // FTS syntax in what was typed is just text.
    assert_eq!(search(&store, "\"Rosa\" OR NEAR( * -"), Vec::<String>::new());
    let closed = store.list_cases(&ListQuery { status: Some("Closed".into()), ..Default::default() }).unwrap();
    assert_eq!(numbers(&closed), vec![na]);
    let closed_lupita = ListQuery { text: "lupita".into(), status: Some("Closed".into()), ..Default::default() };
    assert!(store.list_cases(&closed_lupita).unwrap().is_empty());
}

#[test]
fn edits_replace_fields_and_notes_are_append_only() {
    let (_dir, mut store) = new_store();
    let saved = store.create_case(sample::full_case(), None).unwrap();
    let id = saved["id"].as_str().unwrap().to_string();
    let mut edit = saved.clone();
    edit["status"] = json!("FollowUp");
    edit["people"][0]["alias"] = json!("Rosita");
    edit["notes"][0]["text"] = json!("changed"); // an existing note: ignored
    edit["notes"].as_array_mut().unwrap().push(json!({"text": "Segunda nota", "language": "es"}));
    let updated = store.update_case(&id, edit, None).unwrap();
    assert_eq!(updated["status"], "FollowUp");
    assert_eq!(updated["case_number"], saved["case_number"]);
    assert_eq!(updated["people"][0]["id"], saved["people"][0]["id"], "people keep their ids");
    let texts: Vec<&str> = updated["notes"].as_array().unwrap().iter().map(|n| n["text"].as_str().unwrap()).collect();
    assert_eq!(texts, vec!["Llegó con su hijo.", "Segunda nota"]);
    assert_eq!(search(&store, "rosita").len(), 1);
    assert_eq!(search(&store, "segunda").len(), 1);
    store.add_note(&id, "Tercera", Some("es")).unwrap();
    assert!(matches!(store.add_note(&id, "   ", None), Err(StoreError::Invalid(_))));
    assert!(matches!(store.add_note("nope", "x", None), Err(StoreError::NotFound(..))));
    // Even direct SQL cannot change or remove a note.
    assert!(store.conn().execute("UPDATE notes SET text = 'x'", []).is_err());
    assert!(store.conn().execute("DELETE FROM notes", []).is_err());
    assert_eq!(store.get_case(&id).unwrap()["notes"].as_array().unwrap().len(), 3);
}

/// A row the store wrote that no longer reads (a damaged disk, a hand edit) stops
/// the operation with a message naming the table; it is never read as empty.
#[test]
fn a_damaged_row_is_an_error_never_an_empty_value() {
    let (_dir, mut store) = new_store();
    let saved = store.create_case(sample::full_case(), None).unwrap();
    let id = saved["id"].as_str().unwrap().to_string();
    let damaged = |e: StoreError| match e {
        StoreError::Database(DatabaseError::Damaged { table }) => table,
        other => panic!("not a damaged row: {other:?}"),
    };
    // A row of the change log that is not what the store wrote.
    store
        .conn()
        .execute(
            "UPDATE change_log SET fields = substr(fields, 1, length(fields) - 3)
              WHERE entity = (SELECT n FROM log_entities WHERE entity_id = ?1 AND entity = 'case')",
            [crate::database::stored_id(&id)],
        )
        .unwrap();
    assert_eq!(damaged(store.update_case(&id, saved.clone(), None).unwrap_err()), "change_log");
    // An unfinished intake whose text is not JSON.
    store
        .conn()
        .execute("INSERT INTO drafts (id, created_at, updated_at, data) VALUES ('d', 'x', 'x', '{')", [])
        .unwrap();
    assert_eq!(damaged(store.list_drafts().unwrap_err()), "drafts");
    // The message says what happened and what to do, in both languages.
    let e = StoreError::Database(DatabaseError::Damaged { table: "drafts" });
    assert!(e.localized("en").contains("restore the data folder from a backup"), "{}", e.localized("en"));
    assert!(e.localized("es").contains("copia de respaldo"), "{}", e.localized("es"));
}

#[test]
fn set_fields_edits_by_path_and_validates() {
    let (_dir, mut store) = new_store();
    let saved = store.create_case(sample::full_case(), None).unwrap();
    let n = saved["case_number"].as_str().unwrap();
    let a = |p: &str, v: &str| (p.to_string(), v.to_string());
    let upd = store.set_fields(n, &[a("status", "Closed"), a("people.0.alias", "Lupita")]).unwrap();
    assert_eq!((upd["status"].as_str(), upd["people"][0]["alias"].as_str()), (Some("Closed"), Some("Lupita")));
    let err = store.set_fields(n, &[a("people.0.birth_date", "2030-01-01")]).unwrap_err();
    let StoreError::Invalid(v) = err else { panic!() };
    assert_eq!(v.paths(), vec!["people.0.birth_date"]);
    assert!(matches!(store.set_fields("TX3-2020-9999", &[a("status", "Closed")]), Err(StoreError::NotFound(..))));
}

#[test]
fn drafts_are_kept_until_the_intake_is_saved() {
    let (_dir, mut store) = new_store();
    let draft = json!({"people": [{"role": "PotentialVictim", "alias": "Paty"}], "intake_channel": "Hotline"});
    let id = store.save_draft(None, None, &draft).unwrap();
    let mut more = draft.clone();
    more["intake_channel"] = json!("WalkIn");
    assert_eq!(store.save_draft(Some(&id), None, &more).unwrap(), id);
    let list = store.list_drafts().unwrap();
    assert_eq!((list.len(), list[0].alias.as_deref()), (1, Some("Paty")));
    assert_eq!(store.get_draft(&id).unwrap(), more);
    store.create_case(more, Some(&id)).unwrap();
    assert!(store.list_drafts().unwrap().is_empty());
    let id2 = store.save_draft(None, None, &json!({"x": 1})).unwrap();
    store.delete_draft(&id2).unwrap();
    assert!(matches!(store.get_draft(&id2), Err(StoreError::NotFound(..))));
}

fn jsonl(cases: &[Value]) -> String {
    cases.iter().map(|c| serde_json::to_string(c).unwrap() + "\n").collect()
}

#[test]
fn import_is_all_or_nothing_and_names_line_and_field() {
    let (_dir, mut store) = new_store();
    let mut cases: Vec<Value> = (0..20).map(sample::generated).collect();
    cases[4]["people"][0]["age_estimate"] = json!(300);
    cases[11]["venues"] = json!(["Casino"]);
    let mut text = jsonl(&cases);
    text.push_str("{not json\n");
    let report = store.import_jsonl(text.as_bytes(), false, &mut |_| {}).unwrap();
    assert_eq!(report.imported, 0);
    let got: Vec<(usize, Vec<&str>)> =
        report.rejected.iter().map(|l| (l.line, l.issues.iter().map(|i| i.path.as_str()).collect())).collect();
    assert_eq!(got, vec![(5, vec!["people.0.age_estimate"]), (12, vec!["venues.0"]), (21, vec![""])]);
    assert_eq!(store.info().unwrap().cases, 0, "nothing written");
    let report = store.import_jsonl(text.as_bytes(), true, &mut |_| {}).unwrap();
    assert_eq!((report.imported, report.rejected.len()), (18, 3));
    assert_eq!(store.info().unwrap().cases, 18);
}

/// A reader that hands out a line longer than any case without ever holding it
/// whole: what a wrong file (a disk image, a video) looks like to the import.
struct Endless {
    left: usize,
    chunk: Vec<u8>,
    then: std::io::Cursor<Vec<u8>>,
}

impl std::io::Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return self.then.read(buf);
        }
        let n = buf.len().min(self.left).min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.left -= n;
        Ok(n)
    }
}

#[test]
fn a_line_longer_than_any_case_is_named_and_skipped_in_bounded_pieces() {
    let (_dir, mut store) = new_store();
    let first = jsonl(&[sample::generated(1)]);
    let rest = jsonl(&[sample::generated(2), sample::generated(3)]);
    let make = || {
        let head = std::io::Cursor::new(first.clone().into_bytes());
        let long = Endless {
            left: 40 << 20,
            chunk: vec![b'x'; 1 << 16],
            then: std::io::Cursor::new(format!("\n{rest}").into_bytes()),
        };
        std::io::BufReader::new(std::io::Read::chain(head, long))
    };
    let report = store.import_jsonl(make(), false, &mut |_| {}).unwrap();
    assert_eq!(report.imported, 0);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].line, 2);
    assert_eq!(report.rejected[0].issues[0].error, FieldError::LineTooLong { max_mb: 16 });
    assert!(report.rejected[0].issues[0].error.localized("es").contains("16 MB"));
    assert_eq!(store.info().unwrap().cases, 0, "nothing written");
    // Skipping it, the lines on either side are read as they are.
    let report = store.import_jsonl(make(), true, &mut |_| {}).unwrap();
    assert_eq!((report.imported, report.rejected.len()), (3, 1));
}

#[test]
fn export_equals_import_except_assigned_fields() {
    let (_dir, mut store) = new_store();
    let cases: Vec<Value> = (100..160).map(sample::generated).collect();
    let report = store.import_jsonl(jsonl(&cases).as_bytes(), false, &mut |_| {}).unwrap();
    assert_eq!(report.imported, 60);
    let mut out = Vec::new();
    assert_eq!(store.export_jsonl(&mut out).unwrap(), 60);
    let exported: Vec<Value> =
        String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for (i, (e, c)) in exported.iter().zip(&cases).enumerate() {
        assert!(e.as_object().unwrap().keys().next().is_some_and(|k| k == "format"), "format tag first");
        assert_eq!(&sample::without_assigned(e), c, "case {i}");
    }
    // Re-importing an export keeps ids and numbers, so it is refused as duplicates.
    let again = store.import_jsonl(jsonl(&exported).as_bytes(), false, &mut |_| {}).unwrap();
    assert_eq!((again.imported, again.rejected.len()), (0, 60));
    // Into a fresh store, the export imports as itself.
    let (_d2, mut other) = new_store();
    other.import_jsonl(jsonl(&exported).as_bytes(), false, &mut |_| {}).unwrap();
    let mut out2 = Vec::new();
    other.export_jsonl(&mut out2).unwrap();
    let exported2: Vec<Value> =
        String::from_utf8(out2).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(exported2, exported);
}

#[test]
fn imported_case_numbers_are_never_reused() {
    let (_dir, mut store) = new_store();
    let year = chrono::Datelike::year(&chrono::Local::now());
    let mut c = sample::generated(3);
    c["case_number"] = json!(format!("TX3-{year}-0041"));
    store.import_jsonl(jsonl(&[c]).as_bytes(), false, &mut |_| {}).unwrap();
    let next = store.create_case(sample::generated(4), None).unwrap();
    assert_eq!(next["case_number"], format!("TX3-{year}-0042"));
}

#[test]
fn migrations_run_from_empty() {
    let mut conn = rusqlite::Connection::open_in_memory().unwrap();
    schema::migrations().to_latest(&mut conn).unwrap();
    let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(v as usize, schema::latest_version());
    for t in ["meta", "users", "cases", "notes", "drafts", "case_numbers", "cases_fts"] {
        let n: i64 = conn.query_row("SELECT count(*) FROM sqlite_master WHERE name = ?1", [t], |r| r.get(0)).unwrap();
        assert_eq!(n, 1, "{t}");
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Import then export gives back every case as it went in, whatever the mix.
        #[test]
        fn export_round_trips_any_generated_cases(seeds in prop::collection::vec(any::<u64>(), 1..12)) {
            let (_dir, mut store) = new_store();
            let cases: Vec<Value> = seeds.iter().map(|s| sample::generated(*s)).collect();
            let report = store.import_jsonl(jsonl(&cases).as_bytes(), false, &mut |_| {}).unwrap();
            prop_assert_eq!(report.imported, cases.len());
            let mut out = Vec::new();
            store.export_jsonl(&mut out).unwrap();
            let back: Vec<Value> = String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            prop_assert_eq!(back.iter().map(sample::without_assigned).collect::<Vec<_>>(), cases);
        }
    }
}

/// The app open while an administrator runs the CLI on the same store: two
/// writers at once, each saving cases, editing them and adding notes. Every write
/// waits its turn and succeeds (before, about one in eleven failed with "database
/// is locked"), and the activity log still verifies.
#[test]
fn two_programs_writing_one_store_at_once_all_succeed() {
    let (dir, first) = new_store();
    drop(first);
    let writers: Vec<Store> = (0..2).map(|_| Store::open(dir.path(), PASS).unwrap()).collect();
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = writers
            .into_iter()
            .enumerate()
            .map(|(w, mut s)| {
                scope.spawn(move || {
                    let mut failed = Vec::new();
                    for i in 0..60 {
                        let case = match s.create_case(sample::generated((w * 1000 + i) as u64), None) {
                            Ok(c) => c,
                            Err(e) => {
                                failed.push(format!("create: {e}"));
                                continue;
                            }
                        };
                        let number = case["case_number"].as_str().unwrap().to_string();
                        if let Err(e) = s.set_fields(&number, &[("status".into(), "FollowUp".into())]) {
                            failed.push(format!("set: {e}"));
                        }
                        if let Err(e) = s.add_note(case["id"].as_str().unwrap(), "seguimiento", Some("es")) {
                            failed.push(format!("note: {e}"));
                        }
                    }
                    failed
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert!(failures.is_empty(), "{} of 360 writes failed: {:?}", failures.len(), &failures[..failures.len().min(3)]);
    let s = Store::open(dir.path(), PASS).unwrap();
    assert_eq!(s.list_cases(&ListQuery { limit: Some(1000), ..Default::default() }).unwrap().len(), 120);
    assert!(s.verify_audit().unwrap().problem.is_none(), "one activity log, still a chain");
}

/// A store another program holds past the timeout is said to be busy (with what
/// to do), never damaged.
#[test]
fn a_busy_store_says_busy_not_damaged() {
    let e =
        DatabaseError::Sql(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY), None));
    assert_eq!(e.i18n_key(), "error.store.busy");
    for lang in ["en", "es"] {
        let m = crate::i18n::tr(lang, e.i18n_key(), &e.args());
        assert!(m.contains("amparo") && !m.contains("%{"), "{lang}: {m}");
    }
}

/// Schema 11 remade the search index empty; the store fills it again at its next
/// open, notes included, and search finds what it found before.
#[test]
fn the_search_index_is_filled_again_after_the_schema_remade_it() {
    let (dir, mut s) = new_store();
    let case = s.create_case(sample::full_case(), None).unwrap();
    s.add_note(case["id"].as_str().unwrap(), "Llamó desde Ojinaga.", Some("es")).unwrap();
    let number = case["case_number"].as_str().unwrap().to_string();
    assert_eq!(search(&s, "ojinaga"), std::slice::from_ref(&number));
    // As the migration leaves it.
    s.conn()
        .execute_batch(
            "INSERT INTO cases_fts (cases_fts) VALUES ('delete-all'); DELETE FROM cases_fts_text;
             DELETE FROM meta WHERE key = 'fts_filled_at';",
        )
        .unwrap();
    assert!(search(&s, "ojinaga").is_empty());
    drop(s);
    let s = Store::open(dir.path(), PASS).unwrap();
    assert_eq!(search(&s, "Ojinaga"), std::slice::from_ref(&number));
    assert_eq!(search(&s, &number), [number]);
}

/// A search filtered by status is answered by the index, which follows every
/// change of status; a typed word never matches a status code.
#[test]
fn a_search_filtered_by_status_follows_the_cases_status() {
    let (_dir, mut s) = new_store();
    let case = s.create_case(sample::full_case(), None).unwrap();
    let number = case["case_number"].as_str().unwrap().to_string();
    let find = |s: &Store, text: &str, status: Option<&str>| -> Vec<String> {
        let q = ListQuery { text: text.into(), status: status.map(str::to_string), ..Default::default() };
        s.list_cases(&q).unwrap().into_iter().map(|r| r.case_number).collect()
    };
    assert_eq!(find(&s, "x", Some("Active")), std::slice::from_ref(&number));
    assert!(find(&s, "x", Some("Closed")).is_empty());
    s.set_fields(&number, &[("status".into(), "Closed".into())]).unwrap();
    assert!(find(&s, "xóch", Some("Active")).is_empty());
    assert_eq!(find(&s, "xóch", Some("Closed")), std::slice::from_ref(&number));
    assert_eq!(find(&s, "Xóchitl", None), std::slice::from_ref(&number));
    assert!(find(&s, "closed", None).is_empty(), "a status is not a word of the case");
}

/// What a file brings is bounded and checked like the form: a byte order mark is
/// fine; a line that is not UTF-8, an empty or null format tag, a timestamp that
/// is no date (or 5,000 characters of one), and a control character in a name are
/// each refused by line and field; a line break in a note is the note's own.
#[test]
fn import_refuses_what_the_form_would_by_line_and_field() {
    let (_dir, mut store) = new_store();
    let good = |seed| {
        let mut c = sample::generated(seed);
        c["format"] = json!(crate::intake::CASE_FORMAT);
        c
    };
    let mut bad_format = good(2);
    bad_format["format"] = json!("");
    let mut null_format = good(3);
    null_format["format"] = Value::Null;
    let mut zero = good(4);
    zero["updated_at"] = json!("0");
    let mut long = good(5);
    long["created_at"] = json!("2".repeat(5000));
    let mut escape = good(6);
    escape["people"][0]["alias"] = json!("Ana\u{1b}]0;hacked\u{7}");
    let mut note = good(7);
    note["notes"] = json!([{"text": "Primera línea.\nSegunda línea.", "language": "es"}]);
    let mut bytes = "\u{feff}".as_bytes().to_vec();
    bytes.extend(jsonl(&[good(1), bad_format, null_format, zero, long, escape, note]).as_bytes());
    bytes.extend(b"{\"format\": \"amparo.case/1\", \"status\": \"\xff\xfe\"}\n");
    let report = store.import_jsonl(&bytes[..], false, &mut |_| {}).unwrap();
    let got: Vec<(usize, Vec<(&str, &str)>)> = report
        .rejected
        .iter()
        .map(|l| (l.line, l.issues.iter().map(|i| (i.path.as_str(), i.error.i18n_key())).collect()))
        .collect();
    assert_eq!(
        got,
        vec![
            (2, vec![("format", "error.field.format")]),
            (3, vec![("format", "error.field.format")]),
            (4, vec![("updated_at", "error.field.timestamp")]),
            (5, vec![("created_at", "error.field.timestamp")]),
            (6, vec![("people.0.alias", "error.field.control_character")]),
            (8, vec![("", "error.field.not_utf8")]),
        ],
    );
    let report = store.import_jsonl(&bytes[..], true, &mut |_| {}).unwrap();
    assert_eq!(report.imported, 2, "the first line (after its mark) and the note with two lines");
}

#[test]
fn an_idle_checkpoint_folds_every_save_into_the_database() {
    let (dir, mut store) = new_store();
    for i in 0..5 {
        store.create_case(sample::generated(i), None).unwrap();
    }
    let wal = dir.path().join(format!("{DB_FILE}-wal"));
    assert!(std::fs::metadata(&wal).unwrap().len() > 0, "the saves are in the WAL");
    let (frames, folded) = store.checkpoint().unwrap();
    assert!(frames > 0);
    assert_eq!(folded, frames, "every frame is in the database now");
    // The database file alone holds the cases: a copy of it without the WAL opens
    // with all five.
    let copy = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(dir.path()).unwrap() {
        let f = f.unwrap();
        let name = f.file_name().to_string_lossy().to_string();
        if f.file_type().unwrap().is_file() && !name.ends_with("-wal") && !name.ends_with("-shm") {
            std::fs::copy(f.path(), copy.path().join(&name)).unwrap();
        }
    }
    drop(store);
    let again = Store::open(copy.path(), PASS).unwrap();
    assert_eq!(again.info().unwrap().cases, 5);
}

/// An import puts its cases' search entries into the index in batches: every
/// case is found, on either side of a batch's end, and the index agrees with
/// the text it was made from.
#[test]
fn every_imported_case_is_found_and_the_index_checks() {
    let (_dir, mut store) = new_store();
    let cases: Vec<Value> = (0..2050).map(sample::generated).collect();
    let report = store.import_jsonl(jsonl(&cases).as_bytes(), false, &mut |_| {}).unwrap();
    assert_eq!(report.imported, 2050);
    for i in [0usize, 1999, 2000, 2049] {
        // The list is newest first: the i-th line imported is 2049 - i down it.
        let q = ListQuery { offset: Some(2049 - i), limit: Some(1), ..Default::default() };
        let number = &store.list_cases(&q).unwrap()[0].case_number;
        let found = store.list_cases(&ListQuery { text: number.clone(), ..Default::default() }).unwrap();
        assert_eq!(numbers(&found), [number.as_str()], "case {i}");
    }
    store.conn().execute("INSERT INTO cases_fts (cases_fts, rank) VALUES ('integrity-check', 1)", []).unwrap();
    let indexed: i64 = store.conn().query_row("SELECT count(*) FROM cases_fts", [], |r| r.get(0)).unwrap();
    assert_eq!(indexed, 2050);
}

/// Case JSON Lines written before HTCDS 2.0 (the 2020 draft's codes) still import,
/// their codes read as they are now (DOMAIN.md).
#[test]
fn json_lines_with_the_drafts_codes_import_as_they_are_now() {
    let (_d, mut store) = new_store();
    let line = json!({"format": "amparo.case/1", "intake_date": "2025-05-01", "status": "Active",
        "method_of_recruitment": ["JobOffer", "Work"], "methods_of_control": ["Threats"], "threat_targets": ["Self"],
        "people": [{"role": "PotentialVictim", "alias": "Rosa", "gender": "Female", "vulnerabilities": ["Caste"]}]});
    let report = store.import_jsonl(format!("{line}\n").as_bytes(), false, &mut |_| {}).unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    let id = store.list_cases(&Default::default()).unwrap()[0].id.clone();
    let case = store.get_case(&id).unwrap();
    assert_eq!(case["people"][0]["gender"], "Feminine");
    assert_eq!(case["people"][0]["vulnerabilities"], json!(["SocialGroup"]));
    assert_eq!(case["method_of_recruitment"], json!(["JobOffer"]));
    assert_eq!(case["recruitment_channel"], json!(["AtWork"]));
    assert_eq!(case["methods_of_control"], json!(["PhysicalThreats"]));
    assert_eq!(case["threat_targets"], json!(["Self"]), "still asked: the threats are physical");
}
