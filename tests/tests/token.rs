//! The GNAP token client against the project's authorization server over real mTLS.

use std::time::{Duration, SystemTime};

use http::{Response, StatusCode};
use kontosynk_client::token::{AccessRequest, PROVISIONING_API, TokenError, jwt_exp};
use kontosynk_framework::ServerBuilder;
use kontosynk_testbed::federation::Fed;
use kontosynk_testbed::federation::spawn;
use kontosynk_testbed::gnap::{start_gnap, token_client};

const API: &str = "https://api.skolverket.se/provtjanst/provisioning/v1";

#[tokio::test]
async fn a_token_is_fetched_once_and_cached_until_expiry() {
    let fed = Fed::new();
    let gnap = start_gnap(&fed).await;
    let client = token_client(&fed, "school-client", gnap.server.addr);
    let access = AccessRequest::new(PROVISIONING_API, [API]);

    let first = client.token(&access).await.unwrap();
    let second = client.token(&access).await.unwrap();
    assert_eq!(client.requests_sent(), 1);
    assert_eq!(first.value(), second.value());

    // The JWT says who we are and what we asked for; its exp is the cache's expiry.
    let exp = jwt_exp(first.value()).unwrap();
    assert_eq!(first.expires_at_unix(), exp);
    let in_ten_hours = SystemTime::now() + Duration::from_secs(10 * 3600);
    assert!(first.expires_at() <= in_ten_hours + Duration::from_secs(5));
    assert!(first.expires_at() > in_ten_hours - Duration::from_secs(60));
    let payload = first.value().split('.').nth(1).unwrap();
    use base64::Engine as _;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["entity_id"], "https://school.test.example");
    assert_eq!(claims["requested_access"][0]["type"], PROVISIONING_API);
    assert_eq!(claims["requested_access"][0]["locations"][0], API);

    // Other locations are another token.
    let other = AccessRequest::new(PROVISIONING_API, ["https://other.example/v1"]);
    let third = client.token(&other).await.unwrap();
    assert_eq!(client.requests_sent(), 2);
    assert_ne!(third.value(), first.value());
}

#[tokio::test]
async fn concurrent_callers_share_one_request() {
    let fed = Fed::new();
    let gnap = start_gnap(&fed).await;
    let client = token_client(&fed, "school-client", gnap.server.addr);
    let access = AccessRequest::new(PROVISIONING_API, [API]);
    let (a, b, c) = tokio::join!(
        client.token(&access),
        client.token(&access),
        client.token(&access)
    );
    assert_eq!(client.requests_sent(), 1);
    assert_eq!(a.unwrap().value(), b.unwrap().value());
    assert!(c.is_ok());
}

#[tokio::test]
async fn a_token_inside_the_margin_is_renewed() {
    let fed = Fed::new();
    let gnap = start_gnap(&fed).await;
    // Tokens live 10 h; a margin of 11 h makes every cached token too old.
    let client = token_client(&fed, "school-client", gnap.server.addr)
        .with_margin(Duration::from_secs(11 * 3600));
    let access = AccessRequest::new(PROVISIONING_API, [API]);
    client.token(&access).await.unwrap();
    client.token(&access).await.unwrap();
    assert_eq!(client.requests_sent(), 2);
}

#[tokio::test]
async fn a_client_claiming_another_entity_is_denied() {
    let fed = Fed::new();
    let gnap = start_gnap(&fed).await;
    // The supplier's certificate with the school's entity id as client.key.
    let http = fed.mtls_client("supplier-client", "authserver");
    let url = kontosynk_client::token::transaction_url(&format!(
        "https://127.0.0.1:{}/transaction",
        gnap.server.addr.port()
    ))
    .unwrap();
    let client =
        kontosynk_client::token::TokenClient::new(http, url, "https://school.test.example");
    let access = AccessRequest::new(PROVISIONING_API, [API]);
    let error = client.token(&access).await.unwrap_err();
    assert!(matches!(error, TokenError::RequestDenied { .. }), "{error}");
    // Errors are not cached: the next call asks again.
    let _ = client.token(&access).await.unwrap_err();
    assert_eq!(client.requests_sent(), 2);
}

#[tokio::test]
async fn a_malformed_request_is_invalid_request_with_the_servers_description() {
    let fed = Fed::new();
    let gnap = start_gnap(&fed).await;
    let client = token_client(&fed, "school-client", gnap.server.addr);
    // A location beyond the server's string limit (an empty type is fine: SUNET takes it).
    let long = format!("{API}/{}", "x".repeat(3000));
    let error = client
        .token(&AccessRequest::new(PROVISIONING_API, [long.as_str()]))
        .await
        .unwrap_err();
    match error {
        TokenError::InvalidRequest {
            status,
            description,
        } => {
            assert_eq!(status, 400);
            assert!(description.contains("locations[0]"), "{description}");
        }
        other => panic!("expected invalid_request, got {other}"),
    }
}

#[tokio::test]
async fn a_plain_text_500_is_reported_as_not_json() {
    let fed = Fed::new();
    let handler = |_request| async {
        let mut response = Response::new(kontosynk_framework::response::full(
            "Internal Server Error\n",
        ));
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        response
    };
    let server = ServerBuilder::new(fed.cell.clone())
        .tls(fed.resolver("authserver"))
        .bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let running = spawn(server, handler);
    let client = token_client(&fed, "school-client", running.addr);
    let error = client
        .token(&AccessRequest::new(PROVISIONING_API, [API]))
        .await
        .unwrap_err();
    match error {
        TokenError::NotJson {
            status,
            body_excerpt,
        } => {
            assert_eq!(status, 500);
            assert_eq!(body_excerpt, "Internal Server Error");
        }
        other => panic!("expected NotJson, got {other}"),
    }
}

#[tokio::test]
async fn a_server_with_another_pin_is_a_transport_error() {
    let fed = Fed::new();
    let gnap = start_gnap(&fed).await;
    // Pin the school's server instead of the authorization server.
    let http = fed.mtls_client("school-client", "school-server");
    let url = kontosynk_client::token::transaction_url(&format!(
        "https://127.0.0.1:{}/transaction",
        gnap.server.addr.port()
    ))
    .unwrap();
    let client =
        kontosynk_client::token::TokenClient::new(http, url, "https://school.test.example");
    let error = client
        .token(&AccessRequest::new(PROVISIONING_API, [API]))
        .await
        .unwrap_err();
    assert!(matches!(error, TokenError::Transport { .. }), "{error}");
}
