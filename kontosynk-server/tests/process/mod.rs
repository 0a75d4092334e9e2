//! A `kontosynk-server` subcommand as a real child process on an ephemeral port, shared by
//! the CLI tests: started, its bound address read from its log, killed on drop.

// Each test crate including this module uses some of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `kontosynk-server SUBCOMMAND --listen 127.0.0.1:0` as `party` of `fed`: its certificate and
/// key, the federation's metadata and trust anchor, info logging.
pub fn serve_command(
    subcommand: &str,
    fed: &fedtls::testfed::TestFederation,
    party: &str,
) -> Command {
    let server = fed.party(party).expect("a party of the test federation");
    let mut command = Command::new(env!("CARGO_BIN_EXE_kontosynk-server"));
    command
        .args([subcommand, "--listen", "127.0.0.1:0"])
        .arg("--cert")
        .arg(&server.cert)
        .arg("--key")
        .arg(&server.key)
        .arg("--metadata")
        .arg(&fed.metadata_jws)
        .arg("--jwks")
        .arg(&fed.jwks)
        .env("RUST_LOG", "info");
    command
}

/// A running server process; killed and reaped when dropped.
pub struct Server {
    /// The child process (tests send it signals).
    pub child: Child,
    /// The address it listens on, as it logged it (`127.0.0.1:PORT`).
    pub addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `command` (which must log at info level) and waits up to 30 s for the first stderr
/// line that contains `listening` and an `addr=` field; that field is the server's address.
pub fn spawn(mut command: Command, listening: &str) -> Server {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kontosynk-server");
    let stderr = child.stderr.take().expect("stderr");
    let listening = listening.to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains(&listening)
                && let Some(at) = line.find(" addr=")
            {
                let addr = line[at + 6..]
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_owned();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server logs its address");
    Server { child, addr }
}

/// A running server whose stderr goes to a file, for tests that read its log as it grows;
/// killed and reaped when dropped.
#[allow(
    dead_code,
    reason = "not every test crate including this module reads logs"
)]
pub struct Logged {
    /// The child process.
    pub child: Child,
    /// Its stderr.
    pub log: PathBuf,
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[allow(
    dead_code,
    reason = "not every test crate including this module reads logs"
)]
impl Logged {
    /// Spawns `command` with its stderr written to `log`.
    pub fn start(mut command: Command, log: PathBuf) -> Logged {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Logged { child, log }
    }

    /// Waits up to 30 s for a log line containing `text`; the log so far.
    pub fn wait_for(&self, text: &str) -> String {
        let started = Instant::now();
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if log.contains(text) {
                return log;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no {text:?} in the log: {log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The `field=VALUE` of the first log line containing `text` (waiting for it).
    pub fn logged(&self, text: &str, field: &str) -> String {
        let log = self.wait_for(text);
        let line = log.lines().find(|l| l.contains(text)).unwrap();
        let at = line.find(&format!("{field}=")).unwrap() + field.len() + 1;
        line[at..].split_whitespace().next().unwrap().to_owned()
    }
}
