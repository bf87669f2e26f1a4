//! The intake form as data. The core owns what a case is made of: sections, fields,
//! their types, code lists, which fields are personally identifying (PII), and skip
//! logic. The UI renders whatever [`definition`] describes and never decides
//! validity itself; validation ([`crate::intake::validate`]) walks the same
//! definition, so the form and the rules cannot drift apart.
//!
//! Label keys follow the field's path without list indices: the label of
//! `people[2].gender` is `field.people.gender`, a section's title `section.KEY`,
//! a code's label `code.SET.CODE`.

pub mod codes;

use codes::CodeSet;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// Longest single-line text we accept (names, city, agency).
pub const TEXT_MAX: usize = 200;
/// Longest free text (a note, safe times).
pub const LONG_TEXT_MAX: usize = 10_000;
/// Oldest plausible age, in years (also bounds `age_estimate`).
pub const AGE_MAX: i64 = 120;

#[derive(Debug, Clone)]
pub enum Kind {
    Text {
        max: usize,
    },
    LongText {
        max: usize,
    },
    /// A full date `YYYY-MM-DD`, never in the future.
    Date,
    /// `YYYY`, `YYYY-MM` or `YYYY-MM-DD` (HTCDS historic events), never in the future.
    ApproxDate,
    /// A full date `YYYY-MM-DD` that may lie ahead (when a consent expires).
    ExpiryDate,
    Integer {
        min: i64,
        max: i64,
    },
    /// `true`, `false`, `"Unknown"` or `"DeclinedToAnswer"`.
    YesNo,
    /// One code. `process` fields (set by staff about the case, like status) do not
    /// offer Unknown / Declined to answer.
    Choice {
        set: CodeSet,
        process: bool,
    },
    /// A list of codes; `["Unknown"]` or `["DeclinedToAnswer"]` when not disclosed.
    Multi {
        set: CodeSet,
    },
    /// E.164, e.g. `+12065550123`.
    Phone,
    Email,
    /// ISO 3166-2, e.g. `MX-CHH`; must belong to the sibling `country` when given.
    Subdivision,
    Group {
        fields: Vec<Field>,
    },
    List {
        item: Vec<Field>,
    },
    /// Computed by the core on save from other fields; read-only in the form.
    Derived {
        set: CodeSet,
    },
}

/// Show a field only when a sibling field holds one of `any_of` (for a multi field:
/// contains one of them; for yes/no: `"true"` or `"false"`).
#[derive(Debug, Clone, Copy)]
pub struct ShowIf {
    pub field: &'static str,
    pub any_of: &'static [&'static str],
}

#[derive(Debug, Clone)]
pub struct Field {
    pub key: &'static str,
    pub kind: Kind,
    pub pii: bool,
    pub show_if: Option<ShowIf>,
}

#[derive(Debug, Clone)]
pub struct Section {
    pub key: &'static str,
    pub fields: Vec<Field>,
}

fn f(key: &'static str, kind: Kind) -> Field {
    Field { key, kind, pii: false, show_if: None }
}

impl Field {
    fn pii(mut self) -> Self {
        self.pii = true;
        self
    }
    fn show_if(mut self, field: &'static str, any_of: &'static [&'static str]) -> Self {
        self.show_if = Some(ShowIf { field, any_of });
        self
    }
}

fn text() -> Kind {
    Kind::Text { max: TEXT_MAX }
}
fn long_text() -> Kind {
    Kind::LongText { max: LONG_TEXT_MAX }
}
fn choice(set: CodeSet) -> Kind {
    Kind::Choice { set, process: false }
}
fn multi(set: CodeSet) -> Kind {
    Kind::Multi { set }
}

fn place() -> Kind {
    Kind::Group {
        fields: vec![f("country", choice(codes::COUNTRY)), f("subdivision", Kind::Subdivision), f("city", text())],
    }
}

/// A person in a case (DOMAIN.md, Person).
pub fn person_fields() -> Vec<Field> {
    vec![
        f("role", Kind::Choice { set: codes::ROLE, process: true }),
        f("alias", text()).pii(),
        f("given_name", text()).pii(),
        f("family_name", text()).pii(),
        f("gender", choice(codes::GENDER)),
        f("birth_date", Kind::Date).pii(),
        f("age_estimate", Kind::Integer { min: 0, max: AGE_MAX }),
        f("majority_at_intake", Kind::Derived { set: codes::MAJORITY }),
        f("majority_at_exploitation", Kind::Derived { set: codes::MAJORITY }),
        f("nationality", multi(codes::COUNTRY)),
        f("languages", multi(codes::LANGUAGE)),
        f("preferred_language", choice(codes::LANGUAGE)),
        f("interpreter_needed", Kind::YesNo),
        f("immigration_status", choice(codes::IMMIGRATION_STATUS)),
        // Whether, and by whom, the person has been identified as a victim of
        // trafficking (HTCDS 2.0 vic_TraffickingStatus and its decision maker).
        f("trafficking_status", choice(codes::TRAFFICKING_STATUS)).show_if("role", &["PotentialVictim"]),
        f("trafficking_status_decided_by", choice(codes::STATUS_DECIDED_BY))
            .show_if("trafficking_status", codes::TRAFFICKING_STATUS.codes),
        f("in_trafficker_control", Kind::YesNo).show_if("role", &["DependentChild", "Other"]),
        f("vulnerabilities", multi(codes::VULNERABILITY)),
        f("safe_phone", Kind::Phone).pii(),
        f("email", Kind::Email).pii(),
    ]
}

/// The whole intake form, in the order a caseworker fills it in. Built once: every
/// save validates against it.
pub fn definition() -> &'static [Section] {
    static DEF: LazyLock<Vec<Section>> = LazyLock::new(build_definition);
    &DEF
}

fn build_definition() -> Vec<Section> {
    const SEX: &[&str] = &["Sex", "SexAndLabour"];
    const LABOUR: &[&str] = &["Labour", "SexAndLabour"];
    vec![
        Section {
            key: "intake",
            fields: vec![
                f("intake_date", Kind::Date),
                f("intake_channel", choice(codes::INTAKE_CHANNEL)),
                f("status", Kind::Choice { set: codes::STATUS, process: true }),
                f("closure_reason", long_text()).pii().show_if("status", &["Closed", "ClosedReferred"]),
                f("intake_place", place()),
                // Who referred the person to us (HTCDS 2.0 cas_Referring…, cas_Incoming…).
                f(
                    "incoming_referral",
                    Kind::Group {
                        fields: vec![
                            f("organisation", text()),
                            f("date", Kind::Date),
                            f("reason", choice(codes::REFERRAL_REASON)),
                            f("details", long_text()).pii(),
                        ],
                    },
                )
                .show_if("intake_channel", &["LawEnforcementReferral", "OrganisationReferral"]),
            ],
        },
        Section { key: "people", fields: vec![f("people", Kind::List { item: person_fields() })] },
        Section {
            key: "trafficking",
            fields: vec![
                f("trafficking_type", choice(codes::TRAFFICKING_TYPE)),
                f("type_of_exploitation", multi(codes::EXPLOITATION)),
                f("venues", multi(codes::VENUE)),
                f("type_of_sex_exploitation", multi(codes::SEX_EXPLOITATION)).show_if("trafficking_type", SEX),
                // A list, though HTCDS 2.0 asks for one: people are made to work in
                // more than one (its own XLSForm lets several be picked).
                f("forced_labour_industry", multi(codes::INDUSTRY)).show_if("trafficking_type", LABOUR),
                f("recruiter_relation", multi(codes::RECRUITER_RELATION)),
                f("method_of_recruitment", multi(codes::RECRUITMENT)),
                f("recruitment_channel", multi(codes::RECRUITMENT_CHANNEL)),
                f("methods_of_control", multi(codes::CONTROL)),
                f("threat_targets", multi(codes::THREAT_TARGET)).show_if("methods_of_control", &["PhysicalThreats"]),
                f("crossed_border", Kind::YesNo),
                f(
                    "trafficking_events",
                    Kind::List {
                        item: vec![
                            f("type", Kind::Choice { set: codes::EVENT_TYPE, process: true }),
                            f("date", Kind::ApproxDate),
                            f("place", place()),
                        ],
                    },
                ),
            ],
        },
        Section {
            key: "safety",
            fields: vec![
                f(
                    "safety",
                    Kind::Group {
                        fields: vec![
                            f("danger_level", choice(codes::DANGER_LEVEL)),
                            f("safe_contact_method", choice(codes::CONTACT_METHOD)),
                            f("safe_times", long_text()),
                            f("code_word", text()).pii(),
                        ],
                    },
                ),
                f(
                    "law_enforcement",
                    Kind::Group {
                        fields: vec![f("involved", Kind::YesNo), f("agency", text()).show_if("involved", &["true"])],
                    },
                ),
            ],
        },
        Section {
            key: "needs",
            fields: vec![f(
                "needs",
                Kind::List {
                    item: vec![
                        f("service", Kind::Choice { set: codes::NEED_SERVICE, process: true }),
                        f("status", Kind::Choice { set: codes::NEED_STATUS, process: true }),
                    ],
                },
            )],
        },
        // Referrals are made from the case view (an organisation picked from the
        // directory, its name kept with the referral so the slip prints on any
        // laptop); the intake form does not show them, and a save from the form keeps
        // them. One that shares personal details needs the survivor's consent.
        Section {
            key: "referrals",
            fields: vec![f(
                "referrals",
                Kind::List {
                    item: vec![
                        f("organisation", Kind::Text { max: 64 }),
                        f("organisation_name", text()),
                        f("service", Kind::Choice { set: codes::NEED_SERVICE, process: true }),
                        f("date", Kind::Date),
                        f("status", Kind::Choice { set: codes::REFERRAL_STATUS, process: true }),
                        f("shares_pii", Kind::YesNo),
                        f("consent", Kind::Text { max: 64 }),
                        f("need", Kind::Text { max: 64 }),
                    ],
                },
            )],
        },
        // Informed, written, time-limited consent (VAWA/FVPSA): what may be done with
        // the survivor's information, in which language it was explained, until when.
        // Who recorded it is set by the store (`recorded_by`). Services never depend
        // on it.
        Section {
            key: "consents",
            fields: vec![f(
                "consents",
                Kind::List {
                    item: vec![
                        f("scope", Kind::Choice { set: codes::CONSENT_SCOPE, process: true }),
                        f("decision", Kind::Choice { set: codes::CONSENT_DECISION, process: true }),
                        f("explained_in", Kind::Choice { set: codes::LANGUAGE, process: true }),
                        f("given_at", Kind::Date),
                        f("expires_at", Kind::ExpiryDate),
                    ],
                },
            )],
        },
    ]
}

/// Is `field` shown, given the object it belongs to?
pub fn is_shown(field: &Field, siblings: &serde_json::Map<String, Value>) -> bool {
    let Some(cond) = field.show_if else {
        return true;
    };
    let matches = |v: &Value| match v {
        Value::String(s) => cond.any_of.contains(&s.as_str()),
        Value::Bool(b) => cond.any_of.contains(&if *b { "true" } else { "false" }),
        _ => false,
    };
    match siblings.get(cond.field) {
        Some(Value::Array(items)) => items.iter().any(matches),
        Some(v) => matches(v),
        None => false,
    }
}

/// The paths (`people.1.in_trafficker_control`) of the case's fields that its skip
/// logic hides for these values, so the form shows what the core keeps on save.
/// Under a hidden group or list only the group's own path is given.
pub fn hidden_paths(case: &Value) -> Vec<String> {
    fn walk(fields: &[Field], obj: Option<&serde_json::Map<String, Value>>, parent: &str, out: &mut Vec<String>) {
        let empty = serde_json::Map::new();
        let obj = obj.unwrap_or(&empty);
        for field in fields {
            let path = if parent.is_empty() { field.key.to_string() } else { format!("{parent}.{}", field.key) };
            if !is_shown(field, obj) {
                out.push(path);
                continue;
            }
            match (&field.kind, obj.get(field.key)) {
                (Kind::Group { fields }, v) => walk(fields, v.and_then(Value::as_object), &path, out),
                (Kind::List { item }, Some(Value::Array(items))) => {
                    for (i, it) in items.iter().enumerate() {
                        walk(item, it.as_object(), &format!("{path}.{i}"), out);
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(case_fields(), case.as_object(), "", &mut out);
    out
}

fn field_json(field: &Field, parent: &str) -> Value {
    let path = if parent.is_empty() { field.key.to_string() } else { format!("{parent}.{}", field.key) };
    let mut v = json!({
        "key": field.key,
        "label": format!("field.{path}"),
        "help": format!("help.{path}"),
        "pii": field.pii,
    });
    let (kind, extra) = match &field.kind {
        Kind::Text { max } => ("text", json!({ "max": max })),
        Kind::LongText { max } => ("long_text", json!({ "max": max })),
        Kind::Date => ("date", json!({})),
        Kind::ApproxDate => ("approx_date", json!({})),
        Kind::ExpiryDate => ("expiry_date", json!({})),
        Kind::Integer { min, max } => ("integer", json!({ "min": min, "max": max })),
        Kind::YesNo => ("yes_no", json!({})),
        Kind::Choice { set, process } => (
            "choice",
            json!({ "code_set": set.name, "codes": set.codes, "non_answers": !process, "common": set.common }),
        ),
        Kind::Multi { set } => {
            ("multi", json!({ "code_set": set.name, "codes": set.codes, "non_answers": true, "common": set.common }))
        }
        Kind::Phone => ("phone", json!({})),
        Kind::Email => ("email", json!({})),
        Kind::Subdivision => ("subdivision", json!({})),
        Kind::Group { fields } => {
            ("group", json!({ "fields": fields.iter().map(|c| field_json(c, &path)).collect::<Vec<_>>() }))
        }
        Kind::List { item } => {
            let mut list = json!({ "item": item.iter().map(|c| field_json(c, &path)).collect::<Vec<_>>() });
            if let (Some(labels), Value::Object(o)) = (item_labels(field.key), &mut list) {
                o.insert("item_labels".into(), json!(labels));
            }
            ("list", list)
        }
        Kind::Derived { set } => ("derived", json!({ "code_set": set.name, "codes": set.codes })),
    };
    let obj = v.as_object_mut().expect("json! object literal");
    obj.insert("kind".into(), kind.into());
    if let Value::Object(extra) = extra {
        obj.extend(extra);
    }
    v
}

/// What an item of a list the form edits is called: its heading ("Person 2"), its
/// remove and add buttons, as label keys. `None` for lists the form does not edit.
pub fn item_labels(list: &str) -> Option<BTreeMap<&'static str, String>> {
    let noun = match list {
        "people" => "person",
        "needs" => "need",
        "trafficking_events" => "event",
        "consents" => "consent",
        _ => return None,
    };
    Some(BTreeMap::from([
        ("item", format!("form.{noun}_n")),
        ("remove", format!("form.remove_{noun}")),
        ("add", format!("form.add_{noun}")),
    ]))
}

/// Sections the case view edits with its own controls (a referral is made by
/// picking an organisation, not by typing its id).
pub const MANAGED_SECTIONS: [&str; 1] = ["referrals"];

/// The form definition as the UI receives it.
pub fn definition_json() -> Value {
    let sections: Vec<Value> = definition()
        .iter()
        .map(|s| {
            json!({
                "key": s.key,
                "label": format!("section.{}", s.key),
                "fields": s.fields.iter().map(|fd| field_json(fd, "")).collect::<Vec<_>>(),
                // Edited from the case view, not the intake form.
                "managed": MANAGED_SECTIONS.contains(&s.key),
            })
        })
        .collect();
    let directory: Vec<Value> = directory_fields().iter().map(|fd| field_json(fd, "directory")).collect();
    json!({ "sections": sections, "non_answers": codes::NON_ANSWERS, "directory": directory })
}

/// Every label key the form needs (fields and sections), for the locale tests.
pub fn label_keys() -> Vec<String> {
    fn walk(fields: &[Field], parent: &str, out: &mut Vec<String>) {
        for fd in fields {
            let path = if parent.is_empty() { fd.key.to_string() } else { format!("{parent}.{}", fd.key) };
            out.push(format!("field.{path}"));
            match &fd.kind {
                Kind::Group { fields } => walk(fields, &path, out),
                Kind::List { item } => {
                    out.extend(item_labels(fd.key).into_iter().flat_map(|l| l.into_values()));
                    walk(item, &path, out)
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    for s in definition() {
        out.push(format!("section.{}", s.key));
        walk(&s.fields, "", &mut out);
    }
    walk(directory_fields(), "directory", &mut out);
    out
}

/// Root-level fields of a case, flattened over sections.
pub fn case_fields() -> &'static [Field] {
    static FIELDS: LazyLock<Vec<Field>> =
        LazyLock::new(|| definition().iter().flat_map(|s| s.fields.iter().cloned()).collect());
    &FIELDS
}

/// An organisation in the service directory (DOMAIN.md, Service directory): what
/// the directory's form shows and what its entries are checked against.
pub fn directory_fields() -> &'static [Field] {
    static FIELDS: LazyLock<Vec<Field>> = LazyLock::new(|| {
        vec![
            f("name", text()),
            f("country", Kind::Choice { set: codes::BORDER_COUNTRY, process: true }),
            f("subdivision", Kind::Subdivision),
            f("city", text()),
            f("services", Kind::Multi { set: codes::NEED_SERVICE }),
            f("phone", Kind::Phone),
            f("text_number", Kind::Text { max: 20 }),
            f("languages", Kind::Multi { set: codes::LANGUAGE }),
            f("hours", text()),
            f("notes", long_text()),
            f("hotline", Kind::YesNo),
        ]
    });
    &FIELDS
}

#[cfg(test)]
mod tests;
