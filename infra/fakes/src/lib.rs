//! Fakes of the providers' APIs on 127.0.0.1, each built from the provider's public API
//! reference: its pagination, its rate-limit answers, its error shapes. Each holds a small
//! workspace a test (or `make fakes`) can change between syncs, and switches that make the next
//! answers rate-limited, revoked or malformed.

pub mod composio;
pub mod control;
pub mod github;
pub mod google_drive;
pub mod linear;
pub mod notion;
pub mod oauth;
pub mod pipedream;
pub mod receiver;
pub mod server;
pub mod slack;

pub use server::{FakeRequest, FakeResponse, FakeServer, Handler};
