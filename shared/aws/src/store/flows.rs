//! Browser flows waiting for their OAuth callback: `OAUTH#<state hash> | META`, removed by the
//! table's TTL (`ttl`, epoch seconds) after they expire. A flow is consumed by one conditional
//! delete that returns the item, so a state works once however many callbacks race for it.

use super::keys::META;
use super::{backend, is_condition_failure, key, n, s, DynamoStore, Item};
use crate::error::adapter;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use chrono::{DateTime, Utc};
use domain::oauth::{PendingFlow, PkceVerifier, StateHash};
use domain::ports::{FlowStore, StoreError};

const ORGANIZATION: &str = "organization_id";
const CONNECTION: &str = "connection_id";
const VERIFIER: &str = "pkce_verifier";
const REDIRECT_URL: &str = "redirect_url";
const EXPIRES_AT: &str = "expires_at";
const TTL: &str = "ttl";

fn flow_pk(state: &StateHash) -> String {
    format!("OAUTH#{}", state.as_str())
}

fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name)?.as_s().ok().cloned()
}

fn flow_of(state: &StateHash, item: &Item) -> Option<PendingFlow> {
    Some(PendingFlow {
        state: state.clone(),
        organization_id: text(item, ORGANIZATION)?.parse().ok()?,
        connection_id: text(item, CONNECTION)?.parse().ok()?,
        pkce_verifier: text(item, VERIFIER).map(PkceVerifier::from_stored),
        redirect_url: text(item, REDIRECT_URL),
        expires_at: DateTime::from_timestamp(item.get(EXPIRES_AT)?.as_n().ok()?.parse().ok()?, 0)?,
    })
}

#[async_trait]
impl FlowStore for DynamoStore {
    async fn put_flow(&self, flow: &PendingFlow) -> Result<(), StoreError> {
        let mut item = key(flow_pk(&flow.state), META);
        item.insert(ORGANIZATION.into(), s(flow.organization_id.to_string()));
        item.insert(CONNECTION.into(), s(flow.connection_id.to_string()));
        if let Some(verifier) = &flow.pkce_verifier {
            item.insert(VERIFIER.into(), s(verifier.expose()));
        }
        if let Some(url) = &flow.redirect_url {
            item.insert(REDIRECT_URL.into(), s(url.as_str()));
        }
        item.insert(EXPIRES_AT.into(), n(flow.expires_at.timestamp()));
        item.insert(TTL.into(), n(flow.expires_at.timestamp()));
        self.put_new(item).await
    }

    async fn take_flow(
        &self,
        state: &StateHash,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingFlow>, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(flow_pk(state), META)))
            .condition_expression("attribute_exists(pk) AND #expires > :now")
            .expression_attribute_names("#expires", EXPIRES_AT)
            .expression_attribute_values(":now", n(now.timestamp()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                let item = out.attributes.unwrap_or_default();
                flow_of(state, &item)
                    .map(Some)
                    .ok_or_else(|| StoreError::Backend(adapter("unreadable OAuth flow item")))
            }
            Err(e) if is_condition_failure(&e) => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }
}
