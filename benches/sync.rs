//! Sync benchmark: one laptop writes a bundle of about 10,000 changes (whole
//! generated cases, AMPARO_BENCH_SYNC_CASES to change), another merges it; each
//! against a raw insert of the same rows (one per field: device, sequence, clock,
//! case, field, JSON value) into a SQLCipher table with the same durability (WAL,
//! synchronous = FULL), in one transaction, in the same run. Also the bundle's size
//! against the same changes as plain JSON and the same cases as JSON Lines, and what
//! the cases take in the store of the laptop that wrote them and of one that
//! received them.
//!
//! Run: `cargo bench --bench sync`.

use amparo::database::keys::KdfParams;
use amparo::sample;
use amparo::store::{Setup, Store};
use rusqlite::{params, Connection};
use serde_json::{Map, Value};
use std::time::{Duration, Instant};

const PASS: &str = "benchmark passphrase, long enough";
const RUNS: usize = 5;

fn setup(code: &str) -> Setup {
    Setup {
        org: "Bench".into(),
        device_code: code.into(),
        user: "Bench".into(),
        passphrase: String::from(PASS).into(),
        locale: "en".into(),
    }
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let n: u64 = std::env::var("AMPARO_BENCH_SYNC_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(250);
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut a = Store::create(&tmp.path().join("a"), &setup("BA"), KdfParams::INSECURE_FOR_TESTS).expect("create");
    let (invitation, code) = a.invite().expect("invite");
    let mut cases = Vec::new();
    for seed in 0..n {
        cases.push(a.create_case(sample::generated(seed), None).expect("create case"));
    }

    let mut export_times = Vec::new();
    let mut bundle = Vec::new();
    let mut changes = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        let s = a
            .sync_export(true, |b| {
                bundle = b.to_vec();
                Ok(())
            })
            .expect("export");
        export_times.push(t.elapsed());
        changes = s.changes;
    }
    let mut import_times = Vec::new();
    for i in 0..RUNS {
        let dir = tmp.path().join(format!("b{i}"));
        let mut b = Store::join(&dir, &invitation, &code, &setup(&format!("BB{i}")), KdfParams::INSECURE_FOR_TESTS)
            .expect("join");
        let t = Instant::now();
        let s = b.sync_import(&bundle, &mut |_, _| {}).expect("import");
        import_times.push(t.elapsed());
        assert_eq!(s.new_cases as u64, n);
    }
    // What the cases take on the laptop that wrote them and on one that received
    // them: the receiving laptop's log holds no second copy of what its rows hold.
    let sizes = |dir: &std::path::Path| -> (i64, i64) {
        let kf = amparo::database::keys::KeyFile::read(&dir.join(amparo::database::KEY_FILE)).expect("key file");
        let key = amparo::database::keys::unwrap(&kf.keys[0], PASS).expect("unwrap");
        let c = Connection::open(dir.join(amparo::database::DB_FILE)).expect("open");
        c.pragma_update(None, "key", format!("x'{}'", hex::encode(key.as_ref()))).expect("key");
        c.query_row("SELECT sum(pgsize), sum(CASE WHEN name = 'change_log' THEN pgsize END) FROM dbstat", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("dbstat")
    };
    let (sender, receiver) = (sizes(&tmp.path().join("a")), sizes(&tmp.path().join("b0")));

    // The same rows, one per field of each case, as plain JSON and as a raw insert.
    let mut rows: Vec<(String, String, String)> = Vec::new();
    'fill: loop {
        for c in &cases {
            let id = c["id"].as_str().unwrap_or_default().to_string();
            let data: Map<String, Value> = c.as_object().cloned().unwrap_or_default();
            let flat = amparo::changelog::flat::flatten(&data, &Default::default());
            for (field, value) in flat {
                rows.push((id.clone(), field, value.to_string()));
                if rows.len() == changes {
                    break 'fill;
                }
            }
            for k in ["case_number", "created_at", "updated_at", "created_by", "updated_by"] {
                rows.push((id.clone(), k.to_string(), c.get(k).cloned().unwrap_or(Value::Null).to_string()));
                if rows.len() == changes {
                    break 'fill;
                }
            }
        }
    }
    let plain_json: Vec<Value> = rows
        .iter()
        .enumerate()
        .map(|(i, (id, f, v))| {
            serde_json::json!({"device": "BA", "seq": i + 1, "hlc": 1_000_000 + i, "entity": "case", "id": id, "field": f,
                               "value": serde_json::from_str::<Value>(v).unwrap_or(Value::Null)})
        })
        .collect();
    let plain_bytes = serde_json::to_vec(&plain_json).expect("json").len();
    let mut raw_times = Vec::new();
    for i in 0..RUNS {
        let conn = Connection::open(tmp.path().join(format!("raw{i}.db"))).expect("raw db");
        conn.pragma_update(None, "key", format!("x'{}'", "ab".repeat(32))).expect("key");
        conn.pragma_update(None, "journal_mode", "WAL").expect("wal");
        conn.pragma_update(None, "synchronous", "FULL").expect("sync");
        conn.execute_batch(
            "CREATE TABLE changes (seq INTEGER PRIMARY KEY, device_id TEXT NOT NULL, device_seq INTEGER NOT NULL,
                 hlc INTEGER NOT NULL, entity TEXT NOT NULL, entity_id TEXT NOT NULL, field TEXT NOT NULL, value TEXT)",
        )
        .expect("table");
        let t = Instant::now();
        let tx = conn.unchecked_transaction().expect("tx");
        {
            let mut st = tx
                .prepare("INSERT INTO changes (device_id, device_seq, hlc, entity, entity_id, field, value) VALUES (?1, ?2, ?3, 'case', ?4, ?5, ?6)")
                .expect("prepare");
            for (k, (id, f, v)) in rows.iter().enumerate() {
                st.execute(params!["BA", k as i64 + 1, 1_000_000 + k as i64, id, f, v]).expect("insert");
            }
        }
        tx.commit().expect("commit");
        raw_times.push(t.elapsed());
    }

    // The same cases as the JSON Lines export writes them.
    let mut jsonl = Vec::new();
    a.export_jsonl(&mut jsonl).expect("export JSON Lines");

    let (e, i, r) = (median(export_times), median(import_times), median(raw_times));
    println!("sync: {n} cases, {changes} changes, medians of {RUNS} runs");
    println!("{:<44} {:>10.1} ms", "export (bundle written, sealed)", ms(e));
    println!("{:<44} {:>10.1} ms", "import (checked, merged, cases rebuilt)", ms(i));
    println!("{:<44} {:>10.1} ms", "raw insert of the same rows (SQLCipher)", ms(r));
    println!("  export {:.2}x, import {:.2}x the raw insert (target 3x)", ms(e) / ms(r), ms(i) / ms(r));
    println!(
        "bundle {} bytes, the same changes as plain JSON {} bytes ({:.2}x), {:.0} bytes per change",
        bundle.len(),
        plain_bytes,
        bundle.len() as f64 / plain_bytes as f64,
        bundle.len() as f64 / changes as f64
    );
    println!(
        "  the same cases as JSON Lines {} bytes: the bundle is {:.2}x (target <= 0.5x)",
        jsonl.len(),
        bundle.len() as f64 / jsonl.len() as f64
    );
    let mb = |b: i64| b as f64 / 1e6;
    println!(
        "store of the writing laptop {:.1} MB (change log {:.1} MB), of a receiving one {:.1} MB (change log {:.1} MB)",
        mb(sender.0),
        mb(sender.1),
        mb(receiver.0),
        mb(receiver.1)
    );
}
