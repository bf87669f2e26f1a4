//! `amparo hub connect`, `amparo sync now` and `amparo devices list|revoke`: this
//! laptop and the organisation's hub.

use crate::output::{say, Failure, Output};
use crate::unlock::open;
use amparo::i18n::tr;
use amparo::store::hub::Exclusive;
use amparo::store::Store;
use amparo_hub::client::HubClient;
use clap::Subcommand;
use std::io::IsTerminal;

#[derive(Subcommand)]
pub enum HubCommand {
    /// Register this organisation with a new hub, as its first device
    /// (administrators). The fingerprint and setup code are the ones the hub printed.
    Connect {
        url: String,
        #[arg(long)]
        fingerprint: String,
        #[arg(long)]
        setup_code: String,
    },
}

#[derive(Subcommand)]
pub enum DevicesCommand {
    /// Every laptop enrolled with the hub: code, enrolled, last seen, revoked.
    List,
    /// Cut a laptop off (administrators): the hub refuses it from now on.
    Revoke { code: String },
}

/// The client for this laptop's hub, or the message that it has none.
pub fn client(store: &Store) -> Result<HubClient, Failure> {
    Ok(HubClient::for_store(store)?)
}

/// A laptop that joined with a hub invitation enrols at its first chance.
pub fn enrol_if_pending(store: &mut Store, out: &mut Output) -> Result<(), Failure> {
    if store.hub_enrolment()?.is_some() && client(store)?.enrol_pending(store)? {
        let url = store.hub_settings()?.map(|s| s.url).unwrap_or_default();
        out.line(say("cli.hub_enrolled", &[("url", url)]));
    }
    Ok(())
}

pub fn run(command: HubCommand, out: &mut Output) -> Result<(), Failure> {
    match command {
        HubCommand::Connect { url, fingerprint, setup_code } => {
            let mut store = open()?;
            let settings = amparo_hub::laptop::connect(&mut store, &url, &fingerprint, &setup_code)?;
            out.line(say("cli.hub_connected", &[("url", settings.url)]));
        }
    }
    Ok(())
}

/// `amparo sync now`: push, then pull, then say what moved.
pub fn sync_now(store: &mut Store, out: &mut Output) -> Result<(), Failure> {
    enrol_if_pending(store, out)?;
    let mut c = client(store)?;
    let interactive = std::io::stderr().is_terminal();
    let l = crate::output::locale();
    let mut progress = |done: usize, total: usize| {
        if interactive {
            eprint!("\r{}", tr(l, "cli.sync_progress", &[("done", done.to_string()), ("total", total.to_string())]));
        }
    };
    let s = store.hub_sync(&mut c, &mut progress)?;
    if interactive && s.pulled_batches > 0 {
        eprint!("\r");
    }
    let i = &s.imported;
    out.line(say(
        "cli.hub_synced",
        &[
            ("pushed", s.pushed_batches.to_string()),
            ("pulled", s.pulled_batches.to_string()),
            ("new", i.new_cases.to_string()),
            ("updated", i.updated_cases.to_string()),
            ("conflicts", i.conflicts.to_string()),
        ],
    ));
    Ok(())
}

fn when(unix_s: Option<i64>) -> String {
    match unix_s.and_then(|s| chrono::DateTime::from_timestamp(s, 0)) {
        Some(t) => t.format("%Y-%m-%d %H:%M UTC").to_string(),
        None => say("cli.devices.never", &[]),
    }
}

pub fn devices(command: DevicesCommand, out: &mut Output) -> Result<(), Failure> {
    let mut store = open()?;
    let users = store.device_users()?;
    let store = Exclusive::new(&mut store);
    match command {
        DevicesCommand::List => {
            for d in amparo_hub::laptop::devices(&store)? {
                let user = users.get(&d.id).cloned().unwrap_or_else(|| "-".into());
                let state = match d.revoked_at {
                    Some(t) => say("cli.devices.revoked", &[("when", when(Some(t)))]),
                    None => say("cli.devices.active", &[]),
                };
                let args = [
                    ("code", d.code.clone()),
                    ("user", user),
                    ("enrolled", when(Some(d.enrolled_at))),
                    ("seen", when(d.last_seen)),
                    ("state", state),
                ];
                out.line(say("cli.devices.row", &args));
            }
        }
        DevicesCommand::Revoke { code } => {
            let code = amparo_hub::laptop::revoke(&store, &code)?;
            out.line(say("cli.devices.revoked_now", &[("code", code)]));
        }
    }
    Ok(())
}
