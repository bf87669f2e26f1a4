//! What the fact sheet counts, kept per case as cases are saved: one `case_report`
//! row per case (intake date, status, channel, type, potential victims) and its
//! `case_facts` (kind, code) pairs, so a report reads them instead of every case.

use crate::database::DatabaseError;
use chrono::NaiveDate;
use rusqlite::{params_from_iter, Connection};
use serde_json::Value;
use std::collections::HashMap;

/// Which cases a report covers: intakes in a period, with a status, channel and
/// trafficking type (each optional; blank means any).
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub status: Option<String>,
    pub intake_channel: Option<String>,
    pub trafficking_type: Option<String>,
}

impl CaseFilter {
    /// The filter as a `WHERE` clause on `case_report c`, and its values.
    fn sql(&self) -> (String, Vec<String>) {
        let date = |d: &Option<NaiveDate>| d.map(|d| d.format("%Y-%m-%d").to_string());
        let blank = |s: &Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        let parts = [
            ("c.intake_date >= ?", date(&self.from)),
            ("c.intake_date <= ?", date(&self.to)),
            ("c.status = ?", blank(&self.status)),
            ("c.intake_channel = ?", blank(&self.intake_channel)),
            ("c.trafficking_type = ?", blank(&self.trafficking_type)),
        ];
        let (sql, values): (Vec<&str>, Vec<String>) = parts.into_iter().filter_map(|(s, v)| Some((s, v?))).unzip();
        (if sql.is_empty() { "1".into() } else { sql.join(" AND ") }, values)
    }
}

/// How many cases the filter keeps, and how many potential victims they involve.
pub(crate) fn totals(conn: &Connection, f: &CaseFilter) -> Result<(i64, i64), DatabaseError> {
    let (sql, values) = f.sql();
    Ok(conn
        .prepare_cached(&format!("SELECT count(*), coalesce(sum(c.victims), 0) FROM case_report c WHERE {sql}"))?
        .query_row(params_from_iter(values.iter()), |r| Ok((r.get(0)?, r.get(1)?)))?)
}

/// Per kind of fact (venue, gender, …), how many of the cases kept have each code,
/// in one pass: with no filter straight from the covering index.
pub(crate) fn breakdowns(
    conn: &Connection,
    f: &CaseFilter,
) -> Result<HashMap<String, Vec<(String, i64)>>, DatabaseError> {
    let (sql, values) = f.sql();
    let query = if values.is_empty() {
        "SELECT kind, code, count(*) FROM case_facts GROUP BY kind, code".to_string()
    } else {
        format!(
            "SELECT x.kind, x.code, count(*) FROM case_report c JOIN case_facts x ON x.case_seq = c.case_seq
             WHERE {sql} GROUP BY x.kind, x.code"
        )
    };
    let mut by_kind: HashMap<String, Vec<(String, i64)>> = HashMap::new();
    let mut st = conn.prepare_cached(&query)?;
    let mut rows = st.query(params_from_iter(values.iter()))?;
    while let Some(r) = rows.next()? {
        let (kind, code, n): (String, String, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
        by_kind.entry(kind).or_default().push((code, n.max(0)));
    }
    Ok(by_kind)
}

/// The data of every case the filter keeps, oldest first, one at a time.
pub(crate) fn each_case(conn: &Connection, f: &CaseFilter, mut visit: impl FnMut(Value)) -> Result<(), DatabaseError> {
    let (sql, values) = f.sql();
    let mut st = conn.prepare(&format!(
        "SELECT x.data FROM case_report c JOIN cases x ON x.seq = c.case_seq WHERE {sql} ORDER BY x.seq"
    ))?;
    let mut cursor = st.query(params_from_iter(values.iter()))?;
    while let Some(r) = cursor.next()? {
        let data: String = r.get(0)?;
        visit(serde_json::from_str(&data).map_err(|_| DatabaseError::Damaged { table: "cases" })?);
    }
    Ok(())
}
