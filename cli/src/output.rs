//! What the CLI says: lines on standard output, and failures already in the user's
//! language (every field problem on a line of its own, with its line number when it
//! came from a file), the one way each is written.

use amparo::database::{files, DatabaseError};
use amparo::i18n::{self, tr, Localized};
use amparo::intake::{FieldError, Issue};
use amparo::store::StoreError;
use amparo::sync::SyncError;
use clap::ValueEnum;
use std::io::Write;
use std::path::Path;

/// Standard output, a line at a time.
pub struct Output(std::io::StdoutLock<'static>);

impl Output {
    pub fn stdout() -> Output {
        Output(std::io::stdout().lock())
    }

    pub fn line(&mut self, s: impl AsRef<str>) {
        // A closed pipe (`amparo list | head`) is not an error worth reporting.
        let _ = writeln!(self.0, "{}", printable(s.as_ref()));
    }

    /// A value as pretty JSON (it is always serialisable: the core made it).
    pub fn json(&mut self, value: &impl serde::Serialize) -> Result<(), Failure> {
        let text = serde_json::to_string_pretty(value).map_err(StoreError::encode)?;
        self.line(text);
        Ok(())
    }
}

/// Text as a terminal may show it: control characters (a name with an escape
/// sequence would retitle or clear the screen), and the marks that turn text
/// around, become U+FFFD. Line breaks and tabs are the output's own. (JSON
/// escapes its own control characters, so this never changes it.)
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| {
        (c.is_control() && c != '\n' && c != '\t') || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if s.chars().any(bad) {
        s.chars().map(|c| if bad(c) { '\u{fffd}' } else { c }).collect::<String>().into()
    } else {
        s.into()
    }
}

/// How a listing is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TextOrJson {
    Text,
    Json,
}

/// How a report or an export is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CsvOrJson {
    Csv,
    Json,
}

/// A failure, already in the user's language.
#[derive(Debug)]
pub struct Failure(pub String);

impl Failure {
    /// A message from the locales, with its placeholders filled.
    pub fn says(key: &str, args: &[(&str, String)]) -> Failure {
        Failure(say(key, args))
    }
}

/// A message from the locales in the user's language, placeholders filled.
pub fn say(key: &str, args: &[(&str, String)]) -> String {
    tr(locale(), key, args)
}

impl From<StoreError> for Failure {
    /// Every field problem of a refused save on its own line.
    fn from(e: StoreError) -> Self {
        let mut lines = vec![describe(&e)];
        if let StoreError::Invalid(v) = &e {
            lines.extend(v.0.iter().map(|i| format!("  {}", issue_line(i))));
        }
        Failure(lines.join("\n"))
    }
}

impl From<DatabaseError> for Failure {
    fn from(e: DatabaseError) -> Self {
        StoreError::from(e).into()
    }
}

impl From<SyncError> for Failure {
    fn from(e: SyncError) -> Self {
        StoreError::from(e).into()
    }
}

impl From<amparo::repositories::audit::Problem> for Failure {
    fn from(e: amparo::repositories::audit::Problem) -> Self {
        Failure(describe(&e))
    }
}

pub fn locale() -> &'static str {
    i18n::system_locale()
}

pub fn describe(e: &dyn Localized) -> String {
    e.localized(locale())
}

fn field_name(path: &str) -> String {
    if path.is_empty() {
        "-".to_string()
    } else {
        path.to_string()
    }
}

/// `field: message`.
pub fn issue_line(i: &Issue) -> String {
    let l = locale();
    tr(l, "cli.field_issue", &[("field", field_name(&i.path)), ("message", i.error.localized(l))])
}

/// `  line N, field: message`, for a problem in line `line` of a file.
pub fn line_issue(line: usize, field: &str, error: &FieldError) -> String {
    let l = locale();
    let args = [("line", line.to_string()), ("field", field_name(field)), ("message", error.localized(l))];
    format!("  {}", tr(l, "cli.line_issue", &args))
}

/// A refused file import: the headline, then each problem by line and field.
pub fn refused(headline: String, issues: impl IntoIterator<Item = String>) -> Failure {
    Failure(std::iter::once(headline).chain(issues).collect::<Vec<_>>().join("\n"))
}

pub fn file_failure(path: &Path, e: &std::io::Error) -> Failure {
    Failure::says("cli.file_error", &[("path", path.display().to_string()), ("detail", e.to_string())])
}

/// Write a whole file (see `database::files`): a failure never leaves half a file
/// under the name asked for.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    files::write_atomic(path, bytes).map_err(|e| file_failure(path, &e))
}

/// Text for a file or standard output: to `path` if given, else printed.
pub fn deliver(path: Option<&Path>, text: &str, out: &mut Output) -> Result<(), Failure> {
    match path {
        Some(p) => write_file(p, text.as_bytes()),
        None => {
            out.line(text.trim_end());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    /// A name with a terminal escape (retitle, clear screen) or a mark that turns
    /// text around prints as U+FFFD; tabs and line breaks stay; JSON is untouched.
    #[test]
    fn nothing_raw_reaches_the_terminal() {
        assert_eq!(
            super::printable("Ana\u{1b}]0;x\u{7}\u{202e}zeR\tTX3\n"),
            "Ana\u{fffd}]0;x\u{fffd}\u{fffd}zeR\tTX3\n"
        );
        let json = serde_json::to_string(&serde_json::json!({"alias": "Ana\u{1b}[2J"})).unwrap();
        assert_eq!(super::printable(&json), json);
    }
}
