//! `amparo set`: scripted corrections of a case's fields.

use crate::output::{say, Failure, Output};
use crate::unlock::open;
use clap::Args;

/// Edit case fields: amparo set TX3-2026-0042 status=Closed people.0.alias=Rosa
#[derive(Args)]
pub struct SetArgs {
    case_number: String,
    #[arg(required = true)]
    assignments: Vec<String>,
}

pub fn run(args: SetArgs, out: &mut Output) -> Result<(), Failure> {
    let mut pairs = Vec::new();
    for a in &args.assignments {
        match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => pairs.push((k.trim().to_string(), v.to_string())),
            _ => return Err(Failure::says("cli.bad_assignment", &[("arg", a.clone())])),
        }
    }
    open()?.set_fields(&args.case_number, &pairs)?;
    out.line(say("cli.updated", &[("number", args.case_number)]));
    Ok(())
}
