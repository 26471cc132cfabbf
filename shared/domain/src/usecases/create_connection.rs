//! `POST /source-connections`: validate everything, then write the secret, then one transaction
//! (connection + first job + collection-exists condition + idempotency result), then the sync
//! message. A failure after the secret is written removes it (DESIGN section 4).

mod resolve;

use crate::usecases::webhooks::outbox::Outbox;
use crate::webhooks::{Event, EventType};
use resolve::{authenticated, checked_credentials, start_browser_flow, through_provider, Resolved};

use super::Platform;
use crate::auth::{self, AuthenticationRequest, StoredCredential};
use crate::catalog::{validate_fields, AuthMethod, SourceSpec};
use crate::connection::{
    ConnectionStatus, EntitySummary, JobDetails, SourceConnection, SyncDetails,
};
use crate::error::{ok_or_record, DomainError, FieldError};
use crate::idempotency::{self, Claim, KeyState, KeyedRequest, Reservation};
use crate::ids::{ConnectionId, JobId, OrganizationId};
use crate::job::{Job, Trigger};
use crate::names::{ConnectionName, Description, ReadableId, RedirectUrl, ShortName};
use crate::ports::{check_secret_size, NewConnection, StoreError, VaultError};
use crate::redact::Redacted;
use crate::schedule::{check_interval, ScheduleDetails};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::time::Duration;
use tracing::{info, instrument, warn};

/// The body of `POST /source-connections`, exactly Airweave's request schema.
#[derive(Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConnectionInput {
    /// Source type identifier, e.g. `github` or `stub`.
    #[schema(value_type = String, pattern = "^[a-z][a-z0-9_]{1,63}$")]
    pub short_name: Option<String>,
    /// Readable id of the collection the connection joins.
    #[schema(value_type = String, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", min_length = 3, max_length = 64)]
    pub readable_collection_id: Option<String>,
    /// 4-42 characters; default `"{Source Name} Connection"`.
    #[schema(min_length = 4, max_length = 42)]
    pub name: Option<String>,
    /// At most 255 characters.
    #[schema(max_length = 255)]
    pub description: Option<String>,
    /// Source-specific configuration, validated against the source's `config_fields`.
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    /// `{"cron": "<5-field UTC cron>" | null, "continuous": bool, "cursor_field": string}`.
    /// Omitted: daily at the creation hour:minute UTC. `{"cron": null}`: no schedule.
    #[schema(value_type = Option<Object>)]
    pub schedule: Option<Value>,
    /// Default true for direct and token credentials, false for browser OAuth flows.
    pub sync_immediately: Option<bool>,
    /// The method is told by its fields: `{"credentials": {..}}` (direct), `{"access_token",
    /// "refresh_token", "expires_at" | "expires_in"}` (oauth_token), `{}` (oauth_browser),
    /// `{"client_id", "client_secret"}` (oauth_byoc), `{"provider_readable_id",
    /// "provider_config"}` (auth_provider). Mixing two is a 422. An optional `type` naming the
    /// method (as Airweave's CLI sends it) must name the one the fields give.
    #[schema(value_type = Option<Object>)]
    pub authentication: Option<Value>,
    /// Where the browser returns after an OAuth flow.
    pub redirect_url: Option<String>,
}

/// Never shows `authentication`: a `?input` in a log line must not leak credentials.
impl std::fmt::Debug for CreateConnectionInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateConnectionInput")
            .field("short_name", &self.short_name)
            .field("readable_collection_id", &self.readable_collection_id)
            .field("name", &self.name)
            .field("description", &self.description)
            .field("config", &self.config)
            .field("schedule", &self.schedule)
            .field("sync_immediately", &self.sync_immediately)
            .field("authentication", &Redacted(&self.authentication))
            .field("redirect_url", &self.redirect_url)
            .finish()
    }
}

/// A request that passed every check that needs no I/O.
#[derive(Debug)]
struct Plan<'a> {
    spec: &'a SourceSpec,
    collection: ReadableId,
    name: ConnectionName,
    description: Option<Description>,
    config: Map<String, Value>,
    schedule: ScheduleDetails,
    auth: AuthenticationRequest,
    redirect_url: Option<RedirectUrl>,
    sync_immediately: bool,
}

/// The result of a create: the connection, and whether it is the replay of an earlier request.
#[derive(Debug, Clone)]
pub struct Created {
    pub connection: SourceConnection,
    pub replayed: bool,
}

/// How long a keyed retry waits for a concurrent request with the same key to finish.
pub const WAIT_FOR_CONCURRENT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(100);

/// `keyed`: the `Idempotency-Key` and the body as sent, when the request has one.
#[instrument(skip_all, fields(organization_id = %org, short_name = tracing::field::Empty, source_connection_id = tracing::field::Empty))]
pub async fn create_connection(
    platform: &Platform,
    org: OrganizationId,
    input: CreateConnectionInput,
    keyed: Option<KeyedRequest<'_>>,
) -> Result<Created, DomainError> {
    let now = platform.clock.now();
    let plan = plan(platform, input, now)?;
    tracing::Span::current().record("short_name", plan.spec.short_name);

    let reservation = match keyed {
        None => None,
        Some(keyed) => match claim(platform, org, keyed, now).await? {
            Ok(reservation) => Some(reservation),
            Err(replay) => return Ok(replay),
        },
    };
    let (connection_id, job_id) = reservation.as_ref().map_or_else(
        || (ConnectionId::new(), JobId::new()),
        |r| (r.connection_id, r.job_id),
    );
    tracing::Span::current().record(
        "source_connection_id",
        tracing::field::display(connection_id),
    );

    let result = write(
        platform,
        org,
        &plan,
        connection_id,
        job_id,
        reservation.as_ref(),
        now,
    )
    .await;
    if let (Err(_), Some(reservation)) = (&result, &reservation) {
        if let Err(e) = platform.store.release_key(reservation).await {
            warn!(error = %e, "could not release the idempotency key; it frees itself when its lease ends");
        }
    }
    result.map(|connection| Created {
        connection,
        replayed: false,
    })
}

/// Every check that needs no I/O, all field errors at once.
fn plan(
    platform: &Platform,
    input: CreateConnectionInput,
    now: DateTime<Utc>,
) -> Result<Plan<'_>, DomainError> {
    let short_name = match input.short_name.as_deref() {
        None => return Err(DomainError::invalid_field("short_name", "is required")),
        Some(s) => ShortName::parse(s).map_err(|m| DomainError::invalid_field("short_name", m))?,
    };
    let spec = platform
        .sources
        .spec(short_name.as_str())
        .ok_or_else(|| DomainError::NotFound(format!("source '{short_name}' not found")))?;

    let mut errors: Vec<FieldError> = Vec::new();
    let collection = match input.readable_collection_id.as_deref() {
        None => ok_or_record(
            &mut errors,
            "readable_collection_id",
            Err("is required".into()),
        ),
        Some(id) => ok_or_record(&mut errors, "readable_collection_id", ReadableId::parse(id)),
    };
    let name = match input.name.as_deref() {
        None => Some(ConnectionName::default_for(spec.name)),
        Some(n) => ok_or_record(&mut errors, "name", ConnectionName::parse(n)),
    };
    let description = input
        .description
        .as_deref()
        .and_then(|d| ok_or_record(&mut errors, "description", Description::parse(d)));
    let redirect_url = input
        .redirect_url
        .as_deref()
        .and_then(|u| ok_or_record(&mut errors, "redirect_url", RedirectUrl::parse(u)));
    let schedule = ScheduleDetails::parse(input.schedule.as_ref(), now)
        .map_err(|e| errors.extend(e))
        .ok();
    let config = match input.config {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => {
            errors.push(FieldError::new("config", "must be an object"));
            Map::new()
        }
    };
    errors.extend(validate_fields(&spec.config_fields, &config, "config"));
    let auth = match auth::detect(input.authentication.as_ref(), now) {
        Ok(auth) => {
            if let AuthenticationRequest::Direct(credentials) = &auth {
                // Credentials for a source without direct auth are a 400 below, not a 422 here.
                if spec.supports(AuthMethod::Direct) {
                    errors.extend(validate_fields(
                        &spec.auth_fields,
                        credentials.expose(),
                        "authentication.credentials",
                    ));
                }
            }
            Some(auth)
        }
        Err(e) => {
            errors.extend(e);
            None
        }
    };
    if let (Some(_), Some(auth)) = (&redirect_url, &auth) {
        if !matches!(
            auth.method(),
            AuthMethod::OauthBrowser | AuthMethod::OauthByoc
        ) {
            errors.push(FieldError::new(
                "redirect_url",
                "is only used by oauth_browser and oauth_byoc authentication",
            ));
        }
    }
    if let (Some(auth), true) = (&auth, errors.is_empty()) {
        // Each field within its bound, yet together more than a secret holds.
        let stored = auth::credential_document(auth);
        if let Some(Err(e)) = stored.map(|d| check_secret_size(&d, "authentication")) {
            errors.push(e);
        }
    }
    let (Some(collection), Some(name), Some(schedule), Some(auth), true) =
        (collection, name, schedule, auth, errors.is_empty())
    else {
        return Err(DomainError::invalid(errors));
    };

    let method = auth.method();
    if !spec.supports(method) {
        let supported: Vec<&str> = spec.auth_methods.iter().map(|m| m.as_str()).collect();
        return Err(DomainError::BadRequest(format!(
            "source '{}' does not support {} authentication (supported: {})",
            spec.short_name,
            method.as_str(),
            supported.join(", ")
        )));
    }
    let browser = matches!(method, AuthMethod::OauthBrowser | AuthMethod::OauthByoc);
    if browser && input.sync_immediately == Some(true) {
        return Err(DomainError::BadRequest(
            "sync_immediately cannot be true for a browser OAuth flow: the first sync runs once the user has authorized".into(),
        ));
    }
    if schedule.continuous && !spec.supports_continuous {
        return Err(DomainError::BadRequest(format!(
            "source '{}' does not support continuous sync",
            spec.short_name
        )));
    }
    check_interval(spec, &schedule, now).map_err(|e| DomainError::invalid(vec![e]))?;
    Ok(Plan {
        spec,
        collection,
        name,
        description,
        config,
        schedule,
        auth,
        redirect_url,
        sync_immediately: input.sync_immediately.unwrap_or(!browser),
    })
}

fn collection_missing(collection: &ReadableId) -> DomainError {
    DomainError::NotFound(format!("collection '{collection}' not found"))
}

/// After the create's transaction failed: `Ok` when it committed all the same (the failure was
/// a timeout or a 5xx after it was applied, or the SDK's retry of it found our own write), else
/// the error to answer. Nothing may point at a missing secret, so the secret is removed only
/// when the transaction is known not to have committed; when that cannot be told, it is left
/// for the scheduler's orphan sweep.
async fn committed_anyway(
    platform: &Platform,
    org: OrganizationId,
    connection_id: ConnectionId,
    collection: &ReadableId,
    error: StoreError,
    has_secret: bool,
    keyed: bool,
) -> Result<(), DomainError> {
    let taken_over = || {
        DomainError::Conflict(
            "a concurrent request created this connection; retry with the same Idempotency-Key to read it".into(),
        )
    };
    let failed = match error {
        StoreError::CollectionNotFound => collection_missing(collection),
        // The key was taken over: the new holder writes (and may have committed) the same
        // connection id with the same secret. Not ours to remove; the client's retry with the
        // key reads the result.
        StoreError::LeaseLost => return Err(taken_over()),
        StoreError::AlreadyExists if keyed => return Err(taken_over()),
        // A timeout or a 5xx, or (unkeyed, the id is fresh) the SDK's retry finding our own
        // write: whether it committed is read back.
        other => match platform.store.get_connection(org, connection_id).await {
            Ok(Some(_)) => {
                warn!(error = %other, "the create's transaction reported a failure but committed");
                return Ok(());
            }
            Ok(None) => DomainError::internal(other),
            Err(check) => {
                warn!(error = %check, "could not tell whether the create committed; its secret is left to the orphan sweep");
                return Err(DomainError::internal(other));
            }
        },
    };
    if has_secret {
        if let Err(cleanup) = platform
            .vault
            .delete_connection_secret(org, connection_id)
            .await
        {
            tracing::error!(error = %cleanup, "could not remove the secret of a failed create");
        }
    }
    Err(failed)
}

/// Takes the key, or answers the stored result of the request that took it first.
/// `Ok(Err(created))` is a replay. Without the fingerprint key nothing is claimed: the create
/// fails before its first write.
async fn claim(
    platform: &Platform,
    org: OrganizationId,
    keyed: KeyedRequest<'_>,
    now: DateTime<Utc>,
) -> Result<Result<Reservation, Created>, DomainError> {
    let fingerprint = platform
        .fingerprint_key
        .fingerprinter()
        .await
        .map_err(DomainError::internal)?
        .fingerprint(keyed.body);
    let candidate = Reservation {
        organization_id: org,
        key: keyed.key.as_str().to_owned(),
        fingerprint: fingerprint.clone(),
        connection_id: ConnectionId::new(),
        job_id: JobId::new(),
        lease_token: uuid::Uuid::new_v4().to_string(),
        lease_until: now + idempotency::LEASE,
        expires_at: now + idempotency::RETENTION,
    };
    let reused = || {
        DomainError::invalid_field(
            "Idempotency-Key",
            "was already used with a different request body",
        )
    };
    let deadline = tokio::time::Instant::now() + WAIT_FOR_CONCURRENT;
    loop {
        let claim = match platform
            .store
            .claim_key(&candidate, platform.clock.now())
            .await
        {
            Ok(claim) => claim,
            Err(e) => {
                // The write may have landed (a timeout after it was applied): free the key if
                // it is ours, so that the client's retry is not told to wait out the lease.
                if let Err(release) = platform.store.release_key(&candidate).await {
                    warn!(error = %release, "could not release the idempotency key; it frees itself when its lease ends");
                }
                return Err(DomainError::internal(e));
            }
        };
        match claim {
            Claim::Acquired(reservation) => return Ok(Ok(reservation)),
            // Our own claim, found by a retry of the write that had landed (a 5xx after it was
            // applied): it is ours.
            Claim::Held(KeyState::InProgress(r)) if r.lease_token == candidate.lease_token => {
                return Ok(Ok(r))
            }
            Claim::Held(KeyState::Completed { fingerprint: f, .. }) if f != fingerprint => {
                return Err(reused())
            }
            Claim::Held(KeyState::Completed { response, .. }) => {
                let connection: SourceConnection =
                    serde_json::from_str(&response).map_err(DomainError::internal)?;
                info!(source_connection_id = %connection.id, "replayed an idempotent create");
                return Ok(Err(Created {
                    connection,
                    replayed: true,
                }));
            }
            Claim::Held(KeyState::InProgress(r)) if r.fingerprint != fingerprint => {
                return Err(reused())
            }
            Claim::Held(KeyState::InProgress(_)) => {
                if tokio::time::Instant::now() >= deadline {
                    return Err(DomainError::Conflict(
                        "a request with this Idempotency-Key is still in progress; retry later"
                            .into(),
                    ));
                }
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

/// Collection check, credential check (or the browser flow's start), secret, transaction,
/// message.
async fn write(
    platform: &Platform,
    org: OrganizationId,
    plan: &Plan<'_>,
    connection_id: ConnectionId,
    job_id: JobId,
    reservation: Option<&Reservation>,
    now: DateTime<Utc>,
) -> Result<SourceConnection, DomainError> {
    let collection = platform
        .store
        .get_collection(org, &plan.collection)
        .await
        .map_err(DomainError::internal)?
        .ok_or_else(|| collection_missing(&plan.collection))?;

    let resolved = match &plan.auth {
        AuthenticationRequest::OauthBrowser | AuthenticationRequest::OauthByoc { .. } => {
            start_browser_flow(platform, org, plan, connection_id, now).await?
        }
        AuthenticationRequest::AuthProvider {
            provider_readable_id,
            provider_config,
        } => {
            through_provider(
                platform,
                org,
                plan,
                provider_readable_id,
                provider_config.as_ref(),
                now,
            )
            .await?
        }
        direct_or_token => {
            let secret = checked_credentials(platform, plan, direct_or_token, now).await?;
            let expires_at = match &secret {
                StoredCredential::Tokens { token, .. } => token.expires_at,
                _ => None,
            };
            Resolved {
                secret: Some(secret),
                status: ConnectionStatus::Active,
                auth: authenticated(plan.auth.method(), expires_at, now),
                auth_url: None,
                provider: None,
            }
        }
    };

    let first_job = (plan.sync_immediately && resolved.status == ConnectionStatus::Active)
        .then(|| Job::pending(job_id, org, connection_id, Trigger::Initial, now));
    let connection = build_connection(plan, org, connection_id, first_job.as_ref(), &resolved, now);

    if let Some(secret) = &resolved.secret {
        // The connection id doubles as the request token: a retry of a keyed create re-uses both.
        platform
            .vault
            .put_connection_secret(
                org,
                connection_id,
                &secret.document(),
                &connection_id.to_string(),
            )
            .await
            .map_err(|e| match e {
                VaultError::TokenReused => DomainError::Conflict(
                    "the credentials differ from an earlier attempt of this request".into(),
                ),
                // Only tokens the provider issued at a refresh can get here: the request's own
                // were checked when it was parsed.
                VaultError::TooLarge { bytes } => DomainError::invalid(vec![FieldError::new(
                    "authentication",
                    format!(
                        "the provider's tokens take {bytes} bytes once stored; the secret store \
                         holds at most {}",
                        crate::ports::SECRET_VALUE_LIMIT
                    ),
                )]),
                other => DomainError::internal(other),
            })?;
    }

    let response = serde_json::to_string(&connection).map_err(DomainError::internal)?;
    let outbox = Outbox::of(platform, org).await;
    let mut events =
        outbox.record(|| Event::connection(EventType::ConnectionCreated, &connection, now));
    if let Some(job) = first_job.as_ref().filter(|_| outbox.recording()) {
        events.push(Event::sync(job, &connection, collection.name.as_str(), now));
    }
    let inserted = platform
        .store
        .insert_connection(NewConnection {
            connection: &connection,
            first_job: first_job.as_ref(),
            idempotency: reservation.map(|r| (r, response.as_str())),
            events: &events,
        })
        .await;
    if let Err(e) = inserted {
        committed_anyway(
            platform,
            org,
            connection_id,
            &plan.collection,
            e,
            resolved.secret.is_some(),
            reservation.is_some(),
        )
        .await?;
    }
    info!(
        method = plan.auth.method().as_str(),
        status = connection.status.as_str(),
        "source connection created"
    );

    if let Some(job) = &first_job {
        // The connection and its pending job are committed: a lost message is re-enqueued by
        // the scheduler's sweep, so the create still succeeds.
        if let Err(e) = platform.queue.enqueue(&job.message()).await {
            warn!(job_id = %job.id, error = %e, "could not enqueue the first sync; the sweep will");
        }
    }
    // The authorize URL carries the flow's state: it is answered once and stored nowhere (a
    // keyed retry answers without it; reinitiate-oauth gives a fresh one).
    let mut connection = connection;
    connection.auth.auth_url = resolved.auth_url;
    Ok(connection)
}

fn build_connection(
    plan: &Plan<'_>,
    org: OrganizationId,
    id: ConnectionId,
    first_job: Option<&Job>,
    resolved: &Resolved,
    now: DateTime<Utc>,
) -> SourceConnection {
    let mut schedule = plan.schedule.clone();
    if resolved.status != ConnectionStatus::Active {
        // Scheduled once authorized.
        schedule.next_run = None;
    }
    SourceConnection {
        id,
        organization_id: org,
        name: plan.name.as_str().to_owned(),
        short_name: plan.spec.short_name.to_owned(),
        readable_collection_id: plan.collection.as_str().to_owned(),
        status: resolved.status,
        created_at: now,
        modified_at: now,
        auth: resolved.auth.clone(),
        description: plan.description.as_ref().map(|d| d.as_str().to_owned()),
        config: Some(plan.config.clone()),
        schedule: Some(schedule),
        sync: Some(SyncDetails {
            last_job: first_job.map(JobDetails::from),
            ..SyncDetails::default()
        }),
        sync_id: None,
        entities: Some(EntitySummary::default()),
        error_category: None,
        error_message: None,
        provider_settings_url: resolved.provider.map(|k| k.settings_url().to_owned()),
        provider_short_name: resolved.provider.map(|k| k.short_name().to_owned()),
        federated_search: plan.spec.federated_search,
    }
}
