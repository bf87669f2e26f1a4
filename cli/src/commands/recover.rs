//! `amparo recover`: a forgotten administrator passphrase, replaced with the
//! recovery key.

use crate::output::{say, Failure, Output};
use crate::unlock::{new_passphrase, secret};
use amparo::database::default_data_dir;
use amparo::store::{Store, StoreError};
use clap::Args;

/// A forgotten passphrase: an administrator sets a new one with the recovery key
/// (from AMPARO_RECOVERY_KEY or a prompt).
#[derive(Args)]
pub struct RecoverArgs {
    /// The administrator whose passphrase is forgotten.
    #[arg(long)]
    user: String,
}

pub fn run(args: RecoverArgs, out: &mut Output) -> Result<(), Failure> {
    let dir = default_data_dir();
    if !Store::exists(&dir) {
        return Err(StoreError::NotInitialized(dir).into());
    }
    let key = secret("AMPARO_RECOVERY_KEY", "cli.no_recovery_key", "cli.recovery_key_prompt", false)?;
    let new = new_passphrase()?;
    let store = Store::recover(&dir, &key, &args.user, &new)?;
    out.line(say("cli.recovered", &[("name", store.session().user_name.clone())]));
    Ok(())
}
