//! HTCDS export and import: only the standard's field names and picklist values,
//! only with consent in force, and export → import → export unchanged.

use super::*;
use crate::i18n::Localized;
use std::collections::HashSet;

/// The standard's fields we write, with their picklists' value names, from its
/// field reference (github.com/UNMigration/HTCDS, "HTCDS Field Reference.md") and
/// DOMAIN.md. `None`: free text or a date; `Some(&[])`: ISO 3166 two-letter codes.
const STANDARD: &[(&str, Option<&[&str]>)] = &[
    ("cas_CaseNumber", None),
    ("cas_Status", Some(&["Active", "FollowUp", "Closed", "ClosedReferred"])),
    ("prs_FirstName", None),
    ("prs_SecondName", None),
    ("prs_Birthdate", None),
    ("prs_Gender", Some(&["Male", "Female", "TransgenderNonConforming", "Unknown"])),
    ("prs_Nationality", Some(&[])),
    ("prs_Email", None),
    ("prs_MobilePhone", None),
    (
        "vic_MethodOfRecruitment",
        Some(&[
            "Abduction",
            "EducationalFacility",
            "Familial",
            "Internet",
            "InternationalMarriageBroker",
            "IntimatePartnerOrMarriageProposition",
            "JobOffer",
            "PosingAsBenefactor",
            "PublicArea",
            "OfferOfAccommodation",
            "Shelter",
            "SmugglingRansom",
            "Work",
            "Other",
            "Unknown",
        ]),
    ),
    (
        "vic_MethodsOfControl",
        Some(&[
            "DebtBondage",
            "TakesEarnings",
            "RestrictsFinancialAccess",
            "Threats",
            "PsychologicalAbuse",
            "PhysicalAbuse",
            "SexualAbuse",
            "FalsePromises",
            "PsychoactiveSubstances",
            "RestrictsMovement",
            "RestrictsMedicalCare",
            "ExcessiveWorkingHours",
            "UsesChildren",
            "ThreatOfLawEnforcement",
            "WithholdsNecessities",
            "WithholdsDocuments",
            "Other",
        ]),
    ),
    (
        "vic_TypeOfLabourExploitation",
        Some(&[
            "Agriculture",
            "Aquafarming",
            "Begging",
            "Construction",
            "DomesticWork",
            "Hospitality",
            "IllicitActivities",
            "Manufacturing",
            "MiningOrDrilling",
            "Peddling",
            "Transportation",
            "Other",
        ]),
    ),
    (
        "vic_TypeOfSexExploitation",
        Some(&["Prostitution", "Pornography", "RemoteInteractiveServices", "PrivateSexualServices"]),
    ),
    (
        "vic_Vulnerabilities",
        Some(&[
            "Addiction",
            "Caste",
            "Discrimination",
            "Poverty",
            "DisabilityAndPhysicalHealth",
            "MentalHealth",
            "Migration",
            "Homelessness",
            "AbuseSocialMedia",
            "AbusePhysical",
            "Education",
            "WorkEnvironment",
        ]),
    ),
];

use crate::store::test_store as store;

fn consent(decision: &str, expires: &str) -> Value {
    json!([{"scope": "ShareWithReferralOrganisation", "decision": decision, "explained_in": "es",
            "given_at": "2026-01-10", "expires_at": expires}])
}

/// Two victims in one case, with every column filled, and a labour case.
fn cases() -> Vec<Value> {
    vec![
        json!({"format": "amparo.case/1", "intake_date": "2026-02-01", "status": "Active", "trafficking_type": "Sex",
               "type_of_sex_exploitation": ["Prostitution", "Pornography"],
               "method_of_recruitment": ["JobOffer", "IntimatePartnerOrMarriageProposition"],
               "methods_of_control": ["DebtBondage", "WithholdsDocuments"],
               "people": [
                   {"role": "PotentialVictim", "given_name": "María José", "family_name": "Pérez, López", "birth_date": "2001-04-05",
                    "gender": "Female", "nationality": ["MX", "GT"], "email": "mj@example.org", "safe_phone": "+526561234567",
                    "vulnerabilities": ["Poverty", "Migration"]},
                   {"role": "PotentialVictim", "given_name": "Itzel", "gender": "TransgenderNonConforming", "nationality": ["MX"]},
                   {"role": "DependentChild", "given_name": "Beto", "age_estimate": 3}],
               "consents": consent("Granted", "2099-01-01")}),
        json!({"format": "amparo.case/1", "intake_date": "2026-02-02", "status": "FollowUp", "trafficking_type": "Labour",
               "type_of_labour_exploitation": ["Agriculture"],
               "people": [{"role": "PotentialVictim", "given_name": "Juan", "gender": "Male", "nationality": ["HN"]}],
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
    let out = s.htcds_export().unwrap();
    assert_eq!(out.cases, 1);
    assert_eq!(out.rows[0].get("prs_FirstName"), Some(&json!("Juan")), "{:?}", out.rows[0]);
}

#[test]
fn only_the_standards_names_and_values_and_only_with_consent() {
    let (_d, mut s) = store();
    for c in cases() {
        s.create_case(c, None).unwrap();
    }
    // Left out: no consent, a refusal, an expired consent.
    let mut other = cases()[1].clone();
    for consents in [json!([]), consent("Declined", "2099-01-01"), consent("Granted", "2026-01-31")] {
        other["consents"] = consents;
        s.create_case(other.clone(), None).unwrap();
    }
    let out = s.htcds_export().unwrap();
    assert_eq!((out.cases, out.left_out, out.rows.len()), (2, 3, 3), "two victims in the first case");
    let names: HashSet<&str> = STANDARD.iter().map(|(n, _)| *n).collect();
    let countries: HashSet<&str> = crate::form::codes::COUNTRY.codes.iter().copied().collect();
    for row in &out.rows {
        for (key, value) in row {
            assert!(names.contains(key.as_str()), "{key} is not an HTCDS field name");
            let picklist = STANDARD.iter().find(|(n, _)| n == key).unwrap().1;
            let values: Vec<&str> = match value {
                Value::Array(a) => a.iter().map(|v| v.as_str().unwrap()).collect(),
                v => vec![v.as_str().unwrap()],
            };
            match picklist {
                Some([]) => assert!(values.iter().all(|v| v.len() == 2 && countries.contains(v)), "{key}: {values:?}"),
                Some(list) => assert!(values.iter().all(|v| list.contains(v)), "{key}: {values:?} not in the picklist"),
                None => {}
            }
        }
    }
    assert!(
        out.rows.iter().all(|r| r.get("prs_FirstName") != Some(&json!("Beto"))),
        "a dependent child is no victim row"
    );
    let csv = out.to_csv().unwrap();
    let header = csv.lines().next().unwrap();
    assert_eq!(header, COLUMNS.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(","));
    assert!(csv.contains("\"Pérez, López\""), "quoted: {csv}");
    assert!(csv.contains(",MX;GT,"));
    let json: Value = serde_json::from_str(&out.to_json()).unwrap();
    assert_eq!(json[0]["vic_MethodsOfControl"], json!(["DebtBondage", "WithholdsDocuments"]));
}

#[test]
fn export_then_import_round_trips() {
    let (_a, mut a) = store();
    for c in cases() {
        a.create_case(c, None).unwrap();
    }
    let exported = a.htcds_export().unwrap();
    let csv = exported.to_csv().unwrap();
    let (_b, mut b) = store();
    let r = b.htcds_import_csv(csv.as_bytes()).unwrap();
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    assert_eq!(r.imported, 2);
    // The same rows, read back from the cases the import made (they carry no
    // consent yet, so they are read directly rather than exported).
    let mut again = Vec::new();
    let mut numbers: Vec<&Value> = exported.rows.iter().map(|r| &r["cas_CaseNumber"]).collect();
    numbers.dedup();
    assert_eq!(numbers.len(), 2);
    for n in numbers {
        let mut case = b.get_case_by_number(n.as_str().unwrap()).unwrap();
        case["case_number"] = n.clone();
        again.extend(rows_of(&case));
    }
    assert_eq!(again, exported.rows);
    let imported = b.get_case_by_number(exported.rows[0]["cas_CaseNumber"].as_str().unwrap()).unwrap();
    assert_eq!(imported["trafficking_type"], "Sex", "implied by the exploitation types");
}

#[test]
fn import_names_every_bad_cell_and_reads_spreadsheet_labels() {
    let (_d, mut s) = store();
    let bad = "cas_CaseNumber,cas_Status,prs_FirstName,prs_Gender,prs_MobilePhone,vic_MethodOfRecruitment\n\
               MX1-2026-0001,Active,Ana,F,,Job offer/advertisement\n\
               MX1-2026-0001,Active,Eva,Female,656 123,\n\
               ,Archived,Sol,Transgender/NonConforming,,\n";
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
    assert!(s.list_cases(&Default::default()).unwrap().is_empty(), "nothing written");

    let good = bad.replace(",F,", ",Female,").replace("656 123", "+52656123456").replace("Archived", "Closed");
    let r = s.htcds_import_csv(good.as_bytes()).unwrap();
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    assert_eq!(r.imported, 2);
    let one = s.get_case_by_number("MX1-2026-0001").unwrap();
    assert_eq!(one["people"].as_array().unwrap().len(), 2);
    assert_eq!(one["method_of_recruitment"], json!(["JobOffer"]));
    let cases = s.list_cases(&Default::default()).unwrap();
    let sol = cases.iter().find(|c| c.case_number != "MX1-2026-0001").unwrap();
    assert_eq!(s.get_case(&sol.id).unwrap()["people"][0]["gender"], "TransgenderNonConforming");

    let r = s.htcds_import_csv("cas_Status,prs_Passport\nActive,X\n".as_bytes()).unwrap();
    assert_eq!((r.rejected[0].line, r.rejected[0].column.as_str()), (1, "prs_Passport"));
}
