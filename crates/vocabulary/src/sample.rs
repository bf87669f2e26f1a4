//! Made-up cases for tests, benchmarks and demos: every name here is invented.
//! [`generated`] is deterministic (a seed gives the same case every time) and always
//! valid and already normalised, so an import of it exports the same again.

use serde_json::{json, Value};

/// A case that fills every field of the form at least once.
pub fn full_case() -> Value {
    json!({
        "format": "amparo.case/1",
        "intake_date": "2026-03-14",
        "intake_channel": "Outreach",
        "status": "Active",
        "intake_place": {"country": "US", "subdivision": "US-TX", "city": "Houston"},
        "people": [
            {"role": "PotentialVictim", "alias": "Rosa", "given_name": "Xóchitl", "family_name": "Quetzalli Ramírez",
             "gender": "Feminine", "birth_date": "2009-02-03", "nationality": ["MX"], "languages": ["es", "nah"],
             "preferred_language": "es", "interpreter_needed": false, "immigration_status": "Undocumented",
             "trafficking_status": "PossibleVictimOfTrafficking", "trafficking_status_decided_by": "NGO",
             "vulnerabilities": ["Poverty", "Migration"], "safe_phone": "+525512345678", "email": "rosa@example.org"},
            {"role": "DependentChild", "gender": "Masculine", "age_estimate": 3, "in_trafficker_control": true,
             "nationality": ["Unknown"], "languages": ["es"]}
        ],
        "trafficking_type": "SexAndLabour",
        "type_of_exploitation": ["SexualExploitation", "ForcedLabour"],
        "venues": ["ResidentialBrothel", "BarClubCantina"],
        "type_of_sex_exploitation": ["Prostitution"],
        "forced_labour_industry": ["T_ActivitiesOfHouseholdsAsEmployers"],
        "recruiter_relation": ["IntimatePartner"],
        "method_of_recruitment": ["IntimatePartnerOrMarriageProposition", "JobOffer"],
        "recruitment_channel": ["ThroughOnlineSocialNetworks"],
        "methods_of_control": ["DebtBondage", "PhysicalThreats"],
        "threat_targets": ["Children", "Family"],
        "crossed_border": true,
        "trafficking_events": [
            {"type": "Recruitment", "date": "2025", "place": {"country": "MX", "subdivision": "MX-PUE", "city": "Tenancingo"}},
            {"type": "Exploitation", "date": "2025-06", "place": {"country": "US", "subdivision": "US-TX", "city": "Houston"}}
        ],
        "safety": {"danger_level": "High", "safe_contact_method": "ThroughOrganisation",
                   "safe_times": "Mañanas, entre semana", "code_word": "girasol"},
        "law_enforcement": {"involved": true, "agency": "HSI Houston"},
        "needs": [{"service": "Shelter", "status": "Provided"}, {"service": "ImmigrationRelief", "status": "Identified"}],
        "notes": [{"text": "Llegó con su hijo.", "language": "es"}]
    })
}

/// A small deterministic generator (SplitMix64), so tests need no randomness crate.
pub struct Gen(u64);

impl Gen {
    pub fn new(seed: u64) -> Gen {
        Gen(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
}

const ALIASES: &[&str] = &[
    "Rosa", "Lupita", "Mari", "Chayo", "Lucha", "Paty", "Nena", "Güera", "Flaca", "Chabela", "Toña", "Lety",
    "Conchita", "Vero", "Ale", "Gaby", "Maru", "Tere", "Yoli", "Cuca",
];
const GIVEN: &[&str] = &[
    "María",
    "Guadalupe",
    "Juana",
    "Xóchitl",
    "Itzel",
    "Citlali",
    "Ana",
    "Rocío",
    "Brenda",
    "Yesenia",
    "Dulce",
    "Marisol",
    "Araceli",
    "Esperanza",
    "Nayeli",
];
const FAMILY: &[&str] = &[
    "Hernández",
    "García",
    "Martínez",
    "López",
    "González",
    "Pérez",
    "Rodríguez",
    "Sánchez",
    "Ramírez",
    "Cruz",
    "Flores",
    "Gómez",
    "Morales",
    "Vázquez",
    "Reyes",
];
const US_CITIES: &[(&str, &str)] = &[
    ("US-TX", "Houston"),
    ("US-TX", "El Paso"),
    ("US-CA", "Los Angeles"),
    ("US-NY", "Queens"),
    ("US-GA", "Atlanta"),
    ("US-FL", "Miami"),
    ("US-NC", "Charlotte"),
    ("US-AZ", "Phoenix"),
];
const MX_CITIES: &[(&str, &str)] = &[
    ("MX-TLA", "Tenancingo"),
    ("MX-PUE", "Puebla"),
    ("MX-CHH", "Ciudad Juárez"),
    ("MX-BCN", "Tijuana"),
    ("MX-VER", "Veracruz"),
    ("MX-OAX", "Oaxaca"),
    ("MX-CHP", "Tapachula"),
];
const NOTE_WORDS: &[&str] = &[
    "llegó",
    "con",
    "su",
    "hija",
    "hijo",
    "refugio",
    "cita",
    "médica",
    "abogada",
    "seguimiento",
    "teléfono",
    "seguro",
    "arrived",
    "shelter",
    "follow-up",
    "court",
    "interpreter",
    "safe",
];

fn some_codes(g: &mut Gen, set: &[&str], max: usize) -> Value {
    let n = 1 + g.below(max);
    let mut out: Vec<&str> = Vec::new();
    for _ in 0..n {
        let c = g.pick(set);
        if !out.contains(&c) {
            out.push(c);
        }
    }
    json!(out)
}

/// A valid, normalised case, different for each `seed`.
pub fn generated(seed: u64) -> Value {
    use crate::form::codes;
    let mut g = Gen::new(seed);
    let year = 2016 + g.below(10) as i32;
    let month = 1 + g.below(12);
    let day = 1 + g.below(28);
    let mut case = json!({
        "format": "amparo.case/1",
        "intake_date": format!("{year}-{month:02}-{day:02}"),
        "intake_channel": g.pick(codes::INTAKE_CHANNEL.codes),
        "status": g.pick(codes::STATUS.codes),
    });
    let c = case.as_object_mut().expect("json object");
    let (sub, city) = US_CITIES[g.below(US_CITIES.len())];
    c.insert("intake_place".into(), json!({"country": "US", "subdivision": sub, "city": city}));
    let mut people = vec![];
    let victims = 1 + usize::from(g.chance(15));
    for _ in 0..victims {
        let mut p = json!({"role": "PotentialVictim", "alias": g.pick(ALIASES)});
        let po = p.as_object_mut().expect("json object");
        if g.chance(60) {
            po.insert("given_name".into(), g.pick(GIVEN).into());
            po.insert("family_name".into(), format!("{} {}", g.pick(FAMILY), g.pick(FAMILY)).into());
        }
        po.insert(
            "gender".into(),
            g.pick(&["Feminine", "Feminine", "Feminine", "Masculine", "TransgenderFeminine", "Unknown"]).into(),
        );
        if g.chance(50) {
            let by = year - 14 - g.below(20) as i32;
            po.insert("birth_date".into(), format!("{by}-{:02}-{:02}", 1 + g.below(12), 1 + g.below(28)).into());
        } else if g.chance(70) {
            po.insert("age_estimate".into(), (14 + g.below(25)).into());
        }
        po.insert("nationality".into(), json!([g.pick(&["MX", "MX", "MX", "GT", "HN", "SV", "US"])]));
        po.insert("languages".into(), some_codes(&mut g, &["es", "es", "nah", "mix", "zap", "en"], 2));
        po.insert("preferred_language".into(), g.pick(&["es", "es", "en"]).into());
        po.insert("immigration_status".into(), g.pick(codes::IMMIGRATION_STATUS.codes).into());
        if g.chance(30) {
            po.insert("safe_phone".into(), format!("+52{}", 5_500_000_000u64 + g.next_u64() % 99_999_999).into());
        }
        people.push(p);
    }
    if g.chance(30) {
        people.push(json!({"role": "DependentChild", "gender": g.pick(&["Feminine", "Masculine"]),
                           "age_estimate": g.below(12), "in_trafficker_control": g.chance(40)}));
    }
    c.insert("people".into(), json!(people));
    let tt = g.pick(&["Sex", "Sex", "Sex", "Labour", "SexAndLabour", "Unknown"]);
    c.insert("trafficking_type".into(), tt.into());
    c.insert("venues".into(), some_codes(&mut g, codes::VENUE.codes, 2));
    if tt == "Sex" || tt == "SexAndLabour" {
        c.insert("type_of_sex_exploitation".into(), some_codes(&mut g, codes::SEX_EXPLOITATION.codes, 2));
    }
    if tt == "Labour" || tt == "SexAndLabour" {
        c.insert("forced_labour_industry".into(), some_codes(&mut g, codes::INDUSTRY.codes, 2));
    }
    c.insert("recruiter_relation".into(), some_codes(&mut g, codes::RECRUITER_RELATION.codes, 2));
    let control = some_codes(&mut g, codes::CONTROL.codes, 3);
    if control.as_array().is_some_and(|a| a.iter().any(|v| v == "PhysicalThreats")) {
        c.insert("threat_targets".into(), some_codes(&mut g, codes::THREAT_TARGET.codes, 2));
    }
    c.insert("methods_of_control".into(), control);
    c.insert("crossed_border".into(), json!(g.chance(70)));
    if g.chance(50) {
        let (msub, mcity) = MX_CITIES[g.below(MX_CITIES.len())];
        c.insert("trafficking_events".into(), json!([
            {"type": "Recruitment", "date": format!("{}", year - 1), "place": {"country": "MX", "subdivision": msub, "city": mcity}},
            {"type": "Exploitation", "date": format!("{}-{:02}", year - 1, 1 + g.below(12)), "place": {"country": "US", "subdivision": sub, "city": city}}
        ]));
    }
    c.insert(
        "needs".into(),
        json!([{"service": g.pick(codes::NEED_SERVICE.codes), "status": g.pick(codes::NEED_STATUS.codes)}]),
    );
    if g.chance(70) {
        let words: Vec<&str> = (0..6 + g.below(20)).map(|_| g.pick(NOTE_WORDS)).collect();
        c.insert("notes".into(), json!([{"text": words.join(" "), "language": "es"}]));
    }
    case
}

/// `case` without what the store assigns (ids, case number, timestamps, note
/// authors, derived values): what an export must share with the import it came from.
pub fn without_assigned(case: &Value) -> Value {
    let mut c = case.clone();
    if let Some(m) = c.as_object_mut() {
        for k in ["id", "case_number", "created_at", "updated_at"] {
            m.remove(k);
        }
        for list in ["people", "needs", "trafficking_events", "notes"] {
            for it in m.get_mut(list).and_then(Value::as_array_mut).into_iter().flatten() {
                if let Some(o) = it.as_object_mut() {
                    for k in ["id", "majority_at_intake", "majority_at_exploitation", "author", "created_at"] {
                        o.remove(k);
                    }
                }
            }
        }
    }
    c
}
