//! Delivering signed webhook requests to customer URLs without letting a customer reach our own
//! network.
//!
//! A webhook endpoint is a URL a customer typed in, and the platform POSTs to it from inside
//! its cloud account, so the URL is an attacker's best way to make us call the metadata service
//! or a private address (server-side request forgery). Every delivery therefore resolves the
//! URL's host, refuses it when any address is not public ([`is_public`]), and connects to those
//! checked addresses only, with no proxy and no redirects. The request carries the Standard
//! Webhooks headers under both their `webhook-` and `svix-` names, signed as [`sign`] says, so
//! the receivers' existing Svix or standardwebhooks verifiers accept it unchanged.
//!
//! It knows nothing of subscriptions, messages or retries, only how one attempt is made and
//! what came of it ([`AttemptResult`]); [`ports`] offers that to the domain's use cases.

#![warn(missing_docs)]

mod address;
mod answer;
mod attempt;
pub mod ports;
mod signature;
mod target;
mod transport;

pub use address::is_public;
pub use answer::{MAX_RETRY_AFTER, RESPONSE_LIMIT};
pub use domain::webhooks::AttemptResult;
pub use signature::{secret_key, sign, SecretError, SECRET_PREFIX};
pub use target::{resolve_target, Target, TargetError, TargetPolicy};
pub use transport::{DeliveryRequest, Transport, TransportError, DEFAULT_TIMEOUT};
