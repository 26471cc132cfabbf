//! The connector platform's domain: newtypes that parse at the edge, the source connection model,
//! authentication method detection, ports (traits) implemented by adapters, and use cases.
//!
//! Nothing here knows about the AWS SDK or HTTP; adapters and handlers depend on this crate,
//! never the other way round.

pub mod auth;
pub mod auth_provider;
pub mod catalog;
pub mod clock;
pub mod collection;
pub mod connection;
pub mod entity;
pub mod error;
pub mod error_category;
pub mod feed;
pub mod fingerprint;
pub mod idempotency;
pub mod ids;
pub mod job;
pub mod names;
pub mod oauth;
pub mod page;
pub mod ports;
mod redact;
pub mod schedule;
pub mod stream;
pub mod tenancy;
pub mod usecases;
pub mod webhooks;

#[cfg(test)]
mod testing;

pub use error::{DomainError, FieldError};
