//! `amparo share`: one case with its personal details, only with consent.

use crate::output::{say, write_file, Failure, Output};
use crate::unlock::open;
use amparo::consent::Sharing;
use amparo::store::StoreError;
use clap::Args;
use std::path::PathBuf;

/// One case with its personal details, to share outside the organisation: only
/// with the survivor's matching, unexpired consent.
#[derive(Args)]
pub struct ShareArgs {
    case_number: String,
    /// referral or law-enforcement
    #[arg(long = "for")]
    sharing: String,
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: ShareArgs, out: &mut Output) -> Result<(), Failure> {
    let Some(sharing) = Sharing::parse(&args.sharing) else {
        return Err(Failure::says("cli.bad_sharing", &[("value", args.sharing)]));
    };
    let store = open()?;
    let id = store.case_id(&args.case_number)?;
    let case = store.share_case(&id, sharing)?;
    match args.out {
        Some(p) => {
            let json = serde_json::to_string_pretty(&case).map_err(StoreError::encode)?;
            write_file(&p, (json + "\n").as_bytes())?;
            eprintln!("{}", say("cli.shared", &[("number", args.case_number), ("path", p.display().to_string())]));
            Ok(())
        }
        None => out.json(&case),
    }
}
