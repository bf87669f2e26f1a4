//! The service directory for the person unlocked: search, add, edit and import
//! entries, each edit a change that syncs (see [`crate::repositories::directory`]).

use super::{Store, StoreError, Thing};
use crate::intake::{FieldError, Issue, ValidationErrors};
use crate::repositories::audit::{self, Action};
use crate::repositories::directory::*;

use serde_json::{json, Map, Value};

#[cfg(test)]
mod tests;

impl Store {
    /// The entries that match, hotlines first, then by name.
    pub fn directory(&self, q: &DirectoryQuery) -> Result<Vec<Entry>, StoreError> {
        let mut out: Vec<Entry> = all(self.conn())?.into_iter().filter(|e| matches(&e.data, q)).collect();
        let hotline = |e: &Entry| e.data.get("hotline") == Some(&Value::Bool(true));
        out.sort_by_cached_key(|e| (!hotline(e), fold(e.data.get("name").and_then(Value::as_str).unwrap_or(""))));
        Ok(out)
    }

    /// One entry.
    pub fn directory_entry(&self, id: &str) -> Result<Entry, StoreError> {
        get(self.conn(), id)?.ok_or_else(|| StoreError::NotFound(Thing::DirectoryEntry, id.to_string()))
    }

    /// Add an entry (`id` None) or replace one; refused with every issue next to its
    /// field. Audited with the fields changed.
    pub fn save_directory_entry(&mut self, id: Option<&str>, entry: Value) -> Result<Entry, StoreError> {
        let data = validate_entry(entry)?;
        let before = match id {
            Some(id) => Some(self.directory_entry(id)?.data),
            None => None,
        };
        let id = id.map_or_else(crate::database::new_id, str::to_string);
        let now = crate::database::now_utc();
        let user = self.session().user_id.clone();
        let changed: std::collections::BTreeSet<&String> = match &before {
            Some(b) => data.keys().chain(b.keys()).filter(|k| b.get(*k) != data.get(*k)).collect(),
            None => data.keys().collect(),
        };
        let detail = json!({ "entry": id, "fields": changed });
        let device = self.session().device_id.clone();
        let session = self.session().clone();
        let tx = crate::database::write_tx(self.conn_mut())?;
        log_entry(&tx, &session, &id, before.as_ref(), &data)?;
        put(&tx, &id, &data, &now, &user)?;
        audit::append(&tx, &device, Some(&user), Action::DirectoryChanged, None, detail, None)?;
        tx.commit()?;
        Ok(Entry { id, data, updated_at: now })
    }

    /// Import organisations from a CSV file on this computer; a path that is not a
    /// file is refused next to the `file` field.
    pub fn import_directory_file(&mut self, path: &str) -> Result<ImportReport, StoreError> {
        let path = std::path::Path::new(path.trim());
        if !path.is_file() {
            return Err(ValidationErrors(vec![Issue::new("file", FieldError::NotAFile)]).into());
        }
        self.import_directory_csv(std::io::BufReader::new(std::fs::File::open(path)?))
    }

    /// Import organisations from CSV (the columns of [`CSV_COLUMNS`], a header first;
    /// lists separated by `;`). All or nothing: any bad row and nothing is added, and
    /// every bad row is named with its issues.
    pub fn import_directory_csv(&mut self, input: impl std::io::Read) -> Result<ImportReport, StoreError> {
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
        let header: Vec<String> = match reader.headers() {
            Ok(h) => h.iter().map(|c| c.trim().to_lowercase()).collect(),
            Err(_) => vec![],
        };
        let mut report = ImportReport { imported: 0, rejected: vec![] };
        let unknown: Vec<Issue> = header
            .iter()
            .filter(|c| !CSV_COLUMNS.contains(&c.as_str()))
            .map(|c| Issue::new(c.clone(), FieldError::UnknownField))
            .collect();
        if !header.iter().any(|c| c == "name") || !unknown.is_empty() {
            let mut issues = unknown;
            if !header.iter().any(|c| c == "name") {
                issues.push(Issue::new("name", FieldError::Required));
            }
            report.rejected.push(RowIssues { line: 1, issues });
            return Ok(report);
        }
        let mut entries = Vec::new();
        for (i, record) in reader.records().enumerate() {
            let line = i + 2;
            let record = match record {
                Ok(r) => r,
                Err(_) => {
                    report.rejected.push(RowIssues {
                        line,
                        issues: vec![Issue::new("", FieldError::Format { format: "CSV".into() })],
                    });
                    continue;
                }
            };
            let mut obj = Map::new();
            for (col, cell) in header.iter().zip(record.iter()) {
                let cell = cell.trim();
                let v = if col == "services" || col == "languages" {
                    Value::Array(cell.split(';').map(str::trim).filter(|s| !s.is_empty()).map(|s| json!(s)).collect())
                } else {
                    json!(cell)
                };
                obj.insert(col.clone(), v);
            }
            match validate_entry(Value::Object(obj)) {
                Ok(data) => entries.push(data),
                Err(e) => report.rejected.push(RowIssues { line, issues: e.0 }),
            }
        }
        if !report.rejected.is_empty() {
            return Ok(report);
        }
        let now = crate::database::now_utc();
        let (user, device) = (self.session().user_id.clone(), self.session().device_id.clone());
        let session = self.session().clone();
        let tx = crate::database::write_tx(self.conn_mut())?;
        for data in &entries {
            let id = crate::database::new_id();
            log_entry(&tx, &session, &id, None, data)?;
            put(&tx, &id, data, &now, &user)?;
        }
        let detail = json!({ "imported": entries.len() });
        audit::append(&tx, &device, Some(&user), Action::DirectoryChanged, None, detail, None)?;
        tx.commit()?;
        report.imported = entries.len();
        Ok(report)
    }
}
