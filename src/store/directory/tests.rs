//! The directory: the hotlines from the start, search, add and edit with messages
//! next to the fields, and an all-or-nothing CSV import naming every bad row.

use super::*;
use crate::i18n::Localized;

use crate::store::test_store as store;

fn names(entries: &[Entry]) -> Vec<&str> {
    entries.iter().map(|e| e.data["name"].as_str().unwrap()).collect()
}

fn q(text: &str, service: &str, region: &str, language: &str) -> DirectoryQuery {
    let o = |s: &str| (!s.is_empty()).then(|| s.to_string());
    DirectoryQuery { text: o(text), service: o(service), region: o(region), language: o(language) }
}

#[test]
fn starts_with_both_national_hotlines() {
    let (dir, s) = store();
    let all = s.directory(&DirectoryQuery::default()).unwrap();
    assert_eq!(names(&all), ["Línea Nacional contra la Trata de Personas", "National Human Trafficking Hotline"]);
    let us = &all[1].data;
    assert_eq!((us["phone"].as_str(), us["text_number"].as_str()), (Some("+18883737888"), Some("233733")));
    assert_eq!(all[0].data["phone"], "+528005533000");
    // Every seed passes the directory's own rules.
    for (_, d) in SEEDS {
        validate_entry(serde_json::from_str(d).unwrap()).unwrap();
    }
    // Opening again adds nothing twice.
    drop(s);
    let s = Store::open(dir.path(), crate::store::TEST_PASSPHRASE).unwrap();
    assert_eq!(s.directory(&DirectoryQuery::default()).unwrap().len(), 2);
}

#[test]
fn add_edit_and_search_by_words_service_region_and_language() {
    let (_d, mut s) = store();
    let casa = s
        .save_directory_entry(
            None,
            json!({"name": " Casa Amiga Esther Chávez ", "country": "MX", "subdivision": "MX-CHH", "city": "Ciudad Juárez",
                   "services": ["Shelter", "MentalHealth", "Legal"], "phone": "+526566158571", "languages": ["es"],
                   "hours": "Lun–Vie 9–17", "notes": "Acompañamiento legal."}),
        )
        .unwrap();
    assert_eq!(casa.data["name"], "Casa Amiga Esther Chávez", "trimmed");
    s.save_directory_entry(
        None,
        json!({"name": "Refugio Esperanza", "country": "US", "subdivision": "US-TX", "city": "El Paso",
               "services": ["Shelter", "ImmigrationRelief"], "languages": ["es", "en", "mix"]}),
    )
    .unwrap();
    let found = |query| names(&s.directory(&query).unwrap()).join(" | ");
    // Accents and case do not matter; every word must match.
    assert_eq!(found(q("ciudad juarez", "", "", "")), "Casa Amiga Esther Chávez");
    assert_eq!(found(q("CHAVEZ legal", "", "", "")), "Casa Amiga Esther Chávez");
    assert_eq!(found(q("", "Shelter", "", "")), "Casa Amiga Esther Chávez | Refugio Esperanza");
    assert_eq!(found(q("", "Shelter", "US", "")), "Refugio Esperanza");
    assert_eq!(found(q("", "", "MX-CHH", "")), "Casa Amiga Esther Chávez");
    assert_eq!(found(q("", "", "", "mix")), "Refugio Esperanza");
    assert_eq!(found(q("", "", "MX", "")), "Línea Nacional contra la Trata de Personas | Casa Amiga Esther Chávez");
    assert_eq!(found(q("nothing like this", "", "", "")), "");

    // Editing keeps the id and records the fields changed.
    let mut edited = casa.data.clone();
    edited.insert("hours".into(), json!("24/7"));
    let after = s.save_directory_entry(Some(&casa.id), Value::Object(edited)).unwrap();
    assert_eq!(after.id, casa.id);
    assert_eq!(s.directory_entry(&casa.id).unwrap().data["hours"], "24/7");
    let trail = s.audit_list(&Default::default()).unwrap();
    let last = trail.iter().find(|r| r.action == "DirectoryChanged").unwrap();
    assert_eq!(last.detail["fields"], json!(["hours"]), "{:?}", last.detail);

    // Bad input: every issue next to its field, nothing saved.
    let err = s
        .save_directory_entry(
            None,
            json!({"country": "GT", "subdivision": "US-TX", "phone": "656 123", "services": ["Sheltr"], "languages": ["xx"]}),
        )
        .unwrap_err();
    let StoreError::Invalid(v) = err else { panic!("{err:?}") };
    let mut paths: Vec<(String, &str)> = v.0.iter().map(|i| (i.path.clone(), i.error.i18n_key())).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            ("country".to_string(), "error.field.unknown_code"),
            ("languages.0".into(), "error.field.unknown_code"),
            ("name".into(), "error.field.required"),
            ("phone".into(), "error.field.phone"),
            ("services.0".into(), "error.field.unknown_code"),
            ("subdivision".into(), "error.field.subdivision_country"),
        ]
    );
    let err = s.save_directory_entry(None, json!({"name": "X", "country": "MX", "subdivision": "US-TX"})).unwrap_err();
    assert!(matches!(&err, StoreError::Invalid(v) if v.0[0].error.i18n_key() == "error.field.subdivision_country"));
    assert_eq!(s.directory(&DirectoryQuery::default()).unwrap().len(), 4);
}

#[test]
fn csv_import_is_all_or_nothing_and_names_every_bad_row() {
    let (_d, mut s) = store();
    let bad = "name,country,subdivision,city,services,phone,languages\n\
               Centro Fray Julián Garcés,MX,MX-TLA,Tlaxcala,Legal;MentalHealth,+522464620017,es;nah\n\
               ,MX,,,,,\n\
               Clínica del Valle,US,US-TX,McAllen,Medical;Dentist,+19565550100,es\n";
    let r = s.import_directory_csv(bad.as_bytes()).unwrap();
    assert_eq!(r.imported, 0);
    let named: Vec<(usize, String)> =
        r.rejected.iter().flat_map(|row| row.issues.iter().map(move |i| (row.line, i.path.clone()))).collect();
    assert_eq!(named, [(3, "name".to_string()), (4, "services.1".to_string())]);
    assert_eq!(s.directory(&DirectoryQuery::default()).unwrap().len(), 2, "nothing imported");

    let good = bad.replace(",MX,,,,,\n", "Albergue Nazareth,MX,MX-BCN,Tijuana,Shelter,,es\n").replace(";Dentist", "");
    let r = s.import_directory_csv(good.as_bytes()).unwrap();
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    assert_eq!(r.imported, 3);
    let fray = s.directory(&q("fray julian", "", "", "")).unwrap();
    assert_eq!(fray[0].data["languages"], json!(["es", "nah"]));
    assert_eq!(fray[0].data["services"], json!(["Legal", "MentalHealth"]));

    // A column we do not know is named, before any row is read.
    let r = s.import_directory_csv("name,country,fax\nX,MX,123\n".as_bytes()).unwrap();
    assert_eq!((r.imported, r.rejected[0].line, r.rejected[0].issues[0].path.as_str()), (0, 1, "fax"));
}
