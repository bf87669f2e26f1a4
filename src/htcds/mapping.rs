//! How our codes become HTCDS 2.0 values and back. The table is written once, in
//! `docs/htcds.md` (section *Values*, with what each mapping loses), and read from
//! there: the documentation cannot drift from what the code does.

use std::sync::OnceLock;

/// Which way a row of the table applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Way {
    /// Written, and read back.
    Both,
    /// Only written: reading the value back gives another row's code.
    Out,
    /// Only read: a value of the standard we have no code of our own for.
    In,
}

/// One row: our field and code, the HTCDS column and its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mapping {
    pub field: &'static str,
    pub code: &'static str,
    pub column: &'static str,
    pub values: Vec<&'static str>,
    pub way: Way,
}

impl Mapping {
    pub fn written(&self) -> bool {
        self.way != Way::In
    }
    pub fn read(&self) -> bool {
        self.way != Way::Out
    }
}

pub(crate) const DOC: &str = include_str!("../../docs/htcds.md");
const SECTION: &str = "## Values";

/// The table's lines (after its header and rule), as written in the document.
pub(crate) fn table_lines() -> impl Iterator<Item = &'static str> {
    let section = DOC.split_once(SECTION).map_or("", |(_, rest)| rest);
    let section = section.split("\n## ").next().unwrap_or_default();
    section.lines().filter(|l| l.starts_with('|')).skip(2)
}

fn parse(line: &'static str) -> Option<Mapping> {
    let cells: Vec<&'static str> = line.trim().trim_matches('|').split('|').map(str::trim).collect();
    let [field, code, column, values, way, _lost] = cells[..] else { return None };
    let bare = |s: &'static str| s.strip_prefix('`').and_then(|s| s.strip_suffix('`'));
    let way = match way {
        "↔" => Way::Both,
        "→" => Way::Out,
        "←" => Way::In,
        _ => return None,
    };
    let values: Vec<&'static str> = bare(values)?.split_whitespace().collect();
    (!values.is_empty()).then_some(())?;
    Some(Mapping { field: bare(field)?, code: bare(code)?, column: bare(column)?, values, way })
}

/// Every row of the table, in its order (a line that does not parse is left out;
/// a test proves there is none).
pub(crate) fn table() -> &'static [Mapping] {
    static TABLE: OnceLock<Vec<Mapping>> = OnceLock::new();
    TABLE.get_or_init(|| table_lines().filter_map(parse).collect())
}

/// The HTCDS values our `codes` of `field` are written as in `column`, in the
/// table's order, each once.
pub(crate) fn written<'a>(
    column: &str,
    field: &str,
    codes: impl IntoIterator<Item = &'a str> + Clone,
) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for m in table().iter().filter(|m| m.written() && m.column == column && m.field == field) {
        if codes.clone().into_iter().any(|c| c == m.code) {
            for v in &m.values {
                if !out.contains(v) {
                    out.push(v);
                }
            }
        }
    }
    out
}

/// What the table says of one column: the fields it is written from and the
/// values it may hold, each in the table's order. Gathered once per column, not
/// once per cell.
struct ColumnTable {
    fields: Vec<&'static str>,
    values: Vec<&'static str>,
}

fn column(name: &str) -> Option<&'static ColumnTable> {
    static COLUMNS: OnceLock<std::collections::HashMap<&'static str, ColumnTable>> = OnceLock::new();
    let all = COLUMNS.get_or_init(|| {
        let mut all: std::collections::HashMap<&'static str, ColumnTable> = std::collections::HashMap::new();
        for m in table() {
            let c = all.entry(m.column).or_insert_with(|| ColumnTable { fields: Vec::new(), values: Vec::new() });
            if !c.fields.contains(&m.field) {
                c.fields.push(m.field);
            }
            for v in &m.values {
                if !c.values.contains(v) {
                    c.values.push(v);
                }
            }
        }
        all
    });
    all.get(name)
}

/// The fields whose codes a column is written from, in the table's order.
pub(crate) fn fields_of(name: &str) -> &'static [&'static str] {
    column(name).map_or(&[], |c| &c.fields)
}

/// Our fields and codes an HTCDS value of a column reads back as: the first row
/// that reads it, for each of our fields it fills (`ChildLabour` is a form of
/// exploitation, and makes the trafficking type labour).
pub(crate) fn read(column: &str, value: &str) -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for m in table().iter().filter(|m| m.read() && m.column == column && m.values.contains(&value)) {
        if !out.iter().any(|(f, _)| *f == m.field) {
            out.push((m.field, m.code));
        }
    }
    out
}

/// The HTCDS values a column may hold, as the table knows them.
pub(crate) fn values_of(name: &str) -> &'static [&'static str] {
    column(name).map_or(&[], |c| &c.values)
}
