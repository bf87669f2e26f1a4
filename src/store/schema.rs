//! Schema migrations, versioned in SQLite's `user_version`. A released migration is
//! never edited: changes are new entries at the end.

use rusqlite_migration::{Migrations, M};

const V1: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

-- One row per case. `data` is the case JSON (codes only) without the columns below
-- and without notes; the columns hold what lists, filters and uniqueness need.
-- `seq` is the local insertion order: lists are newest first by it.
CREATE TABLE cases (
    seq              INTEGER PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    case_number      TEXT NOT NULL UNIQUE,
    status           TEXT NOT NULL,
    intake_date      TEXT,
    alias            TEXT,
    primary_language TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    updated_by       TEXT NOT NULL,
    data             TEXT NOT NULL
) STRICT;
CREATE INDEX cases_by_status ON cases (status, seq);

-- Notes are append-only: the triggers refuse any change or removal.
CREATE TABLE notes (
    seq        INTEGER PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    case_id    TEXT NOT NULL REFERENCES cases (id),
    text       TEXT NOT NULL,
    language   TEXT,
    author     TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX notes_by_case ON notes (case_id, seq);
CREATE TRIGGER notes_append_only_update BEFORE UPDATE ON notes
    BEGIN SELECT RAISE(ABORT, 'notes are append-only'); END;
CREATE TRIGGER notes_append_only_delete BEFORE DELETE ON notes
    BEGIN SELECT RAISE(ABORT, 'notes are append-only'); END;

-- The last case-number sequence used, per device code and year.
CREATE TABLE case_numbers (
    device TEXT NOT NULL,
    year   INTEGER NOT NULL,
    last   INTEGER NOT NULL,
    PRIMARY KEY (device, year)
) STRICT;

-- Unfinished intakes and edits: whatever the form held, saved as the user types.
CREATE TABLE drafts (
    id         TEXT PRIMARY KEY,
    case_id    TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    data       TEXT NOT NULL
) STRICT;

-- Full-text search over case number, names and aliases, places and notes.
-- rowid = cases.seq. Diacritics are folded so "Maria" finds "María".
-- Contentless: the text is in `cases` and `notes` already, so a save writes one
-- table fewer. contentless_delete lets a case's entry be replaced when it changes.
CREATE VIRTUAL TABLE cases_fts USING fts5 (
    case_number, names, places, notes,
    content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);
"#;

pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(V1)])
}

/// The schema version this build writes.
pub fn latest_version() -> usize {
    1
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        super::migrations().validate().unwrap();
    }
}
