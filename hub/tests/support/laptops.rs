//! Laptops of one organisation, as real encrypted stores, for the hub's tests.

use super::hub::Running;
use amparo::database::keys::KdfParams;
use amparo::store::{Setup, Store};
use amparo::sync::hub::HubSettings;
use amparo_hub::client::HubClient;
use serde_json::Value;
use std::collections::BTreeMap;

pub const PASS: &str = "correct horse battery staple";

pub fn setup(code: &str) -> Setup {
    Setup {
        org: "Casa Amparo".into(),
        device_code: code.into(),
        user: format!("Admin {code}"),
        passphrase: String::from(PASS).into(),
        locale: "en".into(),
    }
}

pub fn client(s: &Store, hub: &Running) -> HubClient {
    HubClient::new(&hub.url, &hub.fingerprint, &s.session().device_id, s.hub_signer().unwrap())
}

pub fn sync(s: &mut Store, hub: &Running) -> Result<amparo::sync::hub::HubSummary, amparo::store::StoreError> {
    let mut c = client(s, hub);
    s.hub_sync(&mut c, &mut |_, _| {})
}

pub fn cases(s: &Store) -> BTreeMap<String, Value> {
    let mut out = Vec::new();
    s.export_jsonl(&mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| (v["id"].as_str().unwrap().to_string(), v))
        .collect()
}

/// The first laptop registers the organisation; the others join it (the
/// organisation key by invitation) and enrol with a token from the first.
pub fn organisation(hub: &Running, n: usize) -> (Vec<tempfile::TempDir>, Vec<Store>) {
    let mut dirs = vec![tempfile::tempdir().unwrap()];
    let mut first = Store::create(dirs[0].path(), &setup("L0"), KdfParams::INSECURE_FOR_TESTS).unwrap();
    first.set_hub(&HubSettings { url: hub.url.clone(), fingerprint: hub.fingerprint.clone() }).unwrap();
    let admin = client(&first, hub);
    admin.register(hub.setup_code.as_deref().unwrap(), &first.org_id().unwrap(), "L0").unwrap();
    let (invitation, passphrase) = first.invite().unwrap();
    let mut stores = vec![first];
    for i in 1..n {
        dirs.push(tempfile::tempdir().unwrap());
        let code = format!("L{i}");
        let s = Store::join(dirs[i].path(), &invitation, &passphrase, &setup(&code), KdfParams::INSECURE_FOR_TESTS)
            .unwrap();
        let token = format!("token-{i}-{}", std::process::id());
        admin.invite(&token, 7 * 24 * 3600).unwrap();
        client(&s, hub).enrol(&token, &code).unwrap();
        stores.push(s);
    }
    (dirs, stores)
}
