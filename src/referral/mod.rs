//! Referrals: from a need, to an organisation in the directory, moved through
//! Pending, Accepted, Rejected, Completed or Revoked. A referral that shares the
//! survivor's personal details with the organisation needs her consent to that
//! (`consent::check`), at the moment it is made; one that shares nothing does not.
//! Services never depend on consent, so a referral without details is always
//! possible.

use crate::consent::{self, Sharing};
use crate::intake::referrals;
use crate::store::{Store, StoreError, Thing};
use serde::Deserialize;
use serde_json::{json, Value};

/// What the user picks to make a referral.
#[derive(Debug, Clone, Deserialize)]
pub struct NewReferral {
    /// A directory entry's id.
    pub organisation: String,
    pub service: String,
    #[serde(default)]
    pub shares_pii: bool,
    /// The need it answers (its item id), which becomes Referred.
    #[serde(default)]
    pub need: Option<String>,
}

impl Store {
    /// Refer a case to an organisation: Pending, dated today, with the
    /// organisation's name kept for the slip. Returns the referral.
    pub fn create_referral(&mut self, case_id: &str, new: &NewReferral) -> Result<Value, StoreError> {
        let entry = self.directory_entry(&new.organisation)?;
        let mut case = self.load_case_unchecked(case_id)?;
        // The consent that allows sharing is named on the referral (DOMAIN.md).
        let consent_id = match new.shares_pii {
            true => consent::check(&case, Sharing::Referral, crate::repositories::cases::today())?.get("id").cloned(),
            false => None,
        };
        let mut item = json!({
            "organisation": entry.id, "organisation_name": entry.data.get("name").cloned().unwrap_or(Value::Null),
            "service": new.service, "date": crate::repositories::cases::today().format("%Y-%m-%d").to_string(),
            "status": "Pending", "shares_pii": new.shares_pii,
        });
        if let Some(id) = consent_id {
            item["consent"] = id;
        }
        if let Some(need) = new.need.as_deref().filter(|n| !n.is_empty()) {
            item["need"] = json!(need);
            let needs = case.get_mut("needs").and_then(Value::as_array_mut).into_iter().flatten();
            for n in needs.filter(|n| n.get("id").and_then(Value::as_str) == Some(need)) {
                if n.get("status").and_then(Value::as_str) == Some("Identified") {
                    n["status"] = json!("Referred");
                }
            }
        }
        let before: Vec<Value> = referrals(&case).filter_map(|r| r.get("id").cloned()).collect();
        match case.get_mut("referrals").and_then(Value::as_array_mut) {
            Some(list) => list.push(item),
            None => case["referrals"] = json!([item]),
        }
        if let Some(m) = case.as_object_mut() {
            m.remove("notes");
        }
        let saved = self.update_case(case_id, case, None)?;
        let made = referrals(&saved).find(|r| r.get("id").is_some_and(|id| !before.contains(id))).cloned();
        made.ok_or(crate::database::DatabaseError::Damaged { table: "cases" }.into())
    }

    /// Move a referral to another status (the form's rules check the code).
    pub fn set_referral_status(&mut self, case_id: &str, referral_id: &str, status: &str) -> Result<Value, StoreError> {
        let mut case = self.load_case_unchecked(case_id)?;
        let found = case
            .get_mut("referrals")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
            .find(|r| r.get("id").and_then(Value::as_str) == Some(referral_id))
            .map(|r| r["status"] = json!(status))
            .is_some();
        if !found {
            return Err(StoreError::NotFound(Thing::Referral, referral_id.to_string()));
        }
        if let Some(m) = case.as_object_mut() {
            m.remove("notes");
        }
        let saved = self.update_case(case_id, case, None)?;
        let moved = referrals(&saved).find(|r| r.get("id").and_then(Value::as_str) == Some(referral_id)).cloned();
        moved.ok_or(crate::database::DatabaseError::Damaged { table: "cases" }.into())
    }
}

#[cfg(test)]
mod tests;
