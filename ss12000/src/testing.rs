//! Fresh databases for tests, on both back ends (enable the `testing` feature in
//! `[dev-dependencies]`: `ss12000 = { path = "../ss12000", features = ["testing"] }`).
//!
//! PostgreSQL is found through `KONTOSYNK_TEST_POSTGRES` (a `postgres://` URL of a role that
//! may create databases, e.g. `postgresql://root@%2Fvar%2Frun%2Fpostgresql/postgres`); when it is
//! unset, the Debian default socket `/var/run/postgresql` is tried as the current user. Each
//! [`TestDatabase`] is a new database with a random name, dropped when the value is dropped, so
//! tests run in parallel. An unreachable server makes [`postgres`] panic with setup instructions:
//! the PostgreSQL tests fail rather than skip.

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

/// The admin URL tests use: `KONTOSYNK_TEST_POSTGRES`, else the Debian socket as the current user.
pub fn postgres_admin_url() -> String {
    if let Ok(url) = std::env::var(POSTGRES_ENV)
        && !url.trim().is_empty()
    {
        return url;
    }
    let user = ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
        .or_else(current_user)
        .unwrap_or_else(|| "postgres".to_owned());
    format!("postgresql://{user}@%2Fvar%2Frun%2Fpostgresql/postgres")
}

/// The login name of this process's user (`id -un`), when `USER` is not set (CI containers).
fn current_user() -> Option<String> {
    let output = std::process::Command::new("id").arg("-un").output().ok()?;
    let name = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && !name.is_empty()).then_some(name)
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
/// When the server cannot be reached or the role may not create databases, with a message
/// saying how to set PostgreSQL up (tests must not pass without it).
pub async fn postgres() -> TestDatabase {
    let admin_url = postgres_admin_url();
    let client = match admin_client(&admin_url).await {
        Ok(client) => client,
        Err(e) => panic!(
            "PostgreSQL tests need a server: cannot connect to {} ({e}). Start one and set \
             {POSTGRES_ENV} to a URL of a role that may create databases, e.g. on Debian: \
             `apt-get install postgresql && pg_ctlcluster 15 main start && \
             su postgres -c \"createuser -s $USER\"` then \
             {POSTGRES_ENV}=postgresql://$USER@%2Fvar%2Frun%2Fpostgresql/postgres \
             (.ci/run does all of this)",
            Database::Postgres(admin_url.clone())
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
