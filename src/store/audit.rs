//! The audit trail for the person unlocked: recording what they do, and reading
//! and checking the trail (supervisors).

use super::{Store, StoreError};
use crate::repositories::audit::*;
use crate::repositories::users::Role;
use serde_json::Value;

impl Store {
    /// Record something that is not itself a write of the store (a view, a print, a
    /// lock, an export), in a transaction of its own.
    pub fn record(&self, action: Action, case_id: Option<&str>, detail: Value) -> Result<(), StoreError> {
        let tx = crate::database::write_tx(&self.conn)?;
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
        let own = (self.session.device_id.as_str(), self.session.device_code.as_str());
        Ok(list(&self.conn, q, own)?)
    }
}
