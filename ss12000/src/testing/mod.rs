//! Fresh databases for tests, on both back ends (enable the `testing` feature in
//! `[dev-dependencies]`: `ss12000 = { path = "../ss12000", features = ["testing"] }`).
//!
//! PostgreSQL: when `KONTOSYNK_TEST_POSTGRES` is set (a `postgres://` URL of a role that may
//! create databases, e.g. `postgresql://root@%2Fvar%2Frun%2Fpostgresql/postgres`), that server
//! is used. Otherwise each test process starts a throwaway cluster of its own on first use
//! (`initdb` from PATH or `/usr/lib/postgresql/*/bin`, run as the `postgres` system user when
//! the tests run as root; it listens only on a unix socket in a temporary directory), shares it
//! between all its tests, and a supervisor process stops it and removes its directory when the
//! test process ends, however it ends (see `cluster.rs`). Starting one costs about a second.
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

