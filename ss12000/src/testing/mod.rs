//! Fresh databases for tests, on both back ends (enable the `testing` feature in
//! `[dev-dependencies]`: `ss12000 = { path = "../ss12000", features = ["testing"] }`).
//!
//! PostgreSQL: when `KONTOSYNK_TEST_POSTGRES` is set (a `postgres://` URL of a role that may
//! create databases, e.g. `postgresql://root@%2Fvar%2Frun%2Fpostgresql/postgres`), that server
//! is used. Otherwise each test process starts a throwaway cluster of its own on first use
//! (`initdb` from PATH or `/usr/lib/postgresql/*/bin`, run as the `postgres` system user when
//! the tests run as root; it listens only on a unix socket in a temporary directory), shares it
//! between all its tests, and a supervisor process stops it and removes its directory when the
//! test process ends, however it ends (see `cluster.rs`). Starting one costs 1 to 2 seconds,
//! nearly all of it `initdb`.
//!
//! Each [`TestDatabase`] is a new database with a random name, dropped when the value is
//! dropped, so tests run in parallel. Without PostgreSQL installed (and no
//! `KONTOSYNK_TEST_POSTGRES`), or with an unreachable server, [`postgres`] panics with one line
//! saying what to install or set: the PostgreSQL tests fail rather than skip.

mod cluster;

use crate::store::{Database, Store};

/// The variable naming the PostgreSQL server used by tests.
pub const POSTGRES_ENV: &str = "KONTOSYNK_TEST_POSTGRES";

/// A database that exists for one test.
pub struct TestDatabase {
    /// Where it is; pass to [`Store::open`].
    pub database: Database,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// Opens a store on it.
    pub async fn open(&self) -> Store {
        match Store::open(&self.database).await {
            Ok(store) => store,
            Err(e) => panic!("cannot open test store {}: {e}", self.database),
        }
    }

    /// For PostgreSQL, the admin URL and database name (tests that tamper with the schema).
    pub fn postgres_parts(&self) -> Option<(&str, &str)> {
        self.postgres
            .as_ref()
            .map(|(a, n)| (a.as_str(), n.as_str()))
    }
}

/// A new SQLite file in a temporary directory (removed on drop).
pub fn sqlite() -> TestDatabase {
    let dir = tempfile::tempdir().expect("cannot create a temporary directory");
    let path = dir.path().join("store.sqlite");
    TestDatabase {
        database: Database::Sqlite(path),
        _dir: Some(dir),
        postgres: None,
    }
}

/// The admin URL tests use: `KONTOSYNK_TEST_POSTGRES`, else this process's throwaway cluster
/// (started by the first call, which blocks for a second or two).
///
/// # Panics
///
/// When the throwaway cluster is needed and PostgreSQL is not installed or does not start.
pub fn postgres_admin_url() -> String {
    admin_url().unwrap_or_else(|e| panic!("{e}"))
}

fn admin_url() -> Result<String, String> {
    match configured_url() {
        Some(url) => Ok(url),
        None => cluster::shared().map(|cluster| cluster.admin_url.clone()),
    }
}

/// `KONTOSYNK_TEST_POSTGRES`, when set and not empty.
fn configured_url() -> Option<String> {
    std::env::var(POSTGRES_ENV)
        .ok()
        .filter(|url| !url.trim().is_empty())
}

/// A URL for database `name` on the server of `admin_url`.
fn with_dbname(admin_url: &str, name: &str) -> String {
    let sep = if admin_url.contains('?') { '&' } else { '?' };
    format!("{admin_url}{sep}dbname={name}")
}

async fn admin_client(admin_url: &str) -> Result<tokio_postgres::Client, String> {
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .map_err(|e| {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        })?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// A new, empty PostgreSQL database (dropped on drop).
///
/// # Panics
///
/// When PostgreSQL is not installed (and `KONTOSYNK_TEST_POSTGRES` is not set), the server
/// cannot be reached or the role may not create databases, with a message saying what to do
/// (tests must not pass without PostgreSQL).
pub async fn postgres() -> TestDatabase {
    // The first call may start the cluster: keep that off the runtime's worker threads (and
    // panic here, in the test's thread, where the test harness reports it).
    let admin_url = match tokio::task::spawn_blocking(admin_url).await {
        Ok(Ok(url)) => url,
        Ok(Err(e)) => panic!("{e}"),
        Err(e) => panic!("PostgreSQL tests: {e}"),
    };
    let client = match admin_client(&admin_url).await {
        Ok(client) => client,
        Err(e) if configured_url().is_some() => panic!(
            "PostgreSQL tests: cannot connect to {} ({e}): start that server, or unset \
             {POSTGRES_ENV} to let the tests start a throwaway cluster of their own",
            Database::Postgres(admin_url.clone())
        ),
        Err(e) => panic!(
            "PostgreSQL tests: cannot connect to the throwaway cluster at {} ({e}); {}",
            Database::Postgres(admin_url.clone()),
            cluster::shared().map_or_else(|e| e, |c| c.log_tail())
        ),
    };
    let name = format!("kontosynk_test_{}", uuid::Uuid::new_v4().simple());
    if let Err(e) = client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
    {
        panic!("cannot create test database {name}: {e:?} (the role needs CREATEDB)");
    }
    TestDatabase {
        database: Database::Postgres(with_dbname(&admin_url, &name)),
        _dir: None,
        postgres: Some((admin_url, name)),
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.postgres.take() else {
            return;
        };
        // Drop may run inside a runtime: use a thread of its own with a small runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let client = admin_client(&admin_url).await?;
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .map_err(|e| e.to_string())
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("warning: could not drop a test database: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use super::*;

    /// The first column of the first row `sql` returns, as text.
    async fn value(url: &str, sql: &str) -> String {
        let client = admin_client(url).await.unwrap();
        let messages = client.simple_query(sql).await.unwrap();
        messages
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no value from {sql}"))
    }

    #[tokio::test]
    async fn databases_share_one_server_and_are_dropped() {
        let (a, b) = tokio::join!(postgres(), postgres());
        let (admin, name_a) = a.postgres_parts().unwrap();
        let (admin_b, name_b) = b.postgres_parts().unwrap();
        assert_eq!(admin, admin_b);
        assert_ne!(name_a, name_b);
        for db in [&a, &b] {
            let Database::Postgres(url) = &db.database else {
                panic!("not PostgreSQL: {}", db.database)
            };
            assert_eq!(value(url, "SELECT 1").await, "1");
            let name = db.postgres_parts().unwrap().1;
            assert_eq!(value(url, "SELECT current_database()").await, name);
        }

        if configured_url().is_none() {
            // Both came from this process's one throwaway cluster, started with test settings.
            let cluster = cluster::shared().unwrap();
            assert_eq!(
                cluster::STARTED.load(std::sync::atomic::Ordering::SeqCst),
                1
            );
            let dir = cluster.dir.to_str().unwrap();
            assert_eq!(value(admin, "SHOW unix_socket_directories").await, dir);
            assert_eq!(value(admin, "SHOW listen_addresses").await, "");
            assert_eq!(value(admin, "SHOW fsync").await, "off");
            assert_eq!(value(admin, "SHOW full_page_writes").await, "off");
            assert_eq!(value(admin, "SHOW synchronous_commit").await, "off");
            let data = value(admin, "SHOW data_directory").await;
            assert!(data.starts_with(dir), "{data} is not in {dir}");
            assert_eq!(
                value(admin, "SELECT current_user").await,
                cluster::SUPERUSER
            );
        }

        let (admin, name) = (admin.to_owned(), name_a.to_owned());
        drop(a);
        let count = format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'");
        assert_eq!(value(&admin, &count).await, "0");
    }

    /// Set for the child process of [`cluster_is_gone_when_its_process_ends`].
    const CHILD_ENV: &str = "KONTOSYNK_TEST_CLUSTER_CHILD";

    #[test]
    #[ignore = "run by cluster_is_gone_when_its_process_ends, in a process of its own"]
    fn start_cluster_and_exit() {
        if std::env::var_os(CHILD_ENV).is_none() {
            return;
        }
        let cluster = cluster::shared().unwrap();
        let pid = std::fs::read_to_string(cluster.dir.join("data/postmaster.pid")).unwrap();
        let pid = pid.lines().next().unwrap();
        // On a line of its own: the harness has printed the test's name without a newline.
        println!("\nCLUSTER {pid} {}", cluster.dir.display());
    }

    #[test]
    fn cluster_is_gone_when_its_process_ends() {
        if configured_url().is_some() {
            eprintln!("{POSTGRES_ENV} is set: these tests start no cluster, nothing to check");
            return;
        }
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "testing::tests::start_cluster_and_exit"])
            .args(["--ignored", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "child failed:\n{stdout}\n{stderr}");
        let line = stdout.lines().find_map(|l| l.strip_prefix("CLUSTER "));
        let (pid, dir) = line
            .and_then(|l| l.split_once(' '))
            .unwrap_or_else(|| panic!("the child printed no cluster:\n{stdout}\n{stderr}"));
        assert!(pid.parse::<u32>().is_ok(), "{pid}");

        // The child has exited: its supervisor stops the server and removes the directory.
        let deadline = Instant::now() + Duration::from_secs(30);
        while (Path::new(dir).exists() || running(pid)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(!running(pid), "postmaster {pid} still runs");
        assert!(!Path::new(dir).exists(), "{dir} is still there");
    }

    /// Whether process `pid` runs (a zombie does not: a container's init may reap it late).
    fn running(pid: &str) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            !stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
    }
}
