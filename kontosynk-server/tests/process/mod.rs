//! A `kontosynk-server` subcommand as a real child process on an ephemeral port, shared by
//! the CLI tests: started, its bound address read from its log, killed on drop.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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
