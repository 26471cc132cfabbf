//! Webhooks (DESIGN section 12): organizations subscribe endpoints to events; every state change
//! an event reports is recorded with its event in one transaction (the outbox), and delivered,
//! signed to the Standard Webhooks spec, until the endpoint acknowledges it.

pub mod delivery;
pub mod event;
pub mod message;
pub mod retry;
pub mod subscription;

pub use delivery::{AttemptResult, DeliveryState, DeliveryTask, Outgoing};
pub use event::{Event, EventType};
pub use message::{AttemptStatus, DeliveryAttempt, Message};
pub use retry::RetrySchedule;
pub use subscription::{
    Health, NewSubscription, Subscription, SubscriptionChange, WebhookSecret, WebhookUrl,
};
