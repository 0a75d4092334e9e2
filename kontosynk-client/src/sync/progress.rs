//! Progress callbacks of a sync (the CLI draws bars with them on a terminal).

use ss12000::Collection;

use super::report::{CollectionReport, Mode};

/// Receives progress of a running sync. Every method defaults to doing nothing.
pub trait Progress: Send + Sync {
    /// A collection's pass begins.
    fn started(&self, collection: &Collection, mode: Mode) {
        let _ = (collection, mode);
    }
    /// A page of `items` objects was applied.
    fn page(&self, collection: &Collection, items: usize) {
        let _ = (collection, items);
    }
    /// A collection's pass completed.
    fn finished(&self, report: &CollectionReport) {
        let _ = report;
    }
}

/// Ignores progress.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
