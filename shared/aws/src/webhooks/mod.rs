//! Webhooks on DynamoDB: subscriptions and the message log in a table of their own (its stream
//! feeds the dispatch), and the subscriptions' secrets in Secrets Manager.
//!
//! Items (`pk` / `sk`; attempts and deliveries also on the `by_subscription` index):
//! - `ORG#org | SUB#id`: a subscription, with its `version`;
//! - `ORG#org | SUBSCRIBED`: how many subscriptions the organization has (`count`), kept by the
//!   transactions that insert and delete them: whether its changes record events;
//! - `ORG#org | MSG#<uuidv7>`: a message (an event), written by the transaction of the change
//!   it reports;
//! - `ORG#org | ATT#<message>#<uuidv7>`: an attempt (`SUB#id | ATT#<uuidv7>` on the index);
//! - `ORG#org | DLV#<message>#<subscription>`: where a delivery stands (`SUB#id | DLV#<message>`).
//!
//! Messages, attempts and deliveries expire after 30 days (`expires_at`, the table's TTL).

mod deliveries;
mod keys;
mod secrets;
mod store;

pub(crate) use keys::message_item;
pub use keys::{streamed_message, BY_SUBSCRIPTION_INDEX, MESSAGE_RETENTION};
pub(crate) use secrets::SecretCache;
pub use store::DynamoWebhooks;
