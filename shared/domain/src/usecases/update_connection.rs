//! `PATCH /source-connections/{id}`: Airweave's update fields (name, description, config,
//! schedule, direct credentials) plus `status` to pause (`inactive`) and resume (`active`).
//!
//! Everything is checked before anything is written: field errors (422), the source's config
//! schema, the schedule's interval, and the credentials (new ones, or the stored ones under a new
//! config) against the source itself. Then new credentials are staged in the vault, and the
//! connection is written by read-modify-write on its version, so that concurrent PATCHes each
//! apply their own fields to the latest state; the same transaction marks the staged
//! credentials current (`usecases::secrets`), which are promoted after. A PATCH refused at
//! that write (404, 409) changes nothing, credentials included.

use super::runs::stop_active_job;
use super::secrets;
use super::upstream_errors::credential_check_failed;
use super::Platform;
use crate::auth::{self, AuthenticationRequest};
use crate::catalog::{validate_fields, AuthMethod, SourceSpec};
use crate::connection::{ConnectionStatus, JobDetails, SourceConnection};
use crate::error::{ok_or_record, DomainError, FieldError};
use crate::error_category::ErrorCategory;
use crate::ids::{ConnectionId, OrganizationId};
use crate::names::{ConnectionName, Description};
use crate::ports::{check_secret_size, StoreError, VaultError};
use crate::redact::Redacted;
use crate::schedule::{check_interval, ScheduleDetails};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use tracing::{info, instrument, warn};

/// Read-modify-write attempts before a PATCH gives up on a connection that keeps changing.
const ATTEMPTS: usize = 8;

/// The body of `PATCH /source-connections/{id}`: only the fields to change.
#[derive(Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConnectionInput {
    /// 4-42 characters.
    #[schema(min_length = 4, max_length = 42)]
    pub name: Option<String>,
    /// At most 255 characters.
    #[schema(max_length = 255)]
    pub description: Option<String>,
    /// The whole new configuration, validated against the source's `config_fields`.
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    /// `{"cron": "<5-field UTC cron>" | null, ...}`; `{"cron": null}` removes the schedule.
    #[schema(value_type = Option<Object>)]
    pub schedule: Option<Value>,
    /// `{"credentials": {..}}` for a connection with direct authentication: checked with the
    /// source before it replaces the stored credentials.
    #[schema(value_type = Option<Object>)]
    pub authentication: Option<Value>,
    /// `"inactive"` pauses the connection (no scheduled runs, `/run` refused); `"active"`
    /// resumes it.
    #[schema(value_type = Option<String>, pattern = "^(active|inactive)$")]
    pub status: Option<String>,
}

/// Never shows `authentication`: a `?input` in a log line must not leak credentials.
impl std::fmt::Debug for UpdateConnectionInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateConnectionInput")
            .field("name", &self.name)
            .field("description", &self.description)
            .field("config", &self.config)
            .field("schedule", &self.schedule)
            .field("authentication", &Redacted(&self.authentication))
            .field("status", &self.status)
            .finish()
    }
}

/// A pause or a resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Switch {
    Pause,
    Resume,
}

/// What the request asks for, checked without I/O.
#[derive(Debug, Default)]
struct Changes {
    name: Option<ConnectionName>,
    description: Option<Description>,
    config: Option<Map<String, Value>>,
    schedule: Option<ScheduleDetails>,
    authentication: Option<AuthenticationRequest>,
    switch: Option<Switch>,
}

#[instrument(skip_all, fields(organization_id = %org, source_connection_id = %id))]
pub async fn update_connection(
    platform: &Platform,
    org: OrganizationId,
    id: &str,
    input: UpdateConnectionInput,
) -> Result<SourceConnection, DomainError> {
    let not_found = || DomainError::NotFound(format!("source connection '{id}' not found"));
    let parsed: ConnectionId = id.parse().map_err(|_| not_found())?;
    let now = platform.clock.now();
    let changes = parse(input, now)?;

    let store = &platform.store;
    let first = store
        .get_versioned(org, parsed)
        .await
        .map_err(DomainError::internal)?
        .ok_or_else(not_found)?;
    let spec = platform
        .sources
        .spec(&first.value.short_name)
        .ok_or_else(|| {
            DomainError::BadRequest(format!(
                "source '{}' is no longer offered",
                first.value.short_name
            ))
        })?;
    check(spec, &first.value, &changes, now)?;

    if let (Some(config), None) = (&changes.config, &changes.authentication) {
        // A new config may point the stored credentials somewhere they cannot read (another
        // repository): check them against it before storing it.
        let stored = secrets::read(platform, org, parsed)
            .await
            .map_err(DomainError::internal)?;
        if let Some(auth) = stored.and_then(|s| auth::parse_credential_document(&s.value).ok()) {
            platform
                .sources
                .check_credentials(spec.short_name, &auth, config)
                .await
                .map_err(|e| credential_check_failed(spec, e))?;
        }
    }
    let mut staged = None;
    if let Some(auth) = &changes.authentication {
        let config = changes
            .config
            .clone()
            .or_else(|| first.value.config.clone())
            .unwrap_or_default();
        platform
            .sources
            .check_credentials(spec.short_name, auth, &config)
            .await
            .map_err(|e| credential_check_failed(spec, e))?;
        let document = auth::credential_document(auth)
            .ok_or_else(|| DomainError::BadRequest("these credentials cannot be stored".into()))?;
        // Staged, not current yet; only direct connections get here, and they have had their
        // secret since their create: a missing one was deleted with its connection.
        let version = platform
            .vault
            .stage_connection_secret(org, parsed, &document)
            .await
            .map_err(|e| match e {
                VaultError::Missing => not_found(),
                other => DomainError::internal(other),
            })?;
        staged = Some(version);
    }

    let mut current = first;
    for _ in 0..ATTEMPTS {
        // Checked again on the state being replaced: a concurrent PATCH may have paused it.
        check(spec, &current.value, &changes, now)?;
        let mut updated = apply(&current.value, &changes, now);
        let replaced = match &staged {
            // The new credentials count from this write on: a PATCH refused here changed
            // nothing (its staged version never becomes current).
            Some(version) => {
                store
                    .replace_connection_with_secret(&updated, current.version, version)
                    .await
            }
            None => {
                store
                    .replace_connection(&updated, current.version, &[])
                    .await
            }
        };
        match replaced {
            Ok(()) => {
                if let Some(version) = &staged {
                    if let Err(e) = secrets::promote(platform, org, parsed, version).await {
                        // Marked current already: the next read promotes it.
                        warn!(error = %e, "could not promote the new credentials yet");
                    }
                    info!("credentials replaced");
                }
                info!(
                    status = updated.status.as_str(),
                    "source connection updated"
                );
                if changes.switch == Some(Switch::Pause) {
                    // A paused connection runs nothing: its job stops as a cancel stops it.
                    if let Some(job) = stop_active_job(platform, org, &updated).await? {
                        updated.sync.get_or_insert_with(Default::default).last_job =
                            Some(JobDetails::from(&job));
                    }
                }
                return Ok(updated);
            }
            Err(StoreError::VersionConflict) => {
                current = store
                    .get_versioned(org, parsed)
                    .await
                    .map_err(DomainError::internal)?
                    .ok_or_else(not_found)?;
            }
            Err(e) => return Err(DomainError::internal(e)),
        }
    }
    Err(DomainError::Conflict(
        "the connection kept changing while it was being updated; retry".into(),
    ))
}

/// Every check that needs no I/O, all field errors at once.
fn parse(input: UpdateConnectionInput, now: DateTime<Utc>) -> Result<Changes, DomainError> {
    let UpdateConnectionInput {
        name,
        description,
        config,
        schedule,
        authentication,
        status,
    } = input;
    if name.is_none()
        && description.is_none()
        && config.is_none()
        && schedule.is_none()
        && authentication.is_none()
        && status.is_none()
    {
        return Err(DomainError::invalid(vec![FieldError::new(
            "body",
            "must change at least one of name, description, config, schedule, authentication, status",
        )]));
    }
    let mut errors = Vec::new();
    let mut changes = Changes {
        name: name.and_then(|n| ok_or_record(&mut errors, "name", ConnectionName::parse(&n))),
        description: description
            .and_then(|d| ok_or_record(&mut errors, "description", Description::parse(&d))),
        ..Changes::default()
    };
    match config {
        None => {}
        Some(Value::Object(map)) => changes.config = Some(map),
        Some(_) => errors.push(FieldError::new("config", "must be an object")),
    }
    match schedule {
        None => {}
        Some(value @ Value::Object(_)) => match ScheduleDetails::parse(Some(&value), now) {
            Ok(details) => changes.schedule = Some(details),
            Err(e) => errors.extend(e),
        },
        Some(_) => errors.push(FieldError::new(
            "schedule",
            "must be an object such as {\"cron\": \"0 * * * *\"} or {\"cron\": null}",
        )),
    }
    if let Some(value) = authentication {
        match auth::detect(Some(&value), now) {
            Ok(auth @ AuthenticationRequest::Direct(_)) => changes.authentication = Some(auth),
            Ok(_) => errors.push(FieldError::new(
                "authentication",
                "only direct credentials ({\"credentials\": {...}}) can be replaced here",
            )),
            Err(e) => errors.extend(e),
        }
    }
    match status.as_deref() {
        None => {}
        Some("inactive") => changes.switch = Some(Switch::Pause),
        Some("active") => changes.switch = Some(Switch::Resume),
        Some(_) => errors.push(FieldError::new(
            "status",
            "must be \"active\" (resume) or \"inactive\" (pause)",
        )),
    }
    if errors.is_empty() {
        Ok(changes)
    } else {
        Err(DomainError::invalid(errors))
    }
}

/// The checks against the source and the connection's state.
fn check(
    spec: &SourceSpec,
    connection: &SourceConnection,
    changes: &Changes,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    let mut errors = Vec::new();
    if let Some(config) = &changes.config {
        errors.extend(validate_fields(&spec.config_fields, config, "config"));
    }
    if let Some(schedule) = &changes.schedule {
        if let Err(e) = check_interval(spec, schedule, now) {
            errors.push(e);
        }
    }
    if let Some(auth @ AuthenticationRequest::Direct(credentials)) = &changes.authentication {
        if connection.auth.method == AuthMethod::Direct {
            let before = errors.len();
            errors.extend(validate_fields(
                &spec.auth_fields,
                credentials.expose(),
                "authentication.credentials",
            ));
            // Each field within its bound, yet together more than a secret holds.
            let document = auth::credential_document(auth).expect("direct credentials");
            if errors.len() == before {
                errors.extend(check_secret_size(&document, "authentication.credentials").err());
            }
        }
    }
    if !errors.is_empty() {
        return Err(DomainError::invalid(errors));
    }
    if changes.authentication.is_some() && connection.auth.method != AuthMethod::Direct {
        return Err(DomainError::BadRequest(format!(
            "this connection uses {} authentication; only direct credentials can be replaced with PATCH",
            connection.auth.method.as_str()
        )));
    }
    if changes.schedule.as_ref().is_some_and(|s| s.continuous) && !spec.supports_continuous {
        return Err(DomainError::BadRequest(format!(
            "source '{}' does not support continuous sync",
            spec.short_name
        )));
    }
    if changes.switch.is_some() && connection.status == ConnectionStatus::PendingAuth {
        return Err(DomainError::BadRequest(
            "the connection is waiting for authorization; complete the OAuth flow first".into(),
        ));
    }
    Ok(())
}

/// Whether the connection's last failure was its credentials'.
fn credentials_rejected(connection: &SourceConnection) -> bool {
    matches!(
        connection.error_category,
        Some(
            ErrorCategory::ApiKeyInvalid
                | ErrorCategory::OauthCredentialsExpired
                | ErrorCategory::AuthProviderAccountGone
                | ErrorCategory::AuthProviderCredentialsInvalid
        )
    )
}

/// The connection with the changes applied.
fn apply(before: &SourceConnection, changes: &Changes, now: DateTime<Utc>) -> SourceConnection {
    let mut c = before.clone();
    if let Some(name) = &changes.name {
        c.name = name.as_str().to_owned();
    }
    if let Some(description) = &changes.description {
        c.description = Some(description.as_str().to_owned());
    }
    if let Some(config) = &changes.config {
        c.config = Some(config.clone());
    }
    if let Some(schedule) = &changes.schedule {
        c.schedule = Some(schedule.clone());
    }
    if changes.authentication.is_some() {
        c.auth.authenticated = true;
        c.auth.authenticated_at = Some(now);
        if credentials_rejected(&c) {
            c.error_category = None;
            c.error_message = None;
        }
        if c.status == ConnectionStatus::NeedsReauth {
            c.status = ConnectionStatus::Active;
        }
    }
    match changes.switch {
        Some(Switch::Pause) => c.status = ConnectionStatus::Inactive,
        Some(Switch::Resume) if c.status == ConnectionStatus::Inactive => {
            c.status = if credentials_rejected(&c) {
                ConnectionStatus::NeedsReauth
            } else {
                ConnectionStatus::Active
            };
        }
        Some(Switch::Resume) | None => {}
    }
    c.replan_schedule(before, now);
    c.modified_at = now;
    c
}
