//! Opening the store from the command line: the data folder, the user
//! (`AMPARO_USER`) and the passphrase (`AMPARO_PASSPHRASE` or a prompt that does
//! not echo).

use crate::output::{file_failure, locale, Failure};
use amparo::database::keys::KeyFile;
use amparo::database::{default_data_dir, KEY_FILE};
use amparo::i18n;
use amparo::store::{Store, StoreError};
use std::io::IsTerminal;
use std::path::Path;
use zeroize::Zeroizing;

/// The store of the data folder, unlocked as the user the environment names.
pub fn open() -> Result<Store, Failure> {
    let dir = default_data_dir();
    if !Store::exists(&dir) {
        return Err(StoreError::NotInitialized(dir).into());
    }
    let user = std::env::var("AMPARO_USER").ok().filter(|u| !u.trim().is_empty());
    // With several users, say who you are: a script must not act as whoever's
    // passphrase it happens to hold.
    if user.is_none() && KeyFile::read(&dir.join(KEY_FILE))?.keys.len() > 1 {
        return Err(Failure::says("cli.user_required", &[]));
    }
    Ok(Store::open_as(&dir, user.as_deref(), &passphrase(false)?)?)
}

/// The passphrase that unlocks (typed twice when `confirm`).
pub fn passphrase(confirm: bool) -> Result<Zeroizing<String>, Failure> {
    secret("AMPARO_PASSPHRASE", "cli.no_passphrase", "cli.passphrase_prompt", confirm)
}

/// A new passphrase for a user: `AMPARO_NEW_PASSPHRASE` or typed twice.
pub fn new_passphrase() -> Result<Zeroizing<String>, Failure> {
    secret("AMPARO_NEW_PASSPHRASE", "cli.no_new_passphrase", "cli.new_passphrase_prompt", true)
}

/// A secret from the environment variable `var`, or typed twice (when `confirm`)
/// at a prompt that does not echo; wiped from memory once dropped.
pub fn secret(var: &str, missing: &str, prompt: &str, confirm: bool) -> Result<Zeroizing<String>, Failure> {
    let l = locale();
    if let Ok(p) = std::env::var(var) {
        return Ok(Zeroizing::new(p));
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure(i18n::t(l, missing)));
    }
    let read = |key: &str| {
        rpassword::prompt_password(i18n::t(l, key)).map(Zeroizing::new).map_err(|e| file_failure(Path::new("tty"), &e))
    };
    let p = read(prompt)?;
    if confirm && read("cli.passphrase_again")? != p {
        return Err(Failure(i18n::t(l, "cli.passphrase_mismatch")));
    }
    Ok(p)
}
