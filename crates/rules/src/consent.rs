//! Consent gating: personally identifying information leaves the organisation only
//! with the survivor's informed, written, time-limited consent to that sharing
//! (VAWA/FVPSA; PRODUCT.md principle 3). Every path that shares PII asks [`check`]
//! first; intake and services never do.

use crate::i18n::Localized;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::form::codes::SHARING_SCOPES;
use crate::intake::referrals;

/// A way PII can leave the organisation, and the consent scope it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sharing {
    /// To a referral organisation (a referral carrying PII, a referral packet).
    Referral,
    /// To law enforcement.
    LawEnforcement,
}

impl Sharing {
    pub const ALL: [Sharing; 2] = [Sharing::Referral, Sharing::LawEnforcement];

    pub fn scope(self) -> &'static str {
        match self {
            Sharing::Referral => SHARING_SCOPES[0],
            Sharing::LawEnforcement => SHARING_SCOPES[1],
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Sharing::Referral => "referral",
            Sharing::LawEnforcement => "law_enforcement",
        }
    }

    /// From a scope code (`ShareWithLawEnforcement`) or a short name (`referral`,
    /// `law-enforcement`).
    pub fn parse(s: &str) -> Option<Sharing> {
        let s = s.trim();
        Sharing::ALL
            .into_iter()
            .find(|x| x.scope().eq_ignore_ascii_case(s) || x.slug().eq_ignore_ascii_case(&s.replace('-', "_")))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsentError {
    #[error("no consent recorded to share ({})", .0.scope())]
    Missing(Sharing),
    #[error("the survivor declined this sharing ({})", .0.scope())]
    Declined(Sharing),
    #[error("the consent to share ({}) expired on {on}", .sharing.scope())]
    Expired { sharing: Sharing, on: String },
}

impl Localized for ConsentError {
    fn i18n_key(&self) -> &'static str {
        match self {
            ConsentError::Missing(Sharing::Referral) => "error.consent.missing.referral",
            ConsentError::Missing(Sharing::LawEnforcement) => "error.consent.missing.law_enforcement",
            ConsentError::Declined(Sharing::Referral) => "error.consent.declined.referral",
            ConsentError::Declined(Sharing::LawEnforcement) => "error.consent.declined.law_enforcement",
            ConsentError::Expired { sharing: Sharing::Referral, .. } => "error.consent.expired.referral",
            ConsentError::Expired { sharing: Sharing::LawEnforcement, .. } => "error.consent.expired.law_enforcement",
        }
    }
    fn args(&self) -> Vec<(&'static str, String)> {
        match self {
            ConsentError::Expired { on, .. } => vec![("date", on.clone())],
            _ => vec![],
        }
    }
}

fn date_of(c: &Map<String, Value>, key: &str) -> Option<NaiveDate> {
    c.get(key).and_then(Value::as_str).and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
}

/// The survivor's latest decision for `scope` given by `today` (by the date it was
/// given; the later entry on the same day).
pub fn latest<'a>(case: &'a Value, scope: &str, today: NaiveDate) -> Option<&'a Map<String, Value>> {
    case.get("consents")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .filter(|c| c.get("scope").and_then(Value::as_str) == Some(scope))
        .filter_map(|c| date_of(c, "given_at").filter(|d| *d <= today).map(|d| (d, c)))
        .enumerate()
        .max_by_key(|(i, (d, _))| (*d, *i))
        .map(|(_, (_, c))| c)
}

/// Whether the survivor's latest decision for `scope` is a refusal.
pub fn declined(case: &Value, scope: &str, today: NaiveDate) -> bool {
    latest(case, scope, today).and_then(|c| c.get("decision")).and_then(Value::as_str) == Some("Declined")
}

/// The consent that allows `sharing` on `today`: the survivor's latest decision for
/// that scope (by the date it was given; the later entry on the same day), granted
/// and not expired. Otherwise, why not.
pub fn check(case: &Value, sharing: Sharing, today: NaiveDate) -> Result<&Map<String, Value>, ConsentError> {
    let latest = latest(case, sharing.scope(), today).ok_or(ConsentError::Missing(sharing))?;
    if latest.get("decision").and_then(Value::as_str) != Some("Granted") {
        return Err(ConsentError::Declined(sharing));
    }
    match date_of(latest, "expires_at") {
        Some(end) if today <= end => Ok(latest),
        Some(end) => Err(ConsentError::Expired { sharing, on: end.format("%Y-%m-%d").to_string() }),
        // A consent to share is always time-limited; one without an end is no consent.
        None => Err(ConsentError::Missing(sharing)),
    }
}

fn shares(r: &Value) -> bool {
    r.get("shares_pii") == Some(&Value::Bool(true))
}

/// Every referral that starts sharing personal details in this save (new, or
/// switched to sharing) needs the consent to share with a referral organisation in
/// force `today`; `existing` is the case as it was stored before the save.
pub fn check_new_referrals(case: &Value, existing: Option<&Value>, today: NaiveDate) -> Result<(), ConsentError> {
    let shared_before = |id: Option<&Value>| {
        existing.is_some_and(|e| referrals(e).any(|b| id.is_some() && b.get("id") == id && shares(b)))
    };
    if referrals(case).any(|r| shares(r) && !shared_before(r.get("id"))) {
        check(case, Sharing::Referral, today)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn case(consents: Value) -> Value {
        json!({ "people": [{ "role": "PotentialVictim" }], "consents": consents })
    }

    fn consent(scope: &str, decision: &str, given: &str, expires: &str) -> Value {
        json!({ "scope": scope, "decision": decision, "explained_in": "es", "given_at": given, "expires_at": expires })
    }

    #[test]
    fn sharing_needs_the_latest_matching_granted_unexpired_consent() {
        let today = d("2026-06-01");
        let r = Sharing::Referral;
        assert_eq!(check(&case(json!([])), r, today), Err(ConsentError::Missing(r)));
        // A consent for another scope does not count.
        let other = case(json!([consent("ShareWithLawEnforcement", "Granted", "2026-05-01", "2026-12-31")]));
        assert_eq!(check(&other, r, today), Err(ConsentError::Missing(r)));
        assert!(check(&other, Sharing::LawEnforcement, today).is_ok());
        let granted = case(json!([consent("ShareWithReferralOrganisation", "Granted", "2026-05-01", "2026-06-01")]));
        assert!(check(&granted, r, today).is_ok(), "valid through its last day");
        assert_eq!(
            check(&granted, r, d("2026-06-02")),
            Err(ConsentError::Expired { sharing: r, on: "2026-06-01".into() })
        );
        // A later decline withdraws it; a still later grant restores it.
        let withdrawn = case(json!([
            consent("ShareWithReferralOrganisation", "Granted", "2026-05-01", "2026-12-31"),
            consent("ShareWithReferralOrganisation", "Declined", "2026-05-20", "2026-12-31"),
        ]));
        assert_eq!(check(&withdrawn, r, today), Err(ConsentError::Declined(r)));
        let mut again = withdrawn.clone();
        again["consents"].as_array_mut().unwrap().push(consent(
            "ShareWithReferralOrganisation",
            "Granted",
            "2026-05-30",
            "2026-09-30",
        ));
        assert!(check(&again, r, today).is_ok());
        // A decision dated after today is not in force yet.
        let future = case(json!([consent("ShareWithReferralOrganisation", "Granted", "2026-07-01", "2026-12-31")]));
        assert_eq!(check(&future, r, today), Err(ConsentError::Missing(r)));
        assert_eq!(Sharing::parse("law-enforcement"), Some(Sharing::LawEnforcement));
        assert_eq!(Sharing::parse("ShareWithReferralOrganisation"), Some(r));
        assert_eq!(Sharing::parse("StoreData"), None);
    }
}
