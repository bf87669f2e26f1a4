//! Hub benchmark: 50 laptops (AMPARO_BENCH_LAPTOPS) of 2,000 changes each
//! (AMPARO_BENCH_CHANGES), an intake or two (about 100 changes) a batch, push and pull at once through
//! one real `amparo-hub serve` on loopback, on SQLite and on PostgreSQL. Each
//! laptop is a real encrypted store; its batches are sealed and signed before the
//! clock starts, so what is timed is the hub (TLS, request signatures, batch
//! signatures, storage), not the laptops' merging.
//!
//! Measured, in the same run and from the same state: every push and every sync
//! (one push, then pulling every batch the hub has that this laptop lacks), as
//! p50/p99; the throughput of pushes while everyone also pulls; against a raw
//! insert of the same bytes into the same database (a plain table, the same
//! durability, one transaction per batch as the hub commits them); and the hub's
//! peak RSS.
//!
//! Run: `cargo bench -p amparo-hub --bench hub`. Results also go to
//! `artifacts/bench-hub.json`.

#[path = "../tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

use amparo::sync::bundle::Vector;
use amparo::sync::hub::{sha256_hex, Listed, Transport, PAGE};
use amparo::sync::identity::Identity;
use amparo::sync::SyncError;
use amparo_hub::client::HubClient;
use serde_json::json;
use std::time::{Duration, Instant};
use support::hub::Running;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Takes the batches a laptop seals instead of sending them: they are sent later,
/// with the clock running.
#[derive(Default)]
struct Recorder(Vec<(i64, Vec<u8>)>);

impl Transport for Recorder {
    fn push(&mut self, number: i64, bytes: &[u8]) -> Result<(), SyncError> {
        self.0.push((number, bytes.to_vec()));
        Ok(())
    }
    fn list(&mut self, _: &Vector, _: usize) -> Result<Vec<Listed>, SyncError> {
        Ok(Vec::new())
    }
    fn fetch(&mut self, _: &str, _: i64) -> Result<Vec<u8>, SyncError> {
        Err(SyncError::Damaged)
    }
    fn epochs(&mut self, _: u32) -> Result<Vec<Vec<u8>>, SyncError> {
        Ok(Vec::new())
    }
    fn put_epoch(&mut self, _: u32, _: &[u8]) -> Result<(), SyncError> {
        Ok(())
    }
    fn revoke(&mut self, _: &str) -> Result<i64, SyncError> {
        Ok(0)
    }
}

/// One laptop, ready: its device, its signing identity, its sealed batches.
struct Laptop {
    device: String,
    /// Taken by the thread that plays this laptop.
    signer: Option<Identity>,
    batches: Vec<(i64, Vec<u8>)>,
    changes: i64,
}

fn laptops(hub: &Running, n: usize, changes: i64) -> (Vec<tempfile::TempDir>, Vec<Laptop>) {
    let (dirs, stores) = support::laptops::organisation(hub, n);
    let mut out = Vec::new();
    for (i, mut store) in stores.into_iter().enumerate() {
        let mut rec = Recorder::default();
        let mut made = 0;
        let mut seed = (i as u64) << 32;
        while made < changes {
            // About 100 changes a batch: a few intakes between two syncs.
            while store.hub_waiting().unwrap().0 < 100 {
                store.create_case(amparo::sample::generated(seed), None).unwrap();
                seed += 1;
            }
            made += store.hub_waiting().unwrap().0;
            store.hub_sync(&mut rec, &mut |_, _| {}).unwrap();
        }
        let device = store.session().device_id.clone();
        out.push(Laptop { device, signer: Some(store.hub_signer().unwrap()), batches: rec.0, changes: made });
    }
    (dirs, out)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Peak resident memory of a process, in MiB (`VmHWM`).
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    (kb / 1024.0 * 10.0).round() / 10.0
}

/// Every laptop at once: push each of its batches, and after each, pull what
/// the hub has that it lacks. Returns push and sync times, and the wall time.
fn run_hub(hub: &Running, laptops: &mut [Laptop]) -> (Vec<Duration>, Vec<Duration>, Duration, usize) {
    let started = Instant::now();
    let results: Vec<(Vec<Duration>, Vec<Duration>, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = laptops
            .iter_mut()
            .map(|l| {
                scope.spawn(move || {
                    let signer = l.signer.take().expect("each laptop is played once");
                    let mut c = HubClient::new(&hub.url, &hub.fingerprint, &l.device, signer);
                    let (mut pushes, mut syncs, mut pulled) = (Vec::new(), Vec::new(), 0);
                    let mut since = Vector::new();
                    for (number, bytes) in &l.batches {
                        let t = Instant::now();
                        c.push(*number, bytes).unwrap();
                        pushes.push(t.elapsed());
                        since.insert(l.device.clone(), *number);
                        loop {
                            let page = c.list(&since, PAGE).unwrap();
                            if page.is_empty() {
                                break;
                            }
                            let mut rest = &page[..];
                            while !rest.is_empty() {
                                let got = c.fetch_many(rest).unwrap();
                                for (b, bytes) in rest.iter().zip(&got) {
                                    assert_eq!(sha256_hex(bytes), b.sha256, "a batch changed on the way");
                                    let held = since.entry(b.device.clone()).or_insert(0);
                                    *held = (*held).max(b.number);
                                    pulled += 1;
                                }
                                rest = &rest[got.len()..];
                            }
                        }
                        syncs.push(t.elapsed());
                    }
                    (pushes, syncs, pulled)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let wall = started.elapsed();
    let mut pushes: Vec<Duration> = results.iter().flat_map(|r| r.0.clone()).collect();
    let mut syncs: Vec<Duration> = results.iter().flat_map(|r| r.1.clone()).collect();
    pushes.sort();
    syncs.sort();
    (pushes, syncs, wall, results.iter().map(|r| r.2).sum())
}

/// The same bytes into a plain table of the same database, one transaction each.
fn raw_insert(insert: &mut dyn FnMut(&str, i64, &[u8]), laptops: &[Laptop]) -> (Vec<Duration>, Duration) {
    let started = Instant::now();
    let mut times = Vec::new();
    // Round-robin, as they arrive at the hub.
    let rounds = laptops.iter().map(|l| l.batches.len()).max().unwrap_or(0);
    for r in 0..rounds {
        for l in laptops {
            if let Some((number, bytes)) = l.batches.get(r) {
                let t = Instant::now();
                insert(&l.device, *number, bytes);
                times.push(t.elapsed());
            }
        }
    }
    times.sort();
    (times, started.elapsed())
}

fn bench(backend: &str, database: Option<String>, n: usize, changes: i64) -> serde_json::Value {
    let data = tempfile::tempdir().unwrap();
    let hub = Running::start(data.path(), database.as_deref());
    eprintln!("{backend}: preparing {n} laptops of {changes} changes…");
    let (_dirs, mut laptops) = laptops(&hub, n, changes);
    let batches: usize = laptops.iter().map(|l| l.batches.len()).sum();
    let bytes: usize = laptops.iter().flat_map(|l| l.batches.iter().map(|b| b.1.len())).sum();
    let total_changes: i64 = laptops.iter().map(|l| l.changes).sum();

    let (pushes, syncs, wall, pulled) = run_hub(&hub, &mut laptops);
    let rss = peak_rss_mib(hub.pid());

    // The baseline, in the same database the hub just filled.
    let (raw, raw_wall) = match &database {
        None => {
            let conn = rusqlite::Connection::open(data.path().join("hub.sqlite")).unwrap();
            conn.busy_timeout(Duration::from_secs(10)).unwrap();
            conn.pragma_update(None, "journal_mode", "WAL").unwrap();
            conn.pragma_update(None, "synchronous", "FULL").unwrap();
            conn.execute_batch("CREATE TABLE raw_batches (device TEXT NOT NULL, number INTEGER NOT NULL, bytes BLOB NOT NULL, PRIMARY KEY (device, number))").unwrap();
            let mut insert = |device: &str, number: i64, bytes: &[u8]| {
                let tx = conn.unchecked_transaction().unwrap();
                tx.execute(
                    "INSERT INTO raw_batches (device, number, bytes) VALUES (?1, ?2, ?3)",
                    rusqlite::params![device, number, bytes],
                )
                .unwrap();
                tx.commit().unwrap();
            };
            raw_insert(&mut insert, &laptops)
        }
        Some(url) => {
            let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
            c.batch_execute("CREATE TABLE raw_batches (device TEXT NOT NULL, number BIGINT NOT NULL, bytes BYTEA NOT NULL, PRIMARY KEY (device, number))").unwrap();
            let mut insert = |device: &str, number: i64, bytes: &[u8]| {
                let mut tx = c.transaction().unwrap();
                tx.execute(
                    "INSERT INTO raw_batches (device, number, bytes) VALUES ($1, $2, $3)",
                    &[&device, &number, &bytes],
                )
                .unwrap();
                tx.commit().unwrap();
            };
            raw_insert(&mut insert, &laptops)
        }
    };
    let hub_rate = batches as f64 / wall.as_secs_f64();
    let raw_rate = batches as f64 / raw_wall.as_secs_f64();
    let result = json!({
        "backend": backend,
        "laptops": n,
        "changes": total_changes,
        "batches": batches,
        "mib_pushed": (bytes as f64 / 1048576.0 * 10.0).round() / 10.0,
        "batches_pulled": pulled,
        "wall_s": (wall.as_secs_f64() * 100.0).round() / 100.0,
        "push_ms": { "p50": ms(pct(&pushes, 0.5)), "p99": ms(pct(&pushes, 0.99)), "samples": pushes.len() },
        "sync_ms": { "p50": ms(pct(&syncs, 0.5)), "p99": ms(pct(&syncs, 0.99)), "samples": syncs.len() },
        "raw_insert_ms": { "p50": ms(pct(&raw, 0.5)), "p99": ms(pct(&raw, 0.99)), "samples": raw.len() },
        "batches_per_s": { "hub_while_pulling": hub_rate.round(), "raw_insert": raw_rate.round() },
        "push_p50_vs_raw_insert_p50": (pct(&pushes, 0.5).as_secs_f64() / pct(&raw, 0.5).as_secs_f64() * 100.0).round() / 100.0,
        "hub_peak_rss_mib": rss,
    });
    eprintln!("{}", serde_json::to_string_pretty(&result).unwrap());
    result
}

fn main() {
    let n = env_or("AMPARO_BENCH_LAPTOPS", 50);
    let changes = env_or("AMPARO_BENCH_CHANGES", 2000) as i64;
    let sqlite = bench("sqlite", None, n, changes);
    let pg = bench("postgres", Some(support::postgres::fresh_database()), n, changes);
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../artifacts");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("bench-hub.json"), serde_json::to_vec_pretty(&json!([sqlite, pg])).unwrap()).unwrap();
}
