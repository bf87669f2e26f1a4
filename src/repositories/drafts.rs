//! Unfinished intakes: the form as it was typed, kept per user until it is saved
//! as a case or discarded. A draft from before there were users belongs to
//! whoever resumes it.

use crate::database::{self, DatabaseError};
use crate::intake;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::Value;

/// Largest draft we keep (the whole form as JSON); far above any real intake.
pub const DRAFT_MAX_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, Serialize)]
pub struct DraftSummary {
    pub id: String,
    pub case_id: Option<String>,
    pub alias: Option<String>,
    pub updated_at: String,
}

/// Drafts this user may see (?1 = the user): their own, and those written before
/// there were users (by the one who set the store up).
const MY_DRAFT: &str = "(user_id = ?1 OR user_id IS NULL)";

fn parse(text: &str) -> Result<Value, DatabaseError> {
    serde_json::from_str(text).map_err(|_| DatabaseError::Damaged { table: "drafts" })
}

/// Write `json` as draft `id` of `user`. False if the id is another user's draft:
/// that one is never overwritten.
pub(crate) fn save(
    conn: &Connection,
    id: &str,
    case_id: Option<&str>,
    json: &str,
    user: &str,
) -> Result<bool, DatabaseError> {
    let n = conn
        .prepare_cached(
            "INSERT INTO drafts (id, case_id, created_at, updated_at, data, user_id) VALUES (?1, ?2, ?3, ?3, ?4, ?5)
         ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, data = excluded.data,
                                        user_id = excluded.user_id
         WHERE drafts.user_id IS excluded.user_id OR drafts.user_id IS NULL",
        )?
        .execute(params![id, case_id, database::now_utc(), json, user])?;
    Ok(n == 1)
}

/// How a stored draft is read: as typed, or `None` if it is sealed but not to
/// whoever reads it (see `restricted::open_draft`).
pub(crate) type Open<'a> = &'a dyn Fn(&str, Value) -> Option<Value>;

/// This user's drafts, newest first. One that cannot be opened any more (sealed
/// to key pairs a recovery replaced) is listed without its alias.
pub(crate) fn list(conn: &Connection, user: &str, open: Open) -> Result<Vec<DraftSummary>, DatabaseError> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT id, case_id, updated_at, data FROM drafts WHERE {MY_DRAFT} ORDER BY updated_at DESC"
    ))?;
    let rows: Vec<(String, Option<String>, String, String)> =
        st.query_map([user], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?.collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|(id, case_id, updated_at, data)| {
            let v = open(&id, parse(&data)?);
            let alias = v
                .as_ref()
                .and_then(intake::primary_person)
                .and_then(|p| p.get("alias"))
                .and_then(Value::as_str)
                .map(str::to_string);
            Ok(DraftSummary { id, case_id, alias, updated_at })
        })
        .collect()
}

/// One of this user's drafts, if there is one with this id: a sealed one that
/// does not open for her is damaged.
pub(crate) fn get(conn: &Connection, id: &str, user: &str, open: Open) -> Result<Option<Value>, DatabaseError> {
    let data: Option<String> = conn
        .query_row(&format!("SELECT data FROM drafts WHERE id = ?2 AND {MY_DRAFT}"), [user, id], |r| r.get(0))
        .optional()?;
    let Some(data) = data else { return Ok(None) };
    open(id, parse(&data)?).map(Some).ok_or(DatabaseError::Damaged { table: "drafts" })
}

/// A user's own drafts as stored (id, case id, data), for sealing them again.
pub(crate) fn stored_of(conn: &Connection, user: &str) -> Result<Vec<(String, Option<String>, Value)>, DatabaseError> {
    let mut st = conn.prepare_cached("SELECT id, case_id, data FROM drafts WHERE user_id = ?1")?;
    let rows: Vec<(String, Option<String>, String)> =
        st.query_map([user], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?;
    rows.into_iter().map(|(id, case_id, data)| Ok((id, case_id, parse(&data)?))).collect()
}

/// Discard one of this user's drafts (nothing if there is none).
pub(crate) fn delete(conn: &Connection, id: &str, user: &str) -> Result<(), DatabaseError> {
    conn.execute(&format!("DELETE FROM drafts WHERE id = ?2 AND {MY_DRAFT}"), [user, id])?;
    Ok(())
}

/// The draft a save came from, whoever's it was: the save replaces it.
pub(crate) fn remove_saved(conn: &Connection, id: &str) -> Result<(), DatabaseError> {
    conn.prepare_cached("DELETE FROM drafts WHERE id = ?1")?.execute([id])?;
    Ok(())
}

/// How many drafts there are, of every user.
pub(crate) fn count(conn: &Connection) -> Result<i64, DatabaseError> {
    Ok(conn.prepare_cached("SELECT count(*) FROM drafts")?.query_row([], |r| r.get(0))?)
}
