//! The rules of Amparo's core, as pure functions over the case JSON: what a save
//! must satisfy and what it derives, and when personal details may leave the
//! organisation.
//!
//! - [`intake`]: a case's normalisation, validation against the form definition,
//!   assignment of typed values (`people.0.alias=Rosa`) and derived values;
//! - [`consent`]: the sharing gate every path that shares personal details asks.
//!
//! Rules sit on the vocabulary (codes, form, strings) and on nothing else: no
//! database, no files, no clock but the `today` they are given.

// Within this crate the vocabulary is reached as `crate::form` and `crate::i18n`.
#[cfg(test)]
use amparo_vocabulary::sample;
use amparo_vocabulary::{form, i18n};

pub mod consent;
pub mod intake;
