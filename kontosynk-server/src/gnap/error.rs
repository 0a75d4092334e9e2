//! GNAP error responses: `{"error": {"code", "description"}}` with the status codes the SUNET
//! authorization server uses.

use http::{HeaderValue, Response, StatusCode, header};

use kontosynk_framework::response::{self, Body};

/// The GNAP error codes this server answers with (RFC 9635 §3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request is malformed, or the client certificate has expired.
    InvalidRequest,
    /// The client could not be authenticated as the entity it names.
    RequestDenied,
    /// The request is signed in a way this server does not take (a JWS-signed
    /// `application/jose` body, SUNET's code for it).
    InvalidClient,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::RequestDenied => "request_denied",
            Self::InvalidClient => "invalid_client",
        }
    }
}

/// A refused grant request: the HTTP status, the GNAP code and a description saying what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {}: {description}", code.as_str())]
pub struct GnapError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The GNAP error code.
    pub code: ErrorCode,
    /// Human-readable reason.
    pub description: String,
}

impl GnapError {
    /// 400 `invalid_request`: the request body or headers are malformed.
    pub fn malformed(description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: ErrorCode::InvalidRequest,
            description: description.into(),
        }
    }

    /// 401 `request_denied`: the client is not who it claims to be.
    pub fn denied(description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: ErrorCode::RequestDenied,
            description: description.into(),
        }
    }

    /// 401 `invalid_request`: the client certificate is outside its validity period.
    pub fn expired_certificate(description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: ErrorCode::InvalidRequest,
            description: description.into(),
        }
    }

    /// Any other status with a code and description.
    pub fn with_status(
        status: StatusCode,
        code: ErrorCode,
        description: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            description: description.into(),
        }
    }

    /// The JSON response, never cached.
    pub fn into_response(self) -> Response<Body> {
        let mut response = response::json(
            self.status,
            &serde_json::json!({"error": {"code": self.code.as_str(), "description": self.description}}),
        );
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// Maps the framework's refusals before the handler (no metadata, unknown or unreadable
/// client certificate, untrusted terminator) to GNAP errors: 401 `request_denied` for every
/// authentication failure, as the SUNET server does, including missing or expired metadata
/// (SUNET finds no entity then); other server errors keep their status.
pub fn refusal_response(status: StatusCode, code: &'static str, message: String) -> Response<Body> {
    let status = if status.is_server_error() && code != "metadata_unavailable" {
        status
    } else {
        StatusCode::UNAUTHORIZED
    };
    GnapError::with_status(
        status,
        ErrorCode::RequestDenied,
        format!("{code}: {message}"),
    )
    .into_response()
}
