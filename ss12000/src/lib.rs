//! SS 12000:2020 school data shared by kontosynk servers and clients.
//!
//! Objects are kept as the JSON their source sent ([`Object`]), so fields this crate does not
//! know survive a round trip; [`model`] gives typed views of the five collections Skolverket
//! uses. A [`Store`] keeps objects, tombstones and sync state in SQLite (the embedded default)
//! or PostgreSQL, with the same behaviour on both.
//!
//! - [`import`] loads JSON files into a store (a school's data) and exports it back.
//! - [`sample`] generates a deterministic Swedish school for demos and benchmarks.
//! - `testing` (cargo feature `testing`) hands tests a fresh SQLite or PostgreSQL database
//!   (PostgreSQL: a throwaway cluster per test process, unless `KONTOSYNK_TEST_POSTGRES` names
//!   a server); other crates enable it in `[dev-dependencies]` to run their tests on both back
//!   ends.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod collection;
pub mod egil;
pub mod import;
pub mod model;
pub mod object;
pub mod references;
pub mod sample;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod timestamp;

pub use collection::Collection;
pub use egil::{EGIL_MAX_PAGE, EgilPage, EgilResource, EgilTenant};
pub use object::{Object, ObjectError};
pub use store::{
    ApplySummary, CollectionSummary, Database, DeletedQuery, ListQuery, Store, StoreError,
    Subscription, Tombstone, WriteBatch,
};
pub use timestamp::Timestamp;
