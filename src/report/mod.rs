//! The fact-sheet report: how many cases, how many potential victims, venues,
//! demographics, nationality and recruiter relation — counted as *cases involving*
//! at least one potential victim with a trait (non-cumulative: a case can involve
//! several victims, and callers often give no demographics), the way the national
//! hotline describes trafficking. De-identified by construction: only codes and
//! counts leave this module.
//!
//! For sharing outside the organisation, every count from 1 to k−1 is shown as
//! `"<k"` (k = 11 by default, as the Counter Trafficking Data Collaborative does).

use crate::repositories::facts::{self, CaseFilter};
use crate::store::{Store, StoreError};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize, Serializer};

/// The default suppression threshold.
pub const DEFAULT_K: u32 = 11;

/// Which cases a report counts: intake date within the period, and the filters.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ReportQuery {
    #[serde(default)]
    pub from: Option<NaiveDate>,
    #[serde(default)]
    pub to: Option<NaiveDate>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub intake_channel: Option<String>,
    #[serde(default)]
    pub trafficking_type: Option<String>,
    /// Shareable: suppress counts below k.
    #[serde(default)]
    pub k: Option<u32>,
}

/// A count as shown: the number, or `"<k"` when shareable and small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Exact(u64),
    Below(u32),
}

impl Count {
    fn new(n: u64, k: Option<u32>) -> Count {
        match k {
            Some(k) if n > 0 && n < u64::from(k) => Count::Below(k),
            _ => Count::Exact(n),
        }
    }
}

impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Count::Exact(n) => write!(f, "{n}"),
            Count::Below(k) => write!(f, "<{k}"),
        }
    }
}

impl Serialize for Count {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Count::Exact(n) => s.serialize_u64(*n),
            Count::Below(_) => s.serialize_str(&self.to_string()),
        }
    }
}

/// One code and the number of cases it appears in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CodeCount {
    pub code: String,
    pub cases: Count,
}

/// Cases involving at least one potential victim who is …
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Demographics {
    pub female: Count,
    pub male: Count,
    pub transgender_non_conforming: Count,
    pub minor: Count,
    pub adult: Count,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FactSheet {
    pub cases: Count,
    pub potential_victims: Count,
    /// Most cases first, then by code.
    pub venues: Vec<CodeCount>,
    pub demographics: Demographics,
    pub nationality: Vec<CodeCount>,
    pub recruiter_relation: Vec<CodeCount>,
    /// The suppression threshold used, if shareable.
    pub k: Option<u32>,
}

/// Which cases count, on `case_report c`: only the conditions given, so that SQLite
/// can use the intake-date index for a period. Counts come from `case_facts`, kept
/// as cases are saved: one row per case and code, so a count of rows is a count of
/// cases.
impl ReportQuery {
    /// The cases this report covers.
    pub(crate) fn filter(&self) -> CaseFilter {
        CaseFilter {
            from: self.from,
            to: self.to,
            status: self.status.clone(),
            intake_channel: self.intake_channel.clone(),
            trafficking_type: self.trafficking_type.clone(),
        }
    }

    /// A threshold below 2 would suppress nothing; a period that ends before it
    /// starts counts nothing: both are refused next to their field.
    pub fn check(&self) -> Result<(), crate::intake::ValidationErrors> {
        use crate::intake::{FieldError, Issue, ValidationErrors};
        let mut issues = vec![];
        if self.k.is_some_and(|k| !(2..=1000).contains(&k)) {
            issues.push(Issue::new("k", FieldError::OutOfRange { min: 2, max: 1000 }));
        }
        if let (Some(from), Some(to)) = (self.from, self.to) {
            if to < from {
                issues.push(Issue::new("to", FieldError::EndBeforeStart));
            }
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(issues))
        }
    }
}

impl Store {
    /// The fact sheet for a period and filters. Counts only, never a case: anyone
    /// who may use the store may run it; it is recorded in the audit trail.
    pub fn fact_sheet(&self, q: &ReportQuery) -> Result<FactSheet, StoreError> {
        q.check()?;
        let f = q.filter();
        let k = q.k;
        let (cases, victims) = facts::totals(self.conn(), &f)?;
        let mut by_kind = facts::breakdowns(self.conn(), &f)?;
        let mut of_kind = |kind: &str| {
            let mut list = by_kind.remove(kind).unwrap_or_default();
            // Most cases first, then by code. Shareable: suppressed counts all rank
            // alike, so their order does not tell which small count is bigger.
            let rank = |n: i64| if k.is_some_and(|k| n < i64::from(k)) { 0 } else { n };
            list.sort_by(|a, b| rank(b.1).cmp(&rank(a.1)).then_with(|| a.0.cmp(&b.0)));
            list.into_iter().map(|(code, n)| CodeCount { code, cases: Count::new(n as u64, k) }).collect::<Vec<_>>()
        };
        let (genders, majorities) = (of_kind("gender_group"), of_kind("majority"));
        let find =
            |list: &[CodeCount], code: &str| list.iter().find(|c| c.code == code).map_or(Count::Exact(0), |c| c.cases);
        let sheet = FactSheet {
            cases: Count::new(cases.max(0) as u64, k),
            potential_victims: Count::new(victims.max(0) as u64, k),
            venues: of_kind("venue"),
            demographics: Demographics {
                female: find(&genders, "female"),
                male: find(&genders, "male"),
                transgender_non_conforming: find(&genders, "transgender_non_conforming"),
                minor: find(&majorities, "Minor"),
                adult: find(&majorities, "Adult"),
            },
            nationality: of_kind("nationality"),
            recruiter_relation: of_kind("recruiter_relation"),
            k,
        };
        self.record(crate::repositories::audit::Action::Report, None, serde_json::json!({ "shareable": k.is_some() }))?;
        Ok(sheet)
    }
}

impl FactSheet {
    /// The same numbers as CSV: `section,code,cases`, one line per number.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("section,code,cases\n");
        let mut line = |section: &str, code: &str, n: &Count| out.push_str(&format!("{section},{code},{n}\n"));
        line("cases", "", &self.cases);
        line("potential_victims", "", &self.potential_victims);
        for c in &self.venues {
            line("venues", &c.code, &c.cases);
        }
        let d = &self.demographics;
        for (code, n) in [
            ("female", &d.female),
            ("male", &d.male),
            ("transgender_non_conforming", &d.transgender_non_conforming),
            ("minor", &d.minor),
            ("adult", &d.adult),
        ] {
            line("demographics", code, n);
        }
        for c in &self.nationality {
            line("nationality", &c.code, &c.cases);
        }
        for c in &self.recruiter_relation {
            line("recruiter_relation", &c.code, &c.cases);
        }
        out
    }
}

pub mod deid;

#[cfg(test)]
pub(crate) mod tests;
