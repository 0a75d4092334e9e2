//! The audit log of a push: one JSON line per request sent (time, server, method, resource,
//! id, status, outcome), appended to a file and flushed as the run goes, so a killed run's
//! log is complete up to its last request.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde::Serialize;

/// One request sent.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry<'a> {
    /// When (RFC 3339).
    pub at: String,
    /// The server's entity id.
    pub server: &'a str,
    /// HTTP method.
    pub method: &'a str,
    /// EGIL resource (`Users`).
    pub resource: &'a str,
    /// The object's id.
    pub id: &'a str,
    /// The status the server answered (0: no answer).
    pub status: u16,
    /// What this client made of it (`created`, `updated`, `deleted`, `already-gone`, `exists`,
    /// `unknown`, `failed`).
    pub outcome: &'a str,
}

/// An append-only JSON-lines file.
#[derive(Debug)]
pub struct AuditLog {
    out: Option<BufWriter<File>>,
}

impl AuditLog {
    /// Appends to `path` (created when missing); `None` keeps no log.
    pub fn open(path: Option<&Path>) -> std::io::Result<AuditLog> {
        let out = match path {
            Some(path) => Some(BufWriter::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            )),
            None => None,
        };
        Ok(AuditLog { out })
    }

    /// Writes one entry.
    pub fn write(&mut self, entry: &AuditEntry<'_>) -> std::io::Result<()> {
        if let Some(out) = &mut self.out {
            serde_json::to_writer(&mut *out, entry)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Flushes what was written.
    pub fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.out {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }
}
