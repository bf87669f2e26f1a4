//! A real `amparo-hub serve` on loopback, as an administrator would run it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct Running {
    child: Child,
    pub url: String,
    pub fingerprint: String,
    /// Printed only while no organisation is registered.
    pub setup_code: Option<String>,
}

impl Running {
    /// Start a hub on `data` (SQLite there, or PostgreSQL at `database`), on a
    /// free loopback port, and read the lines it prints.
    pub fn start(data: &Path, database: Option<&str>) -> Running {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_amparo-hub"));
        cmd.arg("serve").arg("--data").arg(data).args(["--listen", "127.0.0.1:0"]);
        if let Some(url) = database {
            cmd.args(["--database", url]);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("start amparo-hub");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (mut url, mut fingerprint, mut setup_code) = (None, None, None);
        while url.is_none() {
            let line = rx.recv_timeout(Duration::from_secs(60)).expect("the hub prints where it listens");
            if let Some(v) = line.strip_prefix("fingerprint: ") {
                fingerprint = Some(v.to_string());
            } else if let Some(v) = line.strip_prefix("setup code: ") {
                setup_code = Some(v.to_string());
            } else if let Some(v) = line.strip_prefix("listening: ") {
                url = Some(v.to_string());
            }
        }
        Running {
            child,
            url: url.unwrap(),
            fingerprint: fingerprint.expect("the hub prints its fingerprint"),
            setup_code,
        }
    }

    /// The hub's process id (for its memory).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// kill -9: whatever was acknowledged must be on disk.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
