//! The quickstart scenario behind `kontosynk quickstart`: a whole federation on this machine,
//! end to end, in one call.
//!
//! It creates a test federation, seeds a school's SS 12000 API with a realistic sample in
//! SQLite, starts the SS 12000 API, a GNAP authorization server behind ss12000-proxy (the way
//! Skolverket's SUNET server runs behind its TLS terminator) and a supplier's diagnostic server,
//! all on loopback in this process; then syncs the school's data over mutual TLS into a client
//! store, exchanges a token and checks the health of every server in the metadata. Every server
//! stops before the command returns: nothing is left running.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fedtls::jwk::{Algorithm, SigningKey};
use fedtls::snapshot::SnapshotSource;
use fedtls::store::MetadataStore;
use fedtls::testfed::{FederationOptions, ServerPorts, TestFederation};
use kontosynk_client::client::{FederationClient, Identity, RetryPolicy};
use kontosynk_client::discovery::{Choice, ServerQuery};
use kontosynk_client::health::html::ReportContext;
use kontosynk_client::health::{ClientCert, HealthOptions, Summary, check_all, html, rfc3339};
use kontosynk_client::sync::{NoProgress, SyncOptions, SyncReport, Syncer};
use kontosynk_client::token::{AccessRequest, TokenClient};
use kontosynk_framework::cli::ServeSettings;
use kontosynk_framework::{Policy, response};
use kontosynk_server::gnap::{GnapConfig, GnapService, KeyRing, TokenKeys};
use kontosynk_server::ss12000::{ApiConfig, AuthMode, Ss12000Api, WebhookConfig, Webhooks};
use ss12000::sample::{SampleSpec, generate};
use ss12000::{Database, Store, WriteBatch};
use tokio::sync::watch;

/// Why the quickstart could not run a step (printed by `kontosynk` as one `error:` line).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct QuickstartError(String);

impl QuickstartError {
    fn failed(message: impl std::fmt::Display) -> Self {
        Self(message.to_string())
    }
}

use QuickstartError as CliError;

/// The file that marks a directory as the quickstart's own, so a re-run may replace it.
const MARKER: &str = ".kontosynk-quickstart";
/// Where Skolverket's Provisioning API lives: the location the demo token is for.
const PROVISIONING_API: &str = "https://api.skolverket.se/provtjanst/provisioning/v1";

/// What the quickstart does and where (the `kontosynk quickstart` flags).
#[derive(Debug, Clone)]
pub struct Quickstart {
    /// Where everything goes. Replaced when a previous quickstart made it; refused when it
    /// holds anything else.
    pub dir: PathBuf,
    /// How many persons the sample school has (students and teachers).
    pub persons: u32,
    /// Print a JSON summary on stdout instead of the text walkthrough.
    pub json: bool,
}

impl Quickstart {
    /// Runs the quickstart: 0 when every step worked, 1 when a step failed.
    pub fn run(self) -> Result<ExitCode, CliError> {
        prepare_dir(&self.dir)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::failed(format!("cannot start the async runtime: {e}")))?;
        runtime.block_on(self.run_async())
    }

    async fn run_async(self) -> Result<ExitCode, CliError> {
        let started = Instant::now();
        let mut out = Walkthrough::new(self.json);
        out.line(&format!(
            "kontosynk quickstart: a whole FedTLS federation on this machine, in {}",
            self.dir.display()
        ));

        // 1. The federation.
        let step = Instant::now();
        // Every port at once, so no two servers are given the same one.
        let [school_port, supplier_port, auth_port, gnap_port] = free_ports()?;
        let ports = ServerPorts {
            school: school_port,
            supplier: supplier_port,
            auth: auth_port,
        };
        let federation = fedtls::testfed::init(
            &self.dir.join("federation"),
            &FederationOptions {
                host: "127.0.0.1".to_owned(),
                ports,
                force: true,
                ..FederationOptions::default()
            },
        )
        .map_err(|e| CliError::failed(format!("creating the test federation: {e}")))?;
        out.step(
            "federation",
            &format!(
                "3 members, certificates and signed metadata in {}",
                federation.dir.display()
            ),
            step,
        );

        // 2. The school's data.
        let step = Instant::now();
        let school_db = self.dir.join("school.sqlite");
        let school_store = open_store(&school_db).await?;
        let sample = generate(&SampleSpec {
            school_units: 2,
            persons: self.persons as usize,
            seed: 1,
        });
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        let mut batch = WriteBatch::new();
        for (collection, object) in sample {
            *counts.entry(collection.path().to_owned()).or_default() += 1;
            batch.upsert(collection, object);
        }
        school_store
            .apply(batch)
            .await
            .map_err(|e| CliError::failed(format!("seeding {}: {e}", school_db.display())))?;
        let seeded = counts
            .iter()
            .map(|(name, n)| format!("{n} {name}"))
            .collect::<Vec<_>>()
            .join(", ");
        out.step(
            "school data",
            &format!("{seeded} in {}", school_db.display()),
            step,
        );

        // 3. The servers.
        let step = Instant::now();
        let (stop, stopped) = watch::channel(false);
        let servers = Servers::start(&federation, school_store, ports, gnap_port, stopped).await?;
        out.step("servers", &servers.describe(), step);

        let result = self.exercise(&federation, &mut out).await;

        // Stop everything, whatever happened.
        let _ = stop.send(true);
        servers.join().await;
        let outcome = result?;
        out.line(&format!(
            "\nDone in {:.1} s; every server has stopped. Look at {} and {}.",
            started.elapsed().as_secs_f64(),
            self.dir.join("health.html").display(),
            self.dir.join("client.sqlite").display(),
        ));
        if self.json {
            let summary = serde_json::json!({
                "dir": self.dir,
                "ok": outcome.ok,
                "seconds": started.elapsed().as_secs_f64(),
                "steps": out.steps,
            });
            println!("{summary:#}");
        }
        Ok(if outcome.ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    }

    /// Steps 4–6, against the running servers.
    async fn exercise(
        &self,
        federation: &TestFederation,
        out: &mut Walkthrough,
    ) -> Result<Outcome, CliError> {
        let metadata = metadata_store(federation).await?;
        let source: Arc<dyn SnapshotSource> = metadata.cell();

        // 4. A supplier syncs the school's data.
        let step = Instant::now();
        let supplier = identity(federation, "supplier-client")?;
        let school_id = entity_of(federation, "school-server")?;
        let client = FederationClient::builder(Arc::clone(&source), supplier.clone())
            .discover(
                ServerQuery::entity(school_id.clone()).with_tag("egilv1"),
                Choice::Unique,
            )
            .retry(RetryPolicy::default())
            .build()
            .map_err(|e| CliError::failed(format!("client for {school_id}: {e}")))?;
        let client_db = self.dir.join("client.sqlite");
        let client_store = open_store(&client_db).await?;
        let syncer =
            Syncer::for_client(&client, client_store.clone()).options(SyncOptions::default());
        let full = syncer
            .run(&NoProgress)
            .await
            .map_err(|e| CliError::failed(format!("sync from {}: {e}", client.base_uri())))?;
        out.step(
            "sync",
            &format!(
                "supplier-client → {} over mutual TLS into {}: {}",
                client.base_uri(),
                client_db.display(),
                sync_counts(&full)
            ),
            step,
        );
        out.detail(&full.table());
        let step = Instant::now();
        let again = syncer
            .run(&NoProgress)
            .await
            .map_err(|e| CliError::failed(format!("incremental sync: {e}")))?;
        out.step(
            "sync again",
            &format!(
                "incremental (meta.modified.after the watermark): {}",
                sync_counts(&again)
            ),
            step,
        );

        // 5. The school asks the authorization server for a token.
        let step = Instant::now();
        let school_client = identity(federation, "school-client")?;
        let school_entity = entity_of(federation, "school-client")?;
        let tokens = TokenClient::discover(Arc::clone(&source), school_client, &school_entity)
            .map_err(|e| CliError::failed(format!("finding the authorization server: {e}")))?;
        let access = AccessRequest::new("provisioning-api", [PROVISIONING_API]);
        let token = tokens
            .token(&access)
            .await
            .map_err(|e| CliError::failed(format!("token from {}: {e}", tokens.url())))?;
        let token_file = self.dir.join("token.jwt");
        write_private(&token_file, token.value())?;
        out.step(
            "token",
            &format!(
                "school-client → {} (GNAP, tag gnapv1): a provisioning-api bearer token, \
                 valid until {}, saved in {}",
                tokens.url(),
                rfc3339(i64::try_from(token.expires_at_unix()).unwrap_or(i64::MAX)),
                token_file.display()
            ),
            step,
        );

        // 6. An operator checks every server in the metadata.
        let step = Instant::now();
        let snapshot = source
            .current()
            .ok_or_else(|| CliError::failed("the federation metadata is no longer valid"))?;
        let found = ServerQuery::default().find(snapshot.index());
        let cert = ClientCert::new(&supplier)
            .map_err(|e| CliError::failed(format!("client certificate: {e}")))?;
        let options = HealthOptions::default();
        let results = check_all(&found, Arc::new(cert), &options).await;
        let summary = Summary::of(&results, options.expiry_warning_days);
        let report = self.dir.join("health.html");
        let page = html::render(
            &results,
            &ReportContext {
                title: "kontosynk quickstart: federation health".to_owned(),
                metadata_source: federation.metadata_jws.display().to_string(),
                metadata_iss: Some(federation.iss.clone()),
                metadata_expires: Some(rfc3339(snapshot.expires_at())),
                checked_at: rfc3339(fedtls::verify::unix_now()),
                expiry_warning_days: options.expiry_warning_days,
                ..ReportContext::default()
            },
        );
        std::fs::write(&report, page)
            .map_err(|e| CliError::failed(format!("{}: {e}", report.display())))?;
        let mut lines = format!(
            "{}/{} servers healthy; report in {}",
            summary.healthy,
            summary.total,
            report.display()
        );
        for result in &results {
            let _ = write!(
                lines,
                "\n      {} {} {}{}",
                if result.healthy { "ok  " } else { "FAIL" },
                result.entity_id,
                result.base_uri,
                result
                    .error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            );
        }
        out.step("health", &lines, step);
        Ok(Outcome {
            ok: summary.unhealthy == 0,
        })
    }
}

/// What the last steps found.
struct Outcome {
    ok: bool,
}

/// The servers of the demo, each a task that stops when told.
struct Servers {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    descriptions: Vec<String>,
}

impl Servers {
    async fn start(
        federation: &TestFederation,
        school_store: Store,
        ports: ServerPorts,
        gnap_port: u16,
        stopped: watch::Receiver<bool>,
    ) -> Result<Servers, CliError> {
        let mut servers = Servers {
            tasks: Vec::new(),
            descriptions: Vec::new(),
        };
        let loopback = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));

        // The school's SS 12000 API: mutual TLS, clients tagged egilv1.
        let school = party(federation, "school-server")?;
        let mut settings = serve_settings(federation, school, loopback(ports.school));
        settings.policy = Policy {
            client_tags: vec![fedtls::Tag::new("egilv1").map_err(CliError::failed)?],
            ..Policy::default()
        };
        let prepared = settings
            .prepare()
            .await
            .map_err(|e| CliError::failed(format!("SS 12000 API: {e}")))?;
        let tls = kontosynk_server::bearer::webpki_client_config(None)
            .map_err(|e| CliError::failed(format!("webhook client: {e}")))?;
        let webhooks = Webhooks::new(school_store.clone(), WebhookConfig::default(), tls)
            .map_err(|e| CliError::failed(format!("webhooks: {e}")))?;
        let mut config = ApiConfig::new(AuthMode::MutualTls);
        config.base_path = "/ss12000/v2.0".to_owned();
        let api = Ss12000Api::new(school_store, config, webhooks);
        let base = school.base_uri.clone().unwrap_or_default();
        servers.spawn(prepared.server.serve(api.handler(), until(stopped.clone())));
        servers.descriptions.push(format!(
            "SS 12000 API     {base} (the school's; mutual TLS, egilv1)"
        ));

        // The authorization server, plain HTTP behind ss12000-proxy, which terminates mutual
        // TLS and passes the client certificate in Client-Cert.
        let authserver = party(federation, "authserver")?;
        let mut settings = serve_settings(federation, authserver, loopback(gnap_port));
        settings.trusted_proxies = vec![
            "127.0.0.1/32"
                .parse()
                .map_err(|e| CliError::failed(format!("trusted proxy: {e}")))?,
        ];
        let prepared = settings
            .prepare_with(GnapService::configure)
            .await
            .map_err(|e| CliError::failed(format!("GNAP server: {e}")))?;
        let signing = SigningKey::generate(Algorithm::Es256, "quickstart-token-key-1")
            .map_err(|e| CliError::failed(format!("token signing key: {e}")))?;
        let keys = TokenKeys::new(signing, Vec::new())
            .map_err(|e| CliError::failed(format!("token signing key: {e}")))?;
        let auth_base = authserver.base_uri.clone().unwrap_or_default();
        let issuer = auth_base.trim_end_matches("/transaction").to_owned();
        let service = GnapService::new(
            GnapConfig::new(issuer),
            Arc::new(KeyRing::new(keys)),
            Arc::new(prepared.store.clone()),
        );
        servers.spawn(
            prepared
                .server
                .serve(service.handler(), until(stopped.clone())),
        );
        let proxy_config = proxy_config(federation, authserver, ports.auth, gnap_port)?;
        let proxy_stop = until(stopped.clone());
        servers.spawn(async move {
            if let Err(error) = ss12000_proxy::serve(&proxy_config, proxy_stop).await {
                eprintln!("error: ss12000-proxy: {error}");
            }
        });
        servers.descriptions.push(format!(
            "GNAP server      {auth_base} (through ss12000-proxy on :{}, GNAP on :{gnap_port})",
            ports.auth
        ));

        // The supplier's server: tells callers who they are.
        let supplier = party(federation, "supplier-server")?;
        let prepared = serve_settings(federation, supplier, loopback(ports.supplier))
            .prepare()
            .await
            .map_err(|e| CliError::failed(format!("supplier server: {e}")))?;
        servers.spawn(prepared.server.serve(whoami, until(stopped.clone())));
        servers.descriptions.push(format!(
            "supplier server  {} (answers with the caller's identity)",
            supplier.base_uri.clone().unwrap_or_default()
        ));

        // The proxy binds in its own task: wait until it accepts connections.
        wait_for_port(loopback(ports.auth)).await?;
        Ok(servers)
    }

    fn spawn(&mut self, server: impl Future<Output = ()> + Send + 'static) {
        self.tasks.push(tokio::spawn(server));
    }

    fn describe(&self) -> String {
        self.descriptions.join("\n      ")
    }

    /// Waits for every server to drain and stop (they were told through the watch channel).
    async fn join(self) {
        for task in self.tasks {
            if tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .is_err()
            {
                eprintln!("warning: a server took more than 15 s to stop");
            }
        }
    }
}

/// The supplier server's handler: the caller's identity as the federation sees it.
async fn whoami(
    request: http::Request<kontosynk_framework::RequestBody>,
) -> http::Response<response::Body> {
    let peer = request
        .extensions()
        .get::<fedtls::tls::PeerIdentity>()
        .map(|p| {
            serde_json::json!({
                "entity_id": p.entity_id,
                "organization": p.organization,
                "organization_id": p.organization_id,
                "tags": p.tags,
            })
        });
    response::json(
        http::StatusCode::OK,
        &serde_json::json!({"service": "supplier diagnostics", "you": peer}),
    )
}

/// Completes when the quickstart says stop.
async fn until(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

type Party = fedtls::testfed::Party;

fn serve_settings(federation: &TestFederation, party: &Party, listen: SocketAddr) -> ServeSettings {
    ServeSettings {
        listen,
        cert: party.chain.clone().unwrap_or_else(|| party.cert.clone()),
        key: party.key.clone(),
        federations: vec![fedtls::store::federations::FederationSource {
            name: Some("quickstart".into()),
            metadata: fedtls::store::MetadataSource::File(federation.metadata_jws.clone()),
            jwks: federation.jwks.clone(),
            cache: None,
            iss: Some(federation.iss.clone()),
        }],
        readiness: fedtls::store::Readiness::AnySource,
        admin: None,
        policy: Policy::default(),
        require_issuer_chain: false,
        rate_limit: None,
        limits: kontosynk_framework::Limits::default(),
        trusted_proxies: Vec::new(),
        require_listed: true,
    }
}

/// ss12000-proxy's configuration, also written to DIR/ss12000-proxy.toml so users can see
/// (and reuse) how the gateway was set up.
fn proxy_config(
    federation: &TestFederation,
    authserver: &Party,
    listen_port: u16,
    backend_port: u16,
) -> Result<ss12000_proxy::config::Config, CliError> {
    let quote = |path: &Path| {
        serde_json::to_string(&path.display().to_string()).unwrap_or_else(|_| "\"\"".into())
    };
    let text = format!(
        "# ss12000-proxy in front of the GNAP server, as the quickstart ran it.\n\
         listen = \"127.0.0.1:{listen_port}\"\n\
         backend = \"http://127.0.0.1:{backend_port}\"\n\n\
         [tls]\ncert = {}\nkey = {}\n\n\
         [federation]\nmetadata = {}\njwks = {}\n\n\
         [headers]\n# The SUNET authorization server reads the client certificate from here.\n\
         client_cert = \"pem-spaces\"\n",
        quote(&authserver.cert),
        quote(&authserver.key),
        quote(&federation.metadata_jws),
        quote(&federation.jwks),
    );
    let path = federation
        .dir
        .parent()
        .unwrap_or(&federation.dir)
        .join("ss12000-proxy.toml");
    std::fs::write(&path, text)
        .map_err(|e| CliError::failed(format!("{}: {e}", path.display())))?;
    ss12000_proxy::config::Config::load(&path, std::iter::empty::<(String, String)>())
        .map_err(|e| CliError::failed(format!("{}: {e}", path.display())))
}

fn party<'a>(federation: &'a TestFederation, name: &str) -> Result<&'a Party, CliError> {
    federation
        .party(name)
        .ok_or_else(|| CliError::failed(format!("the test federation has no `{name}`")))
}

fn entity_of(federation: &TestFederation, name: &str) -> Result<String, CliError> {
    party(federation, name)?
        .entity_id
        .clone()
        .ok_or_else(|| CliError::failed(format!("`{name}` is not listed in the metadata")))
}

fn identity(federation: &TestFederation, name: &str) -> Result<Identity, CliError> {
    let party = party(federation, name)?;
    let cert = party.chain.as_deref().unwrap_or(&party.cert);
    Identity::from_pem_files(cert, &party.key)
        .map_err(|e| CliError::failed(format!("{name}'s certificate: {e}")))
}

/// The test federation's metadata, verified against its trust anchor like any member's.
async fn metadata_store(federation: &TestFederation) -> Result<MetadataStore, CliError> {
    let source = fedtls::store::MetadataSource::File(federation.metadata_jws.clone());
    let anchor = fedtls::jwk::Jwks::from_file(&federation.jwks).map_err(CliError::failed)?;
    let store = MetadataStore::new(fedtls::store::StoreConfig::new(source, anchor))
        .map_err(|e| CliError::failed(format!("metadata: {e}")))?;
    store
        .load()
        .await
        .map_err(|e| CliError::failed(format!("metadata: {e}")))?;
    Ok(store)
}

async fn open_store(path: &Path) -> Result<Store, CliError> {
    Store::open(&Database::Sqlite(path.to_path_buf()))
        .await
        .map_err(|e| CliError::failed(e.to_string()))
}

fn sync_counts(report: &SyncReport) -> String {
    let (mut new, mut updated, mut deleted, mut unchanged) = (0, 0, 0, 0);
    for collection in &report.collections {
        new += collection.new;
        updated += collection.updated;
        deleted += collection.deleted;
        unchanged += collection.unchanged;
    }
    format!("{new} new, {updated} updated, {deleted} deleted, {unchanged} unchanged")
}

/// A port on 127.0.0.1 nobody listens on right now (the metadata must name the ports before
/// the servers bind them).
/// `N` distinct free ports on 127.0.0.1: all listeners are held until every port is known,
/// so the system cannot hand out one port twice (a port freed early was given to the next
/// server, and the proxy then found its own taken).
fn free_ports<const N: usize>() -> Result<[u16; N], CliError> {
    let mut held = Vec::with_capacity(N);
    let mut ports = [0; N];
    for port in &mut ports {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| CliError::failed(format!("no free port on 127.0.0.1: {e}")))?;
        *port = listener
            .local_addr()
            .map_err(|e| CliError::failed(format!("no free port on 127.0.0.1: {e}")))?
            .port();
        held.push(listener);
    }
    Ok(ports)
}

async fn wait_for_port(addr: SocketAddr) -> Result<(), CliError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(CliError::failed(format!(
                "ss12000-proxy did not start listening on {addr}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Makes `dir` ready: created when missing, emptied when a previous quickstart made it,
/// refused when it holds anything else (never delete a user's files).
fn prepare_dir(dir: &Path) -> Result<(), CliError> {
    match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(CliError::failed(format!("{}: {e}", dir.display()))),
        Ok(mut entries) => {
            if entries.next().is_some() {
                if !dir.join(MARKER).is_file() {
                    return Err(CliError::failed(format!(
                        "{} exists and was not made by kontosynk quickstart: choose another \
                         --dir or remove it",
                        dir.display()
                    )));
                }
                std::fs::remove_dir_all(dir)
                    .map_err(|e| CliError::failed(format!("{}: {e}", dir.display())))?;
            }
        }
    }
    std::fs::create_dir_all(dir)
        .and_then(|()| {
            std::fs::write(
                dir.join(MARKER),
                "made by `kontosynk quickstart`; the next run replaces this directory\n",
            )
        })
        .map_err(|e| CliError::failed(format!("{}: {e}", dir.display())))
}

/// Writes a secret readable by the owner only.
fn write_private(path: &Path, text: &str) -> Result<(), CliError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(|e| CliError::failed(format!("{}: {e}", path.display())))
}

/// The text the user reads, step by step (or, with `--json`, the steps collected for the
/// summary).
struct Walkthrough {
    json: bool,
    number: usize,
    steps: Vec<serde_json::Value>,
}

impl Walkthrough {
    fn new(json: bool) -> Walkthrough {
        Walkthrough {
            json,
            number: 0,
            steps: Vec::new(),
        }
    }

    fn line(&self, text: &str) {
        if !self.json {
            println!("{text}");
        }
    }

    fn step(&mut self, name: &str, text: &str, started: Instant) {
        self.number += 1;
        let seconds = started.elapsed().as_secs_f64();
        self.steps.push(serde_json::json!({
            "step": name,
            "what": text,
            "seconds": seconds,
        }));
        let took = if seconds < 1.0 {
            format!("{:.0} ms", seconds * 1000.0)
        } else {
            format!("{seconds:.1} s")
        };
        self.line(&format!("\n{}. {name} ({took})\n      {text}", self.number));
    }

    fn detail(&self, text: &str) {
        for line in text.lines() {
            self.line(&format!("      {line}"));
        }
    }
}
