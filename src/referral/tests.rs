//! Referrals: from a need to an organisation, through their statuses, with consent
//! when personal details are shared, and kept when the form saves the case.

use super::*;
use crate::consent::ConsentError;
use crate::i18n::Localized;

use crate::store::test_store as store;

fn case_with_need(consents: Value) -> Value {
    json!({
        "format": "amparo.case/1", "intake_date": "2026-03-14", "status": "Active",
        "people": [{"role": "PotentialVictim", "alias": "Rosa", "preferred_language": "es"}],
        "needs": [{"service": "Shelter", "status": "Identified"}, {"service": "Legal", "status": "Identified"}],
        "consents": consents,
    })
}

fn shelter(s: &mut Store) -> String {
    let e = json!({"name": "Albergue Nazareth", "country": "MX", "subdivision": "MX-BCN", "city": "Tijuana",
                   "services": ["Shelter"], "phone": "+526646800000", "languages": ["es"]});
    s.save_directory_entry(None, e).unwrap().id
}

#[test]
fn from_a_need_to_an_organisation_through_its_statuses() {
    let (_d, mut s) = store();
    let org = shelter(&mut s);
    let case = s.create_case(case_with_need(json!([])), None).unwrap();
    let id = case["id"].as_str().unwrap();
    let need = case["needs"][0]["id"].as_str().unwrap().to_string();
    let new = NewReferral { organisation: org.clone(), service: "Shelter".into(), shares_pii: false, need: Some(need) };
    let r = s.create_referral(id, &new).unwrap();
    assert_eq!(r["status"], "Pending");
    assert_eq!(r["organisation"], org.as_str());
    assert_eq!(r["organisation_name"], "Albergue Nazareth");
    assert_eq!(r["date"], crate::repositories::cases::today().format("%Y-%m-%d").to_string());
    let rid = r["id"].as_str().unwrap().to_string();
    let after = s.get_case(id).unwrap();
    assert_eq!(after["needs"][0]["status"], "Referred", "the need it answers");
    assert_eq!(after["needs"][1]["status"], "Identified", "the other need");

    for status in ["Accepted", "Completed"] {
        assert_eq!(s.set_referral_status(id, &rid, status).unwrap()["status"], status);
    }
    let err = s.set_referral_status(id, &rid, "Lost").unwrap_err();
    assert!(matches!(&err, StoreError::Invalid(v) if v.0[0].path == "referrals.0.status"), "{err:?}");
    assert!(matches!(s.set_referral_status(id, "no-such", "Accepted"), Err(StoreError::NotFound(..))));
    assert!(matches!(
        s.create_referral(id, &NewReferral { organisation: "nobody".into(), ..new.clone() }),
        Err(StoreError::NotFound(..))
    ));

    // The intake form does not carry referrals: saving from it keeps them.
    let mut from_form = s.get_case(id).unwrap();
    from_form.as_object_mut().unwrap().remove("referrals");
    from_form["status"] = json!("FollowUp");
    let saved = s.update_case(id, from_form, None).unwrap();
    assert_eq!(saved["referrals"][0]["status"], "Completed");
    assert_eq!(saved["status"], "FollowUp");
}

#[test]
fn sharing_personal_details_needs_the_consent_in_force() {
    let (_d, mut s) = store();
    let org = shelter(&mut s);
    let share = NewReferral { organisation: org.clone(), service: "Shelter".into(), shares_pii: true, need: None };

    let none = s.create_case(case_with_need(json!([])), None).unwrap();
    let err = s.create_referral(none["id"].as_str().unwrap(), &share).unwrap_err();
    assert!(matches!(err, StoreError::Consent(ConsentError::Missing(Sharing::Referral))), "{err:?}");
    assert!(s.get_case(none["id"].as_str().unwrap()).unwrap().get("referrals").is_none(), "nothing saved");
    // Without details, the same referral is made: services never wait for consent.
    let plain = NewReferral { shares_pii: false, ..share.clone() };
    s.create_referral(none["id"].as_str().unwrap(), &plain).unwrap();

    let declined = json!([{"scope": "ShareWithReferralOrganisation", "decision": "Declined", "explained_in": "es",
                           "given_at": "2026-03-14", "expires_at": "2027-03-14"}]);
    let c = s.create_case(case_with_need(declined), None).unwrap();
    let err = s.create_referral(c["id"].as_str().unwrap(), &share).unwrap_err();
    assert!(matches!(err, StoreError::Consent(ConsentError::Declined(Sharing::Referral))), "{err:?}");

    let granted = json!([{"scope": "ShareWithReferralOrganisation", "decision": "Granted", "explained_in": "es",
                          "given_at": "2026-03-14", "expires_at": "2099-03-14"}]);
    let c = s.create_case(case_with_need(granted), None).unwrap();
    let r = s.create_referral(c["id"].as_str().unwrap(), &share).unwrap();
    assert_eq!(r["shares_pii"], true);
    assert_eq!(r["consent"], c["consents"][0]["id"], "the consent that allows it");

    // A referral imported or typed with details and no consent is refused too.
    let mut sneaky = case_with_need(json!([]));
    sneaky["referrals"] = json!([{"organisation": org, "organisation_name": "Albergue Nazareth", "service": "Shelter",
                                  "date": "2026-03-15", "status": "Pending", "shares_pii": true}]);
    assert!(matches!(s.create_case(sneaky.clone(), None), Err(StoreError::Consent(_))));
    let line = serde_json::to_string(&sneaky).unwrap();
    let r = s.import_jsonl(line.as_bytes(), false, &mut |_| {}).unwrap();
    assert_eq!(r.imported, 0);
    assert_eq!(r.rejected[0].issues[0].error.i18n_key(), "error.field.referral_needs_consent");
}
