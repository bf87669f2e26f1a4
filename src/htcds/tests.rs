//! HTCDS 2.0 export and import, checked against the standard's own data dictionary
//! (`tests/fixtures/htcds/HTCDS Field Standards 2.0.ods`, read here with calamine),
//! never against a copy of our tables.

use super::*;
use crate::i18n::Localized;
use crate::store::test_store as store;
use calamine::{open_workbook, Ods, Reader};
use std::collections::HashSet;

/// A field of the v2.0 dictionary: its name with prefix, status, type, and its
/// picklist's value names and labels.
#[derive(Debug, Clone)]
struct Standard {
    name: String,
    deprecated: bool,
    kind: String,
    values: Vec<String>,
    labels: Vec<String>,
}

fn dictionary() -> Vec<Standard> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/htcds/HTCDS Field Standards 2.0.ods");
    let mut book: Ods<_> = open_workbook(path).expect("the v2.0 dictionary");
    let sheet = book.worksheet_range("Field_Standards").expect("its Field_Standards sheet");
    let mut rows = sheet.rows();
    let header: Vec<String> = rows.next().expect("header").iter().map(|c| c.to_string()).collect();
    let at = |name: &str| header.iter().position(|h| h == name).unwrap_or_else(|| panic!("column {name}"));
    let (status, name, kind) = (at("Status"), at("Field Name including Prefix"), at("Field Type"));
    let (values, labels) = (at("Value Names (if picklist)"), at("Value Labels (if picklist)"));
    let list = |s: String| -> Vec<String> {
        s.lines()
            .map(|l| l.trim_matches(|c: char| c.is_whitespace() || c == '\u{a0}').to_string())
            .filter(|l| !l.is_empty())
            .collect()
    };
    let cell = |row: &[calamine::Data], i: usize| row.get(i).map(|c| c.to_string()).unwrap_or_default();
    rows.filter(|r| cell(r, name).contains('_'))
        .map(|r| Standard {
            name: cell(r, name),
            deprecated: cell(r, status) == "DEPRECATED",
            kind: cell(r, kind),
            values: list(cell(r, values)),
            labels: list(cell(r, labels)),
        })
        .collect()
}

fn field<'a>(dict: &'a [Standard], name: &str) -> &'a Standard {
    dict.iter().find(|f| f.name == name).unwrap_or_else(|| panic!("{name} is not in the v2.0 dictionary"))
}

#[test]
fn the_dictionary_is_read_whole() {
    // So that the tests below cannot pass on an empty or misread sheet.
    let dict = dictionary();
    assert!(dict.len() > 80, "{} fields", dict.len());
    let gender = field(&dict, "prs_Gender");
    assert_eq!(gender.values.len(), 6);
    assert_eq!(gender.labels[5], "Not Specified/Unknown");
    assert!(field(&dict, "vic_Vulnerabilities").deprecated);
    assert_eq!(field(&dict, "vic_ForcedLabourIndustry").values.len(), 21);
}

#[test]
fn every_column_is_a_field_of_version_2_in_its_order_or_ours() {
    let dict = dictionary();
    let mut last = 0;
    for c in COLUMNS.iter().filter(|c| !c.name.starts_with("amp_")) {
        let i = dict.iter().position(|f| f.name == c.name).unwrap_or_else(|| panic!("{} is not a v2.0 field", c.name));
        assert!(!dict[i].deprecated, "{} is deprecated in v2.0", c.name);
        assert!(i > last || last == 0, "{} is out of the dictionary's order", c.name);
        last = i;
        // One value where the standard takes one; a list where it takes several.
        if let Cell::Values { single } = c.cell {
            let multi = dict[i].kind.starts_with("Multiselect");
            assert_eq!(single, !multi, "{}: {}", c.name, dict[i].kind);
        }
    }
    let ours: Vec<&str> = COLUMNS.iter().map(|c| c.name).skip_while(|n| !n.starts_with("amp_")).collect();
    assert!(ours.iter().all(|n| n.starts_with("amp_")), "ours come last: {ours:?}");
}

#[test]
fn every_value_we_write_is_a_value_name_of_its_column_and_every_one_reads_back() {
    let dict = dictionary();
    let table = mapping::table();
    assert_eq!(table.len(), mapping::table_lines().count(), "every line of the table in docs/htcds.md parses");
    let mut read_back = HashSet::new();
    for m in table {
        let standard = field(&dict, m.column);
        for v in &m.values {
            assert!(standard.values.iter().any(|s| s == v), "{}: {v} is not a value name of v2.0", m.column);
            // Each value is read back as one code of each field only.
            if m.read() {
                assert!(read_back.insert((m.column, *v, m.field)), "{}: {v} is read back twice", m.column);
            }
        }
        let (codes, _) = codes_of(m.field);
        assert!(
            codes.contains(&m.code) || codes::NON_ANSWERS.contains(&m.code),
            "{}: {} is not one of our codes",
            m.field,
            m.code
        );
    }
    // The standard's every value of the columns we read, by its name and by the
    // label the toolkit's spreadsheet shows, becomes one of our codes.
    for c in COLUMNS.iter().filter(|c| matches!(c.cell, Cell::Values { .. })) {
        let standard = field(&dict, c.name);
        assert_eq!(standard.values.len(), standard.labels.len(), "{}", c.name);
        for (value, label) in standard.values.iter().zip(&standard.labels) {
            let by_name = read_item(c, value);
            assert!(!by_name.is_empty(), "{}: {value} does not read", c.name);
            assert_eq!(read_item(c, label), by_name, "{}: the label {label:?} reads otherwise", c.name);
        }
    }
    // Where our codes are the standard's value names, they are all of them.
    for c in COLUMNS {
        let Cell::Code(_, path) = c.cell else { continue };
        let standard = field(&dict, c.name);
        let (ours, _) = codes_of(path);
        assert_eq!(ours.to_vec(), standard.values, "{}", c.name);
        for (value, label) in standard.values.iter().zip(&standard.labels) {
            assert_eq!(read_item(c, label), [(path, value.clone())], "{}: {label:?}", c.name);
        }
    }
}

/// Every cell of these rows is v2.0's: a value name of its field where it has a
/// picklist, a date where it is a date, an ISO code for citizenship, and never a
/// non-answer in a typed column (our `amp_` columns aside). The (column, value)
/// pairs seen.
fn assert_version_2(dict: &[Standard], rows: &[Map<String, Value>]) -> HashSet<(String, String)> {
    let date = |v: &str| chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok();
    let mut seen = HashSet::new();
    for row in rows {
        for (key, value) in row.iter().filter(|(k, _)| !k.starts_with("amp_")) {
            let values: Vec<String> = match value {
                Value::Array(a) => a.iter().map(|v| v.as_str().unwrap().to_string()).collect(),
                Value::Bool(b) => vec![b.to_string()],
                v => vec![v.as_str().unwrap().to_string()],
            };
            let standard = field(dict, key);
            for v in &values {
                seen.insert((key.clone(), v.clone()));
                match standard.kind.as_str() {
                    "Date" => assert!(date(v), "{key}: {v} is not a date"),
                    "Checkbox" => assert!(v == "true" || v == "false", "{key}: {v}"),
                    _ if !standard.values.is_empty() && !standard.values[0].starts_with("Use ISO") => {
                        assert!(standard.values.contains(v), "{key}: {v} is not a value name of v2.0")
                    }
                    _ if key == "prs_Citizenship" => {
                        assert!(codes::COUNTRY.contains(v), "{key}: {v} is not an ISO 3166 code")
                    }
                    _ => assert!(!codes::NON_ANSWERS.contains(&v.as_str()), "{key}: a non-answer in a typed column"),
                }
            }
        }
    }
    seen
}

/// A store made before HTCDS 2.0 (schema 17, with the 2020 draft's codes) is
/// migrated at unlock and exports v2.0.
#[test]
fn an_old_store_migrates_and_exports_version_2() {
    let (dir, expected) = crate::changelog::tests::fixture();
    let s = Store::open(dir.path(), crate::changelog::tests::PASS).unwrap();
    let mut rows = Vec::new();
    for summary in s.list_cases(&Default::default()).unwrap() {
        let case = match s.get_case(&summary.id) {
            Ok(case) => case,
            // Its restricted case's key was sealed to another laptop's user.
            Err(StoreError::NoCaseKey) => continue,
            Err(e) => panic!("{e:?}"),
        };
        rows.extend(rows_of(&case, None));
    }
    assert!(!rows.is_empty());
    assert_version_2(&dictionary(), &rows);
    // It held the draft's codes: they are the standard's now.
    let old = serde_json::to_string(&expected["cases"]).unwrap();
    assert!(old.contains("\"Female\"") || old.contains("\"Male\""), "the fixture's cases had the draft's genders");
    let genders: Vec<&Value> = rows.iter().filter_map(|r| r.get("prs_Gender")).collect();
    assert!(genders.contains(&&json!("Feminine")), "{genders:?}");
    assert!(genders.iter().all(|g| ["Feminine", "Masculine", "NonSpecifiedUnknown"].contains(&g.as_str().unwrap())));
}

/// A generated case with consent, and with the questions HTCDS 2.0 added answered
/// in turn (each code comes up as the seed grows).
fn generated_with_version_2_fields(seed: u64) -> Value {
    let mut c = crate::sample::generated(seed);
    c["consents"] = consent("Granted", "2099-01-01");
    let i = seed as usize;
    let pick = |set: codes::CodeSet, k: usize| set.codes[k % set.codes.len()];
    c["type_of_exploitation"] = json!([pick(codes::EXPLOITATION, i)]);
    c["recruitment_channel"] = json!([pick(codes::RECRUITMENT_CHANNEL, i)]);
    if matches!(c["trafficking_type"].as_str(), Some("Labour" | "SexAndLabour")) {
        c["forced_labour_industry"] = json!([pick(codes::INDUSTRY, i), pick(codes::INDUSTRY, i + 7)]);
    }
    c["people"][0]["trafficking_status"] = json!(pick(codes::TRAFFICKING_STATUS, i));
    c["people"][0]["trafficking_status_decided_by"] = json!(pick(codes::STATUS_DECIDED_BY, i));
    c
}

fn consent(decision: &str, expires: &str) -> Value {
    json!([{"scope": "ShareWithReferralOrganisation", "decision": decision, "explained_in": "es",
            "given_at": "2026-01-10", "expires_at": expires},
           {"scope": "StoreData", "decision": "Granted", "explained_in": "es", "given_at": "2026-01-10"}])
}

/// Two victims in one case, with every column filled, and a labour case.
fn cases() -> Vec<Value> {
    vec![
        json!({"format": "amparo.case/1", "intake_date": "2026-02-01", "status": "Active", "trafficking_type": "Sex",
               "type_of_sex_exploitation": ["Prostitution", "Pornography"],
               "method_of_recruitment": ["JobOffer"], "recruitment_channel": ["ThroughOnlineSocialNetworks", "Other"],
               "methods_of_control": ["DebtBondage", "PhysicalThreats", "RestrictsMovement"],
               "threat_targets": ["Children"],
               "recruiter_relation": ["IntimatePartner", "Family"],
               "people": [
                   {"role": "PotentialVictim", "given_name": "María José", "family_name": "Pérez, López", "birth_date": "2001-04-05",
                    "gender": "Feminine", "nationality": ["MX", "GT"], "email": "mj@example.org", "safe_phone": "+526561234567",
                    "vulnerabilities": ["Poverty", "Migration"], "trafficking_status": "ActualVictimOfTrafficking",
                    "trafficking_status_decided_by": "CourtOrProsecution"},
                   {"role": "PotentialVictim", "given_name": "Itzel", "gender": "TransgenderNonConforming", "nationality": ["MX"]},
                   {"role": "DependentChild", "given_name": "Beto", "age_estimate": 3}],
               "consents": consent("Granted", "2099-01-01")}),
        json!({"format": "amparo.case/1", "intake_date": "2026-02-02", "status": "Closed", "trafficking_type": "Labour",
               "closure_reason": "Se mudó a otro estado; se canalizó.", "intake_channel": "OrganisationReferral",
               "incoming_referral": {"organisation": "Casa Refugio Tijuana", "date": "2026-01-30",
                                     "reason": "MigrationOrChangeOfLocation", "details": "Llegó con su expediente."},
               "type_of_exploitation": ["ForcedLabour", "ChildLabour", "ForcedBegging"], "recruitment_channel": ["AtWork"],
               "forced_labour_industry": ["A_AgricultureForestryAndFishing", "F_Construction"],
               "people": [{"role": "PotentialVictim", "given_name": "Juan", "gender": "DeclinedToAnswer",
                           "birth_date": "Unknown", "nationality": ["Unknown"], "safe_phone": "DeclinedToAnswer",
                           "email": "Unknown"}],
               "consents": consent("Granted", "2099-01-01")}),
    ]
}

/// A restricted case's personal values are sealed in the store: its supervisor's
/// export opens them, since the other system could do nothing with them sealed.
#[test]
fn a_restricted_case_is_exported_whole_by_those_who_may_open_it() {
    let (_d, mut s) = store();
    let mut c = cases()[1].clone();
    c["restricted"] = json!(true);
    s.create_case(c, None).unwrap();
    let out = s.htcds_export(&Default::default()).unwrap();
    assert_eq!(out.cases, 1);
    assert_eq!(out.rows[0].get("prs_FirstName"), Some(&json!("Juan")), "{:?}", out.rows[0]);
}

#[test]
fn an_export_speaks_version_2_and_leaves_out_cases_without_consent() {
    let dict = dictionary();
    let (_d, mut s) = store();
    let mut ids = Vec::new();
    for c in cases() {
        ids.push(s.create_case(c, None).unwrap()["id"].as_str().unwrap().to_string());
    }
    let e = json!({"name": "Albergue Nazareth", "country": "MX", "subdivision": "MX-BCN", "city": "Tijuana",
                   "services": ["Shelter"], "phone": "+526646800000", "languages": ["es"]});
    let org = s.save_directory_entry(None, e).unwrap().id;
    for service in ["Shelter", "Repatriation"] {
        let new = crate::referral::NewReferral {
            organisation: org.clone(),
            service: service.into(),
            shares_pii: true,
            need: None,
        };
        s.create_referral(&ids[1], &new).unwrap();
    }
    // Many generated cases, so that most of our codes are written at least once.
    for seed in 0..60 {
        s.create_case(generated_with_version_2_fields(seed), None).unwrap();
    }
    // Left out: no consent, a refusal, an expired consent.
    let mut other = cases()[1].clone();
    for consents in [json!([]), consent("Declined", "2099-01-01"), consent("Granted", "2026-01-31")] {
        other["consents"] = consents;
        s.create_case(other.clone(), None).unwrap();
    }
    let out = s.htcds_export(&Default::default()).unwrap();
    assert_eq!((out.cases, out.left_out), (62, 3));
    let seen = assert_version_2(&dict, &out.rows);
    // What the first cases hold, as v2.0 says it.
    let row = |name: &str| out.rows.iter().find(|r| r.get("prs_FirstName") == Some(&json!(name))).unwrap();
    let maria = row("María José");
    assert_eq!(maria["prs_Gender"], "Feminine");
    assert_eq!(maria["prs_Citizenship"], json!(["MX", "GT"]));
    assert_eq!(maria["vic_MethodOfRecruitment"], json!(["ThroughOnlineSocialNetworks", "Other"]));
    assert_eq!(maria["amp_MethodOfRecruitment"], json!(["JobOffer"]), "how: the standard does not ask");
    assert_eq!(
        maria["vic_MethodsOfControl"],
        json!(["PhysicalThreats", "ThreatensChildrenFamily", "DebtBondage", "Other"])
    );
    assert_eq!(maria["amp_MethodsOfControl"], json!(["DebtBondage", "PhysicalThreats", "RestrictsMovement"]));
    assert_eq!(maria["vic_RelationshipToTrafficker"], "Familial", "the first, in the table's order");
    assert_eq!(maria["vic_TypeOfExploitation"], json!(["SexualExploitation"]));
    assert_eq!(maria["con_Consent"], json!(true));
    assert_eq!(row("Itzel")["prs_Gender"], "NonConforming");
    let juan = row("Juan");
    assert_eq!(juan["prs_Gender"], "NonSpecifiedUnknown");
    for typed in ["prs_Birthdate", "prs_Citizenship", "prs_MobilePhone", "prs_Email"] {
        assert!(!juan.contains_key(typed), "a non-answer is never in {typed}: {juan:?}");
    }
    // Forms of exploitation answered: written from that answer alone.
    assert_eq!(juan["vic_TypeOfExploitation"], json!(["ForcedLabour", "ChildLabour", "ForcedBegging"]));
    assert_eq!(juan["vic_ForcedLabourIndustry"], "A_AgricultureForestryAndFishing");
    assert_eq!(juan["vic_MethodOfRecruitment"], json!(["AtWork"]));
    assert_eq!(juan["cas_Status"], "Closed");
    assert_eq!(juan["cas_ReasonForCaseClosure"], "Se mudó a otro estado; se canalizó.");
    assert_eq!(juan["cas_ReferringOrganisation"], "Casa Refugio Tijuana");
    assert_eq!(juan["cas_IncomingReferralDate"], "2026-01-30");
    assert_eq!(juan["cas_ReasonForIncomingReferral"], "MigrationOrChangeOfLocation");
    assert_eq!(juan["cas_IncomingReferralDetails"], "Llegó con su expediente.");
    assert_eq!(maria["vic_TraffickingStatus"], "ActualVictimOfTrafficking");
    assert_eq!(maria["vic_TraffickingStatusDecisionMakingOrg"], "CourtOrProsecution");
    assert!(!row("Itzel").contains_key("vic_TraffickingStatus"));
    assert_eq!(juan["cas_CaseOwner"], "Ana");
    assert_eq!(juan["cas_ReferredOrganisation"], "Albergue Nazareth", "the latest referral");
    assert_eq!(juan["cas_ReasonForOutgoingReferral"], "MigrationOrChangeOfLocation");
    let today = crate::repositories::cases::today().format("%Y-%m-%d").to_string();
    assert_eq!(juan["cas_OutgoingReferralDate"], json!(today));
    assert!(!maria.contains_key("cas_ReferredOrganisation"));
    assert!(
        out.rows.iter().all(|r| r.get("prs_FirstName") != Some(&json!("Beto"))),
        "a dependent child is no victim row"
    );
    // Most of what the table writes was written (the generated cases are varied).
    let written: HashSet<(&str, &str)> =
        mapping::table().iter().filter(|m| m.written()).flat_map(|m| m.values.iter().map(|v| (m.column, *v))).collect();
    let hit = written.iter().filter(|(c, v)| seen.contains(&(c.to_string(), v.to_string()))).count();
    assert!(hit * 10 >= written.len() * 7, "{hit} of {} values written", written.len());

    let csv = out.to_csv().unwrap();
    let header = csv.lines().next().unwrap();
    assert_eq!(header, COLUMNS.iter().map(|c| c.name).collect::<Vec<_>>().join(","));
    assert!(csv.contains("\"Pérez, López\""), "quoted: {csv}");
    assert!(csv.contains(",MX;GT,"));
    assert!(csv.contains(",TRUE,"));
    let json: Value = serde_json::from_str(&out.to_json()).unwrap();
    assert_eq!(json[0]["vic_TypeOfSexExploitation"], json!(["Prostitution", "Pornography"]));
}

/// The rows of the cases a store holds, as an export would write them, without
/// the columns an import does not read back.
fn rows_read_back(s: &Store, numbers: &[&str]) -> Vec<Map<String, Value>> {
    let mut out = Vec::new();
    for n in numbers {
        let mut case = s.get_case_by_number(n).unwrap();
        case["case_number"] = json!(n);
        out.extend(rows_of(&case, None));
    }
    for row in &mut out {
        row.retain(|k, _| column_named(k).is_some_and(is_read));
    }
    out
}

#[test]
fn export_then_import_round_trips_with_and_without_our_columns() {
    let (_a, mut a) = store();
    for c in cases() {
        a.create_case(c, None).unwrap();
    }
    for seed in 100..140 {
        a.create_case(generated_with_version_2_fields(seed), None).unwrap();
    }
    let exported = a.htcds_export(&Default::default()).unwrap();
    let mut numbers: Vec<&str> = exported.rows.iter().map(|r| r["amp_CaseNumber"].as_str().unwrap()).collect();
    numbers.dedup();
    assert_eq!(numbers.len(), 42);
    let csv = exported.to_csv().unwrap();
    let (_b, mut b) = store();
    let r = b.htcds_import_csv(csv.as_bytes()).unwrap();
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    assert_eq!(r.imported, 42);
    assert_eq!(r.ignored, ["cas_CaseOwner", "con_Consent"], "the columns not read that hold something");
    let mut expected = exported.rows.clone();
    for row in &mut expected {
        row.retain(|k, _| column_named(k).is_some_and(is_read));
    }
    assert_eq!(rows_read_back(&b, &numbers), expected, "our columns bring every value back");

    // Another system keeps only the standard's columns: what they say comes back
    // the same (export → import → export), though our detail is gone.
    let standard_only: Vec<usize> =
        COLUMNS.iter().enumerate().filter(|(_, c)| !c.name.starts_with("amp_")).map(|(i, _)| i).collect();
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    w.write_record(standard_only.iter().map(|i| COLUMNS[*i].name)).unwrap();
    for rec in reader.records() {
        let rec = rec.unwrap();
        w.write_record(standard_only.iter().map(|i| &rec[*i])).unwrap();
    }
    let plain = String::from_utf8(w.into_inner().unwrap()).unwrap();
    let (_c, mut c) = store();
    let r = c.htcds_import_csv(plain.as_bytes()).unwrap();
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    let cases = c.list_cases(&Default::default()).unwrap();
    assert_eq!(cases.len(), exported.rows.len(), "without our case numbers, each row is a case of its own");
    let mut again = Vec::new();
    for case in &cases {
        let full = c.get_case(&case.id).unwrap();
        again.extend(rows_of(&full, None));
    }
    let standard = |rows: Vec<Map<String, Value>>| -> Vec<Map<String, Value>> {
        let mut rows: Vec<_> = rows
            .into_iter()
            .map(|mut r| {
                r.retain(|k, _| !k.starts_with("amp_") && column_named(k).is_some_and(is_read));
                r
            })
            .collect();
        rows.sort_by_key(|r| serde_json::to_string(r).unwrap());
        rows
    };
    assert_eq!(standard(again), standard(exported.rows.clone()));
}

#[test]
fn import_reads_labels_our_old_columns_and_names_every_bad_cell() {
    let (_d, mut s) = store();
    let bad = "amp_CaseNumber,cas_Status,prs_FirstName,prs_Gender,prs_MobilePhone,vic_MethodOfRecruitment,Notas\n\
               MX1-2026-0001,Active,Ana,F,,Through online social networks,x\n\
               MX1-2026-0001,Active,Eva,Feminine,656 123,,y\n\
               ,Archived,Sol,Transgender Masculine,,At a place of business,\n";
    let r = s.htcds_import_csv(bad.as_bytes()).unwrap();
    assert_eq!(r.imported, 0);
    let named: Vec<(usize, &str, &str)> =
        r.rejected.iter().map(|c| (c.line, c.column.as_str(), c.issue.error.i18n_key())).collect();
    assert_eq!(
        named,
        [
            (2, "prs_Gender", "error.field.unknown_code"),
            (3, "prs_MobilePhone", "error.field.phone"),
            (4, "cas_Status", "error.field.unknown_code"),
        ]
    );
    assert_eq!(r.ignored, ["Notas"], "a column not ours is named, not refused");
    assert!(s.list_cases(&Default::default()).unwrap().is_empty(), "nothing written");

    let good =
        bad.replace(",F,", ",Not Specified/Unknown,").replace("656 123", "+52656123456").replace("Archived", "Closed");
    let r = s.htcds_import_csv(good.as_bytes()).unwrap();
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    assert_eq!(r.imported, 2);
    let one = s.get_case_by_number("MX1-2026-0001").unwrap();
    assert_eq!(one["people"].as_array().unwrap().len(), 2);
    assert_eq!(one["people"][0]["gender"], "Unknown");
    assert_eq!(one["recruitment_channel"], json!(["ThroughOnlineSocialNetworks"]));
    let cases = s.list_cases(&Default::default()).unwrap();
    let sol = s.get_case(&cases.iter().find(|c| c.case_number != "MX1-2026-0001").unwrap().id).unwrap();
    assert_eq!(sol["people"][0]["gender"], "TransgenderMasculine");
    assert_eq!(sol["recruitment_channel"], json!(["AtAPlaceOfBusiness"]));

    // The export before v2.0: its column names, our codes in its cells.
    let old = "cas_CaseNumber,cas_Status,prs_FirstName,prs_Gender,prs_Nationality,vic_MethodOfRecruitment,\
               vic_MethodsOfControl,vic_TypeOfLabourExploitation,vic_Vulnerabilities\n\
               TX3-2025-0007,Active,Lupe,Female,MX;GT,JobOffer;Internet,Threats;UsesChildren,Agriculture;Begging,Caste\n";
    let r = s.htcds_import_csv(old.as_bytes()).unwrap();
    assert!(r.rejected.is_empty() && r.ignored.is_empty(), "{r:?}");
    let lupe = s.get_case_by_number("TX3-2025-0007").unwrap();
    assert_eq!(lupe["people"][0]["nationality"], json!(["MX", "GT"]));
    // The draft's codes, as they are now.
    assert_eq!(lupe["people"][0]["gender"], "Feminine");
    assert_eq!(lupe["method_of_recruitment"], json!(["JobOffer"]));
    assert_eq!(lupe["recruitment_channel"], json!(["ThroughOnlineSocialNetworks"]));
    assert_eq!(lupe["methods_of_control"], json!(["PhysicalThreats", "ThreatensChildrenFamily"]));
    assert_eq!(lupe["forced_labour_industry"], json!(["A_AgricultureForestryAndFishing"]));
    assert_eq!(lupe["type_of_exploitation"], json!(["ForcedBegging"]));
    assert_eq!(lupe["trafficking_type"], "Labour", "implied by the exploitation");
    assert_eq!(lupe["people"][0]["vulnerabilities"], json!(["SocialGroup"]));

    let r = s.htcds_import_csv("Nombre,Edad\nAna,30\n".as_bytes()).unwrap();
    assert_eq!((r.rejected[0].line, r.rejected[0].issue.error.i18n_key()), (1, "error.field.not_htcds"));
    // Text that is not UTF-8 (saved in an older encoding): its line is named.
    let latin1 = b"cas_Status,prs_FirstName\nActive,Mar\xeda\n";
    let r = s.htcds_import_csv(&latin1[..]).unwrap();
    assert_eq!((r.rejected[0].line, r.rejected[0].issue.error.i18n_key()), (2, "error.field.not_utf8"));
    // A file that only says it is a spreadsheet.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("casos.xlsx");
    std::fs::write(&fake, "cas_Status\nActive\n").unwrap();
    let r = s.htcds_import_file(fake.to_str().unwrap()).unwrap();
    assert_eq!(r.rejected[0].issue.error.i18n_key(), "error.field.unreadable");
}

#[test]
fn rows_of_one_case_that_disagree_are_named_by_line_never_dropped() {
    let (_d, mut s) = store();
    let sheet = "amp_CaseNumber,cas_Status,prs_FirstName,vic_TypeOfExploitation,vic_MethodsOfControl\n\
                 MX1-2026-0001,Active,Ana,SexualExploitation,Threatens children/family\n\
                 MX1-2026-0001,,Eva,SexualExploitation,\n\
                 MX1-2026-0001,Closed,Sol,ForcedLabour,Threatens children/family\n";
    let r = s.htcds_import_csv(sheet.as_bytes()).unwrap();
    assert_eq!(r.imported, 0);
    let named: Vec<(usize, &str, String)> = r
        .rejected
        .iter()
        .map(|c| (c.line, c.column.as_str(), c.issue.error.args().iter().map(|(_, v)| v.clone()).collect()))
        .collect();
    assert_eq!(
        named,
        [(4, "cas_Status", "2".to_string()), (4, "vic_TypeOfExploitation", "2".to_string())],
        "an empty cell agrees; a different one is named, with the line it differs from"
    );
    let r = s.htcds_import_csv(sheet.replace("Closed,Sol,ForcedLabour", ",Sol,").as_bytes()).unwrap();
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    let case = s.get_case_by_number("MX1-2026-0001").unwrap();
    assert_eq!(case["people"].as_array().unwrap().len(), 3);
    assert_eq!(case["methods_of_control"], json!(["ThreatensChildrenFamily"]));
    assert_eq!(case["trafficking_type"], "Sex");
}

/// A sheet of a workbook among the standard's files, as rows of text.
fn fixture_sheet(file: &str, sheet: &str) -> Vec<Vec<String>> {
    use calamine::{open_workbook_auto, Reader};
    let path = format!("{}/tests/fixtures/htcds/{file}", env!("CARGO_MANIFEST_DIR"));
    let mut book = open_workbook_auto(path).expect("the toolkit's file");
    let range = book.worksheet_range(sheet).expect("its sheet");
    // From A1, whatever cell the range starts at, so columns keep their letters.
    let (top, left) = range.start().map_or((0, 0), |(r, c)| (r as usize, c as usize));
    let mut rows = vec![Vec::new(); top];
    for r in range.rows() {
        let mut row = vec![String::new(); left];
        row.extend(r.iter().map(|c| c.to_string()));
        rows.push(row);
    }
    rows
}

/// The toolkit's spreadsheet filled as an organisation fills it: its two header
/// rows as they are, its row numbers, every label of its validation sheet used
/// at least once, country names, and the numbered empty rows below. `cell` says
/// what goes under each field name of its first row.
fn toolkit_rows(rows: usize) -> Vec<Vec<String>> {
    let sheet = fixture_sheet("HTCDS Excel Spreadsheet single select with validation v2.0.xlsx", "Case Sheet");
    let validation = fixture_sheet("HTCDS Excel Spreadsheet single select with validation v2.0.xlsx", "validation");
    let lookup = |title: &str| -> Vec<String> {
        let col = validation[2].iter().position(|h| h == title).unwrap_or_else(|| panic!("validation: {title}"));
        validation.iter().skip(3).filter_map(|r| r.get(col).filter(|v| !v.is_empty()).cloned()).collect()
    };
    let countries: Vec<String> = {
        let (codes, names) = (lookup("Country Code"), lookup("Country"));
        codes.iter().zip(names).filter(|(c, _)| codes::COUNTRY.contains(c)).map(|(_, n)| n).collect()
    };
    let pick = |list: &[String], i: usize| list[i % list.len()].clone();
    let (names, labels) = (sheet[0].clone(), sheet[1].clone());
    let mut out = vec![names.clone(), labels];
    for i in 0..rows {
        let mut row = vec![String::new(); names.len()];
        row[0] = (i + 1).to_string();
        for (j, name) in names.iter().enumerate() {
            row[j] = match name.as_str() {
                "prs_FirstName" => format!("Persona {i}"),
                "prs_Gender" => pick(&lookup("Gender"), i),
                "prs_Citizenship" => pick(&countries, i),
                "prs_Birthdate" if i % 3 == 0 => format!("{}-0{}-1{}", 1980 + i, 1 + i % 9, i % 10),
                "vic_MethodOfRecruitment" => pick(&lookup("Method of Recruitment"), i),
                "vic_MethodsOfControl" => pick(&lookup("Methods of Control"), i),
                "vic_TypeOfExploitation" => pick(&lookup("Type of Exploitation"), i),
                "vic_ForcedLabourIndustry" => pick(&lookup("Forced Labour Industry"), i),
                "vic_TypeOfSexExploitation" => pick(&lookup("Type of Sex Exploitation"), i),
                "cas_Status" => pick(&lookup("Status"), i),
                "cas_ReasonForCaseClosure" if i % 4 >= 2 => "Se cerró a petición de la persona".into(),
                "vic_TraffickingStatus" => pick(&lookup("Trafficking Status"), i),
                // The toolkit's own spelling of the column.
                "vic_TraffickinStatusDecisionMakingOrg" => {
                    pick(&lookup("Trafficking Status Decision Making Organization"), i)
                }
                "cas_ReferringOrganisation" if i % 2 == 0 => "Fiscalía de Chihuahua".into(),
                "cas_IncomingReferralDate" if i % 2 == 0 => "2026-01-15".into(),
                "cas_ReasonForIncomingReferral" if i % 2 == 0 => pick(&lookup("Reason for Incoming Referral"), i / 2),
                "cas_IncomingReferralDetails" if i % 2 == 0 => "Llegó con oficio".into(),
                _ => std::mem::take(&mut row[j]),
            };
        }
        out.push(row);
    }
    // The toolkit numbers rows that nobody filled.
    for i in rows..rows + 5 {
        let mut row = vec![String::new(); names.len()];
        row[0] = (i + 1).to_string();
        out.push(row);
    }
    out
}

fn csv_of(rows: &[Vec<String>], delimiter: u8) -> String {
    let mut w = csv::WriterBuilder::new().delimiter(delimiter).flexible(true).from_writer(Vec::new());
    for r in rows {
        w.write_record(r).unwrap();
    }
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

#[test]
fn the_toolkits_spreadsheet_filled_with_its_labels_imports_as_csv_and_as_the_xlsx_itself() {
    let rows = toolkit_rows(22);
    // Saved as CSV by a spreadsheet in Spanish: semicolons between cells.
    let (_d, mut s) = store();
    let r = s.htcds_import_csv(csv_of(&rows, b';').as_bytes()).unwrap();
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    assert_eq!(r.imported, 22, "one case a row; the label row and the empty numbered rows are no cases");
    assert!(r.ignored.is_empty(), "{:?}", r.ignored);
    let cases = s.list_cases(&Default::default()).unwrap();
    let all: Vec<Value> = cases.iter().map(|c| s.get_case(&c.id).unwrap()).collect();
    let person = |i: usize| {
        let name = format!("Persona {i}");
        all.iter().find(|c| c["people"][0]["given_name"] == json!(name)).unwrap_or_else(|| panic!("{name}"))
    };
    // Labels became our codes; a country's name its code.
    assert_eq!(person(0)["people"][0]["gender"], "Feminine");
    assert_eq!(person(5)["people"][0]["gender"], "Unknown", "Not specified/unknown");
    assert_eq!(person(1)["methods_of_control"], json!(["ThreatsLawEnforcement"]));
    assert_eq!(
        person(19)["forced_labour_industry"],
        json!(["T_ActivitiesOfHouseholdsAsEmployers"]),
        "by its full title"
    );
    assert_eq!(person(0)["people"][0]["nationality"], json!(["AF"]), "Afghanistan, by its name");
    assert_eq!(person(1)["people"][0]["nationality"], json!(["AX"]), "Åland Islands, by its name");
    assert_eq!(person(0)["people"][0]["trafficking_status"], "PossibleVictimOfTrafficking");
    assert_eq!(person(0)["people"][0]["trafficking_status_decided_by"], "Police");
    assert_eq!(person(3)["people"][0]["trafficking_status_decided_by"], "NonPoliceGovernmentalOrganization");
    assert_eq!(person(2)["closure_reason"], "Se cerró a petición de la persona");
    let referred = person(2);
    assert_eq!(referred["intake_channel"], "OrganisationReferral", "a case referred to us came by referral");
    assert_eq!(referred["incoming_referral"]["organisation"], "Fiscalía de Chihuahua");
    assert_eq!(referred["incoming_referral"]["reason"], "MigrationOrChangeOfLocation");
    assert_eq!(referred["incoming_referral"]["date"], "2026-01-15");

    // The same rows in the .xlsx itself.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("casos.xlsx");
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet().set_name("Case Sheet").unwrap();
    for (i, row) in rows.iter().enumerate() {
        for (j, cell) in row.iter().enumerate().filter(|(_, c)| !c.is_empty()) {
            sheet.write_string(i as u32, j as u16, cell).unwrap();
        }
    }
    book.add_worksheet().set_name("validation").unwrap().write_string(0, 0, "Validation Lookups").unwrap();
    book.save(&path).unwrap();
    let (_e, mut t) = store();
    let r = t.htcds_import_file(path.to_str().unwrap()).unwrap();
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    assert_eq!(r.imported, 22);
    // A bad cell is named by the spreadsheet's own row number.
    let mut bad = rows.clone();
    let gender = bad[0].iter().position(|n| n == "prs_Gender").unwrap();
    bad[6][gender] = "Mujer".into();
    let r = t.htcds_import_csv(csv_of(&bad, b',').as_bytes()).unwrap();
    let named: Vec<(usize, &str)> = r.rejected.iter().map(|c| (c.line, c.column.as_str())).collect();
    assert_eq!(named, [(7, "prs_Gender")]);
}

#[test]
fn a_kobotoolbox_export_of_the_toolkits_xlsform_imports() {
    let survey = fixture_sheet("htcds_xlsform.xlsx", "survey");
    let choices = fixture_sheet("htcds_xlsform.xlsx", "choices");
    let names_of =
        |list: &str| -> Vec<String> { choices.iter().filter(|c| c[0] == list).map(|c| c[1].clone()).collect() };
    // Kobo's own columns around the form's, and a 0/1 column for each choice.
    let mut header: Vec<String> = vec!["start".into(), "end".into()];
    let fields: Vec<(String, String)> = survey
        .iter()
        .skip(1)
        .filter(|r| r[0].starts_with("select") || r[0] == "text" || r[0] == "date")
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    header.extend(fields.iter().map(|(_, n)| n.clone()));
    let control = names_of("methodsofcontrol");
    header.extend(control.iter().map(|c| format!("vic_Methods_of_Control/{}", c.trim())));
    header.extend(["_id", "_uuid", "_submission_time", "_index"].map(String::from));
    let mut rows = vec![header.clone()];
    for i in 0..16 {
        let mut row = Vec::new();
        row.push("2026-03-14T10:00:00.000-06:00".to_string());
        row.push("2026-03-14T10:20:00.000-06:00".to_string());
        for (kind, name) in &fields {
            let list = kind.split_whitespace().nth(1).unwrap_or_default();
            let names = names_of(list);
            row.push(match (kind.as_str(), name.as_str()) {
                ("text", "prs_First_Name") => format!("Persona {i}"),
                ("text", _) | ("date", _) => String::new(),
                (_, "prs_Citizenship") => ["MX", "GT", "HN"][i % 3].to_string(),
                // The toolkit's own choice names, as Kobo writes them ("DebtBondage ").
                (k, _) if k.starts_with("select_multiple") => {
                    format!("{} {}", names[i % names.len()], names[(i + 3) % names.len()])
                }
                _ => names[i % names.len()].clone(),
            });
        }
        row.extend(control.iter().enumerate().map(|(j, _)| u8::from(j == i % control.len()).to_string()));
        row.extend([i.to_string(), format!("uuid-{i}"), "2026-03-14T16:20:00".into(), (i + 1).to_string()]);
        rows.push(row);
    }
    let (_d, mut s) = store();
    let r = s.htcds_import_csv(csv_of(&rows, b';').as_bytes()).unwrap();
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    assert_eq!(r.imported, 16);
    assert_eq!(r.ignored, ["start", "end", "con_Consent"], "Kobo's own columns are not named");
    let cases = s.list_cases(&Default::default()).unwrap();
    let first = cases.iter().map(|c| s.get_case(&c.id).unwrap()).find(|c| c["people"][0]["given_name"] == "Persona 0");
    let first = first.unwrap();
    // Space-separated value names: PhysicalThreats and DebtBondage.
    assert_eq!(first["methods_of_control"], json!(["PhysicalThreats", "DebtBondage"]));
    assert_eq!(first["people"][0]["gender"], "Feminine");
    assert_eq!(first["people"][0]["trafficking_status"], "PossibleVictimOfTrafficking");
}

#[test]
fn files_larger_than_any_case_sheet_are_refused_before_they_are_read() {
    let (_d, mut s) = store();
    let endless = std::io::Read::take(std::io::repeat(b'a'), sheet::FILE_MAX + 10);
    let r = s.htcds_import_csv(endless).unwrap();
    assert_eq!(r.rejected[0].issue.error.i18n_key(), "error.field.file_too_large");
    // A spreadsheet whose archive unpacks to far more than it holds.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.xlsx");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("xl/worksheets/sheet1.xml", options).unwrap();
    std::io::Write::write_all(&mut zip, &vec![b' '; 8 << 20]).unwrap();
    zip.finish().unwrap();
    let r = s.htcds_import_file(path.to_str().unwrap()).unwrap();
    assert_eq!(r.rejected[0].issue.error.i18n_key(), "error.field.file_too_large");
    assert!(s.list_cases(&Default::default()).unwrap().is_empty());
}

#[test]
fn every_country_of_ours_reads_back_from_the_toolkits_name_for_it() {
    let validation = fixture_sheet("HTCDS Excel Spreadsheet single select with validation v2.0.xlsx", "validation");
    let col = |title: &str| validation[2].iter().position(|h| h == title).unwrap();
    let (code, name) = (col("Country Code"), col("Country"));
    let mut ours = 0;
    for row in validation.iter().skip(3).filter(|r| r.len() > name && codes::COUNTRY.contains(&r[code])) {
        assert_eq!(country_code(&row[name]), row[code], "{}", row[name]);
        assert_eq!(country_code(&row[code].to_lowercase()), row[code]);
        ours += 1;
    }
    assert_eq!(ours, codes::COUNTRY.codes.len(), "every one of our countries is in the toolkit's list");
    assert_eq!(country_code("méxico"), "MX");
    assert_eq!(country_code("Atlantis"), "Atlantis", "left for the form's rules to refuse by name");
}

#[test]
fn our_answer_to_the_standards_own_question_is_written_alone_else_what_stands_in_for_it() {
    let column = |name: &str| COLUMNS.iter().find(|c| c.name == name).unwrap();
    let person = json!({"role": "PotentialVictim"});
    let cell = |case: Value, name: &str| cell_of(column(name), &case, &person, None);
    let older = json!({"trafficking_type": "Labour"});
    assert_eq!(cell(older.clone(), "vic_TypeOfExploitation"), Some(json!(["ForcedLabour"])));
    assert_eq!(cell(older.clone(), "vic_ForcedLabourIndustry"), None);
    assert_eq!(cell(older.clone(), "vic_MethodOfRecruitment"), None, "how is not where");
    let mut answered = older.clone();
    answered["type_of_exploitation"] = json!(["Servitude"]);
    answered["forced_labour_industry"] = json!(["C_Manufacturing", "T_ActivitiesOfHouseholdsAsEmployers"]);
    answered["recruitment_channel"] = json!(["ThroughFriendsOrSocialEvents"]);
    assert_eq!(cell(answered.clone(), "vic_TypeOfExploitation"), Some(json!(["Servitude"])));
    assert_eq!(cell(answered.clone(), "vic_ForcedLabourIndustry"), Some(json!("C_Manufacturing")));
    assert_eq!(cell(answered.clone(), "vic_MethodOfRecruitment"), Some(json!(["ThroughFriendsOrSocialEvents"])));
    // A non-answer is no answer.
    let mut unknown = older;
    unknown["type_of_exploitation"] = json!(["Unknown"]);
    assert_eq!(cell(unknown, "vic_TypeOfExploitation"), Some(json!(["ForcedLabour"])));
}

#[test]
fn the_help_names_in_both_languages_the_fields_each_column_is_made_from() {
    let help = column_help();
    assert_eq!(help.len(), COLUMNS.len());
    for c in &help {
        assert!(!c.fields.is_empty(), "{}", c.column);
        for key in &c.fields {
            for lang in codes::UI_LOCALES {
                assert!(crate::i18n::try_t(lang, key).is_some(), "{lang}: {key} for {}", c.column);
            }
        }
    }
    let of = |name: &str| &help.iter().find(|c| c.column == name).unwrap().fields;
    assert_eq!(of("prs_Gender"), &["field.people.gender"]);
    assert_eq!(of("cas_IncomingReferralDate"), &["field.incoming_referral.date"]);
    assert_eq!(of("vic_TypeOfExploitation"), &["field.type_of_exploitation", "field.trafficking_type"]);
}

/// The export takes the period and filters the fact sheet takes.
#[test]
fn an_export_covers_the_period_and_filters_of_the_fact_sheet() {
    let (_d, mut s) = store();
    for c in cases() {
        s.create_case(c, None).unwrap();
    }
    let names = |q: crate::report::ReportQuery| -> Vec<String> {
        let out = s.htcds_export(&q).unwrap();
        out.rows.iter().map(|r| r["prs_FirstName"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(names(Default::default()).len(), 3);
    let closed = crate::report::ReportQuery { status: Some("Closed".into()), ..Default::default() };
    assert_eq!(names(closed), ["Juan"]);
    let day = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok();
    let first = crate::report::ReportQuery { to: day("2026-02-01"), ..Default::default() };
    assert_eq!(names(first), ["María José", "Itzel"]);
    let backwards = crate::report::ReportQuery { from: day("2026-03-01"), to: day("2026-02-01"), ..Default::default() };
    let Err(StoreError::Invalid(e)) = s.htcds_export(&backwards) else { panic!("a period ending before it starts") };
    assert_eq!(e.paths(), ["to"]);
}
