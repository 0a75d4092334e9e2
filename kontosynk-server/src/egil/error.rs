//! SCIM error answers (RFC 7644 §3.12): `{"schemas": [Error URN], "status": "404", "detail":
//! …}`. EgilSCIM reads only the status code; other SCIM clients read the body.

use http::{HeaderValue, Response, StatusCode, header};

use kontosynk_framework::response::{Body, full};

/// The SCIM error message schema.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// The media type of every SCIM answer.
pub const SCIM_JSON: &str = "application/scim+json";

/// A refused or failed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimError {
    /// HTTP status.
    pub status: StatusCode,
    /// SCIM `scimType` for 400/409 (`invalidValue`, `uniqueness`, `invalidSyntax`).
    pub scim_type: Option<&'static str>,
    /// What is wrong and how to fix it.
    pub detail: String,
    /// Seconds for `Retry-After` (429).
    pub retry_after: Option<u64>,
    /// The methods for `Allow` (405).
    pub allow: Option<&'static str>,
}

impl ScimError {
    /// An error with this status and detail.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> ScimError {
        ScimError {
            status,
            scim_type: None,
            detail: detail.into(),
            retry_after: None,
            allow: None,
        }
    }

    /// 400 `invalidValue`: a member is missing or malformed.
    pub fn invalid_value(detail: impl Into<String>) -> ScimError {
        ScimError {
            scim_type: Some("invalidValue"),
            ..ScimError::new(StatusCode::BAD_REQUEST, detail)
        }
    }

    /// 400 `invalidSyntax`: the body is not a JSON object.
    pub fn invalid_syntax(detail: impl Into<String>) -> ScimError {
        ScimError {
            scim_type: Some("invalidSyntax"),
            ..ScimError::new(StatusCode::BAD_REQUEST, detail)
        }
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> ScimError {
        ScimError::new(StatusCode::NOT_FOUND, detail)
    }

    /// 500 for a store failure; the detail goes to the log, not to the client.
    pub fn store(err: &ss12000::StoreError) -> ScimError {
        tracing::error!(error = %err, "EGIL store operation failed");
        ScimError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the data store failed; try again later",
        )
    }

    /// The response.
    pub fn into_response(self) -> Response<Body> {
        let mut body = serde_json::json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let Some(scim_type) = self.scim_type {
            body["scimType"] = serde_json::Value::from(scim_type);
        }
        let mut response = scim_response(self.status, body.to_string());
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(allow) = self.allow {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        response
    }
}

/// A response with `application/scim+json` text.
pub fn scim_response(status: StatusCode, text: impl Into<bytes::Bytes>) -> Response<Body> {
    let mut response = Response::new(full(text));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    response
}
