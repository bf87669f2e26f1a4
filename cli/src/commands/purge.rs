//! `amparo purge`: closed cases past their retention time.

use crate::output::{say, Failure, Output};
use crate::unlock::open;
use clap::Args;

/// Remove closed cases whose retention time is over (administrators).
#[derive(Args)]
pub struct PurgeArgs {
    /// Only say how many would be removed.
    #[arg(long)]
    dry_run: bool,
}

pub fn run(args: PurgeArgs, out: &mut Output) -> Result<(), Failure> {
    let mut store = open()?;
    let today = amparo::repositories::cases::today();
    let n = if args.dry_run { store.purge_candidates(today)?.len() } else { store.purge_expired(today)?.cases };
    let key = if args.dry_run { "cli.purge_would" } else { "cli.purged" };
    out.line(say(key, &[("count", n.to_string())]));
    Ok(())
}
