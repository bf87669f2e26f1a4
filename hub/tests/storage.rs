//! One storage suite, run against both backends: SQLite in a data folder and a
//! real PostgreSQL server started for the test.

mod support;

use amparo_hub::store::*;
use std::sync::Arc;

const SETUP: &str = "setup-hash";

fn device(id: &str, code: &str, admin: bool) -> Device {
    Device {
        id: id.into(),
        org: String::new(),
        code: code.into(),
        sign_key: format!("{id}-sign"),
        kx_key: format!("{id}-kx"),
        admin,
        enrolled_at: 1000,
        last_seen: None,
        revoked_at: None,
    }
}

fn batch(device: &str, number: i64, bytes: &[u8]) -> BatchInfo {
    BatchInfo { device: device.into(), number, epoch: 0, sha256: sha256_hex(bytes), len: bytes.len() as i64 }
}

/// An organisation `org` with its first device `<org>-a` (code A1).
fn org(s: &dyn HubStore, org: &str) {
    s.set_meta("setup_code", SETUP).unwrap();
    s.register_org(SETUP, org, &device(&format!("{org}-a"), "A1", true)).unwrap();
}

fn setup_code_works_once(s: &dyn HubStore) {
    s.set_meta("setup_code", SETUP).unwrap();
    assert!(matches!(s.register_org("wrong", "o1", &device("d1", "A1", true)), Err(StoreError::SetupCode)));
    s.register_org(SETUP, "o1", &device("d1", "A1", true)).unwrap();
    assert!(matches!(s.register_org(SETUP, "o2", &device("d2", "B1", true)), Err(StoreError::SetupCode)));
    let d = s.device("d1").unwrap().unwrap();
    assert_eq!((d.org.as_str(), d.code.as_str(), d.admin, d.revoked_at), ("o1", "A1", true, None));
    assert_eq!(s.stats().unwrap(), Stats { orgs: 1, devices: 1, ..Default::default() });
}

fn enrolment_tokens_work_once_and_expire(s: &dyn HubStore) {
    org(s, "o1");
    s.add_invitation("o1", "t1", "o1-a", 2000).unwrap();
    s.add_invitation("o1", "t2", "o1-a", 2000).unwrap();
    s.add_invitation("o1", "t3", "o1-a", 1500).unwrap();
    assert!(matches!(s.enrol("nope", &device("d2", "B1", false), 1200), Err(StoreError::TokenUnknown)));
    // A code in use is refused, and the token is not spent by the refusal.
    assert!(matches!(
        s.enrol("t1", &device("d2", "A1", false), 1200),
        Err(StoreError::DeviceCodeTaken { code }) if code == "A1"
    ));
    let d = s.enrol("t1", &device("d2", "B1", false), 1200).unwrap();
    assert_eq!(d.org, "o1");
    assert!(matches!(s.enrol("t1", &device("d3", "C1", false), 1200), Err(StoreError::TokenUsed)));
    assert!(matches!(s.enrol("t3", &device("d3", "C1", false), 1500), Err(StoreError::TokenExpired)));
    assert!(matches!(s.enrol("t2", &device("d2", "C1", false), 1200), Err(StoreError::DeviceTaken)));
    let codes: Vec<String> = s.devices("o1").unwrap().into_iter().map(|d| d.code).collect();
    assert_eq!(codes, ["A1", "B1"]);
}

fn batches_follow_each_other_and_retries_are_harmless(s: &dyn HubStore) {
    org(s, "o1");
    let a = "o1-a";
    assert_eq!(s.put_batch("o1", &batch(a, 1, b"one"), b"one", 5).unwrap(), Put::Stored);
    assert_eq!(s.put_batch("o1", &batch(a, 1, b"one"), b"one", 6).unwrap(), Put::AlreadyHeld);
    assert!(matches!(
        s.put_batch("o1", &batch(a, 1, b"forged"), b"forged", 6),
        Err(StoreError::BatchConflict { number: 1 })
    ));
    assert!(matches!(
        s.put_batch("o1", &batch(a, 3, b"three"), b"three", 6),
        Err(StoreError::OutOfOrder { number: 3, expected: 2 })
    ));
    s.put_batch("o1", &batch(a, 2, b"two"), b"two", 7).unwrap();
    assert_eq!(s.vector("o1").unwrap(), [(a.to_string(), 2)].into());
    assert_eq!(s.batch("o1", a, 2).unwrap().as_deref(), Some(&b"two"[..]));
    assert_eq!(s.batch("o1", a, 3).unwrap(), None);
    assert_eq!(s.stats().unwrap().bytes, 6);
}

fn pages_resume_from_any_vector(s: &dyn HubStore) {
    org(s, "o1");
    s.add_invitation("o1", "t", "o1-a", 9999).unwrap();
    s.enrol("t", &device("o1-b", "B1", false), 1000).unwrap();
    for n in 1..=5 {
        for d in ["o1-a", "o1-b"] {
            let bytes = format!("{d}/{n}");
            s.put_batch("o1", &batch(d, n, bytes.as_bytes()), bytes.as_bytes(), n).unwrap();
        }
    }
    // A laptop pulls three at a time, moving its vector on as it applies them.
    let mut have = Vector::new();
    let mut got = Vec::new();
    loop {
        let page = s.batches_since("o1", &have, 3).unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        for b in page {
            assert_eq!(have.get(&b.device).copied().unwrap_or(0) + 1, b.number, "in order per device");
            have.insert(b.device.clone(), b.number);
            got.push((b.device, b.number));
        }
    }
    assert_eq!(got.len(), 10);
    assert_eq!(have, s.vector("o1").unwrap());
    // From a vector that holds part of it: only the rest.
    let part: Vector = [("o1-a".to_string(), 4)].into();
    let rest = s.batches_since("o1", &part, 100).unwrap();
    assert_eq!(rest.len(), 6);
}

fn organisations_see_only_their_own(s: &dyn HubStore) {
    org(s, "o1");
    org(s, "o2");
    s.put_batch("o1", &batch("o1-a", 1, b"x"), b"x", 1).unwrap();
    assert_eq!(s.batch("o2", "o1-a", 1).unwrap(), None);
    assert!(s.batches_since("o2", &Vector::new(), 10).unwrap().is_empty());
    assert!(s.vector("o2").unwrap().is_empty());
    assert!(!s.revoke("o2", "o1-a", 5).unwrap(), "another organisation cannot revoke");
    assert_eq!(s.devices("o2").unwrap().len(), 1);
    assert!(s.revoke("o1", "o1-a", 5).unwrap());
    assert!(s.revoke("o1", "o1-a", 9).unwrap());
    assert_eq!(s.device("o1-a").unwrap().unwrap().revoked_at, Some(5), "the first revocation stands");
    assert_eq!(s.stats().unwrap().revoked_devices, 1);
}

fn epochs_follow_each_other(s: &dyn HubStore) {
    org(s, "o1");
    assert!(matches!(s.put_epoch("o1", 2, b"e2", 1), Err(StoreError::OutOfOrder { number: 2, expected: 1 })));
    assert_eq!(s.put_epoch("o1", 1, b"e1", 1).unwrap(), Put::Stored);
    assert_eq!(s.put_epoch("o1", 1, b"e1", 1).unwrap(), Put::AlreadyHeld);
    assert!(matches!(s.put_epoch("o1", 1, b"other", 1), Err(StoreError::BatchConflict { number: 1 })));
    s.put_epoch("o1", 2, b"e2", 1).unwrap();
    assert_eq!(s.epochs("o1").unwrap(), vec![(1, b"e1".to_vec()), (2, b"e2".to_vec())]);
}

fn nonces_are_used_once(s: &dyn HubStore) {
    assert!(s.use_nonce("d", "n1", 100, 0).unwrap());
    assert!(!s.use_nonce("d", "n1", 101, 0).unwrap(), "a replay");
    assert!(s.use_nonce("e", "n1", 101, 0).unwrap(), "another device's nonce");
    // Forgotten once older than the window (its timestamp is refused by then).
    assert!(s.use_nonce("d", "n1", 1000, 500).unwrap());
}

fn parallel_pushes_all_land(s: Arc<dyn HubStore>) {
    org(&*s, "o1");
    for i in 0..8 {
        s.add_invitation("o1", &format!("t{i}"), "o1-a", 9999).unwrap();
        s.enrol(&format!("t{i}"), &device(&format!("p{i}"), &format!("P{i}"), false), 1).unwrap();
    }
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                for n in 1..=25 {
                    let bytes = format!("p{i}/{n}");
                    let info = batch(&format!("p{i}"), n, bytes.as_bytes());
                    // Each batch sent twice, as a laptop retrying after a dropped answer.
                    assert_eq!(s.put_batch("o1", &info, bytes.as_bytes(), n).unwrap(), Put::Stored);
                    assert_eq!(s.put_batch("o1", &info, bytes.as_bytes(), n).unwrap(), Put::AlreadyHeld);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(s.stats().unwrap().batches, 200);
    assert!(s.vector("o1").unwrap().values().all(|n| *n == 25));
}

macro_rules! suite {
    ($backend:ident, $open:expr) => {
        mod $backend {
            use super::*;
            #[allow(clippy::redundant_closure_call)]
            fn open() -> (Arc<dyn HubStore>, Box<dyn std::any::Any>) {
                $open()
            }
            #[test]
            fn setup_code_works_once() {
                super::setup_code_works_once(&*open().0);
            }
            #[test]
            fn enrolment_tokens_work_once_and_expire() {
                super::enrolment_tokens_work_once_and_expire(&*open().0);
            }
            #[test]
            fn batches_follow_each_other_and_retries_are_harmless() {
                super::batches_follow_each_other_and_retries_are_harmless(&*open().0);
            }
            #[test]
            fn pages_resume_from_any_vector() {
                super::pages_resume_from_any_vector(&*open().0);
            }
            #[test]
            fn organisations_see_only_their_own() {
                super::organisations_see_only_their_own(&*open().0);
            }
            #[test]
            fn epochs_follow_each_other() {
                super::epochs_follow_each_other(&*open().0);
            }
            #[test]
            fn nonces_are_used_once() {
                super::nonces_are_used_once(&*open().0);
            }
            #[test]
            fn parallel_pushes_all_land() {
                let (s, _keep) = open();
                super::parallel_pushes_all_land(s);
            }
        }
    };
}

suite!(sqlite, || {
    let dir = tempfile::tempdir().unwrap();
    let s: Arc<dyn HubStore> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    (s, Box::new(dir) as Box<dyn std::any::Any>)
});

suite!(postgres, || {
    let s: Arc<dyn HubStore> = Arc::new(PostgresStore::connect(&support::postgres::fresh_database()).unwrap());
    (s, Box::new(()) as Box<dyn std::any::Any>)
});
