//! Strings for people: every user-visible text comes from `locales/en.yml` and
//! `locales/es.yml`, compiled in by rust-i18n. The UI receives a locale's whole table
//! ([`table`]) and formats messages itself with the same `%{name}` placeholders.

use std::collections::BTreeMap;

/// Errors shown to people carry a locale key and the values for its placeholders.
pub trait Localized {
    fn i18n_key(&self) -> &'static str;
    fn args(&self) -> Vec<(&'static str, String)>;
    /// The message in `locale`.
    fn localized(&self, locale: &str) -> String {
        tr(locale, self.i18n_key(), &self.args())
    }
}

/// `es`, `es-MX`, `es_MX.UTF-8` → `es`; anything else → `en`.
pub fn normalize_locale(tag: &str) -> &'static str {
    if tag.to_ascii_lowercase().starts_with("es") {
        "es"
    } else {
        "en"
    }
}

/// The language of the environment (`LC_ALL`, `LC_MESSAGES`, `LANG`), for the CLI
/// and as the app's first suggestion.
pub fn system_locale() -> &'static str {
    ["AMPARO_LOCALE", "LC_ALL", "LC_MESSAGES", "LANG"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.is_empty() && v != "C" && v != "POSIX")
        .map(|v| normalize_locale(&v))
        .unwrap_or("en")
}

/// A message, or `None` if the key is missing in that locale.
pub fn try_t(locale: &str, key: &str) -> Option<String> {
    crate::_rust_i18n_try_translate(locale, key).map(|c| c.into_owned())
}

/// A message; a missing key shows as the key itself (and fails the locale tests).
pub fn t(locale: &str, key: &str) -> String {
    try_t(locale, key).unwrap_or_else(|| key.to_string())
}

/// A message with `%{name}` placeholders filled.
pub fn tr(locale: &str, key: &str, args: &[(&str, String)]) -> String {
    let mut s = t(locale, key);
    for (name, value) in args {
        s = s.replace(&format!("%{{{name}}}"), value);
    }
    s
}

/// Every key and message of a locale, for the UI.
pub fn table(locale: &str) -> BTreeMap<String, String> {
    crate::_rust_i18n_backend()
        .messages_for_locale(normalize_locale(locale))
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The label of a code in a locale: `code.SET.CODE`, or the shared Unknown /
/// Declined to answer labels.
pub fn code_label(locale: &str, set: &str, code: &str) -> String {
    if crate::form::codes::NON_ANSWERS.contains(&code) {
        return t(locale, &format!("code.common.{code}"));
    }
    try_t(locale, &format!("code.{set}.{code}")).unwrap_or_else(|| code.to_string())
}

#[cfg(test)]
mod tests;
