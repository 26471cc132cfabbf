//! The AWS adapters: the state store on DynamoDB, the credential vault and the idempotency
//! fingerprint key on Secrets Manager, the sync queue on SQS and, for local runs, the reader of
//! DynamoDB streams that stands in for Lambda's. This is the only crate that uses the AWS SDK;
//! everything else sees the domain's ports.

mod batch;
pub mod bootstrap;
mod clients;
mod entities;
mod error;
mod fingerprint_key;
pub mod metering;
mod queue;
mod store;
mod streams;
mod vault;
mod webhooks;

pub use clients::{AwsClients, Deferred};
pub use entities::{DynamoEntities, MAX_PAYLOAD_BYTES};
pub use fingerprint_key::{fingerprint_key_name, SecretsFingerprintKey};
pub use queue::{ReceivedMessage, SqsQueue};
pub use store::{
    schedule_bucket, DynamoStore, DEFAULT_JOB_RETENTION_DAYS, SCHEDULE_INDEX, SWEEP_INDEX,
};
pub use streams::{RecordError, StreamError, StreamPoller};
pub use vault::SecretsVault;
pub use webhooks::{streamed_message, DynamoWebhooks, BY_SUBSCRIPTION_INDEX, MESSAGE_RETENTION};
