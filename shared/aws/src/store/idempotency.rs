//! Idempotency keys: `IDEMP#o#key | META`, removed by DynamoDB's TTL (`ttl`, epoch seconds) once
//! the retention ends. A record is `in_progress` under a fencing `lease_token` until the create's
//! transaction marks it `completed` with the response.

use super::keys::{idempotency_pk, META};
use super::{backend, from_item, is_condition_failure, n, s, to_item, DynamoStore};
use crate::error::{adapter, boxed};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use domain::idempotency::{Claim, KeyState, Reservation};
use domain::ids::{ConnectionId, JobId, OrganizationId};
use domain::ports::{IdempotencyStore, StoreError};
use serde::{Deserialize, Serialize};

pub(crate) const STATE: &str = "state";
pub(crate) const LEASE_TOKEN: &str = "lease_token";
const TTL: &str = "ttl";

/// How often a claim retries when the record changes under it (released, expired, taken over).
const CLAIM_ATTEMPTS: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RecordState {
    InProgress,
    Completed,
}

impl RecordState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyRecord {
    organization_id: OrganizationId,
    idempotency_key: String,
    state: RecordState,
    fingerprint: String,
    connection_id: ConnectionId,
    job_id: JobId,
    lease_token: String,
    lease_until: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    ttl: i64,
    /// The stored response body (JSON text), once completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    response: Option<String>,
}

impl KeyRecord {
    fn in_progress(r: &Reservation) -> Self {
        Self {
            organization_id: r.organization_id,
            idempotency_key: r.key.clone(),
            state: RecordState::InProgress,
            fingerprint: r.fingerprint.clone(),
            connection_id: r.connection_id,
            job_id: r.job_id,
            lease_token: r.lease_token.clone(),
            lease_until: r.lease_until,
            expires_at: r.expires_at,
            ttl: r.expires_at.timestamp(),
            response: None,
        }
    }

    /// DynamoDB deletes expired items late (up to days): until then they are ignored.
    fn expired(&self, now: DateTime<Utc>) -> bool {
        self.ttl < now.timestamp()
    }

    fn reservation(&self) -> Reservation {
        Reservation {
            organization_id: self.organization_id,
            key: self.idempotency_key.clone(),
            fingerprint: self.fingerprint.clone(),
            connection_id: self.connection_id,
            job_id: self.job_id,
            lease_token: self.lease_token.clone(),
            lease_until: self.lease_until,
            expires_at: self.expires_at,
        }
    }

    fn state(&self) -> KeyState {
        match self.state {
            RecordState::InProgress => KeyState::InProgress(self.reservation()),
            RecordState::Completed => KeyState::Completed {
                fingerprint: self.fingerprint.clone(),
                response: self.response.clone().unwrap_or_default(),
            },
        }
    }
}

/// An instant as the domain structs store it (chrono's RFC 3339 serialization).
fn timestamp(at: DateTime<Utc>) -> Result<AttributeValue, StoreError> {
    serde_dynamo::to_attribute_value(at).map_err(|e| StoreError::Backend(boxed(e)))
}

impl DynamoStore {
    async fn read_record(
        &self,
        org: OrganizationId,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let Some(item) = self.get(idempotency_pk(org, key), META).await? else {
            return Ok(None);
        };
        let record: KeyRecord = from_item(item)?;
        Ok((!record.expired(now)).then_some(record))
    }

    /// Writes a fresh in-progress record unless a live one exists. `false` when one does.
    async fn put_fresh(
        &self,
        candidate: &Reservation,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let item = to_item(
            &KeyRecord::in_progress(candidate),
            idempotency_pk(candidate.organization_id, &candidate.key),
            META,
        )?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR #ttl < :now")
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":now", n(now.timestamp()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(backend(e)),
        }
    }

    /// Moves an in-progress record whose lease ran out to the candidate's lease, fenced by the
    /// holder's token. `false` when someone else changed it first.
    async fn take_over(
        &self,
        holder: &KeyRecord,
        candidate: &Reservation,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(super::key(
                idempotency_pk(holder.organization_id, &holder.idempotency_key),
                META,
            )))
            .update_expression("SET #lease = :token, lease_until = :until")
            .condition_expression("#lease = :holder AND #state = :in_progress")
            .expression_attribute_names("#lease", LEASE_TOKEN)
            .expression_attribute_names("#state", STATE)
            .expression_attribute_values(":token", s(&candidate.lease_token))
            .expression_attribute_values(":until", timestamp(candidate.lease_until)?)
            .expression_attribute_values(":holder", s(&holder.lease_token))
            .expression_attribute_values(":in_progress", s(RecordState::InProgress.as_str()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(backend(e)),
        }
    }
}

#[async_trait]
impl IdempotencyStore for DynamoStore {
    async fn claim_key(
        &self,
        candidate: &Reservation,
        now: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        let (org, key) = (candidate.organization_id, candidate.key.as_str());
        for _ in 0..CLAIM_ATTEMPTS {
            if self.put_fresh(candidate, now).await? {
                return Ok(Claim::Acquired(candidate.clone()));
            }
            // Released or expired since the put: try again.
            let Some(holder) = self.read_record(org, key, now).await? else {
                continue;
            };
            // A different body never takes a key over: the caller answers 422 for it.
            let keep = holder.lease_until > now || holder.fingerprint != candidate.fingerprint;
            if holder.state == RecordState::Completed || keep {
                return Ok(Claim::Held(holder.state()));
            }
            if self.take_over(&holder, candidate).await? {
                return Ok(Claim::Acquired(Reservation {
                    lease_token: candidate.lease_token.clone(),
                    lease_until: candidate.lease_until,
                    ..holder.reservation()
                }));
            }
            // Lost the race to take it over: whoever won holds it now.
            if let Some(winner) = self.read_record(org, key, now).await? {
                return Ok(Claim::Held(winner.state()));
            }
        }
        Err(StoreError::Backend(adapter(
            "the idempotency key kept changing while it was being claimed",
        )))
    }

    async fn read_key(
        &self,
        org: OrganizationId,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<KeyState>, StoreError> {
        Ok(self.read_record(org, key, now).await?.map(|r| r.state()))
    }

    async fn release_key(&self, reservation: &Reservation) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(super::key(
                idempotency_pk(reservation.organization_id, &reservation.key),
                META,
            )))
            .condition_expression("#lease = :token AND #state = :in_progress")
            .expression_attribute_names("#lease", LEASE_TOKEN)
            .expression_attribute_names("#state", STATE)
            .expression_attribute_values(":token", s(&reservation.lease_token))
            .expression_attribute_values(":in_progress", s(RecordState::InProgress.as_str()))
            .send()
            .await;
        match result {
            // Someone took the key over or completed it: it is not ours to free.
            Err(e) if !is_condition_failure(&e) => Err(backend(e)),
            _ => Ok(()),
        }
    }
}
