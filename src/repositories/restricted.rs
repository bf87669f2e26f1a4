//! Restricted cases sealed apart (docs/restricted.md): a key of each restricted
//! case's own, sealed only to the people entitled to open it, and the case's
//! personal values sealed under it, so that the data key alone reads none of them.

use super::incoming;
use super::users::{self, Role};
use crate::database::keys::{self, RestrictedKey};
use crate::database::DatabaseError;
use rusqlite::Connection;
use serde_json::{json, Value};

/// The two keys of a sealed value: `{"sealed": hex, "key": key id}`.
pub const SEALED: &str = "sealed";
pub const KEY_ID: &str = "key";
/// Longest sealed value, in hex digits: a note (the longest value a case holds)
/// as JSON, every character at its widest, with nonce and tag.
const SEALED_HEX_MAX: usize = 2 * (24 + 16 + 4 * (crate::form::LONG_TEXT_MAX + 2_000));

fn value_context(case_id: &str, field: &str) -> String {
    format!("amparo.value/1:{case_id}:{field}")
}

fn seal_context(case_id: &str, user_id: &str) -> String {
    format!("amparo.restricted/1:{case_id}:{user_id}")
}

/// Is this value a sealed one, in exactly the shape this module writes?
pub fn is_sealed(v: &Value) -> bool {
    let Some(o) = v.as_object() else { return false };
    let hex_of = |s: &Value, max: usize| {
        s.as_str().is_some_and(|s| s.len() <= max && s.len() % 2 == 0 && s.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    o.len() == 2
        && o.get(SEALED).is_some_and(|s| hex_of(s, SEALED_HEX_MAX))
        && o.get(KEY_ID).is_some_and(|k| hex_of(k, 16) && k.as_str().is_some_and(|k| k.len() == 16))
}

/// The id of the key a sealed value was sealed under.
pub fn key_id_of(v: &Value) -> Option<&str> {
    is_sealed(v).then(|| v.get(KEY_ID).and_then(Value::as_str)).flatten()
}

/// A value as a restricted case stores it: sealed under `key` when it is personal,
/// as it is otherwise (and when it is null: a cleared field names no one).
pub fn seal_value(key: &RestrictedKey, case_id: &str, field: &str, v: &Value) -> Result<Value, DatabaseError> {
    if v.is_null() || is_sealed(v) || !incoming::is_personal(field) {
        return Ok(v.clone());
    }
    let plain = zeroize::Zeroizing::new(serde_json::to_vec(v).map_err(|_| DatabaseError::Damaged { table: "cases" })?);
    let sealed = key.seal(&value_context(case_id, field), &plain).ok_or(DatabaseError::Damaged { table: "cases" })?;
    Ok(json!({ SEALED: hex::encode(sealed), KEY_ID: key.id() }))
}

/// The value a sealed one holds, if it was sealed under `key` for this case and
/// field. `None` for another key, case or field, or for bytes changed.
pub fn open_value(key: &RestrictedKey, case_id: &str, field: &str, v: &Value) -> Option<Value> {
    if key_id_of(v)? != key.id() {
        return None;
    }
    let sealed = hex::decode(v.get(SEALED)?.as_str()?).ok()?;
    let plain = key.open(&value_context(case_id, field), &sealed)?;
    serde_json::from_slice(&plain).ok()
}

/// Seal a case's key to one person's X25519 key (hex); `None` if that is not a
/// usable key.
pub fn seal_key_to(key: &RestrictedKey, case_id: &str, user_id: &str, kx_key: &str) -> Option<String> {
    keys::seal_to(kx_key, &seal_context(case_id, user_id), key.bytes())
}

/// Open a case key sealed to this user; `None` if it was not sealed to her, for
/// this case, or was changed.
pub fn open_key(
    mine: &x25519_dalek::StaticSecret,
    case_id: &str,
    user_id: &str,
    sealed: &str,
) -> Option<RestrictedKey> {
    let bytes = keys::open_sealed(mine, &seal_context(case_id, user_id), sealed)?;
    RestrictedKey::from_bytes(&bytes)
}

/// Someone a restricted case's key is sealed to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Recipient {
    pub user_id: String,
    pub kx_key: String,
}

/// Everyone entitled to open a restricted case assigned to `assigned_to`, here
/// and on the organisation's other laptops: its caseworker, every supervisor and
/// administrator. Only by records whose signatures check: a role raised with SQL
/// or a user row added by hand gets nothing sealed to it. By user id.
pub fn entitled(conn: &Connection, assigned_to: Option<&str>) -> Result<Vec<Recipient>, DatabaseError> {
    let may = |role: Role, id: &str| role >= Role::Supervisor || Some(id) == assigned_to;
    let mut out = Vec::new();
    // A store from before grants has no authority: no record can be checked,
    // so none is sealed to until an administrator's unlock signs them.
    let Some(authority) = users::authority(conn)? else { return Ok(out) };
    for u in users::active(conn)? {
        if u.signed && !u.keys_pending && may(u.role, &u.id) {
            if let Some(kx_key) = u.kx_key {
                out.push(Recipient { user_id: u.id, kx_key });
            }
        }
    }
    for m in users::members(conn)?.into_iter().filter(|m| m.removed.is_none()) {
        if m.verified_role(&authority).is_some_and(|role| may(role, &m.id)) {
            out.push(Recipient { user_id: m.id, kx_key: m.kx_key });
        }
    }
    out.sort();
    out.dedup_by(|a, b| a.user_id == b.user_id);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CASE: &str = "0192a8c4-0000-7000-8000-000000000001";

    #[test]
    fn a_sealed_value_opens_only_with_its_key_for_its_case_and_field() {
        let key = RestrictedKey::generate();
        let field = "people.0192a8c4aaaa.alias";
        let rosa = json!("Rosa Hernández");
        let sealed = seal_value(&key, CASE, field, &rosa).unwrap();
        assert!(is_sealed(&sealed), "{sealed}");
        assert!(!sealed.to_string().contains("Rosa"));
        assert_eq!(open_value(&key, CASE, field, &sealed), Some(rosa.clone()));
        // The same value seals the same (the merge compares values); another does not.
        assert_eq!(seal_value(&key, CASE, field, &rosa).unwrap(), sealed);
        assert_ne!(seal_value(&key, CASE, field, &json!("Rosa Hernandez")).unwrap(), sealed);
        // Bound to its key, case and field: moved, it opens nowhere.
        assert_eq!(open_value(&RestrictedKey::generate(), CASE, field, &sealed), None);
        assert_eq!(open_value(&key, "0192a8c4-0000-7000-8000-000000000002", field, &sealed), None);
        assert_eq!(open_value(&key, CASE, "people.0192a8c4aaaa.given_names", &sealed), None);
        let mut changed = sealed.clone();
        let hexed = changed[SEALED].as_str().unwrap().to_string();
        let flipped = format!("{}{}", &hexed[..hexed.len() - 1], if hexed.ends_with('0') { '1' } else { '0' });
        changed[SEALED] = json!(flipped);
        assert_eq!(open_value(&key, CASE, field, &changed), None);
        // Codes and cleared fields name no one: they stay as they are.
        assert_eq!(seal_value(&key, CASE, "status", &json!("Active")).unwrap(), json!("Active"));
        assert_eq!(seal_value(&key, CASE, field, &Value::Null).unwrap(), Value::Null);
        // A note is personal whatever it holds.
        let note = json!({ "text": "Llamar a la hermana", "author": "Ana" });
        assert!(is_sealed(&seal_value(&key, CASE, "notes.0192a8c4bbbb", &note).unwrap()));
    }

    #[test]
    fn only_the_shape_this_module_writes_counts_as_sealed() {
        let key = RestrictedKey::generate();
        let good = seal_value(&key, CASE, "people.x.alias", &json!("Rosa")).unwrap();
        let mut extra = good.clone();
        extra["more"] = json!(1);
        let mut short_id = good.clone();
        short_id[KEY_ID] = json!("abcd");
        let mut not_hex = good.clone();
        not_hex[SEALED] = json!("zz");
        let huge = json!({ SEALED: "00".repeat(SEALED_HEX_MAX), KEY_ID: key.id() });
        for bad in [extra, short_id, not_hex, huge, json!("Rosa"), json!({})] {
            assert!(!is_sealed(&bad), "{bad}");
        }
    }

    #[test]
    fn a_case_key_opens_only_for_whom_and_what_it_was_sealed() {
        let key = RestrictedKey::generate();
        let ana = keys::UserSecrets::generate(None);
        let carla = keys::UserSecrets::generate(None);
        let sealed = seal_key_to(&key, CASE, "ana", &ana.kx_key()).unwrap();
        assert_eq!(open_key(ana.kx(), CASE, "ana", &sealed).map(|k| k.id()), Some(key.id()));
        assert!(open_key(carla.kx(), CASE, "ana", &sealed).is_none());
        // A seal copied to another user's or another case's place opens nothing.
        assert!(open_key(ana.kx(), CASE, "carla", &sealed).is_none());
        assert!(open_key(ana.kx(), "another case", "ana", &sealed).is_none());
        assert!(seal_key_to(&key, CASE, "x", "not a key").is_none());
    }
}
