//! How one row of the change log holds its fields: the changes of one write
//! (one device, one clock time, one author, one entity, consecutive sequence
//! numbers), in sequence order, as bytes.
//!
//! Field paths name items by id (`people.<uuid>.alias`); a write of a case names the
//! same few items dozens of times, so each row lists its item ids once, as 16
//! bytes, and a path refers to one by its place in that list. The form's keys
//! (`alias`, `majority_at_exploitation`) are numbers in [`KEYS`]. Devices in
//! parents are the small numbers of `log_devices`. A value is JSON text, or, when
//! the case's row holds the very same value, a mark that says so (the row is
//! where it is read from: values are not stored twice). Blanking one rewrites the
//! row without parsing any value.
//!
//! ```text
//! row    = version:u8=2  items:varint  item*16B  fields:varint  field*
//! field  = path  flags:u8  [len:varint json]  [n:varint (device:varint seq:varint)*]
//! path   = 0 len:varint utf8                      any path, as text
//!        | 1 key:varint                           a top-level key of KEYS
//!        | 2+2*list+has_key item:varint [key]     `<list>.<item>[.<key>]`
//! key    = 0 len:varint utf8 | 1+n:varint          as text, or KEYS[n]
//! flags  = bit 0: the value's JSON follows; bit 1: it has parents;
//!          bit 2: the value is the one the case's row holds (no bytes here);
//!          neither bit 0 nor 2: blanked
//! ```
//!
//! Version 1 (schema 18, before the key numbers and the row mark) is still read:
//! `path = 0 text | 1+2*list+has_key item [len key]`, flags bits 0 and 1 only.

use uuid::Uuid;

const VERSION: u8 = 2;
/// The keys a path may name by number: only ever added to at the end, since rows
/// written with this list are read with it (a row never leaves its store: bundles
/// carry paths as text).
const KEYS: [&str; 76] = [
    "case_number",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
    "recorded_by",
    "assigned_to",
    "restricted",
    "_purged",
    "intake_date",
    "intake_channel",
    "status",
    "intake_place",
    "role",
    "alias",
    "given_name",
    "family_name",
    "gender",
    "birth_date",
    "age_estimate",
    "majority_at_intake",
    "majority_at_exploitation",
    "nationality",
    "languages",
    "preferred_language",
    "interpreter_needed",
    "immigration_status",
    "in_trafficker_control",
    "vulnerabilities",
    "safe_phone",
    "email",
    "trafficking_type",
    "venues",
    "type_of_sex_exploitation",
    "type_of_labour_exploitation",
    "recruiter_relation",
    "method_of_recruitment",
    "methods_of_control",
    "threat_targets",
    "crossed_border",
    "type",
    "date",
    "place",
    "safety",
    "law_enforcement",
    "service",
    "organisation",
    "organisation_name",
    "shares_pii",
    "consent",
    "need",
    "scope",
    "decision",
    "explained_in",
    "given_at",
    "expires_at",
    "current",
    "name",
    "country",
    "subdivision",
    "city",
    "services",
    "phone",
    "text_number",
    "hours",
    "hotline",
    "notes",
    "closure_reason",
    "incoming_referral",
    "reason",
    "details",
    "trafficking_status",
    "trafficking_status_decided_by",
    "type_of_exploitation",
    "forced_labour_industry",
    "recruitment_channel",
];
/// The lists whose items a path may name (the case's item lists, then notes).
const LISTS: [&str; 6] = ["people", "needs", "trafficking_events", "consents", "referrals", "notes"];
/// A row holds at most this many fields: a write of a case has a few hundred.
const MAX_FIELDS: u64 = 1 << 20;

/// One change of a row, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub path: String,
    pub value: Stored,
    /// The changes it replaced: (device number, sequence number).
    pub parents: Vec<(i64, i64)>,
}

/// Where a change's value is.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    /// Gone: replaced, or its item or case removed.
    Blank,
    /// Here, as JSON text.
    Json(String),
    /// In the case's row, which holds this very value at this path.
    InRow,
}

impl Stored {
    pub fn is_blank(&self) -> bool {
        *self == Stored::Blank
    }
}

fn key_number(key: &str) -> Option<u64> {
    KEYS.iter().position(|k| *k == key).map(|n| n as u64)
}

fn put_key(out: &mut Vec<u8>, key: &str) {
    match key_number(key) {
        Some(n) => put_varint(out, 1 + n),
        None => {
            out.push(0);
            put_bytes(out, key.as_bytes());
        }
    }
}

/// A path that names an item: which list, the item id, and the key after it.
fn item_path(path: &str) -> Option<(usize, Uuid, Option<&str>)> {
    let (list, rest) = path.split_once('.')?;
    let l = LISTS.iter().position(|x| *x == list)?;
    let (id, key) = match rest.split_once('.') {
        Some((id, key)) => (id, Some(key)),
        None => (rest, None),
    };
    let u = Uuid::parse_str(id).ok()?;
    // Only an id written as the store writes it comes back the same from 16 bytes.
    (u.hyphenated().to_string() == id).then_some((l, u, key))
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Parents come from other laptops too: any number is kept as it came (zigzag).
fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

pub fn encode(fields: &[Field]) -> Vec<u8> {
    let mut items: Vec<Uuid> = Vec::new();
    let paths: Vec<Option<(usize, usize, Option<&str>)>> = fields
        .iter()
        .map(|f| {
            item_path(&f.path).map(|(l, u, key)| {
                let i = items.iter().position(|x| *x == u).unwrap_or_else(|| {
                    items.push(u);
                    items.len() - 1
                });
                (l, i, key)
            })
        })
        .collect();
    let mut out = Vec::with_capacity(16 * items.len() + fields.iter().map(|f| 8 + f.path.len()).sum::<usize>());
    out.push(VERSION);
    put_varint(&mut out, items.len() as u64);
    for u in &items {
        out.extend_from_slice(u.as_bytes());
    }
    put_varint(&mut out, fields.len() as u64);
    for (f, p) in fields.iter().zip(paths) {
        match (p, key_number(&f.path)) {
            (Some((list, item, key)), _) => {
                put_varint(&mut out, 2 + 2 * list as u64 + u64::from(key.is_some()));
                put_varint(&mut out, item as u64);
                if let Some(key) = key {
                    put_key(&mut out, key);
                }
            }
            (None, Some(n)) => {
                out.push(1);
                put_varint(&mut out, n);
            }
            (None, None) => {
                out.push(0);
                put_bytes(&mut out, f.path.as_bytes());
            }
        }
        let stored = match f.value {
            Stored::Blank => 0,
            Stored::Json(_) => 1,
            Stored::InRow => 4,
        };
        out.push(stored | (u8::from(!f.parents.is_empty()) << 1));
        if let Stored::Json(v) = &f.value {
            put_bytes(&mut out, v.as_bytes());
        }
        if !f.parents.is_empty() {
            put_varint(&mut out, f.parents.len() as u64);
            for (d, s) in &f.parents {
                put_varint(&mut out, zigzag(*d));
                put_varint(&mut out, zigzag(*s));
            }
        }
    }
    out
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.b.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(n);
            }
        }
        None
    }

    fn number(&mut self) -> Option<i64> {
        Some(unzigzag(self.varint()?))
    }

    fn bytes(&mut self, len: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(len)?;
        let s = self.b.get(self.at..end)?;
        self.at = end;
        Some(s)
    }

    fn text(&mut self) -> Option<&'a str> {
        let len = usize::try_from(self.varint()?).ok()?;
        std::str::from_utf8(self.bytes(len)?).ok()
    }

    fn key(&mut self) -> Option<&'a str> {
        match self.varint()? {
            0 => self.text(),
            n => KEYS.get(usize::try_from(n - 1).ok()?).copied(),
        }
    }
}

/// The fields of a row; `None` if the bytes are not a row this code wrote.
pub fn decode(bytes: &[u8]) -> Option<Vec<Field>> {
    let mut r = Reader { b: bytes, at: 0 };
    let version = r.byte()?;
    if version != 1 && version != VERSION {
        return None;
    }
    let n_items = r.varint()?;
    // Each item takes 16 bytes: a count beyond the row's length is damage.
    if n_items > (bytes.len() / 16) as u64 {
        return None;
    }
    let mut items = Vec::with_capacity(n_items as usize);
    for _ in 0..n_items {
        items.push(Uuid::from_slice(r.bytes(16)?).ok()?.hyphenated().to_string());
    }
    let n_fields = r.varint()?;
    if n_fields > MAX_FIELDS || n_fields > bytes.len() as u64 {
        return None;
    }
    let mut out = Vec::with_capacity(n_fields as usize);
    for _ in 0..n_fields {
        let tag = r.varint()?;
        // Version 1 has no numbered keys: its item tags start at 1.
        let first_item = if version == 1 { 1 } else { 2 };
        let path = if tag == 0 {
            r.text()?.to_string()
        } else if tag < first_item {
            KEYS.get(usize::try_from(r.varint()?).ok()?)?.to_string()
        } else {
            let list = LISTS.get(usize::try_from((tag - first_item) / 2).ok()?)?;
            let item = items.get(usize::try_from(r.varint()?).ok()?)?;
            if (tag - first_item) % 2 == 1 {
                let key = if version == 1 { r.text()? } else { r.key()? };
                format!("{list}.{item}.{key}")
            } else {
                format!("{list}.{item}")
            }
        };
        let flags = r.byte()?;
        let known = if version == 1 { 3 } else { 7 };
        if flags & !known != 0 || flags & 5 == 5 {
            return None;
        }
        let value = match flags & 5 {
            1 => Stored::Json(r.text()?.to_string()),
            4 => Stored::InRow,
            _ => Stored::Blank,
        };
        let mut parents = Vec::new();
        if flags & 2 == 2 {
            let n = r.varint()?;
            if n == 0 || n > bytes.len() as u64 {
                return None;
            }
            for _ in 0..n {
                parents.push((r.number()?, r.number()?));
            }
        }
        out.push(Field { path, value, parents });
    }
    (r.at == bytes.len()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn path() -> impl Strategy<Value = String> {
        let id = any::<u128>().prop_map(|n| Uuid::from_u128(n).hyphenated().to_string());
        prop_oneof![
            "[a-z_]{1,20}",
            (0..KEYS.len()).prop_map(|k| KEYS[k].to_string()),
            (0..LISTS.len(), id.clone(), 0..KEYS.len()).prop_map(|(l, id, k)| format!("{}.{id}.{}", LISTS[l], KEYS[k])),
            (0..LISTS.len(), id.clone()).prop_map(|(l, id)| format!("{}.{id}", LISTS[l])),
            (0..LISTS.len(), id, "[a-z_.]{0,12}").prop_map(|(l, id, k)| format!("{}.{id}.{k}", LISTS[l])),
            // An id the store would not write (upper case) stays text.
            "people\\.[0-9A-F-]{36}\\.alias",
            ".{0,40}",
        ]
    }

    fn field() -> impl Strategy<Value = Field> {
        let value = prop_oneof![Just(Stored::Blank), Just(Stored::InRow), ".{0,60}".prop_map(Stored::Json)];
        (path(), value, proptest::collection::vec((any::<i64>(), any::<i64>()), 0..3))
            .prop_map(|(path, value, parents)| Field { path, value, parents })
    }

    proptest! {
        #[test]
        fn every_row_reads_back_as_written(fields in proptest::collection::vec(field(), 0..40)) {
            prop_assert_eq!(decode(&encode(&fields)), Some(fields));
        }

        #[test]
        fn damaged_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn a_cut_row_is_damage(fields in proptest::collection::vec(field(), 1..10), cut in 1usize..8) {
            let b = encode(&fields);
            let cut = cut.min(b.len() - 1);
            prop_assert_eq!(decode(&b[..b.len() - cut]), None);
        }
    }

    #[test]
    fn item_ids_are_written_once() {
        let id = "01a242bd-e6f4-737e-a037-bd5a8573db13";
        let fields: Vec<Field> = ["alias", "given_name", "family_name", "birth_date"]
            .iter()
            .map(|k| Field { path: format!("people.{id}.{k}"), value: Stored::Json("\"x\"".into()), parents: vec![] })
            .collect();
        let b = encode(&fields);
        assert_eq!(b.windows(16).filter(|w| *w == Uuid::parse_str(id).unwrap().as_bytes()).count(), 1);
        let text: usize = fields.iter().map(|f| f.path.len() + 3).sum();
        assert!(b.len() * 2 < text, "{} bytes for {text} of text", b.len());
    }

    #[test]
    fn rows_of_version_1_still_read() {
        let id = "01a242bd-e6f4-737e-a037-bd5a8573db13";
        let mut b = vec![1, 1];
        b.extend_from_slice(Uuid::parse_str(id).unwrap().as_bytes());
        b.push(3);
        // `status` as text, with its value.
        b.extend([0, 6]);
        b.extend(b"status");
        b.extend([1, 8]);
        b.extend(b"\"Active\"");
        // `people.<id>.alias`, blanked, with a parent (device 1, number 2).
        b.extend([2, 0, 5]);
        b.extend(b"alias");
        b.extend([2, 1, 2, 4]);
        // `people.<id>`: the item's position.
        b.extend([1, 0, 1, 1, b'0']);
        let fields = decode(&b).unwrap();
        assert_eq!(
            fields[0],
            Field { path: "status".into(), value: Stored::Json("\"Active\"".into()), parents: vec![] }
        );
        assert_eq!(
            fields[1],
            Field { path: format!("people.{id}.alias"), value: Stored::Blank, parents: vec![(1, 2)] }
        );
        assert_eq!(fields[2], Field { path: format!("people.{id}"), value: Stored::Json("0".into()), parents: vec![] });
        // Version 1 knew no row mark.
        let last = b.len() - 3;
        b[last] = 4;
        assert_eq!(decode(&b), None);
    }

    #[test]
    fn the_forms_keys_are_numbers_not_text() {
        let fields: Vec<Field> = ["majority_at_exploitation", "type_of_labour_exploitation", "status"]
            .iter()
            .map(|k| Field { path: k.to_string(), value: Stored::InRow, parents: vec![] })
            .collect();
        // Version, no items, three fields, each a tag, a number and the row mark.
        assert_eq!(encode(&fields).len(), 3 + 3 * 3);
        let mut keys = KEYS.to_vec();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), KEYS.len(), "a key listed twice");
    }

    #[test]
    fn every_key_of_the_form_has_a_number() {
        for f in crate::form::case_fields() {
            match &f.kind {
                // A list's own key is the start of its items' paths (`LISTS`).
                crate::form::Kind::List { item } => {
                    assert!(LISTS.contains(&f.key), "{}", f.key);
                    for i in item {
                        assert!(key_number(i.key).is_some(), "{}.{}", f.key, i.key);
                    }
                }
                _ => assert!(key_number(f.key).is_some(), "{}", f.key),
            }
        }
        for f in crate::form::directory_fields() {
            assert!(key_number(f.key).is_some(), "directory {}", f.key);
        }
    }
}
