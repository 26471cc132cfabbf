//! One token refresher per connection: `CONN#id | REFRESH` holds the lease (`holder`,
//! `lease_until` in epoch milliseconds) and a `fence` that grows with every acquisition. The
//! lease only keeps refreshers from calling the token endpoint at once: which tokens become
//! current is decided by `secret_versions`. The item lives in the connection's partition and
//! goes with its delete.

use super::keys::connection_pk;
use super::{backend, is_condition_failure, key, n, s, DynamoStore};
use crate::error::adapter;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use chrono::{DateTime, Utc};
use domain::ids::ConnectionId;
use domain::ports::{RefreshLeaseStore, StoreError};

const REFRESH: &str = "REFRESH";
const HOLDER: &str = "holder";
const UNTIL: &str = "lease_until";
const FENCE: &str = "fence";

#[async_trait]
impl RefreshLeaseStore for DynamoStore {
    async fn acquire_refresh_lease(
        &self,
        connection: ConnectionId,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<u64>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(connection_pk(connection), REFRESH)))
            .update_expression("SET #holder = :holder, #until = :until ADD #fence :one")
            .condition_expression("attribute_not_exists(#holder) OR #until <= :now")
            .expression_attribute_names("#holder", HOLDER)
            .expression_attribute_names("#until", UNTIL)
            .expression_attribute_names("#fence", FENCE)
            .expression_attribute_values(":holder", s(holder))
            .expression_attribute_values(":until", n(until.timestamp_millis()))
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(out) => out
                .attributes
                .and_then(|a| a.get(FENCE)?.as_n().ok()?.parse().ok())
                .map(Some)
                .ok_or_else(|| StoreError::Backend(adapter("the lease answered no fence"))),
            Err(e) if is_condition_failure(&e) => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }

    async fn release_refresh_lease(
        &self,
        connection: ConnectionId,
        holder: &str,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(connection_pk(connection), REFRESH)))
            .update_expression("REMOVE #holder, #until")
            .condition_expression("#holder = :holder")
            .expression_attribute_names("#holder", HOLDER)
            .expression_attribute_names("#until", UNTIL)
            .expression_attribute_values(":holder", s(holder))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Taken over after it ran out: nothing of ours to release.
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(backend(e)),
        }
    }
}
