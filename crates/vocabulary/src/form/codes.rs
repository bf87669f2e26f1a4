//! Code lists: the stable, language-neutral values stored in the database and in
//! exports (DOMAIN.md). Where HTCDS defines a picklist we use its value names as they
//! are. Labels are never here: each code `C` of code set `S` is labelled by the locale
//! key `code.S.C`, and a test proves every such key exists in both locales.

/// Answers every picklist accepts unless it is process data (PRODUCT.md principle 4).
pub const UNKNOWN: &str = "Unknown";
pub const DECLINED: &str = "DeclinedToAnswer";
pub const NON_ANSWERS: [&str; 2] = [UNKNOWN, DECLINED];

/// Consent scopes that let personal details leave the organisation (each needs an
/// end date, and is what the sharing gate asks for).
pub const SHARING_SCOPES: [&str; 2] = ["ShareWithReferralOrganisation", "ShareWithLawEnforcement"];

/// A named list of codes. `name` is the middle part of the label key `code.NAME.CODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeSet {
    pub name: &'static str,
    pub codes: &'static [&'static str],
    /// How many of its first codes a form offers as choices: all of a short list;
    /// of a long one (every country), the common ones, the rest from a list.
    pub common: usize,
}

impl CodeSet {
    pub fn contains(&self, code: &str) -> bool {
        self.codes.contains(&code)
    }
}

macro_rules! code_sets {
    ($($konst:ident = $name:literal $(common $common:literal)? [$($code:literal)*];)*) => {
        $(pub const $konst: CodeSet = CodeSet {
            name: $name,
            codes: &[$($code),*],
            common: code_sets!(@common [$($code),*] $($common)?),
        };)*
        /// Every code set, for the locale completeness test and the UI.
        pub const ALL: &[CodeSet] = &[$($konst),*];
    };
    (@common [$($code:literal),*]) => { [$($code),*].len() };
    (@common [$($code:literal),*] $common:literal) => { $common };
}

code_sets! {
    STATUS = "status" ["Active" "FollowUp" "Closed" "ClosedReferred"];
    INTAKE_CHANNEL = "intake_channel" ["WalkIn" "Hotline" "Textline" "Outreach"
        "LawEnforcementReferral" "OrganisationReferral" "Other"];
    TRAFFICKING_TYPE = "trafficking_type" ["Sex" "Labour" "SexAndLabour" "Other"];
    VENUE = "venue" ["ResidentialBrothel" "BarClubCantina" "EscortDelivery" "HotelMotel"
        "CommercialFrontBrothel" "StreetBased" "StripClub" "TruckStop" "OnlineAdvertisement"
        "RemoteInteractive" "PersonalSexualServitude" "Pornography" "DomesticWork" "Agriculture"
        "Construction" "RestaurantFoodService" "Hospitality" "FactoryManufacturing"
        "TravelingSalesCrew" "PeddlingBegging" "Other"];
    SEX_EXPLOITATION = "sex_exploitation" ["Prostitution" "Pornography"
        "RemoteInteractiveServices" "PrivateSexualServices"];
    RECRUITER_RELATION = "recruiter_relation" ["IntimatePartner" "Family" "Employer" "Smuggler"
        "Friend" "Acquaintance" "Stranger" "Other"];
    // How the person was recruited (ours); where or through whom is HTCDS 2.0's
    // `recruitment_channel`.
    RECRUITMENT = "recruitment" ["Abduction" "JobOffer" "IntimatePartnerOrMarriageProposition"
        "PosingAsBenefactor" "SmugglingRansom" "OfferOfAccommodation" "InternationalMarriageBroker"
        "Other"];
    // HTCDS 2.0's, and restricted movement of our own.
    CONTROL = "control" ["PhysicalThreats" "ThreatsLawEnforcement" "ThreatensChildrenFamily"
        "DebtBondage" "FalsePromises" "PhysicalAbuse" "SexualAbuse" "TakesEarnings"
        "RestrictsFinancialAccess" "RestrictsMedicalCare" "WithholdsNecessities" "PsychologicalAbuse"
        "PsychoactiveSubstance" "ExcessiveWorkingHours" "WithholdsDocuments" "RestrictsMovement"
        "Other"];
    THREAT_TARGET = "threat_target" ["Self" "Children" "Family" "Other"];
    // HTCDS 2.0's own lists, by their value names.
    EXPLOITATION = "exploitation" ["ForcedLabour" "SexualExploitation" "ChildLabour" "ForcedMarriage"
        "Servitude" "ForcedMilitaryByNonStateActors" "OrganRemoval" "ForcedBegging" "ForcedAdoption"
        "Surrogacy" "Other"];
    // ISIC Rev. 4 sections, as HTCDS 2.0 names them.
    INDUSTRY = "industry" ["A_AgricultureForestryAndFishing" "B_MiningAndQuarrying" "C_Manufacturing"
        "D_ElectricityGasSteamAndAirConditioningSupply" "E_WaterSupplySewerageWasteManagement"
        "F_Construction" "G_WholesaleAndRetailTradeRepairOfMotorVehicles" "H_TransportationAndStorage"
        "I_AccommodationAndFoodServiceActivities" "J_InformationAndCommunication"
        "K_FinancialAndInsuranceActivities" "L_RealEstateActivities"
        "M_ProfessionalScientificAndTechnicalActivities" "N_AdministrativeAndSupportServiceActivities"
        "O_PublicAdministrationAndDefence" "P_Education" "Q_HumanHealthAndSocialWorkActivities"
        "R_ArtsEntertainmentAndRecreation" "S_OtherServiceActivities" "T_ActivitiesOfHouseholdsAsEmployers"
        "U_ActivitiesOfExtraterritorialOrganizations"];
    RECRUITMENT_CHANNEL = "recruitment_channel" ["AtAPlaceOfBusiness" "AtAnEducationalInstitution" "AtWork"
        "ThroughOnlineSocialNetworks" "ThroughAnOnlineAdvertisement" "ThroughATelevisionAdvert"
        "ThroughANewspaperAdvert" "ThroughFamilyOrFamilyEvents" "ThroughFriendsOrSocialEvents" "Other"];
    TRAFFICKING_STATUS = "trafficking_status" ["PossibleVictimOfTrafficking" "ActualVictimOfTrafficking"
        "NotAVictimOfTrafficking"];
    STATUS_DECIDED_BY = "status_decided_by" ["Police" "NGO" "CourtOrProsecution"
        "NonPoliceGovernmentalOrganization" "Other"];
    REFERRAL_REASON = "referral_reason" ["AdditionalServicesRequired" "MigrationOrChangeOfLocation" "Other"];
    EVENT_TYPE = "event_type" ["Recruitment" "Transit" "Exploitation"];
    DANGER_LEVEL = "danger_level" ["Low" "Medium" "High" "Immediate"];
    CONTACT_METHOD = "contact_method" ["Phone" "Text" "InPerson" "ThroughOrganisation" "None"];
    ROLE = "role" ["PotentialVictim" "DependentChild" "Companion" "Other"];
    // HTCDS 2.0's (its NonSpecifiedUnknown is our non-answer Unknown), and ours
    // for "transgender or non-conforming" where it was not said which.
    GENDER = "gender" ["Feminine" "Masculine" "TransgenderFeminine" "TransgenderMasculine"
        "NonConforming" "TransgenderNonConforming"];
    MAJORITY = "majority" ["Minor" "Adult" "Unknown"];
    IMMIGRATION_STATUS = "immigration_status" ["USCitizen" "LawfulPermanentResident"
        "VisaHolder" "Undocumented" "TVisaApplicant" "TVisaHolder" "UVisa" "ContinuedPresence"
        "AsylumSeeker" "MexicanNationalInMexico" "Other"];
    VULNERABILITY = "vulnerability" ["Addiction" "SocialGroup" "Discrimination" "Poverty"
        "DisabilityAndPhysicalHealth" "MentalHealth" "Migration" "Homelessness"
        "AbuseSocialMedia" "AbusePhysical" "Education" "WorkEnvironment"];
    NEED_SERVICE = "need_service" ["Shelter" "Medical" "MentalHealth" "Legal" "ImmigrationRelief"
        "Repatriation" "FamilyReunification" "Interpretation" "SafetyPlanning"
        "EconomicEmpowerment" "Education" "ChildCare" "Other"];
    NEED_STATUS = "need_status" ["Identified" "Referred" "Provided" "Declined"];
    REFERRAL_STATUS = "referral_status" ["Pending" "Accepted" "Rejected" "Completed" "Revoked"];
    CONSENT_SCOPE = "consent_scope" ["StoreData" "ShareWithReferralOrganisation"
        "ShareWithLawEnforcement" "DeidentifiedStatistics" "FollowUpContact"];
    CONSENT_DECISION = "consent_decision" ["Granted" "Declined"];
    // ISO 3166-1 alpha-2, every code (HTCDS 2.0 prs_Citizenship): first the
    // countries of origin, transit and destination our users meet most (the form
    // offers these), then the rest by code.
    COUNTRY = "country" common 36 ["MX" "US" "GT" "HN" "SV" "NI" "CR" "PA" "BZ" "CU" "DO" "HT" "JM" "CO" "VE" "EC"
        "PE" "BO" "BR" "AR" "CL" "PY" "UY" "CA" "ES" "CN" "PH" "IN" "TH" "VN" "KR" "RU"
        "UA" "RO" "NG" "GH"
        "AD" "AE" "AF" "AG" "AI" "AL" "AM" "AO" "AQ" "AS" "AT" "AU" "AW" "AX" "AZ" "BA" "BB" "BD"
        "BE" "BF" "BG" "BH" "BI" "BJ" "BL" "BM" "BN" "BQ" "BS" "BT" "BV" "BW" "BY" "CC" "CD" "CF"
        "CG" "CH" "CI" "CK" "CM" "CV" "CW" "CX" "CY" "CZ" "DE" "DJ" "DK" "DM" "DZ" "EE" "EG" "EH"
        "ER" "ET" "FI" "FJ" "FK" "FM" "FO" "FR" "GA" "GB" "GD" "GE" "GF" "GG" "GI" "GL" "GM" "GN"
        "GP" "GQ" "GR" "GS" "GU" "GW" "GY" "HK" "HM" "HR" "HU" "ID" "IE" "IL" "IM" "IO" "IQ" "IR"
        "IS" "IT" "JE" "JO" "JP" "KE" "KG" "KH" "KI" "KM" "KN" "KP" "KW" "KY" "KZ" "LA" "LB" "LC"
        "LI" "LK" "LR" "LS" "LT" "LU" "LV" "LY" "MA" "MC" "MD" "ME" "MF" "MG" "MH" "MK" "ML" "MM"
        "MN" "MO" "MP" "MQ" "MR" "MS" "MT" "MU" "MV" "MW" "MY" "MZ" "NA" "NC" "NE" "NF" "NL" "NO"
        "NP" "NR" "NU" "NZ" "OM" "PF" "PG" "PK" "PL" "PM" "PN" "PR" "PS" "PT" "PW" "QA" "RE" "RS"
        "RW" "SA" "SB" "SC" "SD" "SE" "SG" "SH" "SI" "SJ" "SK" "SL" "SM" "SN" "SO" "SR" "SS" "ST"
        "SX" "SY" "SZ" "TC" "TD" "TF" "TG" "TJ" "TK" "TL" "TM" "TN" "TO" "TR" "TT" "TV" "TW" "TZ"
        "UG" "UM" "UZ" "VA" "VC" "VG" "VI" "VU" "WF" "WS" "YE" "YT" "ZA" "ZM" "ZW"];
    // The service directory covers both sides of the border (DOMAIN.md).
    BORDER_COUNTRY = "country" ["US" "MX"];
    // BCP 47 tags: Spanish, English and Mexican indigenous languages (DOMAIN.md).
    LANGUAGE = "language" ["es" "en" "nah" "mix" "zap" "tzo" "tzh" "yua" "oto" "maz" "mam"
        "tlp" "pua" "tar" "qu" "pt" "fr" "ht" "zh"];
}

/// Codes of an earlier version (an HTCDS draft of 2020) and what they are now:
/// (field, old code, the field it is in now, its code there). Every case that
/// comes in (a save, an import, a merge) is read with them, and each store is
/// rewritten once (DOMAIN.md: old codes are still read).
pub const RENAMED: &[(&str, &str, &str, &str)] = &[
    ("gender", "Female", "gender", "Feminine"),
    ("gender", "Male", "gender", "Masculine"),
    ("methods_of_control", "Threats", "methods_of_control", "PhysicalThreats"),
    ("methods_of_control", "ThreatOfLawEnforcement", "methods_of_control", "ThreatsLawEnforcement"),
    ("methods_of_control", "PsychoactiveSubstances", "methods_of_control", "PsychoactiveSubstance"),
    // The draft's "uses children" was leverage over the person's children.
    ("methods_of_control", "UsesChildren", "methods_of_control", "ThreatensChildrenFamily"),
    ("vulnerabilities", "Caste", "vulnerabilities", "SocialGroup"),
    // Where or through whom, not how: HTCDS 2.0 asks it as a question of its own.
    ("method_of_recruitment", "EducationalFacility", "recruitment_channel", "AtAnEducationalInstitution"),
    ("method_of_recruitment", "Work", "recruitment_channel", "AtWork"),
    ("method_of_recruitment", "Familial", "recruitment_channel", "ThroughFamilyOrFamilyEvents"),
    ("method_of_recruitment", "Internet", "recruitment_channel", "ThroughOnlineSocialNetworks"),
    ("method_of_recruitment", "PublicArea", "recruitment_channel", "Other"),
    ("method_of_recruitment", "Shelter", "recruitment_channel", "Other"),
    // Kinds of labour exploitation: HTCDS 2.0 asks the industry (ISIC) and the
    // form of exploitation instead.
    ("type_of_labour_exploitation", "Agriculture", "forced_labour_industry", "A_AgricultureForestryAndFishing"),
    ("type_of_labour_exploitation", "Aquafarming", "forced_labour_industry", "A_AgricultureForestryAndFishing"),
    ("type_of_labour_exploitation", "MiningOrDrilling", "forced_labour_industry", "B_MiningAndQuarrying"),
    ("type_of_labour_exploitation", "Manufacturing", "forced_labour_industry", "C_Manufacturing"),
    ("type_of_labour_exploitation", "Construction", "forced_labour_industry", "F_Construction"),
    (
        "type_of_labour_exploitation",
        "Peddling",
        "forced_labour_industry",
        "G_WholesaleAndRetailTradeRepairOfMotorVehicles",
    ),
    ("type_of_labour_exploitation", "Transportation", "forced_labour_industry", "H_TransportationAndStorage"),
    ("type_of_labour_exploitation", "Hospitality", "forced_labour_industry", "I_AccommodationAndFoodServiceActivities"),
    ("type_of_labour_exploitation", "DomesticWork", "forced_labour_industry", "T_ActivitiesOfHouseholdsAsEmployers"),
    ("type_of_labour_exploitation", "Begging", "type_of_exploitation", "ForcedBegging"),
    // Forced criminal activity has no value of its own in HTCDS 2.0.
    ("type_of_labour_exploitation", "IllicitActivities", "type_of_exploitation", "Other"),
    ("type_of_labour_exploitation", "Other", "type_of_exploitation", "ForcedLabour"),
];

/// The two UI languages. Client documents may use any `LANGUAGE`.
pub const UI_LOCALES: [&str; 2] = ["en", "es"];
