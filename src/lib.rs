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

// The locale tables are compiled in; `i18n` is the way in.
rust_i18n::i18n!("locales");

pub mod consent;
pub mod directory;
pub mod form;
pub mod htcds;
pub mod i18n;
pub mod intake;
pub mod referral;
pub mod report;
pub mod sample;
pub mod store;
pub mod sync;

pub use i18n::Localized;
pub use store::{Store, StoreError};
