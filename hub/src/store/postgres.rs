//! The PostgreSQL backend, for organisations that outgrow one box:
//! `amparo-hub serve --database postgres://…`.

use super::*;
use ::postgres::{Client, GenericClient, NoTls, Row, Transaction};
use std::sync::Mutex;

/// A few connections, reused. Each method takes one for the length of its
/// transaction, so pushes from many laptops commit in parallel.
pub struct PostgresStore {
    url: String,
    idle: Mutex<Vec<Client>>,
}

/// Unique violation: two writers raced for the same row.
const UNIQUE_VIOLATION: &str = "23505";

const DEVICE_COLUMNS: &str = "id, org, code, sign_key, kx_key, admin, enrolled_at, last_seen, revoked_at";

fn device_row(r: &Row) -> Result<Device, StoreError> {
    let bad = |_| StoreError::Damaged { table: "devices" };
    Ok(Device {
        id: r.try_get(0).map_err(bad)?,
        org: r.try_get(1).map_err(bad)?,
        code: r.try_get(2).map_err(bad)?,
        sign_key: r.try_get(3).map_err(bad)?,
        kx_key: r.try_get(4).map_err(bad)?,
        admin: r.try_get(5).map_err(bad)?,
        enrolled_at: r.try_get(6).map_err(bad)?,
        last_seen: r.try_get(7).map_err(bad)?,
        revoked_at: r.try_get(8).map_err(bad)?,
    })
}

fn get<'a, T: ::postgres::types::FromSql<'a>>(r: &'a Row, i: usize, table: &'static str) -> Result<T, StoreError> {
    r.try_get(i).map_err(|_| StoreError::Damaged { table })
}

fn insert_device(tx: &mut Transaction, org: &str, d: &Device) -> Result<(), StoreError> {
    let taken = tx.query_opt("SELECT 1 FROM devices WHERE org = $1 AND code = $2", &[&org, &d.code])?.is_some();
    if taken {
        return Err(StoreError::DeviceCodeTaken { code: d.code.clone() });
    }
    if tx.query_opt("SELECT 1 FROM devices WHERE id = $1", &[&d.id])?.is_some() {
        return Err(StoreError::DeviceTaken);
    }
    let sql = format!("INSERT INTO devices ({DEVICE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL)");
    match tx.execute(&sql, &[&d.id, &org, &d.code, &d.sign_key, &d.kx_key, &d.admin, &d.enrolled_at]) {
        Ok(_) => Ok(()),
        // A laptop enrolling with the same code at the same moment.
        Err(e) if e.code().map(|c| c.code()) == Some(UNIQUE_VIOLATION) => {
            Err(StoreError::DeviceCodeTaken { code: d.code.clone() })
        }
        Err(e) => Err(e.into()),
    }
}

impl PostgresStore {
    /// Connect to `url` and make the schema if it is not there.
    pub fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        let store = PostgresStore { url: url.to_string(), idle: Mutex::new(Vec::new()) };
        store.with(|c| {
            // Two hubs starting at once on one database must not both create it.
            let mut tx = c.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock(727272)", &[])?;
            tx.batch_execute(&schema("BYTEA", "BIGSERIAL PRIMARY KEY"))?;
            tx.commit()?;
            Ok(())
        })?;
        Ok(store)
    }

    /// Run `f` on a pooled connection. A connection that failed is dropped, not
    /// returned to the pool.
    fn with<T>(&self, f: impl FnOnce(&mut Client) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut client = match pooled {
            Some(c) if !c.is_closed() => c,
            _ => Client::connect(&self.url, NoTls)?,
        };
        let out = f(&mut client);
        if !client.is_closed() && !matches!(out, Err(StoreError::Backend(_))) {
            self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(client);
        }
        out
    }

    fn write<T>(&self, f: impl FnOnce(&mut Transaction) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            let out = f(&mut tx)?;
            tx.commit()?;
            Ok(out)
        })
    }

    /// The same, for what may be lost at a crash (a nonce, when a device was last
    /// seen): committed without waiting for the WAL flush, which keeps the order,
    /// so the next batch acknowledged makes these durable too.
    fn light<T>(&self, f: impl FnOnce(&mut Transaction) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.write(|tx| {
            tx.batch_execute("SET LOCAL synchronous_commit TO OFF")?;
            f(tx)
        })
    }
}

impl HubStore for PostgresStore {
    fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.with(|c| match c.query_opt("SELECT value FROM meta WHERE key = $1", &[&key])? {
            Some(r) => Ok(Some(get(&r, 0, "meta")?)),
            None => Ok(None),
        })
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&key, &value],
            )?;
            Ok(())
        })
    }

    fn register_org(&self, setup_hash: &str, org: &str, first: &Device) -> Result<(), StoreError> {
        self.write(|tx| {
            let spent = tx.execute("DELETE FROM meta WHERE key = 'setup_code' AND value = $1", &[&setup_hash])?;
            if spent != 1 {
                return Err(StoreError::SetupCode);
            }
            tx.execute("INSERT INTO orgs (id, created_at) VALUES ($1, $2)", &[&org, &first.enrolled_at])?;
            insert_device(tx, org, first)
        })
    }

    fn add_invitation(&self, org: &str, token_hash: &str, created_by: &str, expires_at: i64) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO invitations (token_hash, org, created_by, expires_at) VALUES ($1, $2, $3, $4)",
                &[&token_hash, &org, &created_by, &expires_at],
            )?;
            Ok(())
        })
    }

    fn enrol(&self, token_hash: &str, device: &Device, now: i64) -> Result<Device, StoreError> {
        self.write(|tx| {
            // FOR UPDATE: two laptops with the same token, one wins.
            let row = tx
                .query_opt(
                    "SELECT org, expires_at, used_at FROM invitations WHERE token_hash = $1 FOR UPDATE",
                    &[&token_hash],
                )?
                .ok_or(StoreError::TokenUnknown)?;
            let org: String = get(&row, 0, "invitations")?;
            let expires_at: i64 = get(&row, 1, "invitations")?;
            let used_at: Option<i64> = get(&row, 2, "invitations")?;
            if used_at.is_some() {
                return Err(StoreError::TokenUsed);
            }
            if now >= expires_at {
                return Err(StoreError::TokenExpired);
            }
            insert_device(tx, &org, device)?;
            tx.execute(
                "UPDATE invitations SET used_at = $2, used_by = $3 WHERE token_hash = $1",
                &[&token_hash, &now, &device.id],
            )?;
            Ok(Device { org, ..device.clone() })
        })
    }

    fn device(&self, id: &str) -> Result<Option<Device>, StoreError> {
        self.with(|c| {
            let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1");
            c.query_opt(&sql, &[&id])?.as_ref().map(device_row).transpose()
        })
    }

    fn devices(&self, org: &str) -> Result<Vec<Device>, StoreError> {
        self.with(|c| {
            let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE org = $1 ORDER BY code");
            c.query(&sql, &[&org])?.iter().map(device_row).collect()
        })
    }

    fn revoke(&self, org: &str, id: &str, now: i64) -> Result<bool, StoreError> {
        self.with(|c| {
            let n = c.execute(
                "UPDATE devices SET revoked_at = coalesce(revoked_at, $3) WHERE org = $1 AND id = $2",
                &[&org, &id, &now],
            )?;
            Ok(n == 1)
        })
    }

    fn seen(&self, id: &str, now: i64) -> Result<(), StoreError> {
        self.light(|tx| {
            tx.execute("UPDATE devices SET last_seen = $2 WHERE id = $1", &[&id, &now])?;
            Ok(())
        })
    }

    fn put_batch(&self, org: &str, info: &BatchInfo, bytes: &[u8], now: i64) -> Result<Put, StoreError> {
        self.write(|tx| {
            // One push per device at a time: its numbers follow each other.
            tx.execute("SELECT 1 FROM devices WHERE id = $1 FOR UPDATE", &[&info.device])?;
            let held = tx
                .query_opt(
                    "SELECT sha256 FROM batches WHERE device = $1 AND number = $2",
                    &[&info.device, &info.number],
                )?
                .map(|r| get::<String>(&r, 0, "batches"))
                .transpose()?;
            let row =
                tx.query_one("SELECT coalesce(max(number), 0) FROM batches WHERE device = $1", &[&info.device])?;
            let last: i64 = get(&row, 0, "batches")?;
            if let Some(done) = judge_put(info, last, held.as_deref())? {
                return Ok(done);
            }
            tx.execute(
                "INSERT INTO batches (org, device, number, epoch, sha256, len, bytes, received_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[&org, &info.device, &info.number, &info.epoch, &info.sha256, &info.len, &bytes, &now],
            )?;
            Ok(Put::Stored)
        })
    }

    fn vector(&self, org: &str) -> Result<Vector, StoreError> {
        self.with(|c| vector_of(c, org))
    }

    fn batches_since(&self, org: &str, since: &Vector, limit: usize) -> Result<Vec<BatchInfo>, StoreError> {
        self.with(|c| {
            let held = vector_of(c, org)?;
            let st = c.prepare(
                "SELECT device, number, epoch, sha256, len FROM batches
                 WHERE device = $1 AND number > $2 ORDER BY number LIMIT $3",
            )?;
            let mut out = Vec::new();
            for (device, last) in held {
                let from = since.get(&device).copied().unwrap_or(0);
                if last <= from || out.len() >= limit {
                    continue;
                }
                let left = i64::try_from(limit - out.len()).unwrap_or(i64::MAX);
                for r in c.query(&st, &[&device, &from, &left])? {
                    out.push(BatchInfo {
                        device: get(&r, 0, "batches")?,
                        number: get(&r, 1, "batches")?,
                        epoch: get(&r, 2, "batches")?,
                        sha256: get(&r, 3, "batches")?,
                        len: get(&r, 4, "batches")?,
                    });
                }
            }
            Ok(out)
        })
    }

    fn batch(&self, org: &str, device: &str, number: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(|c| {
            c.query_opt(
                "SELECT bytes FROM batches WHERE org = $1 AND device = $2 AND number = $3",
                &[&org, &device, &number],
            )?
            .map(|r| get(&r, 0, "batches"))
            .transpose()
        })
    }

    fn put_epoch(&self, org: &str, number: i64, bytes: &[u8], now: i64) -> Result<Put, StoreError> {
        self.write(|tx| {
            tx.execute("SELECT 1 FROM orgs WHERE id = $1 FOR UPDATE", &[&org])?;
            let held = tx
                .query_opt("SELECT bytes FROM epochs WHERE org = $1 AND number = $2", &[&org, &number])?
                .map(|r| get::<Vec<u8>>(&r, 0, "epochs"))
                .transpose()?;
            let row = tx.query_one("SELECT coalesce(max(number), 0) FROM epochs WHERE org = $1", &[&org])?;
            let last: i64 = get(&row, 0, "epochs")?;
            if let Some(done) = judge_epoch(number, last, held.as_deref(), bytes)? {
                return Ok(done);
            }
            tx.execute(
                "INSERT INTO epochs (org, number, bytes, created_at) VALUES ($1, $2, $3, $4)",
                &[&org, &number, &bytes, &now],
            )?;
            Ok(Put::Stored)
        })
    }

    fn epochs(&self, org: &str) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        self.with(|c| {
            c.query("SELECT number, bytes FROM epochs WHERE org = $1 ORDER BY number", &[&org])?
                .iter()
                .map(|r| Ok((get(r, 0, "epochs")?, get(r, 1, "epochs")?)))
                .collect()
        })
    }

    fn use_nonce(&self, device: &str, nonce: &str, now: i64, forget_before: i64) -> Result<bool, StoreError> {
        self.light(|tx| {
            tx.execute("DELETE FROM nonces WHERE at < $1", &[&forget_before])?;
            let n = tx.execute(
                "INSERT INTO nonces (device, nonce, at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&device, &nonce, &now],
            )?;
            Ok(n == 1)
        })
    }

    fn stats(&self) -> Result<Stats, StoreError> {
        self.with(|c| {
            let r = c.query_one(
                "SELECT (SELECT count(*) FROM orgs), (SELECT count(*) FROM devices),
                        (SELECT count(*) FROM devices WHERE revoked_at IS NOT NULL),
                        (SELECT count(*) FROM batches), (SELECT coalesce(sum(len), 0)::BIGINT FROM batches)",
                &[],
            )?;
            Ok(Stats {
                orgs: get(&r, 0, "batches")?,
                devices: get(&r, 1, "batches")?,
                revoked_devices: get(&r, 2, "batches")?,
                batches: get(&r, 3, "batches")?,
                bytes: get(&r, 4, "batches")?,
            })
        })
    }
}

fn vector_of(c: &mut impl GenericClient, org: &str) -> Result<Vector, StoreError> {
    c.query("SELECT device, max(number) FROM batches WHERE org = $1 GROUP BY device", &[&org])?
        .iter()
        .map(|r| Ok((get(r, 0, "batches")?, get(r, 1, "batches")?)))
        .collect()
}
