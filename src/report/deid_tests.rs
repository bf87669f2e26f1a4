//! The de-identified export: nothing personal, nothing finer than a month or an age
//! band, and no combination of quasi-identifiers shared by fewer than k people.

use super::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::cell::Cell;
use std::collections::{BTreeMap, HashSet};

const NAMES: [&str; 4] = ["Rosalinda", "Guadalupe", "Xóchitl", "Esperanza"];

use crate::store::test_store as store;

/// A case with one potential victim and every kind of personal detail.
fn case(i: usize, year: u32, gender: &str, age: u32, nationality: &str, venue: &str) -> Value {
    json!({
        "format": "amparo.case/1", "intake_date": format!("{year}-0{}-1{}", 1 + i % 9, i % 10), "intake_channel": "Hotline",
        "status": "Active", "trafficking_type": "Sex", "venues": [venue],
        "intake_place": {"country": "US", "subdivision": "US-TX", "city": "Eagle Pass"},
        "safety": {"danger_level": "High", "code_word": format!("girasol{i}")},
        "people": [{"role": "PotentialVictim", "given_name": NAMES[i % 4], "family_name": format!("Apellido{i}"),
                    "alias": format!("Alias{i}"), "gender": gender, "age_estimate": age, "nationality": [nationality],
                    "safe_phone": format!("+52656{:07}", i), "email": format!("persona{i}@example.org")},
                   {"role": "DependentChild", "gender": "Masculine", "age_estimate": 3}],
    })
}

fn parse(csv: &str) -> (Vec<String>, Vec<BTreeMap<String, String>>) {
    let mut r = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    let rows =
        r.records().map(|rec| header.iter().cloned().zip(rec.unwrap().iter().map(str::to_string)).collect()).collect();
    (header, rows)
}

/// Every field the form marks personal, and every free-text field.
fn personal_or_free_text() -> HashSet<String> {
    fn walk(v: &Value, out: &mut HashSet<String>) {
        match v {
            Value::Object(m) => {
                let kind = m.get("kind").and_then(Value::as_str);
                if m.get("pii") == Some(&Value::Bool(true))
                    || matches!(kind, Some("text" | "long_text" | "phone" | "email"))
                {
                    out.insert(m["key"].as_str().unwrap().to_string());
                }
                m.values().for_each(|x| walk(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = HashSet::new();
    walk(&crate::form::definition_json(), &mut out);
    out
}

#[test]
fn known_answers_no_personal_column_months_and_bands() {
    let (_d, mut s) = store();
    // 12 women of 24 from Mexico in hotels in 2025: kept at k = 11.
    for i in 0..12 {
        s.create_case(case(i, 2025, "Feminine", 24, "MX", "HotelMotel"), None).unwrap();
    }
    // Three different people, each alone in their combination: dropped.
    s.create_case(case(20, 2025, "Masculine", 16, "GT", "Agriculture"), None).unwrap();
    s.create_case(case(21, 2025, "Feminine", 24, "MX", "BarClubCantina"), None).unwrap();
    s.create_case(case(22, 2024, "Feminine", 24, "MX", "HotelMotel"), None).unwrap();
    // One who declined to be counted in records: left out, however common.
    let mut declined = case(23, 2025, "Feminine", 24, "MX", "HotelMotel");
    declined["consents"] = json!([{"scope": "DeidentifiedStatistics", "decision": "Declined", "explained_in": "es", "given_at": "2025-01-10"}]);
    s.create_case(declined, None).unwrap();

    let out = s.deidentified_export(&ReportQuery { k: Some(11), ..Default::default() }).unwrap();
    assert_eq!((out.records, out.dropped, out.declined, out.k), (12, 3, 1, 11));
    let (header, rows) = parse(&out.csv);
    assert_eq!(header, COLUMNS);
    let personal = personal_or_free_text();
    for c in &header {
        assert!(!personal.contains(c), "column {c} is personal or free text");
    }
    for i in 0..24 {
        for word in [format!("Apellido{i}"), format!("Alias{i}"), format!("girasol{i}"), format!("persona{i}@")] {
            assert!(!out.csv.contains(&word), "{word} leaked");
        }
    }
    for word in NAMES.iter().copied().chain(["Eagle Pass", "+52656", "US-TX"]) {
        assert!(!out.csv.contains(word), "{word} leaked");
    }
    for r in &rows {
        assert_eq!(r["intake_month"].len(), 7, "a date finer than a month: {r:?}");
        assert!(r["intake_month"].starts_with("2025-"));
        assert_eq!(r["age_band"], "24-26");
        assert_eq!(
            (r["gender"].as_str(), r["nationality"].as_str(), r["venues"].as_str()),
            ("Feminine", "MX", "HotelMotel")
        );
        assert_eq!(r["majority_at_intake"], "Adult");
    }
    let numbers: Vec<&str> = rows.iter().map(|r| r["record"].as_str()).collect();
    assert_eq!(numbers, (1..=12).map(|n| n.to_string()).collect::<Vec<_>>());
    // At k = 2 nothing is alone except the three; at k = 13 everything goes.
    let out = s.deidentified_export(&ReportQuery { k: Some(13), ..Default::default() }).unwrap();
    assert_eq!((out.records, out.dropped), (0, 15));
    assert_eq!(parse(&out.csv).0, COLUMNS);
    // Caseworkers export nothing.
    s.add_user("Luz", crate::repositories::users::Role::Caseworker, "another long passphrase here").unwrap();
    drop(s);
    let s = Store::open_as(_d.path(), Some("Luz"), "another long passphrase here").unwrap();
    assert!(matches!(
        s.deidentified_export(&ReportQuery::default()),
        Err(StoreError::RoleRequired(crate::repositories::users::Role::Supervisor))
    ));
}

#[test]
fn age_bands_follow_the_ctdc() {
    let cases = [
        (None, "Unknown"),
        (Some(0), "0-8"),
        (Some(8), "0-8"),
        (Some(9), "9-17"),
        (Some(17), "9-17"),
        (Some(18), "18-20"),
        (Some(29), "27-29"),
        (Some(30), "30-38"),
        (Some(47), "39-47"),
        (Some(48), "48+"),
        (Some(99), "48+"),
    ];
    for (age, band) in cases {
        assert_eq!(age_band(age), band, "{age:?}");
    }
}

/// Property: whatever the cases and k, every combination written occurs at least k
/// times, exactly the rows in combinations of k or more are written, and every
/// potential victim is written, dropped or declined.
#[test]
fn every_exported_combination_occurs_at_least_k_times() {
    let person = (0..2usize, 0..3usize, 0..2usize, 0..2usize, 0..2usize, proptest::bool::weighted(0.05));
    let strategy = (proptest::collection::vec(person, 1..60), 2u32..8);
    let mut runner = TestRunner::new(Config { cases: 24, ..Config::default() });
    let (total_kept, total_dropped) = (Cell::new(0), Cell::new(0));
    runner
        .run(&strategy, |(people, k)| {
            let (_d, mut s) = store();
            let year = 2024;
            let mut expected: BTreeMap<String, usize> = BTreeMap::new();
            let mut declined = 0;
            for (n, (g, a, nat, v, later, no)) in people.iter().enumerate() {
                let (gender, age) = (["Feminine", "Masculine"][*g], [15, 25, 50][*a]);
                let (nat, venue) = (["MX", "HN"][*nat], ["HotelMotel", "Agriculture"][*v]);
                let mut c = case(n, year + *later as u32, gender, age, nat, venue);
                if *no {
                    c["consents"] = json!([{"scope": "DeidentifiedStatistics", "decision": "Declined", "explained_in": "es", "given_at": "1990-01-01"}]);
                    declined += 1;
                } else {
                    *expected.entry(format!("{gender}|{age}|{nat}|{venue}|{later}")).or_default() += 1;
                }
                s.create_case(c, None).unwrap();
            }
            let out = s.deidentified_export(&ReportQuery { k: Some(k), ..Default::default() }).unwrap();
            let (header, rows) = parse(&out.csv);
            prop_assert_eq!(header, COLUMNS);
            let mut combos: BTreeMap<String, usize> = BTreeMap::new();
            for r in &rows {
                let key = [&r["gender"], &r["age_band"], &r["nationality"], &r["venues"], &r["intake_month"][..4].to_string()]
                    .map(|x| x.as_str())
                    .join("|");
                *combos.entry(key).or_default() += 1;
            }
            for (combo, n) in &combos {
                prop_assert!(*n >= k as usize, "{combo} occurs {n} < {k} times");
            }
            let kept: usize = expected.values().filter(|n| **n >= k as usize).sum();
            prop_assert_eq!(out.records, kept);
            prop_assert_eq!(out.records + out.dropped + out.declined, people.len());
            prop_assert_eq!(out.declined, declined);
            total_kept.set(total_kept.get() + out.records);
            total_dropped.set(total_dropped.get() + out.dropped);
            Ok(())
        })
        .unwrap();
    // The generator makes both outcomes, or the property says little.
    let (kept, dropped) = (total_kept.get(), total_dropped.get());
    assert!(kept > 0 && dropped > 0, "kept {kept}, dropped {dropped}");
}
