//! Amparo core: the whole domain of the app, with no GUI and no network code.
//!
//! - [`store`]: the SQLCipher-encrypted case store (unlock, migrations, all SQL);
//! - [`intake`]: a case's normalisation, validation and derived values;
//! - [`form`]: the intake form as data, for the UI to render;
//! - [`i18n`]: every user-visible string, in English and Spanish;
//! - [`sync`]: the change log, merge and bundles that carry changes between laptops;
//! - [`report`]: the fact-sheet report (counts only) and de-identified records;
//! - [`directory`]: the organisations survivors can be referred to;
//! - [`htcds`]: identified cases in the UN/IOM HTCDS columns, out and in.

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
