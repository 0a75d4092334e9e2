//! The error answers of the SS 12000 API.

use http::{HeaderValue, Response, StatusCode, header};

use kontosynk_framework::response::{Body, json};

/// A refused or failed request: status, stable code and an explanation.
///
/// The body carries both the reference OpenAPI's `Error` shape (`code`, `message`) and this
/// server's house shape (`error`, `message`), so either kind of client can read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code (`invalid_page_token`, `not_found`, …).
    pub code: &'static str,
    /// What went wrong and what to do.
    pub message: String,
    /// A `WWW-Authenticate` challenge for 401/403 bearer refusals.
    pub challenge: Option<String>,
    /// Seconds for `Retry-After` (429).
    pub retry_after: Option<u64>,
    /// The methods for `Allow` (405, which RFC 9110 §15.5.6 says must carry it).
    pub allow: Option<&'static str>,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            challenge: None,
            retry_after: None,
            allow: None,
        }
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 500 for a store failure; the detail goes to the log, not to the client.
    pub fn store(err: &ss12000::StoreError) -> ApiError {
        tracing::error!(error = %err, "store operation failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store_error",
            "the data store failed; try again later",
        )
    }

    /// The JSON response.
    pub fn into_response(self) -> Response<Body> {
        let mut response = json(
            self.status,
            &serde_json::json!({"code": self.code, "error": self.code, "message": self.message}),
        );
        if let Some(challenge) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        if let Some(allow) = self.allow {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
