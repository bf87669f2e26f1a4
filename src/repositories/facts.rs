//! What the fact sheet counts, kept as cases are saved: one `case_report` row per
//! case (intake date, status, channel, type, potential victims) and its
//! `case_facts` (kind, code) pairs, and running counts of both by intake month
//! (`month_counts`, `fact_counts`), adjusted by each save. A report for a period
//! (or for all cases) sums the counts of its whole months and reads the rows of
//! the part-months at its ends only, so it does not grow with the number of
//! cases; one filtered by status, channel or type reads the rows.

use crate::database::DatabaseError;
use chrono::{Datelike, NaiveDate};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

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

impl CaseFilter {
    /// A filter on the period alone is answered from the running counts: the
    /// whole months it covers, and the part-months at its ends read from rows.
    fn by_month(&self) -> Option<ByMonth> {
        let period_only = [&self.status, &self.intake_channel, &self.trafficking_type]
            .iter()
            .all(|s| s.as_deref().is_none_or(|s| s.trim().is_empty()));
        if !period_only {
            return None;
        }
        if self.from.is_none() && self.to.is_none() {
            // Every case, those with no intake date too (month '').
            return Some(ByMonth { sql: "1".into(), values: vec![], edges: vec![] });
        }
        let month = |d: NaiveDate| d.format("%Y-%m").to_string();
        let start = |d: NaiveDate| d.with_day(1).unwrap_or(d);
        let end = |d: NaiveDate| {
            let next = if d.month() == 12 {
                NaiveDate::from_ymd_opt(d.year() + 1, 1, 1)
            } else {
                NaiveDate::from_ymd_opt(d.year(), d.month() + 1, 1)
            };
            next.and_then(|n| n.pred_opt()).unwrap_or(d)
        };
        let edge = |from: NaiveDate, to: NaiveDate| CaseFilter { from: Some(from), to: Some(to), ..Default::default() };
        // A case with no intake date is in no period.
        let mut sql = vec!["month != ''".to_string()];
        let mut values = Vec::new();
        let mut edges = Vec::new();
        match (self.from, self.to) {
            (Some(f), Some(t)) if month(f) == month(t) && (f != start(f) || t != end(t)) => {
                // Within one month, and not all of it: rows only.
                return Some(ByMonth { sql: "0".into(), values, edges: vec![edge(f, t)] });
            }
            _ => {}
        }
        if let Some(f) = self.from {
            if f == start(f) {
                sql.push("month >= ?".into());
                values.push(month(f));
            } else {
                sql.push("month > ?".into());
                values.push(month(f));
                edges.push(edge(f, self.to.map_or(end(f), |t| t.min(end(f)))));
            }
        }
        if let Some(t) = self.to {
            if t == end(t) {
                sql.push("month <= ?".into());
                values.push(month(t));
            } else {
                sql.push("month < ?".into());
                values.push(month(t));
                edges.push(edge(self.from.map_or(start(t), |f| f.max(start(t))), t));
            }
        }
        Some(ByMonth { sql: sql.join(" AND "), values, edges })
    }
}

/// A period report from the running counts: which months (`sql` on `month`, with
/// `values`), and the part-months read from rows.
struct ByMonth {
    sql: String,
    values: Vec<String>,
    edges: Vec<CaseFilter>,
}

/// How many cases the filter keeps, and how many potential victims they involve.
pub(crate) fn totals(conn: &Connection, f: &CaseFilter) -> Result<(i64, i64), DatabaseError> {
    totals_by(conn, f, f.by_month())
}

/// [`totals`], from the counts of `months` if given, else from the rows.
fn totals_by(conn: &Connection, f: &CaseFilter, months: Option<ByMonth>) -> Result<(i64, i64), DatabaseError> {
    if let Some(m) = months {
        let (mut cases, mut victims): (i64, i64) = conn
            .prepare_cached(&format!(
                "SELECT coalesce(sum(cases), 0), coalesce(sum(victims), 0) FROM month_counts WHERE {}",
                m.sql
            ))?
            .query_row(params_from_iter(m.values.iter()), |r| Ok((r.get(0)?, r.get(1)?)))?;
        for e in &m.edges {
            let (c, v) = totals_by(conn, e, None)?;
            (cases, victims) = (cases + c, victims + v);
        }
        return Ok((cases, victims));
    }
    let (sql, values) = f.sql();
    Ok(conn
        .prepare_cached(&format!("SELECT count(*), coalesce(sum(c.victims), 0) FROM case_report c WHERE {sql}"))?
        .query_row(params_from_iter(values.iter()), |r| Ok((r.get(0)?, r.get(1)?)))?)
}

/// Per kind of fact (venue, gender, …), how many of the cases kept have each code,
/// in one pass: for a period (or all), from the running counts by month.
pub(crate) fn breakdowns(conn: &Connection, f: &CaseFilter) -> Result<Breakdowns, DatabaseError> {
    breakdowns_by(conn, f, f.by_month())
}

/// Per kind, each code and how many cases have it.
pub(crate) type Breakdowns = HashMap<String, Vec<(String, i64)>>;

/// [`breakdowns`], from the counts of `months` if given, else from the rows.
fn breakdowns_by(conn: &Connection, f: &CaseFilter, months: Option<ByMonth>) -> Result<Breakdowns, DatabaseError> {
    let mut by_kind: Breakdowns = HashMap::new();
    let (query, values) = match months {
        Some(m) => {
            for e in &m.edges {
                for (kind, codes) in breakdowns_by(conn, e, None)? {
                    by_kind.entry(kind).or_default().extend(codes);
                }
            }
            (format!("SELECT kind, code, sum(n) FROM fact_counts WHERE {} GROUP BY kind, code", m.sql), m.values)
        }
        None => {
            let (sql, values) = f.sql();
            (
                format!(
                    "SELECT x.kind, x.code, count(*) FROM case_report c JOIN case_facts x ON x.case_seq = c.case_seq
                     WHERE {sql} GROUP BY x.kind, x.code"
                ),
                values,
            )
        }
    };
    let mut st = conn.prepare_cached(&query)?;
    let mut rows = st.query(params_from_iter(values.iter()))?;
    while let Some(r) = rows.next()? {
        let (kind, code, n): (String, String, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
        by_kind.entry(kind).or_default().push((code, n.max(0)));
    }
    // A code counted in whole months and in a part-month is one code.
    for codes in by_kind.values_mut() {
        let mut sum: BTreeMap<String, i64> = BTreeMap::new();
        for (code, n) in codes.drain(..) {
            *sum.entry(code).or_default() += n;
        }
        codes.extend(sum);
    }
    Ok(by_kind)
}

/// Every case the filter keeps, oldest first, one at a time: its id, its case
/// number and its data.
pub(crate) fn each_case(
    conn: &Connection,
    f: &CaseFilter,
    mut visit: impl FnMut(String, String, Value),
) -> Result<(), DatabaseError> {
    let (sql, values) = f.sql();
    let mut st = conn.prepare(&format!(
        "SELECT x.id, x.case_number, x.data FROM case_report c JOIN cases x ON x.seq = c.case_seq
          WHERE {sql} ORDER BY x.seq"
    ))?;
    let mut cursor = st.query(params_from_iter(values.iter()))?;
    while let Some(r) = cursor.next()? {
        let (id, number, data): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
        visit(id, number, serde_json::from_str(&data).map_err(|_| DatabaseError::Damaged { table: "cases" })?);
    }
    Ok(())
}

/// What one case brings to the fact sheet: its report row and its facts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct CaseFacts {
    intake_date: Option<String>,
    status: Option<String>,
    intake_channel: Option<String>,
    trafficking_type: Option<String>,
    victims: i64,
    /// (kind, code): venue, recruiter_relation, and of the potential victims
    /// gender, majority and nationality. Each pair counts a case once.
    facts: BTreeSet<(String, String)>,
}

/// The facts of a case, from its data as the store keeps it (codes only).
/// The fact sheet's groups of genders (DOMAIN.md): female, male, and transgender
/// or non-conforming, which counts the three HTCDS 2.0 codes and ours. Counted as
/// groups, so that a case with a trans woman and a non-binary person is one case.
pub(crate) fn gender_group(code: &str) -> Option<&'static str> {
    match code {
        "Feminine" => Some("female"),
        "Masculine" => Some("male"),
        "TransgenderFeminine" | "TransgenderMasculine" | "NonConforming" | "TransgenderNonConforming" => {
            Some("transgender_non_conforming")
        }
        _ => None,
    }
}

pub(crate) fn of_case(data: &Map<String, Value>) -> CaseFacts {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    // A list of codes (a lone code counts as a list of one).
    let codes = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        }
    };
    let mut facts = BTreeSet::new();
    for kind in ["venue", "recruiter_relation"] {
        let key = if kind == "venue" { "venues" } else { kind };
        facts.extend(codes(data.get(key)).into_iter().map(|c| (kind.to_string(), c)));
    }
    let victims: Vec<&Map<String, Value>> = data
        .get("people")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .filter(|p| p.get("role").and_then(Value::as_str) == Some("PotentialVictim"))
        .collect();
    for p in &victims {
        facts.extend(
            text(p.get("gender")).and_then(|c| gender_group(&c)).map(|g| ("gender_group".to_string(), g.into())),
        );
        facts.extend(text(p.get("majority_at_intake")).map(|c| ("majority".to_string(), c)));
        facts.extend(codes(p.get("nationality")).into_iter().map(|c| ("nationality".to_string(), c)));
    }
    CaseFacts {
        intake_date: text(data.get("intake_date")),
        status: text(data.get("status")),
        intake_channel: text(data.get("intake_channel")),
        trafficking_type: text(data.get("trafficking_type")),
        victims: victims.len() as i64,
        facts,
    }
}

/// What the store holds for case `seq`, if anything.
fn stored(conn: &Connection, seq: i64) -> Result<Option<CaseFacts>, DatabaseError> {
    let row = conn
        .prepare_cached(
            "SELECT intake_date, status, intake_channel, trafficking_type, victims FROM case_report WHERE case_seq = ?1",
        )?
        .query_row([seq], |r| {
            Ok(CaseFacts {
                intake_date: r.get(0)?,
                status: r.get(1)?,
                intake_channel: r.get(2)?,
                trafficking_type: r.get(3)?,
                victims: r.get(4)?,
                facts: BTreeSet::new(),
            })
        })
        .optional()?;
    let Some(mut row) = row else { return Ok(None) };
    let mut st = conn.prepare_cached("SELECT kind, code FROM case_facts WHERE case_seq = ?1")?;
    row.facts = st.query_map([seq], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
    Ok(Some(row))
}

/// The month a case counts under in the running counts: that of its intake
/// date (`YYYY-MM`), or ''.
fn month(f: &CaseFacts) -> &str {
    f.intake_date.as_deref().and_then(|d| d.get(..7)).unwrap_or("")
}

/// Changes to the running counts not written yet: by month, (cases, victims);
/// by (month, kind, code), n. A bulk write (an import, a merge) adds every case's
/// share here and writes the sums once at its end, instead of a dozen statements
/// per case; a single save writes its own at once.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    months: HashMap<String, (i64, i64)>,
    facts: HashMap<(String, String, String), i64>,
}

impl Tally {
    /// Add (`by` = 1) or take away (-1) a case's share.
    fn add(&mut self, f: &CaseFacts, by: i64) {
        let month = month(f).to_string();
        let m = self.months.entry(month.clone()).or_default();
        (m.0, m.1) = (m.0 + by, m.1 + by * f.victims);
        for (kind, code) in &f.facts {
            *self.facts.entry((month.clone(), kind.clone(), code.clone())).or_default() += by;
        }
    }

    /// Write the sums into the running counts; a count that falls to zero goes.
    pub(crate) fn flush(&mut self, conn: &Connection) -> Result<(), DatabaseError> {
        let mut add_month = conn.prepare_cached(
            "INSERT INTO month_counts (month, cases, victims) VALUES (?1, ?2, ?3)
             ON CONFLICT (month) DO UPDATE SET cases = cases + excluded.cases, victims = victims + excluded.victims",
        )?;
        let mut empty_month = conn.prepare_cached("DELETE FROM month_counts WHERE month = ?1 AND cases = 0")?;
        for (m, (cases, victims)) in self.months.drain().filter(|(_, by)| *by != (0, 0)) {
            add_month.execute(params![m, cases, victims])?;
            if cases < 0 {
                empty_month.execute([m])?;
            }
        }
        let mut add = conn.prepare_cached(
            "INSERT INTO fact_counts (month, kind, code, n) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (month, kind, code) DO UPDATE SET n = n + excluded.n",
        )?;
        let mut drop =
            conn.prepare_cached("DELETE FROM fact_counts WHERE month = ?1 AND kind = ?2 AND code = ?3 AND n = 0")?;
        for ((m, kind, code), n) in self.facts.drain().filter(|(_, n)| *n != 0) {
            add.execute(params![m, kind, code, n])?;
            if n < 0 {
                drop.execute(params![m, kind, code])?;
            }
        }
        Ok(())
    }
}

/// Keep what the fact sheet counts in step with case `seq`'s data. A save that
/// changes nothing the report counts writes nothing here.
pub(crate) fn refresh(conn: &Connection, seq: i64, data: &Map<String, Value>) -> Result<(), DatabaseError> {
    let mut tally = Tally::default();
    refresh_into(conn, seq, data, &mut tally)?;
    tally.flush(conn)
}

/// [`refresh`], with the case's share of the running counts added to `tally`
/// (written by its owner).
pub(crate) fn refresh_into(
    conn: &Connection,
    seq: i64,
    data: &Map<String, Value>,
    tally: &mut Tally,
) -> Result<(), DatabaseError> {
    let new = of_case(data);
    let old = stored(conn, seq)?;
    if old.as_ref() == Some(&new) {
        return Ok(());
    }
    let empty = BTreeSet::new();
    let before = old.as_ref().map_or(&empty, |o| &o.facts);
    if let Some(old) = &old {
        tally.add(old, -1);
        let mut st = conn.prepare_cached("DELETE FROM case_facts WHERE case_seq = ?1 AND kind = ?2 AND code = ?3")?;
        for (kind, code) in old.facts.difference(&new.facts) {
            st.execute(params![seq, kind, code])?;
        }
    }
    let mut st = conn.prepare_cached("INSERT INTO case_facts (case_seq, kind, code) VALUES (?1, ?2, ?3)")?;
    for (kind, code) in new.facts.difference(before) {
        st.execute(params![seq, kind, code])?;
    }
    conn.prepare_cached(
        "INSERT OR REPLACE INTO case_report (case_seq, intake_date, status, intake_channel, trafficking_type, victims)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![seq, new.intake_date, new.status, new.intake_channel, new.trafficking_type, new.victims])?;
    tally.add(&new, 1);
    Ok(())
}

/// A case removed for good: its share of the counts goes with its rows.
pub(crate) fn forget(conn: &Connection, seq: i64) -> Result<(), DatabaseError> {
    if let Some(old) = stored(conn, seq)? {
        let mut tally = Tally::default();
        tally.add(&old, -1);
        tally.flush(conn)?;
    }
    conn.prepare_cached("DELETE FROM case_facts WHERE case_seq = ?1")?.execute([seq])?;
    conn.prepare_cached("DELETE FROM case_report WHERE case_seq = ?1")?.execute([seq])?;
    Ok(())
}
