//! Response bodies and the JSON error shape every refusal uses.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};

/// The error type of response bodies: anything a streaming body may fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body: a buffered value or a stream (for example a proxied backend response).
pub type Body = BoxBody<Bytes, BoxError>;

/// A body holding `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// An empty body.
pub fn empty() -> Body {
    full(Bytes::new())
}

/// A JSON response.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    json_text(status, value.to_string())
}

/// A JSON response from already-serialised JSON text.
pub fn json_text(status: StatusCode, text: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(full(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The error body clients get from this server: `{"error": CODE, "message": TEXT}`, where
/// CODE is stable for scripts and TEXT explains what to do.
pub fn json_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response<Body> {
    json(
        status,
        &serde_json::json!({"error": code, "message": message.into()}),
    )
}
