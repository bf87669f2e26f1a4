//! A case as the caseworker gave it: normalisation (drop what was not asked, trim
//! text, clear fields the skip logic hides), validation against the form definition,
//! and the values the core derives (majority at intake and at exploitation).
//!
//! A case is kept as a JSON object of codes (DOMAIN.md, "Case JSON") rather than a
//! Rust struct: the form definition is the one description of its shape, so a field
//! added there is stored, validated, exported and rendered without further code.

pub mod assign;
pub mod validate;

use crate::form::{self, codes, Field, Kind};
pub use assign::assign;
use chrono::{Datelike, NaiveDate};
use serde_json::{Map, Value};
pub use validate::{
    case_field, check_note, check_value, fits_kind, validate, FieldError, Issue, ValidationErrors, CASE_FORMAT,
    VALUE_BYTES_MAX,
};

/// Age of majority in the United States and Mexico.
pub const MAJORITY_AGE: i64 = 18;

/// Remove what counts as "not asked" (null, empty text, empty lists and groups),
/// trim single-line text, and drop fields hidden by skip logic, recursively.
/// Free text keeps its inner content exactly as typed.
pub fn normalize(case: &mut Value) {
    upgrade_codes(case);
    if let Some(obj) = case.as_object_mut() {
        normalize_fields(form::case_fields(), obj);
        if let Some(Value::Array(notes)) = obj.get_mut("notes") {
            notes.retain(|n| !n.get("text").and_then(Value::as_str).is_some_and(|t| t.trim().is_empty()));
        }
        if obj.get("notes").and_then(Value::as_array).is_some_and(Vec::is_empty) {
            obj.remove("notes");
        }
    }
}

/// Rewrite the codes of an earlier version as they are now (`codes::RENAMED`),
/// moving a value into the field it belongs to now, in the case and in each of
/// its people. Whether anything changed.
pub fn upgrade_codes(case: &mut Value) -> bool {
    let Some(obj) = case.as_object_mut() else { return false };
    let mut changed = upgrade_object(obj);
    if let Some(Value::Array(people)) = obj.get_mut("people") {
        for p in people.iter_mut().filter_map(Value::as_object_mut) {
            changed |= upgrade_object(p);
        }
    }
    changed
}

/// A field's value with the codes of an earlier version as they are now; what
/// moved to another field is gone from it (`null` if all of it did).
pub fn upgraded(field: &str, v: &Value) -> Value {
    reads_as(field, v).remove(field).unwrap_or(Value::Null)
}

/// What a field's value says as it is now: the field, and any field an old code
/// of it moved to (two values say the same when these are equal).
pub fn reads_as(field: &str, v: &Value) -> Map<String, Value> {
    let mut obj = Map::new();
    obj.insert(field.to_string(), v.clone());
    upgrade_object(&mut obj);
    obj
}

fn upgrade_object(obj: &mut Map<String, Value>) -> bool {
    let mut changed = false;
    for (field, old, to, new) in codes::RENAMED {
        let was_list = match obj.get_mut(*field) {
            Some(Value::String(s)) if s == old => false,
            Some(Value::Array(items)) if items.iter().any(|v| v == old) => {
                items.retain(|v| v != old);
                true
            }
            _ => continue,
        };
        changed = true;
        if !was_list {
            obj.remove(*field);
        }
        match obj.entry(to.to_string()).or_insert_with(|| if was_list { Value::Array(Vec::new()) } else { Value::Null })
        {
            Value::Array(items) => {
                if !items.iter().any(|v| v == new) {
                    items.push(Value::from(*new));
                }
            }
            slot => *slot = Value::from(*new),
        }
        if obj.get(*field).and_then(Value::as_array).is_some_and(Vec::is_empty) {
            obj.remove(*field);
        }
    }
    changed
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Normalise one object against `fields` (a case, or a directory entry).
pub fn normalize_fields(fields: &[Field], obj: &mut Map<String, Value>) {
    for field in fields {
        let Some(v) = obj.get_mut(field.key) else {
            continue;
        };
        match (&field.kind, v) {
            (Kind::Text { .. } | Kind::Phone | Kind::Email | Kind::Subdivision, Value::String(s)) => {
                let t = s.trim();
                if t.len() != s.len() {
                    *s = t.to_string();
                }
            }
            (Kind::Group { fields }, Value::Object(inner)) => normalize_fields(fields, inner),
            (Kind::List { item }, Value::Array(items)) => {
                for it in items.iter_mut() {
                    if let Value::Object(inner) = it {
                        normalize_fields(item, inner);
                    }
                }
                // An item with nothing but its id was added and left blank.
                items.retain(|it| it.as_object().is_none_or(|o| o.keys().any(|k| k != "id")));
            }
            _ => {}
        }
    }
    let hidden: Vec<&str> = fields.iter().filter(|f| !form::is_shown(f, obj)).map(|f| f.key).collect();
    for key in hidden {
        obj.remove(key);
    }
    obj.retain(|_, v| !is_empty(v));
}

/// Whole years from `from` to `to`.
pub fn years_between(from: NaiveDate, to: NaiveDate) -> i64 {
    let mut y = i64::from(to.year() - from.year());
    if (to.month(), to.day()) < (from.month(), from.day()) {
        y -= 1;
    }
    y
}

fn majority(age: Option<i64>) -> &'static str {
    match age {
        Some(a) if a < MAJORITY_AGE => "Minor",
        Some(_) => "Adult",
        None => codes::UNKNOWN,
    }
}

/// Set each person's `majority_at_intake` and `majority_at_exploitation` from birth
/// date or age estimate, the intake date and the earliest exploitation event. An age
/// estimate is taken as the age at intake.
pub fn derive(case: &mut Value, today: NaiveDate) {
    let Some(obj) = case.as_object_mut() else {
        return;
    };
    let intake = obj.get("intake_date").and_then(Value::as_str).and_then(validate::parse_date).unwrap_or(today);
    let exploitation = obj
        .get("trafficking_events")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|e| e.get("type").and_then(Value::as_str) == Some("Exploitation"))
        .filter_map(|e| e.get("date").and_then(Value::as_str).and_then(validate::parse_approx_date))
        .min();
    let Some(Value::Array(people)) = obj.get_mut("people") else {
        return;
    };
    for p in people.iter_mut().filter_map(Value::as_object_mut) {
        let birth = p.get("birth_date").and_then(Value::as_str).and_then(validate::parse_date);
        let estimate = p.get("age_estimate").and_then(Value::as_i64);
        let age_at = |when: NaiveDate| match (birth, estimate) {
            (Some(b), _) => Some(years_between(b, when)),
            (None, Some(e)) => Some(e - years_between(when, intake)),
            _ => None,
        };
        let at_intake = majority(age_at(intake));
        let at_exploitation = majority(exploitation.and_then(age_at));
        p.insert("majority_at_intake".into(), at_intake.into());
        p.insert("majority_at_exploitation".into(), at_exploitation.into());
    }
}

/// Normalise, validate and derive: what every save does before it writes.
pub fn prepare(mut case: Value, today: NaiveDate) -> Result<Value, ValidationErrors> {
    normalize(&mut case);
    validate(&case, today)?;
    derive(&mut case, today);
    Ok(case)
}

/// What the form shows while typing: the case as it would be saved (derived values
/// filled in even when other fields still have problems) and every issue.
pub fn check(mut case: Value, today: NaiveDate) -> (Value, Vec<Issue>) {
    normalize(&mut case);
    let issues = validate(&case, today).err().map(|e| e.0).unwrap_or_default();
    derive(&mut case, today);
    (case, issues)
}

/// The case's referrals, in the order they were made.
pub fn referrals(case: &Value) -> impl Iterator<Item = &Value> {
    case.get("referrals").and_then(Value::as_array).into_iter().flatten()
}

/// The person a case is about first: its first potential victim.
pub fn primary_person(case: &Value) -> Option<&Map<String, Value>> {
    case.get("people")?
        .as_array()?
        .iter()
        .filter_map(Value::as_object)
        .find(|p| p.get("role").and_then(Value::as_str) == Some("PotentialVictim"))
}

#[cfg(test)]
mod tests;
