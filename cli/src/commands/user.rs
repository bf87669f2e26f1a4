//! `amparo user`: who can unlock this store, and their roles and passphrases.

use crate::output::{say, Failure, Output};
use crate::unlock::{new_passphrase, open};
use amparo::repositories::users::Role;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Users and their roles.
    List,
    /// Add a user; their passphrase comes from AMPARO_NEW_PASSPHRASE or a prompt.
    Add {
        name: String,
        /// Caseworker, Supervisor or Administrator.
        #[arg(long, default_value = "Caseworker")]
        role: String,
    },
    /// Remove a user: their passphrase opens nothing any more.
    Remove { name: String },
    /// Change a user's role.
    Role { name: String, role: String },
    /// Set a new passphrase (AMPARO_NEW_PASSPHRASE or a prompt): your own, or, for an
    /// administrator, anyone's.
    Passwd { name: Option<String> },
}

/// A role by its code, refused in the user's language.
fn role(code: &str) -> Result<Role, Failure> {
    Role::parse(code).ok_or_else(|| Failure::says("cli.bad_role", &[("role", code.to_string())]))
}

pub fn run(command: UserCommand, out: &mut Output) -> Result<(), Failure> {
    let mut store = open()?;
    match command {
        UserCommand::List => {
            for u in store.users()? {
                let mut line = format!("{}\t{}\t{}", u.name, u.role.code(), u.created_at);
                // A row changed outside Amparo: say so to whoever lists users.
                if let Some(claimed) = u.claimed_role.filter(|_| !u.signed) {
                    line.push('\t');
                    line.push_str(&say("cli.role_unsigned", &[("role", claimed.code().to_string())]));
                }
                out.line(line);
            }
            // Known from sync, unlocking elsewhere: whom a restricted case may be
            // sealed to, so an administrator sees them too.
            for (name, role) in store.members_elsewhere()? {
                out.line(format!("{name}\t{}\t{}", role.code(), say("cli.user_elsewhere", &[])));
            }
        }
        UserCommand::Add { name, role: r } => {
            let r = role(&r)?;
            // Check the rights before asking for a passphrase twice.
            store.require(Role::Administrator)?;
            let u = store.add_user(&name, r, &new_passphrase()?)?;
            out.line(say("cli.user_added", &[("name", u.name)]));
        }
        UserCommand::Remove { name } => {
            store.remove_user(&name)?;
            out.line(say("cli.user_removed", &[("name", name)]));
        }
        UserCommand::Role { name, role: r } => {
            store.set_role(&name, role(&r)?)?;
            out.line(say("cli.role_changed", &[("name", name)]));
        }
        UserCommand::Passwd { name } => {
            let n = name.clone().unwrap_or_else(|| store.session().user_name.clone());
            store.set_passphrase(name.as_deref(), &new_passphrase()?)?;
            out.line(say("cli.passphrase_changed", &[("name", n)]));
        }
    }
    Ok(())
}
