//! The compact change log against a store made before it (schema 17): every change,
//! case, conflict and count comes through the migration as that store read them.

use super::*;
use crate::store::Store;
use serde_json::json;
use std::path::Path;

pub(crate) const PASS: &str = "correct horse battery staple";

/// A copy of the store made by schema 17, and what that code read from it.
pub(crate) fn fixture() -> (tempfile::TempDir, Value) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v17");
    let dir = tempfile::tempdir().unwrap();
    for f in ["amparo.db", "keys.json", "keys.copy.json", "settings.json"] {
        std::fs::copy(from.join(f), dir.path().join(f)).unwrap();
    }
    let expected = serde_json::from_str(&std::fs::read_to_string(from.join("expected.json")).unwrap()).unwrap();
    (dir, expected)
}

fn exported(s: &Store) -> Value {
    let mut out = Vec::new();
    s.export_jsonl(&mut out).unwrap();
    let cases: serde_json::Map<String, Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| (v["id"].as_str().unwrap().to_string(), v))
        .collect();
    Value::Object(cases)
}

fn by_identity(mut changes: Vec<Value>) -> Vec<Value> {
    changes.sort_by_key(|c| (c["device"].as_str().unwrap().to_string(), c["seq"].as_i64().unwrap()));
    changes
}

#[test]
fn a_store_made_by_schema_17_comes_through_with_every_change_case_and_conflict() {
    let (dir, expected) = fixture();
    let mut s = Store::open(dir.path(), PASS).unwrap();
    let changes = all(s.conn()).unwrap();
    assert_eq!(changes.len(), expected["changes"].as_array().unwrap().len());
    assert_eq!(
        by_identity(changes.iter().map(|c| serde_json::to_value(c).unwrap()).collect()),
        by_identity(expected["changes"].as_array().unwrap().clone())
    );
    // Its cases show HTCDS 2.0's codes where they held a draft's (schema 21);
    // the changes above still hold what was written.
    let mut cases = expected["cases"].clone();
    let upgraded = cases
        .as_object_mut()
        .unwrap()
        .values_mut()
        .map(crate::intake::upgrade_codes)
        .filter(|changed| *changed)
        .count();
    assert!(upgraded > 0, "the fixture holds codes of the draft");
    assert_eq!(exported(&s), cases);
    assert_eq!(crate::database::meta(s.conn(), "codes_upgrade_pending").unwrap(), None);
    assert_eq!(serde_json::to_value(s.conflicts().unwrap()).unwrap(), expected["conflicts"]);
    assert_eq!(serde_json::to_value(s.sync_status().unwrap()).unwrap(), expected["status"]);
    assert_eq!(serde_json::to_value(s.fact_sheet(&Default::default()).unwrap()).unwrap(), expected["facts"]);
    // The old table is gone, and the log is one row per write, not per field.
    let count = |sql: &str| -> i64 { s.conn().query_row(sql, [], |r| r.get(0)).unwrap() };
    // The audit trail came through schema 20 in fewer bytes, and every chain still
    // verifies: each id and hash reads back exactly as it was hashed.
    let v = s.verify_audit().unwrap();
    assert!(v.problem.is_none() && v.entries > 10 && v.devices == 2, "{v:?}");
    assert_eq!(count("SELECT count(*) FROM audit WHERE typeof(id) <> 'blob' OR typeof(hash) <> 'blob'"), 0);
    assert_eq!(count("SELECT count(*) FROM log_entities WHERE typeof(entity_id) <> 'blob'"), 0);
    let trail = s.audit_list(&Default::default()).unwrap();
    assert!(trail.iter().any(|r| r.case_number.is_some() && r.user_name.is_some() && r.device_code.is_some()));
    assert_eq!(count("SELECT count(*) FROM sqlite_schema WHERE name = 'changes_v17'"), 0);
    let rows = count("SELECT count(*) FROM change_log");
    assert!(rows * 5 < changes.len() as i64, "{rows} rows for {} changes", changes.len());
    // Work goes on: the next change is numbered after the last one carried over.
    let me = s.session().device_id.clone();
    let last = changes.iter().filter(|c| c.device == me).map(|c| c.seq).max().unwrap();
    let b = expected["cases"].as_object().unwrap().values().find(|c| c["status"] == "Closed").unwrap();
    let number = b["case_number"].as_str().unwrap();
    s.set_fields(number, &[("status".to_string(), "Active".to_string())]).unwrap();
    let after = all(s.conn()).unwrap();
    let new: Vec<&Change> = after.iter().filter(|c| c.device == me && c.seq > last).collect();
    assert!(!new.is_empty() && new.iter().all(|c| c.seq > last));
    let status = new.iter().find(|c| c.field == "status").unwrap();
    assert_eq!(status.value, Some(json!("Active")));
    // The status it replaced was one of the carried-over changes, now blanked.
    let (pd, ps) = status.parents[0].clone();
    let replaced = after.iter().find(|c| c.device == pd && c.seq == ps).unwrap();
    assert_eq!(replaced.value, None);
    assert!(changes.iter().any(|c| c.device == pd && c.seq == ps && c.value == Some(json!("Closed"))));
}

#[test]
fn a_write_of_many_fields_is_one_row_and_blanking_one_keeps_the_others() {
    let (_dir, mut s) = crate::store::test_store();
    let case = s.create_case(crate::sample::full_case(), None).unwrap();
    let count = |s: &Store| -> i64 { s.conn().query_row("SELECT count(*) FROM change_log", [], |r| r.get(0)).unwrap() };
    let before = count(&s);
    let fields = all(s.conn()).unwrap().len();
    let number = case["case_number"].as_str().unwrap();
    s.set_fields(number, &[("status".to_string(), "Closed".to_string())]).unwrap();
    assert_eq!(count(&s), before + 1, "one save, one row");
    let after = all(s.conn()).unwrap();
    assert!(after.len() > fields);
    let id = case["id"].as_str().unwrap();
    let statuses: Vec<&Change> = after.iter().filter(|c| c.id == id && c.field == "status").collect();
    assert_eq!(statuses.len(), 2);
    assert_eq!(statuses.iter().filter(|c| c.value.is_some()).count(), 1, "the replaced status is blanked");
    // The other fields written with the first status keep their values (but the
    // time and author of the write, which every save replaces).
    let first = statuses.iter().min_by_key(|c| c.seq).unwrap();
    let siblings: Vec<&Change> = after
        .iter()
        .filter(|c| c.device == first.device && c.hlc == first.hlc && c.seq != first.seq)
        .filter(|c| !flat::META_FIELDS.contains(&c.field.as_str()))
        .collect();
    assert!(siblings.len() > 10, "{}", siblings.len());
    assert!(siblings.iter().all(|c| c.value.is_some()), "{siblings:?}");
}

/// Every row of the log, as stored.
fn raw_log(s: &Store) -> Vec<Vec<u8>> {
    let mut st = s.conn().prepare("SELECT fields FROM change_log").unwrap();
    st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

fn holds(rows: &[Vec<u8>], text: &str) -> bool {
    rows.iter().any(|r| r.windows(text.len()).any(|w| w == text.as_bytes()))
}

#[test]
fn a_saved_cases_values_are_stored_once_in_its_row_and_read_back_from_there() {
    let (_d, mut s) = crate::store::test_store();
    let case = s.create_case(crate::sample::full_case(), None).unwrap();
    let number = case["case_number"].as_str().unwrap().to_string();
    let alias = |s: &Store| -> Vec<Option<Value>> {
        all(s.conn()).unwrap().into_iter().filter(|c| c.field.ends_with(".alias")).map(|c| c.value).collect()
    };
    // The row holds the names; the log only says so, and reads them from there.
    assert!(!holds(&raw_log(&s), "Quetzalli Ramírez") && !holds(&raw_log(&s), "\"Rosa\""));
    assert_eq!(alias(&s), [Some(json!("Rosa"))]);
    let people = case["people"].as_array().unwrap();
    let first = people[0]["id"].as_str().unwrap();
    let changes = all(s.conn()).unwrap();
    let family = changes.iter().find(|c| c.field == format!("people.{first}.family_name")).unwrap();
    assert_eq!(family.value, Some(json!("Quetzalli Ramírez")));
    // An edit: the new value is read from the row, the old one is gone.
    s.set_fields(&number, &[("people.0.alias".into(), "Mariposa".into())]).unwrap();
    assert_eq!(alias(&s), [None, Some(json!("Mariposa"))]);
    assert!(!holds(&raw_log(&s), "Mariposa"));
    // A note and the time of a write are read from the notes table and the row.
    s.add_note(case["id"].as_str().unwrap(), "Llamó desde Ojinaga.", Some("es")).unwrap();
    let rows = raw_log(&s);
    assert!(!holds(&rows, "Ojinaga") && !holds(&rows, &number), "neither the note nor the case number twice");
    let notes: Vec<Value> =
        all(s.conn()).unwrap().into_iter().filter(|c| c.field.starts_with("notes.")).filter_map(|c| c.value).collect();
    assert_eq!(notes.iter().filter(|n| n["text"] == "Llamó desde Ojinaga.").count(), 1, "{notes:?}");
    let stamps: Vec<Value> =
        all(s.conn()).unwrap().into_iter().filter(|c| c.field == "updated_at").filter_map(|c| c.value).collect();
    let shown = s.load_case_unchecked(case["id"].as_str().unwrap()).unwrap();
    assert_eq!(stamps, [shown["updated_at"].clone()]);
    // A row that lost a value its log points to is damage, never a silent blank.
    s.conn().execute("UPDATE cases SET data = json_remove(data, '$.people[0].alias')", []).unwrap();
    assert!(matches!(all(s.conn()), Err(DatabaseError::Damaged { table: "cases" })));
}
