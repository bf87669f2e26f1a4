//! `amparo-hub serve|status|setup-code`: see the README's "Running a hub".

use amparo_hub::{auth, run, server};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "amparo-hub",
    version,
    about = "Stores and forwards the sealed, signed sync batches of Amparo laptops"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct Where {
    /// The hub's folder: its certificate, and its database unless --database is given.
    #[arg(long, default_value = "/var/lib/amparo-hub")]
    data: PathBuf,
    /// A PostgreSQL connection string (postgres://user@host/db) instead of SQLite in --data.
    #[arg(long)]
    database: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub.
    Serve {
        #[command(flatten)]
        at: Where,
        /// Address and port to listen on.
        #[arg(long, default_value = "0.0.0.0:8443")]
        listen: String,
    },
    /// Counts of organisations, devices, batches and bytes (never a name).
    Status {
        #[command(flatten)]
        at: Where,
    },
    /// A new one-time setup code, to register another organisation.
    SetupCode {
        #[command(flatten)]
        at: Where,
    },
}

fn main() -> std::process::ExitCode {
    match go(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("amparo-hub: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn go(cli: Cli) -> Result<(), run::RunError> {
    match cli.command {
        Command::Serve { at, listen } => {
            let store = run::open_store(&at.data, at.database.as_deref())?;
            let cert = run::certificate(&at.data)?;
            let tls = run::tls(&cert)?;
            // Lines of their own, so a script can read them.
            println!("fingerprint: {}", auth::fingerprint(&cert.cert));
            if store.stats()?.orgs == 0 {
                println!("setup code: {}", run::new_setup_code(store.as_ref())?);
            }
            let runtime = tokio::runtime::Runtime::new()
                .map_err(|source| run::RunError::Listen { addr: listen.clone(), source })?;
            runtime.block_on(async {
                let listener = tokio::net::TcpListener::bind(&listen)
                    .await
                    .map_err(|source| run::RunError::Listen { addr: listen.clone(), source })?;
                let addr =
                    listener.local_addr().map_err(|source| run::RunError::Listen { addr: listen.clone(), source })?;
                println!("listening: https://{addr}");
                let _ = std::io::stdout().flush();
                let app = server::router(server::Hub { store });
                tokio::select! {
                    () = run::serve(listener, tls, app) => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
                Ok(())
            })
        }
        Command::Status { at } => {
            let store = run::open_store(&at.data, at.database.as_deref())?;
            let s = store.stats()?;
            println!("organisations: {}", s.orgs);
            println!("devices: {} ({} revoked)", s.devices, s.revoked_devices);
            println!("batches: {}", s.batches);
            println!("bytes: {}", s.bytes);
            Ok(())
        }
        Command::SetupCode { at } => {
            let store = run::open_store(&at.data, at.database.as_deref())?;
            println!("setup code: {}", run::new_setup_code(store.as_ref())?);
            Ok(())
        }
    }
}
