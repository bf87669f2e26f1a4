//! What a laptop does with its hub, the same from the CLI and from the app:
//! connect to a new hub, enrol, revoke another laptop.

use crate::client::HubClient;
use crate::store::Device;
use amparo::database::keys::KdfParams;
use amparo::intake::{FieldError, Issue, ValidationErrors};
use amparo::repositories::users::Role;
use amparo::store::hub::Shared;
use amparo::store::{Setup, Store, StoreError, Thing};
use amparo::sync::hub::{HubInvite, HubSettings};
use amparo::sync::identity::Newcomer;
use amparo::sync::SyncError;
use std::path::Path;

/// Register this organisation with a new hub, as its first device
/// (administrators), and remember the hub. `fingerprint` and `setup_code` are the
/// ones the hub printed at its first start.
pub fn connect(store: &mut Store, url: &str, fingerprint: &str, setup_code: &str) -> Result<HubSettings, StoreError> {
    store.require(Role::Administrator)?;
    let url = url.trim().trim_end_matches('/').to_string();
    let fingerprint = crate::auth::normalise_fingerprint(fingerprint);
    let missing: Vec<Issue> =
        [("url", url.as_str()), ("fingerprint", fingerprint.as_str()), ("setup_code", setup_code.trim())]
            .into_iter()
            .filter(|(_, v)| v.is_empty())
            .map(|(k, _)| Issue::new(k, FieldError::Required))
            .collect();
    if !missing.is_empty() {
        return Err(ValidationErrors(missing).into());
    }
    let c = HubClient::new(&url, &fingerprint, &store.session().device_id, store.hub_signer()?);
    c.register(setup_code.trim(), &store.org_id()?, &store.session().device_code)?;
    let settings = HubSettings { url, fingerprint };
    store.set_hub(&settings)?;
    Ok(settings)
}

/// What an invitation needs for the new laptop to enrol itself with the hub, if
/// this laptop has one: a one-time token, told to the hub (only its hash) now.
pub fn hub_invite(store: &Store) -> Result<Option<HubInvite>, StoreError> {
    let Some(h) = store.hub_settings()? else { return Ok(None) };
    store.require(Role::Administrator)?;
    let token = amparo::sync::hub::new_token();
    HubClient::for_store(store)?.invite(&token, amparo::sync::hub::TOKEN_LIFETIME_S)?;
    Ok(Some(HubInvite { url: h.url, fingerprint: h.fingerprint, token }))
}

/// Join an organisation at first start with an invitation. One that carries a
/// hub enrols there first, before the store exists: a device code the hub knows
/// already, an expired or used token, or another certificate are refused with
/// nothing written, and the token stays good for another try. A hub that does
/// not answer is no reason to wait: the store is made, and the laptop enrols at
/// its first sync. Returns the store and whether it enrolled now.
pub fn join(
    dir: &Path,
    invitation: &[u8],
    passphrase: &str,
    setup: &Setup,
    kdf: KdfParams,
) -> Result<(Store, bool), StoreError> {
    let opened = Store::check_join(invitation, passphrase, setup)?;
    let Some(hub) = opened.about.hub.clone() else {
        return Ok((Store::join_checked(dir, &opened, setup, kdf, None, false)?, false));
    };
    let newcomer = Newcomer::generate();
    let code = setup.device_code.trim().to_uppercase();
    let client = HubClient::new(&hub.url, &hub.fingerprint, &newcomer.device_id, newcomer.identity.clone());
    let enrolled = match client.enrol(&hub.token, &code) {
        Ok(()) => true,
        Err(SyncError::HubUnreachable { .. }) => false,
        Err(SyncError::HubDeviceCode { code }) => {
            let issue = Issue::new("device_code", FieldError::DeviceCodeTaken { code });
            return Err(ValidationErrors(vec![issue]).into());
        }
        Err(e) => return Err(e.into()),
    };
    let store = Store::join_checked(dir, &opened, setup, kdf, Some(newcomer), enrolled)?;
    Ok((store, enrolled))
}

/// Every laptop enrolled with this laptop's hub, by device code.
pub fn devices(store: &impl Shared) -> Result<Vec<Device>, StoreError> {
    let client = store.with(|s| HubClient::for_store(s))?;
    let mut list = client.devices()?;
    list.sort_by(|a, b| a.code.cmp(&b.code));
    Ok(list)
}

/// Revoke the laptop with this device code (administrators): see
/// [`amparo::store::hub::revoke`]. Returns its device code as the hub spells it.
pub fn revoke(store: &impl Shared, code: &str) -> Result<String, StoreError> {
    store.with(|s| s.require(Role::Administrator))?;
    let mut client = store.with(|s| HubClient::for_store(s))?;
    let wanted = code.trim().to_uppercase();
    let device = client
        .devices()?
        .into_iter()
        .find(|d| d.code.eq_ignore_ascii_case(&wanted))
        .ok_or(StoreError::NotFound(Thing::Device, wanted))?;
    amparo::store::hub::revoke(store, &mut client, &device.id, &device.code)?;
    Ok(device.code)
}
