//! The fact sheet on cases with known answers: several victims of mixed gender and
//! age in one case, a case without demographics, a case outside the period.

use super::*;
use serde_json::{json, Value};

fn case(date: &str, kind: &str, people: Value, venues: &[&str], recruiters: &[&str]) -> Value {
    let mut c = json!({
        "format": "amparo.case/1", "intake_date": date, "intake_channel": "Hotline", "status": "Active",
        "trafficking_type": kind, "venues": venues, "recruiter_relation": recruiters, "people": people,
    });
    if kind == "Labour" {
        c["forced_labour_industry"] = json!(["A_AgricultureForestryAndFishing"]);
    }
    c
}

fn victim(gender: Option<&str>, age: Option<u32>, nationality: &[&str]) -> Value {
    let mut p = json!({"role": "PotentialVictim", "nationality": nationality});
    if let Some(g) = gender {
        p["gender"] = json!(g);
    }
    if let Some(a) = age {
        p["age_estimate"] = json!(a);
    }
    p
}

fn store_with_known_cases() -> (tempfile::TempDir, Store) {
    let (dir, mut s) = crate::store::test_store();
    // Two victims: a woman and a boy, of two nationalities.
    let a = json!([victim(Some("Feminine"), Some(30), &["MX"]), victim(Some("Masculine"), Some(16), &["GT"])]);
    s.create_case(case("2025-03-10", "Sex", a, &["HotelMotel", "TruckStop"], &["IntimatePartner"]), None).unwrap();
    // A girl.
    let b = json!([victim(Some("Feminine"), Some(15), &["MX"])]);
    s.create_case(case("2025-06-01", "Labour", b, &["HotelMotel"], &["Employer", "IntimatePartner"]), None).unwrap();
    // No demographics given; a dependent child, who is no potential victim.
    let c =
        json!([victim(None, None, &["Unknown"]), {"role": "DependentChild", "gender": "Masculine", "age_estimate": 4}]);
    s.create_case(case("2025-09-09", "Sex", c, &["Agriculture"], &["Unknown"]), None).unwrap();
    // Outside the period.
    let d = json!([victim(Some("Feminine"), Some(40), &["MX"])]);
    s.create_case(case("2024-01-01", "Sex", d, &["HotelMotel"], &["Stranger"]), None).unwrap();
    (dir, s)
}

fn period() -> ReportQuery {
    ReportQuery {
        from: NaiveDate::from_ymd_opt(2025, 1, 1),
        to: NaiveDate::from_ymd_opt(2025, 12, 31),
        ..Default::default()
    }
}

fn cc(code: &str, n: u64) -> CodeCount {
    CodeCount { code: code.into(), cases: Count::Exact(n) }
}

#[test]
fn the_fact_sheet_counts_cases_involving_not_victims() {
    let (_d, s) = store_with_known_cases();
    let f = s.fact_sheet(&period()).unwrap();
    assert_eq!(f.cases, Count::Exact(3));
    assert_eq!(f.potential_victims, Count::Exact(4));
    assert_eq!(f.venues, vec![cc("HotelMotel", 2), cc("Agriculture", 1), cc("TruckStop", 1)]);
    // Non-cumulative: the first case counts once as female, once as male, once as
    // minor and once as adult; the third case counts nowhere.
    let d = &f.demographics;
    assert_eq!(
        (d.female, d.male, d.transgender_non_conforming, d.minor, d.adult),
        (Count::Exact(2), Count::Exact(1), Count::Exact(0), Count::Exact(2), Count::Exact(1))
    );
    assert_eq!(f.nationality, vec![cc("MX", 2), cc("GT", 1), cc("Unknown", 1)]);
    assert_eq!(f.recruiter_relation, vec![cc("IntimatePartner", 2), cc("Employer", 1), cc("Unknown", 1)]);
    // Filters.
    let sex = s.fact_sheet(&ReportQuery { trafficking_type: Some("Sex".into()), ..period() }).unwrap();
    assert_eq!((sex.cases, sex.potential_victims), (Count::Exact(2), Count::Exact(3)));
    let all = s.fact_sheet(&ReportQuery::default()).unwrap();
    assert_eq!(all.cases, Count::Exact(4));
    assert_eq!(all.venues[0], cc("HotelMotel", 3));
    let none = s.fact_sheet(&ReportQuery { status: Some("Closed".into()), ..period() }).unwrap();
    assert_eq!((none.cases, none.venues.len()), (Count::Exact(0), 0));
}

#[test]
fn shareable_counts_below_k_are_suppressed_exactly_at_the_threshold() {
    let (_d, s) = store_with_known_cases();
    // k = 3: 2 (k−1) is hidden, 3 (k) and 4 (k+1) are shown, 0 stays 0.
    let f = s.fact_sheet(&ReportQuery { k: Some(3), ..period() }).unwrap();
    // Hotel (2) is suppressed like the two venues of 1 case: by code, not by size,
    // so the order tells nothing about which is bigger.
    let codes: Vec<&str> = f.venues.iter().map(|v| v.code.as_str()).collect();
    assert_eq!(codes, ["Agriculture", "HotelMotel", "TruckStop"]);
    assert!(f.venues.iter().all(|v| v.cases == Count::Below(3)));
    assert_eq!(f.cases, Count::Exact(3));
    assert_eq!(f.potential_victims, Count::Exact(4));
    assert_eq!(f.demographics.transgender_non_conforming, Count::Exact(0));
    let json = serde_json::to_value(&f).unwrap();
    assert_eq!(json["venues"][1], json!({"code": "HotelMotel", "cases": "<3"}));
    assert_eq!(json["cases"], json!(3));
    assert!(f.to_csv().contains("venues,HotelMotel,<3\n"));
    assert!(f.to_csv().starts_with("section,code,cases\ncases,,3\npotential_victims,,4\n"));
    // The default threshold hides everything this small.
    let d = s.fact_sheet(&ReportQuery { k: Some(DEFAULT_K), ..period() }).unwrap();
    assert_eq!(d.cases, Count::Below(11));
    assert!(matches!(s.fact_sheet(&ReportQuery { k: Some(1), ..period() }), Err(StoreError::Invalid(_))));
}

#[test]
fn counts_follow_edits_and_are_rebuilt_for_older_stores() {
    let (d, s) = store_with_known_cases();
    let before = s.fact_sheet(&period()).unwrap();
    // As if the cases were saved before the counts were kept: rebuilt at unlock.
    s.conn().execute_batch("DELETE FROM case_facts; DELETE FROM meta WHERE key = 'facts_since';").unwrap();
    drop(s);
    let mut s = Store::open(d.path(), "correct horse battery staple").unwrap();
    assert_eq!(s.fact_sheet(&period()).unwrap(), before);
    // An edit moves the counts with it.
    let id: String =
        s.conn().query_row("SELECT id FROM cases WHERE intake_date = '2025-06-01'", [], |r| r.get(0)).unwrap();
    let mut c = s.get_case(&id).unwrap();
    c["people"][0]["gender"] = json!("TransgenderNonConforming");
    c["venues"] = json!(["TruckStop"]);
    s.update_case(&id, c, None).unwrap();
    let after = s.fact_sheet(&period()).unwrap();
    assert_eq!(after.demographics.transgender_non_conforming, Count::Exact(1));
    assert_eq!(after.demographics.female, Count::Exact(1));
    assert_eq!(after.venues, vec![cc("TruckStop", 2), cc("Agriculture", 1), cc("HotelMotel", 1)]);
    // A trans woman and a non-binary person in one case are one case in the group
    // (HTCDS 2.0's three codes and ours count together).
    let mut c = s.get_case(&id).unwrap();
    c["people"][0]["gender"] = json!("TransgenderFeminine");
    let mut other = c["people"][0].clone();
    other["gender"] = json!("NonConforming");
    other.as_object_mut().unwrap().remove("id");
    c["people"].as_array_mut().unwrap().push(other);
    s.update_case(&id, c, None).unwrap();
    let grouped = s.fact_sheet(&period()).unwrap();
    assert_eq!(grouped.demographics.transgender_non_conforming, Count::Exact(1));
    assert_eq!(grouped.potential_victims, Count::Exact(after_victims(&after) + 1));
}

fn after_victims(sheet: &FactSheet) -> u64 {
    match sheet.potential_victims {
        Count::Exact(n) => n,
        other => panic!("{other:?}"),
    }
}

/// The running counts are what counting the per-case rows again gives.
pub(crate) fn assert_counts_agree(s: &Store) {
    let rows = |sql: &str| -> Vec<(String, String, String, i64)> {
        let mut st = s.conn().prepare(sql).unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).unwrap().map(Result::unwrap).collect()
    };
    assert_eq!(
        rows("SELECT month, kind, code, n FROM fact_counts ORDER BY 1, 2, 3"),
        rows(
            "SELECT coalesce(substr(r.intake_date, 1, 7), ''), f.kind, f.code, count(*) FROM case_facts f
               JOIN case_report r ON r.case_seq = f.case_seq GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        )
    );
    assert_eq!(
        rows("SELECT month, '', '', cases * 1000 + victims FROM month_counts ORDER BY 1"),
        rows(
            "SELECT coalesce(substr(intake_date, 1, 7), ''), '', '', count(*) * 1000 + sum(victims) FROM case_report
              GROUP BY 1 ORDER BY 1"
        )
    );
    assert_eq!(
        s.conn().query_row("SELECT count(*) FROM case_report", [], |r| r.get::<_, i64>(0)).unwrap(),
        s.conn().query_row("SELECT count(*) FROM cases", [], |r| r.get::<_, i64>(0)).unwrap()
    );
}

#[test]
fn running_counts_follow_saves_edits_and_purges() {
    let (_d, mut s) = crate::store::test_store();
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(s.create_case(crate::sample::generated(i), None).unwrap()["id"].as_str().unwrap().to_string());
    }
    assert_counts_agree(&s);
    // Edits that move a case to another day, change who it involves, or change nothing counted.
    for (i, id) in ids.iter().enumerate().take(12) {
        let mut c = s.get_case(id).unwrap();
        c.as_object_mut().unwrap().remove("notes");
        match i % 3 {
            0 => c["intake_date"] = json!("2024-02-29"),
            1 => c["people"] = json!([victim(Some("Feminine"), Some(17), &["HN", "SV"])]),
            _ => c["status"] = json!("Closed"),
        }
        s.update_case(id, c, None).unwrap();
    }
    assert_counts_agree(&s);
    // Periods (whole months, part-months at either end, within one month,
    // open-ended) and all cases, from the counts, equal the same report read
    // from the rows: the sum over every status of the status-filtered report.
    let statuses: Vec<String> = {
        let mut st = s.conn().prepare("SELECT DISTINCT status FROM case_report").unwrap();
        let r = st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
        r
    };
    let by_rows = |f: &facts::CaseFilter| {
        let mut totals = (0, 0);
        let mut codes: std::collections::BTreeMap<(String, String), i64> = Default::default();
        for status in &statuses {
            let f = facts::CaseFilter { status: Some(status.clone()), ..f.clone() };
            let t = facts::totals(s.conn(), &f).unwrap();
            totals = (totals.0 + t.0, totals.1 + t.1);
            for (kind, list) in facts::breakdowns(s.conn(), &f).unwrap() {
                for (code, n) in list {
                    *codes.entry((kind.clone(), code)).or_default() += n;
                }
            }
        }
        (totals, codes)
    };
    let by_counts = |f: &facts::CaseFilter| {
        let mut codes: std::collections::BTreeMap<(String, String), i64> = Default::default();
        for (kind, list) in facts::breakdowns(s.conn(), f).unwrap() {
            for (code, n) in list {
                assert!(codes.insert((kind.clone(), code), n).is_none(), "a code listed twice");
            }
        }
        (facts::totals(s.conn(), f).unwrap(), codes)
    };
    let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d);
    let mut covered = 0;
    for (from, to) in [
        (None, None),
        (d(2024, 1, 1), d(2024, 12, 31)),
        (d(2023, 11, 20), d(2024, 3, 5)),
        (d(2024, 2, 15), d(2024, 2, 29)),
        (d(2024, 2, 1), d(2024, 2, 29)),
        (None, d(2024, 6, 10)),
        (d(2024, 6, 10), None),
        (d(2019, 1, 31), d(2030, 12, 1)),
    ] {
        let f = facts::CaseFilter { from, to, ..Default::default() };
        let (ours, rows) = (by_counts(&f), by_rows(&f));
        assert_eq!(ours, rows, "{from:?}..{to:?}");
        covered += ours.0 .0;
    }
    assert!(covered > 40, "the periods hold cases: {covered}");
    // A purge takes the cases' share away.
    s.set_policy(&crate::store::policy::Policy { idle_lock_minutes: 5, retention_months: Some(1) }).unwrap();
    s.conn().execute("UPDATE cases SET closed_at = '2020-01-01T00:00:00.000Z' WHERE status = 'Closed'", []).unwrap();
    assert!(s.purge_expired(crate::repositories::cases::today()).unwrap().cases > 0);
    assert_counts_agree(&s);
}
