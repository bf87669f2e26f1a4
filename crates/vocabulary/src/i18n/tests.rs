use super::*;
use std::collections::BTreeSet;

/// `%{name}` placeholders in a message.
fn placeholders(s: &str) -> BTreeSet<String> {
    s.split("%{").skip(1).filter_map(|p| p.split_once('}')).map(|(n, _)| n.to_string()).collect()
}

#[test]
fn both_locales_have_the_same_keys_and_placeholders_and_no_empty_values() {
    let en = table("en");
    let es = table("es");
    assert!(en.len() > 300, "the English table looks empty: {}", en.len());
    let en_keys: BTreeSet<_> = en.keys().collect();
    let es_keys: BTreeSet<_> = es.keys().collect();
    assert_eq!(en_keys.difference(&es_keys).collect::<Vec<_>>(), Vec::<&&String>::new(), "missing in es");
    assert_eq!(es_keys.difference(&en_keys).collect::<Vec<_>>(), Vec::<&&String>::new(), "missing in en");
    for (k, v) in &en {
        assert!(!v.trim().is_empty(), "empty en value for {k}");
        assert!(!es[k].trim().is_empty(), "empty es value for {k}");
        assert_eq!(placeholders(v), placeholders(&es[k]), "placeholders differ for {k}");
    }
}

#[test]
fn the_yaml_files_are_what_the_tables_hold() {
    // rust-i18n compiles the files in; make sure a key written in a file is a key the
    // app sees (a YAML slip could otherwise silently drop one).
    for (locale, text) in
        [("en", include_str!("../../../../locales/en.yml")), ("es", include_str!("../../../../locales/es.yml"))]
    {
        let t = table(locale);
        let lines = text.lines().filter(|l| !l.starts_with('#') && l.contains(": ")).count();
        assert_eq!(lines, t.len(), "{locale}");
    }
}

#[test]
fn spanish_says_trata_never_trafico_de_personas_and_not_se_nego() {
    for (k, v) in table("es") {
        let l = v.to_lowercase();
        assert!(!l.contains("tráfico de personas") && !l.contains("trafico de personas"), "{k}: {v}");
        assert!(!l.contains("se negó"), "{k}: {v}");
        assert!(!l.contains("ilegal"), "{k}: {v}");
    }
    assert_eq!(t("es", "code.common.DeclinedToAnswer"), "Prefirió no responder");
    assert_eq!(t("es", "code.trafficking_type.Sex"), "Trata con fines de explotación sexual");
}

#[test]
fn codes_show_in_the_ui_language() {
    assert_eq!(code_label("en", "venue", "BarClubCantina"), "Bar / club / cantina");
    assert_eq!(code_label("es", "control", "DebtBondage"), "Servidumbre por deudas");
    assert_eq!(code_label("en", "gender", "Unknown"), "Unknown");
    assert_eq!(code_label("es", "gender", "Unknown"), "Se desconoce");
}

#[test]
fn locale_tags_are_normalised() {
    assert_eq!(normalize_locale("es_MX.UTF-8"), "es");
    assert_eq!(normalize_locale("es-MX"), "es");
    assert_eq!(normalize_locale("en_US"), "en");
    assert_eq!(normalize_locale("fr"), "en");
    assert_eq!(table("es-MX"), table("es"));
}

/// Every key the UI names literally (in quotes) is in the table: a typo in a screen
/// would otherwise show the bare key to a caseworker.
#[test]
fn every_key_the_ui_names_exists() {
    let en = table("en");
    let ui = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui");
    let mut files = vec![ui.join("index.html")];
    // Every script, screens/ included.
    let mut folders = vec![ui.join("js")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "js") {
                files.push(path);
            }
        }
    }
    let prefixes = [
        "app",
        "nav",
        "lang",
        "welcome",
        "setup",
        "unlock",
        "list",
        "form",
        "case",
        "recovery",
        "recover",
        "privacy",
        "lock",
        "quick_exit",
        "admin",
        "account",
        "audit",
        "user",
        "error",
        "share",
        "print",
        "consent",
        "purge",
        "sync",
        "conflict",
        "report",
        "directory",
        "referral",
        "rights",
        "deid",
        "htcds",
    ];
    let mut missing = Vec::new();
    let mut seen = 0;
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        // Candidates: quoted strings like "audit.title" (not template literals).
        for quoted in text.split('"').skip(1).step_by(2) {
            let Some((head, rest)) = quoted.split_once('.') else { continue };
            let keyish = !rest.is_empty()
                && !rest.ends_with('.')
                && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
                && prefixes.contains(&head);
            if keyish {
                seen += 1;
                if !en.contains_key(quoted) {
                    missing.push(format!("{}: {quoted}", f.display()));
                }
            }
        }
    }
    assert!(seen > 150, "the scan found only {seen} keys: is it still reading the UI?");
    assert_eq!(missing, Vec::<String>::new());
}
