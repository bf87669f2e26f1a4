//! Users and roles on a shared laptop.
//!
//! Each user unlocks with their own passphrase: the data key is sealed once per user
//! in `keys.json`, so adding a user or changing a passphrase re-encrypts nothing, and
//! removing a user drops their sealed key. Roles are checked here, in the core API,
//! whatever the UI shows:
//!
//! - **Caseworker**: records intakes; opens and edits every case that is not
//!   restricted, and restricted cases assigned to them; sees only their own drafts.
//! - **Supervisor**: also opens restricted cases, assigns cases, imports and exports,
//!   and reads the audit trail.
//! - **Administrator**: also manages users and the store's policies.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    Caseworker,
    Supervisor,
    Administrator,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Caseworker, Role::Supervisor, Role::Administrator];
    pub fn code(self) -> &'static str {
        match self {
            Role::Caseworker => "Caseworker",
            Role::Supervisor => "Supervisor",
            Role::Administrator => "Administrator",
        }
    }
    pub fn parse(code: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.code().eq_ignore_ascii_case(code.trim()))
    }
    pub fn label_key(self) -> String {
        format!("user.role.{}", self.code())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_at: String,
}

pub(crate) fn role_of(code: &str) -> Role {
    // An unknown code (a newer Amparo's role) gets the least rights.
    Role::parse(code).unwrap_or(Role::Caseworker)
}
