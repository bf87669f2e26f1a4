use super::*;

#[test]
fn a_blank_intake_hides_every_conditional_field() {
    let hidden = hidden_paths(&json!({ "people": [{ "role": "PotentialVictim" }] }));
    for path in
        ["type_of_sex_exploitation", "forced_labour_industry", "threat_targets", "people.0.in_trafficker_control"]
    {
        assert!(hidden.iter().any(|h| h == path), "{path} should be hidden: {hidden:?}");
    }
    // A group with no value yet still hides what depends on its own fields.
    assert!(hidden.iter().any(|h| h == "law_enforcement.agency"), "{hidden:?}");
}

#[test]
fn answers_reveal_their_follow_up_questions_and_only_those() {
    let case = json!({
        "trafficking_type": "Sex",
        "methods_of_control": ["DebtBondage", "PhysicalThreats"],
        "law_enforcement": { "involved": true },
        "people": [{ "role": "PotentialVictim" }, { "role": "DependentChild" }],
    });
    let hidden = hidden_paths(&case);
    for shown in
        ["type_of_sex_exploitation", "threat_targets", "law_enforcement.agency", "people.1.in_trafficker_control"]
    {
        assert!(!hidden.iter().any(|h| h == shown), "{shown} should be shown: {hidden:?}");
    }
    assert!(hidden.iter().any(|h| h == "forced_labour_industry"), "{hidden:?}");
    assert!(hidden.iter().any(|h| h == "people.0.in_trafficker_control"), "{hidden:?}");
    // "No" to law enforcement hides the agency again.
    let no = json!({ "law_enforcement": { "involved": false } });
    assert!(hidden_paths(&no).iter().any(|h| h == "law_enforcement.agency"));
}
