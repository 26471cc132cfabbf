//! `POST/GET /auth-providers/connections`: an organization's accounts at Composio and
//! Pipedream. The provider credentials go to the vault and are checked with the provider before
//! anything is stored; responses never carry them.

use super::upstream_errors::auth_provider_failed;
use super::Platform;
use crate::auth_provider::{ProviderConnection, ProviderCredentials, ProviderKind};
use crate::error::{ok_or_record, DomainError, FieldError};
use crate::ids::OrganizationId;
use crate::names::{Description, ReadableId};
use crate::page::{Page, PageRequest};
use crate::ports::{StoreError, VaultError};
use crate::redact::Redacted;
use serde::Deserialize;
use serde_json::{Map, Value};
use tracing::{info, instrument};

/// The body of `POST /auth-providers/connections`, as Airweave takes it.
#[derive(Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProviderConnectionInput {
    /// 4-42 characters.
    pub name: Option<String>,
    /// Unique in the organization; default: derived from the name.
    #[schema(pattern = "^[a-z0-9]+(-[a-z0-9]+)*$")]
    pub readable_id: Option<String>,
    /// `composio` or `pipedream`.
    pub short_name: Option<String>,
    #[schema(max_length = 255)]
    pub description: Option<String>,
    /// Composio: `{"api_key"}`. Pipedream: `{"client_id", "client_secret", "project_id",
    /// "environment"}` (environment `production` (default) or `development`).
    #[schema(value_type = Object)]
    pub auth_fields: Option<Value>,
}

/// Never shows `auth_fields`: a `?input` in a log line must not leak credentials.
impl std::fmt::Debug for CreateProviderConnectionInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateProviderConnectionInput")
            .field("name", &self.name)
            .field("readable_id", &self.readable_id)
            .field("short_name", &self.short_name)
            .field("description", &self.description)
            .field("auth_fields", &Redacted(&self.auth_fields))
            .finish()
    }
}

#[instrument(skip_all, fields(organization_id = %org))]
pub async fn create_provider_connection(
    platform: &Platform,
    org: OrganizationId,
    input: CreateProviderConnectionInput,
) -> Result<ProviderConnection, DomainError> {
    let mut errors: Vec<FieldError> = Vec::new();
    let kind = match input.short_name.as_deref() {
        None => ok_or_record(&mut errors, "short_name", Err("is required".into())),
        Some(s) => ok_or_record(
            &mut errors,
            "short_name",
            ProviderKind::parse(s).ok_or_else(|| "must be composio or pipedream".to_owned()),
        ),
    };
    let name = match input.name.as_deref().map(str::trim) {
        Some(n) if (4..=42).contains(&n.chars().count()) && !n.contains('\n') => Some(n.to_owned()),
        Some(_) => ok_or_record(
            &mut errors,
            "name",
            Err("must be 4-42 characters on one line".into()),
        ),
        None => kind.map(|k| format!("{} Connection", k.display_name())),
    };
    let readable_id = match (input.readable_id.as_deref(), &name) {
        (Some(id), _) => ok_or_record(&mut errors, "readable_id", ReadableId::parse(id)),
        (None, Some(name)) => ReadableId::parse(&slug(name)).ok(),
        (None, None) => None,
    };
    let description = input
        .description
        .as_deref()
        .and_then(|d| ok_or_record(&mut errors, "description", Description::parse(d)));
    let fields = match input.auth_fields {
        Some(Value::Object(map)) => map,
        None | Some(Value::Null) => {
            errors.push(FieldError::new("auth_fields", "is required"));
            Map::new()
        }
        Some(_) => {
            errors.push(FieldError::new("auth_fields", "must be an object"));
            Map::new()
        }
    };
    let credentials = kind.and_then(|kind| {
        ProviderCredentials::parse(kind, &fields)
            .map_err(|e| errors.extend(e))
            .ok()
    });
    let (Some(kind), Some(name), Some(readable_id), Some(credentials), true) =
        (kind, name, readable_id, credentials, errors.is_empty())
    else {
        if errors.is_empty() {
            errors.push(FieldError::new("readable_id", "is required"));
        }
        return Err(DomainError::invalid(errors));
    };

    if platform
        .store
        .get_provider_connection(org, &readable_id)
        .await
        .map_err(DomainError::internal)?
        .is_some()
    {
        return Err(already_exists(&readable_id));
    }
    platform
        .auth_providers
        .verify(&credentials)
        .await
        .map_err(|e| auth_provider_failed(kind, e))?;

    let now = platform.clock.now();
    let connection = ProviderConnection {
        id: uuid::Uuid::new_v4(),
        organization_id: org,
        name,
        readable_id: readable_id.as_str().to_owned(),
        short_name: kind.short_name().to_owned(),
        description: description.map(|d| d.as_str().to_owned()),
        created_at: now,
        modified_at: now,
    };
    platform
        .vault
        .put_provider_secret(org, &readable_id, &credentials.document())
        .await
        .map_err(|e| match e {
            // A concurrent create with other credentials got there first.
            VaultError::TokenReused => already_exists(&readable_id),
            other => DomainError::internal(other),
        })?;
    match platform.store.insert_provider_connection(&connection).await {
        Ok(()) => {}
        Err(StoreError::AlreadyExists) => return Err(already_exists(&readable_id)),
        Err(e) => {
            if let Err(cleanup) = platform
                .vault
                .delete_provider_secret(org, &readable_id)
                .await
            {
                tracing::error!(error = %cleanup, "could not remove the secret of a failed auth provider create");
            }
            return Err(DomainError::internal(e));
        }
    }
    info!(provider = kind.short_name(), readable_id = %readable_id, "auth provider connection created");
    Ok(connection)
}

fn already_exists(id: &ReadableId) -> DomainError {
    DomainError::Conflict(format!("an auth provider connection '{id}' already exists"))
}

/// `Name Of Thing` -> `name-of-thing`.
fn slug(name: &str) -> String {
    name.to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

pub async fn get_provider_connection(
    platform: &Platform,
    org: OrganizationId,
    readable_id: &str,
) -> Result<ProviderConnection, DomainError> {
    let missing = || {
        DomainError::NotFound(format!(
            "auth provider connection '{readable_id}' not found"
        ))
    };
    let id = ReadableId::parse(readable_id).map_err(|_| missing())?;
    platform
        .store
        .get_provider_connection(org, &id)
        .await
        .map_err(DomainError::internal)?
        .ok_or_else(missing)
}

pub async fn list_provider_connections(
    platform: &Platform,
    org: OrganizationId,
    page: &PageRequest,
) -> Result<Page<ProviderConnection>, DomainError> {
    platform
        .store
        .list_provider_connections(org, page)
        .await
        .map_err(|e| match e {
            StoreError::InvalidCursor => DomainError::invalid_field("cursor", "is not valid"),
            other => DomainError::internal(other),
        })
}

/// The provider and the organization's credentials for it.
pub(crate) async fn provider_credentials(
    platform: &Platform,
    org: OrganizationId,
    readable_id: &ReadableId,
) -> Result<(ProviderKind, ProviderCredentials), DomainError> {
    let connection = get_provider_connection(platform, org, readable_id.as_str()).await?;
    let kind = ProviderKind::parse(&connection.short_name)
        .ok_or_else(|| DomainError::internal(std::io::Error::other("unknown stored provider")))?;
    let credentials = platform
        .vault
        .get_provider_secret(org, readable_id)
        .await
        .map_err(DomainError::internal)?
        .and_then(|doc| ProviderCredentials::from_document(&doc))
        .ok_or_else(|| {
            DomainError::internal(std::io::Error::other(
                "the auth provider connection's credentials are missing",
            ))
        })?;
    Ok((kind, credentials))
}
