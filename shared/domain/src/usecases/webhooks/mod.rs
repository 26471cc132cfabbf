//! Webhooks' use cases: the subscriptions API and the message log, dispatching recorded
//! messages to the delivery queue, sending them, and recovering what failed.

pub mod dispatch;
pub mod messages;
pub(crate) mod outbox;
pub mod recover;
pub mod send;
pub mod subscriptions;
