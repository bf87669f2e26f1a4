//! What this laptop's form makes of a case's change that came from another laptop.
//!
//! Two answers, for two different things (docs/hub.md, "What a laptop checks"):
//! - **beyond bounds**: no form of any version could have written it (larger than
//!   any field holds, or the wrong kind of value: a list where a text goes). That
//!   is damage or an attack, and the caller refuses the whole batch;
//! - **not accepted here**: well-formed, but this laptop's form says no (a code it
//!   does not know yet, a text longer than it allows, a date ahead). The change is
//!   kept and **held**: it never becomes the case's current value, the value it was
//!   written over stays, and the field is listed for review. A laptop that knows
//!   the code after an upgrade takes it on the next rebuild. Refusing the batch
//!   instead would stop every later batch from that laptop until it is upgraded.

use crate::changelog::{self, flat, Change, FieldState};
use crate::database::{self, DatabaseError};
use crate::intake::{self, FieldError, Issue};
use chrono::{Days, NaiveDate};
use rusqlite::Connection;
use serde_json::Value;
use std::collections::BTreeMap;

/// Longest field path a case's change can have (an item id is 32 hex digits).
const PATH_MAX: usize = 200;

/// Where a case's flat field sits.
pub(crate) enum Slot {
    /// A field of the form (`status`, or `people.<id>.alias`).
    Form(&'static crate::form::Field),
    /// An item's position in its list, `people.<id>`: a number, or null once removed.
    Position,
    Note,
    /// What the store writes about each save (`case_number`, `updated_by`…): text.
    Stamp,
    /// `restricted` and the purge tombstone: yes or no.
    Flag,
    /// A field of an earlier version of the form, whose codes now live in other
    /// fields (`codes::RENAMED`): read as they are now on rebuild.
    Legacy,
    /// Not in this laptop's form (perhaps in a newer one).
    Unknown,
}

/// Was `key` a field of an earlier version of the form?
fn is_legacy(key: &str) -> bool {
    crate::form::codes::RENAMED.iter().any(|(field, ..)| *field == key)
}

pub(crate) fn slot(field: &str) -> Slot {
    if field.starts_with(flat::NOTE_PREFIX) {
        return Slot::Note;
    }
    if field == flat::PURGED || field == "restricted" {
        return Slot::Flag;
    }
    if flat::META_FIELDS.contains(&field) || field == "assigned_to" {
        return Slot::Stamp;
    }
    let mut parts = field.splitn(3, '.');
    let (top, item, key) = (parts.next().unwrap_or(""), parts.next(), parts.next());
    match (item, key) {
        (None, _) => {
            intake::case_field(top, None).map_or(if is_legacy(top) { Slot::Legacy } else { Slot::Unknown }, Slot::Form)
        }
        (Some(_), None) if flat::ITEM_LISTS.contains(&top) => Slot::Position,
        (Some(_), Some("recorded_by")) if flat::ITEM_LISTS.contains(&top) => Slot::Stamp,
        (Some(_), Some(key)) => intake::case_field(top, Some(key))
            .map_or(if is_legacy(key) { Slot::Legacy } else { Slot::Unknown }, Slot::Form),
        (Some(_), None) => Slot::Unknown,
    }
}

/// The field as the message names it: its path in the form, without item ids
/// (`people.alias`).
pub(crate) fn display_field(field: &str) -> String {
    let mut parts = field.splitn(3, '.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(top), Some(_), Some(key)) if flat::ITEM_LISTS.contains(&top) => format!("{top}.{key}"),
        (Some(top), Some(_), None) if flat::ITEM_LISTS.contains(&top) || field.starts_with(flat::NOTE_PREFIX) => {
            top.to_string()
        }
        _ => field.chars().take(PATH_MAX).collect(),
    }
}

/// Is `v` at most `max` bytes as JSON? Counted as it is written out, which stops
/// at the first byte too many: the check costs no more than the bound.
fn fits_bytes(v: &Value, max: usize) -> bool {
    struct Counter {
        left: usize,
    }
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.left = self.left.checked_sub(buf.len()).ok_or(std::io::ErrorKind::FileTooLarge)?;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    serde_json::to_writer(Counter { left: max }, v).is_ok()
}

/// Is this change of a case beyond anything a form could have written?
pub(crate) fn beyond_bounds(c: &Change) -> bool {
    if c.field.len() > PATH_MAX {
        return true;
    }
    let Some(v) = &c.value else { return false };
    if !fits_bytes(v, intake::VALUE_BYTES_MAX) {
        return true;
    }
    match slot(&c.field) {
        // A restricted case's sealed values: their shape is checked, not what
        // they hold (this laptop may not be able to open them).
        Slot::Form(f) => super::restricted::unsealed_part(v).is_some_and(|v| !intake::fits_kind(f, &v)),
        Slot::Position => !(v.is_null() || v.is_i64()),
        Slot::Note => !(v.is_null() || v.is_object()),
        Slot::Stamp => !(v.is_null() || v.is_string()),
        Slot::Flag => !(v.is_null() || v.is_boolean()),
        // Codes, one or a list, as that form wrote them.
        Slot::Legacy => !(v.is_null() || v.is_string() || v.as_array().is_some_and(|a| a.iter().all(Value::is_string))),
        Slot::Unknown => false,
    }
}

/// Why this laptop's form does not accept a value another laptop wrote, if it
/// does not. `today` is this laptop's date.
pub(crate) fn not_accepted(field: &str, v: &Value, today: NaiveDate) -> Option<Issue> {
    if v.is_null() {
        return None;
    }
    // The writer's calendar may be a day ahead of ours (another time zone).
    let today = today.checked_add_days(Days::new(1)).unwrap_or(today);
    // Checked without the field's name first: nearly every value passes, and only
    // an issue needs the name.
    let issue = |path: &str| match slot(field) {
        // A code of an earlier version is read as it is now (`intake::upgraded`).
        Slot::Form(f) => super::restricted::unsealed_part(v)
            .and_then(|v| intake::check_value(f, &intake::upgraded(f.key, &v), path, today).into_iter().next()),
        Slot::Note if super::restricted::is_sealed(v) => None,
        Slot::Note => intake::check_note(v, path, today).into_iter().next(),
        Slot::Stamp if field == "case_number" && !v.as_str().is_some_and(intake::validate::is_case_number) => {
            Some(Issue::new(path, FieldError::CaseNumber))
        }
        Slot::Unknown => Some(Issue::new(path, FieldError::UnknownField)),
        Slot::Stamp | Slot::Position | Slot::Flag | Slot::Legacy => None,
    };
    issue("")?;
    issue(&display_field(field))
}

/// Every change of a case, by field, with those from other laptops that the form
/// does not accept here held (never current, replacing nothing). What this
/// laptop wrote itself was checked when it was saved, and stays as it is.
pub(crate) fn fields(conn: &Connection, id: &str) -> Result<BTreeMap<String, FieldState>, DatabaseError> {
    let fields = changelog::load(conn, changelog::CASE, id)?;
    hold(conn, fields)
}

/// [`fields`] of a case the log held nothing of before a merge, from the changes
/// the merge just wrote (`changes`, all of this case): the same as reading them
/// back, without reading.
pub(crate) fn fields_of(
    conn: &Connection,
    changes: Vec<Change>,
) -> Result<BTreeMap<String, FieldState>, DatabaseError> {
    hold(conn, changelog::by_field(changes))
}

/// Mark the changes of other laptops that this laptop's form does not accept.
fn hold(
    conn: &Connection,
    mut fields: BTreeMap<String, FieldState>,
) -> Result<BTreeMap<String, FieldState>, DatabaseError> {
    let me = database::required_meta(conn, "device_id")?;
    let today = super::cases::today();
    for (field, state) in fields.iter_mut() {
        let held: Vec<(String, i64)> = state
            .changes
            .iter()
            .filter(|c| c.device != me)
            .filter(|c| c.value.as_ref().is_some_and(|v| not_accepted(field, v, today).is_some()))
            .map(|c| (c.device.clone(), c.seq))
            .collect();
        state.held.extend(held);
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_fits_up_to_its_last_byte_and_not_one_more() {
        let v = Value::from("x".repeat(98)); // 100 bytes as JSON, with its quotes
        assert!(fits_bytes(&v, 100));
        assert!(!fits_bytes(&v, 99));
        let list = serde_json::json!(["a", "b"]); // ["a","b"]: 9 bytes
        assert!(fits_bytes(&list, 9) && !fits_bytes(&list, 8));
    }
}
