//! Why a server cannot start, and how a request refused before its handler is answered.

use std::net::SocketAddr;

use http::{Response, StatusCode};

use super::RefusalResponder;
use crate::response::{Body, json_error};

/// Why the server could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Neither `tls` nor `behind_terminator` was configured.
    #[error("no transport configured: call tls(...) or behind_terminator(...)")]
    NoTransport,
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The TLS configuration was refused.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// A refused request: the status and the JSON error body's code and message.
pub(super) struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl Refusal {
    pub(super) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub(super) fn into_response(self, responder: Option<&RefusalResponder>) -> Response<Body> {
        match responder {
            Some(responder) => responder(self.status, self.code, self.message),
            None => json_error(self.status, self.code, self.message),
        }
    }
}
