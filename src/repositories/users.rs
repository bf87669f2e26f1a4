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

use crate::database::{now_utc, DatabaseError};
use rusqlite::{params, Connection, OptionalExtension};
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

/// Everyone who can unlock this store, in the order they were added.
pub(crate) fn active(conn: &Connection) -> Result<Vec<User>, DatabaseError> {
    let mut st = conn.prepare_cached(
        "SELECT id, name, role, created_at FROM users WHERE removed_at IS NULL ORDER BY created_at, name",
    )?;
    let rows = st
        .query_map([], |r| {
            let role: String = r.get(2)?;
            Ok(User { id: r.get(0)?, name: r.get(1)?, role: role_of(&role), created_at: r.get(3)? })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The user with this id, unless removed.
pub(crate) fn active_by_id(conn: &Connection, id: &str) -> Result<Option<User>, DatabaseError> {
    Ok(active(conn)?.into_iter().find(|u| u.id == id))
}

/// The user with this name (case does not matter), unless removed.
pub(crate) fn active_by_name(conn: &Connection, name: &str) -> Result<Option<User>, DatabaseError> {
    Ok(active(conn)?.into_iter().find(|u| u.name.eq_ignore_ascii_case(name.trim())))
}

pub(crate) fn insert(conn: &Connection, user: &User) -> Result<(), DatabaseError> {
    conn.execute(
        "INSERT INTO users (id, name, role, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![user.id, user.name, user.role.code(), user.created_at],
    )?;
    Ok(())
}

/// Mark a user removed (the row stays: the audit trail and notes name them).
pub(crate) fn remove(conn: &Connection, id: &str) -> Result<(), DatabaseError> {
    conn.execute("UPDATE users SET removed_at = ?2 WHERE id = ?1", params![id, now_utc()])?;
    Ok(())
}

pub(crate) fn set_role(conn: &Connection, id: &str, role: Role) -> Result<(), DatabaseError> {
    conn.execute("UPDATE users SET role = ?2 WHERE id = ?1", params![id, role.code()])?;
    Ok(())
}

/// The name of a user by id, removed or not.
pub(crate) fn name_of(conn: &Connection, id: &str) -> Result<Option<String>, DatabaseError> {
    Ok(conn.query_row("SELECT name FROM users WHERE id = ?1", [id], |r| r.get(0)).optional()?)
}
