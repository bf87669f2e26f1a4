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

/// Users and roles, restricted cases, per-user drafts, the audit trail, and search
/// entries that are really gone when a person or a case is removed.
const V2: &str = r#"
-- Stores set up before roles existed have one user: the one who set it up.
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'Administrator';
ALTER TABLE users ADD COLUMN removed_at TEXT;
-- A removed user's row stays: audit entries and cases still name its id.
CREATE UNIQUE INDEX users_active_name ON users (name) WHERE removed_at IS NULL;

ALTER TABLE cases ADD COLUMN assigned_to TEXT;
ALTER TABLE cases ADD COLUMN restricted INTEGER NOT NULL DEFAULT 0;
UPDATE cases SET assigned_to = json_extract(data, '$.assigned_to');

-- A draft belongs to whoever typed it.
ALTER TABLE drafts ADD COLUMN user_id TEXT;

-- The audit trail: who did what, when, to which case, on which device. Ids and codes
-- only, never names or case text. Each device's entries form a hash chain
-- (`prev_hash` is the hash of the same device's previous entry), so entries of other
-- laptops can later be merged without re-chaining. `seq` is the local order.
CREATE TABLE audit (
    seq        INTEGER PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    device_id  TEXT NOT NULL,
    device_seq INTEGER NOT NULL,
    at         TEXT NOT NULL,
    user_id    TEXT,
    action     TEXT NOT NULL,
    case_id    TEXT,
    detail     TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL,
    UNIQUE (device_id, device_seq)
) STRICT;
CREATE INDEX audit_by_case ON audit (case_id, seq);
CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;

-- Cases removed by a retention purge: ids only. Notes of a purged case may then be
-- deleted (and only then).
CREATE TABLE purged_cases (
    case_id   TEXT PRIMARY KEY,
    purged_at TEXT NOT NULL
) STRICT;
DROP TRIGGER notes_append_only_delete;
CREATE TRIGGER notes_append_only_delete BEFORE DELETE ON notes
    WHEN NOT EXISTS (SELECT 1 FROM purged_cases WHERE case_id = OLD.case_id)
    BEGIN SELECT RAISE(ABORT, 'notes are append-only'); END;

-- Remove a deleted entry's tokens from the index at once instead of marking them,
-- so a removed name leaves no trace in the search index.
INSERT INTO cases_fts (cases_fts, rank) VALUES ('secure-delete', 1);
"#;

/// When a case was closed: retention counts from it.
const V3: &str = r#"
ALTER TABLE cases ADD COLUMN closed_at TEXT;
-- Cases closed before this was tracked: their last change is the best estimate.
UPDATE cases SET closed_at = updated_at WHERE status IN ('Closed', 'ClosedReferred');
CREATE INDEX cases_by_closed ON cases (closed_at) WHERE closed_at IS NOT NULL;
"#;

/// Sync: the change log, open conflicts, and what other laptops hold (see `sync`).
const V4: &str = r#"
-- One row per changed field, written in the transaction of the change. A change is
-- identified by (device_id, device_seq); `value` is JSON, NULL once blanked (replaced,
-- or its person or case removed); `parents` lists the changes it replaced.
CREATE TABLE changes (
    seq        INTEGER PRIMARY KEY,
    device_id  TEXT NOT NULL,
    device_seq INTEGER NOT NULL,
    hlc        INTEGER NOT NULL,
    entity     TEXT NOT NULL,
    entity_id  TEXT NOT NULL,
    field      TEXT NOT NULL,
    value      TEXT,
    parents    TEXT NOT NULL DEFAULT '[]',
    user_id    TEXT,
    user_name  TEXT,
    UNIQUE (device_id, device_seq)
) STRICT;
CREATE INDEX changes_by_entity ON changes (entity_id);

-- Fields with more than one head: kept until a supervisor resolves them.
CREATE TABLE open_conflicts (
    entity    TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    field     TEXT NOT NULL,
    PRIMARY KEY (entity_id, field)
) STRICT;

-- Cases changed here since the last bundle was written ("not yet exported").
CREATE TABLE unexported (
    case_id TEXT PRIMARY KEY
) STRICT;

-- Every device of the organisation this laptop has heard of.
CREATE TABLE sync_devices (
    device_id   TEXT PRIMARY KEY,
    device_code TEXT NOT NULL
) STRICT;

-- What each other laptop said it holds in its last bundle imported here.
CREATE TABLE sync_peers (
    device_id         TEXT PRIMARY KEY,
    device_code       TEXT NOT NULL,
    has_changes       TEXT NOT NULL,
    has_audit         TEXT NOT NULL,
    bundle_written_at TEXT NOT NULL,
    imported_at       TEXT NOT NULL
) STRICT;
"#;

const V5: &str = r#"
CREATE TABLE case_facts (
    case_seq INTEGER NOT NULL,
    kind     TEXT NOT NULL,
    code     TEXT NOT NULL,
    PRIMARY KEY (case_seq, kind, code)
) STRICT, WITHOUT ROWID;
CREATE INDEX case_facts_by_code ON case_facts (kind, code, case_seq);
CREATE TABLE case_report (
    case_seq         INTEGER PRIMARY KEY,
    intake_date      TEXT,
    status           TEXT,
    intake_channel   TEXT,
    trafficking_type TEXT,
    victims          INTEGER NOT NULL
) STRICT;
"#;

/// Version 6: the service directory (organisations for referrals). `data` is the
/// entry's JSON (codes and the words typed); the hotlines are put in at connect.
const V6: &str = r#"
CREATE TABLE directory (
    id         TEXT PRIMARY KEY,
    data       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT
) STRICT;
"#;

/// Version 7: a report for a period reads only that period's cases.
const V7: &str = "CREATE INDEX case_report_by_date ON case_report (intake_date);";

/// Version 8: each device's public keys, pinned the first time its own signed
/// batch is read (or the hub lists it), and its revocation.
const V8: &str = "
ALTER TABLE sync_devices ADD COLUMN sign_key TEXT;
ALTER TABLE sync_devices ADD COLUMN kx_key TEXT;
ALTER TABLE sync_devices ADD COLUMN revoked_at TEXT;";

/// Version 9: this laptop's batches for the hub, sealed and kept until the hub
/// acknowledged them, so a push cut off is sent again byte for byte.
const V9: &str = "CREATE TABLE hub_outbox (number INTEGER PRIMARY KEY, bytes BLOB NOT NULL) STRICT;";

/// Version 10: the organisation's key epochs. Epoch 0 is the key the organisation
/// began with (moved here from `meta`); each later one comes with its record, the
/// signed message that sealed it to the devices (`key` is NULL when it was not
/// sealed to this laptop). A revoked device's batches are taken up to the last one
/// the hub held when it was revoked.
const V10: &str = "
CREATE TABLE org_epochs (number INTEGER PRIMARY KEY, key TEXT, record BLOB) STRICT;
INSERT INTO org_epochs (number, key) SELECT 0, value FROM meta WHERE key = 'org_key';
DELETE FROM meta WHERE key = 'org_key';
ALTER TABLE sync_devices ADD COLUMN revoked_after INTEGER;";

/// Version 11: the search index keeps its text beside it (external content), so
/// that replacing or removing a case's entry can tell the index which words to
/// take out, and with `secure-delete` they are gone from its pages at once. The
/// contentless index before only marked an old entry deleted: its words stayed
/// readable, lowercased, in `cases_fts_data`. Dropping it frees those pages,
/// which `secure_delete` overwrites; the store refills the index at its next open.
const V11: &str = "
CREATE TABLE cases_fts_text (
    seq INTEGER PRIMARY KEY,
    case_number TEXT NOT NULL,
    names TEXT NOT NULL,
    places TEXT NOT NULL,
    notes TEXT NOT NULL
) STRICT;
DROP TABLE cases_fts;
CREATE VIRTUAL TABLE cases_fts USING fts5 (
    case_number, names, places, notes,
    content = 'cases_fts_text', content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO cases_fts (cases_fts, rank) VALUES ('secure-delete', 1);
DELETE FROM meta WHERE key = 'fts_filled_at';";

/// Version 12: role grants an administrator signs. Each user has key pairs of
/// her own (their secrets sealed under her passphrase, in `keys.json`); her row
/// holds their public halves and her grant: the authority's signature over her
/// id, name, role and public keys. The authority's public key is in `meta`
/// (`authority_key`); its secret is sealed to each administrator's X25519 key in
/// `authority_seals`. A role changed here by hand has no valid signature and
/// gives no rights beyond a caseworker's.
const V12: &str = "
ALTER TABLE users ADD COLUMN sign_key TEXT;
ALTER TABLE users ADD COLUMN kx_key TEXT;
ALTER TABLE users ADD COLUMN granted_by TEXT;
ALTER TABLE users ADD COLUMN granted_at TEXT;
ALTER TABLE users ADD COLUMN grant_sig TEXT;
CREATE TABLE authority_seals (user_id TEXT PRIMARY KEY, sealed TEXT NOT NULL) STRICT;";

/// Version 13: proofs that a device's activity log was rewritten: an entry that
/// another laptop's copy holds with another hash (or that this laptop, its own
/// writer, no longer holds). Found at a sync; shown by `audit verify`.
const V13: &str = "
CREATE TABLE audit_forks (
    device_id  TEXT NOT NULL,
    device_seq INTEGER NOT NULL,
    seen_hash  TEXT NOT NULL,
    found_at   TEXT NOT NULL,
    PRIMARY KEY (device_id, device_seq)
) STRICT;";

/// Version 14: a batch waiting for the hub holds no value blanked since it was
/// sealed. Each outbox row keeps its header (ids, ranges, counts: no case data)
/// and its own range of this laptop's changes; a value blanked in that range
/// (replaced, removed, purged) empties its sealed bytes in the same write, and
/// the batch is sealed again from the change log before it is sent.
/// `first_sha256` is the hash of the first sealing, which the hub may hold.
const V14: &str = "
ALTER TABLE hub_outbox ADD COLUMN header TEXT;
ALTER TABLE hub_outbox ADD COLUMN sha256 TEXT;
ALTER TABLE hub_outbox ADD COLUMN device TEXT NOT NULL DEFAULT '';
ALTER TABLE hub_outbox ADD COLUMN own_from INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hub_outbox ADD COLUMN own_to INTEGER NOT NULL DEFAULT -1;
ALTER TABLE hub_outbox ADD COLUMN first_sha256 TEXT;
CREATE TRIGGER hub_outbox_blanked AFTER UPDATE OF value ON changes
    WHEN NEW.value IS NULL AND OLD.value IS NOT NULL
    BEGIN
        UPDATE hub_outbox SET bytes = X'', first_sha256 = coalesce(first_sha256, sha256)
        WHERE device = NEW.device_id AND NEW.device_seq BETWEEN own_from AND own_to AND length(bytes) > 0;
    END;";

/// Version 15: the organisation's users on other laptops, as their signed grants
/// say (public keys and role, never a seal): whom a restricted case can be sealed
/// to. Rows are checked against the authority whenever they are read. Local
/// removals are signed too, so that they travel.
const V15: &str = "
CREATE TABLE members (
    user_id     TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    sign_key    TEXT NOT NULL,
    kx_key      TEXT NOT NULL,
    granted_by  TEXT NOT NULL,
    granted_at  TEXT NOT NULL,
    grant_sig   TEXT NOT NULL,
    removed_by  TEXT,
    removed_at  TEXT,
    removal_sig TEXT
) STRICT;
ALTER TABLE users ADD COLUMN removed_by TEXT;
ALTER TABLE users ADD COLUMN removal_sig TEXT;";

/// Version 16: a restricted case's notes are sealed in the change log only
/// (docs/restricted.md), so restricting one takes its notes out of the notes
/// table: allowed then, as after a purge, and at no other time.
const V16: &str = "
DROP TRIGGER notes_append_only_delete;
CREATE TRIGGER notes_append_only_delete BEFORE DELETE ON notes
    WHEN NOT EXISTS (SELECT 1 FROM purged_cases WHERE case_id = OLD.case_id)
     AND NOT EXISTS (SELECT 1 FROM cases WHERE id = OLD.case_id AND restricted = 1)
    BEGIN SELECT RAISE(ABORT, 'notes are append-only'); END;";

/// Version 17: the search index keeps prefix indexes of one and two characters,
/// so the first keystrokes of a search ("s", "ro") read one short list instead
/// of every word that starts with them (issue 14: 31 ms to 0.12 ms for "s" at
/// 100,000 cases); and it holds each case's status code as a column of its own,
/// so a search filtered by status is answered inside the index instead of by
/// reading the row of every match. Rebuilt from the text it keeps beside it;
/// `secure-delete` is a setting of the index, so it is set again. Restricted
/// cases are found without reading every case (search reads them apart, unlock
/// puts them right).
const V17: &str = "
CREATE INDEX cases_restricted ON cases (seq) WHERE restricted = 1;
ALTER TABLE cases_fts_text ADD COLUMN status TEXT NOT NULL DEFAULT '';
UPDATE cases_fts_text SET status = coalesce((SELECT status FROM cases WHERE cases.seq = cases_fts_text.seq), '');
DROP TABLE cases_fts;
CREATE VIRTUAL TABLE cases_fts USING fts5 (
    case_number, names, places, notes, status,
    content = 'cases_fts_text', content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '1 2'
);
INSERT INTO cases_fts (cases_fts) VALUES ('rebuild');
INSERT INTO cases_fts (cases_fts, rank) VALUES ('secure-delete', 1);";

/// Version 18: the compact change log (issue 14). One row per write instead of
/// one per field: the changes of one write (one device, clock time, author and
/// entity, consecutive numbers) packed together (`changelog::packed`), devices,
/// entities and authors as small numbers, item ids in field paths as 16 bytes
/// once per row. A change is still (device, number): bundles and merge are
/// unchanged. The old rows are carried over by `changelog::carry_over`, which
/// needs Rust to pack them, then dropped; the hub outbox is emptied by the
/// code that blanks a value now, since a row holds many values.
const V18: &str = "
CREATE TABLE log_devices (
    n         INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL UNIQUE
) STRICT;
CREATE TABLE log_entities (
    n         INTEGER PRIMARY KEY,
    entity    TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    UNIQUE (entity_id, entity)
) STRICT;
CREATE TABLE log_authors (
    n         INTEGER PRIMARY KEY,
    user_id   TEXT,
    user_name TEXT
) STRICT;
CREATE INDEX log_authors_by_user ON log_authors (user_id);
CREATE TABLE change_log (
    device    INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq  INTEGER NOT NULL,
    hlc       INTEGER NOT NULL,
    entity    INTEGER NOT NULL,
    author    INTEGER,
    fields    BLOB NOT NULL,
    UNIQUE (device, first_seq)
) STRICT;
CREATE INDEX change_log_by_entity ON change_log (entity);
DROP TRIGGER hub_outbox_blanked;
DROP INDEX changes_by_entity;
ALTER TABLE changes RENAME TO changes_v17;";

/// Version 19: running counts for the fact sheet (issue 14), by intake month: a
/// report for a period sums a few rows per month instead of reading a row per
/// case, and a save adjusts a few rows of one month instead of writing into an
/// index ordered by code (eight random pages per save at 100,000 cases). Filled
/// from the per-case rows kept since version 5.
const V19: &str = "
CREATE TABLE month_counts (
    month   TEXT PRIMARY KEY,
    cases   INTEGER NOT NULL,
    victims INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE fact_counts (
    month TEXT NOT NULL,
    kind  TEXT NOT NULL,
    code  TEXT NOT NULL,
    n     INTEGER NOT NULL,
    PRIMARY KEY (month, kind, code)
) STRICT, WITHOUT ROWID;
INSERT INTO month_counts (month, cases, victims)
    SELECT coalesce(substr(intake_date, 1, 7), ''), count(*), coalesce(sum(victims), 0) FROM case_report GROUP BY 1;
INSERT INTO fact_counts (month, kind, code, n)
    SELECT coalesce(substr(r.intake_date, 1, 7), ''), f.kind, f.code, count(*)
      FROM case_facts f JOIN case_report r ON r.case_seq = f.case_seq GROUP BY 1, 2, 3;
DROP INDEX case_facts_by_code;";

/// Version 20: the audit trail and the log's entities in fewer bytes (issue 14:
/// 9% and 3% of the store). Ids written as the store writes them (lower-case
/// hyphenated UUIDs) are 16 bytes, and hashes of 64 lower-case hex digits 32 bytes;
/// anything else that came from another laptop stays the text it came as (`ANY`),
/// so every entry reads back exactly as it was hashed (`database::stored_id`).
/// The marks of cases not yet sent hold only their key: no rowid table beside it
/// (after an import every case has one).
const V20: &str = "
CREATE TABLE audit_v20 (
    seq        INTEGER PRIMARY KEY,
    id         ANY NOT NULL UNIQUE,
    device_id  ANY NOT NULL,
    device_seq INTEGER NOT NULL,
    at         TEXT NOT NULL,
    user_id    ANY,
    action     TEXT NOT NULL,
    case_id    ANY,
    detail     TEXT NOT NULL,
    prev_hash  ANY NOT NULL,
    hash       ANY NOT NULL,
    UNIQUE (device_id, device_seq)
) STRICT;
INSERT INTO audit_v20 (seq, id, device_id, device_seq, at, user_id, action, case_id, detail, prev_hash, hash)
    SELECT seq,
           CASE WHEN length(id) = 36 AND lower(id) = id AND substr(id, 9, 1) || substr(id, 14, 1) || substr(id, 19, 1) || substr(id, 24, 1) = '----'
              AND length(unhex(replace(id, '-', ''))) = 16 THEN unhex(replace(id, '-', '')) ELSE id END,
           CASE WHEN length(device_id) = 36 AND lower(device_id) = device_id AND substr(device_id, 9, 1) || substr(device_id, 14, 1) || substr(device_id, 19, 1) || substr(device_id, 24, 1) = '----'
              AND length(unhex(replace(device_id, '-', ''))) = 16 THEN unhex(replace(device_id, '-', '')) ELSE device_id END,
           device_seq, at,
           CASE WHEN length(user_id) = 36 AND lower(user_id) = user_id AND substr(user_id, 9, 1) || substr(user_id, 14, 1) || substr(user_id, 19, 1) || substr(user_id, 24, 1) = '----'
              AND length(unhex(replace(user_id, '-', ''))) = 16 THEN unhex(replace(user_id, '-', '')) ELSE user_id END,
           action,
           CASE WHEN length(case_id) = 36 AND lower(case_id) = case_id AND substr(case_id, 9, 1) || substr(case_id, 14, 1) || substr(case_id, 19, 1) || substr(case_id, 24, 1) = '----'
              AND length(unhex(replace(case_id, '-', ''))) = 16 THEN unhex(replace(case_id, '-', '')) ELSE case_id END,
           detail,
           CASE WHEN length(prev_hash) = 64 AND lower(prev_hash) = prev_hash AND length(unhex(prev_hash)) = 32 THEN unhex(prev_hash) ELSE prev_hash END,
           CASE WHEN length(hash) = 64 AND lower(hash) = hash AND length(unhex(hash)) = 32 THEN unhex(hash) ELSE hash END
      FROM audit ORDER BY seq;
DROP TABLE audit;
ALTER TABLE audit_v20 RENAME TO audit;
CREATE INDEX audit_by_case ON audit (case_id, seq);
CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TABLE log_entities_v20 (
    n         INTEGER PRIMARY KEY,
    entity    TEXT NOT NULL,
    entity_id ANY NOT NULL,
    UNIQUE (entity_id, entity)
) STRICT;
INSERT INTO log_entities_v20 (n, entity, entity_id)
    SELECT n, entity,
           CASE WHEN length(entity_id) = 36 AND lower(entity_id) = entity_id AND substr(entity_id, 9, 1) || substr(entity_id, 14, 1) || substr(entity_id, 19, 1) || substr(entity_id, 24, 1) = '----'
              AND length(unhex(replace(entity_id, '-', ''))) = 16 THEN unhex(replace(entity_id, '-', '')) ELSE entity_id END
      FROM log_entities ORDER BY n;
DROP TABLE log_entities;
ALTER TABLE log_entities_v20 RENAME TO log_entities;
CREATE TABLE unexported_v20 (
    case_id TEXT PRIMARY KEY
) STRICT, WITHOUT ROWID;
INSERT INTO unexported_v20 (case_id) SELECT case_id FROM unexported;
DROP TABLE unexported;
ALTER TABLE unexported_v20 RENAME TO unexported;";

/// Version 21: HTCDS 2.0's codes. Cases written before hold codes of an earlier
/// version (`codes::RENAMED`); their rows are rebuilt once, at the next unlock,
/// by `repositories::cases::upgrade_codes`, which clears this mark.
const V21: &str = "INSERT INTO meta (key, value) VALUES ('codes_upgrade_pending', 'HTCDS 2.0');";

pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(V1),
        M::up(V2),
        M::up(V3),
        M::up(V4),
        M::up(V5),
        M::up(V6),
        M::up(V7),
        M::up(V8),
        M::up(V9),
        M::up(V10),
        M::up(V11),
        M::up(V12),
        M::up(V13),
        M::up(V14),
        M::up(V15),
        M::up(V16),
        M::up(V17),
        M::up(V18),
        M::up(V19),
        M::up(V20),
        M::up(V21),
    ])
}

/// The schema version this build writes.
pub fn latest_version() -> usize {
    21
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        super::migrations().validate().unwrap();
    }

    /// An index made before prefix indexes keeps what it held, answers one and two
    /// letters, and still deletes securely.
    #[test]
    fn the_search_index_keeps_its_entries_and_secure_delete_when_it_gains_prefix_indexes() {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        let m = super::migrations();
        m.to_version(&mut c, 16).unwrap();
        c.execute_batch(
            "INSERT INTO cases (seq, id, case_number, status, created_at, updated_at, created_by, updated_by, data)
               VALUES (7, 'c7', 'TX3-2026-0007', 'Closed', 't0', 't0', 'u1', 'u1', '{}');
             INSERT INTO cases_fts_text (seq, case_number, names, places, notes)
               VALUES (7, 'TX3-2026-0007', 'Soledad', 'Ojinaga', 'llamó');
             INSERT INTO cases_fts (rowid, case_number, names, places, notes)
               VALUES (7, 'TX3-2026-0007', 'Soledad', 'Ojinaga', 'llamó');",
        )
        .unwrap();
        m.to_latest(&mut c).unwrap();
        let matches = |q: &str| -> Vec<i64> {
            let mut st = c.prepare("SELECT rowid FROM cases_fts WHERE cases_fts MATCH ?1").unwrap();
            st.query_map([q], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
        };
        assert_eq!(matches("\"s\"*"), [7], "one letter");
        assert_eq!(matches("\"oj\"*"), [7], "two letters");
        assert_eq!(matches("\"soled\"*"), [7]);
        // Its status, from its row, answers a filtered search inside the index.
        assert_eq!(matches("\"s\"* AND status : \"Closed\""), [7]);
        assert!(matches("\"s\"* AND status : \"Active\"").is_empty());
        let config = |k: &str| -> Option<String> {
            c.query_row("SELECT v FROM cases_fts_config WHERE k = ?1", [k], |r| r.get::<_, rusqlite::types::Value>(0))
                .ok()
                .map(|v| format!("{v:?}"))
        };
        assert_eq!(config("secure-delete").as_deref(), Some("Integer(1)"));
    }

    /// A store set up with the first release (schema 1) keeps everything: its one
    /// user becomes the administrator, cases keep their assignment, closed cases
    /// start their retention clock, and notes stay append-only.
    #[test]
    fn a_schema_1_store_upgrades_with_its_data() {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        let m = super::migrations();
        m.to_version(&mut c, 1).unwrap();
        c.execute_batch(
            "INSERT INTO users (id, name, created_at) VALUES ('u1', 'Ana', '2026-01-01T00:00:00Z');
             INSERT INTO cases (id, case_number, status, created_at, updated_at, created_by, updated_by, data)
               VALUES ('c1', 'TX3-2026-0001', 'Closed', 't0', '2026-02-01T00:00:00Z', 'u1', 'u1',
                       '{\"assigned_to\": \"u1\", \"status\": \"Closed\"}');
             INSERT INTO notes (id, case_id, text, author, created_at) VALUES ('n1', 'c1', 'hola', 'Ana', 't0');
             INSERT INTO drafts (id, created_at, updated_at, data) VALUES ('d1', 't0', 't0', '{}');",
        )
        .unwrap();
        m.to_latest(&mut c).unwrap();
        let row: (String, Option<String>, i64, Option<String>) = c
            .query_row(
                "SELECT u.role, c.assigned_to, c.restricted, c.closed_at FROM cases c, users u WHERE u.id = 'u1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(row, ("Administrator".into(), Some("u1".into()), 0, Some("2026-02-01T00:00:00Z".into())));
        assert!(c.execute("DELETE FROM notes WHERE id = 'n1'", []).is_err());
        assert_eq!(c.query_row("SELECT count(*) FROM drafts", [], |r| r.get::<_, i64>(0)).unwrap(), 1);
    }

    /// A store from before key epochs keeps its organisation key, as epoch 0.
    #[test]
    fn the_organisation_key_becomes_epoch_0() {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        let m = super::migrations();
        m.to_version(&mut c, 9).unwrap();
        c.execute("INSERT INTO meta (key, value) VALUES ('org_key', 'abcd')", []).unwrap();
        m.to_latest(&mut c).unwrap();
        let key: String = c.query_row("SELECT key FROM org_epochs WHERE number = 0", [], |r| r.get(0)).unwrap();
        assert_eq!(key, "abcd");
        let left: i64 = c.query_row("SELECT count(*) FROM meta WHERE key = 'org_key'", [], |r| r.get(0)).unwrap();
        assert_eq!(left, 0, "the key is kept in one place");
    }
}
