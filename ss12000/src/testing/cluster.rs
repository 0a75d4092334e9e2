//! The throwaway PostgreSQL cluster used when `KONTOSYNK_TEST_POSTGRES` is not set.
//!
//! One cluster per test process, started on first use and shared by every test in it:
//! `initdb` into a new temporary directory, then `pg_ctl start` with durability off (`fsync`,
//! `synchronous_commit`, `full_page_writes`), since the data is thrown away anyway.
//!
//! **Unix socket, no TCP.** The server listens only on a socket in that directory
//! (`-k DIR`, `listen_addresses=''`). A TCP port picked by binding `127.0.0.1:0` and releasing it
//! can be taken by someone else before the server binds it, and several test processes (nextest,
//! other worktrees, another CI job) start clusters at the same time; a socket in a directory of
//! our own cannot collide with anything, so the port number is only the socket's file name. The
//! directory is mode 0700, so only its owner (and root) can connect, which is why `trust`
//! authentication is acceptable.
//!
//! **Root.** `initdb` and `postgres` refuse to run as root (CI runs as root). Then the cluster
//! is run by the `postgres` system user that Debian's `postgresql` package creates: the directory
//! is chowned to it and `initdb`, `pg_ctl` and the supervisor below run with its uid and gid
//! (set by [`CommandExt::uid`], no `su` or PAM involved). The database superuser is always
//! named `postgres` (`initdb -U`), whoever runs it.
//!
//! **Cleanup.** Rust never drops statics, so nothing in this process can be relied on to stop
//! the server. Before `initdb` runs, a supervisor (`sh`, in a process group of its own, ignoring
//! SIGHUP and SIGINT so Ctrl-C reaches only the tests) is started with a pipe as its stdin whose
//! write end this process keeps for ever and never writes to. However this process ends — normal
//! exit, panic, Ctrl-C, SIGKILL — the kernel closes that end, the supervisor's `read` sees end of
//! file, and it runs `pg_ctl stop -m immediate` and removes the directory. No pid polling, so no
//! pid-reuse race. If setup fails, the write end is dropped at once and the supervisor cleans up
//! then. (As a last resort, a postmaster whose `postmaster.pid` disappears shuts itself down
//! within about a minute.)

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The database superuser `initdb` creates; tests connect as it.
pub(super) const SUPERUSER: &str = "postgres";
/// The OS user that runs the cluster when the tests run as root.
const SYSTEM_USER: &str = "postgres";
/// Only names the socket file (`.s.PGSQL.5432`): nothing listens on TCP.
const PORT: u16 = 5432;
/// Server settings: no durability (the data is thrown away), enough connections for many test
/// threads with a pool of 8 each, and no background work the tests do not need.
const SETTINGS: &[&str] = &[
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=200",
    "autovacuum=off",
];
/// Runs as the cluster's owner; `$1` is `pg_ctl`, `$2` the cluster directory.
const SUPERVISOR: &str = "trap '' HUP INT
read -r _ || :
\"$1\" stop -D \"$2/data\" -m immediate -w -t 30 >/dev/null 2>&1
rm -rf \"$2\"
";
const NOT_INSTALLED: &str = "PostgreSQL is not installed (no initdb on PATH or under \
     /usr/lib/postgresql/*/bin): apt-get install postgresql, or set KONTOSYNK_TEST_POSTGRES to a \
     server's URL";

/// A running cluster; lives until the process ends (see the module docs for the cleanup).
pub(super) struct Cluster {
    /// `postgresql://postgres@%2Ftmp%2Fkontosynk-pg-…:5432/postgres`.
    pub(super) admin_url: String,
    /// The temporary directory: socket, `data/` and `log`.
    pub(super) dir: PathBuf,
    /// The supervisor's stdin: closing it (only the kernel does, at exit) stops the cluster.
    _lifeline: ChildStdin,
}

impl Cluster {
    /// The last lines of the server's log (for messages about a cluster that stopped answering).
    pub(super) fn log_tail(&self) -> String {
        let log = self.dir.join("log");
        match std::fs::read_to_string(&log) {
            Ok(text) => format!("last lines of {}:\n{}", log.display(), tail(&text)),
            Err(e) => format!("cannot read {}: {e}", log.display()),
        }
    }
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
/// How many clusters this process started (tests check that it is one).
pub(super) static STARTED: AtomicUsize = AtomicUsize::new(0);

/// This process's cluster, started on first call (which blocks for a second or two), or why
/// it could not be; a failed start is not retried, every caller gets the same message.
pub(super) fn shared() -> Result<&'static Cluster, String> {
    CLUSTER.get_or_init(start).as_ref().map_err(Clone::clone)
}

fn start() -> Result<Cluster, String> {
    STARTED.fetch_add(1, Ordering::SeqCst);
    let (initdb, pg_ctl) = binaries()?;
    let owner = Owner::detect()?;
    // Root's TMPDIR may be where the postgres user cannot go; /tmp it can always reach. A
    // socket path is at most 107 bytes: a TMPDIR too long for `kontosynk-pg-XXXXXX/.s.PGSQL.N`
    // falls back to /tmp too.
    let base = match owner {
        Owner::Me => std::env::temp_dir(),
        Owner::System { .. } => PathBuf::from("/tmp"),
    };
    let base = if base.as_os_str().len() > 70 {
        PathBuf::from("/tmp")
    } else {
        base
    };
    // Mode 0700 (tempfile's default follows the umask): what makes `trust` authentication safe.
    let dir = tempfile::Builder::new()
        .prefix("kontosynk-pg-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(&base)
        .map_err(|e| format!("cannot create a directory in {}: {e}", base.display()))?
        .keep();
    if let Owner::System { uid, gid } = owner {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
            .map_err(|e| format!("cannot chown {} to {SYSTEM_USER}: {e}", dir.display()))?;
    }
    // From here on the supervisor removes the directory, whatever happens next.
    let lifeline = supervise(&owner, &pg_ctl, &dir)?;

    let data = dir.join("data");
    let output = owner
        .command(&initdb, &dir)
        .arg("-D")
        .arg(&data)
        .args(["-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C"])
        .arg("--no-sync")
        .output();
    check(output, &initdb, None)?;

    let log = dir.join("log");
    let mut options = format!("-p {PORT} -k {} -c listen_addresses=", sh_quote(&dir));
    for setting in SETTINGS {
        options.push_str(" -c ");
        options.push_str(setting);
    }
    let output = owner
        .command(&pg_ctl, &dir)
        .arg("start")
        .arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(&log)
        .args(["-w", "-t", "60", "-o", &options])
        .output();
    check(output, &pg_ctl, Some(&log))?;

    let admin_url = format!(
        "postgresql://{SUPERUSER}@{}:{PORT}/postgres",
        percent_encode(&dir.to_string_lossy())
    );
    Ok(Cluster {
        admin_url,
        dir,
        _lifeline: lifeline,
    })
}

/// Who runs `initdb`, `pg_ctl` and the supervisor.
#[derive(Clone, Copy)]
enum Owner {
    /// The current (non-root) user.
    Me,
    /// The `postgres` system user, when the tests run as root.
    System { uid: u32, gid: u32 },
}

impl Owner {
    fn detect() -> Result<Owner, String> {
        if id(&["-u"]).map_err(|e| format!("cannot tell whether this is root: {e}"))? != 0 {
            return Ok(Owner::Me);
        }
        let (Ok(uid), Ok(gid)) = (id(&["-u", SYSTEM_USER]), id(&["-g", SYSTEM_USER])) else {
            return Err(format!(
                "PostgreSQL refuses to run as root and there is no `{SYSTEM_USER}` user to run the \
                 test cluster as: apt-get install postgresql (it creates that user), or set \
                 KONTOSYNK_TEST_POSTGRES to a server's URL"
            ));
        };
        Ok(Owner::System { uid, gid })
    }

    /// `program`, run by this owner in `dir` (a directory it can enter).
    fn command(self, program: &Path, dir: &Path) -> Command {
        let mut command = Command::new(program);
        command.current_dir(dir);
        // Settings a developer may have exported for another server must not leak in.
        for var in ["PGDATA", "PGPORT", "PGHOST", "PGUSER", "PGOPTIONS"] {
            command.env_remove(var);
        }
        if let Owner::System { uid, gid } = self {
            command.uid(uid).gid(gid);
        }
        command
    }
}

/// A number from `id ARGS` (`-u` is the effective uid).
fn id(args: &[&str]) -> Result<u32, String> {
    let output = Command::new("id")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run id: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    match text.trim().parse() {
        Ok(n) if output.status.success() => Ok(n),
        _ => Err(format!("id {} failed", args.join(" "))),
    }
}

/// Starts the supervisor (see the module docs) and returns the end of the pipe that keeps it
/// waiting.
fn supervise(owner: &Owner, pg_ctl: &Path, dir: &Path) -> Result<ChildStdin, String> {
    let mut child = owner
        .command(Path::new("/bin/sh"), Path::new("/"))
        .args(["-c", SUPERVISOR, "kontosynk-pg-supervisor"])
        .arg(pg_ctl)
        .arg(dir)
        .stdin(Stdio::piped())
        // Not inherited: test runners that read a test's output to its end would wait for it.
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start the test cluster's supervisor (/bin/sh): {e}"))?;
    // Nothing is ever written to it; `child` is not waited for (it outlives this process).
    Ok(child.stdin.take().expect("stdin was piped"))
}

/// `Ok` when `output` is a success, else an error with its stderr and, if given, the end of
/// `log`.
fn check(
    output: std::io::Result<Output>,
    program: &Path,
    log: Option<&Path>,
) -> Result<(), String> {
    let output = output.map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    if output.status.success() {
        return Ok(());
    }
    let mut message = format!(
        "the test PostgreSQL cluster did not start: {} failed ({}):\n{}",
        program.display(),
        output.status,
        tail(&String::from_utf8_lossy(&output.stderr))
    );
    if let Some(log) = log {
        let text = std::fs::read_to_string(log).unwrap_or_else(|e| format!("(unreadable: {e})"));
        message.push_str(&format!(
            "\nlast lines of {}:\n{}",
            log.display(),
            tail(&text)
        ));
    }
    Err(message)
}

/// The last 20 lines of `text`.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// `initdb` and the `pg_ctl` of the same installation (symlinks resolved), from PATH, else
/// from the highest version under `/usr/lib/postgresql/*/bin` (Debian keeps them off PATH).
fn binaries() -> Result<(PathBuf, PathBuf), String> {
    let initdb = on_path("initdb")
        .or_else(|| newest_debian("initdb"))
        .ok_or(NOT_INSTALLED)?;
    let pg_ctl = std::fs::canonicalize(&initdb)
        .ok()
        .and_then(|p| Some(p.parent()?.join("pg_ctl")))
        .filter(|p| is_executable(p))
        .or_else(|| on_path("pg_ctl"))
        .ok_or_else(|| {
            format!(
                "no pg_ctl beside {}: apt-get install postgresql",
                initdb.display()
            )
        })?;
    Ok((initdb, pg_ctl))
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn newest_debian(name: &str) -> Option<PathBuf> {
    let version = |p: &Path| -> Vec<u32> {
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        name.split('.').map(|n| n.parse().unwrap_or(0)).collect()
    };
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|dir| is_executable(&dir.join("bin").join(name)))
        .max_by_key(|dir| version(dir))
        .map(|dir| dir.join("bin").join(name))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `text` quoted for `sh` (pg_ctl hands `-o` to a shell).
fn sh_quote(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', r"'\''"))
}

/// `text` with everything but unreserved URL characters percent-encoded (a socket directory as
/// a URL host).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
