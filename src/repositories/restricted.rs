//! Restricted cases sealed apart (docs/restricted.md): a key of each restricted
//! case's own, sealed only to the people entitled to open it, and the case's
//! personal values sealed under it, so that the data key alone reads none of them.

use super::incoming::{self, Slot};
use super::users::{self, Role};
use crate::changelog;
use crate::database::keys::{self, RestrictedKey};
use crate::database::DatabaseError;
use crate::form::{Field, Kind};
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

/// Is this case (its JSON, or its row's fields) restricted?
pub fn is_restricted(case: &Value) -> bool {
    case.as_object().is_some_and(restricted_data)
}

/// [`is_restricted`], for a case's data as a map.
pub fn restricted_data(data: &serde_json::Map<String, Value>) -> bool {
    data.get("restricted").and_then(Value::as_bool).unwrap_or(false)
}

/// Is this value a sealed one, in exactly the shape this module writes?
pub fn is_sealed(v: &Value) -> bool {
    let Some(o) = v.as_object() else { return false };
    let hex_of = |s: &Value, max: usize| {
        s.as_str().is_some_and(|s| s.len() <= max && s.len() % 2 == 0 && s.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    o.len() == 2
        && o.get(SEALED).is_some_and(|s| hex_of(s, SEALED_HEX_MAX))
        && o.get(KEY_ID).is_some_and(|k| hex_of(k, 16) && k.as_str().map(str::len) == Some(16))
}

/// Does anything in this value stay sealed (one its reader holds no key for)?
pub fn holds_sealed(v: &Value) -> bool {
    match v {
        _ if is_sealed(v) => true,
        Value::Object(o) => o.values().any(holds_sealed),
        Value::Array(a) => a.iter().any(holds_sealed),
        _ => false,
    }
}

/// The id of the key a sealed value was sealed under.
pub fn key_id_of(v: &Value) -> Option<&str> {
    is_sealed(v).then(|| v.get(KEY_ID).and_then(Value::as_str)).flatten()
}

/// Is a value of this form field personal (docs/restricted.md)? Any free text,
/// phone or e-mail; a date the form marks as identifying. Codes, numbers and
/// yes/no name no one, and the fact sheet needs them. A group is sealed field by
/// field (see [`seal_value`]); a field this laptop's form does not know is sealed.
fn personal(field: Option<&Field>) -> bool {
    let Some(f) = field else { return true };
    match f.kind {
        Kind::Text { .. } | Kind::LongText { .. } | Kind::Phone | Kind::Email => true,
        Kind::Date | Kind::ApproxDate | Kind::ExpiryDate => f.pii,
        _ => false,
    }
}

fn seal_leaf(key: &RestrictedKey, case_id: &str, path: &str, v: &Value) -> Result<Value, DatabaseError> {
    let plain = zeroize::Zeroizing::new(serde_json::to_vec(v).map_err(|_| DatabaseError::Damaged { table: "cases" })?);
    let sealed = key.seal(&value_context(case_id, path), &plain).ok_or(DatabaseError::Damaged { table: "cases" })?;
    Ok(json!({ SEALED: hex::encode(sealed), KEY_ID: key.id() }))
}

fn seal_in(
    key: &RestrictedKey,
    case_id: &str,
    path: &str,
    field: Option<&Field>,
    v: &Value,
) -> Result<Value, DatabaseError> {
    if v.is_null() || is_sealed(v) {
        return Ok(v.clone());
    }
    match (field.map(|f| &f.kind), v) {
        (Some(Kind::Group { fields }), Value::Object(o)) => {
            let mut out = serde_json::Map::new();
            for (k, sv) in o {
                let sub = fields.iter().find(|f| f.key == k);
                out.insert(k.clone(), seal_in(key, case_id, &format!("{path}.{k}"), sub, sv)?);
            }
            Ok(Value::Object(out))
        }
        _ if personal(field) => seal_leaf(key, case_id, path, v),
        _ => Ok(v.clone()),
    }
}

/// A case's flat field as a restricted case stores it: a note sealed whole; a
/// form field's personal values sealed (a group's one by one); anything else, and
/// null (a cleared field names no one), as it is.
pub fn seal_value(key: &RestrictedKey, case_id: &str, field: &str, v: &Value) -> Result<Value, DatabaseError> {
    match incoming::slot(field) {
        Slot::Note if !v.is_null() && !is_sealed(v) => seal_leaf(key, case_id, field, v),
        Slot::Form(f) => seal_in(key, case_id, field, Some(f), v),
        Slot::Unknown => seal_in(key, case_id, field, None, v),
        // An earlier form's codes: no personal value.
        Slot::Note | Slot::Position | Slot::Stamp | Slot::Flag | Slot::Legacy => Ok(v.clone()),
    }
}

fn clear_in(field: Option<&Field>, v: &Value) -> bool {
    if v.is_null() || is_sealed(v) {
        return false;
    }
    match (field.map(|f| &f.kind), v) {
        (Some(Kind::Group { fields }), Value::Object(o)) => {
            o.iter().any(|(k, sv)| clear_in(fields.iter().find(|f| f.key == k), sv))
        }
        _ => personal(field),
    }
}

/// Does this flat field hold a personal value in the clear (one that
/// [`seal_value`] would seal)? A check of shape only, no key needed.
pub fn in_clear(field: &str, v: &Value) -> bool {
    match incoming::slot(field) {
        Slot::Note => !v.is_null() && !is_sealed(v),
        Slot::Form(f) => clear_in(Some(f), v),
        Slot::Unknown => clear_in(None, v),
        Slot::Position | Slot::Stamp | Slot::Flag | Slot::Legacy => false,
    }
}

/// What of a value can be checked against the form without opening it: `None`
/// for a sealed value, a group without its sealed fields, anything else as it is.
pub fn unsealed_part(v: &Value) -> Option<std::borrow::Cow<'_, Value>> {
    match v {
        _ if is_sealed(v) => None,
        Value::Object(o) if o.values().any(is_sealed) => Some(std::borrow::Cow::Owned(Value::Object(
            o.iter().filter(|(_, sv)| !is_sealed(sv)).map(|(k, sv)| (k.clone(), sv.clone())).collect(),
        ))),
        _ => Some(std::borrow::Cow::Borrowed(v)),
    }
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
/// administrator, and this laptop's recovery key. Only by records whose
/// signatures check: a role raised with SQL or a user row added by hand gets
/// nothing sealed to it. By user id.
pub fn entitled(conn: &Connection, assigned_to: Option<&str>) -> Result<Vec<Recipient>, DatabaseError> {
    Ok(Entitled::load(conn)?.to(assigned_to))
}

/// The organisation's people by their checked records, read once for many cases.
pub struct Entitled {
    /// Supervisors, administrators and the recovery key: entitled to every case.
    always: Vec<Recipient>,
    /// Everyone else whose record checks, by id: entitled to what is theirs.
    others: std::collections::BTreeMap<String, Recipient>,
}

impl Entitled {
    pub fn load(conn: &Connection) -> Result<Entitled, DatabaseError> {
        let mut out = Entitled { always: Vec::new(), others: Default::default() };
        // A store from before grants has no authority: no record can be checked,
        // so none is sealed to until an administrator's unlock signs them.
        let Some(authority) = users::authority(conn)? else { return Ok(out) };
        let mut add = |role: Role, r: Recipient| match role >= Role::Supervisor {
            true => out.always.push(r),
            false => {
                out.others.insert(r.user_id.clone(), r);
            }
        };
        for u in users::active(conn)? {
            if let (true, false, Some(kx_key)) = (u.signed, u.keys_pending, u.kx_key) {
                add(u.role, Recipient { user_id: u.id, kx_key });
            }
        }
        for m in users::members(conn)?.into_iter().filter(|m| m.removed.is_none()) {
            if let Some(role) = m.verified_role(&authority) {
                add(role, Recipient { user_id: m.id, kx_key: m.kx_key });
            }
        }
        out.always.extend(recovery_recipient(conn)?);
        Ok(out)
    }

    /// Those entitled to a case assigned to `assigned_to`.
    pub fn to(&self, assigned_to: Option<&str>) -> Vec<Recipient> {
        let mut out = self.always.clone();
        out.extend(assigned_to.and_then(|a| self.others.get(a)).cloned());
        out.sort();
        out.dedup_by(|a, b| a.user_id == b.user_id);
        out
    }
}

/// The `case_key` entity's field naming the key new values are sealed under.
pub const CURRENT: &str = "current";

fn seal_field(key_id: &str, user_id: &str) -> String {
    format!("{key_id}.{user_id}")
}

/// Does `r` hold key `key_id` in these seals, sealed to her current X25519 key?
fn holds(seals: &changelog::flat::Flat, key_id: &str, r: &Recipient) -> bool {
    let to = seals.get(&seal_field(key_id, &r.user_id)).and_then(|v| v.get("to")).and_then(Value::as_str);
    to == Some(r.kx_key.as_str())
}

/// Write a case's seals as `change` makes them of the current ones; nothing if
/// it changes nothing. Returns how many seals changed.
fn log_seals(
    tx: &Connection,
    author: changelog::Author,
    case_id: &str,
    change: impl FnOnce(&changelog::flat::Flat) -> changelog::flat::Flat,
) -> Result<usize, DatabaseError> {
    let fields = changelog::load(tx, changelog::CASE_KEY, case_id)?;
    let before = changelog::winners(&fields);
    let after = change(&before);
    if after == before {
        return Ok(0);
    }
    let mut w = changelog::Writer::begin(tx, author)?;
    changelog::log_diff(tx, &mut w, (changelog::CASE_KEY, case_id), &fields, &before, &after, None)
}

/// A key sealed to one person, with the X25519 key it was sealed to: when hers
/// changes (a recovery makes new key pairs), whoever holds the key seals it again.
fn seal_record(key: &RestrictedKey, case_id: &str, r: &Recipient) -> Option<Value> {
    // A key that is not a usable X25519 key was refused when her record was
    // checked; nothing is sealed to it.
    let sealed = seal_key_to(key, case_id, &r.user_id, &r.kx_key)?;
    Some(json!({ "to": r.kx_key, "sealed": sealed }))
}

/// Is this a seal record in the shape [`seal_record`] writes (bounded)?
pub fn is_seal_record(v: &Value) -> bool {
    let text = |k: &str, max: usize| v.get(k).and_then(Value::as_str).is_some_and(|s| s.len() <= max);
    v.as_object().is_some_and(|o| o.len() == 2) && text("to", 64) && text("sealed", 512)
}

/// Does anyone of `to` lack the case's current key, or hold it under an X25519
/// key no longer hers? (Read from the seals as they are, opening nothing.)
pub fn lacks(conn: &Connection, case_id: &str, to: &[Recipient]) -> Result<bool, DatabaseError> {
    let seals = changelog::winners(&changelog::load(conn, changelog::CASE_KEY, case_id)?);
    let Some(current) = seals.get(CURRENT).and_then(Value::as_str) else { return Ok(false) };
    Ok(to.iter().any(|r| !holds(&seals, current, r)))
}

/// Seal each of `keys` to each of `to` who does not hold it yet under her
/// current X25519 key. Returns how many seals were written.
pub fn grant(
    tx: &Connection,
    author: changelog::Author,
    case_id: &str,
    keys: &[&RestrictedKey],
    to: &[Recipient],
) -> Result<usize, DatabaseError> {
    log_seals(tx, author, case_id, |before| {
        let mut after = before.clone();
        for key in keys {
            for r in to.iter().filter(|r| !holds(before, key.id(), r)) {
                if let Some(seal) = seal_record(key, case_id, r) {
                    after.insert(seal_field(key.id(), &r.user_id), seal);
                }
            }
        }
        after
    })
}

/// `meta` key of this laptop's recovery key as a recipient (hex X25519 public
/// key); its secret is in the recovery seal, beside the authority.
const RECOVERY_KX: &str = "recovery_kx";

/// This laptop's recovery key, as the recipient restricted cases are sealed to
/// so that a forgotten passphrase never loses one.
pub fn recovery_id(device_id: &str) -> String {
    format!("recovery-{device_id}")
}

pub fn set_recovery_kx(conn: &Connection, secret: &x25519_dalek::StaticSecret) -> Result<(), DatabaseError> {
    crate::database::set_meta(conn, RECOVERY_KX, &hex::encode(x25519_dalek::PublicKey::from(secret).to_bytes()))
}

fn recovery_recipient(conn: &Connection) -> Result<Option<Recipient>, DatabaseError> {
    let Some(kx_key) = crate::database::meta(conn, RECOVERY_KX)? else { return Ok(None) };
    let device = crate::database::required_meta(conn, "device_id")?;
    Ok(Some(Recipient { user_id: recovery_id(&device), kx_key }))
}

/// The keys of one restricted case that its seals open for one person.
#[derive(Default)]
pub struct Keys {
    current: Option<String>,
    keys: Vec<RestrictedKey>,
}

impl Keys {
    /// No keys: what an unrestricted case is read and written with.
    pub const NONE: Keys = Keys { current: None, keys: Vec::new() };

    /// The key new values are sealed under, if this person holds it.
    pub fn current(&self) -> Option<&RestrictedKey> {
        let id = self.current.as_deref()?;
        self.keys.iter().find(|k| k.id() == id)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Every key these seals opened.
    pub fn all(&self) -> Vec<&RestrictedKey> {
        self.keys.iter().collect()
    }

    fn open(&self, case_id: &str, path: &str, v: &Value) -> Option<Value> {
        let id = key_id_of(v)?;
        open_value(self.keys.iter().find(|k| k.id() == id)?, case_id, path, v)
    }

    /// A value with everything these keys open opened (a group's fields one by
    /// one); what they do not open stays sealed.
    pub fn open_in(&self, case_id: &str, path: &str, v: &Value) -> Value {
        if is_sealed(v) {
            return self.open(case_id, path, v).unwrap_or_else(|| v.clone());
        }
        match v {
            Value::Object(o) if o.values().any(is_sealed) => Value::Object(
                o.iter().map(|(k, sv)| (k.clone(), self.open_in(case_id, &format!("{path}.{k}"), sv))).collect(),
            ),
            _ => v.clone(),
        }
    }

    /// A restricted case's notes (sealed in its change log) as these keys open
    /// them, oldest first, into the case JSON; none if they open none.
    pub fn open_notes(&self, conn: &Connection, case_id: &str, case: &mut Value) -> Result<(), DatabaseError> {
        if self.keys.is_empty() {
            return Ok(());
        }
        let mut notes: Vec<Value> = super::cases::sealed_notes(conn, case_id)?
            .iter()
            .map(|(path, v)| self.open_in(case_id, path, v))
            .filter(|n| !is_sealed(n))
            .collect();
        let at = |n: &Value| {
            (
                n.get("created_at").and_then(Value::as_str).map(str::to_string),
                n.get("id").and_then(Value::as_str).map(str::to_string),
            )
        };
        notes.sort_by_key(at);
        if let (Some(case), false) = (case.as_object_mut(), notes.is_empty()) {
            // Before the timestamps, where the case JSON puts them.
            let created = case.remove("created_at");
            let updated = case.remove("updated_at");
            case.insert("notes".into(), Value::Array(notes));
            for (k, v) in [("created_at", created), ("updated_at", updated)] {
                if let Some(v) = v {
                    case.insert(k.into(), v);
                }
            }
        }
        Ok(())
    }

    /// A case's fields (as its row holds them) opened in place.
    pub fn open_data(&self, case_id: &str, data: &mut serde_json::Map<String, Value>) {
        if self.keys.is_empty() {
            return;
        }
        for (k, v) in data.iter_mut() {
            match v {
                Value::Array(items) if crate::changelog::flat::ITEM_LISTS.contains(&k.as_str()) => {
                    for item in items.iter_mut().filter_map(Value::as_object_mut) {
                        let Some(id) = item.get("id").and_then(Value::as_str).map(str::to_string) else { continue };
                        for (ik, iv) in item.iter_mut() {
                            *iv = self.open_in(case_id, &format!("{k}.{id}.{ik}"), iv);
                        }
                    }
                }
                _ => *v = self.open_in(case_id, k, v),
            }
        }
    }
}

/// Who opens sealed values: the person unlocked, with her X25519 secret.
pub struct Opener<'a> {
    pub user_id: &'a str,
    pub kx: &'a x25519_dalek::StaticSecret,
}

impl Opener<'_> {
    /// The keys of this case sealed to her (none if it never was restricted, or
    /// she is not entitled).
    pub fn keys(&self, conn: &Connection, case_id: &str) -> Result<Keys, DatabaseError> {
        let fields = changelog::load(conn, changelog::CASE_KEY, case_id)?;
        let current = changelog::winners(&fields);
        let mut keys =
            Keys { current: current.get(CURRENT).and_then(Value::as_str).map(str::to_string), keys: Vec::new() };
        let suffix = format!(".{}", self.user_id);
        for (field, v) in &current {
            let Some(key_id) = field.strip_suffix(&suffix) else { continue };
            let sealed = v.get("sealed").and_then(Value::as_str);
            let Some(key) = sealed.and_then(|s| open_key(self.kx, case_id, self.user_id, s)) else { continue };
            if key.id() == key_id {
                keys.keys.push(key);
            }
        }
        Ok(keys)
    }
}

/// Make a new key for a restricted case, seal it to `to` and log it as the
/// case's current key; seals of earlier keys to anyone not in `to` are
/// withdrawn. Returns the new key.
pub fn rekey(
    tx: &Connection,
    author: changelog::Author,
    case_id: &str,
    to: &[Recipient],
) -> Result<RestrictedKey, DatabaseError> {
    let key = RestrictedKey::generate();
    let entitled = |field: &str| to.iter().any(|r| field.ends_with(&format!(".{}", r.user_id)));
    log_seals(tx, author, case_id, |before| {
        let mut after: changelog::flat::Flat = before
            .iter()
            .filter(|(f, _)| f.as_str() != CURRENT && entitled(f))
            .map(|(f, v)| (f.clone(), v.clone()))
            .collect();
        for r in to {
            if let Some(seal) = seal_record(&key, case_id, r) {
                after.insert(seal_field(key.id(), &r.user_id), seal);
            }
        }
        after.insert(CURRENT.into(), key.id().into());
        after
    })?;
    Ok(key)
}

/// The case is no longer restricted: every seal of its keys is withdrawn.
pub fn withdraw(tx: &Connection, author: changelog::Author, case_id: &str) -> Result<(), DatabaseError> {
    log_seals(tx, author, case_id, |_| changelog::flat::Flat::new())?;
    Ok(())
}

/// After seals arrived from another laptop: blank the ones now replaced.
pub fn settle(tx: &Connection, case_id: &str) -> Result<(), DatabaseError> {
    for state in changelog::load(tx, changelog::CASE_KEY, case_id)?.values() {
        let heads: Vec<(String, i64)> = state.heads().iter().map(|c| (c.device.clone(), c.seq)).collect();
        for c in state.changes.iter().filter(|c| c.value.is_some() && !heads.contains(&(c.device.clone(), c.seq))) {
            changelog::blank(tx, c)?;
        }
    }
    Ok(())
}

/// A draft of a restricted case as the drafts table keeps it: sealed to whoever
/// types it and to this laptop's recovery key, so the data key reads nothing of
/// an unfinished edit either.
const SEALED_DRAFT: &str = "sealed_draft";

fn draft_context(draft_id: &str, recipient: &str) -> String {
    format!("amparo.draft/1:{draft_id}:{recipient}")
}

/// `json` (a draft as typed) sealed for `me` and this laptop's recovery key.
pub fn seal_draft(conn: &Connection, draft_id: &str, json: &str, me: &Recipient) -> Result<String, DatabaseError> {
    let damaged = || DatabaseError::Damaged { table: "drafts" };
    let mut seals = serde_json::Map::new();
    for r in std::iter::once(me.clone()).chain(recovery_recipient(conn)?) {
        let sealed =
            keys::seal_to(&r.kx_key, &draft_context(draft_id, &r.user_id), json.as_bytes()).ok_or_else(damaged)?;
        seals.insert(r.user_id, sealed.into());
    }
    Ok(json!({ SEALED_DRAFT: seals }).to_string())
}

/// Is this stored draft a sealed one?
pub fn is_sealed_draft(stored: &Value) -> bool {
    stored.get(SEALED_DRAFT).is_some_and(Value::is_object)
}

/// A draft as it was typed: opened if it is sealed (for `user_id`, with her
/// X25519 secret), as it is otherwise. `None` if it is sealed, but not to her.
pub fn open_draft(draft_id: &str, stored: Value, user_id: &str, kx: &x25519_dalek::StaticSecret) -> Option<Value> {
    let Some(seals) = stored.get(SEALED_DRAFT).and_then(Value::as_object) else { return Some(stored) };
    let sealed = seals.get(user_id)?.as_str()?;
    let plain = keys::open_sealed(kx, &draft_context(draft_id, user_id), sealed)?;
    serde_json::from_slice(&plain).ok()
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
    fn in_clear_says_what_sealing_would_change() {
        let key = RestrictedKey::generate();
        let mut case = crate::sample::full_case();
        super::super::cases::assign_item_ids(&mut case);
        let flat = crate::changelog::flat::flatten(case.as_object().unwrap(), &Default::default());
        let mut personal = 0;
        for (field, v) in &flat {
            let sealed = seal_value(&key, CASE, field, v).unwrap();
            assert_eq!(in_clear(field, v), sealed != *v, "{field}");
            assert!(!in_clear(field, &sealed), "{field} once sealed");
            personal += usize::from(sealed != *v);
        }
        assert!(personal >= 10, "the sample has personal values: {personal}");
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
        assert_eq!(open_key(ana.kx(), CASE, "ana", &sealed).map(|k| k.id().to_string()).as_deref(), Some(key.id()));
        assert!(open_key(carla.kx(), CASE, "ana", &sealed).is_none());
        // A seal copied to another user's or another case's place opens nothing.
        assert!(open_key(ana.kx(), CASE, "carla", &sealed).is_none());
        assert!(open_key(ana.kx(), "another case", "ana", &sealed).is_none());
        assert!(seal_key_to(&key, CASE, "x", "not a key").is_none());
    }
}
