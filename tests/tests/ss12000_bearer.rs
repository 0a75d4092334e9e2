//! Bearer-JWT authentication of the SS 12000 API, as Skolverket's client calls a school:
//! TLS without a client certificate, `Authorization: Bearer <JWT>` from the auth server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fedtls::jwk::{Algorithm, SigningKey};
use fedtls::verify::unix_now;
use kontosynk_server::bearer::{BearerConfig, BearerVerifier, JwksSource};
use kontosynk_server::ss12000::AuthMode;
use kontosynk_testbed::ss12000_api::{AuthServer, Harness, SKOLVERKET, claims, start, token};
use serde_json::{Value, json};
use ss12000::testing::sqlite;

const LOCATION: &str = "https://school.example/ss12000/v2.0";

/// The auth server and the verifier built for it inside the harness set-up.
type Issued = (Arc<AuthServer>, Arc<BearerVerifier>);

/// Starts the API with bearer auth (`either`: also mTLS); returns the auth server's key.
async fn bearer_api(
    either: bool,
    min_refresh: Duration,
) -> (Harness, Arc<AuthServer>, ss12000::testing::TestDatabase) {
    let db = sqlite();
    let store = db.open().await;
    let slot: Arc<Mutex<Option<Issued>>> = Arc::default();
    let out = Arc::clone(&slot);
    let h = start(
        store,
        move |dir| {
            let auth = Arc::new(AuthServer::new(dir, "key-1"));
            let mut config = BearerConfig::new(
                JwksSource::File(auth.jwks_path.clone()),
                SKOLVERKET.into(),
                format!("{LOCATION}/"),
            );
            config.min_refresh_interval = min_refresh;
            let verifier = Arc::new(BearerVerifier::new(config).unwrap());
            *out.lock().unwrap() = Some((auth, Arc::clone(&verifier)));
            if either {
                AuthMode::Either(verifier)
            } else {
                AuthMode::Bearer(verifier)
            }
        },
        |_| {},
    )
    .await;
    let (auth, verifier) = slot.lock().unwrap().take().unwrap();
    verifier.load().await.unwrap();
    (h, auth, db)
}

async fn call(
    h: &Harness,
    party: Option<&str>,
    bearer: Option<&str>,
) -> (u16, Option<String>, Value) {
    let mut request = h.client(party).get(h.url("/persons"));
    if let Some(bearer) = bearer {
        request = request.header("Authorization", format!("Bearer {bearer}"));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (
        status,
        challenge,
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn skolverket_token_checks() {
    let (h, auth, _db) = bearer_api(false, Duration::from_secs(3600)).await;
    let good = claims(LOCATION);

    let (status, _, body) = call(&h, None, Some(&token(&auth.key, &good, "ES256"))).await;
    assert_eq!(status, 200, "{body}");

    let (status, challenge, _) = call(&h, None, None).await;
    assert_eq!(status, 401);
    assert_eq!(challenge.as_deref(), Some("Bearer"));

    // A listed client certificate does not replace the token in bearer-only mode.
    let (status, _, _) = call(&h, Some("school-client"), None).await;
    assert_eq!(status, 401);

    let mut wrong_org = good.clone();
    wrong_org["organization_id"] = json!("SE5560000000");
    let mut no_org = good.clone();
    no_org.as_object_mut().unwrap().remove("organization_id");
    let mut wrong_location = good.clone();
    wrong_location["requested_access"] =
        json!([{"type": "ss12000-api", "locations": ["https://other.example/ss12000/v2.0"]}]);
    let mut wrong_type = good.clone();
    wrong_type["requested_access"] = json!([{"type": "provisioning-api", "locations": [LOCATION]}]);
    for (name, claims) in [
        ("organization", wrong_org),
        ("no organization", no_org),
        ("location", wrong_location),
        ("access type", wrong_type),
    ] {
        let (status, challenge, body) =
            call(&h, None, Some(&token(&auth.key, &claims, "ES256"))).await;
        assert_eq!(status, 403, "{name}: {body}");
        assert!(challenge.unwrap().contains("insufficient_scope"), "{name}");
    }

    let now = unix_now();
    let mut expired = good.clone();
    expired["exp"] = json!(now - 3600);
    let mut future = good.clone();
    future["nbf"] = json!(now + 3600);
    let mut no_exp = good.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    let stranger = SigningKey::generate(Algorithm::Es256, "key-1").unwrap();
    let unknown_kid = SigningKey::generate(Algorithm::Es256, "key-unknown").unwrap();
    let cases = [
        ("expired", token(&auth.key, &expired, "ES256")),
        ("not yet valid", token(&auth.key, &future, "ES256")),
        ("no exp", token(&auth.key, &no_exp, "ES256")),
        ("forged signature", token(&stranger, &good, "ES256")),
        ("unknown kid", token(&unknown_kid, &good, "ES256")),
        ("alg HS256", token(&auth.key, &good, "HS256")),
        ("alg none", token(&auth.key, &good, "none")),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (name, jwt) in cases {
        let (status, challenge, body) = call(&h, None, Some(&jwt)).await;
        assert_eq!(status, 401, "{name}: {body}");
        assert!(
            challenge
                .unwrap()
                .starts_with("Bearer error=\"invalid_token\""),
            "{name}"
        );
        assert_eq!(body["code"], "invalid_token", "{name}");
    }
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_per_interval() {
    // Refreshes rate-limited to one an hour: the new kid is refused until then.
    let (h, auth, _db) = bearer_api(false, Duration::from_secs(3600)).await;
    let next = SigningKey::generate(Algorithm::Es256, "key-2").unwrap();
    auth.publish(&[&auth.key, &next]);
    let (status, _, _) = call(&h, None, Some(&token(&next, &claims(LOCATION), "ES256"))).await;
    assert_eq!(status, 401, "refresh must be rate-limited");

    // Without the rate limit, an unknown kid triggers a refresh and the new key works.
    let (h, auth, _db) = bearer_api(false, Duration::ZERO).await;
    let next = SigningKey::generate(Algorithm::Es256, "key-2").unwrap();
    auth.publish(&[&next]);
    let (status, _, body) = call(&h, None, Some(&token(&next, &claims(LOCATION), "ES256"))).await;
    assert_eq!(status, 200, "{body}");
    // The retired key is gone with the refresh.
    let (status, _, _) = call(
        &h,
        None,
        Some(&token(&auth.key, &claims(LOCATION), "ES256")),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn either_mode_accepts_a_certificate_or_a_token() {
    let (h, auth, _db) = bearer_api(true, Duration::from_secs(3600)).await;
    let (status, _, body) = call(&h, Some("school-client"), None).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = call(
        &h,
        None,
        Some(&token(&auth.key, &claims(LOCATION), "ES256")),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, _) = call(&h, None, None).await;
    assert_eq!(status, 401);
    // A presented certificate must still be listed: the handshake fails otherwise.
    let result = h
        .client(Some("unlisted-client"))
        .get(h.url("/persons"))
        .send()
        .await;
    assert!(result.is_err(), "{result:?}");
}

#[tokio::test]
async fn bearer_subscriptions_are_owned_by_the_token_entity() {
    let (h, auth, _db) = bearer_api(true, Duration::from_secs(3600)).await;
    let jwt = token(&auth.key, &claims(LOCATION), "ES256");
    let response = h
        .client(None)
        .post(h.url("/subscriptions"))
        .bearer_auth(&jwt)
        .json(&json!({"name": "skolverket", "target": "https://skolverket.example/hook", "resourceTypes": [{"resource": "Person"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let stored = h.api.store().subscription(&id).await.unwrap().unwrap();
    assert_eq!(stored.owner, "https://skolverket.example/ss12000-client");
    // A federation member cannot delete it.
    let response = h
        .client(Some("school-client"))
        .delete(h.url(&format!("/subscriptions/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = h
        .client(None)
        .delete(h.url(&format!("/subscriptions/{id}")))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}

#[tokio::test]
async fn an_unreadable_jwks_fails_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).unwrap();
    let verifier = BearerVerifier::new(BearerConfig::new(
        JwksSource::File(path),
        SKOLVERKET.into(),
        LOCATION.into(),
    ))
    .unwrap();
    assert!(verifier.load().await.is_err());
    let missing = BearerVerifier::new(BearerConfig::new(
        JwksSource::File(dir.path().join("none")),
        SKOLVERKET.into(),
        LOCATION.into(),
    ))
    .unwrap();
    let err = missing.load().await.unwrap_err();
    assert!(err.to_string().contains("none"), "{err}");
}
