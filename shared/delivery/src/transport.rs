//! One signed POST of a webhook message to its endpoint, connecting only where the target
//! check allowed.

use crate::answer::{read_start, response_text, retry_after};
use crate::attempt::{no_answer, timed_out};
use crate::signature::sign;
use crate::target::{resolve_target, TargetPolicy};
use bytes::Bytes;
use domain::webhooks::AttemptResult;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::redirect::Policy;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The production limit on a whole attempt (DESIGN: a 2xx within 15 s is success).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// The longest an attempt waits for a connection, within its whole timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

const USER_AGENT: &str = "connectors-webhooks/1";

/// One delivery of one message: what is sent and the key it is signed with.
#[derive(Clone, Copy)]
pub struct DeliveryRequest<'a> {
    /// The endpoint's URL, checked again at this delivery.
    pub url: &'a str,
    /// The message's id, the same on every attempt so that a receiver can drop repeats.
    pub message_id: &'a str,
    /// When this attempt is made, in unix seconds (receivers refuse one too far from now).
    pub timestamp: i64,
    /// The JSON payload, sent and signed byte for byte.
    pub body: &'a [u8],
    /// The decoded signing key ([`secret_key`](crate::secret_key) of the endpoint's secret).
    pub key: &'a [u8],
}

impl fmt::Debug for DeliveryRequest<'_> {
    // The URL may carry a customer's token in its query; the key and body are secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryRequest")
            .field("message_id", &self.message_id)
            .field("timestamp", &self.timestamp)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// Why there is no transport: the HTTPS client cannot be built (its TLS setup failed).
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The client builder refused; reqwest's reason is the source.
    #[error("the webhook HTTPS client could not be built")]
    Client(#[source] reqwest::Error),
}

/// Sends webhook messages: each delivery checks its target again and connects only to the
/// addresses that check resolved, so a DNS answer that changes between the check and the
/// connection (rebinding) cannot steer a delivery into our network. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Transport {
    policy: TargetPolicy,
    timeout: Duration,
}

impl Transport {
    /// A transport under `policy` whose attempts each take at most `timeout` in all
    /// ([`DEFAULT_TIMEOUT`] in production). Builds one client now, so that a broken TLS setup
    /// fails at a cold start rather than at every delivery.
    pub fn new(policy: TargetPolicy, timeout: Duration) -> Result<Self, TransportError> {
        // TLS uses aws-lc-rs, the provider the AWS SDK already links, as the process default;
        // an earlier install (the same provider) is fine.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let transport = Self { policy, timeout };
        transport
            .client(None, timeout)
            .map_err(TransportError::Client)?;
        Ok(transport)
    }

    /// POSTs one message, signed, to its endpoint and says what came of it. The target is
    /// resolved and checked first; a refused one is answered as a failed attempt without any
    /// connection. Redirects are not followed (a 3xx is a failed attempt), no proxy is used,
    /// and of the answer only the first 1 KB of the body is read. The whole attempt, from the
    /// lookup to the last byte read, takes at most the transport's timeout.
    pub async fn post(&self, request: &DeliveryRequest<'_>) -> AttemptResult {
        let started = Instant::now();
        let result = self.attempt(request, started + self.timeout).await;
        tracing::debug!(
            message_id = request.message_id,
            status = result.status_code,
            delivered = result.delivered,
            error = result.error.as_deref(),
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "webhook attempt"
        );
        result
    }

    async fn attempt(&self, request: &DeliveryRequest<'_>, deadline: Instant) -> AttemptResult {
        let checked = resolve_target(request.url, self.policy);
        let target = match tokio::time::timeout_at(deadline, checked).await {
            Ok(Ok(target)) => target,
            Ok(Err(refused)) => return AttemptResult::failed(format!("url {refused}")),
            Err(_) => return AttemptResult::failed(timed_out(self.timeout)),
        };
        let Some(headers) = headers(request) else {
            return AttemptResult::failed("the message id cannot be sent as a header");
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        let pin = target.domain().map(|domain| (domain, target.addrs()));
        let client = match self.client(pin, remaining) {
            Ok(client) => client,
            Err(_) => return AttemptResult::failed("the HTTPS client could not be built"),
        };
        let sent = client
            .post(target.url().clone())
            .headers(headers)
            .body(Bytes::copy_from_slice(request.body))
            .send();
        let mut response = match tokio::time::timeout_at(deadline, sent).await {
            Ok(Ok(response)) => response,
            Ok(Err(err)) => return AttemptResult::failed(no_answer(&err, self.timeout)),
            Err(_) => return AttemptResult::failed(timed_out(self.timeout)),
        };
        let status = response.status();
        let wait = if status.is_success() {
            None
        } else {
            response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| retry_after(value, chrono::Utc::now()))
        };
        // The answer counts from its status; a body that fails or stalls keeps what arrived.
        let mut body = Vec::new();
        let _ = tokio::time::timeout_at(deadline, read_start(&mut response, &mut body)).await;
        AttemptResult {
            status_code: Some(status.as_u16()),
            response: response_text(&body),
            delivered: status.is_success(),
            retry_after: wait,
            error: None,
        }
    }

    /// A client for one delivery: `pin` maps the URL's host name to the checked addresses,
    /// and every other lookup fails, so the connection goes nowhere else.
    fn client(
        &self,
        pin: Option<(&str, &[SocketAddr])>,
        timeout: Duration,
    ) -> reqwest::Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder()
            .dns_resolver(Arc::new(NoLookup))
            .redirect(Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .user_agent(USER_AGENT)
            .https_only(!self.policy.allow_private);
        if let Some((domain, addrs)) = pin {
            builder = builder.resolve_to_addrs(domain, addrs);
        }
        builder.build()
    }
}

/// The webhook headers, in both the Standard Webhooks and the Svix names so that either
/// verifier finds them. `None` when the message id has characters a header cannot carry.
fn headers(request: &DeliveryRequest<'_>) -> Option<HeaderMap> {
    let id = HeaderValue::from_str(request.message_id).ok()?;
    let timestamp = HeaderValue::from(request.timestamp);
    let signature = sign(
        request.key,
        request.message_id,
        request.timestamp,
        request.body,
    );
    let mut signature = HeaderValue::from_str(&signature).ok()?;
    // Marked sensitive so that no debug print of the request shows it.
    signature.set_sensitive(true);
    let mut headers = HeaderMap::with_capacity(7);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (names, value) in [
        (["webhook-id", "svix-id"], id),
        (["webhook-timestamp", "svix-timestamp"], timestamp),
        (["webhook-signature", "svix-signature"], signature),
    ] {
        for name in names {
            headers.insert(HeaderName::from_static(name), value.clone());
        }
    }
    Some(headers)
}

/// The resolver behind the pinned name: it refuses every lookup, so that a name that is not
/// the checked one (there is none today) can never reach the system resolver.
struct NoLookup;

impl reqwest::dns::Resolve for NoLookup {
    fn resolve(&self, _name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async {
            Err::<reqwest::dns::Addrs, _>("no DNS lookup after the target check".into())
        })
    }
}
