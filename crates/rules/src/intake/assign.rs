//! `path=value` edits of a case, for scripted corrections (`amparo set`). The value
//! is text as typed on a command line; the field's kind decides how it is read.

use super::{FieldError, Issue};
use crate::form::{self, codes, Kind};
use serde_json::{Map, Value};

fn parse_value(kind: &Kind, raw: &str, path: &str) -> Result<Value, Issue> {
    let non_answer = codes::NON_ANSWERS.contains(&raw);
    Ok(match kind {
        Kind::Integer { .. } if !non_answer => {
            raw.parse::<i64>().map(Value::from).map_err(|_| Issue::new(path, FieldError::NotWholeNumber))?
        }
        Kind::YesNo if !non_answer => match raw.to_lowercase().as_str() {
            "true" | "yes" | "y" | "si" | "sí" => Value::Bool(true),
            "false" | "no" | "n" => Value::Bool(false),
            _ => return Err(Issue::new(path, FieldError::WrongType { expected: "yes_no" })),
        },
        Kind::Multi { .. } => Value::Array(
            raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| Value::String(s.into())).collect(),
        ),
        Kind::Group { .. } | Kind::List { .. } => {
            return Err(Issue::new(path, FieldError::WrongType { expected: "field" }))
        }
        Kind::Derived { .. } => return Err(Issue::new(path, FieldError::ReadOnly)),
        _ => Value::String(raw.to_string()),
    })
}

/// Set (or, with an empty value, clear) the field at `path`, e.g. `status`,
/// `intake_place.city`, `people.0.alias`. Index one past the end adds an item.
pub fn assign(case: &mut Value, path: &str, raw: &str) -> Result<(), Issue> {
    if ["id", "case_number", "created_at", "updated_at", "format"].contains(&path) {
        return Err(Issue::new(path, FieldError::ReadOnly));
    }
    if path == "notes" || path.starts_with("notes.") {
        return Err(Issue::new(path, FieldError::NotesAppendOnly));
    }
    let unknown = || Issue::new(path, FieldError::UnknownField);
    let parts: Vec<&str> = path.split('.').collect();
    let mut fields: &[crate::form::Field] = form::case_fields();
    let Some(mut target) = case.as_object_mut() else { return Err(unknown()) };
    let mut i = 0;
    while i < parts.len() {
        let part = parts[i];
        let field = fields.iter().find(|f| f.key == part).ok_or_else(unknown)?;
        let last = i + 1 == parts.len();
        match &field.kind {
            Kind::Group { fields: inner } if !last => {
                let entry = target.entry(part).or_insert_with(|| Value::Object(Map::new()));
                target = entry.as_object_mut().ok_or_else(unknown)?;
                fields = inner;
                i += 1;
            }
            Kind::List { item } if !last => {
                let idx: usize = parts[i + 1].parse().map_err(|_| unknown())?;
                let entry = target.entry(part).or_insert_with(|| Value::Array(Vec::new()));
                let items = entry.as_array_mut().ok_or_else(unknown)?;
                if idx == items.len() {
                    items.push(Value::Object(Map::new()));
                }
                target = items.get_mut(idx).and_then(Value::as_object_mut).ok_or_else(unknown)?;
                fields = item;
                i += 2;
                if i == parts.len() {
                    return Err(Issue::new(path, FieldError::WrongType { expected: "field" }));
                }
            }
            kind => {
                if !last {
                    return Err(unknown());
                }
                if raw.is_empty() {
                    target.remove(part);
                } else {
                    target.insert(part.to_string(), parse_value(kind, raw, path)?);
                }
                return Ok(());
            }
        }
    }
    Err(unknown())
}
