//! The default backend: one SQLite file in the hub's data folder.

use super::*;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

/// One connection behind a lock: SQLite has one writer anyway, and a push is a
/// few page writes, so readers queueing behind it wait microseconds.
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

const DEVICE_COLUMNS: &str = "id, org, code, sign_key, kx_key, admin, enrolled_at, last_seen, revoked_at";

fn device_row(r: &rusqlite::Row) -> rusqlite::Result<Device> {
    Ok(Device {
        id: r.get(0)?,
        org: r.get(1)?,
        code: r.get(2)?,
        sign_key: r.get(3)?,
        kx_key: r.get(4)?,
        admin: r.get(5)?,
        enrolled_at: r.get(6)?,
        last_seen: r.get(7)?,
        revoked_at: r.get(8)?,
    })
}

fn insert_device(conn: &Connection, org: &str, d: &Device) -> Result<(), StoreError> {
    let taken: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM devices WHERE org = ?1 AND code = ?2)",
        params![org, d.code],
        |r| r.get(0),
    )?;
    if taken {
        return Err(StoreError::DeviceCodeTaken { code: d.code.clone() });
    }
    let exists: bool = conn.query_row("SELECT EXISTS (SELECT 1 FROM devices WHERE id = ?1)", [&d.id], |r| r.get(0))?;
    if exists {
        return Err(StoreError::DeviceTaken);
    }
    conn.execute(
        &format!("INSERT INTO devices ({DEVICE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, NULL)"),
        params![d.id, org, d.code, d.sign_key, d.kx_key, d.admin, d.enrolled_at],
    )?;
    Ok(())
}

impl SqliteStore {
    /// Open (or make) `hub.sqlite` in `dir`.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(dir.join("hub.sqlite"))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // WAL with FULL sync: a batch acknowledged is on disk, power cut or not.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(&schema("BLOB", "INTEGER PRIMARY KEY AUTOINCREMENT"))?;
        Ok(SqliteStore { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-done transaction
        // behind (SQLite rolls it back), so the connection is still good.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `f` in an immediate transaction (the write lock taken first, so two
    /// writers never deadlock upgrading), committed only if it succeeds.
    fn write<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// The same, for what may be lost at a power cut (a nonce, when a device was
    /// last seen): committed without waiting for the disk. WAL keeps the order,
    /// so the next batch acknowledged makes these durable too; what a crash can
    /// lose is only a nonce of a request whose effect was not committed either.
    fn light<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut conn = self.conn();
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let out = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })();
        conn.pragma_update(None, "synchronous", "FULL")?;
        out
    }
}

impl HubStore for SqliteStore {
    fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.conn().query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?)
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }

    fn register_org(&self, setup_hash: &str, org: &str, first: &Device) -> Result<(), StoreError> {
        self.write(|tx| {
            let spent = tx.execute("DELETE FROM meta WHERE key = 'setup_code' AND value = ?1", [setup_hash])?;
            if spent != 1 {
                return Err(StoreError::SetupCode);
            }
            tx.execute("INSERT INTO orgs (id, created_at) VALUES (?1, ?2)", params![org, first.enrolled_at])?;
            insert_device(tx, org, first)
        })
    }

    fn add_invitation(&self, org: &str, token_hash: &str, created_by: &str, expires_at: i64) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO invitations (token_hash, org, created_by, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![token_hash, org, created_by, expires_at],
        )?;
        Ok(())
    }

    fn enrol(&self, token_hash: &str, device: &Device, now: i64) -> Result<Device, StoreError> {
        self.write(|tx| {
            let token: Option<(String, i64, Option<i64>)> = tx
                .query_row(
                    "SELECT org, expires_at, used_at FROM invitations WHERE token_hash = ?1",
                    [token_hash],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let (org, expires_at, used_at) = token.ok_or(StoreError::TokenUnknown)?;
            if used_at.is_some() {
                return Err(StoreError::TokenUsed);
            }
            if now >= expires_at {
                return Err(StoreError::TokenExpired);
            }
            insert_device(tx, &org, device)?;
            tx.execute(
                "UPDATE invitations SET used_at = ?2, used_by = ?3 WHERE token_hash = ?1",
                params![token_hash, now, device.id],
            )?;
            Ok(Device { org, ..device.clone() })
        })
    }

    fn device(&self, id: &str) -> Result<Option<Device>, StoreError> {
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = ?1");
        Ok(self.conn().query_row(&sql, [id], device_row).optional()?)
    }

    fn devices(&self, org: &str) -> Result<Vec<Device>, StoreError> {
        let conn = self.conn();
        let mut st =
            conn.prepare_cached(&format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE org = ?1 ORDER BY code"))?;
        let rows = st.query_map([org], device_row)?.collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn revoke(&self, org: &str, id: &str, now: i64) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "UPDATE devices SET revoked_at = coalesce(revoked_at, ?3) WHERE org = ?1 AND id = ?2",
            params![org, id, now],
        )?;
        Ok(n == 1)
    }

    fn seen(&self, id: &str, now: i64) -> Result<(), StoreError> {
        self.light(|c| {
            c.execute("UPDATE devices SET last_seen = ?2 WHERE id = ?1", params![id, now])?;
            Ok(())
        })
    }

    fn put_batch(&self, org: &str, info: &BatchInfo, bytes: &[u8], now: i64) -> Result<Put, StoreError> {
        self.write(|tx| {
            let held: Option<String> = tx
                .query_row(
                    "SELECT sha256 FROM batches WHERE device = ?1 AND number = ?2",
                    params![info.device, info.number],
                    |r| r.get(0),
                )
                .optional()?;
            let last: i64 =
                tx.query_row("SELECT coalesce(max(number), 0) FROM batches WHERE device = ?1", [&info.device], |r| {
                    r.get(0)
                })?;
            if let Some(done) = judge_put(info, last, held.as_deref())? {
                return Ok(done);
            }
            tx.execute(
                "INSERT INTO batches (org, device, number, epoch, sha256, len, bytes, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![org, info.device, info.number, info.epoch, info.sha256, info.len, bytes, now],
            )?;
            Ok(Put::Stored)
        })
    }

    fn vector(&self, org: &str) -> Result<Vector, StoreError> {
        let conn = self.conn();
        let mut st = conn.prepare_cached("SELECT device, max(number) FROM batches WHERE org = ?1 GROUP BY device")?;
        let v = st.query_map([org], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vector, _>>()?;
        Ok(v)
    }

    fn batches_since(&self, org: &str, since: &Vector, limit: usize) -> Result<Vec<BatchInfo>, StoreError> {
        let held = self.vector(org)?;
        let conn = self.conn();
        let mut st = conn.prepare_cached(
            "SELECT device, number, epoch, sha256, len FROM batches
             WHERE device = ?1 AND number > ?2 ORDER BY number LIMIT ?3",
        )?;
        let mut out = Vec::new();
        for (device, last) in held {
            let from = since.get(&device).copied().unwrap_or(0);
            if last <= from || out.len() >= limit {
                continue;
            }
            let left = i64::try_from(limit - out.len()).unwrap_or(i64::MAX);
            let rows = st.query_map(params![device, from, left], |r| {
                Ok(BatchInfo {
                    device: r.get(0)?,
                    number: r.get(1)?,
                    epoch: r.get(2)?,
                    sha256: r.get(3)?,
                    len: r.get(4)?,
                })
            })?;
            for row in rows {
                out.push(row?);
            }
        }
        Ok(out)
    }

    fn batch(&self, org: &str, device: &str, number: i64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT bytes FROM batches WHERE org = ?1 AND device = ?2 AND number = ?3",
                params![org, device, number],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn put_epoch(&self, org: &str, number: i64, bytes: &[u8], now: i64) -> Result<Put, StoreError> {
        self.write(|tx| {
            let held: Option<Vec<u8>> = tx
                .query_row("SELECT bytes FROM epochs WHERE org = ?1 AND number = ?2", params![org, number], |r| {
                    r.get(0)
                })
                .optional()?;
            let last: i64 =
                tx.query_row("SELECT coalesce(max(number), 0) FROM epochs WHERE org = ?1", [org], |r| r.get(0))?;
            if let Some(done) = judge_epoch(number, last, held.as_deref(), bytes)? {
                return Ok(done);
            }
            tx.execute(
                "INSERT INTO epochs (org, number, bytes, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![org, number, bytes, now],
            )?;
            Ok(Put::Stored)
        })
    }

    fn epochs(&self, org: &str) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        let conn = self.conn();
        let mut st = conn.prepare_cached("SELECT number, bytes FROM epochs WHERE org = ?1 ORDER BY number")?;
        let rows = st.query_map([org], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn use_nonce(&self, device: &str, nonce: &str, now: i64, forget_before: i64) -> Result<bool, StoreError> {
        self.light(|tx| {
            tx.execute("DELETE FROM nonces WHERE at < ?1", [forget_before])?;
            let n = tx.execute(
                "INSERT INTO nonces (device, nonce, at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                params![device, nonce, now],
            )?;
            Ok(n == 1)
        })
    }

    fn stats(&self) -> Result<Stats, StoreError> {
        Ok(self.conn().query_row(
            "SELECT (SELECT count(*) FROM orgs), (SELECT count(*) FROM devices),
                    (SELECT count(*) FROM devices WHERE revoked_at IS NOT NULL),
                    (SELECT count(*) FROM batches), (SELECT coalesce(sum(len), 0) FROM batches)",
            [],
            |r| {
                Ok(Stats {
                    orgs: r.get(0)?,
                    devices: r.get(1)?,
                    revoked_devices: r.get(2)?,
                    batches: r.get(3)?,
                    bytes: r.get(4)?,
                })
            },
        )?)
    }
}
