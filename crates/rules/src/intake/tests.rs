use super::*;
use crate::i18n::{tr, Localized};
use crate::sample;
use chrono::NaiveDate;
use serde_json::json;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 29).unwrap()
}

fn minimal() -> Value {
    json!({"people": [{"role": "PotentialVictim"}]})
}

/// Prepare `case` and return the error keys by path.
fn errors(case: Value) -> Vec<(String, &'static str)> {
    match prepare(case, today()) {
        Ok(_) => vec![],
        Err(e) => e.0.iter().map(|i| (i.path.clone(), i.error.i18n_key())).collect(),
    }
}

fn with(field: &str, v: Value) -> Value {
    let mut c = minimal();
    c[field] = v;
    c
}

fn with_person(field: &str, v: Value) -> Value {
    let mut c = minimal();
    c["people"][0][field] = v;
    c
}

#[test]
fn the_full_sample_and_generated_cases_are_valid() {
    prepare(sample::full_case(), today()).unwrap();
    for seed in 0..300 {
        let c = sample::generated(seed);
        let prepared = prepare(c.clone(), today()).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        // Generated cases are already normalised: preparing only adds derived values.
        assert_eq!(sample::without_assigned(&prepared), c, "seed {seed}");
    }
}

#[test]
fn future_dates_are_refused_with_the_message_in_both_locales() {
    let errs = prepare(with("intake_date", json!("2026-11-30")), today()).unwrap_err();
    assert_eq!(errs.paths(), vec!["intake_date"]);
    let e = &errs.0[0].error;
    assert_eq!(e.localized("en"), "Please check this date: it is in the future.");
    assert_eq!(e.localized("es"), "Revise esta fecha: está en el futuro.");
    assert_eq!(
        errors(with_person("birth_date", json!("2027-01-01"))),
        vec![("people.0.birth_date".into(), "error.field.date_in_future")]
    );
    let mut c = minimal();
    c["trafficking_events"] = json!([{"type": "Exploitation", "date": "2027"}]);
    assert_eq!(errors(c), vec![("trafficking_events.0.date".into(), "error.field.date_in_future")]);
    // Today itself is fine.
    assert!(errors(with("intake_date", json!("2026-11-29"))).is_empty());
}

#[test]
fn impossible_ages_and_dates_are_refused() {
    assert_eq!(
        errors(with_person("age_estimate", json!(121))),
        vec![("people.0.age_estimate".into(), "error.field.out_of_range")]
    );
    assert_eq!(
        errors(with_person("age_estimate", json!(-1))),
        vec![("people.0.age_estimate".into(), "error.field.out_of_range")]
    );
    assert_eq!(
        errors(with_person("age_estimate", json!(12.5))),
        vec![("people.0.age_estimate".into(), "error.field.not_whole_number")]
    );
    assert_eq!(
        errors(with_person("age_estimate", json!("doce"))),
        vec![("people.0.age_estimate".into(), "error.field.not_whole_number")]
    );
    assert_eq!(
        errors(with_person("birth_date", json!("1899-12-31"))),
        vec![("people.0.birth_date".into(), "error.field.date_too_old")]
    );
    assert_eq!(
        errors(with_person("birth_date", json!("2026-02-30"))),
        vec![("people.0.birth_date".into(), "error.field.date_format")]
    );
    assert_eq!(
        errors(with_person("birth_date", json!("14/03/2009"))),
        vec![("people.0.birth_date".into(), "error.field.date_format")]
    );
    let mut c = with_person("birth_date", json!("2020-05-01"));
    c["intake_date"] = json!("2020-04-01");
    assert_eq!(errors(c), vec![("people.0.birth_date".into(), "error.field.birth_after_intake")]);
    let mut c = minimal();
    c["trafficking_events"] = json!([{"type": "Transit", "date": "2024-13"}]);
    assert_eq!(errors(c), vec![("trafficking_events.0.date".into(), "error.field.approx_date_format")]);
}

#[test]
fn phones_must_be_e164() {
    for ok in ["+525512345678", "+12065550123", "Unknown"] {
        assert!(errors(with_person("safe_phone", json!(ok))).is_empty(), "{ok}");
    }
    for bad in ["5512345678", "+52 55 1234 5678", "+0525512345678", "+52", "+5255123456789012", "teléfono"] {
        assert_eq!(
            errors(with_person("safe_phone", json!(bad))),
            vec![("people.0.safe_phone".into(), "error.field.phone")],
            "{bad}"
        );
    }
    let e = FieldError::Phone;
    assert!(e.localized("es").contains("+525512345678"));
}

#[test]
fn unknown_codes_fields_and_wrong_shapes_are_refused() {
    assert_eq!(errors(with("status", json!("Open"))), vec![("status".into(), "error.field.unknown_code")]);
    // Process fields do not take non-answers; every other picklist does.
    assert_eq!(errors(with("status", json!("Unknown"))), vec![("status".into(), "error.field.unknown_code")]);
    assert!(errors(with("intake_channel", json!("DeclinedToAnswer"))).is_empty());
    assert_eq!(errors(with("venues", json!(["Brothel"]))), vec![("venues.0".into(), "error.field.unknown_code")]);
    assert_eq!(
        errors(with("venues", json!(["HotelMotel", "HotelMotel"]))),
        vec![("venues.1".into(), "error.field.duplicate_code")]
    );
    assert_eq!(
        errors(with("venues", json!(["HotelMotel", "Unknown"]))),
        vec![("venues".into(), "error.field.non_answer_not_alone")]
    );
    assert_eq!(errors(with("venues", json!("HotelMotel"))), vec![("venues".into(), "error.field.wrong_type")]);
    assert_eq!(
        errors(with("favourite_colour", json!("blue"))),
        vec![("favourite_colour".into(), "error.field.unknown_field")]
    );
    assert_eq!(
        errors(with_person("nickname", json!("x"))),
        vec![("people.0.nickname".into(), "error.field.unknown_field")]
    );
    assert_eq!(errors(with("crossed_border", json!("yes"))), vec![("crossed_border".into(), "error.field.wrong_type")]);
    assert_eq!(errors(with("format", json!("amparo.case/2"))), vec![("format".into(), "error.field.format")]);
    let e = FieldError::UnknownCode { code: "Open".into() };
    assert_eq!(e.localized("es"), "“Open” no es una de las opciones de este campo.");
}

#[test]
fn text_over_a_sane_length_is_refused() {
    let long = "a".repeat(crate::form::TEXT_MAX + 1);
    assert_eq!(errors(with_person("alias", json!(long))), vec![("people.0.alias".into(), "error.field.too_long")]);
    let ok = "ñ".repeat(crate::form::TEXT_MAX); // characters, not bytes
    assert!(errors(with_person("alias", json!(ok))).is_empty());
    let note = "x".repeat(crate::form::LONG_TEXT_MAX + 1);
    assert_eq!(errors(with("notes", json!([{"text": note}]))), vec![("notes.0.text".into(), "error.field.too_long")]);
    assert_eq!(FieldError::TooLong { max: 200 }.localized("en"), "Please shorten this to 200 characters or fewer.");
}

#[test]
fn subdivisions_and_emails_are_checked() {
    let mut c = minimal();
    c["intake_place"] = json!({"country": "MX", "subdivision": "US-TX"});
    assert_eq!(errors(c), vec![("intake_place.subdivision".into(), "error.field.subdivision_country")]);
    let mut c = minimal();
    c["intake_place"] = json!({"subdivision": "Texas"});
    assert_eq!(errors(c), vec![("intake_place.subdivision".into(), "error.field.subdivision_format")]);
    assert_eq!(errors(with_person("email", json!("rosa@"))), vec![("people.0.email".into(), "error.field.email")]);
}

#[test]
fn a_case_needs_a_potential_victim() {
    assert_eq!(errors(json!({})), vec![("people".into(), "error.field.no_potential_victim")]);
    assert_eq!(
        errors(json!({"people": [{"role": "DependentChild"}]})),
        vec![("people".into(), "error.field.no_potential_victim")]
    );
}

#[test]
fn normalising_drops_what_was_not_asked_and_what_skip_logic_hides() {
    let mut c = json!({
        "people": [{"role": "PotentialVictim", "alias": "  Rosa  ", "given_name": "", "languages": [], "in_trafficker_control": true}, {"id": "x"}],
        "trafficking_type": "Labour",
        "type_of_sex_exploitation": ["Prostitution"],
        "forced_labour_industry": ["A_AgricultureForestryAndFishing"],
        "methods_of_control": ["DebtBondage"],
        "threat_targets": ["Children"],
        "law_enforcement": {"involved": false, "agency": "HSI"},
        "safety": {"safe_times": "  tardes \n"},
        "intake_place": {"city": ""},
        "notes": [{"text": "  "}]
    });
    normalize(&mut c);
    assert_eq!(
        c,
        json!({
            "people": [{"role": "PotentialVictim", "alias": "Rosa"}],
            "trafficking_type": "Labour",
            "forced_labour_industry": ["A_AgricultureForestryAndFishing"],
            "methods_of_control": ["DebtBondage"],
            "law_enforcement": {"involved": false},
            "safety": {"safe_times": "  tardes \n"}
        })
    );
}

#[test]
fn majority_is_derived_from_birth_date_or_estimate() {
    let case = json!({
        "intake_date": "2026-03-14",
        "people": [
            {"role": "PotentialVictim", "birth_date": "2008-03-15"},
            {"role": "PotentialVictim", "birth_date": "2008-03-14"},
            {"role": "PotentialVictim", "age_estimate": 19},
            {"role": "PotentialVictim"}
        ],
        "trafficking_events": [{"type": "Exploitation", "date": "2024"}, {"type": "Recruitment", "date": "2020"}]
    });
    let p = prepare(case, today()).unwrap();
    let got: Vec<(&str, &str)> = p["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["majority_at_intake"].as_str().unwrap(), x["majority_at_exploitation"].as_str().unwrap()))
        .collect();
    // 17 the day before her 18th birthday; 18 on it; an estimate of 19 in 2026 was 17 in 2024.
    assert_eq!(got, vec![("Minor", "Minor"), ("Adult", "Minor"), ("Adult", "Minor"), ("Unknown", "Unknown")]);
}

#[test]
fn assignments_follow_the_field_kinds() {
    let mut c = prepare(sample::full_case(), today()).unwrap();
    assign(&mut c, "status", "Closed").unwrap();
    assign(&mut c, "people.0.alias", "Lupita").unwrap();
    assign(&mut c, "people.1.age_estimate", "4").unwrap();
    assign(&mut c, "crossed_border", "no").unwrap();
    assign(&mut c, "venues", "HotelMotel, TruckStop").unwrap();
    assign(&mut c, "intake_place.city", "").unwrap();
    assign(&mut c, "needs.2.service", "Legal").unwrap();
    assert_eq!(c["status"], "Closed");
    assert_eq!(c["people"][0]["alias"], "Lupita");
    assert_eq!(c["people"][1]["age_estimate"], 4);
    assert_eq!(c["crossed_border"], false);
    assert_eq!(c["venues"], json!(["HotelMotel", "TruckStop"]));
    assert!(c["intake_place"].get("city").is_none());
    assert_eq!(c["needs"][2]["service"], "Legal");
    assert_eq!(assign(&mut c, "case_number", "X").unwrap_err().error, FieldError::ReadOnly);
    assert_eq!(assign(&mut c, "notes.0.text", "X").unwrap_err().error, FieldError::NotesAppendOnly);
    assert_eq!(assign(&mut c, "people.0.shoe_size", "5").unwrap_err().error, FieldError::UnknownField);
    assert_eq!(assign(&mut c, "people.9.alias", "x").unwrap_err().error, FieldError::UnknownField);
    assert_eq!(assign(&mut c, "people.0.age_estimate", "five").unwrap_err().error, FieldError::NotWholeNumber);
}

#[test]
fn every_error_has_a_message_in_both_locales_with_its_placeholders_filled() {
    for e in FieldError::samples() {
        for locale in ["en", "es"] {
            let msg = tr(locale, e.i18n_key(), &e.args());
            assert_ne!(msg, e.i18n_key(), "{locale}: missing {}", e.i18n_key());
            assert!(!msg.contains("%{"), "{locale}: unfilled placeholder in {msg}");
            assert!(!msg.contains('!'), "{locale}: errors stay calm: {msg}");
        }
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Any JSON at all, biased towards the shapes and keys of a case.
    fn arb_json() -> impl Strategy<Value = Value> {
        let keys = prop::sample::select(vec![
            "people",
            "role",
            "alias",
            "birth_date",
            "age_estimate",
            "venues",
            "trafficking_type",
            "intake_date",
            "intake_place",
            "subdivision",
            "country",
            "notes",
            "text",
            "safe_phone",
            "crossed_border",
            "trafficking_events",
            "date",
            "type",
            "law_enforcement",
            "involved",
            "format",
            "x",
        ]);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
            ".{0,12}".prop_map(Value::String),
            prop::sample::select(vec![
                "PotentialVictim",
                "Sex",
                "Unknown",
                "2026-02-30",
                "2024",
                "+52",
                "MX-CHH",
                "Threats"
            ])
            .prop_map(|s| Value::String(s.into())),
        ];
        leaf.prop_recursive(4, 64, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec((keys.clone(), inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Bad input never crashes: whatever arrives is either a valid case or a list
        /// of issues, each naming a path and a message that exists in both locales.
        #[test]
        fn any_json_gives_a_case_or_issues_never_a_panic(v in arb_json()) {
            let (_, issues) = check(v.clone(), today());
            match prepare(v, today()) {
                Ok(c) => {
                    prop_assert!(issues.is_empty());
                    // And what was accepted is accepted again unchanged.
                    prop_assert_eq!(prepare(c.clone(), today()).unwrap(), c);
                }
                Err(e) => {
                    prop_assert_eq!(&e.0, &issues);
                    for i in &e.0 {
                        prop_assert!(crate::i18n::try_t("es", i.error.i18n_key()).is_some());
                    }
                }
            }
        }
    }
}

#[test]
fn every_form_label_code_and_error_has_a_message() {
    let en = crate::i18n::table("en");
    let es = crate::i18n::table("es");
    let mut needed: Vec<String> = crate::form::label_keys();
    for set in crate::form::codes::ALL {
        needed.extend(set.codes.iter().map(|c| format!("code.{}.{c}", set.name)));
    }
    needed.extend(crate::form::codes::NON_ANSWERS.iter().map(|c| format!("code.common.{c}")));
    needed.extend(FieldError::samples().iter().map(|e| e.i18n_key().to_string()));
    for k in &needed {
        assert!(en.contains_key(k), "en lacks {k}");
        assert!(es.contains_key(k), "es lacks {k}");
    }
    // And every error message in the locales belongs to an error the code can raise.
    let raised: std::collections::BTreeSet<String> =
        FieldError::samples().iter().map(|e| e.i18n_key().to_string()).collect();
    for k in en.keys().filter(|k| k.starts_with("error.field.")) {
        assert!(raised.contains(k), "{k} is in the locales but no FieldError uses it");
    }
}

/// Every code of the 2020 draft reads as HTCDS 2.0's (DOMAIN.md), in the case and
/// in its people, moving into the field it belongs to now; twice is once.
#[test]
fn codes_of_the_draft_are_read_as_they_are_now() {
    let mut case = json!({
        "method_of_recruitment": ["JobOffer", "Internet", "PublicArea", "Shelter"],
        "recruitment_channel": ["Other"],
        "methods_of_control": ["Threats", "UsesChildren", "RestrictsMovement"],
        "people": [{"role": "PotentialVictim", "gender": "Female", "vulnerabilities": ["Caste", "Poverty"]},
                   {"role": "DependentChild", "gender": "Male"}]
    });
    assert!(crate::intake::upgrade_codes(&mut case));
    assert_eq!(case["method_of_recruitment"], json!(["JobOffer"]));
    assert_eq!(case["recruitment_channel"], json!(["Other", "ThroughOnlineSocialNetworks"]), "once");
    assert_eq!(case["methods_of_control"], json!(["RestrictsMovement", "PhysicalThreats", "ThreatensChildrenFamily"]));
    assert_eq!(case["people"][0]["gender"], "Feminine");
    assert_eq!(case["people"][0]["vulnerabilities"], json!(["Poverty", "SocialGroup"]));
    assert_eq!(case["people"][1]["gender"], "Masculine");
    let once = case.clone();
    assert!(!crate::intake::upgrade_codes(&mut case), "nothing left to upgrade");
    assert_eq!(case, once);
    // All of a list moved away: the field is gone, not an empty list.
    let mut moved = json!({"method_of_recruitment": ["Work"]});
    crate::intake::upgrade_codes(&mut moved);
    assert_eq!(moved, json!({"recruitment_channel": ["AtWork"]}));
    // A value on its own, as a change from another laptop brings it.
    assert_eq!(crate::intake::upgraded("gender", &json!("Male")), json!("Masculine"));
    assert_eq!(crate::intake::upgraded("method_of_recruitment", &json!(["Internet"])), Value::Null);
    assert_eq!(crate::intake::upgraded("status", &json!("Active")), json!("Active"));
    // Every old code is gone from its list (or its whole field is), and every new
    // one is a code of its field.
    let field_of =
        |key: &str| crate::intake::case_field(key, None).or_else(|| crate::intake::case_field("people", Some(key)));
    let set = |f: &crate::form::Field| match f.kind {
        crate::form::Kind::Choice { set, .. } | crate::form::Kind::Multi { set } => set,
        _ => panic!("{} has no codes", f.key),
    };
    for (field, old, to, new) in codes::RENAMED {
        if let Some(from) = field_of(field) {
            assert!(!set(from).contains(old), "{field}: {old} is still a code");
        }
        let into = field_of(to).unwrap_or_else(|| panic!("{to} is not a field"));
        assert!(set(into).contains(new), "{to}: {new} is not a code");
    }
    assert!(field_of("type_of_labour_exploitation").is_none(), "retired: HTCDS 2.0 asks the industry");
    let mut labour = json!({"type_of_labour_exploitation": ["Begging", "Aquafarming", "Agriculture", "Other"]});
    crate::intake::upgrade_codes(&mut labour);
    assert_eq!(
        labour,
        json!({"type_of_exploitation": ["ForcedBegging", "ForcedLabour"],
               "forced_labour_industry": ["A_AgricultureForestryAndFishing"]})
    );
}
