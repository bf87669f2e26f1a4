//! A case as a flat map of fields, the unit that changes, syncs and merges.
//!
//! Paths:
//! - `status`, `intake_date`, `trafficking_types`, …: a top-level field, its whole
//!   value (a list of codes is one value);
//! - `people.<item id>`: the item's position (a number), or `null` once removed;
//! - `people.<item id>.<key>`: one field of an item (the same for `needs`,
//!   `trafficking_events` and `consents`);
//! - `notes.<note id>`: a whole note (notes never change);
//! - `case_number`, `created_at`, `updated_at`, `created_by`, `updated_by`: what the
//!   store records about every write (the last write simply wins, never a conflict);
//! - `_purged`: the case was removed by a retention purge (a tombstone).
//!
//! An item keeps the position it got when it was added, so that removing one never
//! rewrites the others, and two items added at once on two laptops sort by id.
//! Rebuilding a case from its fields gives keys in one canonical order, so every
//! laptop writes the same JSON for the same fields.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub const ITEM_LISTS: [&str; 5] = ["people", "needs", "trafficking_events", "consents", "referrals"];
/// Fields the store writes on every save: the last write wins, never a conflict.
pub const META_FIELDS: [&str; 5] = ["case_number", "created_at", "updated_at", "created_by", "updated_by"];
pub const NOTE_PREFIX: &str = "notes.";
pub const PURGED: &str = "_purged";

pub type Flat = BTreeMap<String, Value>;

/// Can two laptops disagree about this field in a way a person must settle?
pub fn is_conflict_tracked(field: &str) -> bool {
    !(META_FIELDS.contains(&field) || field.starts_with(NOTE_PREFIX) || field == PURGED)
}

fn list_of(path: &str) -> Option<(&str, &str, Option<&str>)> {
    let (list, rest) = path.split_once('.')?;
    if !ITEM_LISTS.contains(&list) {
        return None;
    }
    Some(match rest.split_once('.') {
        Some((id, key)) => (list, id, Some(key)),
        None => (list, rest, None),
    })
}

/// The fields of a case's data (no notes, no store columns). `known` are the
/// fields it had before, for the positions of the items it already had.
pub fn flatten(data: &Map<String, Value>, known: &Flat) -> Flat {
    let mut out = Flat::new();
    for (k, v) in data {
        if ["id", "format", "notes"].contains(&k.as_str()) || META_FIELDS.contains(&k.as_str()) || v.is_null() {
            continue;
        }
        let Some(items) = v.as_array().filter(|_| ITEM_LISTS.contains(&k.as_str())) else {
            out.insert(k.clone(), v.clone());
            continue;
        };
        let prefix = format!("{k}.");
        let mut next = known
            .iter()
            .filter(|(p, _)| p.starts_with(&prefix) && !p[prefix.len()..].contains('.'))
            .filter_map(|(_, v)| v.as_i64())
            .max()
            .map_or(0, |m| m + 1);
        for item in items.iter().filter_map(Value::as_object) {
            let Some(id) = item.get("id").and_then(Value::as_str) else { continue };
            let marker = format!("{k}.{id}");
            let pos = match known.get(&marker).and_then(Value::as_i64) {
                Some(p) => p,
                None => {
                    next += 1;
                    next - 1
                }
            };
            out.insert(marker.clone(), pos.into());
            for (ik, iv) in item.iter().filter(|(ik, iv)| ik.as_str() != "id" && !iv.is_null()) {
                out.insert(format!("{marker}.{ik}"), iv.clone());
            }
        }
    }
    out
}

/// The fields a case's row holds as they are (the data column): the changes of
/// those values need not store them again. Not the items' positions (the row
/// holds only their order) nor `restricted` (held only when set).
pub fn row_fields(data: &Map<String, Value>) -> Flat {
    let mut out = flatten(data, &Flat::new());
    out.retain(|path, _| path != "restricted" && list_of(path).is_none_or(|(_, _, key)| key.is_some()));
    out
}

/// A note as its change holds it, from the notes table's columns.
pub fn note(id: String, text: String, language: Option<String>, author: String, created_at: String) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), id.into());
    m.insert("text".into(), text.into());
    if let Some(l) = language {
        m.insert("language".into(), l.into());
    }
    m.insert("author".into(), author.into());
    m.insert("created_at".into(), created_at.into());
    Value::Object(m)
}

/// The case's data (what the `data` column holds) from its current fields.
pub fn unflatten(flat: &Flat) -> Map<String, Value> {
    // In one canonical key order, whatever order the fields arrived in.
    let mut data: BTreeMap<String, Value> = BTreeMap::new();
    // list -> item id -> (position, fields)
    type Items<'a> = BTreeMap<&'a str, (Option<i64>, Map<String, Value>)>;
    let mut lists: BTreeMap<&str, Items> = BTreeMap::new();
    for (path, v) in flat {
        if v.is_null() || META_FIELDS.contains(&path.as_str()) || path.starts_with(NOTE_PREFIX) || path == PURGED {
            continue;
        }
        match list_of(path) {
            Some((list, id, None)) => lists.entry(list).or_default().entry(id).or_default().0 = v.as_i64(),
            Some((list, id, Some(key))) => {
                lists.entry(list).or_default().entry(id).or_default().1.insert(key.to_string(), v.clone());
            }
            None if !path.contains('.') => {
                data.insert(path.clone(), v.clone());
            }
            None => {}
        }
    }
    for (list, items) in lists {
        // Items without a position were removed (or their addition has not arrived).
        let mut present: Vec<(i64, &str, Map<String, Value>)> =
            items.into_iter().filter_map(|(id, (pos, fields))| Some((pos?, id, fields))).collect();
        present.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let arr: Vec<Value> = present
            .into_iter()
            .map(|(_, id, fields)| {
                let mut m = Map::new();
                m.insert("id".into(), id.into());
                m.extend(fields);
                Value::Object(m)
            })
            .collect();
        if !arr.is_empty() {
            data.insert(list.to_string(), Value::Array(arr));
        }
    }
    data.into_iter().collect()
}

/// The `set`-style path a person reads for a field (`people.0.alias`), given the
/// case's current data.
pub fn display_path(field: &str, data: &Map<String, Value>) -> String {
    let Some((list, id, key)) = list_of(field) else { return field.to_string() };
    let index = data
        .get(list)
        .and_then(Value::as_array)
        .and_then(|a| a.iter().position(|it| it.get("id").and_then(Value::as_str) == Some(id)));
    let item = index.map_or_else(|| id.to_string(), |i| i.to_string());
    match key {
        Some(k) => format!("{list}.{item}.{k}"),
        None => format!("{list}.{item}"),
    }
}

/// The item a field belongs to (`people.<id>`), if any: the start of its path.
pub fn item_marker(field: &str) -> Option<&str> {
    list_of(field).map(|(list, id, _)| &field[..list.len() + 1 + id.len()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_case_survives_flattening_and_items_keep_their_places() {
        let data = json!({
            "status": "Active", "trafficking_types": ["Labour"],
            "people": [{"id": "b", "alias": "Rosa", "role": "PotentialVictim"}, {"id": "a", "alias": "Ana"}],
        });
        let data = data.as_object().unwrap();
        let flat = flatten(data, &Flat::new());
        assert_eq!(flat["people.b"], json!(0));
        assert_eq!(flat["people.a"], json!(1));
        let back = unflatten(&flat);
        assert_eq!(&back, data);
        // Removing the first item leaves the second where it was; a new one goes last.
        let mut edited = back.clone();
        edited["people"] = json!([{"id": "a", "alias": "Ana"}, {"id": "c", "alias": "Eva"}]);
        let again = flatten(&edited, &flat);
        assert_eq!(again["people.a"], json!(1));
        assert_eq!(again["people.c"], json!(2));
        assert_eq!(display_path("people.c.alias", &unflatten(&again)), "people.1.alias");
    }
}
