//! A sheet of cells as organisations keep their HTCDS data: CSV saved from the
//! toolkit's spreadsheet (comma or semicolon, as the spreadsheet's language saves
//! it), a KoboToolbox / ODK export, or the `.xlsx` / `.ods` file itself. Each row
//! keeps the line (or spreadsheet row) it came from, so that a problem is named
//! where the person will look for it. Everything is bounded: the file's size, its
//! rows and columns, and what a spreadsheet's archive unpacks to.

use super::CellIssue;
use crate::intake::{FieldError, Issue};
use std::io::Read;
use std::path::Path;

/// The largest file read: far more than any organisation's case sheet.
pub(crate) const FILE_MAX: u64 = 32 << 20;
/// What a spreadsheet's archive may unpack to, in all.
const UNPACKED_MAX: u64 = 256 << 20;
pub(crate) const ROWS_MAX: usize = 100_000;
const COLUMNS_MAX: usize = 1_000;

/// The header row (field names) and the rows under it, each with its line.
#[derive(Debug, Default)]
pub(crate) struct Table {
    pub header: Vec<String>,
    pub rows: Vec<(usize, Vec<String>)>,
}

fn refused(line: usize, error: FieldError) -> CellIssue {
    CellIssue { line, column: String::new(), issue: Issue::new("", error) }
}

fn too_large() -> CellIssue {
    refused(1, FieldError::FileTooLarge { max_mb: (FILE_MAX >> 20) as usize })
}

/// Is this a spreadsheet file (rather than text)?
pub(crate) fn is_book(path: &Path) -> bool {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    matches!(ext.as_deref(), Some("xlsx" | "xlsm" | "ods"))
}

/// CSV, with `,` or `;` between cells (whichever the header uses more).
pub(crate) fn read_csv(input: impl Read) -> Result<Table, Vec<CellIssue>> {
    let mut bytes = Vec::new();
    input.take(FILE_MAX + 1).read_to_end(&mut bytes).map_err(|_| vec![refused(1, FieldError::NotAFile)])?;
    if bytes.len() as u64 > FILE_MAX {
        return Err(vec![too_large()]);
    }
    let first = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let count = |c: u8| first.iter().filter(|b| **b == c).count();
    let delimiter = if count(b';') > count(b',') { b';' } else { b',' };
    let mut reader =
        csv::ReaderBuilder::new().flexible(true).has_headers(false).delimiter(delimiter).from_reader(&bytes[..]);
    let mut table = Table::default();
    let mut issues = Vec::new();
    let mut line = 0;
    for record in reader.records() {
        line += 1;
        match record {
            Ok(r) => {
                line = r.position().map_or(line, |p| p.line() as usize);
                let cells: Vec<String> = r.iter().map(str::to_string).collect();
                if table.rows.len() >= ROWS_MAX || cells.len() > COLUMNS_MAX {
                    return Err(vec![too_large()]);
                }
                if line == 1 {
                    table.header = cells;
                } else {
                    table.rows.push((line, cells));
                }
            }
            Err(e) => {
                line = e.position().map_or(line, |p| p.line() as usize);
                let error = match e.kind() {
                    csv::ErrorKind::Utf8 { .. } => FieldError::NotUtf8,
                    _ => FieldError::Unreadable { format: "CSV".into() },
                };
                issues.push(refused(line, error));
            }
        }
    }
    // A BOM, as some editors save it, is not part of the first name.
    if let Some(first) = table.header.first_mut() {
        *first = first.trim_start_matches('\u{feff}').to_string();
    }
    if issues.is_empty() {
        Ok(table)
    } else {
        Err(issues)
    }
}

/// The first sheet of a workbook whose first row names one of our columns (the
/// toolkit's case sheet comes before its *about* and *validation* sheets).
pub(crate) fn read_book(path: &Path) -> Result<Table, Vec<CellIssue>> {
    use calamine::{open_workbook_auto, Data, Reader};
    let damaged = || vec![refused(1, FieldError::Unreadable { format: "XLSX / ODS".into() })];
    let size = std::fs::metadata(path).map_err(|_| vec![refused(1, FieldError::NotAFile)])?.len();
    if size > FILE_MAX {
        return Err(vec![too_large()]);
    }
    // Both formats are zip archives: what they say they unpack to is checked
    // before anything is unpacked.
    let file = std::fs::File::open(path).map_err(|_| vec![refused(1, FieldError::NotAFile)])?;
    let mut archive = zip::ZipArchive::new(file).map_err(|_| damaged())?;
    let mut unpacked: u64 = 0;
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(|_| damaged())?;
        unpacked = unpacked.saturating_add(entry.size());
        // A ratio no spreadsheet has: a bomb that lies about its sizes still
        // has to say something this side of it.
        if unpacked > UNPACKED_MAX || entry.size() > entry.compressed_size().saturating_mul(1_000).max(1 << 20) {
            return Err(vec![too_large()]);
        }
    }
    let mut book = open_workbook_auto(path).map_err(|_| damaged())?;
    let text = |c: &Data| match c {
        Data::Empty => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
        Data::DateTime(d) => d.as_datetime().map_or_else(|| d.to_string(), |t| t.date().format("%Y-%m-%d").to_string()),
        other => other.to_string(),
    };
    for name in book.sheet_names() {
        let Ok(range) = book.worksheet_range(&name) else { continue };
        // Rows are numbered as the spreadsheet shows them.
        let first_row = range.start().map_or(0, |(r, _)| r as usize);
        let mut rows =
            range.rows().enumerate().map(|(i, r)| (first_row + i + 1, r.iter().map(text).collect::<Vec<_>>()));
        let Some((_, header)) = rows.next() else { continue };
        if !header.iter().any(|h| super::column_named(h).is_some()) {
            continue;
        }
        if range.height() > ROWS_MAX + 1 || range.width() > COLUMNS_MAX {
            return Err(vec![too_large()]);
        }
        return Ok(Table { header, rows: rows.collect() });
    }
    Err(vec![refused(1, FieldError::NotHtcds)])
}
