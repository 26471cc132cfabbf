//! `/webhooks/subscriptions`: create, list, read (with the secret on request), change, delete.
//! A subscription's secret is written to the vault before the subscription exists and removed
//! after it is gone, so no stored subscription is ever without its secret.

use crate::error::{DomainError, FieldError};
use crate::ids::{OrganizationId, SubscriptionId};
use crate::ports::StoreError;
use crate::usecases::Platform;
use crate::webhooks::subscription::parse_event_types;
use crate::webhooks::{
    DeliveryAttempt, Health, NewSubscription, Subscription, SubscriptionChange, WebhookSecret,
    WebhookUrl,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::warn;

/// Most attempts a subscription's detail shows.
pub const DETAIL_ATTEMPTS: usize = 100;
/// Longest description.
const DESCRIPTION_MAX: usize = 1024;

/// A subscription as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SubscriptionView {
    pub id: SubscriptionId,
    #[schema(value_type = String)]
    pub url: WebhookUrl,
    pub filter_types: Vec<String>,
    pub disabled: bool,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub health_status: Health,
}

impl SubscriptionView {
    fn of(subscription: Subscription, health: Health) -> Self {
        Self {
            id: subscription.id,
            url: subscription.url,
            filter_types: subscription.filter_types,
            disabled: subscription.disabled,
            description: subscription.description,
            created_at: subscription.created_at,
            updated_at: subscription.updated_at,
            health_status: health,
        }
    }
}

/// `GET /webhooks/subscriptions/{id}`: the subscription, its latest attempts and, when asked
/// for, its signing secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SubscriptionDetail {
    #[serde(flatten)]
    pub subscription: SubscriptionView,
    /// Newest first, at most 100.
    pub delivery_attempts: Vec<DeliveryAttempt>,
    /// `whsec_...` (or your own), only with `include_secret=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

fn not_found(id: &str) -> DomainError {
    DomainError::NotFound(format!("webhook subscription '{id}' not found"))
}

pub(crate) fn parse_id(id: &str) -> Result<SubscriptionId, DomainError> {
    id.parse().map_err(|_| not_found(id))
}

fn description(errors: &mut Vec<FieldError>, raw: Option<String>) -> Option<String> {
    let text = raw.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty())?;
    if text.chars().count() > DESCRIPTION_MAX || text.chars().any(char::is_control) {
        errors.push(FieldError::new(
            "description",
            format!("must be at most {DESCRIPTION_MAX} characters, without control characters"),
        ));
        return None;
    }
    Some(text)
}

/// Parses the URL and checks where it leads.
async fn endpoint(
    platform: &Platform,
    errors: &mut Vec<FieldError>,
    raw: &str,
) -> Option<WebhookUrl> {
    let url = match WebhookUrl::parse(raw) {
        Ok(url) => url,
        Err(m) => {
            errors.push(FieldError::new("url", m));
            return None;
        }
    };
    match platform.webhook_targets.check(&url).await {
        Ok(()) => Some(url),
        Err(m) => {
            errors.push(FieldError::new("url", m));
            None
        }
    }
}

pub async fn create_subscription(
    platform: &Platform,
    org: OrganizationId,
    input: NewSubscription,
) -> Result<SubscriptionView, DomainError> {
    let mut errors = Vec::new();
    let url = match input.url.as_deref() {
        None => {
            errors.push(FieldError::new("url", "is required"));
            None
        }
        Some(raw) => endpoint(platform, &mut errors, raw).await,
    };
    let filter_types = match input.event_types.as_deref() {
        None => {
            errors.push(FieldError::new("event_types", "is required"));
            None
        }
        Some(names) => parse_event_types("event_types", names)
            .map_err(|e| errors.push(e))
            .ok(),
    };
    let secret = match input.secret.as_deref() {
        None => Some(WebhookSecret::from_random(crate::oauth::random_bytes())),
        Some(raw) => WebhookSecret::parse(raw)
            .map_err(|m| errors.push(FieldError::new("secret", m)))
            .ok(),
    };
    let description = description(&mut errors, input.description);
    let (Some(url), Some(filter_types), Some(secret), true) =
        (url, filter_types, secret, errors.is_empty())
    else {
        return Err(DomainError::invalid(errors));
    };
    let now = platform.clock.now();
    let subscription = Subscription {
        id: SubscriptionId::new(),
        organization_id: org,
        url,
        filter_types,
        disabled: false,
        description,
        created_at: now,
        updated_at: now,
        failing_since: None,
    };
    platform
        .webhook_secrets
        .create_webhook_secret(org, subscription.id, &secret)
        .await
        .map_err(DomainError::internal)?;
    if let Err(e) = platform.webhooks.insert_subscription(&subscription).await {
        // Not stored: its secret must not outlive it (a failure here is left to the log).
        if let Err(cleanup) = platform
            .webhook_secrets
            .delete_webhook_secret(org, subscription.id)
            .await
        {
            warn!(error = %cleanup, subscription_id = %subscription.id, "could not delete the secret of a subscription that was not stored");
        }
        return Err(DomainError::internal(e));
    }
    Ok(SubscriptionView::of(subscription, Health::Unknown))
}

async fn health(
    platform: &Platform,
    subscription: &Subscription,
    limit: usize,
) -> Result<(Health, Vec<DeliveryAttempt>), DomainError> {
    let attempts = platform
        .webhooks
        .subscription_attempts(subscription.organization_id, subscription.id, limit)
        .await
        .map_err(DomainError::internal)?;
    Ok((Health::of(&attempts), attempts))
}

pub async fn list_subscriptions(
    platform: &Platform,
    org: OrganizationId,
) -> Result<Vec<SubscriptionView>, DomainError> {
    let found = platform
        .webhooks
        .list_subscriptions(org)
        .await
        .map_err(DomainError::internal)?;
    let mut views = Vec::with_capacity(found.len());
    for subscription in found {
        let (health, _) = health(platform, &subscription, Health::WINDOW).await?;
        views.push(SubscriptionView::of(subscription, health));
    }
    Ok(views)
}

pub(crate) async fn read(
    platform: &Platform,
    org: OrganizationId,
    id: &str,
) -> Result<(Subscription, u64), DomainError> {
    let found = platform
        .webhooks
        .get_subscription(org, parse_id(id)?)
        .await
        .map_err(DomainError::internal)?
        .ok_or_else(|| not_found(id))?;
    Ok((found.value, found.version))
}

pub async fn get_subscription(
    platform: &Platform,
    org: OrganizationId,
    id: &str,
    include_secret: bool,
) -> Result<SubscriptionDetail, DomainError> {
    let (subscription, _) = read(platform, org, id).await?;
    let (health, attempts) = health(platform, &subscription, DETAIL_ATTEMPTS).await?;
    let secret = if include_secret {
        let secret = platform
            .webhook_secrets
            .webhook_secret(org, subscription.id)
            .await
            .map_err(DomainError::internal)?
            .ok_or_else(|| {
                DomainError::internal(std::io::Error::other(
                    "the subscription's secret is missing",
                ))
            })?;
        Some(secret.expose().to_owned())
    } else {
        None
    };
    Ok(SubscriptionDetail {
        subscription: SubscriptionView::of(subscription, health),
        delivery_attempts: attempts,
        secret,
    })
}

/// Applies a PATCH. Re-enabling forgets how long the subscription had been failing and, with
/// `recover_since`, sends again what did not succeed since then (as a recovery would).
pub async fn update_subscription(
    platform: &Platform,
    org: OrganizationId,
    id: &str,
    change: SubscriptionChange,
) -> Result<SubscriptionView, DomainError> {
    let mut errors = Vec::new();
    let url = match change.url.as_deref() {
        None => None,
        Some(raw) => endpoint(platform, &mut errors, raw).await,
    };
    let filter_types = change.event_types.as_deref().and_then(|names| {
        parse_event_types("event_types", names)
            .map_err(|e| errors.push(e))
            .ok()
    });
    let description = description(&mut errors, change.description.clone());
    if change.recover_since.is_some() && change.disabled != Some(false) {
        errors.push(FieldError::new(
            "recover_since",
            "is only taken with disabled: false (re-enabling)",
        ));
    }
    if !errors.is_empty() {
        return Err(DomainError::invalid(errors));
    }
    // Another writer may change it between the read and the write: read again and retry.
    for _ in 0..3 {
        let (mut subscription, version) = read(platform, org, id).await?;
        if let Some(url) = &url {
            subscription.url = url.clone();
        }
        if let Some(types) = &filter_types {
            subscription.filter_types = types.clone();
        }
        if change.description.is_some() {
            subscription.description = description.clone();
        }
        if let Some(disabled) = change.disabled {
            if subscription.disabled && !disabled {
                subscription.failing_since = None;
            }
            subscription.disabled = disabled;
        }
        subscription.updated_at = platform.clock.now();
        match platform
            .webhooks
            .replace_subscription(&subscription, version)
            .await
        {
            Ok(()) => {
                if let Some(since) = change.recover_since {
                    let now = platform.clock.now();
                    super::recover::resend(platform, org, subscription.id, since, now).await?;
                }
                let (health, _) = health(platform, &subscription, Health::WINDOW).await?;
                return Ok(SubscriptionView::of(subscription, health));
            }
            Err(StoreError::VersionConflict) => continue,
            Err(e) => return Err(DomainError::internal(e)),
        }
    }
    Err(DomainError::Conflict(
        "the subscription kept changing; try again".into(),
    ))
}

/// Removes the subscription, then its secret; answers it as it was.
pub async fn delete_subscription(
    platform: &Platform,
    org: OrganizationId,
    id: &str,
) -> Result<SubscriptionView, DomainError> {
    let sid = parse_id(id)?;
    let (subscription, _) = read(platform, org, id).await?;
    let (health, _) = health(platform, &subscription, Health::WINDOW).await?;
    let removed = platform
        .webhooks
        .delete_subscription(org, sid)
        .await
        .map_err(DomainError::internal)?
        .ok_or_else(|| not_found(id))?;
    platform
        .webhook_secrets
        .delete_webhook_secret(org, sid)
        .await
        .map_err(DomainError::internal)?;
    Ok(SubscriptionView::of(removed, health))
}
