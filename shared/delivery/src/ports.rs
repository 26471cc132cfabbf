//! The domain's webhook ports on this crate: where an endpoint's URL may lead, and the attempts
//! themselves.

use crate::{resolve_target, secret_key, DeliveryRequest, TargetPolicy, Transport};
use async_trait::async_trait;
use domain::ports::{WebhookTargets, WebhookTransport};
use domain::webhooks::{AttemptResult, Outgoing, WebhookUrl};

/// Checks a subscription's URL as a delivery would, without sending anything.
#[derive(Debug, Clone, Copy, Default)]
pub struct TargetCheck {
    /// The operator's policy (`WEBHOOK_ALLOW_PRIVATE_TARGETS`).
    pub policy: TargetPolicy,
}

#[async_trait]
impl WebhookTargets for TargetCheck {
    async fn check(&self, url: &WebhookUrl) -> Result<(), String> {
        resolve_target(url.as_str(), self.policy)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

#[async_trait]
impl WebhookTransport for Transport {
    async fn post(&self, outgoing: Outgoing<'_>) -> AttemptResult {
        let key = match secret_key(outgoing.secret.expose()) {
            Ok(key) => key,
            // Secrets are checked when stored; one that is not base64 cannot sign.
            Err(_) => return AttemptResult::failed("the subscription's secret cannot sign"),
        };
        let message_id = outgoing.message_id.to_string();
        Transport::post(
            self,
            &DeliveryRequest {
                url: outgoing.url.as_str(),
                message_id: &message_id,
                timestamp: outgoing.timestamp.timestamp(),
                body: outgoing.body.as_bytes(),
                key: &key,
            },
        )
        .await
    }
}
