//! amparo-hub: stores and forwards the sealed, signed sync batches of an
//! organisation's laptops (`docs/hub.md`). It never holds a key that opens a
//! batch, a name or case text: merging stays on the laptops.

pub mod auth;
pub mod client;
pub mod laptop;
pub mod run;
pub mod server;
pub mod store;
pub mod wire;
