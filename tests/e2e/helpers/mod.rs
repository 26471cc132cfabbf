//! Test support: a fresh stack per test (own table, queue and secret prefix on the emulator),
//! fake upstream APIs on random ports, and the dev gateway in-process.

#![allow(dead_code)]

pub mod admin;
pub mod app;
pub mod aws;
pub mod clock;
pub mod faults;
/// The provider fakes live in `infra/fakes`, shared with `make fakes`.
pub use fakes::github;
pub mod hygiene;
pub mod logs;
pub mod runtime;
pub mod sdk;
pub mod syncing;
pub mod wire;

/// Prints a suite's figures past the test harness's output capture, so that `make test` shows
/// them for passing tests too.
pub fn figures(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}
