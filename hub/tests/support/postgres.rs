//! A throwaway PostgreSQL server for the tests: its own cluster in a temporary
//! folder, on loopback, on a free port, stopped when the test process ends. The
//! Debian package provides the binaries (`scripts/setup.sh --test` installs it).
//! A test that needs it and cannot start it fails: it is never skipped.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

struct Server {
    port: u16,
}

fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed: run scripts/setup.sh --test (Debian package postgresql)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().expect("no initdb under /usr/lib/postgresql/*/bin: install the postgresql package")
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

/// PostgreSQL refuses to run as root: as root, run it as the package's user.
fn run(program: PathBuf, args: &[&str]) {
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&program);
        c
    } else {
        Command::new(&program)
    };
    let out = cmd.args(args).output().unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn start() -> Server {
    let bin = bin_dir();
    let dir = std::env::temp_dir().join(format!("amparo-hub-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    if is_root() {
        assert!(Command::new("chown").args(["postgres:postgres"]).arg(&dir).status().unwrap().success());
    }
    let data = dir.join("data");
    let d = data.to_str().unwrap();
    run(bin.join("initdb"), &["-D", d, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let opts = format!("-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off", dir.display());
    let log = dir.join("log");
    run(bin.join("pg_ctl"), &["-D", d, "-o", &opts, "-l", log.to_str().unwrap(), "-w", "start"]);
    // Stop the server once this test process is gone, however it ends.
    let stop = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {runas} {ctl} -D {d} -m immediate stop >/dev/null 2>&1; rm -rf {dir}",
        pid = std::process::id(),
        runas = if is_root() { "runuser -u postgres --" } else { "" },
        ctl = bin.join("pg_ctl").display(),
        dir = dir.display(),
    );
    // In the background of a shell that returns at once, with no pipe of ours.
    let detached = format!("({stop}) </dev/null >/dev/null 2>&1 &");
    assert!(Command::new("sh").args(["-c", &detached]).status().unwrap().success());
    Server { port }
}

/// The URL of a new, empty database on the test server.
pub fn fresh_database() -> String {
    static SERVER: OnceLock<Server> = OnceLock::new();
    static N: AtomicUsize = AtomicUsize::new(0);
    let server = SERVER.get_or_init(start);
    let admin = format!("postgres://postgres@127.0.0.1:{}/postgres", server.port);
    let name = format!("t{}_{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
    let mut c = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
    c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    format!("postgres://postgres@127.0.0.1:{}/{name}", server.port)
}

/// Every byte of a database, as `pg_dump` writes it.
#[allow(dead_code)]
pub fn dump(url: &str) -> Vec<u8> {
    let out = Command::new(bin_dir().join("pg_dump")).arg(url).output().unwrap();
    assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}
