//! `amparo init`: set up a new store, for a new organisation or joining one.

use crate::output::{file_failure, Failure, Output};
use crate::unlock::{passphrase, secret};
use amparo::database::default_data_dir;
use amparo::database::keys::KdfParams;
use amparo::i18n::tr;
use amparo::store::{Setup, Store, StoreError};
use clap::Args;
use std::path::PathBuf;

/// Set up a new encrypted store in the data folder: a new organisation (--org), or
/// a laptop joining one with an invitation (--join FILE; its one-time passphrase
/// from AMPARO_INVITE_PASSPHRASE or a prompt).
#[derive(Args)]
pub struct InitArgs {
    #[arg(long, required_unless_present = "join", conflicts_with = "join")]
    org: Option<String>,
    /// An invitation file made with `amparo org invite`.
    #[arg(long)]
    join: Option<PathBuf>,
    #[arg(long)]
    device: String,
    #[arg(long)]
    user: String,
    /// UI language of the store (en or es).
    #[arg(long, default_value = "")]
    locale: String,
}

pub fn run(args: InitArgs, out: &mut Output) -> Result<(), Failure> {
    let l = crate::output::locale();
    let dir = default_data_dir();
    if Store::exists(&dir) {
        return Err(StoreError::AlreadyInitialized(dir).into());
    }
    let invitation = match &args.join {
        Some(f) => Some(std::fs::read(f).map_err(|e| file_failure(f, &e))?),
        None => None,
    };
    // Joining: the organisation's name comes with the invitation.
    let org = args.org.unwrap_or_else(|| "-".into());
    let setup =
        Setup { org, device_code: args.device, user: args.user, passphrase: Default::default(), locale: args.locale };
    // Check the answers before asking for a passphrase twice.
    amparo::store::validate_setup(&Setup { passphrase: "x".repeat(64).into(), ..setup.clone() })
        .map_err(StoreError::Invalid)?;
    let mut store = match invitation {
        Some(inv) => {
            let code =
                secret("AMPARO_INVITE_PASSPHRASE", "cli.no_invite_passphrase", "cli.invite_passphrase_prompt", false)?;
            // Open the invitation first: a wrong passphrase should not cost a
            // passphrase typed twice.
            amparo::sync::org::open_invitation(&inv, &code)?;
            let setup = Setup { passphrase: passphrase(true)?, ..setup };
            let (store, enrolled) = amparo_hub::laptop::join(&dir, &inv, &code, &setup, KdfParams::for_new_store())?;
            let session = store.session();
            out.line(tr(l, "cli.joined", &[("org", session.org.clone()), ("device", session.device_code.clone())]));
            if enrolled {
                let url = store.hub_settings()?.map(|s| s.url).unwrap_or_default();
                out.line(tr(l, "cli.hub_enrolled", &[("url", url)]));
            } else if store.hub_enrolment()?.is_some() {
                // The hub did not answer: `amparo sync now` enrols later.
                eprintln!("{}", tr(l, "cli.hub_enrol_later", &[]));
            }
            store
        }
        None => {
            let setup = Setup { passphrase: passphrase(true)?, ..setup };
            Store::create(&dir, &setup, KdfParams::for_new_store())?
        }
    };
    out.line(tr(l, "cli.created", &[("path", dir.display().to_string())]));
    if let Some(key) = store.take_recovery_key() {
        super::recovery_key::show(&key, out);
    }
    Ok(())
}
