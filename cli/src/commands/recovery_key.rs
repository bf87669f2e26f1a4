//! `amparo recovery-key`: a new recovery key, shown once.

use crate::output::{locale, Failure, Output};
use crate::unlock::open;
use amparo::i18n;

/// Show a recovery key with what to do with it.
pub fn show(key: &str, out: &mut Output) {
    let l = locale();
    out.line("");
    out.line(i18n::t(l, "recovery.intro"));
    out.line(format!("\n    {key}\n"));
    out.line(i18n::t(l, "recovery.warning"));
}

pub fn run(out: &mut Output) -> Result<(), Failure> {
    let key = open()?.renew_recovery_key()?;
    show(&key, out);
    Ok(())
}
