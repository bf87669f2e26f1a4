//! Validation of a case against the form definition. Every rule here is a
//! [`FieldError`] variant with a stable i18n key; the UI and the CLI show the message
//! in the user's language next to the field named by the issue's path.

use crate::form::{self, codes, Field, Kind};
use crate::i18n::Localized;
use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use serde_json::{Map, Value};

/// The case JSON format tag (DOMAIN.md).
pub const CASE_FORMAT: &str = "amparo.case/1";
/// Keys a case may carry besides its form fields; the store assigns or keeps them.
pub const CASE_META_KEYS: [&str; 8] =
    ["format", "id", "case_number", "created_at", "updated_at", "assigned_to", "restricted", "notes"];
/// Keys an item in a list may carry besides its form fields.
pub const ITEM_META_KEYS: [&str; 2] = ["id", "recorded_by"];
/// Oldest plausible birth or event year.
const OLDEST_YEAR: i32 = 1900;
/// Most people, needs or events in one case; far above any real intake.
pub const LIST_MAX: usize = 100;
/// Most notes imported with one case.
pub const NOTES_MAX: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("this field is not part of the form")]
    UnknownField,
    #[error("expected {expected}")]
    WrongType { expected: &'static str },
    #[error("longer than {max} characters")]
    TooLong { max: usize },
    #[error("not a date (YYYY-MM-DD)")]
    DateFormat,
    #[error("not a date (YYYY, YYYY-MM or YYYY-MM-DD)")]
    ApproxDateFormat,
    #[error("date is in the future")]
    DateInFuture,
    #[error("date is before {year}")]
    DateTooOld { year: i32 },
    #[error("birth date is after the intake date")]
    BirthAfterIntake,
    #[error("not a whole number")]
    NotWholeNumber,
    #[error("must be between {min} and {max}")]
    OutOfRange { min: i64, max: i64 },
    #[error("unknown code {code}")]
    UnknownCode { code: String },
    #[error("code {code} given twice")]
    DuplicateCode { code: String },
    #[error("Unknown or Declined to answer cannot be combined with other answers")]
    NonAnswerNotAlone,
    #[error("phone number is not in international format (+ country code and number)")]
    Phone,
    #[error("not an email address")]
    Email,
    #[error("not a subdivision code like MX-CHH")]
    SubdivisionFormat,
    #[error("subdivision is not in country {country}")]
    SubdivisionCountry { country: String },
    #[error("a case needs at least one potential victim")]
    NoPotentialVictim,
    #[error("more than {max} entries")]
    TooManyItems { max: usize },
    #[error("unsupported format {format}")]
    Format { format: String },
    #[error("not a case number like TX3-2026-0042")]
    CaseNumber,
    #[error("empty note")]
    EmptyNote,
    #[error("required")]
    Required,
    #[error("device code must be 2 to 8 letters or digits")]
    DeviceCode,
    #[error("passphrase shorter than {min} characters")]
    PassphraseTooShort { min: usize },
    #[error("case number {number} is already in use")]
    DuplicateCaseNumber { number: String },
    #[error("a case with this id already exists")]
    DuplicateId,
    #[error("not valid JSON")]
    Json,
    #[error("notes cannot be changed or removed, only added")]
    NotesAppendOnly,
    #[error("this value is set by Amparo and cannot be changed")]
    ReadOnly,
    #[error("this passphrase is already someone else's")]
    PassphraseInUse,
    #[error("a user with this name already exists")]
    NameTaken,
    #[error("not a recovery key (8 groups of 5 letters and digits)")]
    RecoveryKeyFormat,
    #[error("only a supervisor or an administrator can change this")]
    SupervisorOnly,
    #[error("expires before it was given")]
    ExpiryBeforeGiven,
    #[error("a consent to share needs an expiry date")]
    ConsentNeedsExpiry,
    #[error("device code {code} is already used by another laptop of this organisation")]
    DeviceCodeTaken { code: String },
    #[error("not a folder on this computer")]
    NotAFolder,
    #[error("no such file on this computer")]
    NotAFile,
    #[error("the end of the period is before its start")]
    EndBeforeStart,
    #[error("a referral that shares personal details needs the survivor's consent in force")]
    ReferralNeedsConsent,
    #[error("contains a control character")]
    ControlCharacter,
    #[error("not a date and time like 2026-03-14T10:00:00Z")]
    Timestamp,
    #[error("this line is not UTF-8 text")]
    NotUtf8,
    #[error("this line is longer than any case ({max_mb} MB)")]
    LineTooLong { max_mb: usize },
    #[error("another row of this case (line {line}) has another value here")]
    RowsDisagree { line: usize },
    #[error("the file is larger than {max_mb} MB, or unpacks to more than any case sheet")]
    FileTooLarge { max_mb: usize },
    #[error("the first row names none of the HTCDS columns")]
    NotHtcds,
    #[error("the file could not be read as {format}")]
    Unreadable { format: String },
}

impl Localized for FieldError {
    /// The locale key of this error's message.
    fn i18n_key(&self) -> &'static str {
        use FieldError::*;
        match self {
            UnknownField => "error.field.unknown_field",
            WrongType { .. } => "error.field.wrong_type",
            TooLong { .. } => "error.field.too_long",
            DateFormat => "error.field.date_format",
            ApproxDateFormat => "error.field.approx_date_format",
            DateInFuture => "error.field.date_in_future",
            DateTooOld { .. } => "error.field.date_too_old",
            BirthAfterIntake => "error.field.birth_after_intake",
            NotWholeNumber => "error.field.not_whole_number",
            OutOfRange { .. } => "error.field.out_of_range",
            UnknownCode { .. } => "error.field.unknown_code",
            DuplicateCode { .. } => "error.field.duplicate_code",
            NonAnswerNotAlone => "error.field.non_answer_not_alone",
            Phone => "error.field.phone",
            Email => "error.field.email",
            SubdivisionFormat => "error.field.subdivision_format",
            SubdivisionCountry { .. } => "error.field.subdivision_country",
            NoPotentialVictim => "error.field.no_potential_victim",
            TooManyItems { .. } => "error.field.too_many_items",
            Format { .. } => "error.field.format",
            CaseNumber => "error.field.case_number",
            EmptyNote => "error.field.empty_note",
            Required => "error.field.required",
            DeviceCode => "error.field.device_code",
            PassphraseTooShort { .. } => "error.field.passphrase_too_short",
            DuplicateCaseNumber { .. } => "error.field.duplicate_case_number",
            DuplicateId => "error.field.duplicate_id",
            Json => "error.field.json",
            NotesAppendOnly => "error.field.notes_append_only",
            ReadOnly => "error.field.read_only",
            PassphraseInUse => "error.field.passphrase_in_use",
            NameTaken => "error.field.name_taken",
            RecoveryKeyFormat => "error.field.recovery_key_format",
            SupervisorOnly => "error.field.supervisor_only",
            ExpiryBeforeGiven => "error.field.expiry_before_given",
            ConsentNeedsExpiry => "error.field.consent_needs_expiry",
            DeviceCodeTaken { .. } => "error.field.device_code_taken",
            NotAFolder => "error.field.not_a_folder",
            NotAFile => "error.field.not_a_file",
            EndBeforeStart => "error.field.end_before_start",
            ReferralNeedsConsent => "error.field.referral_needs_consent",
            ControlCharacter => "error.field.control_character",
            Timestamp => "error.field.timestamp",
            NotUtf8 => "error.field.not_utf8",
            LineTooLong { .. } => "error.field.line_too_long",
            RowsDisagree { .. } => "error.field.rows_disagree",
            FileTooLarge { .. } => "error.field.file_too_large",
            NotHtcds => "error.field.not_htcds",
            Unreadable { .. } => "error.field.unreadable",
        }
    }

    /// Values for the message's `%{placeholders}`.
    fn args(&self) -> Vec<(&'static str, String)> {
        use FieldError::*;
        match self {
            WrongType { expected } => vec![("expected", (*expected).to_string())],
            TooLong { max } | TooManyItems { max } => vec![("max", max.to_string())],
            DateTooOld { year } => vec![("year", year.to_string())],
            OutOfRange { min, max } => vec![("min", min.to_string()), ("max", max.to_string())],
            UnknownCode { code } | DuplicateCode { code } => vec![("code", code.clone())],
            SubdivisionCountry { country } => vec![("country", country.clone())],
            Format { format } => vec![("format", format.clone())],
            PassphraseTooShort { min } => vec![("min", min.to_string())],
            DuplicateCaseNumber { number } => vec![("number", number.clone())],
            DeviceCodeTaken { code } => vec![("code", code.clone())],
            LineTooLong { max_mb } => vec![("max", max_mb.to_string())],
            RowsDisagree { line } => vec![("line", line.to_string())],
            FileTooLarge { max_mb } => vec![("max", max_mb.to_string())],
            Unreadable { format } => vec![("format", format.clone())],
            _ => vec![],
        }
    }
}

impl FieldError {
    /// All variants with sample arguments, so tests can prove each message exists in
    /// both locales with its placeholders filled.
    pub fn samples() -> Vec<FieldError> {
        use FieldError::*;
        vec![
            UnknownField,
            WrongType { expected: "text" },
            TooLong { max: 200 },
            DateFormat,
            ApproxDateFormat,
            DateInFuture,
            DateTooOld { year: OLDEST_YEAR },
            BirthAfterIntake,
            NotWholeNumber,
            OutOfRange { min: 0, max: 120 },
            UnknownCode { code: "Xyz".into() },
            DuplicateCode { code: "MX".into() },
            NonAnswerNotAlone,
            Phone,
            Email,
            SubdivisionFormat,
            SubdivisionCountry { country: "MX".into() },
            NoPotentialVictim,
            TooManyItems { max: LIST_MAX },
            Format { format: "x/2".into() },
            CaseNumber,
            EmptyNote,
            Required,
            DeviceCode,
            PassphraseTooShort { min: 12 },
            DuplicateCaseNumber { number: "TX3-2026-0042".into() },
            DuplicateId,
            Json,
            NotesAppendOnly,
            ReadOnly,
            PassphraseInUse,
            NameTaken,
            RecoveryKeyFormat,
            SupervisorOnly,
            ExpiryBeforeGiven,
            DeviceCodeTaken { code: "TX3".into() },
            NotAFolder,
            NotAFile,
            ConsentNeedsExpiry,
            EndBeforeStart,
            ReferralNeedsConsent,
            ControlCharacter,
            Timestamp,
            NotUtf8,
            LineTooLong { max_mb: 16 },
            RowsDisagree { line: 2 },
            FileTooLarge { max_mb: 32 },
            NotHtcds,
            Unreadable { format: "CSV".into() },
        ]
    }
}

/// One problem, at a path like `people.1.birth_date`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    pub path: String,
    #[serde(serialize_with = "ser_error")]
    pub error: FieldError,
}

fn ser_error<S: serde::Serializer>(e: &FieldError, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(2))?;
    m.serialize_entry("key", e.i18n_key())?;
    let args: Map<String, Value> = e.args().into_iter().map(|(k, v)| (k.to_string(), Value::String(v))).collect();
    m.serialize_entry("args", &args)?;
    m.end()
}

impl Issue {
    pub fn new(path: impl Into<String>, error: FieldError) -> Self {
        Issue { path: path.into(), error }
    }
}

/// Every problem found in one case, in form order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, thiserror::Error)]
#[error("{}", .0.iter().map(|i| format!("{}: {}", i.path, i.error)).collect::<Vec<_>>().join("; "))]
pub struct ValidationErrors(pub Vec<Issue>);

impl ValidationErrors {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn paths(&self) -> Vec<&str> {
        self.0.iter().map(|i| i.path.as_str()).collect()
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// Parse a full ISO date.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    if s.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// Parse `YYYY`, `YYYY-MM` or `YYYY-MM-DD` to the first day of the period.
pub fn parse_approx_date(s: &str) -> Option<NaiveDate> {
    let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    match s.len() {
        4 if all_digits(s) => NaiveDate::from_ymd_opt(s.parse().ok()?, 1, 1),
        7 if all_digits(&s[..4]) && &s[4..5] == "-" && all_digits(&s[5..]) => {
            NaiveDate::from_ymd_opt(s[..4].parse().ok()?, s[5..].parse().ok()?, 1)
        }
        10 => parse_date(s),
        _ => None,
    }
}

/// E.164: `+`, a non-zero digit, then 6 to 14 more digits.
pub fn is_e164(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('+') else {
        return false;
    };
    let b = rest.as_bytes();
    (7..=15).contains(&b.len()) && b[0] != b'0' && b.iter().all(u8::is_ascii_digit)
}

fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
        && !domain.contains('@')
}

/// `MX-CHH`, `US-TX`: two letters, a dash, one to three letters or digits.
fn is_subdivision(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 4
        && b.len() <= 6
        && b[..2].iter().all(u8::is_ascii_uppercase)
        && b[2] == b'-'
        && b[3..].iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// `TX3-2026-0042`: device code, year, sequence.
pub fn is_case_number(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 3
        && (2..=8).contains(&parts[0].len())
        && parts[0].bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && parts[1].len() == 4
        && parts[1].bytes().all(|c| c.is_ascii_digit())
        && parts[2].len() >= 4
        && parts[2].len() <= 9
        && parts[2].bytes().all(|c| c.is_ascii_digit())
}

struct Ctx<'a> {
    today: NaiveDate,
    issues: &'a mut Vec<Issue>,
}

impl Ctx<'_> {
    fn push(&mut self, path: &str, e: FieldError) {
        self.issues.push(Issue::new(path, e));
    }

    fn date(&mut self, path: &str, d: NaiveDate) {
        if d > self.today {
            self.push(path, FieldError::DateInFuture);
        } else if d.year() < OLDEST_YEAR {
            self.push(path, FieldError::DateTooOld { year: OLDEST_YEAR });
        }
    }

    /// Text of at most `max` characters; line breaks and tabs only where it is
    /// `multiline`, and no other control character anywhere (a terminal escape
    /// in a name would retitle or clear the screen of whoever lists it).
    fn text(&mut self, path: &str, v: &Value, max: usize, multiline: bool) {
        match v.as_str() {
            Some(s) if s.chars().count() > max => self.push(path, FieldError::TooLong { max }),
            Some(s) if s.chars().any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t'))) => {
                self.push(path, FieldError::ControlCharacter)
            }
            Some(_) => {}
            None => self.push(path, FieldError::WrongType { expected: "text" }),
        }
    }

    /// A timestamp the store writes (`created_at`, `updated_at`): RFC 3339, from
    /// 1900 on, and not more than a day ahead of `today` (another time zone).
    fn timestamp(&mut self, path: &str, v: &Value) {
        let ok = v.as_str().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()).is_some_and(|t| {
            let day = t.date_naive();
            day.year() >= OLDEST_YEAR && day <= self.today + chrono::Days::new(1)
        });
        if !ok {
            self.push(path, FieldError::Timestamp);
        }
    }

    fn code(&mut self, path: &str, v: &Value, set: codes::CodeSet, non_answers: bool) {
        match v.as_str() {
            Some(c) if set.contains(c) || (non_answers && codes::NON_ANSWERS.contains(&c)) => {}
            Some(c) => self.push(path, FieldError::UnknownCode { code: c.to_string() }),
            None => self.push(path, FieldError::WrongType { expected: "code" }),
        }
    }

    fn fields(&mut self, fields: &[Field], obj: &Map<String, Value>, parent: &str, meta: &[&str]) {
        for key in obj.keys() {
            if !meta.contains(&key.as_str()) && !fields.iter().any(|f| f.key == key) {
                self.push(&join(parent, key), FieldError::UnknownField);
            }
        }
        for field in fields {
            if let Some(v) = obj.get(field.key) {
                self.value(field, v, obj, &join(parent, field.key));
            }
        }
    }

    fn value(&mut self, field: &Field, v: &Value, siblings: &Map<String, Value>, path: &str) {
        match &field.kind {
            Kind::Text { max } => self.text(path, v, *max, false),
            Kind::LongText { max } => self.text(path, v, *max, true),
            Kind::Date => match v.as_str() {
                Some(s) if codes::NON_ANSWERS.contains(&s) => {}
                Some(s) => match parse_date(s) {
                    Some(d) => self.date(path, d),
                    None => self.push(path, FieldError::DateFormat),
                },
                None => self.push(path, FieldError::DateFormat),
            },
            Kind::ApproxDate => match v.as_str() {
                Some(s) if codes::NON_ANSWERS.contains(&s) => {}
                Some(s) => match parse_approx_date(s) {
                    Some(d) => self.date(path, d),
                    None => self.push(path, FieldError::ApproxDateFormat),
                },
                None => self.push(path, FieldError::ApproxDateFormat),
            },
            Kind::ExpiryDate => match v.as_str().and_then(parse_date) {
                Some(d) if d.year() < OLDEST_YEAR => self.push(path, FieldError::DateTooOld { year: OLDEST_YEAR }),
                Some(_) => {}
                None => self.push(path, FieldError::DateFormat),
            },
            Kind::Integer { min, max } => match v {
                Value::String(s) if codes::NON_ANSWERS.contains(&s.as_str()) => {}
                Value::Number(n) => match n.as_i64() {
                    Some(i) if i < *min || i > *max => self.push(path, FieldError::OutOfRange { min: *min, max: *max }),
                    Some(_) => {}
                    None => self.push(path, FieldError::NotWholeNumber),
                },
                _ => self.push(path, FieldError::NotWholeNumber),
            },
            Kind::YesNo => match v {
                Value::Bool(_) => {}
                Value::String(s) if codes::NON_ANSWERS.contains(&s.as_str()) => {}
                _ => self.push(path, FieldError::WrongType { expected: "yes_no" }),
            },
            Kind::Choice { set, process } => self.code(path, v, *set, !process),
            Kind::Multi { set } => match v.as_array() {
                Some(items) => {
                    let mut seen: Vec<&str> = Vec::new();
                    for (i, item) in items.iter().enumerate() {
                        let p = format!("{path}.{i}");
                        self.code(&p, item, *set, true);
                        if let Some(c) = item.as_str() {
                            if seen.contains(&c) {
                                self.push(&p, FieldError::DuplicateCode { code: c.to_string() });
                            }
                            seen.push(c);
                        }
                    }
                    if items.len() > 1 && seen.iter().any(|c| codes::NON_ANSWERS.contains(c)) {
                        self.push(path, FieldError::NonAnswerNotAlone);
                    }
                }
                None => self.push(path, FieldError::WrongType { expected: "list" }),
            },
            Kind::Phone => match v.as_str() {
                Some(s) if codes::NON_ANSWERS.contains(&s) || is_e164(s) => {}
                _ => self.push(path, FieldError::Phone),
            },
            Kind::Email => match v.as_str() {
                Some(s) if s.chars().count() > form::TEXT_MAX => {
                    self.push(path, FieldError::TooLong { max: form::TEXT_MAX })
                }
                Some(s) if codes::NON_ANSWERS.contains(&s) || is_email(s) => {}
                _ => self.push(path, FieldError::Email),
            },
            Kind::Subdivision => match v.as_str() {
                Some(s) if codes::NON_ANSWERS.contains(&s) => {}
                Some(s) if is_subdivision(s) => {
                    if let Some(country) = siblings.get("country").and_then(Value::as_str) {
                        if codes::COUNTRY.contains(country) && !s.starts_with(&format!("{country}-")) {
                            self.push(path, FieldError::SubdivisionCountry { country: country.to_string() });
                        }
                    }
                }
                _ => self.push(path, FieldError::SubdivisionFormat),
            },
            Kind::Group { fields } => match v.as_object() {
                Some(obj) => self.fields(fields, obj, path, &[]),
                None => self.push(path, FieldError::WrongType { expected: "group" }),
            },
            Kind::List { item } => match v.as_array() {
                Some(items) => {
                    if items.len() > LIST_MAX {
                        self.push(path, FieldError::TooManyItems { max: LIST_MAX });
                    }
                    for (i, it) in items.iter().enumerate().take(LIST_MAX) {
                        let p = format!("{path}.{i}");
                        match it.as_object() {
                            Some(obj) => self.fields(item, obj, &p, &ITEM_META_KEYS),
                            None => self.push(&p, FieldError::WrongType { expected: "group" }),
                        }
                    }
                }
                None => self.push(path, FieldError::WrongType { expected: "list" }),
            },
            // Derived values are recomputed on save; whatever came in is replaced.
            Kind::Derived { .. } => {}
        }
    }
}

/// Check a record against a list of fields (the directory's entries use this with
/// their own fields): the same rules and messages as the intake form.
pub fn validate_fields(fields: &[Field], obj: &Map<String, Value>, today: NaiveDate) -> Vec<Issue> {
    let mut issues = Vec::new();
    Ctx { today, issues: &mut issues }.fields(fields, obj, "", &[]);
    issues
}

/// Largest value, in bytes of JSON, that any field of the form can hold: the
/// longest free text with every character escaped, and room for a note's other
/// fields. Anything larger that comes from another laptop is damage or an attack.
pub const VALUE_BYTES_MAX: usize = 6 * form::LONG_TEXT_MAX + 4096;

/// The form's field for a case's top-level key, or for a key of an item in one of
/// its lists (`people`, `needs`…).
pub fn case_field(key: &str, item_key: Option<&str>) -> Option<&'static Field> {
    let field = form::case_fields().iter().find(|f| f.key == key)?;
    match (item_key, &field.kind) {
        (None, _) => Some(field),
        (Some(k), Kind::List { item }) => item.iter().find(|f| f.key == k),
        (Some(_), _) => None,
    }
}

/// Could this be a value of this field at all: the right kind of JSON (text, a
/// number, yes/no, a list of codes)? A value that is not is no answer a form of
/// any version could have given, unlike a code this laptop does not know yet.
pub fn fits_kind(field: &Field, v: &Value) -> bool {
    match (&field.kind, v) {
        (_, Value::Null) => true,
        (Kind::Integer { .. }, Value::Number(_) | Value::String(_)) => true,
        (Kind::YesNo, Value::Bool(_) | Value::String(_)) => true,
        (Kind::Multi { .. }, Value::Array(items)) => items.len() <= LIST_MAX && items.iter().all(Value::is_string),
        (Kind::Group { .. }, Value::Object(_)) => true,
        (Kind::List { .. }, Value::Array(items)) => items.len() <= LIST_MAX,
        (Kind::Integer { .. } | Kind::YesNo | Kind::Multi { .. } | Kind::Group { .. } | Kind::List { .. }, _) => false,
        (_, v) => v.is_string(),
    }
}

/// One field's value against the form, as a save would check it, without the
/// rules across fields (those are the whole case's, checked on its next save).
pub fn check_value(field: &Field, v: &Value, path: &str, today: NaiveDate) -> Vec<Issue> {
    let mut issues = Vec::new();
    Ctx { today, issues: &mut issues }.value(field, v, &Map::new(), path);
    issues
}

/// One note against the form, as an import would check it.
pub fn check_note(n: &Value, path: &str, today: NaiveDate) -> Vec<Issue> {
    let mut issues = Vec::new();
    validate_note(n, path, &mut Ctx { today, issues: &mut issues });
    issues
}

/// Check a normalised case. `today` is the caseworker's local date.
pub fn validate(case: &Value, today: NaiveDate) -> Result<(), ValidationErrors> {
    let mut issues = Vec::new();
    let Some(obj) = case.as_object() else {
        return Err(ValidationErrors(vec![Issue::new("", FieldError::WrongType { expected: "case" })]));
    };
    let mut ctx = Ctx { today, issues: &mut issues };
    if let Some(fmt) = obj.get("format") {
        if fmt.as_str() != Some(CASE_FORMAT) {
            let format = fmt.as_str().map(str::to_string).unwrap_or_else(|| fmt.to_string());
            ctx.push("format", FieldError::Format { format });
        }
    }
    if let Some(n) = obj.get("case_number") {
        if !n.as_str().is_some_and(is_case_number) {
            ctx.push("case_number", FieldError::CaseNumber);
        }
    }
    if obj.get("restricted").is_some_and(|v| !v.is_boolean()) {
        ctx.push("restricted", FieldError::WrongType { expected: "yes/no" });
    }
    if obj.get("assigned_to").is_some_and(|v| !v.is_string()) {
        ctx.push("assigned_to", FieldError::WrongType { expected: "user" });
    }
    for key in ["created_at", "updated_at"] {
        if let Some(t) = obj.get(key) {
            ctx.timestamp(key, t);
        }
    }
    ctx.fields(form::case_fields(), obj, "", &CASE_META_KEYS);

    // Rules across fields.
    let intake = obj.get("intake_date").and_then(Value::as_str).and_then(parse_date);
    let people = obj.get("people").and_then(Value::as_array);
    let has_victim =
        people.is_some_and(|ps| ps.iter().any(|p| p.get("role").and_then(Value::as_str) == Some("PotentialVictim")));
    if !has_victim {
        ctx.push("people", FieldError::NoPotentialVictim);
    }
    for (i, p) in people.into_iter().flatten().enumerate() {
        let birth = p.get("birth_date").and_then(Value::as_str).and_then(parse_date);
        if let (Some(b), Some(d)) = (birth, intake) {
            if b > d && b <= today {
                ctx.push(&format!("people.{i}.birth_date"), FieldError::BirthAfterIntake);
            }
        }
    }
    if let Some(consents) = obj.get("consents").and_then(Value::as_array) {
        for (i, c) in consents.iter().enumerate() {
            validate_consent(c, &format!("consents.{i}"), &mut ctx);
        }
    }
    if let Some(notes) = obj.get("notes") {
        match notes.as_array() {
            Some(items) => {
                if items.len() > NOTES_MAX {
                    ctx.push("notes", FieldError::TooManyItems { max: NOTES_MAX });
                }
                for (i, n) in items.iter().enumerate().take(NOTES_MAX) {
                    validate_note(n, &format!("notes.{i}"), &mut ctx);
                }
            }
            None => ctx.push("notes", FieldError::WrongType { expected: "list" }),
        }
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(ValidationErrors(issues))
    }
}

/// A consent must say what, which way, in which language and when; a consent to
/// share outside the organisation must also say until when.
fn validate_consent(c: &Value, path: &str, ctx: &mut Ctx) {
    let Some(obj) = c.as_object() else { return };
    for key in ["scope", "decision", "explained_in", "given_at"] {
        if obj.get(key).is_none() {
            ctx.push(&join(path, key), FieldError::Required);
        }
    }
    let date = |k: &str| obj.get(k).and_then(Value::as_str).and_then(parse_date);
    if obj.get("given_at").and_then(Value::as_str).is_some_and(|s| codes::NON_ANSWERS.contains(&s)) {
        ctx.push(&join(path, "given_at"), FieldError::Required);
    }
    if let (Some(given), Some(expires)) = (date("given_at"), date("expires_at")) {
        if expires < given {
            ctx.push(&join(path, "expires_at"), FieldError::ExpiryBeforeGiven);
        }
    }
    let sharing = obj.get("scope").and_then(Value::as_str).is_some_and(|s| codes::SHARING_SCOPES.contains(&s));
    let granted = obj.get("decision").and_then(Value::as_str) == Some("Granted");
    if sharing && granted && obj.get("expires_at").is_none() {
        ctx.push(&join(path, "expires_at"), FieldError::ConsentNeedsExpiry);
    }
}

fn validate_note(n: &Value, path: &str, ctx: &mut Ctx) {
    let Some(obj) = n.as_object() else {
        return ctx.push(path, FieldError::WrongType { expected: "note" });
    };
    for key in obj.keys() {
        if !["id", "text", "language", "author", "created_at"].contains(&key.as_str()) {
            ctx.push(&join(path, key), FieldError::UnknownField);
        }
    }
    match obj.get("text") {
        Some(Value::String(t)) if t.trim().is_empty() => ctx.push(&join(path, "text"), FieldError::EmptyNote),
        Some(t @ Value::String(_)) => ctx.text(&join(path, "text"), t, form::LONG_TEXT_MAX, true),
        _ => ctx.push(&join(path, "text"), FieldError::EmptyNote),
    }
    if let Some(l) = obj.get("language") {
        ctx.code(&join(path, "language"), l, codes::LANGUAGE, false);
    }
    if let Some(a) = obj.get("author") {
        ctx.text(&join(path, "author"), a, form::TEXT_MAX, false);
    }
    if let Some(t) = obj.get("created_at") {
        ctx.timestamp(&join(path, "created_at"), t);
    }
}
