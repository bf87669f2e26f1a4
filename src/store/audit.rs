//! The audit trail for the person unlocked: recording what they do, and reading
//! and checking the trail (supervisors).

use super::{Store, StoreError};
use crate::repositories::audit::*;
use crate::repositories::users::Role;
use rusqlite::params;
use serde_json::Value;

impl Store {
    /// Record something that is not itself a write of the store (a view, a print, a
    /// lock, an export), in a transaction of its own.
    pub fn record(&self, action: Action, case_id: Option<&str>, detail: Value) -> Result<(), StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        append(&tx, &self.session.device_id, Some(&self.session.user_id), action, case_id, detail, None)?;
        tx.commit()?;
        Ok(())
    }

    /// Check the whole trail (supervisors and administrators).
    pub fn verify_audit(&self) -> Result<Verification, StoreError> {
        self.require(Role::Supervisor)?;
        Ok(verify(&self.conn, &self.session.device_id, &self.session.device_code)?)
    }

    /// The trail, newest first, filtered (supervisors and administrators).
    pub fn audit_list(&self, q: &AuditQuery) -> Result<Vec<AuditRow>, StoreError> {
        self.require(Role::Supervisor)?;
        let limit = q.limit.unwrap_or(100).min(crate::repositories::cases::LIST_LIMIT_MAX) as i64;
        let offset = q.offset.unwrap_or(0) as i64;
        let blank = |s: &Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        // Whole days: `to` includes everything written on that day.
        let to = blank(&q.to).map(|d| format!("{d}T99"));
        let own_code = self.session.device_code.clone();
        let mut st = self.conn.prepare_cached(
            "SELECT a.device_seq, a.at, a.device_id, a.user_id, u.name, a.action, a.case_id, c.case_number, a.detail,
                    d.device_code
             FROM audit a
             LEFT JOIN users u ON u.id = a.user_id
             LEFT JOIN cases c ON c.id = a.case_id
             LEFT JOIN sync_devices d ON d.device_id = a.device_id
             WHERE (?1 IS NULL OR a.action = ?1)
               AND (?2 IS NULL OR a.user_id = ?2)
               AND (?3 IS NULL OR c.case_number = ?3)
               AND (?4 IS NULL OR a.at >= ?4)
               AND (?5 IS NULL OR a.at <= ?5)
             ORDER BY a.seq DESC LIMIT ?6 OFFSET ?7",
        )?;
        let rows = st
            .query_map(
                params![
                    blank(&q.action),
                    blank(&q.user_id),
                    blank(&q.case_number).map(|n| n.to_uppercase()),
                    blank(&q.from),
                    to,
                    limit,
                    offset
                ],
                |r| {
                    let device_id: String = r.get(2)?;
                    let detail: String = r.get(8)?;
                    Ok(AuditRow {
                        number: r.get(0)?,
                        at: r.get(1)?,
                        // Other laptops' entries arrive with sync, and their codes too.
                        device_code: if device_id == self.session.device_id {
                            Some(own_code.clone())
                        } else {
                            r.get(9)?
                        },
                        device_id,
                        user_id: r.get(3)?,
                        user_name: r.get(4)?,
                        action: r.get(5)?,
                        case_id: r.get(6)?,
                        case_number: r.get(7)?,
                        detail: serde_json::from_str(&detail).unwrap_or(Value::Null),
                    })
                },
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}
