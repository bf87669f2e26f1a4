//! `amparo show`: one case as JSON.

use crate::output::{Failure, Output};
use crate::unlock::open;
use clap::Args;

/// Show one case as JSON.
#[derive(Args)]
pub struct ShowArgs {
    case_number: String,
}

pub fn run(args: ShowArgs, out: &mut Output) -> Result<(), Failure> {
    let case = open()?.get_case_by_number(&args.case_number)?;
    out.json(&case)
}
