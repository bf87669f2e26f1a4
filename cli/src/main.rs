//! `amparo`: the administrators' and scripts' way into a store, on the same core as
//! the app. The store is the one in `AMPARO_DATA_DIR` (default: the OS data folder,
//! as for the app), unlocked by `AMPARO_PASSPHRASE` or a prompt, as the user named by
//! `AMPARO_USER` (needed when several people share the laptop), with that user's
//! rights. Messages follow the environment's language (`AMPARO_LOCALE`, `LC_ALL`,
//! `LANG`); data is printed as codes, so scripts do not depend on the language. Any
//! failure exits non-zero.

use amparo::database::keys::{KdfParams, KeyFile};
use amparo::database::{default_data_dir, files, KEY_FILE};
use amparo::i18n::{self, tr, Localized};
use amparo::intake::Issue;
use amparo::repositories::audit::{Action, AuditQuery};
use amparo::repositories::cases::ListQuery;
use amparo::repositories::users::Role;
use amparo::store::{Setup, Store, StoreError};
use clap::{Parser, Subcommand};
use std::io::{BufReader, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "amparo", version, about = "Amparo case store, from the command line")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Set up a new encrypted store in the data folder: a new organisation (--org),
    /// or a laptop joining one with an invitation (--join FILE; its one-time
    /// passphrase from AMPARO_INVITE_PASSPHRASE or a prompt).
    Init {
        #[arg(long, required_unless_present = "join", conflicts_with = "join")]
        org: Option<String>,
        /// An invitation file made with `amparo org invite`.
        #[arg(long)]
        join: Option<PathBuf>,
        #[arg(long)]
        device: String,
        #[arg(long)]
        user: String,
        /// UI language of the store (en or es).
        #[arg(long, default_value = "")]
        locale: String,
    },
    /// Import cases from a JSON Lines file (all or nothing).
    Import {
        file: PathBuf,
        /// Import the valid lines and list the others.
        #[arg(long)]
        skip_invalid: bool,
    },
    /// Export every case as JSON Lines (to standard output, or a file).
    Export {
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List cases, newest first: case number, status, intake date, alias.
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Search case numbers, names, aliases, cities and notes.
    Search { text: Vec<String> },
    /// Show one case as JSON.
    Show { case_number: String },
    /// Edit case fields: amparo set TX3-2026-0042 status=Closed people.0.alias=Rosa
    Set {
        case_number: String,
        #[arg(required = true)]
        assignments: Vec<String>,
    },
    /// Store and schema version, counts.
    Info,
    /// Manage who can unlock this store (administrators; anyone for their own
    /// passphrase).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// The audit trail (supervisors and administrators).
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// One case with its personal details, to share outside the organisation: only
    /// with the survivor's matching, unexpired consent.
    Share {
        case_number: String,
        /// referral or law-enforcement
        #[arg(long = "for")]
        sharing: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Show or change the store's policies (administrators change them).
    Policy {
        /// Lock after this many idle minutes (1 to 60).
        #[arg(long)]
        idle_minutes: Option<u32>,
        /// Keep closed cases this many months.
        #[arg(long, conflicts_with = "keep_forever")]
        retention_months: Option<u32>,
        /// Keep closed cases until someone removes them.
        #[arg(long)]
        keep_forever: bool,
    },
    /// Make a new recovery key and show it once; the old one stops working
    /// (administrators).
    RecoveryKey,
    /// Remove closed cases whose retention time is over (administrators).
    Purge {
        /// Only say how many would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// The organisation this laptop belongs to.
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// Identified cases in the UN/IOM HTCDS columns: export (only with consent to
    /// share with another organisation) and import (from the HTCDS spreadsheet).
    Htcds {
        #[command(subcommand)]
        command: HtcdsCommand,
    },
    /// The service directory: organisations survivors can be referred to.
    Directory {
        #[command(subcommand)]
        command: DirectoryCommand,
    },
    /// Exchange changes with the organisation's other laptops through bundle files.
    Sync {
        #[command(subcommand)]
        command: SyncCommand,
    },
    /// Open conflicts: values of one field written on two laptops without seeing each
    /// other (supervisors). `resolve` settles one.
    Conflicts {
        /// text or json
        #[arg(long, default_value = "text")]
        format: String,
        #[command(subcommand)]
        command: Option<ConflictsCommand>,
    },
    /// The fact sheet: cases, potential victims, venues, demographics (cases
    /// involving), nationality, recruiter relation. Counts only.
    Report {
        /// First intake date counted (YYYY-MM-DD).
        #[arg(long)]
        from: Option<String>,
        /// Last intake date counted (YYYY-MM-DD).
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        intake_channel: Option<String>,
        #[arg(long)]
        trafficking_type: Option<String>,
        /// json or csv
        #[arg(long, default_value = "json")]
        format: String,
        /// For sharing outside the organisation: counts below k become "<k".
        #[arg(long)]
        shareable: bool,
        /// The threshold k (with --shareable or --deidentified; default 11).
        #[arg(long)]
        k: Option<u32>,
        /// De-identified records for partners instead of counts (CSV): no personal
        /// detail, year-month dates, age bands, and no combination of gender, age
        /// band, nationality, venues and year shared by fewer than k people.
        #[arg(long, conflicts_with = "shareable")]
        deidentified: bool,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// A forgotten passphrase: an administrator sets a new one with the recovery key
    /// (from AMPARO_RECOVERY_KEY or a prompt).
    Recover {
        /// The administrator whose passphrase is forgotten.
        #[arg(long)]
        user: String,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Users and their roles.
    List,
    /// Add a user; their passphrase comes from AMPARO_NEW_PASSPHRASE or a prompt.
    Add {
        name: String,
        /// Caseworker, Supervisor or Administrator.
        #[arg(long, default_value = "Caseworker")]
        role: String,
    },
    /// Remove a user: their passphrase opens nothing any more.
    Remove { name: String },
    /// Change a user's role.
    Role { name: String, role: String },
    /// Set a new passphrase (AMPARO_NEW_PASSPHRASE or a prompt): your own, or, for an
    /// administrator, anyone's.
    Passwd { name: Option<String> },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Write an invitation for a new laptop and print its one-time passphrase
    /// (administrators).
    Invite {
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum SyncCommand {
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
}

#[derive(Subcommand)]
enum HtcdsCommand {
    /// Cases whose survivor consented to sharing with another organisation.
    Export {
        /// csv or json
        #[arg(long, default_value = "csv")]
        format: String,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Cases from an HTCDS CSV (all or nothing; every bad cell named).
    Import { file: PathBuf },
}

#[derive(Subcommand)]
enum DirectoryCommand {
    /// Organisations matching every word given, hotlines first.
    List {
        text: Vec<String>,
        /// A service code (Shelter, Legal, …).
        #[arg(long)]
        service: Option<String>,
        /// A country (MX, US) or a state (MX-CHH).
        #[arg(long)]
        region: Option<String>,
        /// A language code (es, en, nah, …).
        #[arg(long)]
        language: Option<String>,
        /// text or json
        #[arg(long, default_value = "text")]
        format: String,
    },
    /// Add organisations from a CSV file (all or nothing; every bad row named).
    Import { file: PathBuf },
}

#[derive(Subcommand)]
enum ConflictsCommand {
    /// Keep one of a conflict's values, or type a new one.
    Resolve {
        case_number: String,
        /// The field, as `amparo conflicts` shows it (e.g. people.0.alias).
        field: String,
        /// The value to keep, by its choice (as `amparo conflicts` shows it).
        #[arg(long, conflicts_with = "value", required_unless_present = "value")]
        keep: Option<String>,
        /// A new value, as `amparo set` takes it.
        #[arg(long)]
        value: Option<String>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain; names the first entry altered, removed or reordered.
    Verify,
    /// Entries, newest first.
    List {
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        case: Option<String>,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

/// A failure, already in the user's language.
struct Failure(String);

impl<E: Localized> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(describe(&e))
    }
}

fn locale() -> &'static str {
    i18n::system_locale()
}

fn describe(e: &dyn Localized) -> String {
    e.localized(locale())
}

fn issue_line(i: &Issue) -> String {
    let l = locale();
    let field = if i.path.is_empty() { "-".to_string() } else { i.path.clone() };
    tr(l, "cli.field_issue", &[("field", field), ("message", i.error.localized(l))])
}

/// A store error, with every field problem on its own line.
fn store_failure(e: StoreError) -> Failure {
    match &e {
        StoreError::Invalid(v) => {
            let mut lines = vec![describe(&e)];
            lines.extend(v.0.iter().map(|i| format!("  {}", issue_line(i))));
            Failure(lines.join("\n"))
        }
        _ => Failure(describe(&e)),
    }
}

fn passphrase(confirm: bool) -> Result<String, Failure> {
    secret("AMPARO_PASSPHRASE", "cli.no_passphrase", "cli.passphrase_prompt", confirm)
}

/// A secret from the environment variable `var`, or typed twice (when `confirm`)
/// at a prompt that does not echo.
fn secret(var: &str, missing: &str, prompt: &str, confirm: bool) -> Result<String, Failure> {
    let l = locale();
    if let Ok(p) = std::env::var(var) {
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure(i18n::t(l, missing)));
    }
    let read = |key: &str| rpassword::prompt_password(i18n::t(l, key)).map_err(|e| file_failure("tty", &e));
    let p = read(prompt)?;
    if confirm && read("cli.passphrase_again")? != p {
        return Err(Failure(i18n::t(l, "cli.passphrase_mismatch")));
    }
    Ok(p)
}

fn new_passphrase() -> Result<String, Failure> {
    secret("AMPARO_NEW_PASSPHRASE", "cli.no_new_passphrase", "cli.new_passphrase_prompt", true)
}

fn role(code: &str) -> Result<Role, Failure> {
    Role::parse(code).ok_or_else(|| Failure(tr(locale(), "cli.bad_role", &[("role", code.to_string())])))
}

fn file_failure(path: &str, e: &std::io::Error) -> Failure {
    Failure(tr(locale(), "cli.file_error", &[("path", path.to_string()), ("detail", e.to_string())]))
}

fn open() -> Result<Store, Failure> {
    let dir = default_data_dir();
    if !Store::exists(&dir) {
        return Err(StoreError::NotInitialized(dir).into());
    }
    let user = std::env::var("AMPARO_USER").ok().filter(|u| !u.trim().is_empty());
    // With several users, say who you are: a script must not act as whoever's
    // passphrase it happens to hold.
    if user.is_none() && KeyFile::read(&dir.join(KEY_FILE)).map_err(|e| store_failure(e.into()))?.keys.len() > 1 {
        return Err(Failure(i18n::t(locale(), "cli.user_required")));
    }
    Store::open_as(&dir, user.as_deref(), &passphrase(false)?).map_err(store_failure)
}

fn run(cli: Cli) -> Result<(), Failure> {
    let l = locale();
    let mut stdout = std::io::stdout().lock();
    let mut out = |s: String| {
        // A closed pipe (`amparo list | head`) is not an error worth reporting.
        let _ = writeln!(stdout, "{s}");
    };
    match cli.command {
        Command::Init { org, join, device, user, locale } => {
            let dir = default_data_dir();
            if Store::exists(&dir) {
                return Err(StoreError::AlreadyInitialized(dir).into());
            }
            let invitation = match &join {
                Some(f) => Some(std::fs::read(f).map_err(|e| file_failure(&f.display().to_string(), &e))?),
                None => None,
            };
            // Joining: the organisation's name comes with the invitation.
            let org = org.unwrap_or_else(|| "-".into());
            let setup = Setup { org, device_code: device, user, passphrase: String::new(), locale };
            // Check the answers before asking for a passphrase twice.
            if let Err(v) = amparo::store::validate_setup(&Setup { passphrase: "x".repeat(64), ..setup.clone() }) {
                return Err(store_failure(StoreError::Invalid(v)));
            }
            let mut store = match invitation {
                Some(inv) => {
                    let code = secret(
                        "AMPARO_INVITE_PASSPHRASE",
                        "cli.no_invite_passphrase",
                        "cli.invite_passphrase_prompt",
                        false,
                    )?;
                    // Open the invitation first: a wrong passphrase should not cost a
                    // passphrase typed twice.
                    amparo::sync::org::open_invitation(&inv, &code).map_err(|e| store_failure(e.into()))?;
                    let setup = Setup { passphrase: passphrase(true)?, ..setup };
                    let store =
                        Store::join(&dir, &inv, &code, &setup, KdfParams::for_new_store()).map_err(store_failure)?;
                    out(tr(
                        l,
                        "cli.joined",
                        &[("org", store.session().org.clone()), ("device", store.session().device_code.clone())],
                    ));
                    store
                }
                None => {
                    let setup = Setup { passphrase: passphrase(true)?, ..setup };
                    Store::create(&dir, &setup, KdfParams::for_new_store()).map_err(store_failure)?
                }
            };
            out(tr(l, "cli.created", &[("path", dir.display().to_string())]));
            if let Some(key) = store.take_recovery_key() {
                out(String::new());
                out(i18n::t(l, "recovery.intro"));
                out(format!("\n    {}\n", key.as_str()));
                out(i18n::t(l, "recovery.warning"));
            }
        }
        Command::Org { command: OrgCommand::Invite { out: path } } => {
            let store = open()?;
            let (bytes, code) = store.invite()?;
            write_file(&path, &bytes)?;
            out(tr(l, "cli.invite_written", &[("path", path.display().to_string())]));
            out(format!("\n    {}\n", code.as_str()));
        }
        Command::Sync { command } => sync_command(command, &mut out)?,
        Command::Directory { command: DirectoryCommand::List { text, service, region, language, format } } => {
            if !["text", "json"].contains(&format.as_str()) {
                return Err(Failure(tr(l, "cli.bad_format", &[("format", format)])));
            }
            let q = amparo::repositories::directory::DirectoryQuery {
                text: Some(text.join(" ")),
                service,
                region,
                language,
            };
            let entries = open()?.directory(&q)?;
            if format == "json" {
                out(serde_json::to_string_pretty(&entries).unwrap_or_default());
            } else {
                let field = |e: &amparo::repositories::directory::Entry, k: &str| {
                    let v = e.data.get(k);
                    match v {
                        Some(serde_json::Value::Array(a)) => {
                            a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(";")
                        }
                        Some(v) => v.as_str().unwrap_or_default().to_string(),
                        None => String::new(),
                    }
                };
                for e in &entries {
                    let cols = ["name", "country", "subdivision", "city", "services", "phone", "languages"];
                    out(cols.map(|c| field(e, c)).join("\t"));
                }
            }
        }
        Command::Htcds { command: HtcdsCommand::Export { format, out: path } } => {
            if !["json", "csv"].contains(&format.as_str()) {
                return Err(Failure(tr(l, "cli.bad_format", &[("format", format)])));
            }
            let export = open()?.htcds_export().map_err(store_failure)?;
            let text = if format == "csv" { export.to_csv().map_err(store_failure)? } else { export.to_json() + "\n" };
            let counts = [("cases", export.cases.to_string()), ("left_out", export.left_out.to_string())];
            eprintln!("{}", tr(l, "cli.htcds_exported", &counts));
            match path {
                Some(p) => write_file(&p, text.as_bytes())?,
                None => out(text.trim_end().to_string()),
            }
        }
        Command::Htcds { command: HtcdsCommand::Import { file } } => {
            let f = std::fs::File::open(&file).map_err(|e| file_failure(&file.display().to_string(), &e))?;
            let report = open()?.htcds_import_csv(BufReader::new(f)).map_err(store_failure)?;
            if !report.rejected.is_empty() {
                let mut lines = vec![tr(l, "cli.htcds_refused", &[("count", report.rejected.len().to_string())])];
                for c in &report.rejected {
                    let field = if c.column.is_empty() { "-".to_string() } else { c.column.clone() };
                    let args =
                        [("line", c.line.to_string()), ("field", field), ("message", c.issue.error.localized(l))];
                    lines.push(format!("  {}", tr(l, "cli.line_issue", &args)));
                }
                return Err(Failure(lines.join("\n")));
            }
            out(tr(l, "cli.imported", &[("count", report.imported.to_string())]));
        }
        Command::Directory { command: DirectoryCommand::Import { file } } => {
            let mut store = open()?;
            let report = store.import_directory_file(&file.display().to_string()).map_err(store_failure)?;
            if !report.rejected.is_empty() {
                let mut lines = vec![tr(l, "cli.directory_refused", &[("count", report.rejected.len().to_string())])];
                for row in &report.rejected {
                    for i in &row.issues {
                        let field = if i.path.is_empty() { "-".to_string() } else { i.path.clone() };
                        let args =
                            [("line", row.line.to_string()), ("field", field), ("message", i.error.localized(l))];
                        lines.push(format!("  {}", tr(l, "cli.line_issue", &args)));
                    }
                }
                return Err(Failure(lines.join("\n")));
            }
            out(tr(l, "cli.directory_imported", &[("count", report.imported.to_string())]));
        }
        Command::Report {
            from,
            to,
            status,
            intake_channel,
            trafficking_type,
            format,
            shareable,
            k,
            deidentified,
            out: path,
        } => {
            if k.is_some() && !shareable && !deidentified {
                return Err(Failure(tr(l, "cli.k_alone", &[])));
            }
            if !["json", "csv"].contains(&format.as_str()) {
                return Err(Failure(tr(l, "cli.bad_format", &[("format", format)])));
            }
            let date = |d: Option<String>| -> Result<Option<chrono::NaiveDate>, Failure> {
                d.map(|d| {
                    chrono::NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d")
                        .map_err(|_| Failure(tr(l, "cli.bad_date", &[("value", d.clone())])))
                })
                .transpose()
            };
            let q = amparo::report::ReportQuery {
                from: date(from)?,
                to: date(to)?,
                status,
                intake_channel,
                trafficking_type,
                k: (shareable || deidentified).then(|| k.unwrap_or(amparo::report::DEFAULT_K)),
            };
            let store = open()?;
            let text = if deidentified {
                let export = store.deidentified_export(&q).map_err(store_failure)?;
                let counts = [
                    ("records", export.records.to_string()),
                    ("dropped", export.dropped.to_string()),
                    ("declined", export.declined.to_string()),
                    ("k", export.k.to_string()),
                ];
                eprintln!("{}", tr(l, "cli.deidentified", &counts));
                export.csv
            } else {
                let sheet = store.fact_sheet(&q).map_err(store_failure)?;
                if format == "csv" {
                    sheet.to_csv()
                } else {
                    serde_json::to_string_pretty(&sheet).unwrap_or_default() + "\n"
                }
            };
            match path {
                Some(p) => write_file(&p, text.as_bytes())?,
                None => out(text.trim_end().to_string()),
            }
        }
        Command::Conflicts { format, command } => conflicts_command(&format, command, &mut out)?,
        Command::Import { file, skip_invalid } => {
            let f = std::fs::File::open(&file).map_err(|e| file_failure(&file.display().to_string(), &e))?;
            let mut store = open()?;
            let interactive = std::io::stderr().is_terminal();
            let mut progress = |n: usize| {
                if interactive && n % 1000 == 0 {
                    eprint!("\r{}", tr(l, "cli.progress", &[("count", n.to_string())]));
                }
            };
            let report = store.import_jsonl(BufReader::new(f), skip_invalid, &mut progress).map_err(store_failure)?;
            if interactive {
                eprint!("\r");
            }
            let line_issues = |report: &amparo::store::jsonl::ImportReport| -> Vec<String> {
                report
                    .rejected
                    .iter()
                    .flat_map(|r| {
                        r.issues.iter().map(move |i| {
                            let field = if i.path.is_empty() { "-".to_string() } else { i.path.clone() };
                            let msg = i.error.localized(l);
                            format!(
                                "  {}",
                                tr(
                                    l,
                                    "cli.line_issue",
                                    &[("line", r.line.to_string()), ("field", field), ("message", msg)]
                                )
                            )
                        })
                    })
                    .collect()
            };
            if !report.rejected.is_empty() && !skip_invalid {
                let mut lines = vec![tr(l, "cli.nothing_imported", &[("count", report.rejected.len().to_string())])];
                lines.extend(line_issues(&report));
                return Err(Failure(lines.join("\n")));
            }
            out(tr(l, "cli.imported", &[("count", report.imported.to_string())]));
            if !report.rejected.is_empty() {
                eprintln!("{}", tr(l, "cli.skipped", &[("count", report.rejected.len().to_string())]));
                for line in line_issues(&report) {
                    eprintln!("{line}");
                }
            }
        }
        Command::Export { out: path } => {
            let store = open()?;
            let n = match &path {
                // Whole or not at all, readable by its owner only.
                Some(p) => files::write_atomic_with(p, |out| store.export_jsonl(out)).map_err(store_failure)?,
                None => store.export_jsonl(std::io::stdout().lock()).map_err(store_failure)?,
            };
            eprintln!("{}", tr(l, "cli.exported", &[("count", n.to_string())]));
        }
        Command::List { status, limit } => {
            let store = open()?;
            let rows = store.list_cases(&ListQuery { status, limit: Some(limit), ..Default::default() })?;
            print_rows(&rows, &mut out);
        }
        Command::Search { text } => {
            let store = open()?;
            let rows = store.list_cases(&ListQuery { text: text.join(" "), ..Default::default() })?;
            print_rows(&rows, &mut out);
        }
        Command::Show { case_number } => {
            let store = open()?;
            let case = store.get_case_by_number(&case_number)?;
            out(serde_json::to_string_pretty(&case).unwrap_or_default());
        }
        Command::Set { case_number, assignments } => {
            let mut pairs = Vec::new();
            for a in &assignments {
                match a.split_once('=') {
                    Some((k, v)) if !k.is_empty() => pairs.push((k.trim().to_string(), v.to_string())),
                    _ => return Err(Failure(tr(l, "cli.bad_assignment", &[("arg", a.clone())]))),
                }
            }
            let mut store = open()?;
            store.set_fields(&case_number, &pairs).map_err(store_failure)?;
            out(tr(l, "cli.updated", &[("number", case_number)]));
        }
        Command::Info => {
            let store = open()?;
            let info = store.info()?;
            let rows = [
                ("cli.info.path", info.path),
                ("cli.info.schema", format!("{} / {}", info.schema_version, info.latest_schema_version)),
                ("cli.info.org", info.org),
                ("cli.info.device", info.device_code),
                ("cli.info.user", info.user),
                ("cli.info.cases", info.cases.to_string()),
                ("cli.info.people", info.people.to_string()),
                ("cli.info.notes", info.notes.to_string()),
                ("cli.info.drafts", info.drafts.to_string()),
            ];
            for (k, v) in rows {
                out(format!("{}: {v}", i18n::t(l, k)));
            }
        }
        Command::User { command } => user_command(command, &mut out)?,
        Command::Audit { command: AuditCommand::Verify } => {
            let store = open()?;
            let v = store.verify_audit()?;
            match &v.problem {
                None => out(tr(
                    l,
                    "audit.verify.ok",
                    &[("entries", v.entries.to_string()), ("devices", v.devices.to_string())],
                )),
                Some(p) => return Err(p.clone().into()),
            }
        }
        Command::Audit { command: AuditCommand::List { action, case, from, to, limit } } => {
            if let Some(a) = action.as_deref().filter(|a| Action::parse(a).is_none()) {
                return Err(Failure(tr(l, "cli.bad_action", &[("action", a.to_string())])));
            }
            let store = open()?;
            let q = AuditQuery { action, case_number: case, from, to, limit: Some(limit), ..Default::default() };
            for r in store.audit_list(&q)? {
                out(format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    r.at,
                    r.device_code.as_deref().unwrap_or(&r.device_id),
                    r.number,
                    r.user_name.as_deref().unwrap_or("-"),
                    r.action,
                    r.case_number.as_deref().or(r.case_id.as_deref()).unwrap_or("-"),
                    r.detail
                ));
            }
        }
        Command::Share { case_number, sharing, out: path } => {
            let Some(sharing) = amparo::consent::Sharing::parse(&sharing) else {
                return Err(Failure(tr(l, "cli.bad_sharing", &[("value", sharing)])));
            };
            let store = open()?;
            let id = store.case_id(&case_number)?;
            let case = store.share_case(&id, sharing)?;
            let json = serde_json::to_string_pretty(&case).unwrap_or_default();
            match path {
                Some(p) => {
                    write_file(&p, (json + "\n").as_bytes())?;
                    eprintln!("{}", tr(l, "cli.shared", &[("number", case_number), ("path", p.display().to_string())]));
                }
                None => out(json),
            }
        }
        Command::Policy { idle_minutes, retention_months, keep_forever } => {
            let mut store = open()?;
            let mut p = store.policy()?;
            if idle_minutes.is_some() || retention_months.is_some() || keep_forever {
                p.idle_lock_minutes = idle_minutes.unwrap_or(p.idle_lock_minutes);
                if keep_forever {
                    p.retention_months = None;
                } else if retention_months.is_some() {
                    p.retention_months = retention_months;
                }
                store.set_policy(&p).map_err(store_failure)?;
            }
            out(tr(l, "cli.policy.idle", &[("minutes", p.idle_lock_minutes.to_string())]));
            out(match p.retention_months {
                Some(m) => tr(l, "cli.policy.retention", &[("months", m.to_string())]),
                None => i18n::t(l, "cli.policy.keep_forever"),
            });
        }
        Command::RecoveryKey => {
            let mut store = open()?;
            let key = store.renew_recovery_key()?;
            out(i18n::t(l, "recovery.intro"));
            out(format!("\n    {}\n", key.as_str()));
            out(i18n::t(l, "recovery.warning"));
        }
        Command::Purge { dry_run } => {
            let mut store = open()?;
            let today = amparo::repositories::cases::today();
            let n = if dry_run { store.purge_candidates(today)?.len() } else { store.purge_expired(today)?.cases };
            let key = if dry_run { "cli.purge_would" } else { "cli.purged" };
            out(tr(l, key, &[("count", n.to_string())]));
        }
        Command::Recover { user } => {
            let dir = default_data_dir();
            if !Store::exists(&dir) {
                return Err(StoreError::NotInitialized(dir).into());
            }
            let key = secret("AMPARO_RECOVERY_KEY", "cli.no_recovery_key", "cli.recovery_key_prompt", false)?;
            let new = new_passphrase()?;
            let store = Store::recover(&dir, &key, &user, &new).map_err(store_failure)?;
            out(tr(l, "cli.recovered", &[("name", store.session().user_name.clone())]));
        }
    }
    Ok(())
}

fn user_command(command: UserCommand, out: &mut impl FnMut(String)) -> Result<(), Failure> {
    let l = locale();
    let mut store = open()?;
    match command {
        UserCommand::List => {
            for u in store.users()? {
                out(format!("{}\t{}\t{}", u.name, u.role.code(), u.created_at));
            }
        }
        UserCommand::Add { name, role: r } => {
            let r = role(&r)?;
            // Check the rights before asking for a passphrase twice.
            store.require(Role::Administrator)?;
            let u = store.add_user(&name, r, &new_passphrase()?).map_err(store_failure)?;
            out(tr(l, "cli.user_added", &[("name", u.name)]));
        }
        UserCommand::Remove { name } => {
            store.remove_user(&name)?;
            out(tr(l, "cli.user_removed", &[("name", name)]));
        }
        UserCommand::Role { name, role: r } => {
            store.set_role(&name, role(&r)?)?;
            out(tr(l, "cli.role_changed", &[("name", name)]));
        }
        UserCommand::Passwd { name } => {
            let n = name.clone().unwrap_or_else(|| store.session().user_name.clone());
            store.set_passphrase(name.as_deref(), &new_passphrase()?).map_err(store_failure)?;
            out(tr(l, "cli.passphrase_changed", &[("name", n)]));
        }
    }
    Ok(())
}

/// Write a whole file (see `database::files`): a failure never leaves half a file
/// under the name asked for.
fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<(), Failure> {
    files::write_atomic(path, bytes).map_err(|e| file_failure(&path.display().to_string(), &e))
}

fn sync_command(command: SyncCommand, out: &mut impl FnMut(String)) -> Result<(), Failure> {
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
                .map_err(|e| failed.take().unwrap_or_else(|| store_failure(e)))?;
            out(tr(
                l,
                "cli.sync_exported",
                &[
                    ("changes", s.changes.to_string()),
                    ("cases", s.cases.to_string()),
                    ("path", path.display().to_string()),
                ],
            ));
        }
        SyncCommand::Import { files } => {
            let interactive = std::io::stderr().is_terminal();
            for f in files {
                let bytes = std::fs::read(&f).map_err(|e| file_failure(&f.display().to_string(), &e))?;
                let mut progress = |done: usize, total: usize| {
                    if interactive {
                        let args = [("done", done.to_string()), ("total", total.to_string())];
                        eprint!("\r{}", tr(l, "cli.sync_progress", &args));
                    }
                };
                let s = store.sync_import(&bytes, &mut progress).map_err(|e| {
                    let name = f.display().to_string();
                    Failure(format!("{name}: {}", describe(&e)))
                })?;
                if interactive {
                    eprint!("\r");
                }
                out(tr(
                    l,
                    "cli.sync_imported",
                    &[
                        ("device", s.device_code),
                        ("new", s.new_cases.to_string()),
                        ("updated", s.updated_cases.to_string()),
                        ("removed", s.removed_cases.to_string()),
                        ("conflicts", s.conflicts.to_string()),
                    ],
                ));
                if s.directory_entries > 0 {
                    out(tr(l, "sync.directory_updated", &[("count", s.directory_entries.to_string())]));
                }
            }
        }
        SyncCommand::Status => {
            let st = store.sync_status()?;
            let args = [("device", st.device_code), ("count", st.unexported_changes.to_string())];
            out(tr(l, "cli.sync_status.device", &args));
            if st.peers.is_empty() {
                out(i18n::t(l, "cli.sync_status.no_peers"));
            }
            for p in st.peers {
                out(tr(
                    l,
                    "cli.sync_status.peer",
                    &[
                        ("device", p.device_code),
                        ("written", p.bundle_written_at),
                        ("imported", p.imported_at),
                        ("changes", p.changes_held.to_string()),
                    ],
                ));
            }
        }
    }
    Ok(())
}

fn conflicts_command(
    format: &str,
    command: Option<ConflictsCommand>,
    out: &mut impl FnMut(String),
) -> Result<(), Failure> {
    let l = locale();
    if !["text", "json"].contains(&format) {
        return Err(Failure(tr(l, "cli.bad_format", &[("format", format.to_string())])));
    }
    let mut store = open()?;
    match command {
        None => {
            let conflicts = store.conflicts()?;
            if format == "json" {
                out(serde_json::to_string_pretty(&conflicts).unwrap_or_default());
                return Ok(());
            }
            if conflicts.is_empty() {
                eprintln!("{}", i18n::t(l, "cli.no_conflicts"));
            }
            for c in conflicts {
                out(format!("{}\t{}", c.case_number, c.path));
                for (i, v) in c.values.iter().enumerate() {
                    let mark = if i == 0 { "*" } else { " " };
                    let who = v.user.as_deref().unwrap_or("-");
                    out(format!("  {mark} {}\t{}\t{}\t{who}\t{}", v.choice, v.value, v.device_code, v.at));
                }
            }
        }
        Some(ConflictsCommand::Resolve { case_number, field, keep, value }) => {
            let how = match (keep, value) {
                (Some(k), _) => amparo::sync::Resolution::Keep(k),
                (None, Some(v)) => amparo::sync::Resolution::Value(v),
                (None, None) => return Err(Failure(i18n::t(l, "cli.resolve_how"))),
            };
            let id = store.case_id(&case_number)?;
            let conflict = store.case_conflicts(&id)?.into_iter().find(|c| c.path == field || c.field == field);
            let Some(conflict) = conflict else { return Err(amparo::sync::SyncError::NoConflict.into()) };
            store.resolve_conflict(&id, &conflict.field, &how).map_err(store_failure)?;
            out(tr(l, "cli.conflict_resolved", &[("field", field), ("number", case_number)]));
        }
    }
    Ok(())
}

fn print_rows(rows: &[amparo::repositories::cases::CaseSummary], out: &mut impl FnMut(String)) {
    if rows.is_empty() {
        eprintln!("{}", i18n::t(locale(), "cli.no_cases"));
    }
    for r in rows {
        out(format!(
            "{}\t{}\t{}\t{}",
            r.case_number,
            r.status,
            r.intake_date.as_deref().unwrap_or("-"),
            r.alias.as_deref().unwrap_or("-")
        ));
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(msg)) => {
            eprintln!("{msg}");
            ExitCode::FAILURE
        }
    }
}
