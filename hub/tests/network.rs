//! Laptops (real encrypted stores) syncing through a real `amparo-hub` on
//! loopback, on SQLite and on PostgreSQL: what arrives, what survives a kill -9,
//! what is refused, and that the hub never holds a survivor's name.

mod support;

use amparo::database::keys::KdfParams;
use amparo::store::Store;
use amparo::sync::hub::Transport;
use amparo::sync::SyncError;
use amparo_hub::client::HubClient;
use serde_json::Value;
use support::hub::Running;
use support::laptops::{cases, client, organisation, setup, sync};

const CANARY: &str = "Zyxwanita Canaryperez";

fn canary_case() -> Value {
    let mut case = amparo::sample::full_case();
    case["people"][0]["alias"] = Value::String(CANARY.into());
    case
}

fn edits_arrive_and_survive_a_killed_hub(database: Option<String>) {
    let data = tempfile::tempdir().unwrap();
    let hub = Running::start(data.path(), database.as_deref());
    let (_dirs, mut l) = organisation(&hub, 3);
    let case = l[0].create_case(canary_case(), None).unwrap();
    let id = case["id"].as_str().unwrap().to_string();
    let number = case["case_number"].as_str().unwrap().to_string();
    assert_eq!(sync(&mut l[0], &hub).unwrap().pushed_batches, 1);
    let got = sync(&mut l[1], &hub).unwrap();
    assert_eq!((got.pulled_batches, got.imported.new_cases), (1, 1));
    l[1].set_fields(&number, &[("status".into(), "Closed".into())]).unwrap();
    sync(&mut l[1], &hub).unwrap();

    // kill -9 and start again: the same certificate, and everything acknowledged.
    let url = database.clone();
    hub.kill();
    let hub = Running::start(data.path(), url.as_deref());
    assert_eq!(hub.setup_code, None, "a hub with an organisation prints no new setup code");
    for s in l.iter_mut() {
        sync(s, &hub).unwrap();
    }
    // Nothing left to move: a second round is a no-op.
    let again = sync(&mut l[2], &hub).unwrap();
    assert_eq!((again.pushed_batches, again.pulled_batches), (0, 0));
    let expected = cases(&l[1]);
    assert_eq!(expected[&id]["status"], "Closed");
    for s in &l {
        assert_eq!(cases(s), expected, "every laptop holds the same cases");
    }

    // The hub holds sealed bytes only: no name anywhere in its folder or database.
    let mut bytes = Vec::new();
    for f in std::fs::read_dir(data.path()).unwrap() {
        bytes.extend(std::fs::read(f.unwrap().path()).unwrap());
    }
    if let Some(url) = &database {
        bytes.extend(support::postgres::dump(url));
    }
    for word in [CANARY, "Zyxwanita", "Casa Amparo", "Admin L0"] {
        assert!(!contains(&bytes, word.as_bytes()), "{word} is on the hub");
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn sqlite_edits_arrive_and_survive_a_killed_hub() {
    edits_arrive_and_survive_a_killed_hub(None);
}

#[test]
fn postgres_edits_arrive_and_survive_a_killed_hub() {
    edits_arrive_and_survive_a_killed_hub(Some(support::postgres::fresh_database()));
}

fn refused<T: std::fmt::Debug>(r: Result<T, SyncError>) -> String {
    match r {
        Err(SyncError::HubRefused { reason }) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn forged_replayed_foreign_and_revoked_requests_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let hub = Running::start(data.path(), None);
    let (_dirs, mut l) = organisation(&hub, 2);
    l[0].create_case(canary_case(), None).unwrap();
    sync(&mut l[0], &hub).unwrap();
    let (a, b) = (client(&l[0], &hub), client(&l[1], &hub));
    let a_id = l[0].session().device_id.clone();
    let b_id = l[1].session().device_id.clone();

    // Another certificate than the one pinned: nothing is sent.
    let wrong = HubClient::new(&hub.url, &format!("{}AB", "AB:".repeat(31)), &a_id, l[0].hub_signer().unwrap());
    assert!(matches!(wrong.devices(), Err(SyncError::HubCertificate { .. })));

    // Plain http would trust any server: nothing is sent.
    let plain =
        HubClient::new(&hub.url.replace("https://", "http://"), &hub.fingerprint, &a_id, l[0].hub_signer().unwrap());
    assert!(matches!(plain.devices(), Err(SyncError::HubAddress { .. })));

    // A request seen on the wire, sent again.
    let path = "/v1/vector";
    let signed = a.sign("GET", path, &[]);
    a.send("GET", path, &[], &signed).unwrap();
    assert_eq!(refused(a.send("GET", path, &[], &signed)), "replayed");
    // Signed with another key than the device it names (B's key, A's name).
    let forged = HubClient::new(&hub.url, &hub.fingerprint, &a_id, l[1].hub_signer().unwrap());
    assert_eq!(refused(forged.send("GET", path, &[], &forged.sign("GET", path, &[]))), "bad_signature");
    // A clock ten minutes behind.
    let stale = a.sign_at("GET", path, &[], signed.time - 10 * 60 * 1000, &"0".repeat(32));
    assert_eq!(refused(a.send("GET", path, &[], &stale)), "clock");

    // A's batch, pushed by B: under B's name it is another device's; under A's, B may not.
    let mut bc = client(&l[1], &hub);
    let a_batch = bc.fetch(&a_id, 1).unwrap();
    assert_eq!(
        refused(b.send(
            "PUT",
            &format!("/v1/batches/{b_id}/1"),
            &a_batch,
            &b.sign("PUT", &format!("/v1/batches/{b_id}/1"), &a_batch)
        )),
        "bad_batch"
    );
    assert_eq!(
        refused(b.send(
            "PUT",
            &format!("/v1/batches/{a_id}/2"),
            &a_batch,
            &b.sign("PUT", &format!("/v1/batches/{a_id}/2"), &a_batch)
        )),
        "not_yours"
    );

    // Another organisation on the same hub sees none of this one's batches.
    let code = std::process::Command::new(env!("CARGO_BIN_EXE_amparo-hub"))
        .args(["setup-code", "--data"])
        .arg(data.path())
        .output()
        .unwrap();
    let code = String::from_utf8(code.stdout).unwrap().trim().strip_prefix("setup code: ").unwrap().to_string();
    let other_dir = tempfile::tempdir().unwrap();
    let other = Store::create(other_dir.path(), &setup("X0"), KdfParams::INSECURE_FOR_TESTS).unwrap();
    let mut oc = client(&other, &hub);
    oc.register(&code, &other.org_id().unwrap(), "X0").unwrap();
    assert_eq!(oc.list(&Default::default(), 100).unwrap(), vec![]);
    assert_eq!(refused(oc.fetch(&a_id, 1)), "no_such_batch");
    let theirs = amparo::sync::hub::Listed { device: a_id.clone(), number: 1, sha256: String::new() };
    assert_eq!(refused(oc.fetch_many(std::slice::from_ref(&theirs))), "no_such_batch", "nor several at once");
    // Their own laptop gets it, several at a time, and nothing it did not ask for.
    let mut own = client(&l[1], &hub);
    let listed = own.list(&Default::default(), 100).unwrap();
    let got = own.fetch_many(&listed).unwrap();
    assert!(!got.is_empty() && got.len() <= listed.len());
    for (l, bytes) in listed.iter().zip(&got) {
        assert_eq!(amparo::sync::hub::sha256_hex(bytes), l.sha256);
    }
    // The setup code worked once.
    assert!(matches!(oc.register(&code, "another-org", "X0"), Err(SyncError::HubSetupCode)));

    // A token works once.
    a.invite("one-time", 3600).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let third = Store::create(dir.path(), &setup("L9"), KdfParams::INSECURE_FOR_TESTS).unwrap();
    client(&third, &hub).enrol("one-time", "L9").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fourth = Store::create(dir.path(), &setup("L8"), KdfParams::INSECURE_FOR_TESTS).unwrap();
    assert!(matches!(client(&fourth, &hub).enrol("one-time", "L8"), Err(SyncError::HubToken)));
    // A device code already in use on the hub, named.
    a.invite("second", 3600).unwrap();
    assert!(
        matches!(client(&fourth, &hub).enrol("second", "L0"), Err(SyncError::HubDeviceCode { code }) if code == "L0")
    );
    // Only an administrator's laptop invites and revokes.
    assert_eq!(refused(b.invite("from-b", 3600)), "not_admin");

    // Only the administrator's laptop changes the organisation key.
    assert_eq!(refused(client(&l[1], &hub).put_epoch(1, b"not a record")), "not_admin");
    // Revoked: refused at once, by name, and a new key sealed to the others only.
    let mut admin = client(&l[0], &hub);
    l[0].hub_revoke(&mut admin, &b_id, "L1").unwrap();
    assert!(matches!(sync(&mut l[1], &hub), Err(amparo::store::StoreError::Sync(SyncError::HubRevoked))));
    let listed = a.devices().unwrap();
    assert!(listed.iter().any(|d| d.id == b_id && d.revoked_at.is_some()));
    assert!(matches!(client(&l[1], &hub).epochs(0), Err(SyncError::HubRevoked)));
    // What is written after the revocation, even in the revoked laptop's hands
    // (a copy of the hub's disk, say), does not open there.
    l[0].create_case(canary_case(), None).unwrap();
    sync(&mut l[0], &hub).unwrap();
    let mut c = client(&l[0], &hub);
    let newest = c.list(&Default::default(), 1000).unwrap().into_iter().rfind(|b| b.device == a_id).unwrap();
    let batch = c.fetch(&a_id, newest.number).unwrap();
    assert_eq!(amparo::sync::bundle::read_signed(&batch).unwrap().0.epoch, 1);
    let e = l[1].sync_import(&batch, &mut |_, _| {}).unwrap_err();
    assert!(matches!(e, amparo::store::StoreError::Sync(SyncError::EpochKey { .. })), "{e:?}");
}

/// Counts what the hub acknowledged, for the test that kills it mid-push.
struct Counting<'a> {
    inner: HubClient,
    acknowledged: &'a std::sync::atomic::AtomicUsize,
}

impl Transport for Counting<'_> {
    fn push(&mut self, number: i64, bytes: &[u8]) -> Result<(), SyncError> {
        self.inner.push(number, bytes)?;
        self.acknowledged.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
    fn list(
        &mut self,
        since: &amparo::sync::bundle::Vector,
        limit: usize,
    ) -> Result<Vec<amparo::sync::hub::Listed>, SyncError> {
        self.inner.list(since, limit)
    }
    fn fetch(&mut self, device: &str, number: i64) -> Result<Vec<u8>, SyncError> {
        self.inner.fetch(device, number)
    }
    fn epochs(&mut self, since: u32) -> Result<Vec<Vec<u8>>, SyncError> {
        self.inner.epochs(since)
    }
    fn put_epoch(&mut self, number: u32, bytes: &[u8]) -> Result<(), SyncError> {
        self.inner.put_epoch(number, bytes)
    }
    fn revoke(&mut self, device: &str) -> Result<i64, SyncError> {
        self.inner.revoke(device)
    }
}

fn hub_batches(data: &std::path::Path) -> i64 {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_amparo-hub"))
        .args(["status", "--data"])
        .arg(data)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines().find_map(|l| l.strip_prefix("batches: ")).unwrap().parse().unwrap()
}

/// kill -9 of the hub while a laptop pushes 1,000 batches: every batch it
/// acknowledged is still there after the restart, and the laptop pushes the rest.
#[test]
fn a_hub_killed_during_a_thousand_pushes_loses_no_acknowledged_batch() {
    let data = tempfile::tempdir().unwrap();
    let hub = Running::start(data.path(), None);
    let (_dirs, mut l) = organisation(&hub, 2);
    for i in 0..1000u64 {
        l[0].create_case(amparo::sample::generated(i), None).unwrap();
        l[0].hub_prepare().unwrap();
    }
    assert_eq!(l[0].hub_waiting().unwrap().1, 1000, "1,000 batches wait in the outbox");
    let acknowledged = std::sync::atomic::AtomicUsize::new(0);
    let mut t = Counting { inner: client(&l[0], &hub), acknowledged: &acknowledged };
    let pushing = &mut l[0];
    let cut = std::thread::scope(|scope| {
        let pusher = scope.spawn(move || pushing.hub_sync(&mut t, &mut |_, _| {}));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while acknowledged.load(std::sync::atomic::Ordering::SeqCst) < 300 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        hub.kill();
        pusher.join().unwrap()
    });
    assert!(cut.is_err(), "the push was cut off");
    let acked = acknowledged.load(std::sync::atomic::Ordering::SeqCst);
    assert!((300..1000).contains(&acked), "{acked}");
    assert!(hub_batches(data.path()) >= acked as i64, "an acknowledged batch was lost");

    let hub = Running::start(data.path(), None);
    let done = sync(&mut l[0], &hub).unwrap();
    assert_eq!(done.pushed_batches, 1000 - acked);
    assert_eq!(l[0].hub_waiting().unwrap(), (0, 0));
    let got = sync(&mut l[1], &hub).unwrap();
    assert_eq!(got.imported.new_cases, 1000);
    assert_eq!(cases(&l[1]), cases(&l[0]));
}

/// Joining with a hub invitation enrols first: a device code the hub knows
/// already (a laptop enrolled after the invitation was written) is refused next
/// to its field with nothing written, and the token still works for another
/// code. With the hub down, the laptop is made and enrols at its first sync.
#[test]
fn a_device_code_taken_on_the_hub_is_refused_at_join() {
    let data = tempfile::tempdir().unwrap();
    let hub = Running::start(data.path(), None);
    let (_dirs, l) = organisation(&hub, 1);
    let invite = |s: &Store| {
        let h = amparo_hub::laptop::hub_invite(s).unwrap().expect("the laptop has a hub");
        s.invite_with(Some(h)).unwrap()
    };
    let (first, first_code) = invite(&l[0]);
    let (second, second_code) = invite(&l[0]);
    let kdf = KdfParams::INSECURE_FOR_TESTS;
    let a = tempfile::tempdir().unwrap();
    let (_s, enrolled) = amparo_hub::laptop::join(a.path(), &first, &first_code, &setup("TX4"), kdf).unwrap();
    assert!(enrolled, "enrolled at join");

    // The second invitation does not know TX4; the hub does.
    let b = tempfile::tempdir().unwrap();
    let e = amparo_hub::laptop::join(b.path(), &second, &second_code, &setup("TX4"), kdf).unwrap_err();
    let amparo::store::StoreError::Invalid(v) = &e else { panic!("{e:?}") };
    assert_eq!(v.paths(), ["device_code"], "shown next to the device code");
    assert!(!Store::exists(b.path()), "nothing was written");
    let (s, enrolled) = amparo_hub::laptop::join(b.path(), &second, &second_code, &setup("TX5"), kdf).unwrap();
    assert!(enrolled && s.hub_enrolment().unwrap().is_none(), "the token was still good");

    // With the hub down, the laptop is made all the same and enrols later.
    let (third, third_code) = invite(&l[0]);
    let url = hub.url.clone();
    hub.kill();
    let c = tempfile::tempdir().unwrap();
    let (mut s, enrolled) = amparo_hub::laptop::join(c.path(), &third, &third_code, &setup("TX6"), kdf).unwrap();
    assert!(!enrolled && s.hub_enrolment().unwrap().is_some());
    let hub = Running::start(data.path(), None);
    assert_ne!(hub.url, url, "a new port: the test talks to it directly");
    let client = client(&s, &hub);
    assert!(client.enrol_pending(&mut s).unwrap());
    sync(&mut s, &hub).unwrap();
}
