//! Use-case tests against in-memory fakes of the ports.

mod collections;
mod connections;
mod create_connection;
mod deletes;
mod faults;
mod idempotency;
mod oauth;
mod redaction;
mod rejections;
mod runs;
mod scheduler;
mod secrets;
mod tenancy;
mod updates;
mod validation;
mod webhook_delivery;
mod webhooks;

use crate::collection::CreateCollectionInput;
use crate::error::{DomainError, FieldError};
use crate::idempotency::{IdempotencyKey, KeyedRequest};
use crate::ids::OrganizationId;
use crate::testing::{platform, Fakes};
use crate::usecases::collections::create_collection;
use crate::usecases::create_connection::{create_connection, CreateConnectionInput, Created};
use crate::usecases::Platform;
use serde_json::{json, Value};

/// The API key the `stub` source is given in direct bodies; must never appear in a response.
const STUB_KEY: &str = "stub-key-5f2a9c0e-very-secret";

/// Fresh fakes and an organization that owns one collection, `docs`.
async fn setup() -> (Fakes, OrganizationId) {
    let fakes = platform();
    let org = OrganizationId::new();
    add_collection(&fakes.platform, org, "docs").await;
    (fakes, org)
}

pub(crate) async fn add_collection(platform: &Platform, org: OrganizationId, readable_id: &str) {
    create_collection(
        platform,
        org,
        CreateCollectionInput {
            name: Some(format!("Collection {readable_id}")),
            readable_id: Some(readable_id.to_owned()),
        },
    )
    .await
    .expect("collection created");
}

/// The smallest valid direct create: the `stub` source into `docs`.
pub(crate) fn direct_body() -> Value {
    json!({
        "short_name": "stub",
        "readable_collection_id": "docs",
        "authentication": {"credentials": {"api_key": STUB_KEY}},
    })
}

/// `base` with the top-level fields of `changes` set (a `null` in `changes` sets `null`).
fn with(mut base: Value, changes: Value) -> Value {
    let fields = base.as_object_mut().expect("an object body");
    for (k, v) in changes.as_object().expect("an object of changes") {
        fields.insert(k.clone(), v.clone());
    }
    base
}

/// Runs the create use case on a JSON body, as the handler does after parsing it.
pub(crate) async fn create(
    platform: &Platform,
    org: OrganizationId,
    body: Value,
) -> Result<Created, DomainError> {
    create_with_key(platform, org, body, None).await
}

async fn create_keyed(
    platform: &Platform,
    org: OrganizationId,
    body: Value,
    key: &str,
) -> Result<Created, DomainError> {
    create_with_key(platform, org, body, Some(key)).await
}

async fn create_with_key(
    platform: &Platform,
    org: OrganizationId,
    body: Value,
    key: Option<&str>,
) -> Result<Created, DomainError> {
    let input: CreateConnectionInput =
        serde_json::from_value(body.clone()).expect("the body matches the request schema");
    let key = key.map(|k| IdempotencyKey::parse(k).expect("a valid key"));
    let keyed = key.as_ref().map(|key| KeyedRequest { key, body: &body });
    create_connection(platform, org, input, keyed).await
}

/// The field errors of a 422 that names `field`; panics on any other answer.
#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(
    result: Result<T, DomainError>,
    field: &str,
) -> Vec<FieldError> {
    match result {
        Err(DomainError::Invalid { errors, .. }) => {
            assert!(
                errors.iter().any(|e| e.field == field),
                "expected an error naming {field}, got {errors:?}"
            );
            errors
        }
        other => panic!("expected a 422 naming {field}, got {other:?}"),
    }
}

/// No secret was ever written, and no connection, job or message exists.
#[track_caller]
fn assert_nothing_stored(fakes: &Fakes) {
    assert_eq!(fakes.vault.puts(), 0, "a secret was written");
    assert!(fakes.vault.secrets().is_empty(), "a secret is left");
    assert!(
        fakes.store.connections().is_empty(),
        "a connection was stored"
    );
    assert!(fakes.store.jobs().is_empty(), "a job was stored");
    assert!(fakes.queue.messages().is_empty(), "a message was sent");
}

/// As `assert_nothing_stored`, and the upstream was never asked either.
#[track_caller]
fn assert_nothing_written(fakes: &Fakes) {
    assert_nothing_stored(fakes);
    assert!(
        fakes.sources.check_calls().is_empty(),
        "the credentials were checked upstream"
    );
}
