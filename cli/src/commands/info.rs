//! `amparo info`: the store, its schema version and its counts.

use crate::output::{locale, Failure, Output};
use crate::unlock::open;
use amparo::i18n;

pub fn run(out: &mut Output) -> Result<(), Failure> {
    let l = locale();
    let info = open()?.info()?;
    let rows = [
        ("cli.info.path", info.path),
        ("cli.info.schema", format!("{} / {}", info.schema_version, info.latest_schema_version)),
        ("cli.info.org", info.org),
        ("cli.info.device", info.device_code),
        ("cli.info.user", info.user),
        ("cli.info.cases", info.cases.to_string()),
        ("cli.info.people", info.people.to_string()),
        ("cli.info.notes", info.notes.to_string()),
        ("cli.info.drafts", info.drafts.to_string()),
    ];
    for (k, v) in rows {
        out.line(format!("{}: {v}", i18n::t(l, k)));
    }
    Ok(())
}
