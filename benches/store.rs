//! Store benchmark: fills a store with 100,000 generated cases (AMPARO_BENCH_CASES to
//! change) and measures, each against a plain baseline in the same run:
//!
//! - the store's size by table and the WAL the fill left, vs the same cases' JSON
//!   in a plain table;
//! - saving one intake (validate, case number, case row, search index, re-read) vs a
//!   bare rusqlite insert of the same JSON into a plain table, same durability
//!   (WAL, synchronous = FULL), unencrypted and into SQLCipher: back to back, and
//!   as in the app, with the WAL folded into the database between saves (its
//!   background tick does that while the person is idle);
//! - search as you type, as a caseworker, from the first keystroke, with and
//!   without a status filter, vs FTS5 (same tokenizer and prefix indexes) on a
//!   plain table of the same text; also vs a `LIKE '%term%'` scan;
//! - the first page of the case list vs the same page of the plain table;
//! - the fact sheet, for every case and for one year, vs one hand-written SQL
//!   aggregate of the same sections over a plain table of the same JSON;
//! - unlock, with Argon2id's share reported apart;
//! - importing the whole file into a new store vs a plain insert of its lines,
//!   each in a process of its own: time and peak memory.
//!
//! Run: `cargo bench --bench store`. Results also go to `artifacts/bench.json`.

use amparo::database::keys::{self, KdfParams};
use amparo::repositories::cases::ListQuery;
use amparo::sample;
use amparo::store::{Setup, Store};
use rusqlite::Connection;
use serde_json::json;
use std::time::{Duration, Instant};

const PASS: &str = "benchmark passphrase, long enough";

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

struct Stats {
    p50: Duration,
    p95: Duration,
    p99: Duration,
}

fn stats(mut xs: Vec<Duration>) -> Stats {
    xs.sort();
    Stats { p50: pct(&xs, 0.5), p95: pct(&xs, 0.95), p99: pct(&xs, 0.99) }
}

/// What the store's search index holds of a case (names, places, note text), for
/// the baseline to index the same words.
fn searchable(case: &serde_json::Value) -> (String, String, String) {
    let strs = |vs: Vec<Option<&str>>| vs.into_iter().flatten().collect::<Vec<_>>().join(" ");
    let people = case["people"].as_array().cloned().unwrap_or_default();
    let names = strs(
        people
            .iter()
            .flat_map(|p| ["given_name", "family_name", "alias"].map(|k| p.get(k).and_then(|v| v.as_str())))
            .collect(),
    );
    let events = case["trafficking_events"].as_array().cloned().unwrap_or_default();
    let mut places = vec![case["intake_place"]["city"].as_str()];
    places.extend(events.iter().map(|e| e["place"]["city"].as_str()));
    let notes = case["notes"].as_array().cloned().unwrap_or_default();
    let notes = strs(notes.iter().map(|n| n["text"].as_str()).collect());
    (names, strs(places), notes)
}

/// Resident memory now (kB), after resetting the peak to it (Linux).
fn resident_reset() -> u64 {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    status_kb("VmRSS:")
}

/// The peak resident memory since the last reset (kB).
fn peak_resident() -> u64 {
    status_kb("VmHWM:")
}

fn status_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|v| v.trim().trim_end_matches(" kB").parse().ok()))
        .unwrap_or(0)
}

/// A store of the bench's organisation, on a laptop with this code.
fn setup(device_code: &str) -> Setup {
    Setup {
        org: "Bench".into(),
        device_code: device_code.into(),
        user: "Bench".into(),
        passphrase: String::from(PASS).into(),
        locale: "en".into(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The import measured in a process of its own (see the end of `main`): prints
/// the seconds it took and the peak resident memory (kB), less what the process
/// held before it began.
fn import_only(what: &str) {
    let file = std::env::var("AMPARO_BENCH_FILE").expect("file");
    let dir = std::path::PathBuf::from(std::env::var("AMPARO_BENCH_DIR").expect("dir"));
    let lines = || std::io::BufReader::new(std::fs::File::open(&file).expect("open file"));
    let t;
    let before;
    if what == "store" {
        let mut store = Store::create(&dir, &setup("BN2"), KdfParams::INTERACTIVE).expect("create");
        before = resident_reset();
        t = Instant::now();
        let report = store.import_jsonl(lines(), false, &mut |_| {}).expect("import");
        assert!(report.rejected.is_empty(), "{:?}", report.rejected.first());
    } else {
        std::fs::create_dir_all(&dir).expect("dir");
        let plain = Connection::open(dir.join("plain.db")).expect("plain db");
        plain.pragma_update(None, "journal_mode", "WAL").expect("wal");
        plain.pragma_update(None, "synchronous", "FULL").expect("sync");
        plain.execute_batch("CREATE TABLE plain (id INTEGER PRIMARY KEY, data TEXT NOT NULL)").expect("table");
        before = resident_reset();
        t = Instant::now();
        let tx = plain.unchecked_transaction().expect("tx");
        {
            let mut st = tx.prepare("INSERT INTO plain (data) VALUES (?1)").expect("prepare");
            for line in std::io::BufRead::lines(lines()) {
                st.execute([line.expect("line")]).expect("insert");
            }
        }
        tx.commit().expect("commit");
    }
    println!("{} {}", t.elapsed().as_secs_f64(), peak_resident().saturating_sub(before));
}

/// The first `n` generated cases, one JSON object a line.
fn write_cases(file: &std::path::Path, n: u64) {
    let mut w = std::io::BufWriter::new(std::fs::File::create(file).expect("file"));
    for s in 0..n {
        serde_json::to_writer(&mut w, &sample::generated(s)).expect("json");
        std::io::Write::write_all(&mut w, b"\n").expect("write");
    }
    std::io::Write::flush(&mut w).expect("flush");
}

fn main() {
    if let Ok(what) = std::env::var("AMPARO_BENCH_IMPORT") {
        return import_only(&what);
    }
    let n: u64 = std::env::var("AMPARO_BENCH_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    // AMPARO_BENCH_WRITE=FILE only writes the generated cases as JSON Lines, for
    // profiling an import (AMPARO_BENCH_IMPORT=store with AMPARO_BENCH_FILE) apart.
    if let Ok(file) = std::env::var("AMPARO_BENCH_WRITE") {
        return write_cases(std::path::Path::new(&file), n);
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("store");
    let mut store = Store::create(&dir, &setup("BN1"), KdfParams::INTERACTIVE).expect("create store");

    // Baseline: a plain table, same journal and durability, no encryption, no index.
    let plain = Connection::open(tmp.path().join("plain.db")).expect("plain db");
    plain.pragma_update(None, "journal_mode", "WAL").expect("wal");
    plain.pragma_update(None, "synchronous", "FULL").expect("sync");
    plain.execute_batch("CREATE TABLE plain (id INTEGER PRIMARY KEY, data TEXT NOT NULL)").expect("table");
    // Search baseline: the text the store indexes, in FTS5 on a plain table.
    plain
        .execute_batch(
            "CREATE VIRTUAL TABLE plain_fts USING fts5 (case_number, names, places, notes, status,
                 tokenize = 'unicode61 remove_diacritics 2', prefix = '1 2')",
        )
        .expect("fts table");

    // Second baseline: the same bare insert into a SQLCipher-encrypted table, to tell
    // the cost of encryption apart from the cost of our own work.
    let sealed = Connection::open(tmp.path().join("sealed.db")).expect("sealed db");
    sealed.pragma_update(None, "key", format!("x'{}'", "ab".repeat(32))).expect("key");
    sealed.pragma_update(None, "journal_mode", "WAL").expect("wal");
    sealed.pragma_update(None, "synchronous", "FULL").expect("sync");
    sealed.execute_batch("CREATE TABLE plain (id INTEGER PRIMARY KEY, data TEXT NOT NULL)").expect("table");

    eprintln!("filling {n} cases…");
    let fill_start = Instant::now();
    let batch = 10_000;
    let mut seed = 0;
    while seed < n {
        let end = (seed + batch).min(n);
        let mut text = String::new();
        let tx = plain.unchecked_transaction().expect("tx");
        for s in seed..end {
            let case = sample::generated(s);
            let line = serde_json::to_string(&case).expect("json");
            tx.execute("INSERT INTO plain (data) VALUES (?1)", [&line]).expect("insert");
            let (names, places, notes) = searchable(&case);
            tx.execute(
                "INSERT INTO plain_fts (rowid, case_number, names, places, notes, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                rusqlite::params![
                    s as i64 + 1,
                    format!("BN1-2026-{:04}", s + 1),
                    names,
                    places,
                    notes,
                    case["status"].as_str().unwrap_or_default()
                ],
            )
            .expect("fts insert");
            text.push_str(&line);
            text.push('\n');
        }
        tx.commit().expect("commit");
        let report = store.import_jsonl(text.as_bytes(), false, &mut |_| {}).expect("import");
        assert_eq!(report.imported as u64, end - seed, "{:?}", report.rejected.first());
        seed = end;
        eprintln!("  {seed}");
    }
    let fill = fill_start.elapsed();

    // What the store takes on disk, by table (its indexes counted with it), against
    // the same cases' JSON in a plain table; the WAL the fill left behind.
    let wal_after_fill =
        std::fs::metadata(dir.join(format!("{}-wal", amparo::database::DB_FILE))).map_or(0, |m| m.len());
    let kf = keys::KeyFile::read(&dir.join(amparo::database::KEY_FILE)).expect("key file");
    let key = keys::unwrap(&kf.keys[0], PASS).expect("unwrap");
    let same = Connection::open(dir.join(amparo::database::DB_FILE)).expect("second connection");
    same.pragma_update(None, "key", format!("x'{}'", hex::encode(key.as_ref()))).expect("key");
    let by_table = |c: &Connection| -> Vec<(String, i64)> {
        let mut st = c
            .prepare(
                "SELECT coalesce(m.tbl_name, d.name) AS t, sum(d.pgsize) AS bytes FROM dbstat d
                   LEFT JOIN sqlite_schema m ON m.name = d.name GROUP BY t ORDER BY bytes DESC",
            )
            .expect("dbstat");
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).expect("query").collect::<Result<_, _>>().expect("rows")
    };
    let store_tables = by_table(&same);
    let store_bytes: i64 = store_tables.iter().map(|t| t.1).sum();
    let plain_bytes: i64 = by_table(&plain).iter().filter(|t| t.0 == "plain").map(|t| t.1).sum();
    // Closed until the fact sheet needs it: while a second connection is open on
    // the store, its reads lose their page cache (the list 2.9 ms instead of
    // 0.13 ms at 10,000 cases), which the app, with one connection, never pays.
    drop(same);

    // Saving one intake.
    let rounds = 300;
    let mut ours = Vec::new();
    let mut base = Vec::new();
    let mut base_sealed = Vec::new();
    let mut checks = Vec::new();
    let today = amparo::repositories::cases::today();
    for i in 0..rounds {
        let case = sample::generated(n + i);
        let line = serde_json::to_string(&case).expect("json");
        let t = Instant::now();
        plain.execute("INSERT INTO plain (data) VALUES (?1)", [&line]).expect("insert");
        base.push(t.elapsed());
        let t = Instant::now();
        sealed.execute("INSERT INTO plain (data) VALUES (?1)", [&line]).expect("insert");
        base_sealed.push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(amparo::intake::prepare(case.clone(), today).expect("valid"));
        checks.push(t.elapsed());
        let t = Instant::now();
        store.create_case(case, None).expect("save");
        ours.push(t.elapsed());
    }
    let (save, save_base, save_sealed, check) = (stats(ours), stats(base), stats(base_sealed), stats(checks));
    // The same, as saves happen in the app: seconds or minutes apart, the WAL
    // folded into the database in between by its background tick
    // (`Store::checkpoint`, untimed), and the baselines' WAL likewise.
    let (mut ours, mut base_sealed) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        let case = sample::generated(n + rounds + i);
        let line = serde_json::to_string(&case).expect("json");
        // The plain table holds every case the store does (the fact sheet's baseline).
        plain.execute("INSERT INTO plain (data) VALUES (?1)", [&line]).expect("insert");
        sealed.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())).expect("checkpoint");
        let t = Instant::now();
        sealed.execute("INSERT INTO plain (data) VALUES (?1)", [&line]).expect("insert");
        base_sealed.push(t.elapsed());
        store.checkpoint().expect("checkpoint");
        let t = Instant::now();
        store.create_case(case, None).expect("save");
        ours.push(t.elapsed());
    }
    let (save_idle, save_idle_sealed) = (stats(ours), stats(base_sealed));

    // Search as you type, as a caseworker would: the first keystrokes ("s", "ro")
    // as well as words, with and without a status filter, one page newest first.
    let caseworker_pass = "a caseworker searching the store";
    store.add_user("Caseworker", amparo::repositories::users::Role::Caseworker, caseworker_pass).expect("add user");
    let caseworker = Store::open(&dir, caseworker_pass).expect("open as a caseworker");
    let terms = [
        "s",
        "m",
        "r",
        "ro",
        "ma",
        "lu",
        "sol",
        "lup",
        "chabe",
        "rosa",
        "xóch",
        "hernán",
        "atlan",
        "el paso",
        "quee",
        "abogada",
        "refugio",
        "cuca",
        "martínez ram",
        "tijuana",
        "interp",
    ];
    let statuses = [None, Some("Active"), Some("Closed")];
    let mut ours = Vec::new();
    let mut base = Vec::new();
    let mut base_like = Vec::new();
    // Per query, to say which keystrokes and filters cost most.
    let mut by_query: std::collections::BTreeMap<(String, String), (Vec<Duration>, Vec<Duration>)> = Default::default();
    for _ in 0..3 {
        for term in terms {
            for status in statuses {
                let q = ListQuery { text: term.into(), status: status.map(str::to_string), ..Default::default() };
                let t = Instant::now();
                std::hint::black_box(caseworker.list_cases(&q).expect("search"));
                ours.push(t.elapsed());
                // The same query shape as the store's: words in the text columns, the
                // status as a token of its own column.
                let words = amparo::repositories::cases::fts_query(term).expect("a term");
                let fts = match status {
                    Some(code) => format!("{{case_number names places notes}} : ({words}) AND status : \"{code}\""),
                    None => format!("{{case_number names places notes}} : ({words})"),
                };
                let t = Instant::now();
                let mut st = plain
                    .prepare_cached(
                        "SELECT p.id, p.data FROM plain_fts f JOIN plain p ON p.id = f.rowid
                          WHERE plain_fts MATCH ?1 ORDER BY f.rowid DESC LIMIT 100",
                    )
                    .expect("prepare");
                let rows: Vec<(i64, String)> = st
                    .query_map([&fts], |r| Ok((r.get(0)?, r.get(1)?)))
                    .expect("query")
                    .collect::<Result<_, _>>()
                    .expect("rows");
                base.push(t.elapsed());
                std::hint::black_box(rows);
                let e = by_query.entry((term.to_string(), status.unwrap_or("any").to_string())).or_default();
                e.0.push(*ours.last().expect("just measured"));
                e.1.push(*base.last().expect("just measured"));
            }
            let t = Instant::now();
            let mut st = plain
                .prepare_cached("SELECT id, data FROM plain WHERE data LIKE ?1 ORDER BY id DESC LIMIT 100")
                .expect("prepare");
            let rows: Vec<(i64, String)> = st
                .query_map([format!("%{term}%")], |r| Ok((r.get(0)?, r.get(1)?)))
                .expect("query")
                .collect::<Result<_, _>>()
                .expect("rows");
            base_like.push(t.elapsed());
            std::hint::black_box(rows);
        }
    }
    drop(caseworker);
    let search_like = stats(base_like);
    let mut slowest: Vec<(Duration, Duration, String, String)> =
        by_query.into_iter().map(|((term, status), (o, b))| (stats(o).p50, stats(b).p50, term, status)).collect();
    slowest.sort_by_key(|s| std::cmp::Reverse(s.0));
    slowest.truncate(5);
    let (search, search_base) = (stats(ours), stats(base));

    // First page of the case list.
    let mut ours = Vec::new();
    let mut base = Vec::new();
    for _ in 0..100 {
        let t = Instant::now();
        std::hint::black_box(store.list_cases(&ListQuery::default()).expect("list"));
        ours.push(t.elapsed());
        let t = Instant::now();
        let mut st = plain.prepare_cached("SELECT id, data FROM plain ORDER BY id DESC LIMIT 100").expect("prepare");
        let rows: Vec<(i64, String)> =
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).expect("query").collect::<Result<_, _>>().expect("rows");
        base.push(t.elapsed());
        std::hint::black_box(rows);
    }
    let (list, list_base) = (stats(ours), stats(base));

    // The fact sheet, for every case and for one year of intakes, against one
    // hand-written SQL aggregate of the same sections over the plain table of the
    // same cases' JSON (with an index on the intake date, for the year).
    plain.execute_batch("CREATE INDEX plain_by_date ON plain (data ->> '$.intake_date')").expect("plain index");
    const BY_HAND: &str = "
        WITH c AS (SELECT id, data FROM plain WHERE ?1 IS NULL OR (data ->> '$.intake_date') BETWEEN ?1 AND ?2),
             v AS (SELECT c.id, p.value AS p FROM c, json_each(c.data, '$.people') p
                    WHERE p.value ->> '$.role' = 'PotentialVictim')
        SELECT 'cases', '', count(*) FROM c
        UNION ALL SELECT 'victims', '', count(*) FROM v
        UNION ALL SELECT 'venue', j.value, count(*) FROM c, json_each(c.data, '$.venues') j GROUP BY 2
        UNION ALL SELECT 'recruiter_relation', j.value, count(*) FROM c, json_each(c.data, '$.recruiter_relation') j
                  GROUP BY 2
        UNION ALL SELECT 'gender', p ->> '$.gender', count(DISTINCT id) FROM v WHERE p ->> '$.gender' IS NOT NULL
                  GROUP BY 2
        UNION ALL SELECT 'majority', p ->> '$.majority_at_intake', count(DISTINCT id) FROM v
                  WHERE p ->> '$.majority_at_intake' IS NOT NULL GROUP BY 2
        UNION ALL SELECT 'nationality', n.value, count(DISTINCT v.id) FROM v, json_each(v.p, '$.nationality') n GROUP BY 2";
    let by_hand = |from: Option<&str>, to: Option<&str>| {
        let mut st = plain.prepare_cached(BY_HAND).expect("prepare");
        let rows: Vec<(String, String, i64)> = st
            .query_map(rusqlite::params![from, to], |r| {
                Ok((r.get(0)?, r.get::<_, Option<String>>(1)?.unwrap_or_default(), r.get(2)?))
            })
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        rows
    };
    let year = amparo::report::ReportQuery {
        from: chrono::NaiveDate::from_ymd_opt(2020, 1, 1),
        to: chrono::NaiveDate::from_ymd_opt(2020, 12, 31),
        ..Default::default()
    };
    let samples = 30;
    let (mut ours, mut base, mut ours_year, mut base_year) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut checked = false;
    for _ in 0..samples {
        let t = Instant::now();
        let sheet = store.fact_sheet(&amparo::report::ReportQuery::default()).expect("fact sheet");
        ours.push(t.elapsed());
        let t = Instant::now();
        let rows = by_hand(None, None);
        base.push(t.elapsed());
        if !checked {
            // The baseline counts what the store counts.
            let cases = rows.iter().find(|r| r.0 == "cases").map(|r| r.2).unwrap_or(-1);
            assert_eq!(sheet.cases, amparo::report::Count::Exact(cases as u64), "the baseline counts the same cases");
            checked = true;
        }
        let t = Instant::now();
        std::hint::black_box(store.fact_sheet(&year).expect("fact sheet, one year"));
        ours_year.push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(by_hand(Some("2020-01-01"), Some("2020-12-31")));
        base_year.push(t.elapsed());
    }
    let report_first = ours[0];
    let (report, report_base) = (stats(ours), stats(base));
    let (report_year, report_year_base) = (stats(ours_year), stats(base_year));

    // Unlock, and the Argon2id share of it.
    drop(store);
    let kf = keys::KeyFile::read(&dir.join(amparo::database::KEY_FILE)).expect("key file");
    let mut unlock = Vec::new();
    let mut argon = Vec::new();
    for _ in 0..samples {
        let t = Instant::now();
        std::hint::black_box(keys::unwrap(&kf.keys[0], PASS).expect("unwrap"));
        argon.push(t.elapsed());
        let t = Instant::now();
        let s = Store::open(&dir, PASS).expect("open");
        unlock.push(t.elapsed());
        drop(s);
    }
    let (unlock, argon) = (stats(unlock), stats(argon));

    // With five users the passphrase says who unlocks, by which seal opens: the last
    // user's unlock tries every seal before theirs.
    {
        let mut admin = Store::open(&dir, PASS).expect("open");
        for i in 1..=4 {
            let p = format!("bench user {i} passphrase");
            admin.add_user(&format!("User {i}"), amparo::repositories::users::Role::Caseworker, &p).expect("add user");
        }
    }
    // The first time the last user unlocks, every seal is tried; after that, theirs
    // is tried first (settings.json remembers whose it was).
    let t = Instant::now();
    drop(Store::open(&dir, "bench user 4 passphrase").expect("open as the last user"));
    let unlock5_first = t.elapsed();
    let mut unlock5 = Vec::new();
    for _ in 0..samples {
        let t = Instant::now();
        let s = Store::open(&dir, "bench user 4 passphrase").expect("open as the last user");
        unlock5.push(t.elapsed());
        drop(s);
    }
    let unlock5 = stats(unlock5);

    // Import of the whole file into a new store, streamed from disk, against a
    // plain insert of the same lines into a plain table in one transaction: the
    // time, and how much memory each takes beyond what the process held before.
    let file = tmp.path().join("cases.jsonl");
    write_cases(&file, n);
    // Each in a process of its own, so that its peak memory is its own.
    let child = |what: &str| -> (Duration, u64) {
        let out = std::process::Command::new(std::env::current_exe().expect("this program"))
            .env("AMPARO_BENCH_IMPORT", what)
            .env("AMPARO_BENCH_FILE", &file)
            .env("AMPARO_BENCH_DIR", tmp.path().join(format!("import-{what}")))
            .output()
            .expect("run the import");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        let mut parts = text.split_whitespace().map(|p| p.parse::<f64>().expect("a number"));
        let (seconds, peak_kb) = (parts.next().expect("seconds"), parts.next().expect("peak"));
        (Duration::from_secs_f64(seconds), peak_kb as u64)
    };
    let (import_time, import_memory) = child("store");
    let import_wal =
        std::fs::metadata(tmp.path().join("import-store").join(format!("{}-wal", amparo::database::DB_FILE)))
            .map_or(0, |m| m.len());
    let (plain_import_time, plain_import_memory) = child("plain");
    let db_bytes = std::fs::metadata(dir.join(amparo::database::DB_FILE)).map(|m| m.len()).unwrap_or(0);

    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    println!(
        "Amparo store benchmark: {n} cases ({:.0} MB encrypted), filled in {:.1} s",
        db_bytes as f64 / 1e6,
        fill.as_secs_f64()
    );
    println!(
        "store {:.1} MB = {:.2}x the same cases as JSON in a plain table ({:.1} MB); {:.0} bytes per case; WAL after the fill {:.1} MB",
        store_bytes as f64 / 1e6,
        store_bytes as f64 / plain_bytes.max(1) as f64,
        plain_bytes as f64 / 1e6,
        store_bytes as f64 / n as f64,
        wal_after_fill as f64 / 1e6
    );
    for (table, bytes) in store_tables.iter().take(8) {
        println!(
            "  {table:<28} {:>8.1} MB {:>5.1}%",
            *bytes as f64 / 1e6,
            100.0 * *bytes as f64 / store_bytes.max(1) as f64
        );
    }
    println!("{:<34} {:>10} {:>10} {:>10}", "", "p50 ms", "p95 ms", "p99 ms");
    let row =
        |name: &str, s: &Stats| println!("{:<34} {:>10.3} {:>10.3} {:>10.3}", name, ms(s.p50), ms(s.p95), ms(s.p99));
    let save_ratios = |ours: &Stats, base: &Stats, what: &str| {
        println!("  ratio p50 {:.2}x, p99 {:.2}x ({what})", ratio(ours.p50, base.p50), ratio(ours.p99, base.p99));
    };
    row("save one intake", &save);
    row("  baseline: bare insert, same sync", &save_base);
    save_ratios(&save, &save_base, "unencrypted");
    row("  baseline 2: same, SQLCipher", &save_sealed);
    save_ratios(&save, &save_sealed, "target <= 2x, p99 <= 3x");
    row("  of which validation", &check);
    row("save, WAL folded between (as the app)", &save_idle);
    row("  baseline: SQLCipher, same", &save_idle_sealed);
    save_ratios(&save_idle, &save_idle_sealed, "target <= 2x, p99 <= 3x");
    row("search as you type, caseworker", &search);
    row("  baseline: FTS5 on a plain table", &search_base);
    println!(
        "  ratio p50 {:.2}x, p95 {:.2}x (target p95 <= 10 ms at 300k)",
        ratio(search.p50, search_base.p50),
        ratio(search.p95, search_base.p95)
    );
    row("  baseline 2: LIKE '%term%' scan", &search_like);
    for (o, b, term, status) in &slowest {
        println!("  slowest: {:<22} {:>10.3} ms (baseline {:.3} ms)", format!("{term:?}, {status}"), ms(*o), ms(*b));
    }
    row("first page of the case list", &list);
    row("  baseline: plain table page", &list_base);
    println!("  ratio p50 {:.2}x", ratio(list.p50, list_base.p50));
    row("fact sheet, every case", &report);
    row("  baseline: SQL over a plain table", &report_base);
    println!(
        "  ratio p50 {:.2}x, p95 {:.2}x (target p95 <= 100 ms at 300k); first run {:.1} ms",
        ratio(report.p50, report_base.p50),
        ratio(report.p95, report_base.p95),
        ms(report_first)
    );
    row("fact sheet, one year of intakes", &report_year);
    row("  baseline: SQL over a plain table", &report_year_base);
    println!(
        "  ratio p50 {:.2}x, p95 {:.2}x",
        ratio(report_year.p50, report_year_base.p50),
        ratio(report_year.p95, report_year_base.p95)
    );
    row("unlock (Argon2id + open)", &unlock);
    row("  of which Argon2id (64 MiB, t=3)", &argon);
    println!("{:<34} {:>10.3}", "unlock, 5 users, the 5th, 1st time", ms(unlock5_first));
    row("  the same user again", &unlock5);
    println!(
        "import of {n} cases from a file: {:.1} s, {:.0} MB more memory, WAL left {:.0} MB",
        import_time.as_secs_f64(),
        import_memory as f64 / 1024.0,
        import_wal as f64 / 1e6
    );
    println!(
        "  baseline: plain insert of the lines: {:.1} s, {:.0} MB; ratio {:.1}x (target <= 10x, <= 150 MB)",
        plain_import_time.as_secs_f64(),
        plain_import_memory as f64 / 1024.0,
        import_time.as_secs_f64() / plain_import_time.as_secs_f64().max(1e-9)
    );

    let out = json!({
        "cases": n, "db_bytes": db_bytes, "fill_seconds": fill.as_secs_f64(),
        "size": {"store_bytes": store_bytes, "plain_table_bytes": plain_bytes, "wal_after_fill_bytes": wal_after_fill,
                 "by_table": store_tables.iter().map(|(t, b)| json!([t, b])).collect::<Vec<_>>()},
        "save_ms": {"p50": ms(save.p50), "p99": ms(save.p99), "baseline_p50": ms(save_base.p50), "baseline_p99": ms(save_base.p99),
                    "sqlcipher_baseline_p50": ms(save_sealed.p50), "sqlcipher_baseline_p99": ms(save_sealed.p99),
                    "validation_p50": ms(check.p50),
                    "wal_folded_between": {"p50": ms(save_idle.p50), "p99": ms(save_idle.p99),
                                           "sqlcipher_baseline_p50": ms(save_idle_sealed.p50),
                                           "sqlcipher_baseline_p99": ms(save_idle_sealed.p99)}},
        "search_ms": {"p50": ms(search.p50), "p95": ms(search.p95), "samples": terms.len() * statuses.len() * 3,
                      "baseline_fts5_p50": ms(search_base.p50), "baseline_fts5_p95": ms(search_base.p95),
                      "baseline_like_p50": ms(search_like.p50), "baseline_like_p95": ms(search_like.p95)},
        "list_ms": {"p50": ms(list.p50), "p95": ms(list.p95), "baseline_p50": ms(list_base.p50)},
        "fact_sheet_ms": {"samples": samples, "p50": ms(report.p50), "p95": ms(report.p95),
                          "baseline_p50": ms(report_base.p50), "baseline_p95": ms(report_base.p95), "first": ms(report_first),
                          "one_year_p50": ms(report_year.p50), "one_year_p95": ms(report_year.p95),
                          "one_year_baseline_p50": ms(report_year_base.p50), "one_year_baseline_p95": ms(report_year_base.p95)},
        "import": {"seconds": import_time.as_secs_f64(), "memory_kb": import_memory, "wal_bytes": import_wal,
                   "baseline_seconds": plain_import_time.as_secs_f64(), "baseline_memory_kb": plain_import_memory},
        "unlock_ms": {"p50": ms(unlock.p50), "argon2_p50": ms(argon.p50), "five_users_fifth_first": ms(unlock5_first), "five_users_fifth_again_p50": ms(unlock5.p50)},
    });
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts/bench.json");
    if std::fs::create_dir_all(path.parent().expect("parent")).is_ok() {
        let _ = std::fs::write(&path, serde_json::to_string_pretty(&out).unwrap_or_default());
    }
}
