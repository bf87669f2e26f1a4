//! The store's policies, set by an administrator: how long the app may stay idle
//! before it locks, and how long closed cases are kept.

use super::{Store, StoreError};
use crate::intake::{FieldError, Issue, ValidationErrors};
use crate::repositories::audit::{self, Action};
use crate::repositories::users::Role;
use serde::{Deserialize, Serialize};

pub const IDLE_LOCK_DEFAULT: u32 = 5;
pub const IDLE_LOCK_MIN: u32 = 1;
pub const IDLE_LOCK_MAX: u32 = 60;
/// Retention is counted in months after a case was closed; at most a century.
pub const RETENTION_MAX_MONTHS: u32 = 1200;
const POLICY_KEY: &str = "policy";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Minutes without keyboard or mouse before the app locks.
    pub idle_lock_minutes: u32,
    /// Months a closed case is kept before a purge may remove it; `None`: forever.
    #[serde(default)]
    pub retention_months: Option<u32>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { idle_lock_minutes: IDLE_LOCK_DEFAULT, retention_months: None }
    }
}

impl Policy {
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut issues = Vec::new();
        if !(IDLE_LOCK_MIN..=IDLE_LOCK_MAX).contains(&self.idle_lock_minutes) {
            let e = FieldError::OutOfRange { min: IDLE_LOCK_MIN.into(), max: IDLE_LOCK_MAX.into() };
            issues.push(Issue::new("idle_lock_minutes", e));
        }
        if self.retention_months.is_some_and(|m| !(1..=RETENTION_MAX_MONTHS).contains(&m)) {
            let e = FieldError::OutOfRange { min: 1, max: RETENTION_MAX_MONTHS.into() };
            issues.push(Issue::new("retention_months", e));
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(issues))
        }
    }
}

impl Store {
    pub fn policy(&self) -> Result<Policy, StoreError> {
        let json = crate::database::meta(&self.conn, POLICY_KEY)?;
        // A policy this build cannot read falls back to the safe defaults.
        Ok(json
            .and_then(|j| serde_json::from_str(&j).ok())
            .filter(|p: &Policy| p.validate().is_ok())
            .unwrap_or_default())
    }

    /// Change the policies (administrators; audited with the new values).
    pub fn set_policy(&mut self, policy: &Policy) -> Result<(), StoreError> {
        self.require(Role::Administrator)?;
        policy.validate()?;
        let json = serde_json::to_string(policy).map_err(StoreError::encode)?;
        let tx = crate::database::write_tx(&self.conn)?;
        crate::database::set_meta(&tx, POLICY_KEY, &json)?;
        let detail = serde_json::to_value(policy).map_err(StoreError::encode)?;
        let me = Some(self.session.user_id.as_str());
        audit::append(&tx, &self.session.device_id, me, Action::PolicyChanged, None, detail, None)?;
        tx.commit()?;
        Ok(())
    }
}

/// What a purge removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PurgeReport {
    pub cases: usize,
}

impl Store {
    /// Closed cases whose retention time is over on `today` (administrators).
    pub fn purge_candidates(&self, today: chrono::NaiveDate) -> Result<Vec<String>, StoreError> {
        self.require(Role::Administrator)?;
        let Some(months) = self.policy()?.retention_months else { return Ok(Vec::new()) };
        let Some(cutoff) = today.checked_sub_months(chrono::Months::new(months)) else { return Ok(Vec::new()) };
        // closed_at is an RFC 3339 time; a date compares below every time of its day.
        Ok(crate::repositories::cases::closed_before(&self.conn, &cutoff.format("%Y-%m-%d").to_string())?)
    }

    /// Remove every case whose retention time is over, with its notes, drafts and
    /// search entry, so that nothing of it can be read back from the database file
    /// or its WAL (administrators). The audit trail keeps one entry with the count and
    /// the case ids, nothing else; the ids are kept as tombstones so that sync can
    /// remove them on other laptops too.
    pub fn purge_expired(&mut self, today: chrono::NaiveDate) -> Result<PurgeReport, StoreError> {
        let ids = self.purge_candidates(today)?;
        if ids.is_empty() {
            return Ok(PurgeReport::default());
        }
        let tx = crate::database::write_tx(&self.conn)?;
        // The tombstone is a change like any other, so the purge reaches every laptop.
        let mut w = crate::changelog::Writer::begin(&tx, self.session.author())?;
        for id in &ids {
            w.write(&tx, id, crate::changelog::flat::PURGED, &true.into(), Vec::new())?;
            crate::repositories::cases::remove_case(&tx, id)?;
        }
        let detail = serde_json::json!({ "cases": ids.len(), "ids": ids });
        let me = Some(self.session.user_id.as_str());
        audit::append(&tx, &self.session.device_id, me, Action::Purge, None, detail, None)?;
        tx.commit()?;
        // The deleted pages are zeroed (secure_delete); the WAL still holds their old
        // images until it is folded in and emptied.
        crate::database::fold_wal(&self.conn)?;
        Ok(PurgeReport { cases: ids.len() })
    }
}
