//! Subscriptions: an organization's endpoint, the events it wants, its signing secret and its
//! health.

use super::message::{AttemptStatus, DeliveryAttempt};
use crate::ids::{OrganizationId, SubscriptionId};
use crate::FieldError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::fmt;

/// An endpoint's URL, parsed once: http(s) with a host, no credentials, at most 2,048
/// characters. Whether its host may be reached (https, public addresses) is the target check's
/// to say, at subscription and again at every delivery.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub const MAX_LEN: usize = 2048;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.len() > Self::MAX_LEN {
            return Err(format!("must be at most {} characters", Self::MAX_LEN));
        }
        let url = url::Url::parse(raw).map_err(|_| "must be an absolute URL".to_owned())?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err("must use https".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry credentials".into());
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("must name a host".into());
        }
        Ok(Self(url.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The path or query may carry a token of the customer's: only the origin is shown.
        match url::Url::parse(&self.0) {
            Ok(u) => write!(f, "WebhookUrl({})", u.origin().ascii_serialization()),
            Err(_) => f.write_str("WebhookUrl(..)"),
        }
    }
}

/// A subscription's signing secret: `whsec_` and the base64 of 32 random bytes, or the
/// customer's own (24-256 characters of base64, with or without `whsec_`). Receivers verify signatures with it; it is
/// kept in the vault only and shown only on request.
#[derive(Clone)]
pub struct WebhookSecret(SecretString);

impl WebhookSecret {
    pub const MIN_LEN: usize = 24;
    pub const MAX_LEN: usize = 256;
    const PREFIX: &'static str = "whsec_";

    pub fn from_random(bytes: [u8; 32]) -> Self {
        Self(SecretString::from(format!(
            "{}{}",
            Self::PREFIX,
            STANDARD.encode(bytes)
        )))
    }

    /// The customer's own secret. Verifiers (standardwebhooks, Svix's libraries) drop a
    /// `whsec_` prefix and base64-decode the rest into the key, so the rest must be base64.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let len = raw.chars().count();
        if len < Self::MIN_LEN {
            return Err(format!("must be at least {} characters", Self::MIN_LEN));
        }
        if len > Self::MAX_LEN {
            return Err(format!("must be at most {} characters", Self::MAX_LEN));
        }
        let encoded = raw.strip_prefix(Self::PREFIX).unwrap_or(raw);
        if STANDARD.decode(encoded).map_or(true, |key| key.is_empty()) {
            return Err(
                "must be base64 (optionally after whsec_): verifiers decode it into the signing key"
                    .into(),
            );
        }
        Ok(Self(SecretString::from(raw.to_owned())))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

/// A subscription as stored (its secret is in the vault).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub organization_id: OrganizationId,
    pub url: WebhookUrl,
    /// The event names it receives (at least one).
    pub filter_types: Vec<String>,
    pub disabled: bool,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Since when every attempt has failed; `None` after a success. Five days of it disable the
    /// subscription.
    #[serde(default)]
    pub failing_since: Option<DateTime<Utc>>,
}

impl Subscription {
    /// Whether a message of `event_type` is for this subscription (disabled or not).
    pub fn wants(&self, event_type: &str) -> bool {
        self.filter_types.iter().any(|t| t == event_type)
    }
}

/// The body of `POST /webhooks/subscriptions`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    /// Where events are POSTed: https, resolving to public addresses only.
    #[schema(value_type = String)]
    pub url: Option<String>,
    /// The events to receive; at least one (Airweave's event names; see the README for which
    /// ones fire).
    pub event_types: Option<Vec<String>>,
    /// Your own signing secret (at least 24 characters); one is generated when omitted.
    #[schema(value_type = Option<String>, min_length = 24)]
    pub secret: Option<String>,
    pub description: Option<String>,
}

/// The body of `PATCH /webhooks/subscriptions/{id}`: what to change.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionChange {
    #[schema(value_type = Option<String>)]
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    /// `true` stops deliveries; `false` resumes them.
    pub disabled: Option<bool>,
    /// With `disabled: false`: re-send what failed since then.
    pub recover_since: Option<DateTime<Utc>>,
    pub description: Option<String>,
}

/// Checks a list of event names: at least one, each known. Duplicates are dropped.
pub fn parse_event_types(field: &str, names: &[String]) -> Result<Vec<String>, FieldError> {
    if names.is_empty() {
        return Err(FieldError::new(field, "must name at least one event type"));
    }
    let mut out: Vec<String> = Vec::new();
    for name in names {
        if !super::event::is_known_event_type(name) {
            return Err(FieldError::new(
                field,
                format!("{name:?} is not an event type"),
            ));
        }
        if !out.contains(name) {
            out.push(name.clone());
        }
    }
    Ok(out)
}

/// A subscription's health from its last attempts (newest first, the last 10 count): none ->
/// unknown; the newest 3 all failed -> failing; all succeeded -> healthy; else degraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Healthy,
    Degraded,
    Failing,
    Unknown,
}

impl Health {
    pub const WINDOW: usize = 10;

    pub fn of(newest_first: &[DeliveryAttempt]) -> Self {
        let recent = &newest_first[..newest_first.len().min(Self::WINDOW)];
        let failed = |a: &DeliveryAttempt| a.status == AttemptStatus::Failed;
        if recent.is_empty() {
            Self::Unknown
        } else if recent.len() >= 3 && recent[..3].iter().all(failed) {
            Self::Failing
        } else if recent.iter().all(|a| a.status == AttemptStatus::Success) {
            Self::Healthy
        } else {
            Self::Degraded
        }
    }
}
