//! Several metadata sources merged into one view: precedence, which source vouched, a
//! source that expires while the other stays, readiness, and start-up with a broken source.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fedtls::SnapshotSource;
use fedtls::jwk::{Jwks, SigningKey};
use fedtls::jws::{JwsFormat, SignOptions, sign_metadata};
use fedtls::pin::Pin;
use fedtls::store::{
    MetadataSource, MetadataSources, MetadataStore, NamedStore, Readiness, StoreConfig, StoreError,
};
use fedtls::testfed::{FederationOptions, TestFederation, init};
use fedtls::tls::PeerIdentity;
use fedtls::verify::unix_now;
use serde_json::{Map, Value};

/// A federation of its own (own signing key, own certificates), published to a file.
struct Federation {
    fed: TestFederation,
    key: SigningKey,
    jwks: Jwks,
    payload: Map<String, Value>,
    published: std::path::PathBuf,
}

impl Federation {
    fn new(dir: &Path, iss: &str) -> Federation {
        let options = FederationOptions {
            iss: iss.to_owned(),
            ..FederationOptions::default()
        };
        let fed = init(dir, &options).unwrap();
        let key = SigningKey::from_jwk_json(&std::fs::read(&fed.signing_key).unwrap()).unwrap();
        let jwks = Jwks::from_json(&std::fs::read(&fed.jwks).unwrap()).unwrap();
        let payload = match serde_json::from_slice(&std::fs::read(&fed.metadata_json).unwrap()) {
            Ok(Value::Object(map)) => map,
            other => panic!("metadata.json is not an object: {other:?}"),
        };
        let published = dir.join("published.jws");
        let federation = Federation {
            fed,
            key,
            jwks,
            payload,
            published,
        };
        federation.publish(86_400);
        federation
    }

    /// Signs the metadata valid for `lifetime` seconds from now and publishes it.
    fn publish(&self, lifetime: i64) {
        let signed = sign_metadata(
            &self.payload,
            &[&self.key],
            &SignOptions {
                iss: self.fed.iss.clone(),
                lifetime_secs: lifetime,
                now: unix_now(),
                format: JwsFormat::General,
                default_cache_ttl: 3600,
            },
        )
        .unwrap();
        std::fs::write(&self.published, signed).unwrap();
    }

    fn store(&self) -> MetadataStore {
        self.store_of(MetadataSource::File(self.published.clone()))
    }

    fn store_of(&self, source: MetadataSource) -> MetadataStore {
        let mut config = StoreConfig::new(source, self.jwks.clone());
        config.min_refresh = Duration::from_secs(1);
        config.retry_cap = Duration::from_millis(200);
        MetadataStore::new(config).unwrap()
    }

    fn client_pin(&self) -> Pin {
        self.fed.party("school-client").unwrap().pin
    }

    fn entity_id(&self) -> String {
        self.fed
            .party("school-client")
            .unwrap()
            .entity_id
            .clone()
            .unwrap()
    }
}

fn named(name: &str, store: MetadataStore) -> NamedStore {
    NamedStore {
        name: name.to_owned(),
        store,
    }
}

fn resolve(sources: &MetadataSources, pin: &Pin) -> Option<PeerIdentity> {
    PeerIdentity::resolve_pin(&*sources.current()?, pin)
}

#[tokio::test]
async fn two_federations_merge_and_one_expiring_takes_only_its_own_entities() {
    let dir = tempfile::tempdir().unwrap();
    let prod = Federation::new(&dir.path().join("prod"), "https://prod.fed.example");
    let trial = Federation::new(&dir.path().join("trial"), "https://trial.fed.example");
    // The same member registered in both federations, with a different certificate in each.
    assert_eq!(prod.entity_id(), trial.entity_id());
    assert_ne!(prod.client_pin(), trial.client_pin());
    trial.publish(3);

    let sources = MetadataSources::new(
        vec![
            named("moa-prod", prod.store()),
            named("moa-trial", trial.store()),
        ],
        Readiness::AnySource,
    )
    .unwrap();
    let loaded = sources.load().await.unwrap();
    let _loops = sources.spawn();
    assert_eq!(loaded.sources().len(), 2);
    assert_eq!(loaded.sources()[0].name, "moa-prod");
    assert_eq!(
        loaded.sources()[1].iss.as_deref(),
        Some("https://trial.fed.example")
    );
    let entities = prod.fed.parties.len();
    assert!(loaded.index().entities().len() > entities / 2);

    // Each registration is known by its own pins, and the identity says who vouched.
    let via_prod = resolve(&sources, &prod.client_pin()).unwrap();
    assert_eq!(via_prod.entity_id, prod.entity_id());
    assert_eq!(via_prod.source, "moa-prod");
    assert_eq!(
        via_prod.source_iss.as_deref(),
        Some("https://prod.fed.example")
    );
    let via_trial = resolve(&sources, &trial.client_pin()).unwrap();
    assert_eq!(via_trial.entity_id, trial.entity_id());
    assert_eq!(via_trial.source, "moa-trial");
    assert_eq!(
        via_trial.source_iss.as_deref(),
        Some("https://trial.fed.example")
    );
    // An entity id in both answers with the first source's registration, every time.
    let snapshot = sources.current().unwrap();
    let entity = snapshot.index().entity(&prod.entity_id()).unwrap();
    assert_eq!(snapshot.index().source_of_entity(entity), 0);
    assert!(
        snapshot.index().ambiguities().is_empty(),
        "the same entity in two sources is not an ambiguity"
    );
    let status = sources.status();
    assert!(status.ready);
    assert_eq!(status.valid_sources, 2);
    let generation = sources.generation();

    // The trial federation's document expires (its source offers nothing newer): its
    // members are refused, the production federation's are still served.
    tokio::time::timeout(Duration::from_secs(20), async {
        while resolve(&sources, &trial.client_pin()).is_some() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the trial source's entities should go when it expires");
    assert!(unix_now() >= loaded.sources()[1].exp);
    let still = resolve(&sources, &prod.client_pin()).unwrap();
    assert_eq!(still.source, "moa-prod");
    assert!(
        sources.generation() > generation,
        "open connections must be re-checked"
    );
    let snapshot = sources.current().unwrap();
    assert_eq!(snapshot.sources().len(), 1);
    let status = sources.status();
    assert!(status.ready, "ready while one source is valid");
    assert_eq!(status.valid_sources, 1);
    let trial_status = &status.sources[1];
    assert_eq!(trial_status.name, "moa-trial");
    assert!(trial_status.status.expired, "{trial_status:?}");
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["sources"][1]["name"], "moa-trial");
    assert_eq!(json["sources"][1]["expired"], true);

    // The trial federation publishes again: its members are back without a restart.
    trial.publish(86_400);
    tokio::time::timeout(Duration::from_secs(20), async {
        while resolve(&sources, &trial.client_pin()).is_none() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the trial source should come back with its next document");
    assert_eq!(sources.status().valid_sources, 2);
}

#[tokio::test]
async fn requiring_every_source_changes_readiness_and_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let prod = Federation::new(&dir.path().join("prod"), "https://prod.fed.example");
    let trial = Federation::new(&dir.path().join("trial"), "https://trial.fed.example");
    let missing = || {
        trial.store_of(MetadataSource::File(
            dir.path().join("not-published-yet.jws"),
        ))
    };

    // Any source: one that cannot be loaded is logged, the other is served.
    let any = MetadataSources::new(
        vec![
            named("moa-prod", prod.store()),
            named("moa-trial", missing()),
        ],
        Readiness::AnySource,
    )
    .unwrap();
    let snapshot = any.load().await.unwrap();
    assert_eq!(snapshot.sources().len(), 1);
    assert!(any.status().ready);
    assert!(resolve(&any, &prod.client_pin()).is_some());

    // Every source: the same start fails and names the source.
    let all = MetadataSources::new(
        vec![
            named("moa-prod", prod.store()),
            named("moa-trial", missing()),
        ],
        Readiness::AllSources,
    )
    .unwrap();
    let err = all.load().await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Source { name, required: true, .. } if name == "moa-trial"),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("moa-trial") && message.contains("every source is required"),
        "{message}"
    );
    assert!(!all.status().ready);

    // Both missing: the first failure, named.
    let none = MetadataSources::new(
        vec![named("first", missing()), named("second", missing())],
        Readiness::AnySource,
    )
    .unwrap();
    let err = none.load().await.unwrap_err();
    assert!(err.to_string().contains("\"first\""), "{err}");
    assert!(none.current().is_none(), "fail closed");
    // A single source's error is its own, without a source name around it.
    let only = MetadataSources::new(vec![named("only", missing())], Readiness::AnySource).unwrap();
    let err = only.load().await.unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err}");
    assert!(only.current().is_none(), "fail closed");

    // Both valid but one expiring: with every source required, readiness goes with it.
    trial.publish(2);
    let strict = MetadataSources::new(
        vec![
            named("moa-prod", prod.store()),
            named("moa-trial", trial.store()),
        ],
        Readiness::AllSources,
    )
    .unwrap();
    strict.load().await.unwrap();
    assert!(strict.status().ready);
    tokio::time::timeout(Duration::from_secs(20), async {
        while strict.status().ready {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("readiness should follow the expiring source");
    assert_eq!(strict.status().valid_sources, 1);
    assert!(
        resolve(&strict, &prod.client_pin()).is_some(),
        "the valid source's members are still served"
    );
}

#[test]
fn names_must_be_unique_and_present() {
    let dir = tempfile::tempdir().unwrap();
    let prod = Federation::new(&dir.path().join("prod"), "https://prod.fed.example");
    let err = MetadataSources::new(
        vec![named("moa", prod.store()), named("moa", prod.store())],
        Readiness::AnySource,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("two metadata sources are named \"moa\""),
        "{err}"
    );
    let err =
        MetadataSources::new(vec![named(" ", prod.store())], Readiness::AnySource).unwrap_err();
    assert!(err.to_string().contains("empty name"), "{err}");
    let err = MetadataSources::new(Vec::new(), Readiness::AnySource).unwrap_err();
    assert!(err.to_string().contains("at least one"), "{err}");
    // One store converts into one source named after where it comes from.
    let one = MetadataSources::from(prod.store());
    assert_eq!(one.members()[0].name, prod.published.display().to_string());
    let _ = Arc::new(one);
}

/// A library user who converts one store and never spawns the merge loop still sees every
/// new document (and a new generation, so open connections are re-checked).
#[tokio::test]
async fn one_store_without_the_merge_loop_stays_current() {
    let dir = tempfile::tempdir().unwrap();
    let mut prod = Federation::new(&dir.path().join("prod"), "https://prod.fed.example");
    let sources = MetadataSources::from(prod.store());
    sources.load().await.unwrap();
    let before = sources.generation();
    let entities = sources.current().unwrap().index().entities().len();
    if let Some(Value::Array(list)) = prod.payload.get_mut("entities") {
        list.pop();
    }
    // A later iat than the first document's.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    prod.publish(86_400);
    sources.members()[0].store.refresh().await.unwrap();
    assert!(
        sources.generation() > before,
        "a new document is a new generation"
    );
    assert_eq!(
        sources.current().unwrap().index().entities().len(),
        entities - 1
    );
}
