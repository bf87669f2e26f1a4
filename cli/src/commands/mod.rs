//! One module per subcommand, each with its arguments and its `run`.

pub mod audit;
pub mod conflicts;
pub mod directory;
pub mod export;
pub mod htcds;
pub mod hub;
pub mod import;
pub mod info;
pub mod init;
pub mod list;
pub mod org;
pub mod policy;
pub mod purge;
pub mod recover;
pub mod recovery_key;
pub mod report;
pub mod set;
pub mod share;
pub mod show;
pub mod sync;
pub mod user;
