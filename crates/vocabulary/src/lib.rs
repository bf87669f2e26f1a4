//! The bottom layer of Amparo's core: what things are called, as pure data.
//!
//! - [`form`]: the intake form (sections, fields, kinds, skip logic) and its
//!   [`form::codes`], the language-neutral values stored everywhere;
//! - [`i18n`]: every user-visible string, in English and Spanish, from `locales/`;
//! - [`sample`]: invented cases for tests, benchmarks and demos.
//!
//! Nothing here reads a file, a clock or a database, and nothing here depends on
//! another Amparo crate: every other layer may use it, it uses none of them.

// The locale tables are compiled in; `i18n` is the way in.
rust_i18n::i18n!("../../locales");

pub mod form;
pub mod i18n;
pub mod sample;

pub use i18n::Localized;
