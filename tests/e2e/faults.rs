//! Faults injected between the writes of a create: nothing is lost and nothing is orphaned.

use crate::helpers::app::{problem, stub_body, TestApp};
use async_trait::async_trait;
use aws_adapters::DynamoStore;
use chrono::{DateTime, Utc};
use domain::collection::Collection;
use domain::connection::SourceConnection;
use domain::idempotency::{Claim, KeyState, Reservation};
use domain::ids::{ConnectionId, OrganizationId};
use domain::names::ReadableId;
use domain::page::{Page, PageRequest};
use domain::ports::{
    CollectionStore, ConnectionStore, IdempotencyStore, NewConnection, StoreError, TenantStore,
};
use domain::tenancy::{ApiKeyHash, Organization};
use serde_json::Value;
use std::sync::Arc;

/// The real store, except that the create transaction fails as if DynamoDB were unreachable.
struct TransactionFails(DynamoStore);

#[async_trait]
impl TenantStore for TransactionFails {
    async fn organization_for_key(
        &self,
        key: &ApiKeyHash,
    ) -> Result<Option<OrganizationId>, StoreError> {
        self.0.organization_for_key(key).await
    }
    async fn insert_organization(&self, org: &Organization) -> Result<(), StoreError> {
        self.0.insert_organization(org).await
    }
    async fn get_organization(
        &self,
        org: OrganizationId,
    ) -> Result<Option<Organization>, StoreError> {
        self.0.get_organization(org).await
    }
    async fn insert_api_key(
        &self,
        key: &ApiKeyHash,
        org: OrganizationId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.0.insert_api_key(key, org, now).await
    }
    async fn revoke_api_key(&self, key: &ApiKeyHash) -> Result<bool, StoreError> {
        self.0.revoke_api_key(key).await
    }
}

#[async_trait]
impl CollectionStore for TransactionFails {
    async fn insert_collection(&self, c: &Collection) -> Result<(), StoreError> {
        self.0.insert_collection(c).await
    }
    async fn get_collection(
        &self,
        org: OrganizationId,
        id: &ReadableId,
    ) -> Result<Option<Collection>, StoreError> {
        self.0.get_collection(org, id).await
    }
    async fn list_collections(
        &self,
        org: OrganizationId,
        page: &PageRequest,
    ) -> Result<Page<Collection>, StoreError> {
        self.0.list_collections(org, page).await
    }
    async fn delete_collection(
        &self,
        org: OrganizationId,
        id: &ReadableId,
    ) -> Result<(), StoreError> {
        self.0.delete_collection(org, id).await
    }
}

#[async_trait]
impl ConnectionStore for TransactionFails {
    async fn insert_connection(&self, _: NewConnection<'_>) -> Result<(), StoreError> {
        Err(StoreError::Backend(
            "injected: transaction failed with internal detail XYZZY".into(),
        ))
    }
    async fn get_connection(
        &self,
        org: OrganizationId,
        id: ConnectionId,
    ) -> Result<Option<SourceConnection>, StoreError> {
        self.0.get_connection(org, id).await
    }
    async fn list_connections(
        &self,
        org: OrganizationId,
        c: Option<&ReadableId>,
        page: &PageRequest,
    ) -> Result<Page<SourceConnection>, StoreError> {
        self.0.list_connections(org, c, page).await
    }
}

#[async_trait]
impl IdempotencyStore for TransactionFails {
    async fn claim_key(
        &self,
        candidate: &Reservation,
        now: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        self.0.claim_key(candidate, now).await
    }
    async fn read_key(
        &self,
        org: OrganizationId,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<KeyState>, StoreError> {
        self.0.read_key(org, key, now).await
    }
    async fn release_key(&self, r: &Reservation) -> Result<(), StoreError> {
        self.0.release_key(r).await
    }
}

#[tokio::test]
async fn a_failed_transaction_after_the_secret_leaves_no_orphan() {
    let app = TestApp::spawn_with(|_| {}).await;
    // Rebuild the platform around the failing store, in the same stack.
    let failing = TestApp::spawn_with(|p| {
        *p = app.platform.clone();
        p.store = Arc::new(TransactionFails(app.aws.store()));
    })
    .await;
    app.create_collection("docs").await;

    let response = failing
        .request(
            reqwest::Method::POST,
            "/source-connections",
            Some(&app.api_key),
            Some(&stub_body("docs", "k-fault")),
            &[("idempotency-key", "fault-1")],
        )
        .await;
    let p = problem(response, 500).await;
    assert!(
        !p.to_string().contains("XYZZY"),
        "no internals in a 5xx body: {p}"
    );
    let request_id = p["request_id"].as_str().unwrap();
    assert!(p["detail"].as_str().unwrap().contains(request_id));
    // The log has what the body hides: the cause chain, under the same request id.
    let logged = crate::helpers::logs::captured();
    assert!(
        logged
            .lines()
            .any(|l| l.contains(request_id) && l.contains("XYZZY") && l.contains("internal error")),
        "the cause chain is logged with the request id"
    );

    assert!(
        app.aws.secret_names_under_prefix().await.is_empty(),
        "secret removed"
    );
    let list: Vec<Value> = app.get("/source-connections").await.json().await.unwrap();
    assert!(list.is_empty());
    assert!(app.aws.receive_messages().await.is_empty());

    // The key was released: the same request succeeds once the store is healthy.
    let retry = app
        .request(
            reqwest::Method::POST,
            "/source-connections",
            Some(&app.api_key),
            Some(&stub_body("docs", "k-fault")),
            &[("idempotency-key", "fault-1")],
        )
        .await;
    assert_eq!(retry.status(), 201);
    assert_eq!(app.aws.secret_names_under_prefix().await.len(), 1);
}

#[tokio::test]
async fn a_lost_message_still_creates_the_connection_with_its_pending_job() {
    let app = TestApp::spawn().await;
    let broken_queue = TestApp::spawn_with(|p| {
        *p = app.platform.clone();
        p.queue = Arc::new(app.aws.queue_at("http://127.0.0.1:1/000000000000/missing"));
    })
    .await;
    app.create_collection("docs").await;
    let response = broken_queue
        .request(
            reqwest::Method::POST,
            "/source-connections",
            Some(&app.api_key),
            Some(&stub_body("docs", "k-queue")),
            &[],
        )
        .await;
    assert_eq!(response.status(), 201);
    let c: Value = response.json().await.unwrap();
    assert_eq!(c["sync"]["last_job"]["status"], "pending");
    let keys = app.aws.scan_keys().await;
    let job_id = c["sync"]["last_job"]["id"].as_str().unwrap();
    assert!(
        keys.iter().any(|(_, sk)| sk == &format!("JOB#{job_id}")),
        "the pending job is stored for the sweep: {keys:?}"
    );
}
