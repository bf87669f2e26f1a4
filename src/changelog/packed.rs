//! How one row of the change log holds its fields: the changes of one write
//! (one device, one clock time, one author, one entity, consecutive sequence
//! numbers), in sequence order, as bytes.
//!
//! Field paths name items by id (`people.<uuid>.alias`); a write of a case names the
//! same few items dozens of times, so each row lists its item ids once, as 16
//! bytes, and a path refers to one by its place in that list. Devices in parents
//! are the small numbers of `log_devices`. Values stay JSON text: blanking one
//! rewrites the row without parsing any value.
//!
//! ```text
//! row    = version:u8=1  items:varint  item*16B  fields:varint  field*
//! field  = path  flags:u8  [len:varint json]  [n:varint (device:varint seq:varint)*]
//! path   = 0 len:varint utf8                      a path with no item in it
//!        | 1+2*list+has_key item:varint [len:varint key]   `<list>.<item>[.<key>]`
//! flags  = bit 0: the value is kept (not blanked); bit 1: it has parents
//! ```

use uuid::Uuid;

const VERSION: u8 = 1;
/// The lists whose items a path may name (the case's item lists, then notes).
const LISTS: [&str; 6] = ["people", "needs", "trafficking_events", "consents", "referrals", "notes"];
/// A row holds at most this many fields: a write of a case has a few hundred.
const MAX_FIELDS: u64 = 1 << 20;

/// One change of a row, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub path: String,
    /// The value's JSON text; `None` once blanked.
    pub value: Option<String>,
    /// The changes it replaced: (device number, sequence number).
    pub parents: Vec<(i64, i64)>,
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
        match p {
            Some((list, item, key)) => {
                put_varint(&mut out, 1 + 2 * list as u64 + u64::from(key.is_some()));
                put_varint(&mut out, item as u64);
                if let Some(key) = key {
                    put_bytes(&mut out, key.as_bytes());
                }
            }
            None => {
                out.push(0);
                put_bytes(&mut out, f.path.as_bytes());
            }
        }
        out.push(u8::from(f.value.is_some()) | (u8::from(!f.parents.is_empty()) << 1));
        if let Some(v) = &f.value {
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
}

/// The fields of a row; `None` if the bytes are not a row this code wrote.
pub fn decode(bytes: &[u8]) -> Option<Vec<Field>> {
    let mut r = Reader { b: bytes, at: 0 };
    if r.byte()? != VERSION {
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
        let path = if tag == 0 {
            r.text()?.to_string()
        } else {
            let list = LISTS.get(usize::try_from((tag - 1) / 2).ok()?)?;
            let item = items.get(usize::try_from(r.varint()?).ok()?)?;
            if (tag - 1) % 2 == 1 {
                format!("{list}.{item}.{}", r.text()?)
            } else {
                format!("{list}.{item}")
            }
        };
        let flags = r.byte()?;
        if flags > 3 {
            return None;
        }
        let value = if flags & 1 == 1 { Some(r.text()?.to_string()) } else { None };
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
            (0..LISTS.len(), id.clone()).prop_map(|(l, id)| format!("{}.{id}", LISTS[l])),
            (0..LISTS.len(), id, "[a-z_.]{0,12}").prop_map(|(l, id, k)| format!("{}.{id}.{k}", LISTS[l])),
            // An id the store would not write (upper case) stays text.
            "people\\.[0-9A-F-]{36}\\.alias",
            ".{0,40}",
        ]
    }

    fn field() -> impl Strategy<Value = Field> {
        (path(), proptest::option::of(".{0,60}"), proptest::collection::vec((any::<i64>(), any::<i64>()), 0..3))
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
            .map(|k| Field { path: format!("people.{id}.{k}"), value: Some("\"x\"".into()), parents: vec![] })
            .collect();
        let b = encode(&fields);
        assert_eq!(b.windows(16).filter(|w| *w == Uuid::parse_str(id).unwrap().as_bytes()).count(), 1);
        let text: usize = fields.iter().map(|f| f.path.len() + 3).sum();
        assert!(b.len() * 2 < text, "{} bytes for {text} of text", b.len());
    }
}
