//! `ss12000-proxy` (work in progress).
fn main() {}
