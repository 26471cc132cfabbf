//! Webhooks' use cases: the subscriptions API and the message log.

pub mod messages;
pub(crate) mod outbox;
pub mod subscriptions;
