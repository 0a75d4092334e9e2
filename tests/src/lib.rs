//! The workspace's test bed (not published): what the end-to-end tests, the benchmarks and
//! `kontosynk quickstart` share.
//!
//! - [`federation`]: THE test-federation set-up: a federation on disk whose metadata tests
//!   edit and re-sign, its snapshot, pinned mutual-TLS clients, servers on loopback.
//! - [`ss12000_api`], [`gnap`]: the project's SS 12000 API and GNAP server started on it.
//! - [`sync_standin`]: an SS 12000 API with configurable paging quirks, for the sync engine.
//! - [`provisioning_standin`]: **a local stand-in of Skolverket's Provisioning API** (labelled
//!   as such: it implements the documented protocol, it is not Skolverket's service).
//! - [`quickstart`]: the scenario `kontosynk quickstart` runs.
//! - [`browser`]: a headless-Chromium driver over the DevTools protocol, for tests of pages.
//!
//! The cross-crate scenarios themselves are in `tests/tests/`.
#![forbid(unsafe_code)]

pub mod browser;
pub mod egil;
pub mod federation;
pub mod gnap;
pub mod provisioning_standin;
pub mod quickstart;
pub mod ss12000_api;
pub mod sync_standin;
