//! The domain's webhook ports on this crate: where an endpoint's URL may lead.

use crate::{resolve_target, TargetPolicy};
use async_trait::async_trait;
use domain::ports::WebhookTargets;
use domain::webhooks::WebhookUrl;

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
