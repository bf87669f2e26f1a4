//! Amparo core: the whole domain of the app, with no GUI and no network code, in
//! layers that only use the layers below them (ARCHITECTURE.md; `tests/layers.rs`
//! fails on an upward edge or a cycle):
//!
//! 1. [`form`], [`i18n`], [`sample`]: the vocabulary, pure data (crate
//!    `amparo-vocabulary`);
//! 2. [`intake`], [`consent`]: the rules, pure functions (crate `amparo-rules`);
//! 3. [`database`]: the encrypted file, keys, migrations, `meta`, the unlock
//!    throttle and the one atomic file write;
//! 4. [`changelog`]: the change log, flat field maps and the hybrid logical clock,
//!    on a transaction the caller holds;
//! 5. [`repositories`]: the SQL of each entity (cases, directory, audit, users) and
//!    how it is rebuilt from its changes;
//! 6. [`sync`]: bundles, the organisation key, invitations, sequence vectors;
//! 7. [`store`]: the services bound to a session: the unlocked [`Store`] with its
//!    permissions, and cases, users, the audit trail, sync and the directory for
//!    the person working;
//! 8. [`referral`], [`report`], [`htcds`]: services built on the store.

// The two pure layers are crates of their own, so that the compiler keeps them free
// of the database and of each other's upper layers; the core reaches them by the
// same names it always had.
pub use amparo_rules::{consent, intake};
pub use amparo_vocabulary::{form, i18n, sample};

pub mod changelog;
pub mod database;
pub mod htcds;
pub mod referral;
pub mod report;
pub mod repositories;
pub mod store;
pub mod sync;

pub use i18n::Localized;
pub use store::{Store, StoreError};
