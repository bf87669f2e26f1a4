//! Case JSON Lines (DOMAIN.md): import and export, one case per line.
//!
//! Import is all-or-nothing by default: every line is checked with the same rules as
//! the form, every problem is reported with its line and field, and nothing is
//! written unless all lines are good. With `skip_invalid` the good lines are written
//! and the bad ones listed. Lines are read, checked and written one at a time in
//! one transaction: memory does not grow with the file.

use super::{Store, StoreError};
use crate::database::now_utc;
use crate::intake::{self, FieldError, Issue};
use crate::repositories::audit::{self, Action};
use crate::repositories::cases::insert_case;
use crate::repositories::users::Role;
use serde::Serialize;
use serde_json::{json, Value};
use std::io::{BufRead, Read, Write};

/// One rejected line.
#[derive(Debug, Clone, Serialize)]
pub struct LineErrors {
    pub line: usize,
    pub issues: Vec<Issue>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    /// Cases written.
    pub imported: usize,
    /// Lines refused; when non-empty and not skipping, nothing was written.
    pub rejected: Vec<LineErrors>,
}

/// The longest line an import reads: far more than any case.
const LINE_MAX: usize = 16 << 20;

/// Read past the rest of a line too long to keep, a bounded piece at a time.
fn skip_line(input: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            return Ok(());
        }
        match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => {
                input.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = chunk.len();
                input.consume(n);
            }
        }
    }
}

/// Progress callback: (lines done, phase). Called at most every 100 lines.
pub type Progress<'a> = &'a mut dyn FnMut(usize);

impl Store {
    pub fn import_jsonl(
        &mut self,
        input: impl BufRead,
        skip_invalid: bool,
        progress: Progress,
    ) -> Result<ImportReport, StoreError> {
        self.require(Role::Supervisor)?;
        let today = crate::repositories::cases::today();
        let mut input = input;
        let mut report = ImportReport::default();
        let now = now_utc();
        // One transaction, so that an import is all or nothing; each line is
        // checked and written as it is read, so memory stays flat whatever the
        // size of the file (and a line is bounded).
        let tx = crate::database::write_tx(&self.conn)?;
        let mut bulk = crate::repositories::cases::Bulk::default();
        let mut raw = Vec::new();
        let mut line_no = 0;
        loop {
            raw.clear();
            if (&mut input).take(LINE_MAX as u64 + 1).read_until(b'\n', &mut raw)? == 0 {
                break;
            }
            line_no += 1;
            if raw.len() > LINE_MAX && raw.last() != Some(&b'\n') {
                skip_line(&mut input)?;
                let issues = vec![Issue::new("", FieldError::LineTooLong { max_mb: LINE_MAX >> 20 })];
                report.rejected.push(LineErrors { line: line_no, issues });
                continue;
            }
            // A line that is not UTF-8 is named, not the whole file refused blind.
            let Ok(line) = std::str::from_utf8(&raw) else {
                report.rejected.push(LineErrors { line: line_no, issues: vec![Issue::new("", FieldError::NotUtf8)] });
                continue;
            };
            // Files saved by some editors start with a byte order mark.
            let line = if line_no == 1 { line.trim_start_matches('\u{feff}') } else { line };
            if line.trim().is_empty() {
                continue;
            }
            let parsed: Result<Value, _> = serde_json::from_str(line);
            let result = match parsed {
                // The format tag is how a reader refuses what it does not understand;
                // an empty or null one is no tag.
                Ok(v) if v.get("format").and_then(Value::as_str) != Some(intake::CASE_FORMAT) => {
                    let format = match v.get("format") {
                        Some(Value::String(f)) => f.clone(),
                        Some(other) => other.to_string(),
                        None => String::new(),
                    };
                    Err(vec![Issue::new("format", FieldError::Format { format })])
                }
                // An imported referral shares details only with consent, as in the app.
                Ok(v) => crate::consent::check_new_referrals(&v, None, today)
                    .map_err(|_| vec![Issue::new("referrals", FieldError::ReferralNeedsConsent)])
                    .and_then(|()| intake::prepare(v, today).map_err(|e| e.0)),
                Err(_) => Err(vec![Issue::new("", FieldError::Json)]),
            };
            match result {
                // Written even after a line was refused (the transaction is then
                // dropped): a duplicate shows only when written, and every
                // problem is reported at once.
                Ok(mut case) => {
                    let key = self.new_case_key(&tx, &mut case)?;
                    let sealing = crate::repositories::cases::Sealing {
                        open: &crate::repositories::restricted::Keys::NONE,
                        seal: key.as_ref(),
                        follows: crate::repositories::cases::Follows::Row,
                    };
                    // Duplicates (of the store or of an earlier line) surface only here.
                    match insert_case(&tx, &self.session, case, &now, &sealing, Some(&mut bulk)) {
                        Ok(_) => report.imported += 1,
                        Err(crate::repositories::RepositoryError::Invalid(e)) => {
                            report.rejected.push(LineErrors { line: line_no, issues: e.0 })
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(issues) => report.rejected.push(LineErrors { line: line_no, issues }),
            }
            if line_no % 100 == 0 {
                progress(line_no);
            }
        }
        if !report.rejected.is_empty() && !skip_invalid {
            report.imported = 0;
            report.rejected.sort_by_key(|l| l.line);
            return Ok(report); // the transaction is dropped: nothing written
        }
        bulk.finish(&tx)?;
        let detail = json!({ "imported": report.imported, "rejected": report.rejected.len() });
        audit::append(&tx, &self.session.device_id, Some(&self.session.user_id), Action::Import, None, detail, None)?;
        tx.commit()?;
        report.rejected.sort_by_key(|l| l.line);
        Ok(report)
    }

    /// Write every case, oldest first, one per line: the organisation's own backup or
    /// move to a new laptop (supervisors; audited). Returns the number written.
    pub fn export_jsonl(&self, mut out: impl Write) -> Result<usize, StoreError> {
        self.require(Role::Supervisor)?;
        let ids = crate::repositories::cases::all_ids(&self.conn)?;
        for id in &ids {
            let case = self.load_case(crate::repositories::cases::CaseKey::Id, id)?;
            serde_json::to_writer(&mut out, &case).map_err(|e| StoreError::from(std::io::Error::from(e)))?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        self.record(Action::Export, None, json!({ "cases": ids.len() }))?;
        Ok(ids.len())
    }
}
