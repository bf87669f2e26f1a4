//! `amparo sync`: bundles of changes to and from the organisation's other laptops.

use crate::output::{describe, file_failure, locale, say, write_file, Failure, Output};
use crate::unlock::open;
use amparo::i18n::{self, tr};
use amparo::store::StoreError;
use clap::Subcommand;
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum SyncCommand {
    /// Write an encrypted bundle with every change the other laptops may not have.
    Export {
        #[arg(long)]
        out: PathBuf,
        /// Every change this laptop holds (for a laptop never synced with).
        #[arg(long)]
        all: bool,
    },
    /// Merge bundles from other laptops (any order, any number of times).
    Import {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// What this laptop has not exported, and what it last got from each other one.
    Status,
    /// Through the hub: send what this laptop made, then receive what it lacks.
    Now,
}

pub fn run(command: SyncCommand, out: &mut Output) -> Result<(), Failure> {
    let l = locale();
    let mut store = open()?;
    match command {
        SyncCommand::Export { out: path, all } => {
            // The cases stop saying "not yet exported" only once the file is there.
            let mut failed = None;
            let s = store
                .sync_export(all, |bytes| {
                    write_file(&path, bytes).map_err(|f| {
                        failed = Some(f);
                        // Replaced by the file's own message below.
                        StoreError::from(std::io::Error::other("the bundle was not written"))
                    })
                })
                .map_err(|e| failed.take().unwrap_or_else(|| e.into()))?;
            let args = [
                ("changes", s.changes.to_string()),
                ("cases", s.cases.to_string()),
                ("path", path.display().to_string()),
            ];
            out.line(say("cli.sync_exported", &args));
        }
        SyncCommand::Import { files } => {
            let interactive = std::io::stderr().is_terminal();
            for f in files {
                let bytes = std::fs::read(&f).map_err(|e| file_failure(&f, &e))?;
                let mut progress = |done: usize, total: usize| {
                    if interactive {
                        let args = [("done", done.to_string()), ("total", total.to_string())];
                        eprint!("\r{}", tr(l, "cli.sync_progress", &args));
                    }
                };
                let s = store
                    .sync_import(&bytes, &mut progress)
                    .map_err(|e| Failure(format!("{}: {}", f.display(), describe(&e))))?;
                if interactive {
                    eprint!("\r");
                }
                let args = [
                    ("device", s.device_code),
                    ("new", s.new_cases.to_string()),
                    ("updated", s.updated_cases.to_string()),
                    ("removed", s.removed_cases.to_string()),
                    ("conflicts", s.conflicts.to_string()),
                ];
                out.line(say("cli.sync_imported", &args));
                if s.directory_entries > 0 {
                    out.line(say("sync.directory_updated", &[("count", s.directory_entries.to_string())]));
                }
            }
        }
        SyncCommand::Now => super::hub::sync_now(&mut store, out)?,
        SyncCommand::Status => {
            let st = store.sync_status()?;
            let args = [("device", st.device_code), ("count", st.unexported_changes.to_string())];
            out.line(say("cli.sync_status.device", &args));
            if let Some(hub) = store.hub_settings()? {
                let (changes, batches) = store.hub_waiting()?;
                let args = [("url", hub.url), ("changes", changes.to_string()), ("batches", batches.to_string())];
                out.line(say("cli.sync_status.hub", &args));
            }
            if st.peers.is_empty() {
                out.line(i18n::t(l, "cli.sync_status.no_peers"));
            }
            for p in st.peers {
                let args = [
                    ("device", p.device_code),
                    ("written", p.bundle_written_at),
                    ("imported", p.imported_at),
                    ("changes", p.changes_held.to_string()),
                ];
                out.line(say("cli.sync_status.peer", &args));
            }
        }
    }
    Ok(())
}
